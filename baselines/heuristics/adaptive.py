"""The Adaptive Greedy Heuristic (AGH): multi-start GH, then local search from the cheapest starts.

1. Multi-start: the GH construction under several query-type orders (arrival rate, error SLO, delay SLO and
   request size, each descending and ascending, then ``random_starts`` seeded permutations). Each start's
   replicas are routed optimally by the LP (unmet cap enforced) and judged by ``evaluate_plan``. The first order
   is GH's, so AGH is never worse than GH when GH is feasible.
2. Local search (``local_search.LocalSearch``) from the ``search_starts`` cheapest distinct starts: relocations,
   consolidation, rebuilds, merges, sibling swaps, relocations one replica short with a helper replica and swaps
   priced by the routing LP's duals (re-model, regroup and elastic relocations; ``priced_moves``), each accepted
   only if the LP re-route is feasible and cheaper (:func:`_search` says which search uses which moves).
   The best plan found is kept.
3. Optionally a ``polish`` move on the best plan (:data:`PolishMove`; the MILP polish of
   ``servegym.baselines.milp.agh_polish`` outside the environment), followed by a full search if it is cheaper.
4. The final plan is the LP routing of the final replicas, judged by ``evaluate_plan`` through ``finish``.

Everything after GH's own construction runs on the instance restricted to the configurations GH can open
(:func:`relevant_configurations`, about a third of them on random instances), which the plan is lifted back from.

Deterministic per seed unless ``time_limit_s`` cuts the search short. A re-planner calling AGH every period on
the same instance with new demand reuses what does not depend on the demand (GH's context, the configurations
AGH searches, the LP routers per active set; each router's basis reset on first use, so results are those of a
first call) and may pass its previous plan as a ``warm_start`` with lighter search settings
(``servegym.baselines.runner.policies.AGH_REPLANNING``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from servegym.baselines.heuristics.active_routing import ActiveRouter, RouterCache
from servegym.baselines.heuristics.greedy import construct, describe_shortfalls
from servegym.baselines.heuristics.greedy_context import DemandFreeCache, GreedyContext, build_context
from servegym.baselines.heuristics.local_search import MAX_REPAIRS, LocalSearch, PricedRecord, SearchPoint
from servegym.baselines.heuristics.mechanisms import ALL_MECHANISMS, Mechanisms
from servegym.baselines.result import PlanResult, finish
from servegym.envs.evaluation import Plan
from servegym.envs.instance import Instance

MAX_SEARCH_SOLVES = 400
"""Most LP solves one local search may use (each takes about a millisecond on the active configurations; a move the
dual routing bound rejects without its LP counts as one, ``LocalSearch._bounded_out``)."""
SEARCH_STARTS = 3
"""Local searches per run, from the cheapest distinct starts (docs/heuristics.md: one search from the best start
alone stops in a worse local optimum on many instances)."""

PolishMove = Callable[[LocalSearch, SearchPoint], SearchPoint | None]
"""A move AGH makes once on the best plan of its searches: given a ``LocalSearch`` (its instance, router and
deadline) and that plan, a cheaper plan judged by ``evaluate_plan``, or None. The MILP polish
(``servegym.baselines.milp.agh_polish.milp_polish``) is one; it lives with the MILP, which the heuristics do not
import."""


@dataclass(frozen=True)
class _Restriction:
    """The demand-independent part of AGH's set-up on one instance: the configurations it searches, the instance
    restricted to them, and the LP routers built on its sub-instances (reused by the next period's call)."""

    kept: np.ndarray
    work: Instance
    routers: RouterCache


_RESTRICTIONS: DemandFreeCache[_Restriction] = DemandFreeCache(4)


def _restriction(full_context: GreedyContext) -> _Restriction:
    kept = relevant_configurations(full_context)
    if len(kept) == 0:  # no type has a usable route: search the whole (hopeless) instance
        kept = np.arange(full_context.instance.num_configurations)
    kept.setflags(write=False)
    return _Restriction(kept, full_context.instance.restrict(kept), OrderedDict())


def start_orders(instance: Instance, seed: int, random_starts: int) -> list[np.ndarray]:
    """The query-type orders AGH constructs from, duplicates removed, GH's order (decreasing λ) first.

    Args:
        instance: The problem.
        seed: Seed of ``np.random.default_rng`` for the random permutations.
        random_starts: Number of random permutations after the eight deterministic orders.
    """
    request_tokens = np.array([q.mean_prompt_tokens + q.mean_output_tokens for q in instance.query_types])
    keys = (instance.demand_per_hour, instance.error_slo, instance.delay_slo_s, request_tokens)
    orders = [np.argsort(sign * key, kind="stable") for key in keys for sign in (-1.0, 1.0)]
    rng = np.random.default_rng(seed)
    orders += [rng.permutation(instance.num_query_types) for _ in range(random_starts)]
    unique: dict[bytes, np.ndarray] = {}
    for order in orders:
        unique.setdefault(order.tobytes(), order)
    return list(unique.values())


def solve_agh(
    instance: Instance,
    *,
    seed: int = 0,
    random_starts: int = 4,
    search_starts: int = SEARCH_STARTS,
    mechanisms: Mechanisms = ALL_MECHANISMS,
    time_limit_s: float | None = None,
    max_solves: int = MAX_SEARCH_SOLVES,
    max_repairs: int = MAX_REPAIRS,
    max_orders: int | None = None,
    warm_start: np.ndarray | None = None,
    helpers: bool = True,
    priced_moves: bool = True,
    polish: PolishMove | None = None,
) -> PlanResult:
    """The Adaptive Greedy Heuristic.

    Args:
        instance: The single-period problem.
        seed: Seed of the random start orders.
        random_starts: Random permutations on top of the eight deterministic orders.
        search_starts: Local searches, from the cheapest distinct starts (each with up to
            ``max_solves`` LP solves).
        mechanisms: Which of M1–M3 the GH constructions use.
        time_limit_s: Wall-clock limit in seconds; the first start always runs. None: no limit (deterministic).
        max_solves: Most LP solves of each local search.
        max_repairs: Most GH repairs of each local search's rebuild moves.
        max_orders: Construct from the first ``max_orders`` start orders only (GH's first); None: all.
        warm_start: (C,) replicas of an earlier plan (e.g. the previous period's), judged as one more start after
            GH's (its replicas outside the configurations AGH searches are dropped); None: none.
        helpers: Use the relocations one replica short with a helper replica
            (``LocalSearch.relocate_with_helper``); the in-env re-planning leaves them out.
        priced_moves: Use the swaps ranked by the routing LP's prices (``LocalSearch.priced_swap``: re-model,
            regroup and elastic relocations); the in-env AGH leaves them out.
        polish: A move made once on the best plan of the searches (:data:`PolishMove`), followed by a full search
            from its plan if it is cheaper; ``servegym solve`` and scripts/bench_planners.py pass the MILP polish
            (``servegym.baselines.milp.agh_polish.milp_polish``), the in-env AGH none. None: no such move.

    Returns:
        The best plan found, judged by ``evaluate_plan``: status ``feasible``, or ``infeasible`` with GH's
        construction and a message naming the types it could not serve, the blocking limits and the violations.
    """
    if max_orders is not None and max_orders < 1:
        raise ValueError(f"max_orders {max_orders} must be ≥ 1 (GH's order is always constructed) or None")
    for name, value, low in (
        ("random_starts", random_starts, 0),
        ("search_starts", search_starts, 1),
        ("max_solves", max_solves, 0),
        ("max_repairs", max_repairs, 0),
    ):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"solve_agh: {name} = {value!r} must be an integer ≥ {low}")
    if warm_start is not None and np.shape(warm_start) != (instance.num_configurations,):
        raise ValueError(
            f"solve_agh: warm_start has shape {np.shape(warm_start)}; expected ({instance.num_configurations},), "
            "one replica count per configuration"
        )
    start_time = time.perf_counter()
    deadline = None if time_limit_s is None else start_time + time_limit_s
    full_context = build_context(instance, mechanisms)
    orders = start_orders(instance, seed, random_starts)[:max_orders]
    gh_construction = construct(full_context, orders[0])
    restriction = _RESTRICTIONS.get(instance, mechanisms, lambda: _restriction(full_context))
    kept = restriction.kept
    work = restriction.work.with_demand(instance.demand_per_hour)  # the problem on the configurations GH can reach
    context = build_context(work, mechanisms)
    router = ActiveRouter(work, restriction.routers)
    screen = LocalSearch(context, router, deadline, max_solves, max_repairs)
    points: list[SearchPoint] = []
    seen: set[bytes] = set()
    starts = 0

    def start_replicas() -> Iterator[np.ndarray]:
        """The starts' replica vectors on ``work``, constructed lazily (the deadline is checked between them)."""
        yield gh_construction.fleet.replicas[kept]
        if warm_start is not None:
            yield np.asarray(warm_start, dtype=np.int64)[kept]
        for order in orders[1:]:
            yield construct(context, order).fleet.replicas

    for replicas in start_replicas():
        starts += 1
        key = replicas.tobytes()
        if key not in seen:
            seen.add(key)
            point = screen.evaluate(replicas)
            if point is not None:
                points.append(point)
        if deadline is not None and time.perf_counter() >= deadline:
            break
    if not points:
        message = "no start yields a feasible plan; GH's start " + (
            describe_shortfalls(gh_construction, instance)
            or "serves some types on routes over their delay SLO, and no start routes feasibly on allowed routes."
        )
        return finish("agh", instance, gh_construction.fleet.plan(), time.perf_counter() - start_time, message=message)
    points.sort(key=lambda point: point.cost)  # stable: ties keep the start order
    best, moves = _search(
        context, router, deadline, points[:search_starts], max_solves, max_repairs, helpers, priced_moves, polish
    )
    message = (
        f"{starts} starts ({len(seen)} distinct), local search from the {min(search_starts, len(points))} cheapest, "
        f"{moves} improving moves, {router.solves - router.bounded} LP solves ({router.bounded} more moves rejected by "
        "the dual routing bound)"
    )
    return finish("agh", instance, _lift(instance, kept, best.plan), time.perf_counter() - start_time, message=message)


