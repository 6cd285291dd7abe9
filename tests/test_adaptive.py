"""AGH (baselines/heuristics/adaptive.py): hand optimum on the toy, brute-force bounds on tiny instances,
determinism."""

import dataclasses
import itertools

import numpy as np
import pytest

from servegym.baselines.heuristics.active_routing import _CACHED_ROUTERS, ActiveRouter
from servegym.baselines.heuristics.adaptive import MAX_SEARCH_SOLVES, solve_agh, start_orders
from servegym.baselines.heuristics.greedy import arrival_rate_order, construct, solve_gh
from servegym.baselines.heuristics.greedy_context import build_context
from servegym.baselines.heuristics.local_search import LocalSearch
from servegym.baselines.heuristics.mechanisms import ALL_MECHANISMS, Mechanisms
from servegym.envs.evaluation import evaluate_plan
from servegym.envs.instance import Configuration, Instance, QueryType
from servegym.envs.routing import Router
from servegym.envs.scenarios import make_instance
from servegym.envs.toy import tiny_random_instance, toy_instance

TINY_SEEDS = range(20)


def brute_force_optimum(instance) -> float:
    """Cheapest feasible plan over every replica vector up to max_replicas, each routed strictly by the LP."""
    router = Router(instance)
    best = np.inf
    for counts in itertools.product(*(range(m + 1) for m in instance.max_replicas)):
        replicas = np.array(counts)
        gpus = np.bincount(
            instance.config_gpu, weights=replicas * instance.gpus_per_replica, minlength=len(instance.gpus)
        )
        if replicas @ instance.replica_price_per_hour > instance.budget_per_hour or np.any(
            gpus > instance.gpu_availability
        ):
            continue  # rental alone breaks the budget or availability: infeasible whatever the routing
        try:
            routed = router.route(replicas)
        except RuntimeError:  # HiGHS may end without a verdict after an infeasible warm start: retry cold
            router = Router(instance)
            routed = router.route(replicas)
        if routed.feasible:
            evaluation = evaluate_plan(instance, routed.plan)
            if evaluation.feasible:
                best = min(best, evaluation.cost.total)
    return best


def unpriced_moves(search: LocalSearch) -> tuple:
    """Every neighbourhood of ``search`` but the priced swaps, as bound methods (each returns a point or None)."""
    return (
        search.relocate,
        search.consolidate,
        search.rebuild,
        search.merge,
        search.sibling,
        search.relocate_with_helper,
    )


def test_agh__finds_the_toy_hand_optimum():
    result = solve_agh(toy_instance())
    assert result.status == "feasible", result.message
    assert result.method == "agh"
    assert result.total_cost == pytest.approx(5.0)
    assert result.plan.replicas.tolist() == [0, 1, 0]


@pytest.mark.parametrize("seed", TINY_SEEDS)
def test_agh__tiny_random_is_feasible_not_below_brute_force_and_not_above_gh(seed):
    instance = tiny_random_instance(seed)
    agh, gh = solve_agh(instance), solve_gh(instance)
    optimum = brute_force_optimum(instance)
    assert evaluate_plan(instance, agh.plan).feasible == (agh.status == "feasible"), agh.message
    if agh.feasible:
        assert agh.total_cost >= optimum - 1e-6
    if agh.feasible and gh.feasible:
        assert agh.total_cost <= gh.total_cost + 1e-6
    if gh.feasible:
        assert agh.feasible
    if np.isfinite(optimum):
        assert agh.total_cost <= 1.5 * optimum  # loose quality guard; see docs/heuristics.md for measured gaps


def test_agh__same_seed_gives_the_same_plan():
    instance = make_instance("random", size=(6, 6, 10), seed=2)
    first, second = solve_agh(instance, seed=3), solve_agh(instance, seed=3)
    np.testing.assert_array_equal(first.plan.replicas, second.plan.replicas)
    np.testing.assert_array_equal(first.plan.routing, second.plan.routing)
    assert first.message == second.message


