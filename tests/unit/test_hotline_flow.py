"""The hotline call flow against a fake Asterisk, a scripted router and in-memory work orders.

No sockets, no sleeps: the fake answers each AGI command at once, and the clock is a
``task.Clock`` that the fake's WAIT FOR DIGIT advances, as music on hold would.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from twisted.internet import task
from twisted.internet.defer import Deferred

from ivr.flows.callback import CallbackFlow
from ivr.flows.hotline import HotlineFlow
from ivr.menu import MenusConfig
from ivr.speech.schema import load_intents
from ivr.testing import HANGUP, FakeAsterisk, result_of
from routing.live import Callback, Offer
from routing.live_fakes import FakeRouter
from workorders.testing import InMemoryWorkOrders

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def cfg() -> SimpleNamespace:
    menus = MenusConfig.model_validate(yaml.safe_load((CONFIG / "menus.yaml").read_text()))
    return SimpleNamespace(menus=menus, intents=load_intents(CONFIG / "intents.yaml"))


def _offer(agent: str) -> Offer:
    return Offer(kind="agent", agent_id=agent, endpoint=f"PJSIP/{agent}", ring_timeout_s=15)


def _call(cfg, router, answers, env=None):
    clock = task.Clock()
    orders = InMemoryWorkOrders()
    flow = HotlineFlow(
        config=lambda: cfg, workorders=orders, router=router, clock=clock,
        sound=lambda name: f"/sounds/{name}",
    )

    def music_on_hold(_timeout):
        clock.advance(0.5)
        return None

    answers = {"WAIT FOR DIGIT": music_on_hold, **answers}
    fake = FakeAsterisk(env=env or {"uniqueid": "1700000000.7"}, answers=answers, clock=clock)
    result_of(fake.run(flow))
    return fake, orders, flow


def _order(orders):
    (order,) = orders.orders.values()
    return order


def _dial_vars(status, answered="42"):
    def get_variable(name):
        return {"DIALSTATUS": status, "ANSWEREDTIME": answered}.get(name)

    return get_variable


def test_fault_key_queues_rings_agent_and_records_order(cfg):
    """Key 3 is a fault: an urgent work order, queued, the offered agent is dialled with the
    queue's ring timeout, the survey scores land on the order and the dialplan is told done."""
    router = FakeRouter([None, None, _offer("agent103")])
    fake, orders, flow = _call(cfg, router, {
        "STREAM FILE": ["3"],
        "GET VARIABLE": _dial_vars("ANSWER"),
        "GET DATA": ["5", "9"],
    })
    order = _order(orders)
    assert (order.category.value, order.urgency.value) == ("fault", "urgent")
    assert order.menu_path == ("3",)
    assert order.agent == "agent103" and order.status.value == "in_progress"
    assert (order.csat, order.nps) == (5, 9)
    assert fake.exec_calls == [("Dial", ["PJSIP/agent103", "15", "gU(hotline-answered)"])]
    assert fake.variables["HOTLINE_CATEGORY"] == "fault"
    assert fake.variables["HOTLINE_URGENCY"] == "urgent"
    assert fake.variables["HOTLINE_WORKORDER"] == order.id
    assert fake.variables["HOTLINE_NEXT"] == "done"
    assert router.kinds() == ["ENTERQUEUE", "RING", "COMPLETEAGENT"]
    assert fake.agi_status == "SUCCESS"
    assert flow.active == {}


def test_submenu_choice_carries_its_urgency(cfg):
    """2 then 2 (cancel a service) is a change request marked important by the menu."""
    router = FakeRouter([_offer("agent102")])
    _fake, orders, _ = _call(cfg, router, {
        "STREAM FILE": [None],
        "GET DATA": ["2", "2", None],
        "GET VARIABLE": _dial_vars("ANSWER"),
    })
    order = _order(orders)
    assert (order.category.value, order.urgency.value) == ("change", "important")
    assert order.menu_path == ("2", "2")


