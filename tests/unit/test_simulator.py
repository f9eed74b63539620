"""The simulator: validated against Erlang C and A, deterministic, same callers for every
policy, and the `ivr simulate` entry point."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from routing import erlang, simulator

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios"
POOLED = yaml.safe_load((SCENARIOS / "erlang_c_pooled.yaml").read_text())


def _pooled(**changes):
    data = copy.deepcopy(POOLED)
    for key, value in changes.items():
        data[key] = value
    return simulator.scenario_from_dict(data, base=SCENARIOS)


@pytest.mark.slow
def test_pooled_service_level_within_two_points_of_erlang_c():
    """14 agents, 200 calls/h, 180 s AHT, 20 s target: the simulated service level is within
    2 percentage points of Erlang C's 0.88835 (and ASA, occupancy close)."""
    scenario = simulator.load_scenario(SCENARIOS / "erlang_c_pooled.yaml")
    result = simulator.simulate(scenario, seed=7)["overall"]
    c = erlang.erlang_c(14, 200 / 3600, 180, 20)
    assert result["offered"] > 30_000
    assert abs(result["service_level"] - c.service_level) < 0.02
    assert abs(result["asa_s"] - c.asa) < 1.5
    assert abs(result["occupancy"] - c.occupancy) < 0.01


@pytest.mark.slow
def test_pooled_with_patience_matches_erlang_a():
    """With exponential patience (mean 300 s) the simulation matches exact Erlang A:
    service level within 2 points, abandonment within half a point."""
    data = copy.deepcopy(POOLED)
    data["traffic"][0]["patience"] = {"dist": "exponential", "mean_s": 300}
    scenario = simulator.scenario_from_dict(data, base=SCENARIOS)
    result = simulator.simulate(scenario, seed=3)["overall"]
    a = erlang.erlang_a(14, 200 / 3600, 180, 300, 20)
    assert abs(result["service_level"] - a.service_level) < 0.02
    assert abs(result["abandonment"] - a.abandonment) < 0.005
    assert abs(result["avg_wait_all_s"] - a.asa) < 1.0
    prediction = simulator.erlang_prediction(scenario)
    assert prediction["erlang_a"]["service_level"] == pytest.approx(a.service_level)


@pytest.mark.slow
def test_same_seed_same_result_and_identical_arrivals_across_policies():
    """A seed fixes the run; every policy sees the same callers (same offered count)."""
    scenario = simulator.load_scenario(SCENARIOS / "multi_skill.yaml")
    scenario.duration_s = 7200
    first = simulator.simulate(scenario, seed=5, policy="ours", replications=1)
    assert first == simulator.simulate(scenario, seed=5, policy="ours", replications=1)
    offered = {
        name: simulator.simulate(scenario, seed=5, policy=name, replications=1)["overall"][
            "offered"
        ]
        for name in simulator.POLICIES
    }
    assert len(set(offered.values())) == 1 and first["overall"]["offered"] == offered["ours"]


def test_every_call_accounted_for_with_rona_and_shifts():
    """With a 40% no-answer rate and agents whose shifts end early, every offered call ends
    answered, abandoned (short or counted) or overflowed, and RONA happens."""
    data = copy.deepcopy(POOLED)
    data["duration_s"] = 20_000
    data["replications"] = 1
    data["agents"] = [{"id": "day", "count": 10, "skills": {"general": 3}},
                      {"id": "early", "count": 6, "skills": {"general": 3},
                       "shifts": [[0, 10_000]]}]
    data["traffic"][0]["patience"] = {"dist": "exponential", "mean_s": 120}
    data["behaviour"] = {"no_answer_prob": 0.4, "answer_delay": {"dist": "uniform",
                                                                 "low_s": 1, "high_s": 5}}
    result = simulator.simulate(simulator.scenario_from_dict(data, base=SCENARIOS), seed=2)
    o = result["overall"]
    assert o["rona"] > 100
    assert o["answered"] + o["abandoned"] + o["abandoned_short"] + o["overflowed"] == o["offered"]


@pytest.mark.slow
def test_ours_beats_baselines_on_multi_skill():
    """On the multi-skill day our routing reaches a higher service level than the
    longest-idle fixed-skill baseline and the ring-all baseline on the same callers."""
    scenario = simulator.load_scenario(SCENARIOS / "multi_skill.yaml")
    sl = {name: simulator.simulate(scenario, seed=1, policy=name)["overall"]["service_level"]
          for name in simulator.POLICIES}
    assert sl["ours"] > sl["longest-idle"]
    assert sl["ours"] > sl["ring-all"]


def test_main_prints_json(tmp_path, capsys):
    """`ivr simulate FILE --policy all` prints one JSON document with every policy and the
    Erlang prediction; a missing file exits 2 with a message."""
    data = copy.deepcopy(POOLED)
    data["duration_s"] = 3600
    data["replications"] = 1
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    assert simulator.main([str(path), "--seed", "4", "--policy", "all"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["policies"]) == {"ours", "longest-idle", "ring-all"}
    assert out["prediction"]["erlang_c"]["service_level"] == pytest.approx(0.88835, abs=1e-5)
    assert "pool" in out["policies"]["ours"]["queues"]
    assert simulator.main([str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
