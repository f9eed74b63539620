"""Hostile caller IDs through the real stack: Asterisk 22, ``ivr serve``, SIPp phones.

A real SIP phone (SIPp UAC, ``testbed/sipp/uac_caller.xml`` with its From header's display
name replaced, written for the test) calls with a display name full of quotes, backslashes,
``${...}`` and a would-be second address and header; a simulated caller (ARI originate,
``Local/s@caller-sim``: SIP itself cannot carry CR or LF in a display name, ARI can) calls
with a number and a name holding CR LF followed by a SIP header. For each: the work order
keeps the caller ID exactly as Asterisk delivered it (for SIP: the display name with its
backslash escapes, as Asterisk 22 keeps them), nothing in it is executed, and the
agent's phone receives one INVITE whose From and P-Asserted-Identity carry a cleaned display
name (no quote, backslash or line break: ``callerid.displayable_name``) and no extra header.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callerid import displayable_name
from testbed.checks import call_gone, events, wait_for, workorder
from testbed.softphones import SCENARIO_DIR, SippCaller

pytestmark = pytest.mark.e2e

# On the wire, inside the From header's quoted display name (RFC 3261 quoted-pair escapes).
SIP_DISPLAY = r'Eve \"the boss\" \\ ${SHELL(id)} <sip:evil@10.0.0.1>;X-Injected: yes'
# What Asterisk 22 hands to the service (agi_calleridname, CALLERID(name)): the display name
# as it was on the wire, its quoted-pair escapes kept (PJSIP does not unescape them).
SIP_NAME = SIP_DISPLAY


class HostileSipCaller(SippCaller):
    """The testbed's SIP phone with its From display name replaced, and its key press a
    second later (after the welcome, like the simulated callers' "w2")."""

    def __init__(self, display: str, scenario_dir: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        text = (SCENARIO_DIR / "uac_caller.xml").read_text(encoding="iso-8859-1")
        assert "]]>" not in display and "[" not in display  # CDATA, SIPp keywords
        text = text.replace('From: "SIP Caller"', f'From: "{display}"')
        text = text.replace('<pause milliseconds="1500"/>', '<pause milliseconds="2500"/>')
        self.scenario = scenario_dir / "uac_hostile_caller.xml"
        self.scenario.write_text(text, encoding="iso-8859-1")

    def command(self) -> list[str]:
        command = super().command()
        command[command.index("-sf") + 1] = str(self.scenario)
        return command


def _only_call_id(db) -> str:
    rows = wait_for(lambda: [e for e in events(db) if e.get("call_id")], 20, "a call's events")
    call_ids = {row["call_id"] for row in rows}
    assert len(call_ids) == 1, call_ids
    return call_ids.pop()


def _agent_saw_one_clean_invite(agent, shown: str) -> None:
    """The agent's INVITE: From and P-Asserted-Identity with the cleaned display name, quoted,
    followed by the caller's URI and nothing the caller's text added."""
    invites = agent.events("INVITE")
    assert len(invites) == 1
    for value in (invites[0].detail, agent.events("IDENTITY")[0].detail):
        assert value.startswith(f'"{shown}" <sip:'), value
        assert "\r" not in value and "\n" not in value
        assert value.count('"') == 2 and "\\" not in value


def test_sip_phone_with_hostile_display_name(hotline, agents, tmp_path: Path, db) -> None:
    """A real SIP caller whose display name has quotes, backslashes, ${...}, a second
    address and a header: the work order stores the name verbatim, nothing is evaluated
    (the call goes to agent101 for billing, as its key 1 asked), and agent101's phone gets
    the name cleaned, inside one quoted display name."""
    agent = agents("agent101", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent101",))
    phone = HostileSipCaller(SIP_DISPLAY, tmp_path, hold_for=20.0, log_dir=tmp_path / "phone")
    assert phone.run(timeout=60) == 0, phone.screen_path.read_text(errors="replace")[-1500:]
    call_id = _only_call_id(db)
    order = wait_for(lambda: workorder(service, call_id), 10, "the work order")
    assert order["caller"] == {"number": "caller", "name": SIP_NAME}
    assert (order["category"], order["agent"]) == ("inquiry", "agent101")
    assert agent.answered == 1
    _agent_saw_one_clean_invite(agent, displayable_name(SIP_NAME))


def test_ari_caller_with_line_breaks_and_header_in_number_and_name(
    hotline, agents, operator, caller, asterisk
) -> None:
    """A caller ID (ARI originate) whose number and name hold quotes, backslashes, ${...}
    and CR LF followed by a SIP header: both are stored verbatim (CR LF included), the call
    reaches the agent its key chose (not the operator), and the agent's INVITE has one
    From, its display name cleaned and no injected header."""
    number = '+1555"0666\\${EXTEN}\r\nX-Injected: number'
    name = 'Mallory "x" \\ ${SHELL(id)}\r\nX-Injected: name'
    agent = agents("agent103", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent103",))
    # the caller-sim dialplan sets the caller ID from these, as Asterisk received them
    call_id = caller("w2|d3", CALLER_NUM=number, CALLER_NAME=name)
    call_gone(asterisk, call_id)
    order = workorder(service, call_id)
    assert order is not None
    assert order["caller"] == {"number": number, "name": name}
    assert order["agent"] == "agent103"
    assert agent.answered == 1
    assert operator.count("INVITE") == 0
    _agent_saw_one_clean_invite(agent, displayable_name(name))
