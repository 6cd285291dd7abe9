"""servegym.agents.action_analysis and scripts/analyse_agent_actions.py: what an action decides, the no-learning
control, the recorder, and the tables computed from a record (hand-computed on the toy instance)."""

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from servegym.agents.action_analysis import (
    RecordingPolicy,
    SettingRecord,
    controls_for,
    decision_table,
    fleet,
    mix_levels,
    paired_differences,
    policy_table,
)
from servegym.agents.action_wrappers import HeadroomAction, ScaledPlanAction
from servegym.agents.train_config import TrainConfig
from servegym.envs.outcome import COST_PARTS
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.toy import toy_instance

DAY = "2024-05-16-thu"


def toy_base() -> ProvisioningEnv:
    return ProvisioningEnv(instance=toy_instance(), demand="synthetic", period_minutes=60, horizon_hours=3)


def observe_forecast(env: ScaledPlanAction, forecast) -> None:
    obs, info = env.reset(seed=0)
    env.observe(obs, {**info, "forecast_per_hour": np.asarray(forecast, float)})


def test_scaled_decision__names_each_entry_and_the_mix_level_of_the_scaled_forecast():
    env = ScaledPlanAction(toy_base(), low=0.5, high=2.0, max_keep_margin=0.5, mix_levels=(0.4, 1.0))
    observe_forecast(env, [64.0, 16.0])  # 80 req/h = 0.4 of the nominal 200
    decided = env.decision(np.array([1.0, 1.0, 0.2]))
    assert decided == pytest.approx({"multiplier[0]": 1.0, "multiplier[1]": 1.0, "keep_margin": 0.2, "mix_level": 0.4})
    assert env.decision(np.array([2.0, 1.0, 0.0]))["mix_level"] == 1.0  # 144 req/h = 0.72 of nominal: level 1
    without_margin = ScaledPlanAction(toy_base(), low=0.5, high=2.0, max_keep_margin=0.0, mix_levels=(1.0,))
    observe_forecast(without_margin, [64.0, 16.0])
    assert set(without_margin.decision(np.array([1.0, 1.5]))) == {"multiplier[0]", "multiplier[1]", "mix_level"}


def test_headroom_decision__names_the_multipliers_and_the_payback_horizon():
    env = HeadroomAction(toy_base(), low=0.5, high=2.0, planner="gh", max_payback_periods=4.0)
    assert env.decision(np.array([0.9, 1.1, 3.0])) == pytest.approx(
        {"multiplier[0]": 0.9, "multiplier[1]": 1.1, "payback_periods": 3.0}
    )
    plain = HeadroomAction(toy_base(), low=0.5, high=2.0, planner="gh")
    assert plain.decision(np.array([0.9, 1.1])) == pytest.approx({"multiplier[0]": 0.9, "multiplier[1]": 1.1})


def test_controls_for__the_mix_rules_of_the_runs_mix_planners(tmp_path):
    scaled = TrainConfig(out_dir=str(tmp_path), algo="ppo", action="scaled", headroom_planner="agh")
    assert controls_for([scaled]) == ["agh-mix", "tuned-mix"]
    gh = dataclasses.replace(scaled, headroom_planner="gh")
    assert controls_for([gh]) == ["gh-mix"]
    assert controls_for([dataclasses.replace(scaled, action="headroom")]) == []
    assert controls_for([gh, scaled]) == ["agh-mix", "gh-mix", "tuned-mix"]


class FixedPolicy:
    name = "fixed"
    fallbacks = 0

    def __init__(self) -> None:
        self.resets = 0

    def reset(self, seed=None) -> None:
        self.resets += 1

    def act(self, obs, info):
        return np.array([0, 1, 0])


def test_recording_policy__keeps_one_record_per_period_per_episode_and_passes_the_replicas_through():
    base = toy_base()
    recorder = RecordingPolicy(FixedPolicy())
    for seed in (0, 1):
        obs, info = base.reset(seed=seed)
        recorder.reset(seed)
        done = False
        while not done:
            action = recorder.act(obs, info)
            obs, _, terminated, truncated, info = base.step(action)
            done = terminated or truncated
    assert recorder.inner.resets == 2 and recorder.name == "fixed" and recorder.fallbacks == 0
    assert [[row["period"] for row in episode] for episode in recorder.episodes] == [[0, 1, 2], [0, 1, 2]]
    assert all(row["replicas"].tolist() == [0, 1, 0] for episode in recorder.episodes for row in episode)


def toy_record(episodes: pd.DataFrame, decisions: pd.DataFrame, *, period_hours: float = 1.0, bounds=None):
    instance = dataclasses.replace(toy_instance(), period_hours=period_hours)
    return SettingRecord("toy", instance, episodes, pd.DataFrame(), decisions, bounds or {})