def test_agh__seed_only_changes_the_random_orders():
    instance = make_instance("random", size=(6, 6, 10), seed=2)
    deterministic = start_orders(instance, seed=0, random_starts=0)
    for seed in (0, 1):
        orders = start_orders(instance, seed=seed, random_starts=4)
        assert [o.tolist() for o in orders[: len(deterministic)]] == [o.tolist() for o in deterministic]
    assert start_orders(instance, 0, 4)[-1].tolist() != start_orders(instance, 1, 4)[-1].tolist()


def test_agh__over_budget_toy_is_infeasible_and_names_the_budget():
    result = solve_agh(toy_instance().with_changes(budget_per_hour=1.0))
    assert result.status == "infeasible"
    assert "blocked by budget" in result.message


def test_agh__improves_on_gh_on_paper():
    instance = make_instance("paper")
    gh, agh = solve_gh(instance), solve_agh(instance)
    assert agh.feasible
    assert agh.total_cost <= gh.total_cost + 1e-9


def test_agh__time_limit_still_returns_a_judged_plan():
    instance = make_instance("random", size=(6, 6, 10), seed=2)
    result = solve_agh(instance, time_limit_s=1e-6)
    assert result.status in ("feasible", "infeasible")
    assert evaluate_plan(instance, result.plan).feasible == result.feasible


def test_agh__without_coverage_ranking_changes_its_search_on_paper():
    instance = make_instance("paper")
    full = solve_agh(instance)
    without = solve_agh(instance, mechanisms=Mechanisms(coverage_ranking=False))
    assert full.message != without.message or not np.array_equal(full.plan.replicas, without.plan.replicas)


def test_local_search__merge_moves_several_deployments_where_single_moves_are_stuck():
    # seed 3: with the measured matmul rate per GPU (model v2, fourth round) the property no longer holds at seed 0
    instance = make_instance("random", size=(15, 15, 15), seed=3)
    context = build_context(instance, ALL_MECHANISMS)
    search = LocalSearch(context, ActiveRouter(instance), None, MAX_SEARCH_SOLVES)
    point = search.evaluate(construct(context, arrival_rate_order(instance)).fleet.replicas)
    while (better := search.relocate(point) or search.consolidate(point) or search.rebuild(point)) is not None:
        point = better
    merged = search.merge(point)
    assert merged is not None, "relocate, consolidation and rebuild are stuck; a merge improves"
    assert merged.cost < point.cost
    assert ((point.replicas > 0) & (merged.replicas == 0)).sum() >= 2, "at least two deployments removed"
    assert evaluate_plan(instance, merged.plan).feasible


def test_local_search__relocation_one_replica_short_where_every_other_move_is_stuck():
    instance = make_instance("random", size=(15, 15, 15), seed=11)  # found by trying seeds 0-11 (model v2)
    stuck = solve_agh(instance, helpers=False, priced_moves=False)
    context = build_context(instance, ALL_MECHANISMS)
    search = LocalSearch(context, ActiveRouter(instance), None, MAX_SEARCH_SOLVES)
    point = search.evaluate(stuck.plan.replicas)
    for move in (search.relocate, search.consolidate, search.rebuild, search.merge, search.sibling):
        assert move(point) is None, move.__name__
    better = search.relocate_with_helper(point)
    assert better is not None and better.cost < point.cost
    assert evaluate_plan(instance, better.plan).feasible
    removed, added = np.flatnonzero(better.replicas < point.replicas), np.flatnonzero(better.replicas > point.replicas)
    assert len(removed) == 1 and 1 <= len(added) <= 2
    assert set(instance.config_model[added]) >= {instance.config_model[removed[0]]}, "the same model elsewhere"
    agh = solve_agh(instance)
    assert agh.total_cost <= better.cost + 1e-9 and evaluate_plan(instance, agh.plan).feasible


