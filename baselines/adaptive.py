"""The Adaptive Greedy Heuristic (AGH): multi-start GH, then relocate local search and GPU consolidation.

1. Multi-start: the GH construction under several query-type orders (arrival rate, error SLO, delay SLO and
   request size, each descending and ascending, then ``random_starts`` seeded permutations). Each start's
   replicas are routed optimally by the LP (unmet cap enforced) and judged by ``evaluate_plan``; the cheapest
   feasible start is kept. The first order is GH's, so AGH is never worse than GH when GH is feasible.
2. Local search (``local_search.LocalSearch``): relocate moves and replica-by-replica consolidation, each
   accepted only if the LP re-route is feasible and cheaper.
3. The final plan is the LP routing of the final replicas, judged by ``evaluate_plan`` through ``finish``.

Deterministic per seed unless ``time_limit_s`` cuts the search short.
"""

from __future__ import annotations

import time

import numpy as np

from servegym.baselines.active_routing import ActiveRouter
from servegym.baselines.greedy import construct, describe_shortfalls
from servegym.baselines.greedy_context import build_context
from servegym.baselines.local_search import LocalSearch, SearchPoint
from servegym.baselines.mechanisms import ALL_MECHANISMS, Mechanisms
from servegym.baselines.result import PlanResult, finish
from servegym.envs.instance import Instance

MAX_SEARCH_SOLVES = 400
"""Most LP solves the local search may use (each takes about a millisecond on the active configurations)."""


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
    mechanisms: Mechanisms = ALL_MECHANISMS,
    time_limit_s: float | None = None,
) -> PlanResult:
    """The Adaptive Greedy Heuristic.

    Args:
        instance: The single-period problem.
        seed: Seed of the random start orders.
        random_starts: Random permutations on top of the eight deterministic orders.
        mechanisms: Which of M1–M3 the GH constructions use.
        time_limit_s: Wall-clock limit in seconds; the first start always runs. None: no limit (deterministic).

    Returns:
        The best plan found, judged by ``evaluate_plan``: status ``feasible``, or ``infeasible`` with GH's
        construction and a message naming the types it could not serve, the blocking limits and the violations.
    """
    start_time = time.perf_counter()
    deadline = None if time_limit_s is None else start_time + time_limit_s
    context = build_context(instance, mechanisms)
    router = ActiveRouter(instance)
    search = LocalSearch(context, router, deadline, MAX_SEARCH_SOLVES)
    orders = start_orders(instance, seed, random_starts)
    gh_construction = construct(context, orders[0])
    best: SearchPoint | None = None
    seen: set[bytes] = set()
    starts = 0
    for order in orders:
        if starts > 0 and deadline is not None and time.perf_counter() >= deadline:
            break
        construction = gh_construction if starts == 0 else construct(context, order)
        starts += 1
        replicas = construction.fleet.replicas
        if replicas.tobytes() in seen:
            continue
        seen.add(replicas.tobytes())
        point = search.evaluate(replicas, below_cost=np.inf if best is None else best.cost)
        best = point or best
    if best is None:
        message = "no start yields a feasible plan; GH's start " + (
            describe_shortfalls(gh_construction, instance)
            or "serves some types on routes over their delay SLO, and no start routes feasibly on allowed routes."
        )
        return finish("agh", instance, gh_construction.fleet.plan(), time.perf_counter() - start_time, message=message)
    best = search.run(best)
    message = (
        f"{starts} starts ({len(seen)} distinct), {search.accepted_moves} improving moves, {router.solves} LP solves"
    )
    return finish("agh", instance, best.plan, time.perf_counter() - start_time, message=message)
