"""Work orders: one per hotline call, from creation in the IVR to closing and retention.

- ``workorders.model``: the pure lifecycle, deadlines by urgency, overdue detection, JSON;
- ``workorders.schema``: ``config/workorders.yaml`` (the operator's service standard);
- ``workorders.store``: Redis store, idempotent per call, local spool when Redis is away;
- ``workorders.store.WORK_ORDER_KINDS``: what work orders write to the ``hotline:events``
  stream (the neutral package ``events``, shared with routing).
"""

from workorders.model import (
    DEFAULT_CATEGORIES,
    Category,
    Event,
    Policy,
    Status,
    TransitionRefused,
    UnknownCategory,
    Urgency,
    WorkOrder,
    WorkOrderError,
)

__all__ = [
    "DEFAULT_CATEGORIES",
    "Category",
    "Event",
    "Policy",
    "Status",
    "TransitionRefused",
    "UnknownCategory",
    "Urgency",
    "WorkOrder",
    "WorkOrderError",
]
