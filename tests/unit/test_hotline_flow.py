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

from callbacks.flow import CallbackFlow
from ivr.flows.hotline import HotlineFlow
from ivr.flows.hotline.queue import STORE_AWAY_GRACE_S
from ivr.menu import MenusConfig
from ivr.speech.schema import load_intents
from ivr.testing import HANGUP, FakeAsterisk, failure_of, hotline_call, result_of
from routing.core import CallbackCallerId, CallbackNumber
from routing.live import Callback, CallRequest, Offer, QueueEntry
from routing.live_fakes import FakeRouter
from workorders.testing import InMemoryWorkOrders

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def cfg() -> SimpleNamespace:
    menus = MenusConfig.model_validate(yaml.safe_load((CONFIG / "menus.yaml").read_text()))
    return SimpleNamespace(menus=menus, intents=load_intents(CONFIG / "intents.yaml"))


def _offer(agent: str) -> Offer:
    return Offer(kind="agent", agent_id=agent, endpoint=f"PJSIP/{agent}", ring_timeout_s=15)


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
    fake, orders, flow = hotline_call(cfg, router, {
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


def test_caller_hears_music_while_the_request_is_filed_and_queued(cfg):
    """Once the caller has chosen, music on hold starts before the work order is created
    and the call queued (both wait on Redis, which may be slow): the caller never sits in
    silence while the store answers."""
    router = FakeRouter([_offer("agent103")])
    fake, _orders, _ = hotline_call(cfg, router, {
        "STREAM FILE": ["3"],
        "GET VARIABLE": _dial_vars("ANSWER"),
        "GET DATA": ["5", "9"],
    })
    words = [" ".join(c).upper() for c in fake.commands]
    chose = next(i for i, w in enumerate(words) if w.startswith("STREAM FILE"))
    music = next(i for i, w in enumerate(words) if w.startswith("SET MUSIC ON"))
    filed = next(i for i, w in enumerate(words) if "HOTLINE_CATEGORY" in w)
    assert chose < music < filed
    assert all(not w.startswith(("STREAM FILE", "GET DATA", "EXEC"))
               for w in words[chose + 1:music])


def test_submenu_choice_carries_its_urgency(cfg):
    """2 then 2 (cancel a service) is a change request marked important by the menu."""
    router = FakeRouter([_offer("agent102")])
    _fake, orders, _ = hotline_call(cfg, router, {
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
    fake, orders, _ = hotline_call(
        cfg, router, {"STREAM FILE": [None], "GET DATA": ["7", None, "8"]}
    )
    played = [args[0] for args in fake.calls("STREAM FILE")]
    assert "/sounds/invalid-choice" in played and "/sounds/no-input" in played
    assert fake.variables["HOTLINE_NEXT"] == "operator"
    order = _order(orders)
    assert order.outcome == "operator-menu-retries"
    assert router.events == []


def test_operator_key_goes_to_operator(cfg):
    """Key 0 is the operator at once: HOTLINE_NEXT=operator, nothing queued."""
    router = FakeRouter()
    fake, orders, _ = hotline_call(cfg, router, {"STREAM FILE": ["0"]})
    assert fake.variables["HOTLINE_NEXT"] == "operator"
    assert _order(orders).outcome == "operator-menu-chosen"
    assert router.kinds() == []


def test_hangup_in_menu_counts_abandoned_and_leaves_nothing(cfg):
    """A caller who hangs up during the menu is counted as abandoned at stage menu; no work
    order (no request was made) and no state left behind."""
    router = FakeRouter()
    fake, orders, flow = hotline_call(cfg, router, {"STREAM FILE": [None], "GET DATA": HANGUP})
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

    _fake, orders, flow = hotline_call(cfg, router, {"STREAM FILE": ["1"], "WAIT FOR DIGIT": wait})
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

    fake, orders, _ = hotline_call(cfg, router, {
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
    _fake, orders, flow = hotline_call(cfg, router, {
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
    fake, orders, _ = hotline_call(
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


CALL = "1700000000.7"


def _keys(**by_prompt):
    """GET DATA answers by prompt (``confirm_or_enter=["1"]`` answers the prompt
    callback-confirm-or-enter), consumed in order; any other GET DATA times out."""
    left = {"callback-" + name.replace("_", "-"): list(v) for name, v in by_prompt.items()}

    def get_data(prompt, _timeout_ms, _max_digits):
        answers = left.get(prompt.removeprefix("/sounds/"), [])
        return answers.pop(0) if answers else None

    return get_data


def _virtual_hold(cfg, router, keys, callerid="5550199", stream_file=None):
    """A fault call that waits, hears the callback offer and presses 1 on hold."""
    pressed = iter([None, "1"])
    return hotline_call(cfg, router, {
        "STREAM FILE": stream_file or ["3"],
        "WAIT FOR DIGIT": lambda _t: next(pressed, None),
        "GET DATA": keys,
        "GET VARIABLE": _dial_vars("ANSWER"),
    }, env={"uniqueid": CALL, "callerid": callerid})


def _prompts(fake, verb="STREAM FILE"):
    return [args[0].removeprefix("/sounds/") for args in fake.calls(verb)]


def _agent_frees_up_on(router, prompt):
    """STREAM FILE answers: key 3 at the welcome; when ``prompt`` plays, an agent is offered
    the call (the next poll finds it)."""
    def stream_file(name, _escape):
        if name == f"/sounds/{prompt}":
            router.offers.append(_offer("agent103"))
        return "3" if name == "/sounds/welcome" else None

    return stream_file


def test_callback_confirms_the_caller_id(cfg):
    """Virtual hold: the caller presses 1 while waiting, hears the number they call from
    read back digit by digit (SAY DIGITS), presses 1 to confirm; the router keeps the call at
    its place with that number, the confirmation is played, the dialplan is told done (no
    abandon) and the work order records the request."""
    router = FakeRouter([None, None], callback_key="1")
    fake, orders, flow = _virtual_hold(cfg, router, _keys(confirm_or_enter=["1"]))
    assert _prompts(fake)[-3:] == ["callback-offer", "callback-number-is", "callback-confirmed"]
    assert fake.calls("SAY DIGITS") == [("5550199", "")]
    assert _prompts(fake, "GET DATA") == ["callback-confirm-or-enter"]
    assert fake.calls("GET DATA")[0][1:] == ("6000", "15")  # the rule's timeout and length
    assert router.kinds() == ["ENTERQUEUE", "CALLBACKREQUEST"]
    assert router.events[-1] == ("CALLBACKREQUEST", CALL, "5550199")
    assert fake.variables["HOTLINE_NEXT"] == "done"
    order = _order(orders)
    assert order.outcome == "callback-pending"
    assert any("callback requested to 5550199 (the caller ID, confirmed)" in str(h)
               for h in order.history)
    assert flow.active == {}


def test_callback_to_another_number(cfg):
    """Instead of confirming, the caller keys another number (ended by #): it is read back,
    confirmed with 1, and that number is what the callback will dial and the order records."""
    router = FakeRouter([None, None], callback_key="1")
    fake, orders, _ = _virtual_hold(cfg, router, _keys(
        confirm_or_enter=["01055512345"], confirm_or_reenter=["1"]))
    assert fake.calls("SAY DIGITS") == [("5550199", ""), ("01055512345", "")]
    assert _prompts(fake, "GET DATA") == ["callback-confirm-or-enter",
                                          "callback-confirm-or-reenter"]
    assert fake.calls("GET DATA")[1][1:] == ("6000", "1")
    assert "callback-you-entered" in _prompts(fake)
    assert router.events[-1] == ("CALLBACKREQUEST", CALL, "01055512345")
    assert any("callback requested to 01055512345 (entered by the caller)" in str(h)
               for h in _order(orders).history)


def test_callback_invalid_number_then_a_valid_one(cfg):
    """A number outside the rule (too short) is refused with a notice and never read back;
    the next round the caller enters a valid one, which is taken."""
    router = FakeRouter([None, None], callback_key="1")
    fake, _orders, _ = _virtual_hold(cfg, router, _keys(
        confirm_or_enter=["123", "01055512345"], confirm_or_reenter=["1"]))
    played = _prompts(fake)
    assert played.count("callback-number-invalid") == 1
    assert played.index("callback-number-invalid") < played.index("callback-you-entered")
    assert ("123", "") not in fake.calls("SAY DIGITS")
    assert router.events[-1] == ("CALLBACKREQUEST", CALL, "01055512345")


def test_callback_two_enters_the_number_again(cfg):
    """At the read-back 2 means "enter it again": the caller is asked for a number (the
    caller ID is not offered again) and the second number confirmed is the one kept."""
    router = FakeRouter([None, None], callback_key="1")
    fake, _orders, _ = _virtual_hold(cfg, router, _keys(
        confirm_or_enter=["01055500000"], confirm_or_reenter=["2", "1"],
        enter_number=["01055512345"]))
    assert _prompts(fake, "GET DATA") == [
        "callback-confirm-or-enter", "callback-confirm-or-reenter",
        "callback-enter-number", "callback-confirm-or-reenter"]
    assert router.events[-1] == ("CALLBACKREQUEST", CALL, "01055512345")


def test_callback_retries_spent_back_on_hold_with_the_place_kept(cfg):
    """The caller lets every round time out: after ``retries`` rounds they are told they keep
    their place, music on hold resumes, the call is still in line (no abandon, no second
    ENTERQUEUE) and is connected when an agent frees up."""
    router = FakeRouter([None, None], callback_key="1")
    fake, orders, flow = _virtual_hold(
        cfg, router, _keys(), stream_file=_agent_frees_up_on(router, "callback-number-failed"))
    assert _prompts(fake, "GET DATA")[:3] == ["callback-confirm-or-enter"] * 3
    played = _prompts(fake)
    assert "callback-confirmed" not in played
    music = fake.calls("SET MUSIC")
    assert music[-2:] == [("on", "default"), ("off", "default")]  # on hold again, then rung
    assert router.kinds() == ["ENTERQUEUE", "RING", "COMPLETEAGENT"]
    assert fake.exec_calls[0][1][0] == "PJSIP/agent103"
    assert _order(orders).agent == "agent103"
    assert flow.active == {}


def test_callback_agent_free_during_entry_connects_at_once(cfg):
    """An agent is offered the call while the caller is keying a number: no further round is
    started, the caller is rung through to the agent instead of being called back."""
    router = FakeRouter([None, None], callback_key="1")
    fake, _orders, _ = _virtual_hold(
        cfg, router, _keys(confirm_or_enter=["12"]),
        stream_file=_agent_frees_up_on(router, "callback-number-invalid"))
    assert _prompts(fake, "GET DATA")[0] == "callback-confirm-or-enter"
    assert "callback-confirm-or-enter" not in _prompts(fake, "GET DATA")[1:]
    assert "callback-number-failed" not in _prompts(fake)
    assert router.kinds() == ["ENTERQUEUE", "RING", "COMPLETEAGENT"]


def test_callback_agent_free_while_keying_skips_the_read_back(cfg):
    """An agent is offered the call while the caller keys another number: the number is not
    read back (the agent would wait through it), the caller is rung through instead."""
    router = FakeRouter([None, None], callback_key="1")
    keys = _keys(confirm_or_enter=["01055512345"], confirm_or_reenter=["1"])

    def get_data(prompt, timeout_ms, max_digits):
        answer = keys(prompt, timeout_ms, max_digits)
        if prompt.endswith("callback-confirm-or-enter"):
            router.offers.append(_offer("agent103"))
        return answer

    fake, _orders, _ = _virtual_hold(cfg, router, get_data)
    asked = [p for p in _prompts(fake, "GET DATA") if p.startswith("callback-")]
    assert asked == ["callback-confirm-or-enter"]
    assert "callback-you-entered" not in _prompts(fake)
    assert fake.calls("SAY DIGITS") == [("5550199", "")]  # only the caller ID, before
    assert router.kinds() == ["ENTERQUEUE", "RING", "COMPLETEAGENT"]


@pytest.mark.parametrize("prompt", ["confirm_or_enter", "confirm_or_reenter"])
def test_callback_hangup_during_entry_leaves_the_queue(cfg, prompt):
    """Hanging up while confirming or keying the number is an abandon in the queue, as on
    hold: the call leaves the line, no callback is kept, the order is marked abandoned."""
    router = FakeRouter([None, None], callback_key="1")
    keys = {"confirm_or_enter": ["01055512345"], "confirm_or_reenter": []}
    keys[prompt] = [HANGUP]
    _fake, orders, flow = _virtual_hold(cfg, router, _keys(**keys))
    assert "CALLBACKREQUEST" not in router.kinds()
    assert router.events[-1] == ("ABANDON", CALL, "queue")
    assert _order(orders).outcome == "abandoned"
    assert flow.active == {}


@pytest.mark.parametrize(("callerid", "rule"), [
    ("anonymous", CallbackNumber()),
    ("", CallbackNumber()),
    ("5550199", CallbackNumber(prefixes=("01",))),  # dialable, but not a number we call
])
def test_callback_without_a_usable_caller_id_asks_for_a_number(cfg, callerid, rule):
    """A withheld or undialable caller ID (or one outside the queue's number rule) is never
    read back nor kept: the caller is asked for the number to call, which is read back and
    confirmed."""
    router = FakeRouter([None, None], callback_key="1", callback_number=rule)
    fake, _orders, _ = _virtual_hold(cfg, router, _keys(
        enter_number=["01055512345"], confirm_or_reenter=["1"]), callerid=callerid)
    assert _prompts(fake, "GET DATA") == ["callback-enter-number", "callback-confirm-or-reenter"]
    assert "callback-number-is" not in _prompts(fake)
    assert fake.calls("SAY DIGITS") == [("01055512345", "")]
    assert router.events[-1] == ("CALLBACKREQUEST", CALL, "01055512345")


def test_callback_key_refused_keeps_the_caller_waiting(cfg):
    """When the router refuses the callback (an agent was just offered the call) the caller
    stays on the line and is connected to that agent."""
    router = FakeRouter([_offer("agent103")], callback_key="1", accept_callback=False)
    fake, orders, _ = hotline_call(cfg, router, {
        "STREAM FILE": ["3", None, "1"],
        "GET VARIABLE": _dial_vars("ANSWER"),
        "GET DATA": [None],
    }, env={"uniqueid": "1700000000.7", "callerid": "5550199"})
    assert "CALLBACKREQUEST" not in router.kinds()
    assert _order(orders).agent == "agent103"
    assert fake.exec_calls[0][0] == "Dial"


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
    order names the agent. Dial ignores connected-line updates (``I``), so the agent's phone
    keeps showing the customer from the originate instead of the customer leg's default
    identity (the extension ``s``)."""
    router = FakeRouter()
    router.callbacks["c1"] = Callback("c1", "agent103", "5550199", 0, 25)
    fake, order = _callback_call(router, _trunk_and_dial("ANSWER"))
    assert fake.exec_calls == [("Dial", ["PJSIP/5550199@trunk1", "25", "gIU(hotline-answered)"])]
    steps = [e[3] for e in router.events if e[0] == "CALLBACK"]
    assert steps == ["agent_answered", "customer_answered"]
    assert router.kinds()[-1] == "COMPLETECALLER"
    assert order.agent == "agent103"
    assert any("callback attempt 1" in str(h) for h in order.history)
    assert fake.variables["HOTLINE_NEXT"] == "done"


@pytest.mark.parametrize(
    ("caller_id", "option"),
    [
        (CallbackCallerId("+8215885000", "ACME Hotline"), "f(ACME Hotline <+8215885000>)"),
        (CallbackCallerId("1588"), "f(<1588>)"),
        # Defence in depth: a name the schema would refuse never reaches Dial.
        (CallbackCallerId("1588", 'Evil "x" (y), z'), "f(<1588>)"),
        (CallbackCallerId("1588;x"), ""),
        (None, ""),
    ],
)
def test_callback_flow_presents_the_hotline_to_the_customer(cfg, caller_id, option):
    """The customer leg shows the hotline (the queue's ``callback.caller_id`` or the number
    the caller dialled, as the router resolved it) with Dial's ``f(...)`` option, on that leg
    only; without one it keeps the agent leg's caller ID (the customer's own number). The
    option crosses to Asterisk through the application-argument escaping: Dial sees exactly
    these options, and the AGI line carries them escaped."""
    router = FakeRouter()
    router.callbacks["c1"] = Callback("c1", "agent103", "5550199", 0, 25, caller_id=caller_id)
    fake, _ = _callback_call(router, _trunk_and_dial("ANSWER"))
    assert fake.exec_calls == [
        ("Dial", ["PJSIP/5550199@trunk1", "25", "gIU(hotline-answered)" + option])]
    (line,) = [raw for raw in fake.lines if raw.startswith(b'"EXEC"')]
    assert rb"gIU\\(hotline-answered\\)" in line  # app escaping, then AGI quoting
    if option:
        assert rb"\\)f\\(" in line and b"\n" not in line[:-1]


def test_hotline_flow_keeps_the_number_dialled_with_the_call(cfg):
    """The number the caller dialled (``agi_dnid``) goes with the queued call, for the
    callback's caller ID; Asterisk's ``unknown`` (a Local or originated channel) and anything
    but digits with an optional leading + are kept as "" (unknown)."""
    for dnid, kept in (("+8215885000", "+8215885000"), ("1588", "1588"), ("unknown", ""),
                       ("1588;x", ""), ("", "")):
        router = FakeRouter([_offer("agent103")])
        requests = []
        enqueue = router.enqueue

        async def remember(call, enqueue=enqueue, requests=requests):
            requests.append(call)
            return await enqueue(call)

        router.enqueue = remember
        hotline_call(cfg, router, {"STREAM FILE": ["3"], "GET VARIABLE": _dial_vars("ANSWER"),
                            "GET DATA": [None]},
              env={"uniqueid": "1700000000.7", "dnid": dnid})
        assert [r.dialled_number for r in requests] == [kept], dnid


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
    _fake, orders, _ = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "GET VARIABLE": _dial_vars("ANSWER"), "GET DATA": [None],
    })
    assert _order(orders).menu_path == ("3",)
    assert router.kinds()[0] == "ENTERQUEUE"


def test_redis_away_after_the_answer_keeps_the_assignee_and_the_survey(cfg):
    """Redis goes away while the caller talks with agent103: routing cannot be told how the
    ring ended nor that the conversation is over, yet the work order records the answer
    (assignee, in progress), the survey runs and the dialplan is told done. Routing settles
    the agent by itself once Redis is back (its sweep, routing/live_sweep.py)."""
    router = FakeRouter([_offer("agent103")])

    def conversation(*_args):
        router.away = True  # redis-server dies while they talk
        return 0

    fake, orders, flow = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "EXEC": conversation, "GET VARIABLE": _dial_vars("ANSWER"),
        "GET DATA": ["4", "8"],
    })
    order = _order(orders)
    assert order.agent == "agent103" and order.status.value == "in_progress"
    assert [h.event for h in order.history][:4] == ["create", "update", "assign", "start"]
    assert (order.csat, order.nps) == (4, 8)
    assert router.kinds() == ["ENTERQUEUE"]  # nothing reached routing after the answer
    assert fake.variables["HOTLINE_NEXT"] == "done"
    assert fake.agi_status == "SUCCESS"
    assert flow.active == {}


def test_redis_away_when_the_agent_did_not_answer_never_rings_them_again(cfg):
    """Redis goes away while agent101's phone rings unanswered: the call cannot be put back
    in line, so the flow ends (the dialplan sends the caller to the operator, AGISTATUS)
    rather than ring the same agent again on an offer routing still shows; the order notes
    nothing false (no assignee)."""
    router = FakeRouter([_offer("agent101")])

    def ringing(*_args):
        router.away = True
        return 0

    fake = FakeAsterisk(env={"uniqueid": "1700000000.8"}, clock=task.Clock(), answers={
        "STREAM FILE": ["3"], "EXEC": ringing, "GET VARIABLE": _dial_vars("NOANSWER", "0"),
        "WAIT FOR DIGIT": None,
    })
    orders = InMemoryWorkOrders()
    flow = HotlineFlow(config=lambda: cfg, workorders=orders, router=router, clock=fake.clock,
                       sound=lambda name: f"/sounds/{name}")
    done = fake.run(flow)
    failure_of(done, ConnectionError)
    assert [app for app, _ in fake.exec_calls] == ["Dial"]
    assert _order(orders).agent is None
    assert flow.active == {}

# --- Redis away while the caller waits: the caller stays in line (ivr/flows/hotline/queue.py).
# What a call centre expects: the music on while routing is asked again every poll; an
# outage that ends puts the call back on its way to an agent; one that outlasts the grace
# (STORE_AWAY_GRACE_S) or the queue's own max_wait_s overflows the call to the operator. The
# work order is made once either way.


class AwayOnceQueued(FakeRouter):
    """Reachable until the call is queued; then the next ``failures`` calls fail (or every
    call, with ``failures=None``): Redis dies right after ENTERQUEUE."""

    def __init__(self, offers: list[Offer | None], failures: int | None,
                 max_wait_s: float | None = None) -> None:
        super().__init__(offers, max_wait_s=max_wait_s)
        self.failures = failures

    async def enqueue(self, call: CallRequest) -> QueueEntry:
        entry = await super().enqueue(call)
        if self.failures is None:
            self.away = True
        else:
            self.fail_next = self.failures
        return entry


class LosesTheQueuedCall(FakeRouter):
    """Redis acknowledges the call's ENTERQUEUE and then loses it (killed before its
    append-only file had it, or a failover to a replica without it): every poll finds no
    record of the call until it is queued again."""

    def __init__(self, offers: list[Offer | None]) -> None:
        super().__init__(offers)
        self.queued_with: list[CallRequest] = []

    async def enqueue(self, call: CallRequest) -> QueueEntry:
        entry = await super().enqueue(call)
        self.queued_with.append(call)
        if len(self.queued_with) == 1:
            self.forget(call.call_id)
        return entry


def test_a_queued_call_the_store_lost_is_queued_again_at_its_place(cfg: SimpleNamespace) -> None:
    """Routing's store loses the waiting call: without a record no dispatcher would ever
    offer it and the caller would hold until they hung up. The flow queues it again with the
    request it was queued with (arrival time kept: its place and its wait bound), the music
    on, and the agent then offered is rung. One work order, the agent's."""
    router = LosesTheQueuedCall([None, _offer("agent103")])
    fake, orders, flow = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "GET VARIABLE": _dial_vars("ANSWER"), "GET DATA": ["5", "9"],
    })
    first, again = router.queued_with
    assert again == first
    assert router.kinds() == ["ENTERQUEUE", "ENTERQUEUE", "RING", "COMPLETEAGENT"]
    assert fake.exec_calls == [("Dial", ["PJSIP/agent103", "15", "gU(hotline-answered)"])]
    (order,) = orders.orders.values()
    assert order.agent == "agent103" and order.status.value == "in_progress"
    assert ("SET", "MUSIC", "on", "default") in _music(fake)
    assert fake.variables["HOTLINE_NEXT"] == "done"
    assert flow.active == {}


def _music(fake: FakeAsterisk) -> list[tuple[str, ...]]:
    return [words for words in fake.commands if words[:2] == ("SET", "MUSIC")]


def test_an_outage_at_the_first_dispatch_keeps_the_caller_in_line(cfg: SimpleNamespace) -> None:
    """Redis cannot be reached for the queue's first dispatch and the next polls (eight calls
    fail): the flow does not end; the caller hears the hold prompt and music, routing is asked
    again every poll, and once it answers the offered agent is rung. One work order, answered
    by the agent; the dialplan is told done, not sent to the operator."""
    router = AwayOnceQueued([_offer("agent103")], failures=8)
    fake, orders, flow = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "GET VARIABLE": _dial_vars("ANSWER"), "GET DATA": ["5", "9"],
    })
    assert router.failed == 8
    (order,) = orders.orders.values()
    assert order.agent == "agent103" and order.status.value == "in_progress"
    assert fake.exec_calls == [("Dial", ["PJSIP/agent103", "15", "gU(hotline-answered)"])]
    assert fake.variables["HOTLINE_NEXT"] == "done"
    assert ("SET", "MUSIC", "on", "default") in _music(fake)
    assert fake.agi_status == "SUCCESS"
    assert flow.active == {}


def test_an_outage_longer_than_the_queue_wait_overflows_to_the_operator(
    cfg: SimpleNamespace,
) -> None:
    """Redis stays unreachable from the moment the call is queued, in a queue whose wait
    (max_wait_s 10 s) ends before the grace: the caller is kept in line (music) until the
    queue's wait has passed, not a poll less, then goes to the operator with the operator
    prompt; the work order is made once and says overflow. Nobody is rung: no offer came
    from the store."""
    assert STORE_AWAY_GRACE_S > 10.0
    router = AwayOnceQueued([_offer("agent103")], failures=None, max_wait_s=10.0)
    fake, orders, flow = hotline_call(cfg, router, {"STREAM FILE": ["3"]})
    queued_at = 0.0  # the fake's clock starts at 0 and only music on hold advances it
    assert fake.clock.seconds() - queued_at >= 10.0
    assert fake.clock.seconds() - queued_at < 11.0
    (order,) = orders.orders.values()
    assert order.outcome == "overflow-operator"
    assert fake.exec_calls == []
    assert fake.variables["HOTLINE_NEXT"] == "operator"
    assert router.kinds() == ["ENTERQUEUE"]  # the overflow could not be told either
    assert fake.agi_status == "SUCCESS"
    assert flow.active == {}


def test_an_outage_past_the_grace_sends_the_caller_to_the_operator_before_the_queue_wait(
    cfg: SimpleNamespace,
) -> None:
    """Redis stays unreachable from the moment the call is queued, in a queue that would let
    the caller wait 600 s: after STORE_AWAY_GRACE_S of outage the caller goes to the operator
    (a human, not music nobody can end); the order says overflow."""
    router = AwayOnceQueued([_offer("agent103")], failures=None, max_wait_s=600.0)
    fake, orders, _ = hotline_call(cfg, router, {"STREAM FILE": ["3"]})
    assert STORE_AWAY_GRACE_S <= fake.clock.seconds() < STORE_AWAY_GRACE_S + 1
    (order,) = orders.orders.values()
    assert order.outcome == "overflow-operator"
    assert fake.exec_calls == []
    assert fake.variables["HOTLINE_NEXT"] == "operator"


def test_the_store_back_before_the_queue_wait_is_over_cancels_the_overflow(
    cfg: SimpleNamespace,
) -> None:
    """An outage of 20 polls (about 10 s) in a queue whose wait is 30 s: the caller is still
    in line when Redis is back, and goes to the agent routing offers, not to the operator."""
    router = AwayOnceQueued([None, _offer("agent101")], failures=20, max_wait_s=30.0)
    fake, orders, _ = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "GET VARIABLE": _dial_vars("ANSWER"), "GET DATA": ["4", "8"],
    })
    (order,) = orders.orders.values()
    assert order.agent == "agent101"
    assert fake.variables["HOTLINE_NEXT"] == "done"


def test_a_hangup_in_line_while_the_store_is_away_is_recorded_on_the_order(
    cfg: SimpleNamespace,
) -> None:
    """The caller hangs up while Redis is unreachable: routing cannot be told (its sweep
    settles the call later), yet the flow ends cleanly and the work order says abandoned."""
    router = AwayOnceQueued([], failures=None)
    polls = iter([None, None, HANGUP])

    fake, orders, flow = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "WAIT FOR DIGIT": lambda _timeout: next(polls),
    })
    (order,) = orders.orders.values()
    assert order.outcome == "abandoned"
    assert fake.exec_calls == []
    assert flow.active == {}