def test_wrong_keys_and_silence_replay_then_operator(cfg):
    """A wrong key, then silence, then a wrong key again (retries: 2) sends the caller to
    the operator, with the notices played before each replay, and a work order for the
    operator."""
    router = FakeRouter()
    fake, orders, _ = _call(cfg, router, {"STREAM FILE": [None], "GET DATA": ["7", None, "8"]})
    played = [args[0] for args in fake.calls("STREAM FILE")]
    assert "/sounds/invalid-choice" in played and "/sounds/no-input" in played
    assert fake.variables["HOTLINE_NEXT"] == "operator"
    order = _order(orders)
    assert order.outcome == "operator-menu-retries"
    assert router.events == []


def test_operator_key_goes_to_operator(cfg):
    """Key 0 is the operator at once: HOTLINE_NEXT=operator, nothing queued."""
    router = FakeRouter()
    fake, orders, _ = _call(cfg, router, {"STREAM FILE": ["0"]})
    assert fake.variables["HOTLINE_NEXT"] == "operator"
    assert _order(orders).outcome == "operator-menu-chosen"
    assert router.kinds() == []


def test_hangup_in_menu_counts_abandoned_and_leaves_nothing(cfg):
    """A caller who hangs up during the menu is counted as abandoned at stage menu; no work
    order (no request was made) and no state left behind."""
    router = FakeRouter()
    fake, orders, flow = _call(cfg, router, {"STREAM FILE": [None], "GET DATA": HANGUP})
    assert router.events == [("ABANDON", "1700000000.7", "menu")]
    assert orders.orders == {}
    assert flow.active == {}
    assert fake.agi_status == "HANGUP"


def test_hangup_in_queue_abandons_and_marks_the_order(cfg):
    """Hanging up while waiting removes the call from the queue (ABANDON at stage queue) and
    the work order keeps the request, marked abandoned."""
    router = FakeRouter([None, None])
    polls = iter([None, HANGUP])

    def wait(_timeout):
        answer = next(polls, HANGUP)
        return answer

    _fake, orders, flow = _call(cfg, router, {"STREAM FILE": ["1"], "WAIT FOR DIGIT": wait})
    assert router.events[-1] == ("ABANDON", "1700000000.7", "queue")
    order = _order(orders)
    assert order.outcome == "abandoned" and order.status.value == "pending"
    assert flow.active == {}


def test_no_answer_goes_to_the_next_agent(cfg):
    """RONA: agent101 does not answer; the router is told, and the next offer (agent102)
    connects: the call is not lost."""
    router = FakeRouter([_offer("agent101"), None, _offer("agent102")])
    statuses = iter(["NOANSWER", "ANSWER"])
    current = {}

    def get_variable(name):
        if name == "DIALSTATUS":
            current["status"] = next(statuses)
            return current["status"]
        return "30"

    fake, orders, _ = _call(cfg, router, {
        "STREAM FILE": ["1"], "GET VARIABLE": get_variable, "GET DATA": [None],
    })
    assert [e for e in router.events if e[0] == "RING"] == [
        ("RING", "1700000000.7", "agent101", "no_answer"),
        ("RING", "1700000000.7", "agent102", "answered"),
    ]
    assert _order(orders).agent == "agent102"
    assert [app for app, _ in fake.exec_calls] == ["Dial", "Dial"]


def test_hangup_while_agent_rings_is_abandoned(cfg):
    """The caller hangs up while the agent's phone rings: Dial ends with CANCEL, the router
    gets caller_gone (the agent is freed) and the order is marked abandoned."""
    router = FakeRouter([_offer("agent101")])
    _fake, orders, flow = _call(cfg, router, {
        "STREAM FILE": ["1"], "EXEC": HANGUP, "GET VARIABLE": _dial_vars("CANCEL", "0"),
    })
    assert ("RING", "1700000000.7", "agent101", "caller_gone") in router.events
    assert _order(orders).outcome == "abandoned"
    assert flow.active == {}


