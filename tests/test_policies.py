"""Baseline policies act in the environment; the evaluation loop tabulates episodes."""

import gymnasium as gym
import numpy as np
import pytest

from servegym.baselines.evaluate import EPISODE_COLUMNS, evaluate, run_episode
from servegym.baselines.policies import BASELINE_POLICIES, make_policy
from servegym.envs import ENV_IDS

FAST_POLICIES = [p for p in BASELINE_POLICIES if not p.startswith("milp")]


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
@pytest.mark.parametrize("name", FAST_POLICIES)
def test_policies__every_heuristic_policy_completes_an_episode_without_fallback(env_id, name):
    env = gym.make(env_id, horizon_hours=1.0)
    policy = make_policy(name, env.unwrapped)
    record, periods = run_episode(env, policy, seed=0, options={})
    assert len(periods) == env.unwrapped.num_periods
    assert record["fallbacks"] == 0
    assert np.isfinite(record["total_cost"]) and record["total_cost"] > 0


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
@pytest.mark.parametrize("name", ["milp-rolling", "milp-static", "milp-reactive"])
def test_policies__milp_policies_complete_an_episode_without_fallback(env_id, name):
    env = gym.make(env_id, horizon_hours=0.5)
    record, periods = run_episode(env, make_policy(name, env.unwrapped), seed=0, options={})
    assert len(periods) == env.unwrapped.num_periods
    assert record["fallbacks"] == 0


def test_policies__static_policy_holds_one_plan_all_day():
    env = gym.make("servegym/Provisioning-v0", horizon_hours=2.0)
    policy = make_policy("agh-static", env.unwrapped)
    obs, info = env.reset(seed=0)
    policy.reset(0)
    actions = []
    for _ in range(4):
        actions.append(policy.act(obs, info))
        obs, _, _, _, info = env.step(actions[-1])
    assert all(np.array_equal(actions[0], a) for a in actions)


def test_policies__random_policy_respects_the_mask():
    env = gym.make("servegym/Provisioning-v0", horizon_hours=1.0)
    policy = make_policy("random", env.unwrapped, seed=3)
    obs, info = env.reset(seed=0)
    action = policy.act(obs, info)
    assert env.action_space.contains(action)
    mask, start = info["action_mask"], 0
    for c, size in enumerate(env.unwrapped.action_space.nvec):
        assert mask[start + action[c]]
        start += size


def test_policies__unknown_policy_name_is_a_clear_error():
    env = gym.make("servegym/Provisioning-v0", horizon_hours=1.0)
    with pytest.raises(ValueError, match="unknown policy 'agh-sometimes'"):
        make_policy("agh-sometimes", env.unwrapped)


def test_evaluate__returns_the_documented_columns_and_rolling_beats_static_on_an_azure_day():
    result = evaluate(
        ["agh-rolling", "agh-static"], days=["2024-05-16-thu"], progress=False, env_kwargs={"horizon_hours": 24.0}
    )
    assert list(result.episodes.columns) == list(EPISODE_COLUMNS)
    assert len(result.episodes) == 2
    costs = result.episodes.set_index("policy")["total_cost"]
    assert costs["agh-rolling"] < costs["agh-static"]
    assert set(result.periods["policy"]) == {"agh-rolling", "agh-static"}
    assert result.periods.groupby("policy").size().eq(96).all()


def test_switch_rule__keeps_the_running_replicas_until_a_new_plan_pays_back_its_starts():
    from servegym.baselines.policies import SwitchRule

    env = gym.make("servegym/ProvisioningVolatile-v0", horizon_hours=1.0).unwrapped  # $5 per started replica
    _, info = env.reset(seed=0)
    rule = SwitchRule(env)
    demand = np.asarray(info["forecast_per_hour"])
    planned = make_policy("gh-rolling", env).act({}, info)
    more = planned.copy()
    more[np.argmax(planned)] += 2
    assert rule.period_cost(planned, demand) < rule.period_cost(more, demand) < np.inf
    # Dropping replicas starts none, so it pays back at once; adding them costs $10 and saves nothing: hold.
    chosen, held = rule.choose(more, planned, demand, 4.0)
    assert not held and np.array_equal(chosen, planned)
    chosen, held = rule.choose(planned, more, demand, 4.0)
    assert held and np.array_equal(chosen, planned)
    # Payback 0 always re-plans; a running plan that cannot serve the demand is always replaced.
    assert not rule.choose(planned, more, demand, 0.0)[1]
    one_replica = (np.arange(len(planned)) == np.argmax(planned)).astype(np.int64)
    assert np.isinf(rule.period_cost(one_replica, demand))
    chosen, held = rule.choose(one_replica, planned, demand, 1e9)
    assert not held and np.array_equal(chosen, planned)