def test_an_outage_when_the_call_joins_the_queue_holds_it_until_routing_takes_it(
    cfg: SimpleNamespace,
) -> None:
    """Redis cannot be reached when the call is to join the queue (six calls fail: the
    resume check and five enqueues): the caller hears the music while the call is offered to
    routing again every poll; it is queued once, when Redis is back, and reaches the agent.
    One work order; the dialplan is told done."""
    router = FakeRouter([_offer("agent103")])
    router.fail_next = 6
    fake, orders, flow = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "GET VARIABLE": _dial_vars("ANSWER"), "GET DATA": ["5", "9"],
    })
    assert router.failed == 6
    assert router.kinds()[0] == "ENTERQUEUE" and router.kinds().count("ENTERQUEUE") == 1
    (order,) = orders.orders.values()
    assert order.agent == "agent103" and order.queue == "general"
    assert fake.exec_calls == [("Dial", ["PJSIP/agent103", "15", "gU(hotline-answered)"])]
    assert fake.variables["HOTLINE_NEXT"] == "done"
    assert flow.active == {}


def test_a_call_routing_never_takes_goes_to_the_operator_after_the_hold_bound(
    cfg: SimpleNamespace,
) -> None:
    """Redis stays unreachable from the call's start: the order is made (spooled, in the
    service), the caller holds with music for STORE_AWAY_GRACE_S while the call is offered to
    routing again and again, then goes to the operator; the order says overflow."""
    router = FakeRouter([_offer("agent103")])
    router.away = True
    fake, orders, _ = hotline_call(cfg, router, {"STREAM FILE": ["3"]})
    assert STORE_AWAY_GRACE_S <= fake.clock.seconds() < STORE_AWAY_GRACE_S + 1
    (order,) = orders.orders.values()
    assert order.outcome == "overflow-operator"
    assert router.kinds() == []
    assert fake.exec_calls == []
    assert fake.variables["HOTLINE_NEXT"] == "operator"


def test_a_hangup_while_the_call_waits_to_join_the_queue_ends_the_flow_cleanly(
    cfg: SimpleNamespace,
) -> None:
    """The caller hangs up while Redis is away and the call is still being offered to the
    queue: the flow ends without an error (routing cannot be told; nothing was queued) and
    the call leaves the flow's table."""
    router = FakeRouter([])
    router.away = True
    polls = iter([None, None, HANGUP])
    fake, orders, flow = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "WAIT FOR DIGIT": lambda _timeout: next(polls),
    })
    assert fake.flow_failure is None
    assert router.kinds() == []
    assert len(orders.orders) == 1
    assert flow.active == {}