def test_local_search__helper_replica_serves_what_a_short_relocation_leaves_over():
    # Found by trying seeds 0-7 of six sizes (the (40, 40, 40) instance of seed 3 it was written on changed with the
    # catalog generator and no longer needs a helper); 2 s.
    instance = make_instance("random", size=(20, 20, 24), seed=4)
    stuck = solve_agh(instance, helpers=False, priced_moves=False)
    helped = solve_agh(instance, priced_moves=False)
    assert evaluate_plan(instance, helped.plan).feasible
    assert helped.total_cost < 0.97 * stuck.total_cost  # 83.82 → 80.43 (the MILP optimum is 80.04)
    assert np.count_nonzero(helped.plan.replicas) > np.count_nonzero(stuck.plan.replicas)


@pytest.mark.parametrize("seed", range(3))
def test_active_router__evaluate_equals_evaluate_plan_on_the_whole_instance(seed):
    instance = make_instance("random", size=(10, 10, 10), seed=seed)
    router = ActiveRouter(instance)
    rng = np.random.default_rng(seed)
    vectors = [solve_agh(instance).plan.replicas, solve_gh(instance).plan.replicas]
    vectors += [rng.integers(0, 2, instance.num_configurations) * (rng.random(instance.num_configurations) < 0.01)]
    for replicas in vectors:
        routed = router.route(replicas, relax_unmet_cap=True)
        fast, full = router.evaluate(routed.plan), evaluate_plan(instance, routed.plan)
        assert fast.feasible == full.feasible
        assert [str(v) for v in fast.violations] == [str(v) for v in full.violations]
        assert fast.cost.total == pytest.approx(full.cost.total, rel=1e-12)
        for name in ("utilisation", "error_rate", "delay_slack_s", "gpus_used", "replicas"):
            np.testing.assert_allclose(getattr(fast, name), getattr(full, name), rtol=1e-12, atol=1e-12, err_msg=name)
        assert fast.spend_per_hour == pytest.approx(full.spend_per_hour, rel=1e-12)


def test_local_search__routing_bound_never_exceeds_the_routing_lp():
    instance = make_instance("random", size=(10, 10, 10), seed=1)
    context = build_context(instance, ALL_MECHANISMS)
    router = ActiveRouter(instance)
    search = LocalSearch(context, router, None, MAX_SEARCH_SOLVES)
    rng = np.random.default_rng(0)
    plan = solve_agh(instance).plan.replicas
    feasible = 0
    for _ in range(40):
        replicas = plan.copy()
        replicas[rng.integers(instance.num_configurations, size=3)] += 1
        replicas[rng.choice(np.flatnonzero(replicas))] -= 1
        routed = router.route(replicas)
        if routed.feasible:
            feasible += 1
            assert search._routing_bound(replicas) <= routed.objective_per_hour * (1 + 1e-9) + 1e-9
    assert feasible > 0


def test_active_router__past_its_cache_routes_as_fresh_routers_do():
    # More active sets than the cache holds: the later routers solve in HiGHS objects handed over by evicted ones.
    instance = make_instance("random", size=(6, 6, 10), seed=3)
    router = ActiveRouter(instance)
    base = solve_agh(instance).plan.replicas
    rng = np.random.default_rng(0)
    for k in range(_CACHED_ROUTERS + 12):
        replicas = base.copy()
        replicas[rng.integers(instance.num_configurations, size=2)] += 1
        routed = router.route(replicas, relax_unmet_cap=True)
        active = np.flatnonzero(replicas > 0)
        fresh = Router(instance.restrict(active)).route(replicas[active], relax_unmet_cap=True)
        assert routed.objective_per_hour == fresh.objective_per_hour, k
        assert routed.plan.routing[:, active].tobytes() == fresh.plan.routing.tobytes(), k


