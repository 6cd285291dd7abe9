"""The world of MODEL.md §6 (env v1): cold starts, the realised router, graded SLOs, drift, weeks, the rule book."""

import gymnasium as gym
import numpy as np
import pytest

import servegym.envs  # noqa: F401  (registers the ids)
from servegym.baselines.runner.policies import make_policy
from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.cold_start import StartingReplicas
from servegym.envs.evaluation import Plan, evaluate_plan
from servegym.envs.outcome import realise
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.scenarios import make_instance

LIMIT_FAMILIES = {"budget", "availability", "storage", "max_replicas"}


def toy_env(startup_s: float, **kwargs) -> ProvisioningEnv:
    """The toy over 1 hour at 15 minutes; by default from an empty fleet, so that the first action starts cold."""
    toy = make_instance("toy")
    toy = toy.with_changes(startup_s=np.full(toy.num_configurations, startup_s))
    kwargs.setdefault("horizon_hours", 1.0)
    kwargs.setdefault("initial_fleet", "empty")
    return ProvisioningEnv(instance=toy, demand="synthetic", sigma=0.0, **kwargs)


@pytest.mark.parametrize(("startup_fraction", "first", "second"), [(0.5, 0.5, 1.0), (4 / 3, 0.0, 2 / 3), (0.0, 1, 1)])
def test_cold_start__a_replica_carries_the_ready_share_of_its_first_periods(startup_fraction, first, second):
    env = toy_env(startup_s=startup_fraction * 900.0)
    env.reset(seed=0)
    action = np.full(env.action_space.shape, 2, dtype=np.int64)
    _, _, _, _, info = env.step(action)
    np.testing.assert_allclose(info["ready_replicas"], 2 * first)
    assert info["started_replicas"] == 2 * len(action)
    np.testing.assert_array_equal(info["starting_replicas"], 2 if startup_fraction > 0 else 0)
    _, _, _, _, info = env.step(action)
    np.testing.assert_allclose(info["ready_replicas"], 2 * second)
    assert info["started_replicas"] == 0
    assert info["cost"]["rental"] == pytest.approx(2 * env.instance.replica_price_per_hour.sum() * 0.25)


def test_cold_start__stopping_removes_the_youngest_replicas_first():
    tracker = StartingReplicas(np.array([1200.0]), 900.0, initial_fleet="empty")
    tracker.advance(np.array([2]))  # two start (age 0)
    tracker.advance(np.array([5]))  # those two are age 1, three more start
    assert tracker.pending().tolist() == [3]  # age-1 replicas are ready when the next period begins
    tracker.advance(np.array([2]))  # the three young ones go first
    np.testing.assert_allclose(tracker.ready(), [2.0])
    assert tracker.starting().tolist() == [0]


def test_cold_start__the_default_id_serves_less_in_a_replicas_first_period():
    env = gym.make(DEFAULT_ENV_ID, initial_fleet="empty").unwrapped
    env.reset(seed=0, options={"day": "2024-05-16-thu"})
    action = np.zeros(env.action_space.shape, dtype=np.int64)
    action[0] = 1
    _, _, _, _, first = env.step(action)
    _, _, _, _, second = env.step(action)
    assert first["starting_replicas"][0] == 1 and second["starting_replicas"][0] == 0
    assert first["served_per_hour"].sum() < second["served_per_hour"].sum()
    assert first["ready_replicas"][0] < second["ready_replicas"][0] == 1.0
    assert 0 < env.instance.startup_s[0] < 900.0


def test_initial_fleet__warm_first_action_serves_at_once_and_later_starts_are_cold():
    env = gym.make(DEFAULT_ENV_ID, reconfiguration_cost=5.0).unwrapped
    assert env.initial_fleet == "warm"
    env.reset(seed=0, options={"day": "2024-05-16-thu"})
    action = np.zeros(env.action_space.shape, dtype=np.int64)
    action[0] = 1
    _, _, _, _, first = env.step(action)
    assert first["ready_replicas"][0] == 1.0 and first["started_replicas"] == 0
    assert first["starting_replicas"][0] == 0 and first["cost"]["reconfiguration"] == 0.0
    action[0] = 2
    _, _, _, _, second = env.step(action)
    assert second["started_replicas"] == 1 and second["starting_replicas"][0] == 1
    assert second["ready_replicas"][0] < 2.0 and second["cost"]["reconfiguration"] == 5.0


