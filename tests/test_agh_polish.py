"""AGH's MILP polish (baselines/milp/agh_polish.py): a hand-checkable swap of several replicas at once, the
neighbourhood, determinism, the switch, and the (20, 20, 24) instance where every other move is stuck."""

import numpy as np
import pytest

from servegym.baselines.heuristics.active_routing import ActiveRouter
from servegym.baselines.heuristics.adaptive import MAX_SEARCH_SOLVES, relevant_configurations, solve_agh
from servegym.baselines.heuristics.greedy_context import build_context
from servegym.baselines.heuristics.local_search import LocalSearch
from servegym.baselines.heuristics.mechanisms import ALL_MECHANISMS
from servegym.baselines.milp import agh_polish as polish_module
from servegym.baselines.milp.agh_polish import milp_polish, neighbourhood
from servegym.baselines.runner.policies import AGH_IN_ENV, AGH_REPLANNING
from servegym.envs.evaluation import evaluate_plan
from servegym.envs.instance import Configuration, Instance, QueryType
from servegym.envs.scenarios import make_instance
from tests.test_adaptive import unpriced_moves


def _two_specialists_instance() -> Instance:
    """Types A and B (150 requests/hour each, nothing may go unserved, ρ = $0.01 per request-second) on GPU type
    ``g`` ($1 per GPU-hour): a TP-2 generalist (μ = 400/h for both, D = 1.5 s) and two TP-1 specialists, one per
    type (μ = 200/h, D = 1 s; 20 s, over the 10 s delay SLO, for the other type).

    The generalist alone costs $2 + 300·1.5·0.01 = $6.50/hour; both specialists $2 + 300·1·0.01 = $5/hour. Either
    specialist alone leaves a type without a route, and the generalist with one specialist costs
    $3 + 150·1·0.01 + 150·1.5·0.01 = $6.75/hour: the optimum needs three replica changes at once."""
    configurations = (
        Configuration("generalist", "g", "fp16", 2, 1),
        Configuration("a-specialist", "g", "fp16", 1, 1),
        Configuration("b-specialist", "g", "fp16", 1, 1),
    )
    query_types = tuple(QueryType(name, "general", 150.0, 100.0, 10.0, 10.0, 0.10, 0.0, 1.0, 0.01) for name in "AB")
    return Instance(
        name="two-specialists",
        query_types=query_types,
        models=("generalist", "a-specialist", "b-specialist"),
        gpus=("g",),
        configurations=configurations,
        config_model=np.array([0, 1, 2]),
        config_gpu=np.zeros(3, dtype=np.int64),
        gpus_per_replica=np.array([2, 1, 1]),
        gpu_price_per_hour=np.array([1.0]),
        gpu_availability=np.array([8]),
        capacity_per_hour=np.array([[400.0, 200.0, 200.0], [400.0, 200.0, 200.0]]),
        delay_s=np.array([[1.5, 1.0, 20.0], [1.5, 20.0, 1.0]]),
        error_rate=np.full((2, 3), 0.05),
        demand_per_hour=np.array([150.0, 150.0]),
        model_storage_gb=np.full(3, 2.0),
        storage_price_per_gb_hour=0.0,
        storage_capacity_gb=100.0,
        budget_per_hour=10.0,
        design_utilisation=0.8,
        startup_s=np.zeros(3),
    )


def _search(instance: Instance) -> LocalSearch:
    return LocalSearch(build_context(instance, ALL_MECHANISMS), ActiveRouter(instance), None, MAX_SEARCH_SOLVES)


def test_polish__swaps_the_generalist_for_both_specialists_at_once():
    instance = _two_specialists_instance()
    search = _search(instance)
    point = search.evaluate(np.array([1, 0, 0]))
    assert point is not None and point.cost == pytest.approx(6.5)
    for one_change in ([1, 1, 0], [1, 0, 1]):
        assert search.evaluate(np.array(one_change)).cost == pytest.approx(6.75)
    for infeasible in ([0, 1, 0], [0, 0, 1]):
        assert search.evaluate(np.array(infeasible)) is None
    better = milp_polish(search, point)
    assert better is not None
    assert better.replicas.tolist() == [0, 1, 1]
    assert better.cost == pytest.approx(5.0)
    assert evaluate_plan(instance, better.plan).feasible