def test_local_search__relaxed_routing_bound_never_exceeds_the_relaxed_routing_lp():
    instance = make_instance("random", size=(10, 10, 10), seed=1)
    router = ActiveRouter(instance)
    search = LocalSearch(build_context(instance, ALL_MECHANISMS), router, None, MAX_SEARCH_SOLVES)
    rng = np.random.default_rng(1)
    plan = solve_agh(instance).plan.replicas
    for _ in range(40):  # removals make the relaxed LP drop demand, so both of the bound's terms are exercised
        replicas = plan.copy()
        replicas[rng.integers(instance.num_configurations, size=2)] += 1
        replicas[rng.choice(np.flatnonzero(replicas), size=2)] = 0
        routed = router.route(replicas, relax_unmet_cap=True)
        assert routed.feasible
        assert search._relaxed_routing_bound(replicas) <= routed.objective_per_hour * (1 + 1e-9) + 1e-9
    assert search._relaxed_routing_bound(np.zeros_like(plan)) == pytest.approx(
        instance.unmet_penalty_per_request @ instance.demand_per_hour
    )


@pytest.mark.parametrize("relaxed", [False, True])
def test_local_search__dual_routing_bound_is_the_lp_at_its_point_and_never_exceeds_it_nearby(relaxed):
    # Moves as the search makes them: counts up and down, whole deployments removed, configurations the point has
    # no replicas on opened (their capacity price comes from the line search, not from the point's duals).
    instance = make_instance("random", size=(10, 10, 10), seed=1)
    router = ActiveRouter(instance)
    search = LocalSearch(build_context(instance, ALL_MECHANISMS), router, None, MAX_SEARCH_SOLVES)
    plan = solve_agh(instance).plan.replicas
    point = search.evaluate(plan)
    assert point is not None and point.prices is not None
    at_point = router.route(plan, relax_unmet_cap=relaxed)
    assert search._dual_routing_bound(plan, point, relaxed=relaxed) == pytest.approx(
        at_point.objective_per_hour, rel=1e-6
    )
    rng = np.random.default_rng(2)
    tight = 0
    for _ in range(60):
        replicas = plan.copy()
        replicas[rng.integers(instance.num_configurations, size=rng.integers(1, 3))] += 1
        active = np.flatnonzero(replicas)
        replicas[rng.choice(active, size=rng.integers(1, 3), replace=False)] = rng.integers(0, 2)
        routed = router.route(replicas, relax_unmet_cap=relaxed)
        bound = search._dual_routing_bound(replicas, point, relaxed=relaxed)
        if routed.feasible:
            assert bound <= routed.objective_per_hour * (1 + 1e-9) + 1e-9
            tight += bound > search._relaxed_routing_bound(replicas) + 1e-9
        else:
            assert not relaxed
    assert tight > 0  # the duals bound more than the cheapest-route bound does
    assert search._dual_routing_bound(plan, dataclasses.replace(point, prices=None), relaxed=relaxed) == -np.inf


def _one_type_instance(
    configurations: tuple[Configuration, ...], capacity: list[float], delay_s: list[float]
) -> Instance:
    """One query type (150 requests/hour, ε = 0.1, Δ = 10 s, ρ = $0.01 per request-second) on the given
    configurations of one model family on GPU type ``g`` ($1 per GPU-hour), every error rate 0.05."""
    models = tuple(dict.fromkeys(c.model for c in configurations))
    num_configs = len(configurations)
    return Instance(
        name="one-type",
        query_types=(QueryType("A", "general", 150.0, 100.0, 10.0, 10.0, 0.10, 0.1, 1.0, 0.01),),
        models=models,
        gpus=("g",),
        configurations=configurations,
        config_model=np.array([models.index(c.model) for c in configurations]),
        config_gpu=np.zeros(num_configs, dtype=np.int64),
        gpus_per_replica=np.array([c.tensor_parallel * c.pipeline_parallel for c in configurations]),
        gpu_price_per_hour=np.array([1.0]),
        gpu_availability=np.array([8]),
        capacity_per_hour=np.array([capacity]),
        delay_s=np.array([delay_s]),
        error_rate=np.full((1, num_configs), 0.05),
        demand_per_hour=np.array([150.0]),
        model_storage_gb=np.full(len(models), 2.0),
        storage_price_per_gb_hour=0.0,
        storage_capacity_gb=100.0,
        budget_per_hour=10.0,
        design_utilisation=0.8,
        startup_s=np.zeros(num_configs),
    )


