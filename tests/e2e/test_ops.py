"""The ops side against the real stack: ``ivr agent``, config reload on file change,
``ivr report`` and ``/metrics``, each with its own ``ivr serve`` (fixtures of
``test_hotline_calls.py``), Asterisk, redis-server and SIPp softphones.

The commands run as ops would run them: the ``ivr`` console script in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.checks import (
    call_gone,
    events,
    kinds,
    routing_leftovers,
    wait_for,
    workorder,
)

pytestmark = pytest.mark.e2e

IVR = Path(sys.executable).with_name("ivr")


def ivr(*argv: str, config: Path | None = None, env: Mapping[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """The ``ivr`` command; ``env``: the service's environment (its API token)."""
    command = [str(IVR)] if IVR.exists() else [sys.executable, "-m", "hotline.cli"]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run([*command, *argv], capture_output=True, text=True, timeout=60,
                          env=dict(env) if env is not None else None)


def queued(db, call_id: str) -> bool:
    return "ENTERQUEUE" in kinds(db, call_id)


def not_offered_for(agent, call_id: str, db, seconds: float) -> None:
    """The call stays waiting and the softphone never rings, over many dispatch rounds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert agent.count("INVITE") == 0
        assert call_id in routing_leftovers(db)
        time.sleep(0.25)


def log_has(service, text: str, timeout: float = 15) -> str:
    return wait_for(
        lambda: text in (log := service.log_path.read_text(errors="replace")) and log,
        timeout, f"{text!r} in the service log",
    )


def rewrite(path: Path, change: Any) -> None:
    """Edit a YAML file of the running service's config directory in place."""
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def metrics(service) -> dict[str, float]:
    with urllib.request.urlopen(service.url("/metrics"), timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("hotline_queue_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_paused_agent_is_not_offered_calls_until_resumed(
    hotline, agents, caller, asterisk, db
) -> None:
    """``ivr agent pause agent103 --reason break``: a fault call waits and agent103's phone
    does not ring; ``ivr agent resume agent103``: the waiting call rings it and is answered.
    A resume that the state refuses exits 1 with the reason; ``list`` shows the pause."""
    agent = agents("agent103", answer_after=0.3, hold_for=1.0)
    service = hotline(agents=("agent103",))
    api = ["--api", service.url("")]

    paused = ivr("agent", "pause", "agent103", "--reason", "break", *api, env=service.env)
    assert (paused.returncode, paused.stdout) == (0, "agent103: paused (break)\n")
    listed = ivr("agent", "list", "agent103", *api, env=service.env)
    assert listed.stdout.splitlines()[1].split() == ["agent103", "paused", "break"]

    call_id = caller("w2|d3")
    wait_for(lambda: queued(db, call_id), 40, "the call to be queued")
    not_offered_for(agent, call_id, db, seconds=3)

    resumed = ivr("agent", "resume", "agent103", *api, env=service.env)
    assert (resumed.returncode, resumed.stdout) == (0, "agent103: available\n")
    agent.wait_for("ANSWERED", timeout=20)
    again = ivr("agent", "resume", "agent103", *api, env=service.env)
    assert again.returncode == 1
    assert "resume refused: agent agent103 is" in again.stderr
    call_gone(asterisk, call_id)
    assert agent.answered == 1
    assert workorder(service, call_id)["agent"] == "agent103"
    seen = [e["kind"] for e in events(db) if e.get("agent") == "agent103"]
    assert seen.index("PAUSE") < seen.index("UNPAUSE") < seen.index("CONNECT")


def test_agent_command_without_a_service_says_so(tmp_path: Path) -> None:
    """Nothing listens on the API address: exit 3 and a message naming the address."""
    result = ivr("agent", "list", "--api", "http://127.0.0.1:9")
    assert result.returncode == 3
    assert "cannot reach the hotline service at http://127.0.0.1:9" in result.stderr


def test_bad_config_on_disk_is_refused_and_the_old_one_keeps_routing(
    hotline, agents, caller, asterisk, db
) -> None:
    """A routing.yaml naming a queue that does not exist is written into the running
    service's config directory: the service logs the refusal (file, key, reason) and calls
    are still routed by the config in force (the fault call reaches agent103)."""
    agent = agents("agent103", answer_after=0.3, hold_for=1.0)
    service = hotline(agents=("agent103",))
    rewrite(service.config_dir / "routing.yaml",
            lambda d: d["rules"]["fault"].update(queue="nowhere"))
    log = log_has(service, "config reload refused")
    refusal = log[log.index("config reload refused"):]
    assert "routing.yaml" in refusal and "nowhere" in refusal

    call_id = caller("w2|d3")
    call_gone(asterisk, call_id)
    assert agent.answered == 1
    order = workorder(service, call_id)
    assert (order["queue"], order["agent"]) == ("faults", "agent103")


def test_good_config_change_applies_to_a_call_already_waiting(
    hotline, agents, caller, asterisk, db
) -> None:
    """Fault calls need ``complaints >= 1`` (agent103 has none): the call waits unoffered.
    Relaxing the rule to ``network >= 2`` on disk is picked up without a signal, and the
    call already waiting is offered to agent103 at the next decision and answered."""
    agent = agents("agent103", answer_after=0.3, hold_for=1.0)
    service = hotline(agents=("agent103",), overrides={"routing.yaml": {"rules": {"fault": {
        "steps": [{"skills": "complaints >= 1"}]}}}})
    call_id = caller("w2|d3")
    wait_for(lambda: queued(db, call_id), 40, "the call to be queued")
    not_offered_for(agent, call_id, db, seconds=3)

    rewrite(service.config_dir / "routing.yaml",
            lambda d: d["rules"]["fault"].update(steps=[{"skills": "network >= 2"}]))
    log_has(service, "config reloaded from")
    agent.wait_for("ANSWERED", timeout=20)
    call_gone(asterisk, call_id)
    assert workorder(service, call_id)["agent"] == "agent103"


def test_report_over_a_real_call(
    hotline, agents, caller, asterisk, db, redis_server, tmp_path
) -> None:
    """One fault call answered by agent103: ``ivr report`` over the stream prints one offered
    and one answered call in faults, within target (service level 1, speed of answer the
    holdtime of the CONNECT event), and writes the chart as PNG and as HTML. The speed of
    answer ends when the agent answers, not when the 6 s conversation is over."""
    agents("agent103", answer_after=0.3, hold_for=6.0)
    service = hotline(agents=("agent103",))
    call_id = caller("w2|d3")
    call_gone(asterisk, call_id)
    connect = next(e for e in events(db, call_id) if e["kind"] == "CONNECT")

    png, page = tmp_path / "report.png", tmp_path / "report.html"
    result = ivr("report", "--hours", "1", "--interval", "5m", "--out", str(png),
                 "--redis", redis_server.url, config=service.config_dir)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    faults = summary["queues"]["faults"]
    assert (faults["offered"], faults["answered"], faults["answered_within"]) == (1, 1, 1)
    assert faults["service_level"] == 1.0
    assert faults["asa_s"] == round(float(connect["holdtime"]), 1)
    assert float(connect["holdtime"]) < 5
    assert faults["abandon_rate"] == 0.0
    assert summary["queues"]["billing"]["offered"] == 0
    assert [row["queue"] for row in summary["intervals"]] == ["faults"]
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    result = ivr("report", "--hours", "1", "--out", str(page), "--redis", redis_server.url,
                 config=service.config_dir)
    assert result.returncode == 0, result.stderr
    assert "data:image/png;base64," in page.read_text()


def test_metrics_show_queue_gauges(hotline, agents, caller, asterisk, db) -> None:
    """/metrics while agent103 is paused and a fault call waits: one call waiting, a
    growing longest wait, one paused agent; after resume and the answer: one answered today
    and a service level of 1 against the 0.9 target."""
    agent = agents("agent103", answer_after=0.3, hold_for=1.0)
    service = hotline(agents=("agent103",))
    assert service.post("/api/agents/agent103/pause?reason=break")[0] == 200
    call_id = caller("w2|d3")
    wait_for(lambda: queued(db, call_id), 40, "the call to be queued")
    waiting = wait_for(
        lambda: (m := metrics(service))
        and m.get('hotline_queue_calls_waiting{queue="faults"}') == 1
        and m['hotline_queue_longest_wait_seconds{queue="faults"}'] > 0 and m,
        10, "a waiting call in the gauges",
    )
    assert waiting['hotline_queue_agents{queue="faults",state="paused"}'] == 1
    assert waiting['hotline_queue_agents{queue="faults",state="available"}'] == 0
    assert waiting['hotline_queue_calls_waiting{queue="billing"}'] == 0
    assert waiting['hotline_queue_service_level_target{queue="faults"}'] == 0.9
    assert waiting["hotline_queue_report_age_seconds"] < 3

    assert service.post("/api/agents/agent103/resume")[0] == 200
    agent.wait_for("ANSWERED", timeout=20)
    answered = wait_for(
        lambda: (m := metrics(service))
        and m.get('hotline_queue_answered_today{queue="faults"}') == 1 and m,
        10, "the answer in the gauges",
    )
    assert answered['hotline_queue_service_level{queue="faults"}'] == 1.0
    assert answered['hotline_queue_calls_waiting{queue="faults"}'] == 0
    call_gone(asterisk, call_id)