def _search(
    context: GreedyContext,
    router: ActiveRouter,
    deadline: float | None,
    starts: list[SearchPoint],
    max_solves: int,
    max_repairs: int,
    helpers: bool,
    priced_moves: bool,
    polish: PolishMove | None,
) -> tuple[SearchPoint, int]:
    """Local search from each start, the cheapest first; the best plan found and the improving moves made.

    The first search uses every neighbourhood; the others leave out the rebuilds (GH repairs, the dearest moves).
    Unless the best plan ends a search that had rebuilds and repairs left (a local optimum of every neighbourhood),
    a last full search with a fresh repair budget continues from it (a search that spent its repairs early may end
    where rebuilds pay again). Searching from several starts is what most of the gain over a single search comes
    from (docs/heuristics.md, "Cost against the exact MILP"). A ``polish`` move is then made once on the best plan;
    if it lowers the cost, a full search continues from its plan.
    """
    best: SearchPoint | None = None
    best_complete = False  # the best plan is a local optimum of every neighbourhood, rebuilds included
    moves = 0
    priced_record = PricedRecord()  # the priced swaps' budget and failures, shared by the searches
    for k, point in enumerate(starts):
        if k > 0 and deadline is not None and time.perf_counter() >= deadline:
            break
        search = LocalSearch(context, router, deadline, max_solves, max_repairs, priced_record)
        found = search.run(point, rebuild=k == 0, helpers=helpers, priced=priced_moves)
        moves += search.accepted_moves
        if best is None or found.cost < best.cost:
            best, best_complete = found, k == 0 and search.repairs < max_repairs
    if not best_complete and max_repairs > 0:
        search = LocalSearch(context, router, deadline, max_solves, max_repairs, priced_record)
        best = search.run(best, helpers=helpers, priced=priced_moves)
        moves += search.accepted_moves
    if polish is not None and (deadline is None or time.perf_counter() < deadline):
        search = LocalSearch(context, router, deadline, max_solves, max_repairs, priced_record)
        polished = polish(search, best)
        if polished is not None:
            best = search.run(polished, helpers=helpers, priced=priced_moves)
            moves += search.accepted_moves
    return best, moves