def test_initial_fleet__cold_start_rules_leave_a_warm_first_action_alone():
    from servegym.baselines.runner.policies import compensate_cold_starts

    env = toy_env(startup_s=450.0, initial_fleet="warm")
    env.reset(seed=0)
    zeros = np.zeros(env.instance.num_configurations, dtype=np.int64)
    target = zeros.copy()
    target[0] = 2
    assert compensate_cold_starts(env, target, zeros, zeros).tolist() == target.tolist()
    env.step(target)
    grown = target.copy()
    grown[0] = 3
    assert compensate_cold_starts(env, grown, target, zeros)[0] >= 3  # later starts are cold again


def test_initial_fleet__an_unknown_value_names_the_allowed_ones():
    from servegym.envs.provisioning import EnvKeywordError

    with pytest.raises(EnvKeywordError, match=r"initial_fleet 'hot' not one of \['warm', 'empty'\]"):
        gym.make(DEFAULT_ENV_ID, initial_fleet="hot")


def test_cold_start__observation_shows_replicas_still_starting():
    env = toy_env(startup_s=1200.0)
    env.reset(seed=0)
    obs, _, _, _, info = env.step(np.ones(env.action_space.shape, dtype=np.int64))
    np.testing.assert_array_equal(info["pending_replicas"], 1)  # still starting when period 1 begins
    assert np.all(obs["starting"] > 0)


def test_graded_slo__excess_erroneous_responses_are_counted_exactly_on_a_hand_computed_toy():
    toy = make_instance("toy").with_demand(np.array([100.0, 0.0]), period_hours=1.0)
    routing = np.zeros((2, toy.num_configurations))
    routing[0, 0] = 60.0
    routing[0, 1] = 40.0
    replicas = np.full(toy.num_configurations, 10)
    outcome = realise(toy, replicas, routing, np.zeros(2), error_factor=1.5, error_penalty_per_request=2.0)
    erroneous = 1.5 * (60.0 * toy.error_rate[0, 0] + 40.0 * toy.error_rate[0, 1])
    expected = max(erroneous - toy.error_slo[0] * 100.0, 0.0)
    assert expected > 0
    assert outcome.excess_errors[0] == pytest.approx(expected)
    assert outcome.error_violation_rate == pytest.approx(expected / 100.0)
    assert outcome.cost["error_penalty"] == pytest.approx(2.0 * expected)
    assert 0.0 < outcome.error_violation_rate < 1.0
    within = realise(toy, replicas, routing, np.zeros(2), error_factor=1.0)
    nominal_excess = max(60.0 * toy.error_rate[0, 0] + 40.0 * toy.error_rate[0, 1] - toy.error_slo[0] * 100.0, 0.0)
    assert within.excess_errors[0] == pytest.approx(nominal_excess)


def test_graded_slo__each_request_is_counted_once():
    toy = make_instance("toy").with_demand(np.array([100.0, 0.0]), period_hours=1.0)
    routing = np.zeros((2, toy.num_configurations))
    routing[0, 0] = 100.0
    slow = realise(
        toy,
        np.full(toy.num_configurations, 10),
        routing,
        np.array([20.0, 0.0]),
        slowdown=50.0,
        error_factor=3.0,
        queueing=False,
    )
    parts = slow.delay_violation_rate + slow.error_violation_rate + slow.unserved_rate
    assert max(slow.delay_violation_rate, slow.unserved_rate) <= slow.slo_violation_rate <= parts + 1e-12
    assert slow.slo_violation_rate <= 1.0


def test_router__realised_router_sees_slowdown_and_nominal_router_does_not():
    def unserved(router: str) -> float:
        env = gym.make("servegym/ProvisioningStressSevere-v3", horizon_hours=1.0, router=router).unwrapped
        env.reset(seed=0, options={"day": "2024-05-16-thu"})
        policy = make_policy("gh-rolling", env)
        policy.reset(0)
        obs, info = env.reset(seed=0, options={"day": "2024-05-16-thu"})
        total = 0.0
        for _ in range(3):
            obs, _, _, _, info = env.step(policy.act(obs, info))
            total += info["unserved_rate"] + info["delay_violation_rate"]
        return total

    assert unserved("realised") != unserved("nominal")


