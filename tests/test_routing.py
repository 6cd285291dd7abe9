"""The routing LP against hand-solved toy cases (see envs/toy.py)."""

import numpy as np
import pytest

from servegym.envs.evaluation import evaluate_plan
from servegym.envs.routing import Router
from servegym.envs.toy import toy_instance


def test_router__hand_solved_case_is_unique_and_feasible():
    # Two small + one slow replica: B only fits on small (slow breaks Δ_B); A's error SLO forces A_small ≤ A_slow,
    # and slow holds at most 0.8·100 = 80, so A splits 80/80 and everything is served: 200 · 2 s · $0.01 = $4/h.
    instance = toy_instance()
    result = Router(instance).route(np.array([2, 0, 1]))
    assert result.feasible
    assert result.objective_per_hour == pytest.approx(4.0)
    np.testing.assert_allclose(result.plan.routing, [[80.0, 0.0, 80.0], [40.0, 0.0, 0.0]], atol=1e-7)
    np.testing.assert_allclose(result.plan.unserved, [0.0, 0.0], atol=1e-7)
    assert evaluate_plan(instance, result.plan).feasible


def test_router__strict_unmet_cap_infeasible_relaxed_drops_the_overflow():
    # One small + one slow replica carry only 160 of the 200 requests/hour; ζ = 0.1 allows dropping 20.
    router = Router(toy_instance())
    strict = router.route(np.array([1, 0, 1]))
    assert not strict.feasible and strict.objective_per_hour == float("inf")
    relaxed = router.route(np.array([1, 0, 1]), relax_unmet_cap=True)
    assert relaxed.feasible
    assert relaxed.plan.unserved.sum() == pytest.approx(40.0)
    assert relaxed.objective_per_hour == pytest.approx(160 * 0.02 + 40 * 1.0)


def test_router__reuse_with_new_demand_matches_a_fresh_router():
    instance = toy_instance()
    router = Router(instance)
    router.route(np.array([0, 1, 0]))
    demand = np.array([100.0, 30.0])
    reused = router.route(np.array([2, 0, 1]), demand)
    fresh = Router(instance.with_demand(demand)).route(np.array([2, 0, 1]))
    assert reused.objective_per_hour == pytest.approx(fresh.objective_per_hour)
    assert reused.plan.routing.sum(axis=1) == pytest.approx(demand)


def test_router__rejects_wrong_shapes():
    with pytest.raises(ValueError, match="expected"):
        Router(toy_instance()).route(np.array([1, 2]))
