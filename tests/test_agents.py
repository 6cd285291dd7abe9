"""Training, resuming, the SB3 adapter, scoring and the leaderboard, on 2-hour (8-step) episodes."""

import dataclasses
import json
import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.rl
pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

from adapter_checks import assert_adapter_plays_as_trained  # noqa: E402

from servegym.agents import checkpoints  # noqa: E402
from servegym.agents.action_wrappers import HeadroomAction, UnitBoxAction  # noqa: E402
from servegym.agents.adapter import SB3Policy, parse_sb3_spec  # noqa: E402
from servegym.agents.leaderboard import BEGIN, END, LeaderboardError, format_leaderboard, update_markdown  # noqa: E402
from servegym.agents.oracle_references import (  # noqa: E402
    REFERENCE_RULE,
    ReferenceMismatchError,
    ReferenceSet,
    build_reference,
)
from servegym.agents.scoring import (  # noqa: E402
    SCORE_COLUMNS,
    SUMMARY_COLUMNS,
    OracleNotice,
    ScoreError,
    env_settings,
    normalised_score,
    score,
    seed_statistics,
    summarise,
)
from servegym.agents.train import algorithm_class, train, train_from_config  # noqa: E402
from servegym.agents.train_config import RunFolderError, TrainConfig, TrainConfigError, make_base_env  # noqa: E402
from servegym.baselines.runner.episodes import run_episode  # noqa: E402
from servegym.cli import main  # noqa: E402

DAY = "2024-05-16-thu"
SHORT = {"horizon_hours": 2.0}
TINY_PPO = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}


def tiny_config(out_dir, algo="maskable_ppo", action="native", total=128, **changes) -> TrainConfig:
    settings = {"env_kwargs": SHORT, "hyperparameters": TINY_PPO, "eval_freq": 64, "checkpoint_freq": 64, **changes}
    return TrainConfig(out_dir=str(out_dir), algo=algo, action=action, total_timesteps=total, n_envs=1, **settings)


@pytest.fixture(scope="module")
def maskable_run(tmp_path_factory):
    config = tiny_config(tmp_path_factory.mktemp("runs") / "maskable")
    train(config)
    return config


def test_train__ppo_and_maskable_ppo_save_model_config_checkpoints_and_logs(tmp_path, maskable_run):
    ppo = tiny_config(tmp_path, algo="ppo", total=256)
    result = train(ppo)
    assert (result.start_timesteps, result.num_timesteps) == (0, 256)
    assert result.validation_timesteps == (64, 128, 192, 256)
    for config in (ppo, maskable_run):
        run = Path(config.out_dir)
        for name in (
            "config.json",
            "model.zip",
            "vecnormalize.json",
            "result.json",
            "evaluations.npz",
            "best/model.zip",
        ):
            assert (run / name).is_file(), name
        assert any((run / "tb").rglob("events.out.tfevents.*"))
        assert checkpoints.checkpoint_steps(checkpoints.latest_checkpoint(run)) == config.total_timesteps
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["train"]["algo"] == "ppo" and saved["train"]["env_kwargs"] == SHORT
    assert saved["hyperparameters_resolved"]["n_steps"] == 64 and saved["hyperparameters_resolved"]["gamma"] == 0.99
    assert {"python", "stable-baselines3", "torch", "servegym"} <= set(saved["versions"])


def test_train__resume_continues_from_the_checkpoint_step_count(tmp_path):
    first = train(tiny_config(tmp_path, total=128))
    assert first.num_timesteps == 128
    resumed = train(tiny_config(tmp_path, total=256), require_checkpoint=True)
    assert (resumed.start_timesteps, resumed.num_timesteps) == (128, 256)
    assert resumed.validation_timesteps == (64, 128, 192, 256)  # the first session's evaluations are kept
    steps = sorted(checkpoints.checkpoint_steps(f) for f in (tmp_path / "checkpoints").iterdir())
    assert steps == [192, 256]  # the latest two are kept
    assert algorithm_class("maskable_ppo").load(tmp_path / "model.zip").num_timesteps == 256


