"""The rule book of the shared limits (envs/limits.py): hand-computed excess, the tolerance edge, and agreement
with evaluate_plan and the MILP's budget row."""

import numpy as np
import pytest

from servegym.baselines.milp.model import build_model
from servegym.envs.candidates import select_candidates
from servegym.envs.evaluation import Plan, evaluate_plan
from servegym.envs.limits import (
    FEASIBILITY_TOLERANCE,
    budget_room_per_hour,
    exceeds,
    gpus_used,
    limit_excess,
    spend_per_hour,
    storage_gb,
    tolerance,
    within_limits,
)
from servegym.envs.scenarios import make_instance
from servegym.envs.toy import toy_instance

LIMIT_FAMILIES = ("budget", "availability", "storage", "max_replicas")


def priced_toy():
    """The toy instance with a tight budget, small storage and a storage price, so every limit can bind."""
    return toy_instance().with_changes(budget_per_hour=2.0, storage_capacity_gb=10.0, storage_price_per_gb_hour=0.05)


def test_limit_excess__hand_computed_on_the_toy_instance():
    # n = (0, 3, 0): three big replicas (2 GPUs, $3/hour each) of m-big (16 GB); A and B unserved 30 and 0.
    excess = limit_excess(priced_toy(), np.array([0, 3, 0]), unserved=np.array([30.0, 0.0]))
    assert excess.budget_per_hour == pytest.approx(9.0 + 16 * 0.05 - 2.0)  # rental 9 + storage 0.8 − δ 2
    assert excess.availability_gpus.tolist() == [0.0, 2.0]  # 6 fast GPUs of 4
    assert excess.storage_gb == pytest.approx(6.0)  # 16 GB of 10
    assert excess.max_replicas.tolist() == [0.0, 1.0, 0.0]  # n_max(big) = 4 // 2
    assert excess.unmet_cap == pytest.approx([30.0 - 16.0, 0.0])  # ζ·λ = 0.1·160, 0.1·40
    assert not excess.within()


def test_limit_excess__helpers_and_feasible_toy_plan():
    instance = priced_toy().with_changes(budget_per_hour=10.0, storage_capacity_gb=100.0)
    n = np.array([1, 1, 0])  # one small (1 GPU, $1) and one big (2 GPUs, $3): both models stored, 18 GB
    assert spend_per_hour(instance, n) == pytest.approx(4.0 + 18 * 0.05)
    assert storage_gb(instance, n) == pytest.approx(18.0)
    assert gpus_used(instance, n).tolist() == [1.0, 2.0]
    excess = limit_excess(instance, n)
    assert excess.within() and within_limits(instance, n)
    assert excess.unmet_cap.tolist() == [0.0, 0.0]  # no unserved demand given
    assert budget_room_per_hour(instance, spend_per_hour(instance, n)) == pytest.approx(10.0 - 4.9 + 1e-5)


def test_limit_excess__unmet_cap_scales_with_the_given_demand():
    excess = limit_excess(toy_instance(), np.zeros(3), unserved=np.array([30.0, 0.0]), demand_per_hour=[400.0, 0.0])
    assert excess.unmet_cap.tolist() == [0.0, 0.0]  # ζ·λ = 40 ≥ 30


def test_exceeds__at_the_tolerance_edge():
    assert tolerance(10.0) == pytest.approx(1e-5) and tolerance(0.5) == FEASIBILITY_TOLERANCE
    assert tolerance(np.array([0.0, -20.0])) == pytest.approx([1e-6, 2e-5])
    assert not exceeds(10.0 + tolerance(10.0), 10.0)  # exactly at limit + tolerance: within
    assert not exceeds(10.0 + 0.99e-5, 10.0) and exceeds(10.0 + 1.01e-5, 10.0)  # relative: 1e-6 · 10
    assert not exceeds(0.5 + 0.9e-6, 0.5) and exceeds(0.5 + 1.1e-6, 0.5)  # tolerance at least 1e-6
    assert exceeds(np.array([1.0, 3.0]), np.array([2.0, 2.0])).tolist() == [False, True]
    assert not exceeds(1e300, np.inf)  # an infinite limit never binds


