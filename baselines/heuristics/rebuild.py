"""AGH's ruin-and-recreate neighbourhood: release part of a plan and let GH re-serve what was released.

Three kinds of ruin, each repaired by GH's phases on the rest of the plan (``greedy.complete``):

- release a deployment (all replicas of one configuration) and forbid its configuration in the repair;
- the same, seeded with one replica of a *seed* configuration (each type's cheapest candidates per request,
  delay penalty and error blending included), so the repair can mix a cheap, fast model with accurate ones;
- release all traffic of one query type and let it be served afresh around the others.

Repairs are cheap (no LP); each is priced by its own greedy routing, and only the most promising few are
re-routed by the LP in ``local_search``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servegym.baselines.heuristics.fleet import Fleet
from servegym.baselines.heuristics.greedy import arrival_rate_order, complete
from servegym.baselines.heuristics.greedy_context import GreedyContext
from servegym.envs.evaluation import Plan

SEEDS_PER_TYPE = 2
"""Seed configurations per query type (see :func:`seed_configurations`)."""
SEEDED_DEPLOYMENTS = 3
"""Seeded rebuilds release only the most expensive deployments (rental $/hour), to bound the repairs."""
SEEDED_RUINS = 16
"""Most seeded ruins per step, seeds in the order of :func:`seed_configurations`."""
TYPE_RUINS = 8
"""Most query-type ruins per step, types by decreasing arrival rate."""


@dataclass(frozen=True)
class Rebuild:
    """A repaired replica vector and the cost of its greedy routing ($/hour, an upper bound on the LP's)."""

    cost_per_hour: float
    replicas: np.ndarray


def seed_configurations(context: GreedyContext) -> np.ndarray:
    """Each type's ``SEEDS_PER_TYPE`` candidates with the lowest blended $ per request, without repeats: every
    type's best first (types by decreasing arrival rate), then every type's second best.

    The $ per request of a route is its rental at ρ_max plus its delay penalty. A route with error e above ε is
    priced as the blend that keeps the average at ε with the type's cheapest route of error e_ref < ε: each of its
    requests needs (e − ε)/(ε − e_ref) requests on that route.
    """
    instance = context.instance
    seeds = []
    for query_type in arrival_rate_order(instance).tolist():
        configs = context.candidates[query_type]
        error_slo = instance.error_slo[query_type]
        per_request = (
            instance.replica_price_per_hour[configs]
            / (instance.design_utilisation * instance.capacity_per_hour[query_type, configs])
            + context.delay_penalty_per_request[query_type, configs]
        )
        error = instance.error_rate[query_type, configs]
        below = error < error_slo
        if not below.any():
            continue
        reference = np.flatnonzero(below)[np.argmin(per_request[below])]
        partners = np.maximum(error - error_slo, 0.0) / (error_slo - error[reference])
        blended = (per_request + partners * per_request[reference]) / (1.0 + partners)
        best = configs[np.argsort(blended, kind="stable")[:SEEDS_PER_TYPE]]
        seeds.append(np.pad(best, (0, SEEDS_PER_TYPE - len(best)), constant_values=-1))
    if not seeds:
        return np.zeros(0, dtype=np.int64)
    ranked = np.stack(seeds).T.ravel()  # rank-major: every type's best, then every type's second best
    ranked = ranked[ranked >= 0]
    _, first = np.unique(ranked, return_index=True)
    return ranked[np.sort(first)]


def _greedy_cost_per_hour(context: GreedyContext, fleet: Fleet) -> float:
    instance = context.instance
    unserved = np.maximum(instance.demand_per_hour - fleet.routing.sum(axis=1), 0.0)
    delay = float((context.delay_penalty_per_request * fleet.routing).sum())
    return fleet.spend_per_hour + delay + float(instance.unmet_penalty_per_request @ unserved)


def rebuilds(context: GreedyContext, plan: Plan, seeds: np.ndarray, max_ruins: int) -> tuple[list[Rebuild], int]:
    """Every distinct repaired plan that serves all demand within the unmet caps, cheapest greedy routing first,
    and the number of repairs made.

    Args:
        context: GH's precomputation.
        plan: The current plan (feasible).
        seeds: Seed configurations from :func:`seed_configurations`.
        max_ruins: Most ruins to repair (in the order: deployments, seeded deployments, query types).
    """
    instance = context.instance
    n = plan.replicas
    order = arrival_rate_order(instance)
    active = np.flatnonzero(n > 0)
    by_rental = active[np.argsort(-(n * instance.replica_price_per_hour)[active], kind="stable")]
    # (kind, released index, seed or -1, run phase 1): unseeded deployments are repaired with and without phase 1.
    ruins: list[tuple[str, int, int, bool]] = [
        ("configuration", int(c), -1, preallocate) for c in by_rental for preallocate in (True, False)
    ]
    seeded = [
        ("configuration", int(c), int(seed), True)
        for seed in seeds
        for c in by_rental[:SEEDED_DEPLOYMENTS]
        if seed != c and n[seed] == 0
    ]
    ruins += seeded[:SEEDED_RUINS]
    ruins += [("query_type", int(i), -1, False) for i in order[:TYPE_RUINS] if instance.demand_per_hour[i] > 0]
    found: dict[bytes, Rebuild] = {n.tobytes(): Rebuild(np.inf, n)}
    ruins = ruins[:max_ruins]
    for kind, index, seed, preallocate in ruins:
        fleet = Fleet.from_plan(instance, plan, context.inverse_capacity)
        excluded = np.zeros(instance.num_configurations, dtype=bool)
        if kind == "configuration":
            fleet.release_configuration(index)
            excluded[index] = True
        else:
            fleet.release_query_type(index)
            fleet.trim_idle_replicas()
        if seed >= 0:
            seed_array = np.array([seed])
            cost = fleet.opening_cost_per_hour(seed_array)
            if fleet.blocking_limits(seed_array, cost, instance.gpus_per_replica[seed_array]).any():
                continue
            fleet.add_replica(seed)
        if complete(context, fleet, order, excluded, preallocate=preallocate):
            continue
        key = fleet.replicas.tobytes()
        if key not in found:
            found[key] = Rebuild(_greedy_cost_per_hour(context, fleet), fleet.replicas.copy())
    del found[n.tobytes()]
    return sorted(found.values(), key=lambda rebuild: rebuild.cost_per_hour), len(ruins)