def test_train__an_interrupt_writes_no_checkpoint_and_the_next_run_resumes_the_latest(tmp_path, monkeypatch):
    def interrupt(self):
        if self.num_timesteps == 96:
            raise KeyboardInterrupt
        return True

    monkeypatch.setattr(checkpoints.CheckpointCallback, "_on_step", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, total=256))
    assert checkpoints.checkpoint_steps(checkpoints.latest_checkpoint(tmp_path)) == 64  # not mid-rollout (96)
    monkeypatch.undo()
    resumed = train(tiny_config(tmp_path, total=160))
    assert (resumed.start_timesteps, resumed.num_timesteps) == (64, 192)


def test_train__refuses_to_resume_with_other_settings_or_without_a_checkpoint(tmp_path, maskable_run):
    changed = dataclasses.replace(maskable_run, seed=1)
    with pytest.raises(TrainConfigError, match=r"cannot resume with different settings \(seed: saved 0, now 1\)"):
        train(changed)
    with pytest.raises(RunFolderError, match="no checkpoint to resume from"):
        train(tiny_config(tmp_path / "empty"), require_checkpoint=True)
    with pytest.raises(TrainConfigError, match="action 'headroom' not supported by maskable_ppo"):
        tiny_config(tmp_path, action="headroom")


def test_adapter__a_saved_model_acts_through_sb3_policy_in_run_episode(maskable_run):
    env = make_base_env(maskable_run)
    policy = SB3Policy(env.unwrapped, maskable_run.out_dir)
    record, periods = run_episode(env, policy, seed=0, options={"day": DAY})
    assert len(periods) == 8 and np.isfinite(record["total_cost"])
    obs, info = env.reset(seed=1)
    policy.reset(1)
    action = policy.act(obs, info)
    offsets = np.concatenate([[0], np.cumsum(env.action_space.nvec)[:-1]])
    assert env.action_space.contains(action) and info["action_mask"][offsets + action].all()
    assert SB3Policy(env.unwrapped, maskable_run.out_dir, which="best").name == "maskable_ppo-native"


@pytest.mark.parametrize(("algo", "action"), [("ppo", "delta"), ("ppo", "headroom"), ("recurrent_ppo", "scaled")])
def test_adapter__converts_actions_exactly_as_the_training_wrappers(tmp_path, algo, action):
    config = tiny_config(
        tmp_path, algo=algo, action=action, total=64, hyperparameters={"n_steps": 32, "batch_size": 32}, eval_freq=64
    )
    train(config)
    assert_adapter_plays_as_trained(config, DAY)


def test_adapter__a_recurrent_model_keeps_its_memory_within_an_episode_and_starts_each_episode_empty(tmp_path):
    config = tiny_config(
        tmp_path, algo="recurrent_ppo", action="scaled", total=64, hyperparameters={"n_steps": 32, "batch_size": 32}
    )
    train(config)
    env = make_base_env(config)
    policy = SB3Policy(env.unwrapped, tmp_path)
    first, periods = run_episode(env, policy, seed=5, options={"day": DAY})
    hidden = policy._memory[0]
    assert hidden.shape == (1, 1, 64) and np.abs(hidden).max() > 0  # (layers, envs, lstm_hidden_size)
    again, _ = run_episode(env, policy, seed=5, options={"day": DAY})  # reset() cleared the memory of episode 1
    assert again["total_cost"] == first["total_cost"] and len(periods) == 8


def test_adapter__rejects_an_env_whose_spaces_differ(maskable_run):
    env = make_base_env(dataclasses.replace(maskable_run, env_kwargs={**SHORT, "max_candidates": 8}))
    with pytest.raises(ValueError, match=r"the model's observation space .* differs from the env's"):
        SB3Policy(env.unwrapped, maskable_run.out_dir)


