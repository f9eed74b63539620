"""The role × permission table and the scope rules (access/roles.py): who may do what to whose
things, and that every refusal says which rule refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from access import AccessDenied, Identity, Permission, Role, Scope, authorize
from access.roles import TABLE, Reach, table_markdown

README = Path(__file__).resolve().parents[2] / "README.md"
P = Permission

AGENT = Identity("agent101", Role.AGENT)
SUPERVISOR = Identity("sv1", Role.SUPERVISOR, team="billing-desk")
OWN_ORDER = Scope(agent="agent101", team="billing-desk")
OTHER_DESK = Scope(agent="agent103", team="network-desk")


def refusal(identity: Identity, permission: Permission, scope: Scope | None = None) -> str:
    with pytest.raises(AccessDenied) as caught:
        authorize(identity, permission, scope)
    return caught.value.reason


def test_agent_reaches_only_its_own_orders_and_state():
    """An agent reads and changes its own work orders and state, and nobody else's."""
    for permission in (P.WORKORDERS_READ, P.WORKORDERS_CHANGE, P.AGENT_STATE_CHANGE,
                       P.AGENTS_READ):
        authorize(AGENT, permission, OWN_ORDER)
        refusal(AGENT, permission, Scope(agent="agent102", team="billing-desk"))
        refusal(AGENT, permission, None)
    assert refusal(AGENT, P.WORKORDERS_READ, Scope(agent="agent102")) == (
        "agent agent101 may only read its own work orders (workorders:read): "
        "this one is agent agent102"
    )


def test_agent_is_refused_what_is_not_in_its_row():
    """Queues, decisions, the audit log, tokens: not an agent's, and the reason lists its row."""
    reason = refusal(AGENT, P.QUEUES_READ)
    assert reason.startswith("agent agent101 may not read queues (queues:read)")
    assert "agents:read" in reason and "workorders:read" in reason


def test_supervisor_reaches_its_team():
    """A supervisor reads and changes its team's agents and orders, reads every queue and
    decision, and is refused another team's things and the whole collection."""
    for permission in (P.AGENTS_READ, P.AGENT_STATE_CHANGE, P.WORKORDERS_READ,
                       P.WORKORDERS_CHANGE):
        authorize(SUPERVISOR, permission, OWN_ORDER)
        authorize(SUPERVISOR, permission, Scope(team="billing-desk"))
        refusal(SUPERVISOR, permission, OTHER_DESK)
        refusal(SUPERVISOR, permission, None)
        # An order whose team the caller did not resolve is refused, not granted.
        refusal(SUPERVISOR, permission, Scope(agent="agent101"))
    authorize(SUPERVISOR, P.QUEUES_READ)
    authorize(SUPERVISOR, P.DECISIONS_READ)
    assert refusal(SUPERVISOR, P.WORKORDERS_CHANGE, OTHER_DESK) == (
        "supervisor sv1 may only change the work orders of team billing-desk "
        "(workorders:change): this one is agent agent103, team network-desk"
    )
    for permission in (P.CONFIG_RELOAD, P.TOKENS_MANAGE, P.AUDIT_READ, P.RECORDINGS_READ):
        refusal(SUPERVISOR, permission)


def test_supervisor_without_a_team_reaches_no_team():
    """A supervisor identity without a team passes no team rule, even for a teamless scope."""
    lost = Identity("sv2", Role.SUPERVISOR)
    assert refusal(lost, P.AGENTS_READ, Scope(agent="agent101")) == (
        "supervisor sv2 has no team, so may not read any team's agent entries (agents:read)"
    )
    refusal(lost, P.AGENTS_READ, Scope())


