"""Fixtures of the unit tests: the shipped routing config, the API over fakes, and a copy of
config/ to break."""

from __future__ import annotations

import shutil
from pathlib import Path

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


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped config/ that a test may edit."""
    target = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    return target
