"""``GET /api/reports/orders``: the work-order KPIs of the asked UTC days, aggregates only,
refused with a 400 naming the problem for a bad period, 503 without a dated store."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter

from api.resources.reports import OrdersReport
from api.testing import ApiUnderTest, FakeWorkOrders, answer, api_under_test, sample_orders
from routing import core


def test_today_by_default_with_the_figures_and_groups(under_test: ApiUnderTest) -> None:
    """Without from/to: today (UTC, the API's clock), every order created today counted,
    per queue, category, urgency and agent; no caller data in the answer."""
    response = answer(under_test.api, "GET", "/api/reports/orders", token="tok-ops")
    assert response.status == 200
    body = response.body
    TypeAdapter(OrdersReport).validate_python(body)
    assert (body["from"], body["to"]) == ("1970-01-01T00:00:00Z", "1970-01-02T00:00:00Z")
    assert body["total"]["created"] == 4 and [d["day"] for d in body["days"]] == ["1970-01-01"]
    assert set(body["total"]["by"]["agent"]) == {"agent101", "agent102", "agent103", "-"}
    assert "Caller" not in json.dumps(body) and "+1555" not in json.dumps(body)


def test_a_period_of_days(under_test: ApiUnderTest) -> None:
    """from and to are UTC days, both included; days without orders are rows of zeros."""
    response = answer(under_test.api, "GET", "/api/reports/orders?from=1969-12-31&to=1970-01-02",
                      token="tok-supervisor-north")
    assert response.status == 200
    assert [(d["day"], d["created"]) for d in response.body["days"]] == [
        ("1969-12-31", 0), ("1970-01-01", 4), ("1970-01-02", 0)]


@pytest.mark.parametrize(("query", "reason"), [
    ("from=1970-1-1", "from"),
    ("from=1970-01-05&to=1970-01-01", "to is before from"),
    ("from=1970-01-01&to=1970-12-31", "at most 92 days"),
    ("from=1970-02-30", "a day like"),
    ("since=1970-01-01", "since"),
])
def test_bad_periods_are_refused(under_test: ApiUnderTest, query: str, reason: str) -> None:
    """A malformed day, an impossible date, an inverted or too long period, an unknown
    parameter: 400 with the reason."""
    response = answer(under_test.api, "GET", f"/api/reports/orders?{query}", token="tok-ops")
    assert response.status == 400 and reason in response.body["error"]


def test_store_without_dated_reads_is_unavailable(routing_config: core.RoutingConfig) -> None:
    """A store that cannot list orders by creation answers 503, never a wrong report."""

    class Undated(FakeWorkOrders):
        created_between = None  # type: ignore[assignment]

    under_test = api_under_test(routing_config, store=Undated(sample_orders()))
    response = answer(under_test.api, "GET", "/api/reports/orders", token="tok-ops")
    assert response.status == 503
