"""Polishing a replica schedule in the environment: a hand-checked toy case, the cost it reports against a replay,
the rule book, determinism, and that the episode is not touched."""

import gymnasium as gym
import numpy as np
import pytest

import servegym.envs  # noqa: F401  (registers the env ids)
from servegym.baselines.milp.schedule_polish import polish_schedule
from servegym.baselines.runner.policies import make_policy
from tests.test_oracle import DAY, replay, toy_env, toy_replicas


def test_polish__drops_the_replica_the_dip_does_not_need_and_reaches_the_hand_computed_optimum():
    # TOY_DEMAND (tests/test_oracle.py): full, a 90 % dip, full. Without start fees, start-up time or queueing the
    # cheapest schedule the router can play is big, small + slow, big: $12.40, the MILP optimum (tests/test_oracle.py;
    # the router keeps the nominal error SLO, so small alone would drop A). With big kept in the dip as well, big
    # serves all of it ($3 rental + $0.20 delay) and small and slow idle ($1 rental each): $5 + $5.20 + $5 = $15.20.
    # One single move (big −1 in the dip) gets to the optimum.
    env = toy_env(start_cost=0.0, queueing=False)
    start = np.array([toy_replicas(env, big=1), toy_replicas(env, big=1, small=1, slow=1), toy_replicas(env, big=1)])
    result = polish_schedule(env, start)
    assert result.cost_after == pytest.approx(12.4, rel=1e-9)
    assert result.cost_before > result.cost_after
    assert result.moves >= 1
    assert result.cost_before == pytest.approx(15.2, rel=1e-9)
    expected = np.array([toy_replicas(env, big=1), toy_replicas(env, small=1, slow=1), toy_replicas(env, big=1)])
    np.testing.assert_array_equal(result.replicas, expected)


def test_polish__reports_what_a_replay_charges_and_leaves_the_episode_alone():
    env = toy_env(start_cost=0.5, startup_s=1800.0)  # starts cost a fee and serve half their first hour
    start = np.array([toy_replicas(env, big=2), toy_replicas(env, big=1, small=2), toy_replicas(env, big=1, slow=1)])
    result = polish_schedule(env, start)
    assert env.state.period == 0 and not env.replicas.cohorts.any()  # the reset episode is untouched
    assert result.cost_after <= result.cost_before
    assert replay(env, start) == pytest.approx(result.cost_before, rel=1e-12)
    env.reset(seed=0)
    env.state.demand = toy_env(start_cost=0.5).state.demand
    assert replay(env, result.replicas) == pytest.approx(result.cost_after, rel=1e-12)
    for row in result.replicas:
        assert env.repair.repair(row.copy())[1] == 0, "every polished period passes the rule book unchanged"


def test_polish__is_deterministic_and_zero_sweeps_only_replays():
    env = toy_env(start_cost=0.5, startup_s=1800.0)
    start = np.array([toy_replicas(env, big=2), toy_replicas(env, big=1, small=2), toy_replicas(env, big=1, slow=1)])
    first, second = polish_schedule(env, start), polish_schedule(env, start)
    np.testing.assert_array_equal(first.replicas, second.replicas)
    assert first.cost_after == second.cost_after and first.moves == second.moves
    unchanged = polish_schedule(env, start, max_sweeps=0)
    np.testing.assert_array_equal(unchanged.replicas, start)
    assert unchanged.cost_after == unchanged.cost_before == first.cost_before and unchanged.moves == 0


def test_polish__rejects_a_negative_number_of_sweeps():
    env = toy_env(start_cost=0.0)
    with pytest.raises(ValueError, match="max_sweeps = -1 must be ≥ 0"):
        polish_schedule(env, np.zeros((3, env.instance.num_configurations), dtype=np.int64), max_sweeps=-1)


def test_polish__on_a_drift_episode_charges_no_more_than_the_rolling_plan_it_starts_from():
    # Two hours of the drift id: rolling GH's schedule, planned on the catalog, polished on the realised world. The
    # cost before the polish is what the episode charged the policy itself.
    env = gym.make("servegym/ProvisioningDrift-v3", horizon_hours=2.0)
    policy = make_policy("gh-rolling", env.unwrapped)
    obs, info = env.reset(seed=0, options={"day": DAY})
    policy.reset(0)
    rows, total, done = [], 0.0, False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
        rows.append(info["replicas"].copy())
        total += info["total_cost"]
        done = terminated or truncated
    env.reset(seed=0, options={"day": DAY})
    result = polish_schedule(env.unwrapped, np.array(rows))
    assert result.cost_before == pytest.approx(total, rel=1e-9)
    assert result.cost_after <= result.cost_before


def test_polish__model_restarts_never_end_dearer_than_the_descent_alone():
    env = gym.make("servegym/ProvisioningDrift-v3", horizon_hours=2.0)
    env.reset(seed=2, options={"day": DAY})
    unwrapped = env.unwrapped
    start = np.zeros((unwrapped.num_periods, unwrapped.instance.num_configurations), dtype=np.int64)
    start[:, : min(6, start.shape[1])] = 1
    start = np.array([unwrapped.repair.repair(row.copy())[0] for row in start])
    alone = polish_schedule(unwrapped, start, model_restarts=False)
    restarted = polish_schedule(unwrapped, start)
    assert restarted.cost_after <= alone.cost_after <= alone.cost_before
