"""Routing config files: the shipped defaults validate; errors name file, key path, reason."""

import copy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from routing import core
from routing.schema import RoutingConfigError, load_routing_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def _files():
    return [yaml.safe_load((CONFIG_DIR / f"{n}.yaml").read_text())
            for n in ("queues", "agents", "routing")]


def test_shipped_config_loads():
    """config/queues.yaml, agents.yaml and routing.yaml validate and convert to the core."""
    cfg = load_routing_config(*_files())
    assert set(cfg.agents) == {"agent101", "agent102", "agent103", "agent104"}
    assert [cfg.agents[a].endpoint for a in sorted(cfg.agents)] == [
        "PJSIP/agent101", "PJSIP/agent102", "PJSIP/agent103", "PJSIP/agent104"]
    fault = cfg.rule_for("fault")
    assert [str(s.skills) for s in fault.steps] == ["network >= 4", "network >= 2", "general"]
    assert fault.step_starts == (0.0, 20.0, 40.0)
    assert cfg.rule_for("operator").queue == core.OPERATOR
    assert cfg.queues["billing"].service_level == core.ServiceLevelTarget(0.8, 20.0, 5.0)
    assert cfg.pause_reasons >= core.SYSTEM_PAUSE_REASONS
    # Every request type's first step is served by at least one configured agent.
    for rule in cfg.rules.values():
        if rule.queue != core.OPERATOR:
            assert any(rule.steps[0].skills.fit(a.skills) for a in cfg.agents.values()), rule


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda q, a, r: q["queues"]["billing"].update(skills="billing >= 9"),
         "queues.yaml: queues.billing.skills: levels run 1-5"),
        (lambda q, a, r: q["queues"]["billing"]["service_level"].update(target_pct=120),
         "queues.yaml: queues.billing.service_level.target_pct: Input should be less than"),
        (lambda q, a, r: q["queues"]["billing"].update(overflow="nowhere"),
         "queues.yaml: queues.billing.overflow: unknown queue 'nowhere'"),
        (lambda q, a, r: q["queues"]["billing"].update(colour="red"),
         "queues.yaml: queues.billing.colour: Extra inputs are not permitted"),
        (lambda q, a, r: a["agents"]["agent101"]["skills"].update(billing=7),
         "agents.yaml: agents.agent101.skills.billing: Input should be less than or equal to 5"),
        (lambda q, a, r: a["agents"]["agent101"].update(endpoint="agent101"),
         "agents.yaml: agents.agent101.endpoint: 'agent101' is not a softphone endpoint"),
        (lambda q, a, r: a["agents"]["agent102"].update(endpoint="PJSIP/agent101"),
         "agents.yaml: agents.agent102.endpoint: PJSIP/agent101 is also agent agent101's"),
        (lambda q, a, r: a["agents"]["agent101"].update(schedule={"mon": ["17:00-08:00"]}),
         "agents.yaml: agents.agent101.schedule: mon: '17:00-08:00' is not an interval"),
        (lambda q, a, r: a["agents"]["agent101"].update(schedule={"monday": ["08:00-17:00"]}),
         "agents.yaml: agents.agent101.schedule: unknown weekday 'monday'"),
        (lambda q, a, r: a.update(timezone="Asia/Nowhere"),
         "agents.yaml: timezone: unknown time zone 'Asia/Nowhere'"),
        (lambda q, a, r: a.update(timezone="Asia"),
         "agents.yaml: timezone: unknown time zone 'Asia'"),
        (lambda q, a, r: r["rules"]["fault"]["steps"][0].update(skills="network >="),
         "routing.yaml: rules.fault.steps.0.skills: expected a level after '>='"),
        (lambda q, a, r: r["rules"]["fault"]["steps"][0].pop("timeout_s"),
         "routing.yaml: rules.fault.steps: step 0 needs timeout_s"),
        (lambda q, a, r: r["rules"]["fault"].update(queue="nope"),
         "routing.yaml: rules.fault.queue: unknown queue 'nope'"),
        (lambda q, a, r: r["rules"].pop("other"),
         "routing.yaml: rules: a rule for 'other' is required"),
        (lambda q, a, r: r.update(urgency_boost={"high": 10}),
         "routing.yaml: urgency_boost: unknown urgencies ['high']"),
        (lambda q, a, r: r.update(pause_reasons=["lunch"]),
         "routing.yaml: pause_reasons: must include the reasons"),
        (lambda q, a, r: q["queues"]["billing"]["callback"]["number"].update(
            min_digits=12, max_digits=10),
         "queues.yaml: queues.billing.callback.number: min_digits (12) is more than "
         "max_digits (10)"),
        (lambda q, a, r: q["queues"]["billing"]["callback"]["number"].update(prefixes=["+82"]),
         "queues.yaml: queues.billing.callback.number.prefixes.0: String should match"),
        (lambda q, a, r: q["queues"]["billing"]["callback"]["number"].update(
            prefixes=["0123456789"], max_digits=10),
         "queues.yaml: queues.billing.callback.number: prefixes: '0123456789' leaves no digit"),
        (lambda q, a, r: q["queues"]["billing"]["callback"]["number"].update(retries=0),
         "queues.yaml: queues.billing.callback.number.retries: Input should be greater than"),
        (lambda q, a, r: q["queues"]["billing"]["callback"]["number"].update(digits=10),
         "queues.yaml: queues.billing.callback.number.digits: Extra inputs are not permitted"),
    ],
)
def test_errors_name_file_key_and_reason(edit, expected):
    """Each kind of mistake is refused with a message naming file, key path and reason."""
    q, a, r = copy.deepcopy(_files())
    edit(q, a, r)
    with pytest.raises(RoutingConfigError) as info:
        load_routing_config(q, a, r)
    assert any(expected in m for m in info.value.messages), info.value.messages