def test_stress__graded_violations_lie_strictly_between_0_and_100_percent():
    env = gym.make("servegym/ProvisioningStress-v3", horizon_hours=2.0).unwrapped
    policy = make_policy("gh-rolling", env)
    policy.reset(0)
    obs, info = env.reset(seed=0, options={"day": "2024-05-16-thu"})
    rates = []
    for _ in range(env.num_periods):
        obs, _, _, _, info = env.step(policy.act(obs, info))
        rates.append(info["slo_violation_rate"])
    assert 0.0 < np.mean(rates) < 1.0
    assert max(rates) < 1.0


def test_drift__is_deterministic_per_seed_and_unobserved():
    def costs(seed: int) -> list[float]:
        env = gym.make("servegym/ProvisioningDrift-v3", horizon_hours=2.0).unwrapped
        env.reset(seed=seed, options={"day": "2024-05-16-thu"})
        action = np.minimum(env.max_replicas, 2)
        return [env.step(action)[4]["total_cost"] for _ in range(env.num_periods)]

    assert costs(3) == costs(3)
    assert costs(3) != costs(4)
    env = gym.make("servegym/ProvisioningDrift-v3").unwrapped
    env.reset(seed=3)
    assert np.any(env.state.drift.slowdown != 1.0) and np.any(env.state.drift.error_factor != 1.0)
    plain = gym.make(DEFAULT_ENV_ID).unwrapped
    plain.reset(seed=3)
    assert np.all(plain.state.drift.slowdown == 1.0) and np.all(plain.state.drift.error_factor == 1.0)


def test_week__the_week_id_plays_seven_distinct_consecutive_days():
    env = gym.make("servegym/ProvisioningWeek-v3").unwrapped
    obs, _ = env.reset(seed=0)
    demand = env.state.demand
    assert env.num_periods == 7 * 96
    assert len(set(demand.day_names)) == 7
    days = demand.rates_per_hour.reshape(7, 96, -1)
    assert len({day.tobytes() for day in days}) == 7
    assert demand.weekday[0] == 6 and demand.weekday[-1] == 5  # Sunday to Saturday, Monday = 0
    assert obs["calendar"][2] == 1.0  # Sunday is a weekend day


def test_rule_book__env_masks_and_repair_agree_with_evaluate_plan_on_random_plans():
    env = gym.make(DEFAULT_ENV_ID).unwrapped
    inst = env.instance
    rng = np.random.default_rng(0)
    empty_routing = np.zeros((inst.num_query_types, inst.num_configurations))
    for _ in range(300):
        replicas = rng.integers(0, env.max_replicas + 1) * (rng.random(inst.num_configurations) < 0.3)
        plan = Plan(replicas, empty_routing, np.zeros(inst.num_query_types))
        violated = {v.constraint for v in evaluate_plan(inst, plan).violations} & LIMIT_FAMILIES
        assert env.repair.fits(replicas) == (not violated)
        repaired, _ = env.repair.repair(replicas.copy())
        assert not {
            v.constraint for v in evaluate_plan(inst, Plan(repaired, empty_routing, plan.unserved)).violations
        } & (LIMIT_FAMILIES)
    mask = env.action_masks()
    start = 0
    for c, size in enumerate(env.action_space.nvec):
        for k in range(size):
            alone = np.zeros(inst.num_configurations, dtype=np.int64)
            alone[c] = k
            plan = Plan(alone, empty_routing, np.zeros(inst.num_query_types))
            ok = not ({v.constraint for v in evaluate_plan(inst, plan).violations} & LIMIT_FAMILIES)
            assert mask[start + k] == ok
        start += size


def test_rule_book__budget_counts_storage_in_the_env():
    env = gym.make(DEFAULT_ENV_ID).unwrapped
    inst = env.instance.with_changes(storage_price_per_gb_hour=1e3)  # storage alone breaks the budget
    strict = ProvisioningEnv(instance=inst, max_candidates=inst.num_configurations)
    assert not strict.action_masks().reshape(-1)[1]  # one replica of candidate 0 stores its model: over budget