def relevant_configurations(context: GreedyContext) -> np.ndarray:
    """Sorted indices of the configurations AGH searches: every type's M1 candidates and, transitively, their M3
    upgrade targets (GH's construction uses no others) and the pure-TP reshape (t·p GPUs, PP 1) of each PP one.

    The reshapes cost a handful of configurations and keep optima like the random (3, 3, 4) instance of seed 1's,
    whose TP-4 H100 replica is no type's candidate (its candidate on that tier is TP 2 × PP 2).
    """
    instance = context.instance
    index = {
        (c.model, c.gpu, c.precision, c.tensor_parallel, c.pipeline_parallel): k
        for k, c in enumerate(instance.configurations)
    }
    reshape = np.array(
        [
            index.get((c.model, c.gpu, c.precision, c.tensor_parallel * c.pipeline_parallel, 1), -1)
            for c in instance.configurations
        ],
        dtype=np.int64,
    )
    kept = np.zeros(instance.num_configurations, dtype=bool)
    kept[np.concatenate(context.candidates)] = True
    frontier = kept.copy()
    while frontier.any():
        reached = np.concatenate([context.upgrade_target[frontier], reshape[frontier]])
        frontier = np.zeros_like(kept)
        frontier[reached[reached >= 0]] = True
        frontier &= ~kept
        kept |= frontier
    return np.flatnonzero(kept)


def _lift(instance: Instance, kept: np.ndarray, plan: Plan) -> Plan:
    """A plan of ``instance.restrict(kept)`` in the configuration indices of ``instance``."""
    replicas = np.zeros(instance.num_configurations, dtype=np.int64)
    replicas[kept] = plan.replicas
    routing = np.zeros((instance.num_query_types, instance.num_configurations))
    routing[:, kept] = plan.routing
    return Plan(replicas=replicas, routing=routing, unserved=np.array(plan.unserved))