def test_ops_quality_auditor_rows():
    """Ops reach every operational thing whatever the scope; quality only recordings; the
    auditor only the audit log."""
    ops = Identity("ops1", Role.OPS)
    for permission in (P.QUEUES_READ, P.AGENTS_READ, P.AGENT_STATE_CHANGE, P.DECISIONS_READ,
                       P.WORKORDERS_READ, P.WORKORDERS_CHANGE, P.CONFIG_RELOAD,
                       P.TOKENS_MANAGE):
        authorize(ops, permission)
        authorize(ops, permission, OTHER_DESK)
    refusal(ops, P.AUDIT_READ)
    quality = Identity("q1", Role.QUALITY)
    authorize(quality, P.RECORDINGS_READ)
    auditor = Identity("au1", Role.AUDITOR)
    authorize(auditor, P.AUDIT_READ)
    assert refusal(auditor, P.WORKORDERS_READ, OWN_ORDER) == (
        "auditor au1 may not read work orders (workorders:read): not in the auditor role's "
        "permissions (audit:read)"
    )
    assert {p for p in P if p is not P.PUBLIC and _passes(quality, p, None)} == {
        P.RECORDINGS_READ}
    assert {p for p in P if p is not P.PUBLIC and _passes(auditor, p, None)} == {P.AUDIT_READ}


def test_public_needs_nothing():
    """PUBLIC passes for every role, whatever the scope."""
    for role in Role:
        authorize(Identity("x", role), P.PUBLIC, OTHER_DESK)


def test_readme_shows_the_table_in_code():
    """The README's Access section holds exactly the table the code enforces."""
    text = README.read_text()
    assert "## Access" in text
    assert table_markdown() in text


def _passes(identity: Identity, permission: Permission, scope: Scope | None) -> bool:
    try:
        authorize(identity, permission, scope)
    except AccessDenied:
        return False
    return True


names = st.sampled_from(["agent101", "agent102", "agent103", "sv1", "ops1", "x"])
teams = st.none() | st.sampled_from(["billing-desk", "network-desk", "x"])
identities = st.builds(Identity, user=names, role=st.sampled_from(Role), team=teams,
                       token_id=st.just("0123456789abcdef"))
scopes = st.none() | st.builds(Scope, agent=st.none() | names, team=teams)


@given(identities, st.sampled_from(Permission), scopes)
def test_no_role_passes_outside_its_row(identity, permission, scope):
    """Whatever the identity and scope, a permission passes only if it is in the role's row
    (or PUBLIC), and only within the row's reach; a refusal names role, user, permission."""
    if not _passes(identity, permission, scope):
        reason = refusal(identity, permission, scope)
        assert reason.startswith(f"{identity.role} {identity.user} ")
        assert f"({permission})" in reason
        return
    if permission is P.PUBLIC:
        return
    reach = TABLE[identity.role][permission]
    if reach is Reach.OWN:
        assert scope is not None and scope.agent == identity.user
    elif reach is Reach.TEAM:
        assert scope is not None and identity.team is not None and scope.team == identity.team


@given(identities.filter(lambda i: i.role is Role.AGENT), st.sampled_from(Permission),
       st.builds(Scope, agent=names, team=teams))
def test_an_agent_never_passes_for_another_agents_scope(identity, permission, scope):
    """An agent identity is refused every non-public permission on another agent's things,
    whatever team the scope names."""
    if permission is not P.PUBLIC and scope.agent != identity.user:
        assert not _passes(identity, permission, scope)


def test_readme_table_has_a_row_per_permission_and_every_refusal_has_words():
    """The table has one row per permission, in the enum's order; every refusal of a
    permission outside a role's row says what that permission lets one do."""
    rows = table_markdown().splitlines()[2:]
    assert [re.match(r"\| `([^`]+)`", row).group(1) for row in rows] == [p.value for p in P]
    for role in Role:
        for permission in set(P) - set(TABLE[role]) - {P.PUBLIC}:
            reason = refusal(Identity("u", role, "t"), permission, Scope("u", "t"))
            assert reason.startswith(f"{role} u may not ") and f"({permission})" in reason