def episode_rows(rows):
    """Episode rows from (policy, label, kind, training seed, episode, total cost, rental)."""
    frame = pd.DataFrame(rows, columns=["policy", "label", "kind", "training_seed", "episode", "total_cost", "rental"])
    for part in COST_PARTS:
        if part != "rental":
            frame[part] = 0.0
    frame["delay_penalty"] = frame["total_cost"] - frame["rental"]
    frame["gpu_hours"] = 0.0
    frame["started_replicas"] = 0
    frame["slo_violation_rate"] = 0.0
    return frame


def test_fleet__gpu_hours_and_rental_by_gpu_type_and_model_by_hand():
    decisions = pd.DataFrame(
        [
            {"policy": "p", "episode": "e", "period": 0, "replicas": np.array([1, 1, 0])},
            {"policy": "p", "episode": "e", "period": 1, "replicas": np.array([0, 2, 1])},
        ]
    )
    row = fleet(toy_record(pd.DataFrame(), decisions, period_hours=0.5)).iloc[0]
    # replica-periods (1, 3, 1) × GPUs (1, 2, 1) × 0.5 h = (0.5, 3, 0.5) GPU-hours; cheap = configs 0 and 2.
    assert row["gpu_hours[cheap]"] == 1.0 and row["gpu_hours[fast]"] == 3.0
    assert row["rental[cheap]"] == 1.0 and row["rental[fast]"] == 4.5  # $1 and $1.5 per GPU-hour
    assert row["model_gpu_hours[m-small]"] == 1.0 and row["model_gpu_hours[m-big]"] == 3.0
    assert row["rental_recorded"] == 5.5


def test_policy_table__averages_runs_and_episodes_and_prices_the_gpu_hour():
    episodes = episode_rows(
        [
            ("a [s0]", "a", "agent", 0, "e1", 10.0, 6.0),
            ("a [s1]", "a", "agent", 1, "e1", 14.0, 8.0),
            ("r", "r", "rule", None, "e1", 11.0, 9.0),
        ]
    )
    decisions = pd.DataFrame(
        [
            {"policy": "a [s0]", "episode": "e1", "period": 0, "replicas": np.array([2, 0, 0])},
            {"policy": "a [s1]", "episode": "e1", "period": 0, "replicas": np.array([4, 0, 0])},
            {"policy": "r", "episode": "e1", "period": 0, "replicas": np.array([0, 1, 0])},
        ]
    )
    table = policy_table(toy_record(episodes, decisions)).set_index("label")
    assert table.loc["a", "total_cost"] == 12.0 and table.loc["a", "gpu_hours[cheap]"] == 3.0
    assert list(table.index) == ["r", "a"]  # cheapest first
    episodes["gpu_hours"] = [2.0, 4.0, 2.0]
    table = policy_table(toy_record(episodes, decisions)).set_index("label")
    assert table.loc["a", "rental_per_gpu_hour"] == pytest.approx(7.0 / 3.0)
    assert table.loc["r", "rental_per_gpu_hour"] == pytest.approx(4.5)


def test_paired_differences__agent_mean_over_seeds_minus_each_other_policy_per_episode():
    episodes = episode_rows(
        [
            ("a [s0]", "a", "agent", 0, "e1", 10.0, 6.0),
            ("a [s1]", "a", "agent", 1, "e1", 14.0, 8.0),  # agent mean on e1: 12, rental 7
            ("a [s0]", "a", "agent", 0, "e2", 20.0, 10.0),
            ("a [s1]", "a", "agent", 1, "e2", 20.0, 10.0),  # agent mean on e2: 20, rental 10
            ("r", "r", "rule", None, "e1", 11.0, 9.0),
            ("r", "r", "rule", None, "e2", 25.0, 12.0),
            ("agh-mix", "agh-mix", "control", None, "e1", 12.0, 7.0),
            ("agh-mix", "agh-mix", "control", None, "e2", 18.0, 9.0),
        ]
    )
    table = paired_differences(toy_record(episodes, pd.DataFrame())).set_index("versus")
    assert table.loc["r", "diff_total_cost"] == pytest.approx(((12 - 11) + (20 - 25)) / 2)  # -2
    assert table.loc["r", "diff_rental"] == pytest.approx(((7 - 9) + (10 - 12)) / 2)  # -2
    assert table.loc["r", "agent_cheaper"] == 1 and table.loc["r", "episodes"] == 2
    assert table.loc["agh-mix", "diff_total_cost"] == pytest.approx((0 + 2) / 2)
    assert table.loc["agh-mix", "agent_cheaper"] == 0  # a tie is not cheaper