def test_adapter__parses_sb3_policy_specs():
    assert parse_sb3_spec("sb3:runs/a") == (Path("runs/a"), "final")
    assert parse_sb3_spec("sb3:runs/a@best") == (Path("runs/a"), "best")
    assert parse_sb3_spec("sb3:runs/a@b") == (Path("runs/a@b"), "final")


def test_unit_box_action__maps_the_unit_box_onto_the_headroom_bounds_exactly():
    env = UnitBoxAction(HeadroomAction(make_base_env(TrainConfig(out_dir="", env_kwargs=SHORT)), planner="gh"))
    inner = env.env.action_space
    assert np.array_equal(env.action(np.ones(inner.shape)), inner.high)
    assert np.array_equal(env.action(-np.ones(inner.shape)), inner.low)
    assert inner.contains(env.action(np.full(inner.shape, 0.999999, np.float32)))


def test_normalised_score__is_0_at_the_reference_100_at_the_oracle_and_undefined_unless_the_oracle_is_cheaper():
    assert normalised_score(7.0, 7.0, 5.0) == 0.0
    assert normalised_score(7.0, 5.0, 5.0) == 100.0
    assert normalised_score(7.0, 6.0, 5.0) == 50.0
    assert normalised_score(7.0, 9.0, 5.0) == -100.0
    assert math.isnan(normalised_score(5.0, 6.0, 5.0))  # a tie: no scale
    # An oracle dearer than the reference (Drift's unpolished oracle on one episode) would invert the scale: a policy
    # at 20 times the reference's cost would score far above 100.
    assert math.isnan(normalised_score(6_234.0, 142_372.0, 6_299.0))
    with pytest.raises(ScoreError, match="finite"):
        normalised_score(5.0, math.inf, 4.0)


def test_summarise__leaves_undefined_episodes_out_of_the_score_not_the_cost_and_the_caption_says_so():
    rows = []
    for policy, kind, costs in (
        ("agh-static", "reference", (10.0, 6.0)),
        ("oracle", "oracle", (5.0, 7.0)),
        ("rule", "baseline", (7.5, 60.0)),
    ):
        for episode, cost in enumerate(costs):
            reference, oracle = (10.0, 6.0)[episode], (5.0, 7.0)[episode]
            rows.append(
                {
                    "policy": policy,
                    "kind": kind,
                    "run_dir": "",
                    "training_seed": pd.NA,
                    "env_id": "servegym/X-v0",
                    "env_settings": "{}",
                    "day": f"d{episode}",
                    "seed": 0,
                    "total_cost": cost,
                    "slo_violation_rate": 0.0,
                    "delay_violation_rate": 0.0,
                    "unserved_rate": 0.0,
                    "gpu_hours": 1.0,
                    "normalised_score": normalised_score(reference, cost, oracle),
                    "reference": "agh-static",
                    "oracle": "oracle",
                    "oracle_source": "shipped",
                    "oracle_gap": 0.0,
                }
            )
    summary = summarise(pd.DataFrame(rows)).set_index("policy")
    assert summary.loc["rule", "score"] == pytest.approx(50.0)  # episode d1 (oracle dearer) has no score
    assert summary.loc["rule", "cost"] == pytest.approx(33.75) and summary.loc["rule", "scored_episodes"] == 1
    caption = format_leaderboard(
        summary.reset_index(), reference="agh-static", oracle="oracle", days=["d0", "d1"], seeds=[0]
    )
    assert "Scores `servegym/X-v0` on 1 of its 2 episodes" in caption


