"""scripts/score_unseen_shapes.py: its arguments and its table (the scoring itself is servegym score's, tested
in test_agents / test_shipped_agents)."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "score_unseen_shapes.py"
spec = importlib.util.spec_from_file_location("score_unseen_shapes", SCRIPT)
unseen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(unseen)


def test_parse_args__names_an_unknown_shape_and_bad_seeds(capsys):
    with pytest.raises(SystemExit):
        unseen.parse_args(["runs/x", "--shapes", "bursty,sawtooth"])
    assert "['sawtooth'] not among" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        unseen.parse_args(["runs/x", "--seeds", "0,a"])
    assert "--seeds '0,a'" in capsys.readouterr().err
    args = unseen.parse_args(["runs/x", "--shapes", "ramp", "--seeds", "0,2"])
    assert args.shapes == ["ramp"] and args.seeds == [0, 2] and args.policies == list(unseen.DEFAULT_POLICIES)


def test_markdown__sorts_by_cost_and_compares_with_the_tuned_rule():
    rows = [
        {
            "shape": "ramp",
            "policy": "tuned-rule",
            "kind": "baseline",
            "runs": 0,
            "cost": 2000.0,
            "cost_min_run": 2000.0,
            "cost_max_run": 2000.0,
            "slo_violation_rate": 0.1,
            "gpu_hours": 300.0,
        },
        {
            "shape": "ramp",
            "policy": "ppo-scaled",
            "kind": "agent",
            "runs": 3,
            "cost": 1500.0,
            "cost_min_run": 1400.0,
            "cost_max_run": 1600.0,
            "slo_violation_rate": 0.02,
            "gpu_hours": 250.0,
        },
    ]
    text = unseen.markdown(rows, {"date": "2026-12-02T12:00:00+00:00", "commit": "abcdef1234"})
    lines = [line for line in text.splitlines() if line.startswith("| ramp")]
    assert lines[0] == "| ramp | `ppo-scaled` | agent | 1,500 [1,400, 1,600] | -25.0 % | 2.00 % | 250 |"
    assert lines[1] == "| ramp | `tuned-rule` | baseline | 2,000 | +0.0 % | 10.00 % | 300 |"
