"""The testbed's pytest plugin (pyproject.toml's addopts loads it): parallel e2e workers.

The end-to-end tests (marker ``e2e``) bind the fixed ports of ``asterisk/``. Under
pytest-xdist, each worker enters a network namespace of its own (testbed.netns) before its
first e2e test sets up, so ``pytest -n 2 -m e2e`` runs two whole stacks side by side. A run in
one process keeps the host's network, where a demo stack on the same ports is refused by the
testbed's port check, as before.
"""

from __future__ import annotations

import os

import pytest

from testbed.netns import PrivateNetworkRefused, enter_private_network

_entered: list[str] = []  # this worker's network, once entered


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _entered or item.get_closest_marker("e2e") is None:
        return
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    try:
        _entered.append(enter_private_network())
    except PrivateNetworkRefused as exc:
        pytest.fail(f"parallel e2e workers need a network each: {exc}; run them as root, "
                    "or without -n", pytrace=False)
