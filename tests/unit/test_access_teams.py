"""Teams in agents.yaml (validated, carried into the routing core) and who may hold a token."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from access import Role, team_of
from access.teams import teams, token_subject_problem
from routing.schema import RoutingConfigError, load_routing_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def _files():
    return [yaml.safe_load((CONFIG_DIR / f"{n}.yaml").read_text())
            for n in ("queues", "agents", "routing")]


def test_shipped_agents_have_two_teams():
    """config/agents.yaml puts agent101/102 on the billing desk and 103/104 on the network
    desk; an unknown agent has no team."""
    cfg = load_routing_config(*_files())
    assert [team_of(cfg, a) for a in ("agent101", "agent102", "agent103", "agent104")] == [
        "billing-desk", "billing-desk", "network-desk", "network-desk"]
    assert team_of(cfg, "agent999") is None
    assert teams(cfg) == {"billing-desk", "network-desk"}


def test_team_is_optional():
    """An agent without ``team`` loads with team None."""
    queues, agents, routing = _files()
    del agents["agents"]["agent101"]["team"]
    assert team_of(load_routing_config(queues, agents, routing), "agent101") is None


@pytest.mark.parametrize("bad", ["Billing", "billing desk", "-x", "", "a/b"])
def test_bad_team_names_are_refused_with_their_key(bad):
    """A team name is lowercase letters, digits, '-' or '_' (like skills); the error names
    file and key."""
    queues, agents, routing = _files()
    agents = copy.deepcopy(agents)
    agents["agents"]["agent102"]["team"] = bad
    with pytest.raises(RoutingConfigError) as caught:
        load_routing_config(queues, agents, routing)
    assert any(m.startswith("agents.yaml: agents.agent102.team:") for m in caught.value.messages)


def test_token_subjects_checked_against_the_config():
    """Agent tokens only for configured agents, supervisor tokens only for configured teams;
    other roles are anyone's."""
    cfg = load_routing_config(*_files())
    assert token_subject_problem(cfg, "agent101", Role.AGENT, None) is None
    assert "agent109" in token_subject_problem(cfg, "agent109", Role.AGENT, None)
    assert token_subject_problem(cfg, "sv1", Role.SUPERVISOR, "network-desk") is None
    assert "needs --team" in token_subject_problem(cfg, "sv1", Role.SUPERVISOR, None)
    assert token_subject_problem(cfg, "sv1", Role.SUPERVISOR, "sales-desk") == (
        "unknown team 'sales-desk'; the teams of agents.yaml: billing-desk, network-desk")
    assert token_subject_problem(cfg, "alice", Role.OPS, None) is None
