"""The routing LP against hand-solved toy cases (see envs/toy.py)."""

import dataclasses

import numpy as np
import pytest

from servegym.envs.evaluation import evaluate_plan
from servegym.envs.instance import Instance
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


def test_router__in_a_used_highs_object_routes_bit_for_bit_as_a_fresh_one():
    # ActiveRouter hands a discarded router's HiGHS object to the next one: passing the new LP in must leave no trace.
    instance = toy_instance()
    used = Router(instance.with_demand(np.array([150.0, 20.0])))
    used.route(np.array([0, 1, 1]), relax_unmet_cap=True)
    used.route(np.array([3, 0, 0]))
    reused, fresh = Router(instance, highs=used.highs), Router(instance)
    assert reused.highs is used.highs
    for replicas in ([2, 0, 1], [1, 0, 1], [1, 1, 1]):
        a = reused.route(np.array(replicas), relax_unmet_cap=True, prices=True)
        b = fresh.route(np.array(replicas), relax_unmet_cap=True, prices=True)
        assert a.objective_per_hour == b.objective_per_hour
        assert a.plan.routing.tobytes() == b.plan.routing.tobytes()
        assert a.prices.demand_per_request.tobytes() == b.prices.demand_per_request.tobytes()


def test_router__rejects_wrong_shapes():
    with pytest.raises(ValueError, match="expected"):
        Router(toy_instance()).route(np.array([1, 2]))


def _toy_with(delay_s: list[list[float]], error_rate: list[list[float]], demand_per_hour: list[float]) -> Instance:
    """The toy instance with other delays, error rates and demand (the hand-solved dual cases below)."""
    toy = toy_instance()
    return dataclasses.replace(
        toy,
        delay_s=np.array(delay_s),
        error_rate=np.array(error_rate),
        query_types=tuple(
            dataclasses.replace(query_type, arrival_rate_per_hour=rate)
            for query_type, rate in zip(toy.query_types, demand_per_hour, strict=True)
        ),
        demand_per_hour=np.array(demand_per_hour),
    )


def test_router__prices_of_a_full_capacity_row_match_the_hand_solved_duals():
    # n = (1, 0, 1): small and slow each carry 80 requests/hour (μ = 100, ρ_max = 0.8). A (140/h) pays
    # $0.01·1 s on small and $0.01·3 s on slow; B (10/h, only small) $0.01·2 s. Optimum: B 10 and A 70 on small
    # (full), A 70 on slow (slack); error rates are all below the SLOs. Objective 0.7 + 2.1 + 0.2 = $3.0/h.
    # One more A goes to slow: $0.03. One more B on small pushes one A from small to slow: 0.02 + 0.02 = $0.04.
    # One more unit of small's capacity row (100 requests) moves 100 A from slow to small: saves $2.0/h.
    instance = _toy_with([[1.0, 1.0, 3.0], [2.0, 1.0, 20.0]], [[0.05] * 3, [0.05] * 3], [140.0, 10.0])
    result = Router(instance).route(np.array([1, 0, 1]), prices=True)
    assert result.objective_per_hour == pytest.approx(3.0)
    np.testing.assert_allclose(result.prices.demand_per_request, [0.03, 0.04], atol=1e-9)
    np.testing.assert_allclose(result.prices.capacity_per_load[[0, 2]], [2.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(result.prices.error_per_request, [0.0, 0.0], atol=1e-9)


def test_router__prices_of_a_binding_error_row_match_the_hand_solved_duals():
    # n = (2, 0, 2): capacity to spare. A (100/h, ε = 0.10) has error 0.15 on small ($0.01) and 0.05 on slow
    # ($0.03), so its average holds only with x_small ≤ x_slow: 50 / 50. B 10 on small. Objective
    # 0.5 + 1.5 + 0.2 = $2.2/h. One more A splits half and half: $0.02. Allowing one more erroneous A request per
    # hour (0.05·x_small − 0.05·x_slow ≤ 1) moves 10 A from slow to small: saves 10·0.02 = $0.2/h.
    instance = _toy_with([[1.0, 1.0, 3.0], [2.0, 1.0, 20.0]], [[0.15, 0.05, 0.05], [0.05] * 3], [100.0, 10.0])
    result = Router(instance).route(np.array([2, 0, 2]), prices=True)
    assert result.objective_per_hour == pytest.approx(2.2)
    np.testing.assert_allclose(result.prices.demand_per_request, [0.02, 0.02], atol=1e-9)
    np.testing.assert_allclose(result.prices.capacity_per_load[[0, 2]], [0.0, 0.0], atol=1e-9)  # big: n = 0
    np.testing.assert_allclose(result.prices.error_per_request, [0.2, 0.0], atol=1e-9)


def test_router__prices_only_when_asked_and_feasible():
    router = Router(toy_instance())
    assert router.route(np.array([2, 0, 1])).prices is None
    assert router.route(np.array([1, 0, 1]), prices=True).prices is None  # infeasible with the unmet cap
