"""AGH's improvement phase: relocate, consolidation, rebuild, merge, sibling, helper and priced moves over replica
vectors, routed by the LP.

A search point is a replica vector with its optimal routing (``ActiveRouter``, unmet cap enforced) and its
``evaluate_plan`` verdict (computed on the active configurations, ``ActiveRouter.evaluate``). Seven neighbourhoods,
tried in this order until none improves:

- **Relocate**: move a deployment (all replicas of a configuration, or one replica's worth of its traffic) to
  another configuration (model, tier, TP/PP). Every target is screened at once with numpy: the moved traffic must
  fit the target's spare capacity plus the replicas it opens, keep each type's error average and the budget,
  availability, storage and replica limits. A screened move is feasible by construction, so its LP re-route is
  feasible and at most as costly as the estimate; the ``_TARGETS_PER_SOURCE`` best targets of each deployment
  compete, best estimate first.
- **Consolidation**: remove one replica at a time, most expensive first, when the traffic it must shed fits the
  spare capacity elsewhere (a necessary check per type) and the LP re-route is feasible and cheaper.
- **Rebuild**: ruin and recreate with GH (``rebuild.py``); the cheapest few repairs are re-routed by LP.
- **Merge**: open up to ``_MERGE_MAX_NEW`` replicas of one configuration (or use its spare capacity) and move
  several whole deployments onto it, e.g. five small replicas of a model into one faster TP-8 replica. A
  relocation moves one deployment at a time, and the first one onto a big replica rarely pays for the replica
  alone; merges price the whole set. Every target is screened at once: per target, sources are added greedily by
  saving per unit of load while they fit its capacity and each type's error slack, both stretched by what the LP
  could shift elsewhere (the other replicas' spare load, and the error slack freed by moving a type's traffic off
  less accurate routes); budget, availability, replica and storage limits are checked on the resulting set. A
  merge the LP rejects may be repaired by sibling swaps (:meth:`LocalSearch.merge`). Merges come after the
  moves above, so the search takes the same path as without them until those are stuck.
- **Sibling**: move every replica of one deployment to a sibling configuration (same model and GPU type, another
  precision, TP or PP degree), all verified by LP, the cheapest kept.
- **Relocate with a helper**: move a deployment to the same model elsewhere (another GPU type, precision, TP or
  PP degree) with one replica fewer than its traffic needs there, and where the LP re-route must then drop demand
  beyond the unmet caps, open one *helper* replica for it: for the types with the largest overflow, their cheapest
  candidates per request that meet the error SLO alone (:meth:`LocalSearch.relocate_with_helper`). No single
  move above reaches such a plan: the short relocation alone is infeasible, the helper alone costs more.
- **Priced swap** (:meth:`LocalSearch.priced_swap`; ``priced=False`` leaves it out, as AGH inside the environment
  does): remove a deployment or one replica, route the rest with the unmet cap relaxed, and open up to
  ``_PRICED_MAX_ADDED`` replicas chosen by the routing LP's dual prices (``Router.route(prices=True)``) and by how
  much of the dropped traffic they could carry, re-routing after each. The first replica is also drawn from two
  families no move above reaches: a *re-model* (another model on the same GPU type, TP and PP degree) and a
  *regroup* (the same model and GPU type with another number of GPUs per replica). The relocation screen asks the
  moved traffic to fit its target with each type's error average kept; here the LP may move every type's traffic
  around the new replicas. On the random (20, 20, 24) instance of seed 2 AGH stopped 6.4 % above the optimum
  with every other move stuck; the re-model of an INT8 TP-2 H200 replica from Qwen2.5-7B to a variant of it
  closes most of the gap. Its LP solves per AGH run are bounded by ``PRICED_SOLVES``.

Each accepted move lowers the cost and is confirmed by ``evaluate_plan``; the number of LP solves is bounded by
``max_solves``. A candidate whose rental plus a lower bound on its routing cost is not below the current cost is
rejected without its LP (:meth:`LocalSearch._routing_bound`, and :meth:`LocalSearch._relaxed_routing_bound` for the
repairs routed with the unmet cap relaxed), and then by the Lagrangian bound from the current point's LP duals
(:meth:`LocalSearch._dual_routing_bound`), which settles most moves that do not pay; those rejections count against
``max_solves`` as the LPs they replace, so the searches take the paths they took without it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from servegym.baselines.heuristics.active_routing import ActiveRouter
from servegym.baselines.heuristics.greedy_context import GreedyContext
from servegym.baselines.heuristics.rebuild import rebuilds, seed_configurations
from servegym.envs import limits
from servegym.envs.evaluation import Evaluation, Plan
from servegym.envs.routing import RoutingPrices

_MOVES_TRIED_PER_STEP = 8
"""Screened relocations verified by LP per step before giving up on relocation at this point."""
_TARGETS_PER_SOURCE = 3
"""Best screened targets kept per relocated deployment (the best one's LP re-route may fail)."""
MAX_REPAIRS = 120
"""Most GH repairs (``rebuild.rebuilds``) one search may make: the dearest work of the search, bounded so that a
run stays within about 2 s at (40, 40, 40) (docs/heuristics.md, "Measured runtimes")."""
_REBUILDS_VERIFIED = 4
"""Cheapest ruin-and-recreate repairs re-routed by LP per step."""
_MERGE_MAX_NEW = 2
"""Most new replicas of the target configuration a merge opens."""
_MERGES_VERIFIED = 4
"""Best screened merges re-routed by LP per step."""
_REPAIRED_MERGES = 2
"""Screened merges whose LP re-route failed that are repaired by sibling swaps (see :meth:`LocalSearch.merge`)."""
_REPAIR_STEPS = 2
"""Sibling swaps at most per repaired merge."""
_SHORT_MOVES_TRIED = 3
"""Screened relocations one replica short (:meth:`LocalSearch.relocate_with_helper`) tried per step."""
_HELPER_TYPES = 2
"""Query types with the largest overflow that :meth:`LocalSearch.relocate_with_helper` finds helpers for."""
_HELPERS_PER_TYPE = 2
"""Helper candidates per such type, each re-routed by LP."""
_NEGLIGIBLE_SHARE = 1e-9
"""Demand dropped beyond the unmet cap below this share of λ_i needs no helper (floating-point dust)."""
_PRICED_MAX_ADDED = 3
"""Most replicas of one target configuration a priced swap opens (:meth:`LocalSearch.priced_swap`)."""
_PRICED_FIRST_CHOICES = 2
"""First replicas tried per removal in the priced swaps from each ranking (LP prices, replacement, re-model,
regroup)."""
PRICED_SOLVES = 120
"""Most LP solves the priced swaps of one AGH run may use, all its searches together (:class:`PricedRecord`). At
(40, 40, 40) each takes a few milliseconds and most find nothing; 80 instead of 120 saves about 0.4 s there but
loses most of the gain at (30, 30, 30) (docs/heuristics.md, "Priced swap")."""
_PRICED_REMOVALS = 4
"""Active configurations, most rental first, whose replicas the priced swaps remove per step."""
IMPROVEMENT = 1e-9
"""Relative cost decrease a move must achieve (guards against cycling on floating-point noise)."""


def improvement_margin(cost: float) -> float:
    """The least decrease of ``cost`` ($) that counts as an improvement: :data:`IMPROVEMENT` × max(1, |cost|)."""
    return IMPROVEMENT * max(1.0, abs(cost))


@dataclass(frozen=True)
class SearchPoint:
    """A replica vector with its optimal routing and evaluation, and the routing LP's dual values there (None when
    not known), which bound the routing cost of nearby replica vectors (:meth:`LocalSearch._dual_routing_bound`)."""

    plan: Plan
    evaluation: Evaluation
    prices: RoutingPrices | None = None

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

    def applied_to(self, replicas: np.ndarray) -> np.ndarray:
        """A copy of ``replicas`` (C,) with ``removed`` taken from ``source`` and ``added`` put on ``target``."""
        moved = replicas.copy()
        moved[self.source] -= self.removed
        moved[self.target] += self.added
        return moved


@dataclass(frozen=True)
class _Room:
    load: np.ndarray  # (C,) load in replicas' worth
    spare: np.ndarray  # (C,) load the active replicas can still take below ρ_max
    error_slack: np.ndarray  # (I,) ε_i·served_i − Σ_c e_ic·x_ic, requests/hour
    model_replicas: np.ndarray  # (J,) replicas per model
    storage_gb: float  # GB of the stored models
    budget_left_per_hour: float  # limits.budget_room_per_hour: budget minus spend, plus its tolerance, $/hour


@dataclass
class PricedRecord:
    """What the priced swaps of one AGH run share across its searches: the LP solves they have used (bounded by
    ``PRICED_SOLVES``) and the replica vectors (``tobytes``) where they found nothing within that budget."""

    solves: int = 0
    failures: set[bytes] = field(default_factory=set)


@dataclass(frozen=True)
class _PricedState:
    """A replica vector routed with the unmet cap relaxed, with the LP's prices (the priced swaps' working state)."""

    plan: Plan
    prices: RoutingPrices
    cost: float  # period cost, dropped demand priced at φ_i, $
    spend_per_hour: float  # rental plus storage, $/hour
    gpus_used: np.ndarray  # (G,) GPUs rented per GPU type

    @property
    def replicas(self) -> np.ndarray:
        return self.plan.replicas


@dataclass(frozen=True)
class _Merge:
    estimate_per_hour: float  # estimated cost change, $/hour (negative: cheaper)
    target: int
    added: int
    sources: tuple[int, ...]  # configurations whose replicas are all removed


class LocalSearch:
    """Relocate, consolidation, rebuild, merge, sibling, helper and priced moves for one instance (see the module
    docstring).

    Args:
        context: GH's precomputation (the rebuild moves re-serve demand with GH).
        router: LP router shared with the caller (its cache and solve count carry over).
        deadline: ``time.perf_counter()`` value after which no new move is tried; None for no limit.
        max_solves: Most LP solves the search may use (a move the dual routing bound rejects counts as one,
            :meth:`LocalSearch._bounded_out`).
        max_repairs: Most GH repairs its rebuild moves may make.
        priced_record: The priced swaps' budget and failures shared by the searches of one AGH run; None for a
            record of its own.
    """

    def __init__(
        self,
        context: GreedyContext,
        router: ActiveRouter,
        deadline: float | None,
        max_solves: int,
        max_repairs: int = MAX_REPAIRS,
        priced_record: PricedRecord | None = None,
    ) -> None:
        instance = context.instance
        self.context = context
        self.instance = instance
        self._price = instance.replica_price_per_hour
        self.router = router
        self.deadline = deadline
        self.max_solves = max_solves
        self.max_repairs = max_repairs
        self._priced_record = PricedRecord() if priced_record is None else priced_record
        self.repairs = 0
        self.accepted_moves = 0
        self._solves_at_start = router.solves
        self._priced_call_start = router.solves  # the router's solve count when the current priced call began
        self._inverse_capacity = np.where(
            instance.route_allowed,
            1.0 / np.where(instance.capacity_per_hour > 0, instance.capacity_per_hour, 1.0),
            np.inf,
        )
        self._delay_penalty = instance.delay_penalty_per_request_s[:, None] * instance.delay_s
        self._error_excess = context.error_excess  # (I, C) e_ic − ε_i
        self._storage_price_per_hour = instance.model_storage_gb * instance.storage_price_per_gb_hour
        # The largest totals within each limit (limits.ceiling), compared with whole arrays of moves in the screens.
        self._gpu_ceiling = limits.ceiling(instance.gpu_availability)
        self._storage_ceiling = limits.ceiling(instance.storage_capacity_gb)
        self._replica_ceiling = limits.ceiling(instance.max_replicas)
        self._failed_removals: set[tuple[int, bytes]] = set()
        self._seeds = seed_configurations(context)
        self._sibling_group = instance.config_model * len(instance.gpus) + instance.config_gpu  # (model, GPU type)
        tensor_parallel = np.array([c.tensor_parallel for c in instance.configurations])
        pipeline_parallel = np.array([c.pipeline_parallel for c in instance.configurations])
        # Same GPU type, TP and PP degree (another model or precision may run on the same hardware).
        self._hardware_group = (instance.config_gpu * (tensor_parallel.max() + 1) + tensor_parallel) * (
            pipeline_parallel.max() + 1
        ) + pipeline_parallel
        self._allowed_inverse_capacity = np.where(instance.route_allowed, self._inverse_capacity, 0.0)  # (I, C)
        self._allowed_delay_penalty = np.where(instance.route_allowed, self._delay_penalty, 0.0)  # (I, C) $/request
        # (I, C) $/hour per replica's worth of load of re-serving a request that would be dropped: φ_i − ρ_i·D_ic.
        replacement_per_request = instance.unmet_penalty_per_request[:, None] - self._delay_penalty
        self._replacement_value_per_load = np.where(
            instance.route_allowed & (replacement_per_request > 0.0),
            replacement_per_request * instance.capacity_per_hour,
            0.0,
        )

    def _routing_bound(self, replicas: np.ndarray) -> float:
        """A lower bound on the routing LP's objective over ``replicas`` with the unmet cap enforced, $/hour.

        Each type's demand beyond its unmet cap is served at least at its cheapest delay penalty on an active
        allowed route, the rest at the lower of that and its unmet penalty φ_i (inf when a type with demand beyond
        its cap has no active allowed route: the LP is infeasible). The dual bound at zero multipliers.
        """
        return self._cheapest_route_bound(replicas, relaxed=False)

    def _relaxed_routing_bound(self, replicas: np.ndarray) -> float:
        """A lower bound on the routing LP's objective over ``replicas`` with the unmet cap relaxed, $/hour: each
        type's demand at the lower of its cheapest delay penalty on an active allowed route and its unmet penalty."""
        return self._cheapest_route_bound(replicas, relaxed=True)

    def _cheapest_route_bound(self, replicas: np.ndarray, *, relaxed: bool) -> float:
        """:meth:`_routed_value` at each type's cheapest delay penalty on an active allowed route, $/hour."""
        must_route, unmet_upper = self._unmet_bounds(relaxed=relaxed)
        cheapest = self._cheapest_delay_penalty(replicas)[:, None]
        return float(self._routed_value(cheapest, must_route, unmet_upper, self.instance.unmet_penalty_per_request)[0])

    def _unmet_bounds(self, *, relaxed: bool) -> tuple[np.ndarray, np.ndarray]:
        """(I,) λ_i − U_i, the demand a type must route, and (I,) U_i, the most it may leave unmet: U_i = λ_i with
        the unmet cap relaxed, else ζ_i·λ_i."""
        demand = self.instance.demand_per_hour
        unmet_upper = demand if relaxed else self.instance.max_unmet_fraction * demand
        return demand - unmet_upper, unmet_upper

    def _dual_routing_bound(self, replicas: np.ndarray, point: SearchPoint, *, relaxed: bool) -> float:
        """A lower bound on the routing LP's objective over ``replicas``, $/hour, from the LP duals at ``point`` (a
        nearby replica vector): a move whose rental plus this bound is not below the cost to beat is rejected
        without its LP.

        Relaxing the capacity and error rows with multipliers w_c ≥ 0 and v_i ≥ 0 leaves one small problem per
        type: for any such multipliers the LP's optimum is at least L(w, v) = −Σ_c w_c·ρ_max·n_c + Σ_i g_i(m_i),
        where m_i is type i's cheapest ĉ_ic = ρ_i·D_ic + w_c/μ_ic + v_i·(e_ic − ε_i) over its allowed routes to
        configurations with replicas and g_i(m) = (λ_i − U_i)·m + U_i·min(m, φ_i) routes its demand at m with up to
        U_i of it unmet where φ_i is less (U_i = λ_i with ``relaxed``, else ζ_i·λ_i). At the LP's own duals L is its
        optimum (strong duality); near them it stays close where a move only removes capacity or adds dear routes.

        The point's capacity prices give w_c on the configurations it has replicas on, its error prices v_i; each
        other configuration gets, one after another, the w_c that maximises L (concave and piecewise linear in w_c,
        so the best value is 0 or a breakpoint, where one of its routes' ĉ meets m_i or φ_i). -inf when the point
        has no prices, inf when a type must be served and has no route.
        """
        prices = point.prices
        if prices is None:
            return -np.inf
        instance = self.instance
        active = np.flatnonzero(replicas > 0)
        count = replicas[active].astype(float)  # (A,)
        is_known = point.replicas[active] > 0
        allowed = instance.route_allowed[:, active]  # (I, A)
        load_per_request = self._allowed_inverse_capacity[:, active]  # (I, A) 1/μ_ic, 0 off the allowed routes
        delay_cost = np.where(allowed, self._delay_penalty[:, active], np.inf)  # (I, A) ρ_i·D_ic, inf off them
        error_excess = np.where(allowed, self._error_excess[:, active], 0.0)  # (I, A) e_ic − ε_i
        must_route, unmet_upper = self._unmet_bounds(relaxed=relaxed)
        penalty = instance.unmet_penalty_per_request
        rho = instance.design_utilisation
        if np.any((must_route > 0.0) & ~allowed.any(axis=1)):
            return np.inf
        error_price = np.maximum(prices.error_per_request, 0.0)  # (I,) v_i
        capacity_price = np.where(is_known, np.maximum(prices.capacity_per_load[active], 0.0), 0.0)  # (A,) w_c
        base_cost = delay_cost + error_price[:, None] * error_excess  # (I, A) ĉ at w = 0
        cheapest = np.where(is_known, base_cost + capacity_price * load_per_request, np.inf).min(axis=1)  # (I,)
        for column in np.flatnonzero(~is_known).tolist():
            routes = allowed[:, column]
            route_load = load_per_request[routes, column]  # (R,) 1/μ_ic
            offset = base_cost[routes, column]  # (R,)
            kinks = np.concatenate([cheapest[routes] - offset, penalty[routes] - offset]) / np.tile(route_load, 2)
            prices_tried = np.concatenate([[0.0], kinks[np.isfinite(kinks) & (kinks > 0.0)]])  # (P,) w_c
            tried_cheapest = np.repeat(cheapest[:, None], len(prices_tried), axis=1)  # (I, P)
            tried_cheapest[routes] = np.minimum(
                tried_cheapest[routes], offset[:, None] + route_load[:, None] * prices_tried
            )
            value = self._routed_value(tried_cheapest, must_route, unmet_upper, penalty)
            best = int(np.argmax(value - rho * count[column] * prices_tried))
            cheapest = tried_cheapest[:, best]
            capacity_price[column] = prices_tried[best]
        routed_value = float(self._routed_value(cheapest[:, None], must_route, unmet_upper, penalty)[0])
        return routed_value - rho * float(capacity_price @ count)

    @staticmethod
    def _routed_value(
        cheapest: np.ndarray, must_route: np.ndarray, unmet_upper: np.ndarray, penalty: np.ndarray
    ) -> np.ndarray:
        """(P,) Σ_i g_i(m_i) of :meth:`_dual_routing_bound` for P columns of m (I, P), $/hour: (λ_i − U_i)·m_i +
        U_i·min(m_i, φ_i), a type's unmet share at φ_i where its routes cost more (inf where it must route and
        cannot; a type without demand adds 0)."""
        reachable = np.isfinite(cheapest)
        routed = must_route[:, None] * np.where(reachable, cheapest, 0.0)
        routed[(must_route[:, None] > 0.0) & ~reachable] = np.inf
        unmet = unmet_upper[:, None] * np.minimum(cheapest, penalty[:, None])
        return (routed + unmet).sum(axis=0)

    def _cheapest_delay_penalty(self, replicas: np.ndarray) -> np.ndarray:
        """(I,) each type's cheapest delay penalty on an allowed route to a configuration with replicas, $ per
        request (inf where it has none)."""
        active = np.flatnonzero(replicas > 0)
        return np.where(self.instance.route_allowed[:, active], self._delay_penalty[:, active], np.inf).min(
            axis=1, initial=np.inf
        )

    def evaluate(self, replicas: np.ndarray, *, below_cost: float = np.inf) -> SearchPoint | None:
        """Route ``replicas`` with the unmet cap enforced and judge the plan with ``evaluate_plan``.

        Args:
            replicas: (C,) replica counts.
            below_cost: Skip ``evaluate_plan`` (return None) unless the routed plan costs less than this, $.

        Returns:
            The point, or None if the LP is infeasible, ends without a verdict, the plan is not cheaper than
            ``below_cost`` (known without the LP when :meth:`_routing_bound` says so) or ``evaluate_plan`` finds it
            infeasible.
        """
        instance = self.instance
        spend = limits.spend_per_hour(instance, replicas)
        if np.isfinite(below_cost) and instance.period_hours * (spend + self._routing_bound(replicas)) >= below_cost:
            return None  # no routing makes it cheaper enough: skip the LP
        routed = self.router.route(replicas, prices=True)
        if routed is None or not routed.feasible:
            return None
        if instance.period_hours * (spend + routed.objective_per_hour) >= below_cost:
            return None
        evaluation = self.router.evaluate(routed.plan)
        return SearchPoint(routed.plan, evaluation, routed.prices) if evaluation.feasible else None

    def _priced_budget_left(self) -> bool:
        return (
            self._priced_record.solves + self.router.solves - self._priced_call_start < PRICED_SOLVES
            and self._budget_left()
        )

    def _budget_left(self) -> bool:
        if self.router.solves - self._solves_at_start >= self.max_solves:
            return False
        return self.deadline is None or time.perf_counter() < self.deadline

    def _accept(self, point: SearchPoint, replicas: np.ndarray) -> SearchPoint | None:
        """``replicas`` judged as a move from ``point``: the new point if it costs less, else None (without its LP
        where a lower bound on its routing says it cannot, :meth:`_bounded_out`)."""
        threshold = point.cost - improvement_margin(point.cost)
        spend = limits.spend_per_hour(self.instance, replicas)
        if self.instance.period_hours * (spend + self._routing_bound(replicas)) >= threshold:
            return None
        if self._bounded_out(replicas, spend, point, threshold, relaxed=False):
            return None
        candidate = self.evaluate(replicas, below_cost=threshold)
        if candidate is None or candidate.cost >= point.cost:
            return None
        self.accepted_moves += 1
        return candidate

    def _bounded_out(
        self, replicas: np.ndarray, spend_per_hour: float, point: SearchPoint, threshold: float, *, relaxed: bool
    ) -> bool:
        """Whether ``replicas`` (renting ``spend_per_hour``) cannot cost less than ``threshold`` ($ for the period)
        by the routing bound from ``point``'s duals (:meth:`_dual_routing_bound`), so its LP is skipped.

        A move rejected so counts against the LP budget as the solve it replaces (``ActiveRouter.count_bounded``):
        the budgets bind where they did before the bound, so every search takes the same path, only faster (the
        in-environment re-plans, with a budget of 30 solves, give the same plans).
        """
        bound = self._dual_routing_bound(replicas, point, relaxed=relaxed)
        if self.instance.period_hours * (spend_per_hour + bound) < threshold:
            return False
        self.router.count_bounded()
        return True

    def _error_slack(self, routing: np.ndarray) -> np.ndarray:
        """(I,) each type's error slack under ``routing`` (I, C): ε_i·Σ_c x_ic − Σ_c e_ic·x_ic, floored at 0,
        requests/hour (the erroneous requests its error average could still absorb)."""
        instance = self.instance
        return np.maximum(instance.error_slo * routing.sum(axis=1) - (instance.error_rate * routing).sum(axis=1), 0.0)

    def _room(self, point: SearchPoint) -> _Room:
        """What the relocation and merge screens read off a point: loads, spare capacity and slack in each limit."""
        instance = self.instance
        n = point.replicas
        load = point.evaluation.utilisation * n
        model_replicas = np.bincount(instance.config_model, weights=n, minlength=len(instance.models))
        return _Room(
            load=load,
            spare=np.maximum(instance.design_utilisation * n - load, 0.0),
            error_slack=self._error_slack(point.plan.routing),
            model_replicas=model_replicas,
            storage_gb=limits.storage_gb(instance, n),
            budget_left_per_hour=limits.budget_room_per_hour(instance, point.evaluation.spend_per_hour),
        )

    def _relocations(self, point: SearchPoint, *, short: bool = False) -> list[_Relocation]:
        """Every source deployment's best screened targets, best estimate first.

        ``short``: open one replica fewer on the target than the moved traffic needs there (targets that would
        open at least one), the overflow left for :meth:`relocate_with_helper` to place; targets then run the
        source's model (on another GPU type, precision, TP or PP degree), and the error averages are left to the
        LP re-route and the helper.
        """
        instance = self.instance
        rho = instance.design_utilisation
        n = point.replicas
        x = point.plan.routing
        room = self._room(point)
        load, spare, error_slack, model_replicas = room.load, room.spare, room.error_slack, room.model_replicas
        price = instance.replica_price_per_hour
        models, gpus = instance.config_model, instance.config_gpu
        # Per target configuration, gathered once: its model's replicas, storage (GB, $/hour), GPUs of its type
        # in use and their ceiling.
        target_model_replicas = model_replicas[models]
        target_storage_gb = instance.model_storage_gb[models]
        target_storage_price = self._storage_price_per_hour[models]
        target_gpus_used = point.evaluation.gpus_used[gpus]
        target_gpu_ceiling = self._gpu_ceiling[gpus]
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
                if short:
                    reachable &= (added > 1) | ((added == 1) & (n > 0))
                    added = np.where(reachable, added - 1, 0)
                source_model = models[source]
                same_model = models == source_model
                source_model_left = model_replicas[source_model] - removed
                freed = (source_model_left == 0) & ~(same_model & (added > 0))
                new_model = ~same_model & (target_model_replicas == 0) & (added > 0)
                storage_change_gb = (
                    np.where(new_model, target_storage_gb, 0.0) - freed * instance.model_storage_gb[source_model]
                )
                cost_change = (
                    added * price
                    - removed * price[source]
                    + np.where(new_model, target_storage_price, 0.0)
                    - freed * self._storage_price_per_hour[source_model]
                )
                gpus_after = (
                    target_gpus_used
                    + added * instance.gpus_per_replica
                    - (gpus == gpus[source]) * removed * instance.gpus_per_replica[source]
                )
                delay_change = share @ (self._delay_penalty[carried] - self._delay_penalty[carried, source, None])
                valid = (
                    reachable
                    & (cost_change <= room.budget_left_per_hour)
                    & (gpus_after <= target_gpu_ceiling)
                    & (n + added <= self._replica_ceiling)
                    & (room.storage_gb + storage_change_gb <= self._storage_ceiling)
                )
                if short:  # the same model elsewhere; the LP and a helper rebalance the error averages
                    valid &= same_model
                else:
                    error_change = share[:, None] * (
                        instance.error_rate[carried] - instance.error_rate[carried, source, None]
                    )
                    valid &= (error_change <= error_slack[carried, None]).all(axis=0)
                estimate = np.where(valid, cost_change + delay_change, np.inf)
                for target in np.argsort(estimate, kind="stable")[:_TARGETS_PER_SOURCE].tolist():
                    if estimate[target] < -improvement_margin(point.cost):
                        moves.append(
                            _Relocation(float(estimate[target]), int(source), removed, target, int(added[target]))
                        )
        return sorted(moves, key=lambda move: (move.estimate_per_hour, move.source, move.removed))

    def _merges(self, point: SearchPoint) -> list[_Merge]:
        """Per number of new target replicas, the best screened merges, best estimate first."""
        instance = self.instance
        rho = instance.design_utilisation
        n = point.replicas
        x = point.plan.routing
        room = self._room(point)
        sources = np.flatnonzero((n > 0) & (room.load > 0))
        if len(sources) < 2:
            return []
        routed = x[:, sources]  # (I, S) requests/hour
        needed_load = routed.T @ self._allowed_inverse_capacity  # (S, C) replicas' worth
        unreachable = (routed.T > 0.0) @ ~instance.route_allowed  # (S, C) some carried type may not go to the target
        delay_penalty = self._allowed_delay_penalty
        price = self._price
        saving = (  # $/hour saved by moving source s's traffic to target c and removing its replicas
            n[sources, None] * price[sources, None]
            + (routed * delay_penalty[:, sources]).sum(axis=0)[:, None]
            - routed.T @ delay_penalty
        )
        candidate = ~unreachable & (saving > 0.0)
        candidate[np.arange(len(sources)), sources] = False
        targets = np.flatnonzero(candidate.sum(axis=0) >= 2)  # a merge moves two sources at least
        if len(targets) == 0:
            return []
        candidate, needed_load, saving = candidate[:, targets], needed_load[:, targets], saving[:, targets]
        order = np.argsort(-np.where(candidate, saving / np.maximum(needed_load, 1e-300), -np.inf), axis=0)
        columns = np.arange(len(targets))
        models, gpus = instance.config_model, instance.config_gpu
        target_models, target_gpus = models[targets], gpus[targets]
        target_gpus_per_replica = instance.gpus_per_replica[targets]
        source_gpus_used = n[sources] * instance.gpus_per_replica[sources]  # (S,) GPUs
        merges = []
        spare_elsewhere = room.spare.sum() - room.spare[targets]  # (T,) spare load of the other replicas
        error_rate = instance.error_rate[:, targets]  # (I, T)
        # (I, T) error slack the LP could still free by moving each type's traffic from less accurate routes onto
        # the target, Σ_c x_ic·(e_ic − e_it)⁺ over the active c (the moved traffic would load the target too, so
        # the screen is optimistic; the LP re-route decides).
        error_room = np.zeros((instance.num_query_types, len(targets)))
        for column, config in enumerate(sources.tolist()):  # the types each source carries (x_ic > 0) only
            types = np.flatnonzero(routed[:, column] > 0.0)
            error_gap = np.maximum(instance.error_rate[types, config, None] - error_rate[types], 0.0)
            error_room[types] += routed[types, column, None] * error_gap
        error_limit = room.error_slack[:, None] + error_room  # (I, T)
        # Per rank: the targets whose rank-th source may move there, that source, and the error change of moving it
        # (the same for every count added) as entries (type, position among those targets, requests/hour) where
        # the source carries the type. A source carries few types, and only a rise can break a type's error limit:
        # each type's error added stays within its limit as sources are chosen (0 at the start, each addition
        # checked), so the sparse check rejects exactly the sources the dense (I, T) check would.
        carries = routed > 0.0  # (I, S)
        ranked = []
        for rank in range(len(sources)):
            live = np.flatnonzero(candidate[order[rank], columns])
            if len(live) > 0:
                source = order[rank, live]
                kinds, positions = np.nonzero(carries[:, source])
                moved_source = source[positions]
                change = routed[kinds, moved_source] * (
                    error_rate[kinds, live[positions]] - instance.error_rate[kinds, sources[moved_source]]
                )
                rises = change > 0.0
                ranked.append((live, source, kinds, positions, change, rises))
        for added in range(_MERGE_MAX_NEW + 1):
            capacity = room.spare[targets] + added * rho  # replicas' worth of load the target can take
            used = np.zeros(len(targets))
            gain = np.zeros(len(targets))
            error_added = np.zeros((instance.num_query_types, len(targets)))
            chosen = np.zeros((len(sources), len(targets)), dtype=bool)
            lost_spare = np.zeros(len(targets))  # spare of the chosen sources, which leaves with them
            for live, source, kinds, positions, change, rises in ranked:
                elastic = np.maximum(spare_elsewhere[live] - lost_spare[live], 0.0)
                fits = used[live] + needed_load[source, live] <= capacity[live] + elastic + 1e-9
                rise_kinds, rise_positions = kinds[rises], positions[rises]
                rise_targets = live[rise_positions]
                over = error_added[rise_kinds, rise_targets] + change[rises] > error_limit[rise_kinds, rise_targets]
                fits[rise_positions[over]] = False
                taken, moved = live[fits], source[fits]
                used[taken] += needed_load[moved, taken]
                lost_spare[taken] += room.spare[sources[moved]]
                gain[taken] += saving[moved, taken]
                entries = fits[positions]
                error_added[kinds[entries], live[positions[entries]]] += change[entries]
                chosen[moved, taken] = True
            # Replicas per model and GPUs per type after the merge (T, J) and (T, G): whole numbers, so the
            # scattered sums are exact in any order.
            chosen_source, chosen_target = np.nonzero(chosen)
            models_left = np.tile(room.model_replicas, (len(targets), 1))
            np.subtract.at(models_left, (chosen_target, models[sources[chosen_source]]), n[sources[chosen_source]])
            models_left[columns, target_models] += added
            storage_after_gb = (models_left > 0.5) @ instance.model_storage_gb
            gpus_after = np.tile(point.evaluation.gpus_used, (len(targets), 1))
            np.subtract.at(gpus_after, (chosen_target, gpus[sources[chosen_source]]), source_gpus_used[chosen_source])
            gpus_after[columns, target_gpus] += added * target_gpus_per_replica
            storage_change = (storage_after_gb - room.storage_gb) * instance.storage_price_per_gb_hour  # $/hour
            spend_change = added * price[targets] - chosen.T @ (n[sources] * price[sources]) + storage_change
            estimate = added * price[targets] + storage_change - gain
            valid = (
                (chosen.sum(axis=0) >= 2)
                & ((n[targets] > 0) | (added > 0))
                & (n[targets] + added <= self._replica_ceiling[targets])
                & (spend_change <= room.budget_left_per_hour)
                & (gpus_after <= self._gpu_ceiling[None, :]).all(axis=1)
                & (storage_after_gb <= self._storage_ceiling)
                & (estimate < -improvement_margin(point.cost))
            )
            for column in np.flatnonzero(valid)[np.argsort(estimate[valid], kind="stable")][:_MERGES_VERIFIED]:
                merges.append(
                    _Merge(
                        float(estimate[column]),
                        int(targets[column]),
                        added,
                        tuple(sources[chosen[:, column]].tolist()),
                    )
                )
        return sorted(merges, key=lambda merge: (merge.estimate_per_hour, merge.target, merge.added))

    def merge(self, point: SearchPoint) -> SearchPoint | None:
        """The first of the ``_MERGES_VERIFIED`` best screened merges whose LP re-route lowers the cost; else the
        first of ``_REPAIRED_MERGES`` failed ones that up to ``_REPAIR_STEPS`` sibling swaps make feasible and
        cheaper; else None.

        The screen lets a merge overflow into the other replicas' spare capacity and error slack, which the LP may
        or may not realise. A merge the LP rejects is routed with the unmet cap relaxed (dropped demand priced at
        φ_i) and repaired by the sibling swaps that lower that cost most: on the random (6, 6, 10) instance of seed
        3, merging two Llama-3.1-70B replicas into one TP-4 H200 replica drops more of a math type than its cap
        allows until the Qwen2.5-7B replica beside it moves from INT8 to FP16, and the pair is the optimum
        (AGH stopped 6.5 % above it before).
        """
        failed = []
        for move in self._merges(point)[:_MERGES_VERIFIED]:
            if not self._budget_left():
                return None
            replicas = point.replicas.copy()
            replicas[list(move.sources)] = 0
            replicas[move.target] += move.added
            accepted = self._accept(point, replicas)
            if accepted is not None:
                return accepted
            failed.append(replicas)
        target_cost = point.cost - improvement_margin(point.cost)
        for replicas in failed[:_REPAIRED_MERGES]:
            state = self._evaluate_relaxed(replicas)
            for _ in range(_REPAIR_STEPS):
                if state is None or (state.evaluation.feasible and state.cost < target_cost):
                    break
                state = self._best_of(state, self._sibling_swaps(state), relaxed=True)
            if state is not None and state.evaluation.feasible and state.cost < target_cost:
                accepted = self._accept(point, state.replicas)
                if accepted is not None:
                    return accepted
        return None

    def _evaluate_relaxed(self, replicas: np.ndarray) -> SearchPoint | None:
        """Route ``replicas`` with the unmet cap relaxed (demand beyond it priced at φ_i) and evaluate the plan,
        feasible or not; None if the LP ends without a verdict."""
        routed = self.router.route(replicas, relax_unmet_cap=True, prices=True)
        if routed is None or not routed.feasible:
            return None
        return SearchPoint(routed.plan, self.router.evaluate(routed.plan), routed.prices)

    def _sibling_swaps(self, point: SearchPoint) -> list[np.ndarray]:
        """Replica vectors that move every replica of one active configuration to a sibling (same model and GPU
        type; another precision, TP or PP degree), keeping the count and with the count its traffic needs there."""
        instance = self.instance
        n = point.replicas
        x = point.plan.routing
        vectors = []
        for source in np.flatnonzero(n > 0).tolist():
            carried = x[:, source] > 0.0
            for target in np.flatnonzero(self._sibling_group == self._sibling_group[source]).tolist():
                needed_load = x[carried, source] @ self._inverse_capacity[carried, target]
                if target == source or not np.isfinite(needed_load):
                    continue
                needed = max(1, math.ceil(needed_load / instance.design_utilisation - 1e-9))
                for count in sorted({int(n[source]), needed}):
                    replicas = n.copy()
                    replicas[source] = 0
                    replicas[target] += count
                    vectors.append(replicas)
        return vectors

    def _best_of(self, point: SearchPoint, vectors: list[np.ndarray], *, relaxed: bool) -> SearchPoint | None:
        """The cheapest of ``vectors`` that costs less than ``point`` (each routed by LP; ``relaxed`` as in
        :meth:`_evaluate_relaxed`, else feasible only), or None. A vector whose spend plus a lower bound on its
        routing (:meth:`_relaxed_routing_bound`, :meth:`_routing_bound`, then :meth:`_bounded_out` from ``point``'s
        duals) is not below the cheapest so far is passed over without its LP."""
        best: SearchPoint | None = None
        hours = self.instance.period_hours
        for replicas in vectors:
            if not self._budget_left():
                break
            bar = point.cost if best is None else best.cost
            threshold = bar - improvement_margin(bar)
            spend = limits.spend_per_hour(self.instance, replicas)
            if relaxed:
                if hours * (spend + self._relaxed_routing_bound(replicas)) >= threshold:
                    continue
            elif hours * (spend + self._routing_bound(replicas)) >= bar:
                continue  # what :meth:`evaluate` would decide without its LP
            if self._bounded_out(replicas, spend, point, threshold, relaxed=relaxed):
                continue
            candidate = self._evaluate_relaxed(replicas) if relaxed else self.evaluate(replicas, below_cost=bar)
            if candidate is not None and candidate.cost < threshold:
                best = candidate
        return best

    def sibling(self, point: SearchPoint) -> SearchPoint | None:
        """The cheapest improving sibling swap (:meth:`_sibling_swaps`, every one routed by LP), or None."""
        better = self._best_of(point, self._sibling_swaps(point), relaxed=False)
        if better is not None:
            self.accepted_moves += 1
        return better

    def relocate(self, point: SearchPoint) -> SearchPoint | None:
        """The first of the best screened relocations whose LP re-route lowers the cost, or None."""
        for move in self._relocations(point)[:_MOVES_TRIED_PER_STEP]:
            if not self._budget_left():
                return None
            replicas = move.applied_to(point.replicas)
            accepted = self._accept(point, replicas)
            if accepted is not None:
                return accepted
        return None

    def _helpers(self, state: SearchPoint) -> list[np.ndarray]:
        """Replica vectors that add one *helper* replica to ``state`` (routed with the unmet cap relaxed) for the
        demand it leaves unserved beyond the unmet caps.

        For each of the ``_HELPER_TYPES`` types with the largest such overflow, its ``_HELPERS_PER_TYPE`` cheapest
        candidates per request (rental at ρ_max plus delay penalty) among those that meet its error SLO on their
        own (GH's coverage candidates), within the budget, availability, replica and storage limits. An accurate
        helper also builds error slack, which lets the LP shift the type's other traffic to cheaper, less accurate
        routes.
        """
        instance = self.instance
        demand = instance.demand_per_hour
        over = np.maximum(state.plan.unserved - instance.max_unmet_fraction * demand, 0.0)
        short = np.flatnonzero(over > _NEGLIGIBLE_SHARE * np.maximum(demand, 1.0))
        if len(short) == 0:
            return []
        n = state.replicas
        _, allowed = self._opening_change(n, state.evaluation.spend_per_hour, state.evaluation.gpus_used)
        vectors: dict[bytes, np.ndarray] = {}
        for query_type in short[np.argsort(-over[short], kind="stable")][:_HELPER_TYPES].tolist():
            table = self.context.coverage_tables[query_type]
            configs = table.openings.configs
            if len(configs) == 0:
                continue
            valid = allowed[configs]
            per_request = (
                table.openings.price_per_hour / (instance.design_utilisation * table.capacity[query_type])
                + table.delay_penalty_per_request
            )
            ranked = np.argsort(np.where(valid, per_request, np.inf), kind="stable")[:_HELPERS_PER_TYPE]
            for helper in configs[ranked[valid[ranked]]].tolist():
                replicas = n.copy()
                replicas[helper] += 1
                vectors.setdefault(replicas.tobytes(), replicas)
        return list(vectors.values())

    def relocate_with_helper(self, point: SearchPoint) -> SearchPoint | None:
        """The first of the ``_SHORT_MOVES_TRIED`` best screened relocations one replica short
        (:meth:`_relocations` with ``short``) that lowers the cost, re-routed by LP as it is or, where the LP must
        drop demand beyond the unmet caps, with one of the helper replicas of :meth:`_helpers` for the overflow;
        else None.

        A relocation that needs a little more than whole replicas on its target pays for one replica too many;
        a cheap helper replica elsewhere may carry the rest. On the random (40, 40, 40) instance of seed 3 the
        optimum replaces an FP16 TP-8 H100 replica of Qwen2.5-7B by an INT8 TP-4 one, the Qwen2.5-32B replica
        beside it takes part of its traffic, and a TP-1 replica of another 32B variant the two types left over
        (AGH stopped 5.3 % above it).
        """
        for move in self._relocations(point, short=True)[:_SHORT_MOVES_TRIED]:
            if not self._budget_left():
                return None
            replicas = move.applied_to(point.replicas)
            accepted = self._accept(point, replicas)
            if accepted is not None:
                return accepted
            if not self._budget_left():
                return None
            state = self._evaluate_relaxed(replicas)
            if state is None:
                continue
            for helped in self._helpers(state):
                if not self._budget_left():
                    return None
                accepted = self._accept(point, helped)
                if accepted is not None:
                    return accepted
        return None

    def _value_per_load(self, prices: RoutingPrices) -> np.ndarray:
        """(I, C) what a replica's worth of load of type i on c is worth at the LP's prices, $/hour: μ_ic times the
        request's value π_i − ρ_i·D_ic − η_i·(e_ic − ε_i) (demand price less the delay penalty and the error
        allowance it uses); 0 where the route is not allowed or not worth serving."""
        instance = self.instance
        per_request = (
            prices.demand_per_request[:, None]
            - self._delay_penalty
            - prices.error_per_request[:, None] * (instance.error_rate - instance.error_slo[:, None])
        )
        return np.where(instance.route_allowed & (per_request > 0.0), per_request * instance.capacity_per_hour, 0.0)

    def _opening_change(
        self, replicas: np.ndarray, spend_per_hour: float, gpus_used: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(C,) what one more replica of each configuration adds to the spend of ``replicas`` (spending
        ``spend_per_hour`` $/hour on ``gpus_used`` (G,) GPUs), $/hour (rental and, for a model not stored yet, its
        storage), and (C,) whether the budget, availability, replica and storage limits allow it."""
        instance = self.instance
        models, gpus = instance.config_model, instance.config_gpu
        model_replicas = np.bincount(models, weights=replicas, minlength=len(instance.models))
        new_model = model_replicas[models] == 0
        spend_change = self._price + np.where(new_model, self._storage_price_per_hour[models], 0.0)
        allowed = (
            (spend_change <= limits.budget_room_per_hour(instance, spend_per_hour))
            & (gpus_used[gpus] + instance.gpus_per_replica <= self._gpu_ceiling[gpus])
            & (replicas + 1 <= self._replica_ceiling)
            & (
                limits.storage_gb(instance, replicas) + np.where(new_model, instance.model_storage_gb[models], 0.0)
                <= self._storage_ceiling
            )
        )
        return spend_change, allowed

    def _fill_value(self, value_per_load: np.ndarray, load: np.ndarray) -> np.ndarray:
        """(C,) the best fractional filling of one replica's ρ_max load of each configuration: items (I, C) worth
        ``value_per_load`` $/hour per replica's worth of load, each at most ``load`` of it."""
        load = np.where(value_per_load > 0.0, load, 0.0)
        order = np.argsort(-value_per_load, axis=0, kind="stable")
        value_sorted = np.take_along_axis(value_per_load, order, axis=0)
        load_sorted = np.take_along_axis(load, order, axis=0)
        load_before = np.cumsum(load_sorted, axis=0) - load_sorted
        taken = np.clip(self.instance.design_utilisation - load_before, 0.0, load_sorted)
        return (taken * value_sorted).sum(axis=0)

    def _price_scores(self, state: _PricedState, dropped_per_hour: float) -> np.ndarray:
        """(C,) what one more replica of each configuration saves at the LP's prices of ``state``, $/hour: its load
        filled by value (:meth:`_value_per_load`), each type at most its demand and at most ``dropped_per_hour``
        requests (the prices after a removal hold until about the demand it drops is served again), less its
        spend; −inf where a limit forbids it. Exact for a small enough addition; a ranking beyond."""
        instance = self.instance
        spend_change, allowed = self._opening_change(state.replicas, state.spend_per_hour, state.gpus_used)
        columns = np.flatnonzero(allowed)
        volume = np.minimum(instance.demand_per_hour, dropped_per_hour)
        load = volume[:, None] * self._allowed_inverse_capacity[:, columns]
        scores = np.full(instance.num_configurations, -np.inf)
        scores[columns] = self._fill_value(self._value_per_load(state.prices)[:, columns], load) - spend_change[columns]
        return scores

    def _replacement_scores(
        self, state: _PricedState, traffic_per_hour: np.ndarray, reference_error: np.ndarray, error_slack: np.ndarray
    ) -> np.ndarray:
        """(C,) what one more replica of each configuration saves by serving ``traffic_per_hour`` (I,) that would
        otherwise be dropped, $/hour: its load filled with the types it may take (an error rate at most
        ``reference_error`` (I,), or a rise the type's ``error_slack`` (I,), requests/hour, absorbs), each request
        worth its unmet penalty φ_i less its delay penalty there, less its spend; −inf where a limit forbids it."""
        instance = self.instance
        spend_change, allowed = self._opening_change(state.replicas, state.spend_per_hour, state.gpus_used)
        rows, columns = np.flatnonzero(traffic_per_hour > 0.0), np.flatnonzero(allowed)
        traffic = traffic_per_hour[rows, None]
        error_rise = (instance.error_rate[np.ix_(rows, columns)] - reference_error[rows, None]) * traffic
        takes = (error_rise <= 0.0) | (error_rise <= error_slack[rows, None])
        value_per_load = np.where(takes, self._replacement_value_per_load[np.ix_(rows, columns)], 0.0)
        load = traffic * self._allowed_inverse_capacity[np.ix_(rows, columns)]
        scores = np.full(instance.num_configurations, -np.inf)
        scores[columns] = self._fill_value(value_per_load, load) - spend_change[columns]
        return scores

    def _priced_state(self, replicas: np.ndarray) -> _PricedState | None:
        """``replicas`` routed with the unmet cap relaxed (dropped demand priced at φ_i), with the LP's prices;
        None if the LP ends without a verdict."""
        routed = self.router.route(replicas, relax_unmet_cap=True, prices=True)
        if routed is None or routed.prices is None:
            return None
        instance = self.instance
        spend = limits.spend_per_hour(instance, replicas)
        return _PricedState(
            routed.plan,
            routed.prices,
            instance.period_hours * (spend + routed.objective_per_hour),
            spend,
            limits.gpus_used(instance, replicas),
        )

    def priced_swap(self, point: SearchPoint) -> SearchPoint | None:
        """:meth:`_priced_swap`, its LP solves counted against ``PRICED_SOLVES``; None without trying at a point
        where it found nothing before (within its budget)."""
        key = point.replicas.tobytes()
        if key in self._priced_record.failures:
            return None
        self._priced_call_start = self.router.solves
        try:
            better = self._priced_swap(point)
        finally:
            self._priced_record.solves += self.router.solves - self._priced_call_start
        if better is None and self._priced_budget_left():
            self._priced_record.failures.add(key)
        return better

    def _priced_swap(self, point: SearchPoint) -> SearchPoint | None:
        """Remove replicas and re-serve by the routing LP's prices; the first such swap that lowers the cost, or
        None.

        For each of the ``_PRICED_REMOVALS`` active configurations with the most rental, remove its whole
        deployment or one replica, route what is left with the unmet cap relaxed (dropped demand priced at φ_i),
        and open replicas (:meth:`_grow`), re-routing after each, until the plan is feasible and cheaper than
        ``point`` or ``_PRICED_MAX_ADDED`` are open. The first replica is, in turn, each of the
        ``_PRICED_FIRST_CHOICES`` best by the LP's prices (:meth:`_price_scores`), by how much of the removed
        traffic it could carry (:meth:`_replacement_scores`), and by the latter among the *re-models* (another model
        on the same GPU type, TP and PP degree) and the *regroups* (the same model and GPU type on a different
        number of GPUs per replica, e.g. two TP-1 replicas into one TP-2 or one TP-4 into two TP-2). Unlike the
        relocation screen, nothing asks the moved traffic to fit the new replicas: the LP may re-shuffle every
        type's traffic around them, e.g. a replica of a faster model on the same GPUs takes over from the removed
        one while the types it serves badly move elsewhere.
        """
        instance = self.instance
        n = point.replicas
        target_cost = point.cost - improvement_margin(point.cost)
        active = np.flatnonzero(n > 0)
        by_rental = active[np.argsort(-(n[active] * self._price[active]), kind="stable")][:_PRICED_REMOVALS]
        error_slack = self._error_slack(point.plan.routing)
        for source in by_rental.tolist():
            for removed in sorted({int(n[source]), 1}, reverse=True):
                if not self._priced_budget_left():
                    return None
                reduced = n.copy()
                reduced[source] -= removed
                state = self._priced_state(reduced)
                if state is None:
                    continue
                load = point.evaluation.utilisation[source] * n[source]
                shed_share = max(0.0, load - instance.design_utilisation * (n[source] - removed)) / max(load, 1e-300)
                scores = self._replacement_scores(
                    state, shed_share * point.plan.routing[:, source], instance.error_rate[:, source], error_slack
                )
                scores[source] = -np.inf
                price_scores = self._price_scores(
                    state, float(np.maximum(state.plan.unserved - point.plan.unserved, 0.0).sum())
                )
                price_scores[source] = -np.inf
                remodel = (self._hardware_group == self._hardware_group[source]) & (
                    instance.config_model != instance.config_model[source]
                )
                regroup = (self._sibling_group == self._sibling_group[source]) & (
                    instance.gpus_per_replica != instance.gpus_per_replica[source]
                )
                first_choices: dict[int, None] = {}  # insertion-ordered, without repeats
                for ranked, count in (
                    (price_scores, _PRICED_FIRST_CHOICES),
                    (scores, _PRICED_FIRST_CHOICES),
                    (np.where(remodel, scores, -np.inf), _PRICED_FIRST_CHOICES),
                    (np.where(regroup, scores, -np.inf), _PRICED_FIRST_CHOICES),
                ):
                    best = np.argsort(-ranked, kind="stable")[:count]
                    first_choices |= dict.fromkeys(best[np.isfinite(ranked[best])].tolist())
                for first in first_choices:
                    accepted = self._grow(point, reduced, first, source, target_cost)
                    if accepted is not None:
                        return accepted
        return None

    def _grow(
        self, point: SearchPoint, reduced: np.ndarray, first: int, source: int, target_cost: float
    ) -> SearchPoint | None:
        """Open ``first`` on ``reduced``, then, while the LP must drop more than ``point`` does, the replica that
        re-serves most of the extra drop (:meth:`_replacement_scores`, never ``source``), until the plan keeps the
        unmet caps and costs less than ``target_cost`` (returned, judged by ``evaluate_plan``) or
        ``_PRICED_MAX_ADDED`` replicas are open (None).

        The LP with the unmet cap relaxed that keeps the caps is also the optimum with them enforced, so the plan is
        judged without another solve."""
        instance = self.instance
        demand = instance.demand_per_hour
        replicas = reduced.copy()
        replicas[first] += 1
        for opened in range(1, _PRICED_MAX_ADDED + 1):
            if not self._priced_budget_left():
                return None
            state = self._priced_state(replicas)
            if state is None:
                return None
            within_caps = not np.any(limits.exceeds(state.plan.unserved, instance.max_unmet_fraction * demand))
            if within_caps and state.cost < target_cost:
                evaluation = self.router.evaluate(state.plan)
                if not evaluation.feasible or evaluation.cost.total >= target_cost:
                    return None
                self.accepted_moves += 1
                return SearchPoint(state.plan, evaluation, state.prices)
            if opened == _PRICED_MAX_ADDED or state.spend_per_hour * instance.period_hours >= target_cost:
                return None
            dropped = np.maximum(state.plan.unserved - point.plan.unserved, 0.0)
            if not np.any(dropped > _NEGLIGIBLE_SHARE * np.maximum(demand, 1.0)):
                return None  # nothing left to re-serve: more replicas only cost more
            scores = self._replacement_scores(state, dropped, instance.error_slo, self._error_slack(state.plan.routing))
            scores[source] = -np.inf
            best = int(np.argmax(scores))
            if not np.isfinite(scores[best]):
                return None
            replicas[best] += 1
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
            if np.any(limits.exceeds(must_shed, room)):
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
        whose LP re-route lowers the cost, or None; None as well once the search has made ``max_repairs``."""
        if self.repairs >= self.max_repairs:
            return None
        candidates, made = rebuilds(self.context, point.plan, self._seeds, self.max_repairs - self.repairs)
        self.repairs += made
        for candidate in candidates[:_REBUILDS_VERIFIED]:
            if not self._budget_left():
                return None
            accepted = self._accept(point, candidate.replicas)
            if accepted is not None:
                return accepted
        return None

    def run(
        self, point: SearchPoint, *, rebuild: bool = True, helpers: bool = True, priced: bool = True
    ) -> SearchPoint:
        """Apply improving relocations, removals, rebuilds, merges, sibling swaps, relocations with a helper and
        priced swaps until none improves or the limits are reached.

        ``rebuild=False`` leaves out the rebuilds, the dearest neighbourhood (GH repairs); ``helpers=False`` the
        relocations with a helper; ``priced=False`` the priced swaps.
        """
        while self._budget_left():
            better = (
                self.relocate(point)
                or self.consolidate(point)
                or (self.rebuild(point) if rebuild else None)
                or self.merge(point)
                or self.sibling(point)
                or (self.relocate_with_helper(point) if helpers else None)
                or (self.priced_swap(point) if priced else None)
            )
            if better is None:
                break
            point = better
        return point