def test_schedule_and_timezone_convert_to_the_core():
    """A schedule becomes minute intervals per weekday (0 = Monday, 24:00 = 1440) and the
    time zone a ZoneInfo; without ``timezone`` the machine's zone is used (``None``)."""
    q, a, r = copy.deepcopy(_files())
    assert load_routing_config(q, a, r).timezone is None
    a["timezone"] = "Asia/Seoul"
    a["agents"]["agent101"]["schedule"] = {"mon": ["08:00-12:00", "13:00-24:00"],
                                           "sun": ["00:00-06:30"]}
    cfg = load_routing_config(q, a, r)
    assert cfg.timezone == ZoneInfo("Asia/Seoul")
    assert cfg.agents["agent101"].schedule == {0: ((480, 720), (780, 1440)), 6: ((0, 390),)}
    assert cfg.agents["agent102"].schedule == {}


def test_simulator_refuses_weekly_schedules():
    """The simulator has no calendar (its working hours are shifts): a scenario whose agents
    file has weekly schedules is refused rather than simulated as if always on schedule."""
    from routing import simulator

    q, a, r = copy.deepcopy(_files())
    a["agents"]["agent103"]["schedule"] = {"mon": ["09:00-17:00"]}
    data = {"duration_s": 3600, "routing": {"queues": q, "agents": a, "routing": r},
            "traffic": [{"request_type": "fault", "per_hour": 10,
                         "handle": {"dist": "exponential", "mean_s": 180}}]}
    with pytest.raises(ValueError, match="agent103: weekly schedules are not simulated"):
        simulator.scenario_from_dict(data)
    del a["agents"]["agent103"]["schedule"]
    assert simulator.scenario_from_dict(data).agents


def test_callback_number_rule_converts_to_the_core():
    """``callback.number`` becomes the core's CallbackNumber; a queue without it gets the
    defaults (7-15 digits, any prefix, 3 rounds, 6 s per key)."""
    q, a, r = copy.deepcopy(_files())
    q["queues"]["billing"]["callback"]["number"] = {
        "min_digits": 9, "max_digits": 11, "prefixes": ["01", "02"], "retries": 2,
        "timeout_s": 4}
    cfg = load_routing_config(q, a, r)
    assert cfg.queues["billing"].callback.number == core.CallbackNumber(
        9, 11, ("01", "02"), 2, 4.0)
    assert cfg.queues["faults"].callback.number == core.CallbackNumber()


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("0105551234", None),
        ("+0105551234", None),
        ("01055512", "fewer than 9 digits"),
        ("010555123456", "more than 11 digits"),
        ("0305551234", "does not start with 01 or 02"),
        ("010555*234", "not only digits"),
        ("０１０５５５１２３４", "not only digits"),
        ("", "not only digits"),
    ],
)
def test_callback_number_problem_says_why(number, problem):
    """A callback number is digits only (a caller ID's leading + aside), within the length
    and the prefixes; otherwise the reason is given (logged by the IVR)."""
    rule = core.CallbackNumber(min_digits=9, max_digits=11, prefixes=("01", "02"))
    assert rule.problem(number) == problem