def test_hostile_caller_id_is_stored_verbatim_and_never_injected(cfg):
    """A caller ID name with quotes, backslashes, ${...} and a fake AGI command reaches the
    work order verbatim; Asterisk parses our commands back to exactly the words we meant (no
    extra command, no variable written by the caller's text)."""
    name = 'Eve "\\" ${SHELL(rm -rf /)} EXEC Dial(x)'
    router = FakeRouter()
    fake, orders, _ = _call(
        cfg, router, {"STREAM FILE": ["0"]},
        env={"uniqueid": "1700000000.9", "calleridname": name, "callerid": "+1555\\\"0100"},
    )
    order = _order(orders)
    assert order.caller_name == name
    assert order.caller_number == '+1555\\"0100'
    assert set(fake.variables) == {
        "HOTLINE_CATEGORY", "HOTLINE_URGENCY", "HOTLINE_WORKORDER", "HOTLINE_NEXT",
    }
    assert all(not words[0].startswith("EXEC") or words[1] != "Dial" for words in fake.commands)


def test_callback_key_keeps_place_and_ends_the_call(cfg):
    """Virtual hold: the caller hears the callback offer, presses 1 while waiting; the router
    keeps the call with the caller ID as number, the confirmation is played, the dialplan
    is told done (no abandon) and the work order records the request."""
    router = FakeRouter([None, None], callback_key="1")
    digits = iter([None, "1"])
    fake, orders, flow = _call(cfg, router, {
        "STREAM FILE": ["3", None, None, None],
        "WAIT FOR DIGIT": lambda _t: next(digits, None),
    }, env={"uniqueid": "1700000000.7", "callerid": "5550199"})
    played = [args[0] for args in fake.calls("STREAM FILE")]
    assert played[-2:] == ["/sounds/callback-offer", "/sounds/callback-confirmed"]
    assert router.kinds() == ["ENTERQUEUE", "CALLBACKREQUEST"]
    assert router.events[-1] == ("CALLBACKREQUEST", "1700000000.7", "5550199")
    assert fake.variables["HOTLINE_NEXT"] == "done"
    order = _order(orders)
    assert order.outcome == "callback-pending"
    assert any("callback requested to 5550199" in str(h) for h in order.history)
    assert flow.active == {}


def test_callback_key_refused_keeps_the_caller_waiting(cfg):
    """When the router refuses the callback (an agent was just offered the call) the caller
    stays on the line and is connected to that agent."""
    router = FakeRouter([_offer("agent103")], callback_key="1", accept_callback=False)
    fake, orders, _ = _call(cfg, router, {
        "STREAM FILE": ["3", None, "1"],
        "GET VARIABLE": _dial_vars("ANSWER"),
        "GET DATA": [None],
    }, env={"uniqueid": "1700000000.7", "callerid": "5550199"})
    assert "CALLBACKREQUEST" not in router.kinds()
    assert _order(orders).agent == "agent103"
    assert fake.exec_calls[0][0] == "Dial"


def test_callback_needs_a_dialable_caller_id(cfg):
    """An anonymous caller (no dialable number) pressing the key is not given a callback."""
    router = FakeRouter([None, _offer("agent103")], callback_key="1")
    digits = iter(["1"])
    _fake, _orders, _ = _call(cfg, router, {
        "STREAM FILE": ["3", None, None],
        "WAIT FOR DIGIT": lambda _t: next(digits, None),
        "GET VARIABLE": _dial_vars("ANSWER"),
        "GET DATA": [None],
    }, env={"uniqueid": "1700000000.7", "callerid": "anonymous"})
    assert "CALLBACKREQUEST" not in router.kinds()


