"""The evaluation figures: they draw a tiny periods table, the clock and the off-scale rule, stable colours."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import numpy as np
import pandas as pd
import pytest

from servegym.baselines.plots import (
    POLICY_COLOURS,
    POLICY_ORDER,
    Clock,
    episode_clock,
    off_scale,
    ordered_policies,
    plan_policy,
    plot_evaluation,
    plot_plan,
    policy_colour,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COSTS = {"gh-static": 10.0, "gh-rolling": 12.0, "agh-hold": 11.0, "random": 500.0}


def _tiny(num_periods: int = 4, episodes: tuple[str, ...] = ("2024-05-16-thu/s0",)) -> pd.DataFrame:
    rows = []
    for episode in episodes:
        for policy, cost in COSTS.items():
            for period in range(num_periods):
                rows.append(
                    {
                        "policy": policy,
                        "episode": episode,
                        "period": period,
                        "total_cost": cost + period,
                        "demand_per_hour": 1000.0 * (1 + period),
                        "gpus[L4]": 2.0,
                        "gpus[A100-40GB]": float(period % 2),
                        "gpus[H100-SXM]": 0.0,
                        "delay_violation_rate": 0.01 * period,
                        "error_violation_rate": 0.0,
                        "unserved_rate": 1e-15,
                        "slo_violation_rate": 0.01 * period,
                    }
                )
    return pd.DataFrame(rows)


def _episodes(periods: pd.DataFrame, period_hours: float, demand: str) -> pd.DataFrame:
    gpus = periods[[c for c in periods.columns if c.startswith("gpus[")]].sum(axis=1) * period_hours
    table = periods.assign(gpu_hours=gpus).groupby(["policy", "episode"], as_index=False)["gpu_hours"].sum()
    return table.assign(demand=demand)


@pytest.mark.parametrize("clock", [None, Clock(15.0, date(2024, 5, 16)), Clock(1440.0)])
def test_figures__write_a_png_of_a_tiny_table(tmp_path, clock):
    periods = _tiny(episodes=("2024-05-16-thu/s0", "2024-05-16-thu/s1"))
    for plot, name in ((plot_evaluation, "evaluate.png"), (plot_plan, "plan.png")):
        path = plot(periods, tmp_path / name, clock=clock)
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_figures__draw_the_asked_policy_and_episode_and_refuse_unknown_ones(tmp_path):
    periods = _tiny(episodes=("a/s0", "a/s1"))
    assert plot_plan(periods, tmp_path / "plan.png", policy="random", episode="a/s1").exists()
    assert plot_evaluation(periods, tmp_path / "evaluate.png", episode="a/s1").exists()
    with pytest.raises(ValueError, match="no periods of policy 'ppo'"):
        plot_plan(periods, tmp_path / "plan.png", policy="ppo")
    with pytest.raises(ValueError, match="no periods of episode 'b/s0'"):
        plot_evaluation(periods, tmp_path / "evaluate.png", episode="b/s0")


def test_off_scale_and_plan_policy__leave_out_random_and_static_planners():
    totals = _tiny().groupby("policy")["total_cost"].sum()
    assert off_scale(totals) == ["random"]
    assert plan_policy(totals) == "agh-hold"  # gh-static is cheaper but static
    assert plan_policy(totals[["gh-static"]]) == "gh-static"


def test_episode_clock__period_length_from_gpu_hours_and_first_day_from_the_label():
    periods = _tiny(num_periods=8)
    clock = episode_clock(_episodes(periods, 0.25, "azure 2024-05-12-sun to 2024-05-18-sat"), periods)
    assert clock == Clock(15.0, date(2024, 5, 12))
    assert clock.day_name(1) == "Mon 13 May"
    np.testing.assert_allclose(clock.hours([0, 4]), [0.0, 1.0])
    synthetic = episode_clock(_episodes(periods, 1 / 12, "synthetic σ=0.05"), periods)
    assert synthetic == Clock(5.0, None)
    assert synthetic.day_name(2) == "day 3"


def test_policy_colours__stable_distinct_for_known_names_and_the_same_in_a_fresh_process():
    assert len(set(POLICY_COLOURS.values())) == len(POLICY_COLOURS)
    assert set(POLICY_COLOURS) == set(POLICY_ORDER)
    names = ["gh-rolling", "random", "ppo", "my-agent"]
    here = [policy_colour(name) for name in names]
    code = f"from servegym.baselines.plots import policy_colour; print([policy_colour(n) for n in {names!r}])"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert there.strip() == repr(here)


def test_ordered_policies__fixed_order_then_unknown_names_alphabetically():
    assert ordered_policies(["random", "ppo", "agh-hold", "a2c", "gh-static", "agh-hold"]) == [
        "gh-static",
        "agh-hold",
        "random",
        "a2c",
        "ppo",
    ]