def test_callback_caller_id_converts_to_the_core():
    """``callback.caller_id`` becomes the core's CallbackCallerId (name optional); a queue
    without it presents the number the caller dialled when it is known, else nothing (the
    customer leg keeps the customer's own number)."""
    q, a, r = copy.deepcopy(_files())
    q["queues"]["billing"]["callback"]["caller_id"] = {"number": "+8215885000",
                                                       "name": "ACME Hotline"}
    q["queues"]["faults"]["callback"] = {"caller_id": {"number": "15885000"}}
    cfg = load_routing_config(q, a, r)
    billing = cfg.queues["billing"].callback
    assert billing.caller_id == core.CallbackCallerId("+8215885000", "ACME Hotline")
    assert billing.presented("1588") == billing.caller_id  # configured beats dialled
    assert cfg.queues["faults"].callback.caller_id == core.CallbackCallerId("15885000", "")
    general = cfg.queues["general"].callback
    assert general.caller_id is None
    assert general.presented("+8215881234") == core.CallbackCallerId("+8215881234")
    assert general.presented("") is None
    assert general.presented("s") is None


@pytest.mark.parametrize(
    ("caller_id", "expected"),
    [
        ({"number": "1588-5000"}, "callback.caller_id.number: String should match pattern"),
        ({"number": "++1588"}, "callback.caller_id.number: String should match pattern"),
        ({"number": "1"}, "callback.caller_id.number: String should match pattern"),
        ({"name": "Hotline"}, "callback.caller_id.number: Field required"),
        ({"number": "1588", "name": 'A "B"'}, "callback.caller_id.name: 'A \"B\"' may not"),
        ({"number": "1588", "name": "A <1>"}, "callback.caller_id.name: 'A <1>' may not"),
        ({"number": "1588", "name": "A (B)"}, "callback.caller_id.name: 'A (B)' may not"),
        ({"number": "1588", "name": "A,B"}, "callback.caller_id.name: 'A,B' may not"),
        ({"number": "1588", "name": "A\nB"}, "callback.caller_id.name: 'A\\nB' may not"),
        ({"number": "1588", "name": " A"}, "callback.caller_id.name: ' A' has leading"),
        ({"number": "1588", "name": "x" * 41}, "callback.caller_id.name: String should have"),
        ({"number": "1588", "label": "x"}, "callback.caller_id.label: Extra inputs"),
    ],
)
def test_callback_caller_id_errors_name_file_key_and_reason(caller_id, expected):
    """A caller ID the customer's phone could not show as written is refused at load, with
    file, key path and reason: a number of digits (optional leading +), a name without
    characters that Dial's option parser or ``ast_callerid_parse`` would read differently."""
    q, a, r = copy.deepcopy(_files())
    q["queues"]["billing"]["callback"]["caller_id"] = caller_id
    with pytest.raises(RoutingConfigError) as exc:
        load_routing_config(q, a, r)
    assert any(m.startswith(f"queues.yaml: queues.billing.{expected}")
               for m in exc.value.messages), exc.value.messages


def test_start_notice_names_queues_whose_callbacks_present_no_configured_caller_id():
    """Logged once at start: queues offering callbacks without ``callback.caller_id`` show
    customers the number they dialled, or their own where Asterisk did not know it; queues
    with callbacks off or a caller ID set are not named, and with none left nothing is said."""
    from callbacks.flow import caller_id_notice

    q, a, r = copy.deepcopy(_files())
    for queue in q["queues"].values():
        queue["callback"] = {"caller_id": {"number": "15885000"}}
    q["queues"]["general"]["callback"] = {}
    q["queues"]["faults"]["callback"] = {"enabled": False}
    notice = caller_id_notice(load_routing_config(q, a, r))
    assert notice.startswith("queues.yaml: callback.caller_id not set for general: ")
    assert "their own number" in notice
    q["queues"]["general"]["callback"] = {"caller_id": {"number": "15885000"}}
    assert caller_id_notice(load_routing_config(q, a, r)) == ""