def test_reentered_call_skips_the_menu_and_waits_at_its_place(cfg):
    """A call already queued (its first instance died; the dialplan's backup AGI brings it
    here) with a work order: no welcome, no menu, no second work order; it is queued again
    (the router keeps its place) and connected."""
    call_id = "1700000000.7"
    router = FakeRouter([_offer("agent103")], queued={call_id: {
        "status": "waiting", "request_type": "fault", "urgency": "urgent", "queue": "faults"}})
    clock = task.Clock()
    orders = InMemoryWorkOrders()
    result_of(Deferred.fromCoroutine(orders.create_for_call(
        call_id, "5550100", "Caller", 0.0, category="fault", urgency="urgent",
        menu_path=["3"])))
    flow = HotlineFlow(config=lambda: cfg, workorders=orders, router=router, clock=clock,
                       sound=lambda name: f"/sounds/{name}")
    fake = FakeAsterisk(env={"uniqueid": call_id}, clock=clock, answers={
        "WAIT FOR DIGIT": [None], "GET VARIABLE": _dial_vars("ANSWER"), "GET DATA": [None],
        "STREAM FILE": [None]})
    result_of(fake.run(flow))
    played = [args[0] for args in fake.calls("STREAM FILE")]
    assert "/sounds/welcome" not in played and "/sounds/please-hold" not in played
    assert router.events[0] == ("ENTERQUEUE", call_id, "fault", "urgent")
    assert len(orders.orders) == 1 and _order(orders).agent == "agent103"


def _callback_call(router, get_variable, exec_answer=None):
    clock = task.Clock()
    orders = InMemoryWorkOrders()
    result_of(Deferred.fromCoroutine(orders.create_for_call(
        "c1", "5550199", "Caller", 0.0, category="fault", urgency="urgent", menu_path=["3"])))
    flow = CallbackFlow(router=router, workorders=orders, clock=clock)
    answers = {"GET VARIABLE": get_variable}
    if exec_answer is not None:
        answers["EXEC"] = exec_answer
    fake = FakeAsterisk(script="callback", env={"uniqueid": "agentleg.1"}, answers=answers,
                        clock=clock, args=["c1"])
    result_of(fake.run(flow))
    return fake, _order(orders)


def _trunk_and_dial(status):
    def get_variable(name):
        return {"DIALSTATUS": status, "ANSWEREDTIME": "20",
                "HOTLINE_CALLBACK_TRUNK": "trunk1"}.get(name)

    return get_variable


def test_callback_flow_dials_customer_after_the_agent_answered(cfg):
    """On the agent's channel: the attempt is recorded, the customer is dialled over the
    configured trunk, and once they talked the call is connected and completed; the work
    order names the agent."""
    router = FakeRouter()
    router.callbacks["c1"] = Callback("c1", "agent103", "5550199", 0, 25)
    fake, order = _callback_call(router, _trunk_and_dial("ANSWER"))
    assert fake.exec_calls == [("Dial", ["PJSIP/5550199@trunk1", "25", "gU(hotline-answered)"])]
    steps = [e[3] for e in router.events if e[0] == "CALLBACK"]
    assert steps == ["agent_answered", "customer_answered"]
    assert router.kinds()[-1] == "COMPLETECALLER"
    assert order.agent == "agent103"
    assert any("callback attempt 1" in str(h) for h in order.history)
    assert fake.variables["HOTLINE_NEXT"] == "done"


def test_callback_flow_customer_no_answer_is_retried_then_given_up(cfg):
    """The customer does not answer: the router is told (the call goes back to its place);
    when the router says the attempts are spent the work order is marked callback-failed."""
    router = FakeRouter()
    router.retry_left = 0
    router.callbacks["c1"] = Callback("c1", "agent103", "5550199", 2, 25)
    _fake, order = _callback_call(router, _trunk_and_dial("NOANSWER"))
    assert [e[3:] for e in router.events if e[0] == "CALLBACK"][-1] == (
        "customer_failed", "customer noanswer")
    assert order.outcome == "callback-failed"
    assert any("callback attempt 3" in str(h) for h in order.history)


def test_store_away_at_start_is_a_new_call_as_usual(cfg):
    """When the router cannot say whether the call was queued before (Redis away), the call
    starts as a new one: menu, work order, queue."""

    class RedisAway(FakeRouter):
        async def waiting_call(self, call_id):
            raise ConnectionError("redis away")

    router = RedisAway([_offer("agent103")])
    _fake, orders, _ = _call(cfg, router, {
        "STREAM FILE": ["3"], "GET VARIABLE": _dial_vars("ANSWER"), "GET DATA": [None],
    })
    assert _order(orders).menu_path == ("3",)
    assert router.kinds()[0] == "ENTERQUEUE"