def test_polish__none_at_the_optimum():
    instance = _two_specialists_instance()
    search = _search(instance)
    assert milp_polish(search, search.evaluate(np.array([0, 1, 1]))) is None


def test_neighbourhood__active_siblings_then_re_models_within_the_route_budget():
    instance = make_instance("random", size=(20, 20, 24), seed=0)
    work = instance.restrict(relevant_configurations(build_context(instance, ALL_MECHANISMS)))
    replicas = solve_agh(work).plan.replicas
    routes = work.route_allowed.sum(axis=0)
    active = np.flatnonzero(replicas > 0)
    for budget in (500, 1500):
        chosen = neighbourhood(work, replicas, budget)
        assert set(active.tolist()) <= set(chosen.tolist())
        assert routes[chosen].sum() <= budget
        gpu = work.config_gpu
        assert all(np.any(gpu[c] == gpu[active]) for c in chosen), "siblings and re-models share an active GPU type"
    assert len(neighbourhood(work, replicas, 500)) < len(neighbourhood(work, replicas, 1500))
    small = _two_specialists_instance()
    assert neighbourhood(small, np.array([1, 0, 0])).tolist() == [0, 1, 2], "a small instance is freed whole"


def test_agh__polish_reaches_the_optimum_where_every_other_move_is_stuck():
    # AGH stopped 8.1 % above the optimum (MILP, $35.88, results/bench_planners.json): regrouping two TP-1 H100
    # replicas into one TP-2, merging two TP-1 7B replicas into one TP-2 and re-modelling an A100 replica; none
    # of the three, nor any two of them, pays alone.
    instance = make_instance("random", size=(20, 20, 24), seed=0)
    stuck = solve_agh(instance)
    search = _search(instance)
    point = search.evaluate(stuck.plan.replicas)
    for move in (*unpriced_moves(search), search.priced_swap):
        assert move(point) is None, move.__name__
    polished = solve_agh(instance, polish=milp_polish)
    assert polished.status == "feasible"
    assert evaluate_plan(instance, polished.plan).feasible
    assert polished.total_cost < 0.93 * stuck.total_cost
    assert polished.total_cost == pytest.approx(35.8827, abs=1e-3)
    assert np.count_nonzero(polished.plan.replicas != stuck.plan.replicas) >= 3


def test_agh__polish_is_deterministic_per_seed():
    instance = make_instance("random", size=(10, 10, 10), seed=0)
    first, second = (solve_agh(instance, seed=3, polish=milp_polish) for _ in range(2))
    assert np.array_equal(first.plan.replicas, second.plan.replicas)
    assert np.array_equal(first.plan.routing, second.plan.routing)
    assert first.total_cost == second.total_cost
    assert evaluate_plan(instance, first.plan).feasible


def test_agh__polish_only_when_passed_and_never_in_the_environment():
    instance = make_instance("random", size=(10, 10, 10), seed=0)
    without, with_it = solve_agh(instance), solve_agh(instance, polish=milp_polish)
    assert with_it.total_cost < 0.9 * without.total_cost  # 16.42 → 14.64, the MILP optimum
    assert AGH_IN_ENV["polish"] is None and AGH_REPLANNING["polish"] is None
    in_env = solve_agh(instance, **AGH_IN_ENV)
    assert np.array_equal(in_env.plan.replicas, solve_agh(instance, priced_moves=False).plan.replicas)
    assert in_env.total_cost > with_it.total_cost


def test_polish__skipped_on_working_instances_beyond_the_route_limit(monkeypatch):
    instance = _two_specialists_instance()
    search = _search(instance)
    point = search.evaluate(np.array([1, 0, 0]))
    monkeypatch.setattr(polish_module, "POLISH_MAX_WORKING_ROUTES", 3)
    assert milp_polish(search, point) is None
