"""The Greedy Heuristic (GH): one deterministic pass of coverage pre-allocation, then per-type allocation.

Phase 1 (coverage pre-allocation) gives every query type that no active replica can serve within its SLOs on
its own a replica: the candidate with the best cost per coverage of all still uncovered types. Phase 2 serves
the types one at a time (GH: decreasing arrival rate), each by repeatedly applying its best-ranked option: spare
capacity, a TP upgrade (M3), a new replica of an M1 candidate, or dropping up to the unmet cap
(``allocation.py``). Every step respects capacity at ρ_max, the type's error budget, budget, GPU availability,
storage and replica limits, so the plan is feasible whenever all demand beyond the unmet caps finds a route.
See docs/heuristics.md.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from servegym.baselines.allocation import serve_type
from servegym.baselines.fleet import Fleet
from servegym.baselines.greedy_context import GreedyContext, build_context
from servegym.baselines.mechanisms import ALL_MECHANISMS, Mechanisms
from servegym.baselines.result import PlanResult, finish
from servegym.envs.instance import Instance


@dataclass(frozen=True)
class Construction:
    """Outcome of one greedy construction.

    Attributes:
        fleet: The replicas and routing built.
        shortfalls: One line per query type whose unserved demand exceeds its unmet cap, naming the limits that
            blocked new replicas.
    """

    fleet: Fleet
    shortfalls: tuple[str, ...]


def _covered(context: GreedyContext, fleet: Fleet) -> np.ndarray:
    """(I,) bool: some active replica with spare capacity serves the type within its SLOs on its own."""
    active = np.flatnonzero(fleet.replicas)
    active = active[fleet.load[active] < context.instance.design_utilisation * fleet.replicas[active]]
    return context.usable_alone[:, active].any(axis=1)


def _preallocate_coverage(context: GreedyContext, fleet: Fleet, order: Sequence[int], excluded: np.ndarray) -> None:
    """Phase 1: give every query type that has none a replica that serves it on its own.

    Types with the fewest candidates that meet their error SLO alone go first (ties in ``order``), so that a type
    with a single suitable model gets it before storage, availability or budget run out.
    The replica is the candidate of the type with the best score over all still uncovered types it can serve:
    M2 divides the added $/hour by the requests/hour it can absorb of them (proportional fill up to ρ_max); without
    M2 the score is the added $/hour.
    """
    instance = context.instance
    demand = instance.demand_per_hour
    types = np.asarray(order)
    options = np.array([len(context.coverage_tables[i].openings.configs) for i in types], dtype=np.int64)
    uncovered = ~_covered(context, fleet) & (demand > 0)
    for query_type in types[np.argsort(options, kind="stable")]:
        if not uncovered[query_type]:
            continue
        table = context.coverage_tables[query_type]
        kept = ~excluded[table.openings.configs]
        if not kept.all():
            table = table.subset(kept)
        extra_cost, blocked = fleet.screen_openings(table.openings)
        allowed = ~blocked
        configs, extra_cost = table.openings.configs[allowed], extra_cost[allowed]
        if len(configs) == 0:
            continue
        if context.mechanisms.coverage_ranking:
            servable = uncovered[:, None] & table.usable_alone[:, allowed]
            rates = np.where(servable, demand[:, None], 0.0)
            load = (rates / table.capacity[:, allowed]).sum(axis=0)
            coverage = rates.sum(axis=0) * np.minimum(1.0, instance.design_utilisation / load)
            score = extra_cost / coverage + table.delay_penalty_per_request[allowed]
        else:
            score = extra_cost
        fleet.add_replica(int(configs[np.argmin(score)]))
        uncovered = ~_covered(context, fleet) & (demand > 0)


def complete(
    context: GreedyContext,
    fleet: Fleet,
    order: Sequence[int],
    excluded: np.ndarray | None = None,
    *,
    preallocate: bool = True,
) -> tuple[str, ...]:
    """GH on a (possibly partial) fleet: cover the uncovered types (phase 1), serve each type's residual demand
    in ``order`` (phase 2), then release idle replicas.

    Args:
        context: Precomputed candidates and switches.
        fleet: The plan being built (updated in place).
        order: Query types in processing order.
        excluded: (C,) bool configurations not to use (AGH's rebuild moves); None for none.
        preallocate: Run phase 1 (AGH's rebuild moves try both).

    Returns:
        One line per type left beyond its unmet cap (see :class:`Construction`).
    """
    if excluded is None:
        excluded = np.zeros(context.instance.num_configurations, dtype=bool)
    if preallocate:
        _preallocate_coverage(context, fleet, order, excluded)
    shortfalls = tuple(line for line in (serve_type(context, fleet, int(i), excluded) for i in order) if line)
    fleet.trim_idle_replicas()
    return shortfalls


def construct(context: GreedyContext, order: Sequence[int]) -> Construction:
    """Run both GH phases with the query types in ``order`` and release idle replicas."""
    fleet = Fleet(context.instance, context.inverse_capacity)
    return Construction(fleet, complete(context, fleet, order))


def arrival_rate_order(instance: Instance) -> np.ndarray:
    """Query types by decreasing arrival rate λ (ties by index), GH's processing order."""
    return np.argsort(-instance.demand_per_hour, kind="stable")


def describe_shortfalls(construction: Construction, instance: Instance) -> str:
    """Message for a construction that left demand beyond the unmet cap (empty if none), with the budget state."""
    if not construction.shortfalls:
        return ""
    fleet = construction.fleet
    return (
        "could not serve "
        + "; ".join(construction.shortfalls)
        + f" (spend ${fleet.spend_per_hour:.4g}/hour of budget ${instance.budget_per_hour:.4g}/hour)."
    )


def solve_gh(instance: Instance, *, mechanisms: Mechanisms = ALL_MECHANISMS) -> PlanResult:
    """The Greedy Heuristic: deterministic single pass, types in decreasing arrival rate.

    Args:
        instance: The single-period problem.
        mechanisms: Which of M1–M3 are on (all by default).

    Returns:
        The plan judged by ``evaluate_plan``: status ``feasible``, or ``infeasible`` with a message naming the
        types left beyond their unmet cap, the limits that blocked them and the violated constraints.
    """
    start = time.perf_counter()
    context = build_context(instance, mechanisms)
    construction = construct(context, arrival_rate_order(instance))
    runtime_s = time.perf_counter() - start
    message = describe_shortfalls(construction, instance)
    return finish("gh", instance, construction.fleet.plan(), runtime_s, message=message)