def test_score__returns_the_documented_columns_and_scores_reference_0_and_oracle_100_on_the_toy(tmp_path):
    pytest.importorskip("servegym.baselines.milp.oracle")
    # Queueing off: with it the toy's oracle (whose MILP does not price queueing) costs more than static AGH, and
    # every episode's score would be undefined.
    config = tiny_config(
        tmp_path,
        total=64,
        env_kwargs={**SHORT, "scenario": "toy", "queueing": False},
        hyperparameters={"n_steps": 32, "batch_size": 32},
    )
    train(config)
    with pytest.warns(OracleNotice, match="no shipped oracle reference"):
        table = score([tmp_path], days=[DAY], seeds=[0, 1])
    assert tuple(table.columns) == SCORE_COLUMNS
    assert list(table["kind"].drop_duplicates()) == ["reference", "oracle", "baseline", "agent"]
    by_kind = table.groupby("kind")["normalised_score"]
    assert (by_kind.min()["reference"], by_kind.max()["reference"]) == (0.0, 0.0)
    assert (by_kind.min()["oracle"], by_kind.max()["oracle"]) == (100.0, 100.0)
    agent = table[table["kind"] == "agent"]
    assert set(agent["policy"]) == {"maskable_ppo-native"} and set(agent["training_seed"]) == {0}
    assert set(table["env_settings"]) == {'{"horizon_hours": 2.0, "queueing": false, "scenario": "toy"}'}
    summary = summarise(table)
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary.set_index("policy").loc["maskable_ppo-native", ["runs", "episodes"]].tolist() == [1, 2]


