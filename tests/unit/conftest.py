"""Fixtures of the API's unit tests: the shipped routing config, and the API over fakes."""

from __future__ import annotations

import pytest

from api.testing import ApiUnderTest, api_under_test, sample_orders
from ivr.config import DEFAULT_CONFIG_DIR, load_config
from routing import core


@pytest.fixture(scope="module")
def routing_config() -> core.RoutingConfig:
    """config/'s queues, agents and routing rules (agent101-agent104)."""
    return load_config(DEFAULT_CONFIG_DIR, environ={}).routing


@pytest.fixture
def under_test(routing_config: core.RoutingConfig) -> ApiUnderTest:
    """The whole API over fakes with :func:`api.testing.sample_orders` in its store."""
    return api_under_test(routing_config, sample_orders())
