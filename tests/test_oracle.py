"""The perfect-foresight oracle: hand-checked switching on the toy instance, bounds against policies, the policy."""

import numpy as np
import pytest

from servegym.baselines.evaluate import run_episode
from servegym.baselines.oracle import (
    OracleError,
    OraclePolicy,
    build_oracle_model,
    is_lower_bound,
    solve_oracle,
)
from servegym.baselines.policies import make_policy
from servegym.envs.demand_source import EpisodeDemand
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.toy import toy_instance

DAY = "2024-05-16-thu"
EXACT = 1e-6
"""Relative gap for exact answers in tests (the default, 1 %, is for scoring whole days)."""
# Toy demand per hour (types A, B): full, a 90 % dip, full. Full: one big replica, $3 rental + $2 delay = $5.
# Dip alone: small + slow ($2 rental + 20 req × 2 s × $0.01 = $2.40) beats holding big ($3 + $0.20 = $3.20).
TOY_DEMAND = np.array([[160.0, 40.0], [16.0, 4.0], [160.0, 40.0]])


def toy_env(start_cost: float, **kwargs) -> ProvisioningEnv:
    """The toy instance over three 1-hour periods with :data:`TOY_DEMAND` and a fixed $ per started replica."""
    env = ProvisioningEnv(
        instance=toy_instance(),
        demand="synthetic",
        period_minutes=60,
        horizon_hours=3.0,
        reconfiguration_cost=start_cost,
        **kwargs,
    )
    env.reset(seed=0)
    env.state.demand = EpisodeDemand(TOY_DEMAND.copy(), "toy dip")
    return env


def toy_counts(env: ProvisioningEnv, replicas: np.ndarray) -> dict[str, int]:
    """Replicas of one period by configuration label (``small``, ``big``, ``slow``), independent of candidate order."""
    labels = {
        "m-small@cheap/fp16/tp1pp1": "small",
        "m-big@fast/fp16/tp2pp1": "big",
        "m-small@cheap/int4/tp1pp1": "slow",
    }
    return {labels[c.name]: int(n) for c, n in zip(env.instance.configurations, replicas, strict=True)}


@pytest.mark.parametrize("solver", ["highs", "scip"])
def test_oracle__holds_replicas_across_a_dip_when_starts_cost_more_than_they_save(solver):
    # Holding big: 5 + 3.2 + 5 + one start ($1) = $14.20. Switching to small + slow in the dip saves $0.80 of
    # running cost but starts three more replicas ($3): $16.40.
    env = toy_env(start_cost=1.0)
    result = solve_oracle(env, solver=solver, time_limit_s=None, relative_gap=EXACT)
    assert result.status == "optimal"
    assert [toy_counts(env, n) for n in result.replicas] == [{"small": 0, "big": 1, "slow": 0}] * 3
    assert result.objective == pytest.approx(14.2, rel=1e-6)
    assert result.bound <= result.objective + 1e-9
    assert result.warm_start_objective == pytest.approx(16.4, rel=1e-6)  # the per-period optima switch


def test_oracle__switches_in_the_dip_when_starts_are_free():
    env = toy_env(start_cost=0.0)
    result = solve_oracle(env, time_limit_s=None, relative_gap=EXACT)
    assert toy_counts(env, result.replicas[1]) == {"small": 1, "big": 0, "slow": 1}
    assert result.objective == pytest.approx(12.4, rel=1e-6)
    assert result.gap == pytest.approx(0.0, abs=1e-6)


def test_oracle__replayed_schedule_costs_its_objective_without_queueing():
    # Without queueing (and κ_D = 1) the environment charges exactly what the MILP prices.
    env = toy_env(start_cost=1.0, queueing=False)
    result = solve_oracle(env, time_limit_s=None, relative_gap=EXACT)
    total = sum(env.step(n)[4]["total_cost"] for n in result.replicas)
    assert total == pytest.approx(result.objective, rel=1e-6)


