"""The audit log: who accessed or changed which personal data, when, from where, and why.

Every access to personal data and every change is one entry in the Redis stream
``<prefix>audit``, chained by SHA-256 hashes (``audit.chain``) so that a deleted, edited,
inserted or reordered entry is found by ``ivr audit verify``, and mirrored to an append-only
file (``audit.mirror``). ``audit.log.AuditLog`` writes; ``audit.reading`` verifies and lists;
``audit.cli`` is the ``ivr audit`` command.
"""

from audit.chain import Action, Finding
from audit.log import AuditLog, AuditUnavailable

__all__ = ["Action", "AuditLog", "AuditUnavailable", "Finding"]