def test_decision_table__block_means_and_bound_shares_by_hand():
    episodes = pd.DataFrame({"policy": ["a [s0]"], "episode": ["e"], "label": ["a"]})
    values = [0.8, 1.0, 1.2, 1.3]
    decisions = pd.DataFrame(
        [
            {"policy": "a [s0]", "episode": "e", "period": k, "multiplier[0]": m, "keep_margin": 0.1 * k}
            for k, m in enumerate(values)
        ]
    )
    record = toy_record(episodes, decisions, period_hours=6.0, bounds={"a": (0.8, 1.3)})  # one block per period
    table = decision_table(record).set_index("entry")
    row = table.loc["multiplier[0]"]
    assert row["mean"] == pytest.approx(1.075) and row["std"] == pytest.approx(np.std(values))
    assert [row[f"mean {h:02d}-{h + 6:02d} h"] for h in (0, 6, 12, 18)] == pytest.approx(values)
    assert row["at_low"] == 0.25 and row["at_high"] == 0.25
    assert table.loc["keep_margin", "mean"] == pytest.approx(0.15) and pd.isna(table.loc["keep_margin", "at_low"])


def test_mix_levels__share_of_periods_per_level_and_empty_without_scaled_decisions():
    episodes = pd.DataFrame({"policy": ["a [s0]"], "episode": ["e"], "label": ["a"]})
    decisions = pd.DataFrame(
        [
            {"policy": "a [s0]", "episode": "e", "period": k, "mix_level": level}
            for k, level in enumerate([0.4, 0.4, 1.0, 0.4])
        ]
    )
    shares = mix_levels(toy_record(episodes, decisions)).set_index("mix_level")["share"]
    assert shares.to_dict() == {0.4: 0.75, 1.0: 0.25}
    assert mix_levels(toy_record(episodes, decisions.drop(columns="mix_level"))).empty


def test_record_setting__a_shipped_agent_plays_as_in_the_leaderboard_and_its_record_adds_up():
    pytest.importorskip("stable_baselines3")
    from servegym.agents.action_analysis import AgentRun, record_setting
    from servegym.agents.adapter import check_run_folder
    from servegym.agents.shipped_agents import shipped_leaderboard_dir

    folder = shipped_leaderboard_dir()
    path = folder / "agents" / "ppo-scaled-Provisioning-v3-s0"
    record = record_setting([AgentRun(path, check_run_folder(path)[0])], rules=("agh-static",), seeds=(0,), days=[DAY])
    shipped = pd.read_csv(folder / "scores.csv")
    shipped = shipped[(shipped["env_id"] == record.env_id) & (shipped["day"] == DAY) & (shipped["seed"] == 0)]
    expected = {
        ("ppo-scaled", "agent"): shipped.loc[(shipped["policy"] == "ppo-scaled") & (shipped["training_seed"] == 0)],
        ("agh-static", "rule"): shipped.loc[shipped["policy"] == "agh-static"],
    }
    costs = record.episodes.set_index(["label", "kind"])["total_cost"]
    for key, rows in expected.items():
        assert costs[key] == pytest.approx(float(rows["total_cost"].iloc[0]), rel=1e-9)  # recording changes nothing
    assert set(record.episodes["label"]) == {"ppo-scaled", "agh-mix", "tuned-mix", "agh-static"}
    table = policy_table(record)
    gpus = [f"rental[{g}]" for g in record.instance.gpus]
    np.testing.assert_allclose(table[gpus].sum(axis=1), table["rental"], rtol=1e-9)  # no repair on this episode
    low, high = record.multiplier_bounds["ppo-scaled"]
    agent = record.decisions[record.decisions["policy"].str.startswith("ppo-scaled")]
    multipliers = agent[[c for c in agent.columns if c.startswith("multiplier[")]].to_numpy()
    assert len(agent) == 96 and ((multipliers >= low - 1e-6) & (multipliers <= high + 1e-6)).all()
    control = record.decisions[record.decisions["policy"] == "agh-mix"]
    assert (control["keep_margin"] == 0.0).all() and (control["multiplier[0]"] == 1.0).all()
    assert set(mix_levels(record)["mix_level"]) <= {0.4, 0.6, 0.8, 1.0}


SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "analyse_agent_actions.py"


def test_analyse_agent_actions_script__names_bad_arguments(capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("analyse_agent_actions", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(SystemExit):
        script.main(["--seeds", "0,x"])
    assert "--seeds '0,x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--rules", ","])
    assert "--rules" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--figure", "servegym/Provisioning-v3"])
    assert "give ENV_ID=EPISODE" in capsys.readouterr().err
    assert script.main([str(tmp_path / "missing")]) == 2
    assert "missing: no such run folder" in capsys.readouterr().err
