"""ScaledPlanAction (the ``scaled`` action space): replicas in closed form from a fixed configuration mix, its
observation entries, its place in the trainer's stack and in the SB3 adapter."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest

from servegym.agents.action_wrappers import (
    FORECAST_ERROR_BOUND,
    LEAN_INFO_KEYS,
    SCALED_OBSERVATION_KEYS,
    ScaledPlanAction,
    UnitBoxAction,
)
from servegym.agents.train_config import (
    ADDED_FIELDS,
    ALGORITHMS,
    CONFIG_FILE,
    SCALED_MAX_KEEP_MARGIN,
    TrainConfig,
    TrainConfigError,
    load_run_config,
    make_base_env,
    wrap_action,
)
from servegym.baselines.runner.mix_rule import reference_shares
from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.toy import toy_instance
from servegym.envs.wrappers import EPISODE_INFO_KEYS

DAY = "2024-05-16-thu"
SHORT = {"horizon_hours": 2.0}


def toy_env(**kwargs) -> ScaledPlanAction:
    """The toy instance (envs/toy.py; replicas start instantly), 1-hour periods, 3 periods; the peak mix only."""
    env = ProvisioningEnv(instance=toy_instance(), demand="synthetic", period_minutes=60, horizon_hours=3)
    return ScaledPlanAction(env, **{"mix_levels": (1.0,), **kwargs})


def with_forecast(env: ScaledPlanAction, forecast, running=(0, 0, 0)) -> None:
    """Make the wrapper decide for a given forecast and running replicas (none of them starting)."""
    obs, info = env.reset(seed=0)
    info = {**info, "forecast_per_hour": np.asarray(forecast, float), "replicas": np.asarray(running, np.int64)}
    env.observe(obs, info)


def test_reference_shares__route_the_toy_peak_wholly_to_the_big_replica():
    # envs/toy.py: one big replica carries everything at the nominal demand, n = (0, 1, 0).
    np.testing.assert_array_equal(reference_shares(toy_instance()), [[0, 1, 0], [0, 1, 0]])


@pytest.mark.parametrize("planner", ["gh", "agh"])
def test_scaled_plan__at_nominal_demand_and_m_1_plays_the_mix_planners_own_plan(planner):
    # The closed form a_{i,c} · λ_i rounded up gives back the reference plan's replicas where its routes load each
    # replica at the design utilisation or below (the toy and a 2-hour default episode's candidates).
    from servegym.baselines.heuristics.adaptive import solve_agh
    from servegym.baselines.heuristics.greedy import solve_gh

    solve = solve_agh if planner == "agh" else solve_gh
    toy = toy_env(mix_planner=planner)
    inst = toy.unwrapped.instance
    with_forecast(toy, inst.demand_per_hour)
    margin = [0.0] if toy.max_keep_margin > 0 else []
    assert toy.replicas([1.0] * inst.num_query_types + margin).tolist() == solve(inst).plan.replicas.tolist()
    base = gym.make(DEFAULT_ENV_ID, **SHORT).unwrapped
    env = ScaledPlanAction(base, mix_levels=(1.0,), mix_planner=planner, max_keep_margin=0.0)
    inst = base.instance
    obs, info = env.reset(seed=0)
    env.observe(obs, {**info, "forecast_per_hour": np.asarray(inst.demand_per_hour, float)})
    plan = solve(inst).plan
    need = np.asarray(inst.demand_per_hour) @ env.replicas_per_request[0]
    np.testing.assert_array_less(need, plan.replicas + 1e-9)  # never more than the plan's replicas
    assert (np.ceil(need - 1e-9) <= plan.replicas).all()
    assert planner == "gh" or not np.array_equal(env.shares[0], reference_shares(inst, 1.0, "gh"))


def test_reference_shares__names_an_unknown_planner():
    with pytest.raises(ValueError, match="planner 'milp' not one of"):
        reference_shares(toy_instance(), 1.0, "milp")
    with pytest.raises(ValueError, match="mix_planner 'x' not one of"):
        toy_env(mix_planner="x")


def big(env: ScaledPlanAction, count: int) -> list[int]:
    """Replica counts with ``count`` big replicas and nothing else (in the env's candidate order)."""
    replicas = [0] * env.unwrapped.instance.num_configurations
    replicas[env.unwrapped.instance.configuration_names.index(BIG)] = count
    return replicas


BIG = toy_instance().configuration_names[1]


def test_scaled_plan__replica_counts_by_hand_on_the_toy():
    env = toy_env(low=0.5, high=2.0)
    # big: μ = 250 req/h per type, ρ_design 0.8, so a replica carries 200 req/h of the mix.
    with_forecast(env, [160.0, 40.0])
    assert env.replicas([1.0, 1.0, 0.0]).tolist() == big(env, 1)  # (160 + 40) / 200 = 1.0 → 1
    assert env.replicas([1.5, 1.0, 0.0]).tolist() == big(env, 2)  # (240 + 40) / 200 = 1.4 → 2
    assert env.replicas([2.0, 2.0, 0.0]).tolist() == big(env, 2)  # 400 / 200 = 2.0 → 2
    assert env.replicas([0.5, 0.5, 0.0]).tolist() == big(env, 1)  # 100 / 200 = 0.5 → 1
    with_forecast(env, [161.0, 40.0])
    assert env.replicas([1.0, 1.0, 0.0]).tolist() == big(env, 2)  # 201 / 200 → 2
    np.testing.assert_allclose(env.need(np.array([1.0, 1.0])), np.array(big(env, 1)) * 201.0 / 200.0)


def test_scaled_plan__picks_the_mix_of_the_smallest_level_at_or_above_the_demand():
    env = toy_env(low=0.5, high=2.0, mix_levels=(0.4, 1.0))
    inst = env.unwrapped.instance
    # At 0.4 × nominal (64 + 16 = 80 req/h) GH routes A to the small int4 replica, B to the small fp16 one.
    small = reference_shares(inst, 0.4)
    np.testing.assert_array_equal(env.shares[0], small)
    np.testing.assert_array_equal(env.shares[1], reference_shares(inst))
    assert not np.array_equal(small, env.shares[1])
    assert [env.mix_index(np.array([160.0, 40.0]) * share) for share in (0.1, 0.4, 0.41, 1.0, 1.5)] == [0, 0, 1, 1, 1]
    with_forecast(env, [64.0, 16.0])
    # A: 64 / (100 · 0.8) = 0.8 → 1 small int4; B: 16 / 80 = 0.2 → 1 small fp16; no big replica.
    names = toy_instance().configuration_names
    expected = {names[0]: 1, names[1]: 0, names[2]: 1}
    assert env.replicas([1.0, 1.0, 0.0]).tolist() == [expected[name] for name in inst.configuration_names]
    with pytest.raises(ValueError, match="mix_levels"):
        toy_env(mix_levels=(1.0, 0.5))


def test_scaled_plan__keep_margin_holds_scale_downs_only():
    env = toy_env(low=0.5, high=2.0, max_keep_margin=0.5)
    with_forecast(env, [240.0, 40.0], running=big(env, 3))  # need 1.4
    assert env.replicas([1.0, 1.0, 0.0]).tolist() == big(env, 2)  # no margin: scale down to ⌈1.4⌉
    assert env.replicas([1.0, 1.0, 0.2]).tolist() == big(env, 2)  # ⌈1.4 · 1.2⌉ = 2 < 3: scale down
    assert env.replicas([1.0, 1.0, 0.5]).tolist() == big(env, 3)  # ⌈1.4 · 1.5⌉ = 3: keep the 3 running
    with_forecast(env, [240.0, 40.0], running=big(env, 1))
    assert env.replicas([1.0, 1.0, 0.5]).tolist() == big(env, 2)  # scaling up is never held back


def test_scaled_plan__spaces_bounds_and_observation():
    env = ScaledPlanAction(gym.make(DEFAULT_ENV_ID, **SHORT), low=0.8, high=1.3, max_keep_margin=0.5)
    base = env.unwrapped
    num_types, num_gpus = base.instance.num_query_types, len(base.instance.gpus)
    assert env.action_space.shape == (num_types + 1,)
    np.testing.assert_array_equal(env.action_space.low, np.float32([0.8] * num_types + [0.0]))
    np.testing.assert_array_equal(env.action_space.high, np.float32([1.3] * num_types + [0.5]))
    assert ScaledPlanAction(gym.make(DEFAULT_ENV_ID, **SHORT), max_keep_margin=0.0).action_space.shape == (num_types,)
    assert "action_mask" not in env.observation_space.spaces
    assert set(SCALED_OBSERVATION_KEYS) <= set(env.observation_space.spaces)
    assert env.observation_space["forecast_error"].shape == (2 * num_types,)
    assert env.observation_space["gpu_utilisation"].shape == (num_gpus,)
    obs, _ = env.reset(seed=0, options={"day": DAY})
    assert env.observation_space.contains(obs)
    env.action_space.seed(0)
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        replicas = np.asarray(info["replicas"])
        assert (replicas >= 0).all() and (replicas <= base.max_replicas).all()
        done = terminated or truncated


def test_scaled_plan__observation_entries_are_the_documented_statistics():
    env = ScaledPlanAction(gym.make(DEFAULT_ENV_ID, **SHORT))
    inst = env.unwrapped.instance
    num_types = inst.num_query_types
    obs, info = env.reset(seed=0, options={"day": DAY})
    np.testing.assert_array_equal(obs["forecast_error"], 0.0)
    forecasts, ratios = [info["forecast_per_hour"]], []
    action = np.float32([1.0] * num_types + [0.0])
    for _ in range(3):
        obs, _, _, _, info = env.step(action)
        ratios.append(np.log(info["demand_per_hour"] / forecasts[-1]))
        forecasts.append(info["forecast_per_hour"])
        np.testing.assert_allclose(obs["forecast_error"][:num_types], ratios[-1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(obs["forecast_error"][num_types:], np.mean(ratios, axis=0), rtol=1e-5, atol=1e-6)
    assert np.abs(obs["forecast_error"]).max() <= FORECAST_ERROR_BOUND
    gpus = info["ready_replicas"] * inst.gpus_per_replica
    for g in range(len(inst.gpus)):
        on = inst.config_gpu == g
        expected = (gpus[on] * info["utilisation"][on]).sum() / gpus[on].sum() if gpus[on].sum() > 0 else 0.0
        assert obs["gpu_utilisation"][g] == pytest.approx(expected, abs=1e-6)


def test_scaled_plan__is_deterministic_and_lean_info_keeps_the_scalars():
    def play(lean: bool):
        env = ScaledPlanAction(gym.make(DEFAULT_ENV_ID, **SHORT), lean_info=lean)
        env.reset(seed=5, options={"day": DAY})
        rng = np.random.default_rng(1)
        rows, done = [], False
        while not done:
            action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
            replicas = env.replicas(action)
            obs, reward, terminated, truncated, info = env.step(action)
            rows.append((replicas.tolist(), reward, {k: v.tolist() for k, v in obs.items()}))
            done = terminated or truncated
        return rows, info

    full_rows, full_info = play(False)
    lean_rows, lean_info = play(True)
    assert full_rows == lean_rows == play(False)[0]
    assert set(lean_info) == {*LEAN_INFO_KEYS, *EPISODE_INFO_KEYS}
    assert lean_info["total_cost"] == full_info["total_cost"]
    assert "served_per_hour" in full_info


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ([1.0] * 6 + [float("nan")], r"action\[6\] = nan outside allowed range \[0.0, 0.5\] \(scale-down"),
        ([1.0] * 5 + [2.0, 0.0], r"action\[5\] = 2.0 outside allowed range \[0.8, 1.6\] \(demand multiplier"),
        ([1.0] * 6, r"action has shape \(6,\), expected \(7,\)"),
    ],
)
def test_scaled_plan__rejects_bad_actions_naming_the_dimension(action, message):
    env = ScaledPlanAction(gym.make(DEFAULT_ENV_ID, **SHORT))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(np.array(action))


def test_scaled_plan__rejects_bad_settings_and_other_envs():
    with pytest.raises(ValueError, match="need 0 < low ≤ high"):
        toy_env(low=1.5, high=1.0)
    with pytest.raises(ValueError, match="max_keep_margin"):
        toy_env(max_keep_margin=-1.0)
    with pytest.raises(RuntimeError, match="call reset"):
        toy_env().replicas([1.0, 1.0, 0.0])


def test_train_config__registers_the_scaled_action():
    assert all("scaled" in ALGORITHMS[algo] for algo in ("ppo", "a2c", "sac"))
    with pytest.raises(TrainConfigError, match="action 'scaled' not supported by maskable_ppo"):
        TrainConfig(out_dir="", action="scaled")
    config = TrainConfig(out_dir="", algo="ppo", action="scaled", env_kwargs=SHORT, headroom_low=0.7)
    stack = wrap_action(make_base_env(config), config)
    assert isinstance(stack, UnitBoxAction) and isinstance(stack.env, ScaledPlanAction)
    assert stack.env.low == 0.7 and stack.env.max_keep_margin == SCALED_MAX_KEEP_MARGIN and stack.env.lean_info
    with pytest.raises(TrainConfigError, match="vec_env 'threads' not one of"):
        TrainConfig(out_dir="", vec_env="threads")


def test_load_run_config__reads_folders_written_before_vec_env_with_what_they_did(tmp_path):
    payload = {"train": {k: v for k, v in TrainConfig(out_dir="").to_dict().items() if k not in ("out_dir", "vec_env")}}
    (tmp_path / CONFIG_FILE).write_text(json.dumps(payload))
    assert load_run_config(tmp_path).vec_env == ADDED_FIELDS["vec_env"] == "subproc"


@pytest.mark.rl
def test_scaled_run__trains_with_dummy_envs_and_the_adapter_plays_it_as_trained(tmp_path):
    pytest.importorskip("stable_baselines3")
    from adapter_checks import assert_adapter_plays_as_trained
    from stable_baselines3.common.vec_env import DummyVecEnv

    from servegym.agents.train import make_vec_env, train

    config = TrainConfig(
        out_dir=str(tmp_path),
        algo="ppo",
        action="scaled",
        env_kwargs=SHORT,
        total_timesteps=64,
        n_envs=2,
        vec_env="dummy",
        hyperparameters={"n_steps": 16, "batch_size": 32, "n_epochs": 1},
        eval_freq=32,
        checkpoint_freq=32,
    )
    venv = make_vec_env(config, 2)
    assert isinstance(venv, DummyVecEnv) and venv.num_envs == 2
    venv.close()
    result = train(config)
    assert result.num_timesteps == 64 and len(result.validation_rewards) == 2
    assert load_run_config(tmp_path).vec_env == "dummy"
    direct = assert_adapter_plays_as_trained(config, DAY)
    assert math.isfinite(sum(direct))


def bench_training_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_training.py"
    spec = importlib.util.spec_from_file_location("bench_training", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_training__parses_settings_and_names_a_bad_one():
    bench = bench_training_module()
    assert bench.parse_settings("dummy:8,subproc:2") == [("dummy", 8), ("subproc", 2)]
    for bad in ("threads:2", "dummy:0", "dummy", ""):
        with pytest.raises(ValueError):
            bench.parse_settings(bad)


@pytest.mark.rl
def test_bench_training__writes_the_json_with_its_provenance(tmp_path):
    pytest.importorskip("stable_baselines3")
    bench = bench_training_module()
    out = tmp_path / "bench.json"
    argv = ["--actions", "scaled", "--steps", "64", "--settings", "dummy:1", "--cold-forecasts", "--no-docs"]
    assert bench.main([*argv, "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert {"date", "command", "commit", "machine", "load_average_at_start", "results"} <= set(payload)
    (row,) = payload["results"]
    assert row["action"] == "scaled" and row["steps"] == 256 and row["fps"] > 0  # one rollout of n_steps 256
    assert "| `scaled` | dummy × 1 |" in bench.table(payload)
