"""Baseline policies act in the environment; the evaluation loop tabulates episodes."""

import gymnasium as gym
import numpy as np
import pytest

from servegym.baselines.runner.episodes import EPISODE_COLUMNS, evaluate, run_episode
from servegym.baselines.runner.policies import BASELINE_POLICIES, make_policy
from servegym.envs import ENV_IDS
from servegym.errors import UsageError

FAST_POLICIES = [p for p in BASELINE_POLICIES if not p.startswith("milp")]


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
@pytest.mark.parametrize("name", FAST_POLICIES)
def test_policies__every_heuristic_policy_completes_an_episode_without_fallback(env_id, name):
    env = gym.make(env_id, horizon_hours=1.0)
    policy = make_policy(name, env.unwrapped)
    record, periods = run_episode(env, policy, seed=0, options={})
    assert len(periods) == env.unwrapped.num_periods
    # At 1.5x the adaptive planners learn the slowdown and may plan more capacity than the budget buys; lifting the
    # unmet cap (a fallback) is then the honest answer, so only there a fallback is allowed.
    if not (name.endswith("-adaptive") and env_id.endswith("StressSevere-v1")):
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
    env = gym.make("servegym/Provisioning-v3", horizon_hours=2.0)
    policy = make_policy("agh-static", env.unwrapped)
    obs, info = env.reset(seed=0)
    policy.reset(0)
    actions, plans = [], []
    for _ in range(4):
        actions.append(policy.act(obs, info))
        plans.append(policy._static.copy())
        obs, _, _, _, info = env.step(actions[-1])
    assert all(np.array_equal(plans[0], p) for p in plans)
    # the first period over-starts replicas that load (cold starts); from then on the action is the plan
    assert (actions[0] >= plans[0]).all() and all(np.array_equal(plans[0], a) for a in actions[1:])


def test_policies__random_policy_respects_the_mask():
    env = gym.make("servegym/Provisioning-v3", horizon_hours=1.0)
    policy = make_policy("random", env.unwrapped, seed=3)
    obs, info = env.reset(seed=0)
    action = policy.act(obs, info)
    assert env.action_space.contains(action)
    mask, start = info["action_mask"], 0
    for c, size in enumerate(env.unwrapped.action_space.nvec):
        assert mask[start + action[c]]
        start += size


def test_policies__unknown_policy_name_is_a_clear_error():
    env = gym.make("servegym/Provisioning-v3", horizon_hours=1.0)
    with pytest.raises(ValueError, match="unknown policy 'agh-sometimes'"):
        make_policy("agh-sometimes", env.unwrapped)


def test_evaluate__returns_the_documented_columns_and_rolling_beats_static_on_an_azure_day():
    # The Saturday test day: on env v3 plain agh-rolling costs more than agh-static on the Thursday test day
    # ($2,097 vs $2,039; its quantile-hold variant $1,803) and much less on Saturday ($1,044 vs $1,750).
    result = evaluate(
        ["agh-rolling", "agh-static"], days=["2024-05-18-sat"], progress=False, env_kwargs={"horizon_hours": 24.0}
    )
    assert list(result.episodes.columns) == list(EPISODE_COLUMNS)
    assert len(result.episodes) == 2
    costs = result.episodes.set_index("policy")["total_cost"]
    assert costs["agh-rolling"] < costs["agh-static"]
    assert set(result.periods["policy"]) == {"agh-rolling", "agh-static"}
    assert result.periods.groupby("policy").size().eq(96).all()


def test_switch_rule__keeps_the_running_replicas_until_a_new_plan_pays_back_its_starts():
    from servegym.baselines.runner.policies import SwitchRule

    env = gym.make("servegym/ProvisioningVolatile-v3", horizon_hours=1.0).unwrapped  # $5 per started replica
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


def test_robust_instance__plans_on_the_drift_process_margins():
    from servegym.baselines.runner.policies import ROBUST_QUANTILE, robust_instance
    from servegym.envs.drift import DEFAULT_DRIFT, margin_quantile

    env = gym.make("servegym/Provisioning-v3", horizon_hours=1.0).unwrapped
    inst, robust = env.instance, robust_instance(env.instance)
    speed = margin_quantile(DEFAULT_DRIFT.speed, ROBUST_QUANTILE)
    np.testing.assert_allclose(robust.capacity_per_hour, inst.capacity_per_hour / speed)
    np.testing.assert_allclose(robust.delay_s, inst.delay_s * speed)
    factor = robust.error_rate[inst.error_rate > 0] / inst.error_rate[inst.error_rate > 0]
    assert np.all(factor >= 1.0 - 1e-12)
    assert np.all(factor <= margin_quantile(DEFAULT_DRIFT.error, ROBUST_QUANTILE) + 1e-12)
    best = np.where(robust.route_allowed, robust.error_rate, np.inf).min(axis=1)
    assert np.all(best <= robust.error_slo + 1e-12)  # every type keeps a route that meets its SLO alone