def _priced_swap_from(instance: Instance, replicas: list[int]):
    search = LocalSearch(build_context(instance, ALL_MECHANISMS), ActiveRouter(instance), None, MAX_SEARCH_SOLVES)
    point = search.evaluate(np.array(replicas))
    assert point is not None
    return point, search.priced_swap(point)


def test_local_search__priced_swap_regroups_two_tp1_replicas_into_one_tp2():
    # Two TP-1 replicas (μ = 100/h each, D = 4 s) carry the 150 requests/hour for $2 + 150·4·0.01 = $8/hour; one
    # TP-2 replica on the same two GPUs (μ = 250/h, D = 1 s) for $2 + 150·1·0.01 = $3.5/hour.
    instance = _one_type_instance(
        (Configuration("m", "g", "fp16", 1, 1), Configuration("m", "g", "fp16", 2, 1)), [100.0, 250.0], [4.0, 1.0]
    )
    point, better = _priced_swap_from(instance, [2, 0])
    assert point.cost == pytest.approx(8.0)
    assert better is not None and better.replicas.tolist() == [0, 1]
    assert better.cost == pytest.approx(3.5)


def test_local_search__priced_swap_re_models_on_the_same_hardware():
    # The same GPU, precision, TP and PP degree run model "old" (D = 5 s) or "new" (D = 1 s) at the same $1/hour:
    # $1 + 150·5·0.01 = $8.5/hour against $1 + 150·1·0.01 = $2.5/hour.
    instance = _one_type_instance(
        (Configuration("old", "g", "fp16", 1, 1), Configuration("new", "g", "fp16", 1, 1)), [200.0, 200.0], [5.0, 1.0]
    )
    point, better = _priced_swap_from(instance, [1, 0])
    assert point.cost == pytest.approx(8.5)
    assert better is not None and better.replicas.tolist() == [0, 1]
    assert better.cost == pytest.approx(2.5)


def test_local_search__priced_swap_re_models_where_every_other_move_is_stuck():
    # AGH without the priced swaps stops where no other neighbourhood improves; the optimum (MILP, 33.69) runs
    # Qwen2.5-7B~v17 where AGH runs Qwen2.5-7B, both INT8 TP-2 on an H200 at the same price (found among the
    # instances of scripts/bench_planners.py where AGH was furthest from the optimum).
    instance = make_instance("random", size=(20, 20, 24), seed=2)
    stuck = solve_agh(instance, priced_moves=False)
    search = LocalSearch(build_context(instance, ALL_MECHANISMS), ActiveRouter(instance), None, MAX_SEARCH_SOLVES)
    point = search.evaluate(stuck.plan.replicas)
    for move in unpriced_moves(search):
        assert move(point) is None, move.__name__
    better = search.priced_swap(point)
    assert better is not None and better.cost < point.cost
    assert evaluate_plan(instance, better.plan).feasible
    removed, added = np.flatnonzero(better.replicas < point.replicas), np.flatnonzero(better.replicas > point.replicas)
    assert len(removed) == 1 and len(added) == 1
    old, new = instance.configurations[removed[0]], instance.configurations[added[0]]
    assert old.model != new.model
    assert (old.gpu, old.precision, old.tensor_parallel, old.pipeline_parallel) == (
        new.gpu,
        new.precision,
        new.tensor_parallel,
        new.pipeline_parallel,
    )
    agh = solve_agh(instance)
    assert agh.total_cost <= better.cost + 1e-9 and evaluate_plan(instance, agh.plan).feasible


def test_agh__priced_moves_off_is_the_search_without_them():
    # The in-env settings leave the priced swaps out; on the instance above that is the plan they improve on.
    instance = make_instance("random", size=(20, 20, 24), seed=2)
    without, with_them = solve_agh(instance, priced_moves=False), solve_agh(instance)
    assert with_them.total_cost < without.total_cost