def test_score__refuses_a_setting_where_the_oracle_is_never_cheaper_than_the_reference(tmp_path):
    # The 100 point played by the reference itself (``oracle="agh-static"``): C_oracle = C_ref on every episode.
    config = tiny_config(
        tmp_path, total=64, env_kwargs={**SHORT, "scenario": "toy"}, hyperparameters={"n_steps": 32, "batch_size": 32}
    )
    train(config)
    with pytest.raises(ScoreError, match="undefined on every episode"):
        score([tmp_path], days=[DAY], seeds=[0], oracle="agh-static")


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A run on the toy instance with queueing off (the env then charges the oracle exactly its MILP cost), and
    its shipped oracle reference on DAY, seed 0."""
    config = tiny_config(
        tmp_path_factory.mktemp("runs") / "toy",
        total=64,
        env_kwargs={**SHORT, "scenario": "toy", "queueing": False},
        hyperparameters={"n_steps": 32, "batch_size": 32},
    )
    train(config)
    env = gym.make(config.env_id, **config.env_kwargs)
    record = build_reference(env, config.env_id, 0, {"day": DAY}, env_settings=env_settings(config))
    env.close()
    return config, ReferenceSet((record,), REFERENCE_RULE.to_dict(), {"name": "highs"}, path="toy-refs.json")


def test_score__the_shipped_oracle_scores_100_and_the_reference_0_on_the_hand_checked_toy(toy_run):
    config, references = toy_run
    (record,) = references.episodes
    table = score([config.out_dir], days=[DAY], seeds=[0], baselines=["gh-rolling"], references=references)
    oracle = table[table["kind"] == "oracle"].iloc[0]
    assert oracle["oracle_source"] == "shipped"
    # oracle_gap: how far the oracle played may lie above the proven bound (here at the optimum: 0).
    expected_gap = max(0.0, (oracle["total_cost"] - record.bound) / oracle["total_cost"])
    assert oracle["oracle_gap"] == pytest.approx(expected_gap, abs=1e-12) and expected_gap < 1e-9
    # The oracle's cost is its proven-optimal MILP objective (queueing off), a computation apart from the env's.
    assert record.gap == 0.0 and oracle["total_cost"] == pytest.approx(record.milp_objective, rel=1e-9)
    c_ref = table.loc[table["kind"] == "reference", "total_cost"].iloc[0]
    by_hand = [100.0 * (c_ref - c) / (c_ref - oracle["total_cost"]) for c in table["total_cost"]]
    assert table["normalised_score"].tolist() == pytest.approx(by_hand, rel=1e-12)
    assert table.set_index("kind").loc[["reference", "oracle"], "normalised_score"].tolist() == [0.0, 100.0]
    assert set(table["reference"]) == {"agh-static"} and set(table["oracle"]) == {"oracle"}
    summary = summarise(table)
    assert set(summary["oracle_source"]) == {"shipped×1"} and set(summary["reference"]) == {"agh-static"}
    caption = format_leaderboard(summary, reference="agh-static", oracle="oracle", days=[DAY], seeds=[0])
    assert "Oracle episodes: `servegym/Provisioning-v3 " in caption
    assert "shipped×1 (≤ 0.00 % above the proven bound)" in caption


def test_score__recompute_checks_the_shipped_oracle_and_fails_outside_its_gap(toy_run):
    config, references = toy_run
    (record,) = references.episodes
    table = score([config.out_dir], days=[DAY], seeds=[0], baselines=[], references=references, recompute_oracle=True)
    assert list(table.loc[table["kind"] == "oracle", "oracle_source"]) == ["recomputed"]
    moved = ReferenceSet((dataclasses.replace(record, oracle_cost=record.oracle_cost * 1.05, where="refs: $.e[0]"),))
    with pytest.raises(ReferenceMismatchError, match=r"refs: \$\.e\[0\]: a fresh oracle solve costs"):
        score([config.out_dir], days=[DAY], seeds=[0], baselines=[], references=moved, recompute_oracle=True)
    with pytest.raises(ReferenceMismatchError, match=r"refs: \$\.e\[0\]\.oracle_cost: the shipped schedule now costs"):
        score([config.out_dir], days=[DAY], seeds=[0], baselines=[], references=moved)


def test_score__an_episode_without_a_shipped_oracle_is_solved_fresh_with_a_notice(toy_run):
    config, _ = toy_run
    with pytest.warns(OracleNotice, match=r"no shipped oracle reference \(none\.json\) for .*2024-05-16-thu/s1"):
        table = score([config.out_dir], days=[DAY], seeds=[1], baselines=[], references=ReferenceSet(path="none.json"))
    assert list(table.loc[table["kind"] == "oracle", "oracle_source"]) == ["fresh"]
    assert table.loc[table["kind"] == "oracle", "normalised_score"].tolist() == [100.0]


def test_score__without_the_oracle_module_fails_naming_it(maskable_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "servegym.baselines.milp.oracle", None)
    with pytest.raises(ModuleNotFoundError, match=r"needs the oracle policy from servegym\.baselines\.milp\.oracle"):
        score([maskable_run.out_dir], days=[DAY], seeds=[0])


def test_seed_statistics__bootstrap_interval_and_iqm_need_enough_runs():
    assert all(math.isnan(v) for v in seed_statistics(np.array([3.0])))
    low, high, iqm = seed_statistics(np.array([1.0, 2.0, 3.0, 4.0]))
    assert 1.0 <= low < 2.5 < high <= 4.0 and math.isnan(iqm)
    assert seed_statistics(np.array([1.0, 2.0, 3.0, 4.0])) == (low, high, iqm)  # seeded: reproducible
    assert seed_statistics(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))[2] == pytest.approx(3.0)  # IQM of the middle half
    low, high, iqm = seed_statistics(np.array([5.0, 5.0]))
    assert (low, high) == (5.0, 5.0) and math.isnan(iqm)


def test_leaderboard__replaces_only_the_marked_block(tmp_path):
    values = {
        **{"policy": "m", "kind": "agent", "env_id": "servegym/Provisioning-v3", "env_settings": "{}"},
        **{"runs": 2, "episodes": 4, "score": 12.5, "score_std": 3.0, "score_seed_std": 1.0},
        **{"score_ci_low": 11.8, "score_ci_high": 13.2, "score_iqm": float("nan"), "cost": 150.0, "cost_std": 5.0},
        **{"slo_violation_rate": 0.02, "delay_violation_rate": 0.01, "unserved_rate": 0.0, "gpu_hours": 40.0},
    }
    summary = pd.DataFrame([values], columns=list(SUMMARY_COLUMNS))
    table = format_leaderboard(summary, reference="agh-static", oracle="oracle", days=[DAY], seeds=[0, 1])
    row = (
        "| `servegym/Provisioning-v3` | `m` | agent | 2 | 12.5 | 3.0 | 1.0 | [11.8, 13.2] | 150 | 2.00 % | 0.00 % | 40 "
    )
    assert row + "|" in table
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n")
    update_markdown(doc, table)
    assert doc.read_text() == f"intro\n{BEGIN}\n{table}{END}\noutro\n"
    doc.write_text("no markers\n")
    with pytest.raises(LeaderboardError, match="needs the lines"):
        update_markdown(doc, table)


def test_cli__evaluate_plays_an_sb3_run_beside_the_baselines(maskable_run, tmp_path, capsys):
    out = tmp_path / "evaluate"
    policies = f"gh-rolling,sb3:{maskable_run.out_dir}@best"
    assert main(["evaluate", "--policies", policies, "--out", str(out), "--no-progress"]) == 0
    episodes = pd.read_csv(out / "episodes.csv")
    assert set(episodes["policy"]) == {"gh-rolling", f"sb3:{maskable_run.out_dir}@best"}


def test_cli__train_and_score(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--algo", "ppo", "--action", "delta", "--timesteps", "64", "--n-envs", "2", "--out", str(run)]
    args += ["--env-kwargs", json.dumps(SHORT), "--hyperparameters", '{"n_steps": 32, "batch_size": 64}']
    assert main([*args, "--eval-freq", "32", "--checkpoint-freq", "32"]) == 0, "with SB3's progress bar (tqdm + rich)"
    assert "trained ppo-delta (seed 0) to 64 steps" in capsys.readouterr().out
    out = tmp_path / "score"
    argv = ["score", "--model", str(run), "--days", DAY, "--seeds", "0", "--oracle", "gh-rolling", "--out", str(out)]
    assert main([*argv, "--policies", "", "--no-progress"]) == 0
    assert list(pd.read_csv(out / "scores.csv").columns) == list(SCORE_COLUMNS)
    assert (out / "leaderboard.md").read_text().startswith("Normalised score")
    assert main([*argv, "--recompute-oracle", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "--recompute-oracle re-solves the oracle; --oracle gh-rolling is a baseline, not it" in error


def test_cli__train_several_seeds_writes_one_run_folder_per_seed(tmp_path, capsys):
    from servegym.agents.train_config import load_run_config

    args = ["train", "--algo", "ppo", "--action", "delta", "--total-timesteps", "32", "--n-envs", "1"]
    args += ["--seeds", "3,5", "--out", str(tmp_path / "run-s{seed}"), "--env-kwargs", json.dumps(SHORT)]
    args += ["--hyperparameters", '{"n_steps": 32, "batch_size": 32}', "--eval-freq", "32", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "(seed 3) to 32 steps" in out and "(seed 5) to 32 steps" in out
    assert [load_run_config(tmp_path / f"run-s{seed}").seed for seed in (3, 5)] == [3, 5]


def test_train_from_config__runs_a_sweep_training_cell(tmp_path):
    from servegym.envs.settings import ScenarioConfig

    scenario = dataclasses.replace(ScenarioConfig.for_env_id("servegym/Provisioning-v3"), horizon_hours=2.0)
    cell = {
        "kind": "train",
        "servegym_version": "0.1.0",
        "name": "cell",
        "algorithm": "ppo",
        "total_timesteps": 64,
        "hyperparameters": {"n_steps": 32, "batch_size": 32, "eval_freq": 32, "checkpoint_freq": 32},
        "scenario": {k: v for k, v in scenario.to_dict().items() if k != "days"},
        "seed": 0,
    }
    metrics = train_from_config(cell, tmp_path)
    assert metrics["num_timesteps"] == 64 and len(metrics["validation_curve"]) == 2
    saved = json.loads((tmp_path / "config.json").read_text())["train"]
    assert (
        saved["n_envs"] == 1
        and saved["eval_freq"] == 32
        and saved["hyperparameters"] == {"n_steps": 32, "batch_size": 32}
    )
    assert train_from_config(cell, tmp_path)["start_timesteps"] == 64  # a finished cell does not train again


def test_learning_curves_script__writes_the_curves_and_the_baselines_rewards(maskable_run, tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "learning_curves.py"
    spec = importlib.util.spec_from_file_location("learning_curves", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "curves"
    assert module.main([maskable_run.out_dir, "--baselines", "gh-rolling", "--seeds", "0", "--out", str(out)]) == 0
    payload = json.loads(out.with_suffix(".json").read_text())
    result = json.loads((Path(maskable_run.out_dir) / "result.json").read_text())
    assert payload["curves"][0]["timesteps"] == result["validation_timesteps"]
    assert payload["baselines"]["gh-rolling"] < 0
    assert out.with_suffix(".png").stat().st_size > 0 and "gh-rolling" in out.with_suffix(".md").read_text()


def test_load_run_config__a_config_lacking_a_setting_is_refused_not_defaulted(maskable_run, tmp_path):
    from servegym.agents.train_config import load_run_config

    payload = json.loads((Path(maskable_run.out_dir) / "config.json").read_text())
    del payload["train"]["headroom_max_payback_periods"]
    (tmp_path / "config.json").write_text(json.dumps(payload))
    with pytest.raises(RunFolderError, match=r"\$\.train lacks \['headroom_max_payback_periods'\]"):
        load_run_config(tmp_path)


def test_cli__train_and_score_on_your_own_trace(tmp_path, capsys):
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "requests-2days.csv.gz"
    run = tmp_path / "run"
    args = ["train", "--algo", "ppo", "--action", "delta", "--timesteps", "32", "--n-envs", "1", "--out", str(run)]
    args += ["--env-kwargs", json.dumps(SHORT), "--hyperparameters", '{"n_steps": 32, "batch_size": 32}']
    args += ["--demand", f"trace:{example}?split=train&rate_scale=20", "--eval-freq", "32", "--checkpoint-freq", "32"]
    assert main([*args, "--no-progress"]) == 0
    saved = json.loads((run / "config.json").read_text())["train"]["env_kwargs"]
    assert saved == {**SHORT, "demand": f"trace:{example}?split=train&rate_scale=20"}
    out = tmp_path / "score"
    test_day = f"trace:{example}?split=test&rate_scale=20"
    argv = ["score", "--model", str(run), "--demand", test_day, "--seeds", "0"]
    assert main([*argv, "--oracle", "gh-rolling", "--policies", "", "--out", str(out), "--no-progress"]) == 0
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["day"]) == {test_day} and len(scores) == 3
    capsys.readouterr()
    assert main([*argv, "--days", DAY, "--out", str(out)]) == 2
    assert "--demand and --days both given" in capsys.readouterr().err


def test_agents__slo_price_enters_the_training_reward_below_the_action_wrapper(tmp_path):
    from servegym.agents.train import _monitored_env

    def rewards(price: float) -> list[float]:
        env = _monitored_env(tiny_config(tmp_path, "ppo", "headroom", slo_price_per_request=price), None)
        env.reset(seed=0)
        action = np.zeros(env.action_space.shape, dtype=np.float32)
        return [env.step(action)[1] for _ in range(4)]

    free, priced, twice = rewards(0.0), rewards(0.01), rewards(0.02)
    charge = np.subtract(free, priced)
    assert np.all(charge > 0.0)  # the headroom action's plans miss some requests in every period
    np.testing.assert_allclose(np.subtract(free, twice), 2 * charge, rtol=1e-9)  # linear in the price
    config = tiny_config(tmp_path, slo_price_per_request=0.5)
    assert TrainConfig.from_dict(config.to_dict()).slo_price_per_request == 0.5