def test_drift_estimate__recovers_a_known_slowdown_and_error_multiplier():
    from servegym.baselines.runner.policies import DriftEstimate

    env = gym.make("servegym/ProvisioningDrift-v3", horizon_hours=1.0).unwrapped
    inst = env.instance
    estimate = DriftEstimate(inst, alpha=1.0)
    # A route whose errors at 1.5x the catalog break the type's error budget, so the excess reveals the multiplier.
    i, c = (
        int(k) for k in np.argwhere((inst.capacity_per_hour > 0) & (1.5 * inst.error_rate > inst.error_slo[:, None]))[0]
    )
    served = np.zeros((inst.num_query_types, inst.num_configurations))
    served[i, c] = 0.4 * inst.capacity_per_hour[i, c]  # 0.4 replica-loads at catalog speed on one ready replica
    excess = np.zeros(inst.num_query_types)
    excess[i] = 0.5 * inst.error_rate[i, c] * served[i, c] + (inst.error_rate[i, c] - inst.error_slo[i]) * served[i, c]
    utilisation = np.zeros(inst.num_configurations)
    utilisation[c] = 0.4 * 1.25
    ready = np.zeros(inst.num_configurations)
    ready[c] = 1.0
    estimate.observe(
        {
            "period": 1,
            "served_per_hour": served,
            "ready_replicas": ready,
            "utilisation": utilisation,
            "excess_errors_per_hour": excess,
        }
    )
    assert np.exp(estimate.log_slowdown[inst.config_gpu[c]]) == pytest.approx(1.25)
    assert excess[i] > 0
    assert np.exp(estimate.log_error[i]) == pytest.approx(1.5)
    corrected = estimate.corrected()
    assert corrected.capacity_per_hour[i, c] == pytest.approx(inst.capacity_per_hour[i, c] / 1.25)
    np.testing.assert_array_equal(corrected.delay_s, inst.delay_s)  # admissibility stays the router's


def test_cold_start_rules__over_start_and_make_before_break_on_a_toy():
    from servegym.baselines.runner.policies import compensate_cold_starts
    from servegym.envs.provisioning import ProvisioningEnv
    from servegym.envs.scenarios import make_instance

    toy = make_instance("toy")
    toy = toy.with_changes(startup_s=np.full(toy.num_configurations, 450.0))  # F = 0.5 at 15-minute periods
    env = ProvisioningEnv(instance=toy, demand="synthetic", horizon_hours=1.0, initial_fleet="empty")
    zeros = np.zeros(env.instance.num_configurations, dtype=np.int64)
    target = zeros.copy()
    target[0] = 2
    # From nothing, two replicas' capacity in the first period needs four half-ready ones (if the budget allows).
    action = compensate_cold_starts(env, target, zeros, zeros)
    assert action[0] in (2, 3, 4) and env.repair.fits(action)
    if env.repair.fits(np.where(np.arange(len(zeros)) == 0, 4, 0)):
        assert action[0] == 4
    # Moving from configuration 1 to configuration 0 keeps configuration 1 running while 0 loads.
    running = zeros.copy()
    running[1] = 1
    action = compensate_cold_starts(env, target, running, zeros)
    if env.repair.fits(np.maximum(action, running)):
        assert action[1] == 1
    # Nothing starts: the plan passes unchanged.
    np.testing.assert_array_equal(compensate_cold_starts(env, running, running, zeros), running)


def test_evaluate__a_policy_without_a_member_the_loop_reads_is_a_clear_error():
    class NoFallbacks:
        name = "mine"

        def reset(self, seed=None):
            pass

        def act(self, obs, info):
            return np.zeros(len(info["replicas"]), dtype=np.int64)

    with pytest.raises(UsageError, match=r"policy 'mine' \(NoFallbacks\) lacks \['fallbacks'\]"):
        evaluate({"mine": lambda env: NoFallbacks()}, env_kwargs={"horizon_hours": 1.0}, progress=False)
