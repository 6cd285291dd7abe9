"""The provisioning environment: checkers, determinism, reward = −Σ parts, spaces, errors, pickling."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import servegym.envs  # noqa: F401  (registers the ids)
from servegym.envs import DEFAULT_ENV_ID, ENV_IDS
from servegym.envs.evaluation import Plan, evaluate_plan
from servegym.envs.outcome import COST_PARTS
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.step_info import StepInfo


def small_env(**kwargs) -> ProvisioningEnv:
    kwargs.setdefault("horizon_hours", 2.0)
    return ProvisioningEnv(**kwargs)


def rollout(env: gym.Env, seed: int, steps: int | None = None):
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    records = [(obs, None, info)]
    done, count = False, 0
    while not done and (steps is None or count < steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        records.append((obs, reward, info))
        done, count = terminated or truncated, count + 1
    return records


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_env__gymnasium_checker_passes_on_every_registered_id(env_id):
    env = gym.make(env_id, horizon_hours=1.0)
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.rl
@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_env__stable_baselines3_checker_passes_on_every_registered_id(env_id):
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3_checker.check_env(gym.make(env_id, horizon_hours=1.0).unwrapped, warn=True)


def test_env__same_seed_rollouts_are_identical():
    first, second = rollout(small_env(), seed=7), rollout(small_env(), seed=7)
    assert len(first) == len(second)
    for (obs_a, reward_a, info_a), (obs_b, reward_b, info_b) in zip(first, second, strict=True):
        assert reward_a == reward_b
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
        assert info_a.keys() == info_b.keys()
        for key in info_a:
            np.testing.assert_array_equal(np.asarray(info_a[key], dtype=object), np.asarray(info_b[key], dtype=object))


def test_env__reward_is_minus_the_scaled_sum_of_cost_parts_and_obs_stay_in_space():
    env = small_env(demand="synthetic", sigma=0.1, delay_inflation=1.2)
    for obs, reward, info in rollout(env, seed=3):
        assert env.observation_space.contains(obs)
        if reward is not None:
            assert set(info["cost"]) == set(COST_PARTS)
            assert reward == pytest.approx(-sum(info["cost"].values()) / info["reward_scale"])
            for key in ("delay_violation_rate", "error_violation_rate", "unserved_rate", "slo_violation_rate"):
                assert 0.0 <= info[key] <= 1.0 + 1e-12
            parts = ("delay_violation_rate", "error_violation_rate", "unserved_rate")
            assert info["slo_violation_rate"] >= max(info[k] for k in parts) - 1e-12
            assert info["slo_violation_rate"] <= sum(info[k] for k in parts) + 1e-12


def test_env__episode_length_follows_period_and_horizon():
    assert len(rollout(small_env(period_minutes=5, horizon_hours=1.0), seed=0)) - 1 == 12
    env = ProvisioningEnv(period_minutes=60)
    assert env.num_periods == 24


def test_env__action_masks_match_the_observation_mask():
    env = small_env()
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(env.action_masks().astype(np.float32), obs["action_mask"])
    assert env.action_masks().size == int(env.action_space.nvec.sum())


def test_env__coupled_limits_are_repaired_and_reported():
    env = small_env()
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.max_replicas.copy())
    inst = env.instance
    assert info["repaired_replicas"] > 0
    evaluation = evaluate_plan(
        inst,
        Plan(info["replicas"], np.zeros((inst.num_query_types, len(info["replicas"]))), np.zeros(inst.num_query_types)),
    )
    limits = {"budget", "availability", "storage", "max_replicas"}
    assert not [v for v in evaluation.violations if v.constraint in limits]


def test_env__bad_actions_give_clear_errors():
    env = small_env()
    env.reset(seed=0)
    size = env.action_space.shape[0]
    with pytest.raises(ValueError, match=r"action has shape \(3,\), expected"):
        env.step(np.zeros(3, dtype=int))
    too_many = np.zeros(size, dtype=int)
    too_many[0] = env.max_replicas[0] + 1
    with pytest.raises(ValueError, match=r"action\[0\] = .* outside allowed integers"):
        env.step(too_many)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(size, np.nan))


def test_env__bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="period_minutes 7 must divide 1440"):
        ProvisioningEnv(period_minutes=7)
    with pytest.raises(ValueError, match=r"delay_inflation 0\.5 outside allowed range"):
        ProvisioningEnv(delay_inflation=0.5)
    with pytest.raises(ValueError, match="azure-someday"):
        ProvisioningEnv(demand="azure-someday")
    with pytest.raises(ValueError, match=r"horizon_hours 1000000000.0 outside allowed range \(0, 168\]"):
        ProvisioningEnv(horizon_hours=1e9)
    with pytest.raises(ValueError, match="azure-week"):
        ProvisioningEnv(horizon_hours=48.0)  # azure-train draws single days
    with pytest.raises(ValueError, match="router 'oracle' not one of"):
        ProvisioningEnv(router="oracle")
    with pytest.raises(ValueError, match="queueing 'false' must be True or False"):
        ProvisioningEnv(queueing="false")
    with pytest.raises(ValueError, match="load-time"):
        ProvisioningEnv(reconfiguration_cost="load-time")
    env = small_env()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(env.action_space.shape, dtype=int))
    with pytest.raises(ValueError, match=r"reset options \['bogus'\]"):
        env.reset(options={"bogus": 1})
    with pytest.raises(ValueError, match="'day' and 'demand' both given"):
        env.reset(options={"day": "2024-05-16-thu", "demand": "synthetic"})


def test_env__reset_options_pick_the_day():
    env = small_env()
    _, info = env.reset(seed=0, options={"day": "2024-05-16-thu"})
    assert info["demand_label"] == "azure 2024-05-16-thu"


def test_env__stress_inflation_raises_violations_of_a_tight_plan():
    def violations(inflation: float) -> float:
        env = small_env(demand="azure:2024-05-15-wed", delay_inflation=inflation, error_inflation=inflation)
        env.reset(seed=0)
        action = np.minimum(env.max_replicas, 4)
        _, _, _, _, info = env.step(action)
        return info["delay_violation_rate"] + info["error_violation_rate"] + info["unserved_rate"]

    assert violations(1.5) > violations(1.0)


def test_env__pickles_and_runs_after_unpickling():
    env = small_env()
    env.reset(seed=1)
    clone = pickle.loads(pickle.dumps(env))
    action = np.ones(env.action_space.shape, dtype=int)
    a = env.step(action)
    b = clone.step(action)
    assert a[1] == b[1]
    for key, value in a[0].items():  # the observation is written through views that unpickling must rebuild
        np.testing.assert_array_equal(b[0][key], value, err_msg=key)


def test_env__info_has_every_typed_key_from_reset_on():
    env = small_env()
    _, info = env.reset(seed=0)
    assert set(info) == set(StepInfo.__annotations__)
    _, _, _, _, info = env.step(np.ones(env.action_space.shape, dtype=int))
    assert set(info) == set(StepInfo.__annotations__)


def test_env__a_reused_object_replays_an_episode_bit_for_bit():
    fresh = rollout(small_env(demand="synthetic"), seed=5)
    reused_env = small_env(demand="synthetic")
    rollout(reused_env, seed=11)
    reused = rollout(reused_env, seed=5)
    for (_, reward_a, info_a), (_, reward_b, info_b) in zip(fresh, reused, strict=True):
        assert reward_a == reward_b
        assert info_a["total_cost"] == info_b["total_cost"]


def test_reset__observes_the_lead_in_before_the_episode():
    # What the service saw in the last hour before 00:00 is in the demand history at reset and moved the forecast.
    env = gym.make(DEFAULT_ENV_ID).unwrapped
    obs, info = env.reset(seed=0, options={"day": "2024-05-16-thu"})
    lead_in = env.state.demand.lead_in_per_hour
    nominal = env.instance.demand_per_hour
    np.testing.assert_allclose(obs["demand"], (lead_in / nominal).astype(np.float32).ravel(), rtol=1e-6)
    first_period = env.state.demand.rates_per_hour[0]
    blind = gym.make(DEFAULT_ENV_ID, demand="azure-week").unwrapped  # Sunday: no day before it, no lead-in
    blind_obs, _ = blind.reset(seed=0)
    assert blind.state.demand.lead_in_per_hour is None and not blind_obs["demand"].any()
    ratio = np.asarray(info["forecast_per_hour"]) / first_period
    assert np.all((ratio > 0.85) & (ratio < 1.15))