def realised_costs(horizon_hours: float, queueing: bool) -> tuple[float, float, dict[str, float]]:
    """On the first hours of the default environment's test day: the oracle's objective, its realised cost, and
    the planners' realised costs, in $."""
    env = ProvisioningEnv(horizon_hours=horizon_hours, queueing=queueing)
    costs = {
        name: run_episode(env, make_policy(name, env), seed=0, options={"day": DAY})[0]["total_cost"]
        for name in ("gh-rolling", "agh-rolling", "agh-static")
    }
    policy = OraclePolicy(env, time_limit_s=None, relative_gap=EXACT)
    oracle_cost = run_episode(env, policy, seed=0, options={"day": DAY})[0]["total_cost"]
    assert policy.last_result.status == "optimal"
    return policy.last_result.objective, oracle_cost, costs


@pytest.mark.parametrize("horizon_hours", [0.5, pytest.param(2.0, marks=pytest.mark.slow)])
def test_oracle__realised_cost_is_at_most_every_planner_policy(horizon_hours):
    # Without queueing the oracle's realised cost is its MILP objective, the minimum over all schedules (to its
    # relative gap). With queueing every schedule pays a surcharge the MILP ignores; the oracle can lose at most its
    # own surcharge against another schedule.
    objective, plain, costs_plain = realised_costs(horizon_hours, queueing=False)
    assert plain == pytest.approx(objective, rel=1e-6)
    for cost in costs_plain.values():
        assert plain <= cost * (1.0 + 1e-4)
    _, queued, costs_queued = realised_costs(horizon_hours, queueing=True)
    assert objective <= queued
    surcharge = queued - plain
    for cost in costs_queued.values():
        assert queued <= cost * (1.0 + 1e-4) + surcharge


def test_oracle__policy_completes_an_episode_and_reports_its_result():
    env = ProvisioningEnv(horizon_hours=0.5)
    policy = make_policy("oracle", env)
    assert policy.name == "oracle"
    record, periods = run_episode(env, policy, seed=1, options={"day": DAY})
    assert len(periods) == env.num_periods
    result = policy.last_result
    assert result.replicas.shape == (env.num_periods, env.instance.num_configurations)
    assert result.is_lower_bound
    assert result.bound <= result.objective <= record["total_cost"]


def test_oracle__names_carry_the_period():
    env = toy_env(start_cost=1.0)
    model = build_oracle_model(env)  # keep the model (and its solver) alive while reading its variables
    names = {var.name() for var in model.solver.variables()}
    assert {"n[c=m-big@fast/fp16/tp2pp1,t=2]", "z[c=m-big@fast/fp16/tp2pp1,t=0]", "u[i=B,t=1]"} <= names


def test_oracle__bound_validity_flag_follows_overload_and_penalties():
    assert is_lower_bound(toy_env(start_cost=1.0))
    # κ_D·ρ_max = 1.04 > 0.98: overload can drop requests, which costs φ = $1 > κ_D·ρ·D ≤ 1.3·0.01·2.
    assert is_lower_bound(toy_env(start_cost=1.0, delay_inflation=1.3))
    # κ_D = 100: serving a request on a 2-s route costs 100·0.01·2 = $2 > φ, so overload drops could save money.
    assert not is_lower_bound(toy_env(start_cost=1.0, delay_inflation=100.0))


def test_oracle__rejects_bad_arguments():
    with pytest.raises(OracleError, match="reset"):
        solve_oracle(ProvisioningEnv(instance=toy_instance(), demand="synthetic", period_minutes=60, horizon_hours=2))
    env = toy_env(start_cost=1.0)
    bad = ({"solver": "cplex"}, {"time_limit_s": 0.0}, {"threads": 0}, {"threads": 2}, {"relative_gap": -1.0})
    for kwargs in bad:
        with pytest.raises(OracleError):
            solve_oracle(env, **kwargs)


@pytest.mark.slow
def test_oracle__default_day_proves_one_percent_within_the_default_limit():
    env = ProvisioningEnv()
    env.reset(seed=0, options={"day": DAY})
    result = solve_oracle(env)
    assert result.status == "optimal" and result.gap <= 0.01 and result.runtime_s <= 300.0
