"""AGH's improvement phase: relocate, consolidation and rebuild moves over replica vectors, routed by the LP.

A search point is a replica vector with its optimal routing (``ActiveRouter``, unmet cap enforced) and its
``evaluate_plan`` verdict. Three neighbourhoods, tried in this order until none improves:

- **Relocate**: move a deployment (all replicas of a configuration, or one replica's worth of its traffic) to the
  configuration (model, tier, TP/PP) where it costs least. Every target is screened at once with numpy: the moved
  traffic must fit the target's spare capacity plus the replicas it opens, keep each type's error average and the
  budget, availability, storage and replica limits. A screened move is feasible by construction, so its LP
  re-route is feasible and at most as costly as the estimate; moves are tried best estimate first.
- **Consolidation**: remove one replica at a time, most expensive first, when the traffic it must shed fits the
  spare capacity elsewhere (a necessary check per type) and the LP re-route is feasible and cheaper.
- **Rebuild**: ruin and recreate with GH (``rebuild.py``); the cheapest few repairs are re-routed by LP.

Each accepted move lowers the cost and is confirmed by ``evaluate_plan``; the number of LP solves is bounded by
``max_solves``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from servegym.baselines.active_routing import ActiveRouter
from servegym.baselines.greedy_context import GreedyContext
from servegym.baselines.rebuild import rebuilds, seed_configurations
from servegym.envs.evaluation import FEASIBILITY_TOLERANCE, Evaluation, Plan, evaluate_plan

_MOVES_TRIED_PER_STEP = 4
"""Screened relocations verified by LP per step before giving up on relocation at this point."""
_REBUILDS_VERIFIED = 4
"""Cheapest ruin-and-recreate repairs re-routed by LP per step."""
_IMPROVEMENT = 1e-9
"""Relative cost decrease a move must achieve (guards against cycling on floating-point noise)."""


@dataclass(frozen=True)
class SearchPoint:
    """A replica vector with its optimal routing and evaluation."""

    plan: Plan
    evaluation: Evaluation

    @property
    def cost(self) -> float:
        """Total cost of the period, $."""
        return self.evaluation.cost.total

    @property
    def replicas(self) -> np.ndarray:
        return self.plan.replicas


@dataclass(frozen=True)
class _Relocation:
    estimate_per_hour: float  # estimated cost change, $/hour
    source: int
    removed: int
    target: int
    added: int


class LocalSearch:
    """Relocate, consolidation and rebuild moves for one instance (see the module docstring).

    Args:
        context: GH's precomputation (the rebuild moves re-serve demand with GH).
        router: LP router shared with the caller (its cache and solve count carry over).
        deadline: ``time.perf_counter()`` value after which no new move is tried; None for no limit.
        max_solves: Most LP solves the search may use.
    """

    def __init__(self, context: GreedyContext, router: ActiveRouter, deadline: float | None, max_solves: int) -> None:
        instance = context.instance
        self.context = context
        self.instance = instance
        self._price = instance.replica_price_per_hour
        self.router = router
        self.deadline = deadline
        self.max_solves = max_solves
        self.accepted_moves = 0
        self._solves_at_start = router.solves
        self._inverse_capacity = np.where(
            instance.route_allowed,
            1.0 / np.where(instance.capacity_per_hour > 0, instance.capacity_per_hour, 1.0),
            np.inf,
        )
        self._delay_penalty = instance.delay_penalty_per_request_s[:, None] * instance.delay_s
        self._storage_price_per_hour = instance.model_storage_gb * instance.storage_price_per_gb_hour
        self._failed_removals: set[tuple[int, bytes]] = set()
        self._seeds = seed_configurations(context)

    def evaluate(self, replicas: np.ndarray, *, below_cost: float = np.inf) -> SearchPoint | None:
        """Route ``replicas`` with the unmet cap enforced and judge the plan with ``evaluate_plan``.

        Args:
            replicas: (C,) replica counts.
            below_cost: Skip ``evaluate_plan`` (return None) unless the routed plan costs less than this, $.

        Returns:
            The point, or None if the LP is infeasible, ends without a verdict, the plan is not cheaper than
            ``below_cost`` or ``evaluate_plan`` finds it infeasible.
        """
        instance = self.instance
        routed = self.router.route(replicas)
        if routed is None or not routed.feasible:
            return None
        stored = routed.plan.stored_models(instance)
        spend = float(replicas @ instance.replica_price_per_hour) + float(self._storage_price_per_hour[stored].sum())
        if instance.period_hours * (spend + routed.objective_per_hour) >= below_cost:
            return None
        evaluation = evaluate_plan(instance, routed.plan)
        return SearchPoint(routed.plan, evaluation) if evaluation.feasible else None

    def _budget_left(self) -> bool:
        if self.router.solves - self._solves_at_start >= self.max_solves:
            return False
        return self.deadline is None or time.perf_counter() < self.deadline

    def _accept(self, point: SearchPoint, replicas: np.ndarray) -> SearchPoint | None:
        candidate = self.evaluate(replicas, below_cost=point.cost - _IMPROVEMENT * max(1.0, abs(point.cost)))
        if candidate is None or candidate.cost >= point.cost:
            return None
        self.accepted_moves += 1
        return candidate

    def _relocations(self, point: SearchPoint) -> list[_Relocation]:
        """Every source deployment's best screened target, best estimate first."""
        instance = self.instance
        rho = instance.design_utilisation
        n = point.replicas
        x = point.plan.routing
        load = point.evaluation.utilisation * n
        spare = np.maximum(rho * n - load, 0.0)
        served = x.sum(axis=1)
        error_slack = np.maximum(instance.error_slo * served - (instance.error_rate * x).sum(axis=1), 0.0)
        price = instance.replica_price_per_hour
        models, gpus = instance.config_model, instance.config_gpu
        model_replicas = np.bincount(models, weights=n, minlength=len(instance.models))
        storage_gb = float(instance.model_storage_gb[model_replicas > 0].sum())
        budget_room = instance.budget_per_hour - point.evaluation.spend_per_hour
        moves = []
        for source in np.flatnonzero((n > 0) & (load > 0)):
            variants = [(int(n[source]), 1.0)]
            if n[source] > 1:
                variants.append((1, max(0.0, load[source] - rho * (n[source] - 1)) / load[source]))
            for removed, fraction in variants:
                if fraction <= 0.0:
                    continue  # the replica is idle: consolidation removes it
                share = fraction * x[:, source]
                carried = share > 0.0
                share = share[carried]
                needed_load = share @ self._inverse_capacity[carried]
                reachable = np.isfinite(needed_load)
                reachable[source] = False
                added = np.zeros(instance.num_configurations, dtype=np.int64)
                added[reachable] = np.ceil(np.maximum(needed_load[reachable] - spare[reachable], 0.0) / rho - 1e-9)
                source_model = models[source]
                same_model = models == source_model
                source_model_left = model_replicas[source_model] - removed
                freed = (source_model_left == 0) & ~(same_model & (added > 0))
                new_model = ~same_model & (model_replicas[models] == 0) & (added > 0)
                storage_change_gb = (
                    np.where(new_model, instance.model_storage_gb[models], 0.0)
                    - freed * instance.model_storage_gb[source_model]
                )
                cost_change = (
                    added * price
                    - removed * price[source]
                    + np.where(new_model, self._storage_price_per_hour[models], 0.0)
                    - freed * self._storage_price_per_hour[source_model]
                )
                gpus_after = (
                    point.evaluation.gpus_used[gpus]
                    + added * instance.gpus_per_replica
                    - (gpus == gpus[source]) * removed * instance.gpus_per_replica[source]
                )
                error_change = share[:, None] * (
                    instance.error_rate[carried] - instance.error_rate[carried, source, None]
                )
                delay_change = share @ (self._delay_penalty[carried] - self._delay_penalty[carried, source, None])
                valid = (
                    reachable
                    & (cost_change <= budget_room + FEASIBILITY_TOLERANCE * max(1.0, abs(instance.budget_per_hour)))
                    & (gpus_after <= instance.gpu_availability[gpus])
                    & (n + added <= instance.max_replicas)
                    & (storage_gb + storage_change_gb <= instance.storage_capacity_gb + FEASIBILITY_TOLERANCE)
                    & (error_change <= error_slack[carried, None]).all(axis=0)
                )
                estimate = np.where(valid, cost_change + delay_change, np.inf)
                target = int(np.argmin(estimate))
                if estimate[target] < -_IMPROVEMENT * max(1.0, abs(point.cost)):
                    moves.append(_Relocation(float(estimate[target]), int(source), removed, target, int(added[target])))
        return sorted(moves, key=lambda move: (move.estimate_per_hour, move.source, move.removed))

    def relocate(self, point: SearchPoint) -> SearchPoint | None:
        """The first of the best screened relocations whose LP re-route lowers the cost, or None."""
        for move in self._relocations(point)[:_MOVES_TRIED_PER_STEP]:
            if not self._budget_left():
                return None
            replicas = point.replicas.copy()
            replicas[move.source] -= move.removed
            replicas[move.target] += move.added
            accepted = self._accept(point, replicas)
            if accepted is not None:
                return accepted
        return None

    def consolidate(self, point: SearchPoint) -> SearchPoint | None:
        """Remove one replica, most expensive configuration first, if the re-routed plan is feasible and cheaper."""
        instance = self.instance
        rho = instance.design_utilisation
        n = point.replicas
        x = point.plan.routing
        load = point.evaluation.utilisation * n
        spare_requests = np.maximum(rho * n - load, 0.0) * np.where(
            instance.route_allowed, instance.capacity_per_hour, 0
        )
        unmet_room = instance.max_unmet_fraction * instance.demand_per_hour - point.plan.unserved
        active = np.flatnonzero(n > 0)
        order = active[np.lexsort((point.evaluation.utilisation[active], -instance.replica_price_per_hour[active]))]
        key = n.tobytes()
        for config in order:
            if (int(config), key) in self._failed_removals:
                continue
            if not self._budget_left():
                return None
            must_shed = max(0.0, load[config] - rho * (n[config] - 1)) / max(load[config], 1e-300) * x[:, config]
            room = spare_requests.sum(axis=1) - spare_requests[:, config] + unmet_room
            if np.any(must_shed > room + FEASIBILITY_TOLERANCE * np.maximum(1.0, must_shed)):
                self._failed_removals.add((int(config), key))
                continue
            replicas = n.copy()
            replicas[config] -= 1
            accepted = self._accept(point, replicas)
            if accepted is not None:
                return accepted
            self._failed_removals.add((int(config), key))
        return None

    def rebuild(self, point: SearchPoint) -> SearchPoint | None:
        """The first of the ``_REBUILDS_VERIFIED`` cheapest ruin-and-recreate repairs (``rebuild.rebuilds``)
        whose LP re-route lowers the cost, or None."""
        for candidate in rebuilds(self.context, point.plan, self._seeds)[:_REBUILDS_VERIFIED]:
            if not self._budget_left():
                return None
            accepted = self._accept(point, candidate.replicas)
            if accepted is not None:
                return accepted
        return None

    def run(self, point: SearchPoint) -> SearchPoint:
        """Apply improving relocations, removals and rebuilds until none improves or the limits are reached."""
        while self._budget_left():
            better = self.relocate(point) or self.consolidate(point) or self.rebuild(point)
            if better is None:
                break
            point = better
        return point