def test_limit_excess__within_the_tolerance_counts_as_zero_and_matches_evaluate_plan():
    n = np.array([1, 1, 0])
    base = priced_toy().with_changes(storage_capacity_gb=100.0)  # only the budget can bind
    spend = spend_per_hour(base, n)
    plan = Plan(n, np.zeros((2, 3)), np.array([160.0, 40.0]))
    for overshoot, over in ((0.5, False), (2.0, True)):  # spend − δ in units of tolerance(δ) = 1e-6·δ
        instance = base.with_changes(budget_per_hour=spend / (1.0 + overshoot * FEASIBILITY_TOLERANCE))
        excess = limit_excess(instance, n)
        budget = [v for v in evaluate_plan(instance, plan).violations if v.constraint == "budget"]
        assert (excess.budget_per_hour > 0.0) == over == bool(budget) == (not within_limits(instance, n))
        assert (budget_room_per_hour(instance, spend) < 0.0) == over
        if over:
            assert excess.budget_per_hour == budget[0].excess == spend - instance.budget_per_hour


def _azure_candidates():
    azure = make_instance("azure")
    return azure.restrict(select_candidates(azure, max_candidates=24))


def _random_replicas(instance, rng: np.random.Generator) -> np.ndarray:
    """Sparse replica vectors around the limits: up to 12 active configurations with up to n_max + 1 replicas,
    often scaled down so that the budget binds in some draws and not in others."""
    replicas = np.zeros(instance.num_configurations, dtype=np.int64)
    active = rng.choice(instance.num_configurations, size=rng.integers(1, 13), replace=True)
    scale = rng.choice([1.0, 0.25, 0.05])
    replicas[active] = np.ceil(scale * rng.integers(0, instance.max_replicas[active] + 2))
    return replicas


@pytest.mark.parametrize(
    "name, build, draws",
    [
        ("azure-24", _azure_candidates, 200),
        *((f"random-{s}", lambda s=s: make_instance("random", size=(6, 6, 10), seed=s), 60) for s in range(4)),
    ],
)
def test_limit_excess__agrees_with_evaluate_plan_on_random_replica_vectors(name, build, draws):
    instance = build()
    rng = np.random.default_rng(7)
    outcomes = set()
    for _ in range(draws):
        n = _random_replicas(instance, rng)
        plan = Plan(n, np.zeros((instance.num_query_types, instance.num_configurations)), instance.demand_per_hour)
        evaluation = evaluate_plan(instance, plan)
        limits_hit = [v for v in evaluation.violations if v.constraint in LIMIT_FAMILIES]
        excess = limit_excess(instance, n)
        assert excess.within() == (not limits_hit) == within_limits(instance, n), (name, n)
        budget = [v for v in limits_hit if v.constraint == "budget"]
        assert (excess.budget_per_hour > tolerance(instance.budget_per_hour)) == bool(budget), (name, n)
        if budget:
            assert budget[0].excess == excess.budget_per_hour
        assert evaluation.spend_per_hour == spend_per_hour(instance, n)
        by_family = {(v.constraint, v.subject): v.excess for v in limits_hit}
        gpu_names = list(instance.gpus)
        for g in np.flatnonzero(excess.availability_gpus):
            assert by_family[("availability", gpu_names[g])] == excess.availability_gpus[g]
        assert (excess.storage_gb > 0) == (("storage", "total") in by_family)
        assert int((excess.max_replicas > 0).sum()) == sum(family == "max_replicas" for family, _ in by_family)
        outcomes.add(excess.within())
        outcomes.add(("budget", bool(budget)))
    assert outcomes >= {True, False, ("budget", True), ("budget", False)}, name


def test_milp_budget_row__is_spend_per_hour_in_linear_form():
    for instance in (priced_toy(), make_instance("random", size=(6, 6, 10), seed=1)):
        model = build_model(instance, "GLOP", integral=False)
        [row] = [row for row in model.solver.constraints() if row.name() == "budget"]
        rng = np.random.default_rng(0)
        for _ in range(20):
            n = _random_replicas(instance, rng)
            plan = Plan(n, np.zeros((instance.num_query_types, instance.num_configurations)), instance.demand_per_hour)
            activity = sum(
                row.GetCoefficient(var) * value
                for var, value in zip(model.variables(), model.plan_values(plan), strict=True)
            )
            assert activity == pytest.approx(spend_per_hour(instance, n), rel=1e-12)
            assert row.ub() == instance.budget_per_hour
