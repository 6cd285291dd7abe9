"""The routing LP restricted to the configurations that have replicas, for planners that re-route many times.

``envs.routing.Router`` keeps one column per allowed route of every configuration, also where n_c = 0. On a
(20, 20, 20) instance that is ~78k columns, and a warm-started re-solve after the set of active configurations
changes can take seconds. A configuration without replicas carries nothing, so routing over the active
configurations only has the same optimum; :class:`ActiveRouter` builds a ``Router`` on that sub-instance
(I × |active| columns, about a millisecond) and caches it per active set, so re-solves that only change replica
counts warm-start. The cache may be shared by the ActiveRouters of instances that differ only in demand (AGH
re-planning every period): the demand is passed to each solve, and each ActiveRouter resets a shared LP's basis
when it first uses it, so its results are those of a fresh cache.

:meth:`ActiveRouter.evaluate` judges a plan with ``evaluate_plan`` on the same sub-instance: a configuration without
replicas carries no traffic and uses no resource, so every check and cost part is the one on the whole instance,
at a fraction of the work (AGH's local search judges every improving re-route; (I, C) arrays of 6,000 working
configurations on (40, 40, 40) against a few dozen active ones).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import numpy as np

from servegym.envs.evaluation import Evaluation, Plan, evaluate_plan
from servegym.envs.instance import Instance
from servegym.envs.routing import Router, RoutingPrices, RoutingResult

_CACHED_ROUTERS = 64
"""Routers kept per ActiveRouter (one per active set; local search revisits few sets)."""


RouterCache = OrderedDict[tuple[int, ...], Router]
"""Routers by active set, on sub-instances of one instance (any demand)."""


class ActiveRouter:
    """Routes an instance's demand optimally over given replicas, solving the LP on the active configurations.

    Args:
        instance: The problem.
        routers: A cache of routers on sub-instances of ``instance`` with any demand (e.g. the previous period's)
            to reuse; None for a new one.
    """

    def __init__(self, instance: Instance, routers: RouterCache | None = None) -> None:
        self.instance = instance
        self._routers: RouterCache = OrderedDict() if routers is None else routers
        self._used: set[tuple[int, ...]] = set()  # routers this object has solved with (their basis is its own)
        self.solves = 0  # routes asked for: LP solves plus the routes settled by a bound (count_bounded)
        self.bounded = 0

    def _router(self, active: np.ndarray) -> Router:
        key = tuple(active.tolist())
        router = self._routers.pop(key, None)
        if router is None:
            # A full cache hands its oldest router's HiGHS object over: making and freeing one costs more than
            # building the LP, and passing the new LP into it leaves it as a new one would be.
            spare = self._routers.popitem(last=False)[1].highs if len(self._routers) >= _CACHED_ROUTERS else None
            router = Router(self.instance.restrict(active), highs=spare)
        elif key not in self._used:
            router.reset()  # a basis left by another demand: solve as a fresh router would
        self._used.add(key)
        self._routers[key] = router
        return router

    def count_bounded(self) -> None:
        """Count a route the caller settled by a lower bound instead of an LP (its cost could not beat the one to
        beat) in ``solves``, as the LP it replaces, and in ``bounded``."""
        self.solves += 1
        self.bounded += 1

    def evaluate(self, plan: Plan) -> Evaluation:
        """``evaluate_plan(instance, plan)``, computed on the sub-instance of the plan's active configurations.

        The plan must route nothing to configurations without replicas (every plan :meth:`route` returns); the
        evaluation's (C,) arrays are lifted back to the instance's configuration indices.
        """
        instance = self.instance
        replicas = np.asarray(plan.replicas, dtype=np.int64)
        active = np.flatnonzero(replicas > 0)
        if len(active) == 0:
            return evaluate_plan(instance, plan)
        cached = self._routers.get(tuple(active.tolist()))
        sub_instance = instance.restrict(active) if cached is None else cached.instance
        if not np.array_equal(sub_instance.demand_per_hour, instance.demand_per_hour):
            # A router cached for another demand (a shared cache); the same demand keeps the cached sub-instance
            # and its cached properties (route_allowed, prices), which evaluate_plan reads.
            sub_instance = sub_instance.with_demand(instance.demand_per_hour)
        routing = np.asarray(plan.routing)
        sub_plan = Plan(replicas=replicas[active], routing=routing[:, active], unserved=np.asarray(plan.unserved))
        evaluation = evaluate_plan(sub_instance, sub_plan)
        utilisation = np.zeros(instance.num_configurations)
        utilisation[active] = evaluation.utilisation
        return dataclasses.replace(evaluation, utilisation=utilisation, replicas=replicas.copy())

    def route(
        self, replicas: np.ndarray, *, relax_unmet_cap: bool = False, prices: bool = False
    ) -> RoutingResult | None:
        """Optimal routing of the instance's demand over ``replicas`` (C,).

        Args:
            replicas: Replica counts n (C,).
            relax_unmet_cap: As in ``Router.route``: allow dropping beyond the unmet cap.
            prices: As in ``Router.route``: also the LP's dual values; configurations without replicas, which the
                LP leaves out, get capacity price 0.

        Returns:
            The routing result in the full configuration index space, or None if HiGHS ends without a verdict
            (its status ``Unknown`` after a warm start from an infeasible basis; the cached LP is then dropped).
        """
        instance = self.instance
        replicas = np.asarray(replicas, dtype=np.int64)
        active = np.flatnonzero(replicas > 0)
        self.solves += 1
        if len(active) == 0:
            empty = Plan.empty(instance)
            within_cap = relax_unmet_cap or bool(np.all(instance.max_unmet_fraction >= 1.0))
            objective = float(instance.unmet_penalty_per_request @ instance.demand_per_hour)
            empty_prices = None
            if prices and within_cap:  # every request is dropped: one more costs φ_i, nothing else binds
                empty_prices = RoutingPrices(
                    demand_per_request=np.array(instance.unmet_penalty_per_request, dtype=float),
                    capacity_per_load=np.zeros(instance.num_configurations),
                    error_per_request=np.zeros(instance.num_query_types),
                )
            return RoutingResult(within_cap, empty, objective if within_cap else float("inf"), empty_prices)
        router = self._router(active)
        try:
            result = router.route(
                replicas[active], instance.demand_per_hour, relax_unmet_cap=relax_unmet_cap, prices=prices
            )
        except RuntimeError:
            self._routers.pop(tuple(active.tolist()), None)
            return None
        routing = np.zeros((instance.num_query_types, instance.num_configurations))
        routing[:, active] = result.plan.routing
        plan = Plan(replicas=replicas.copy(), routing=routing, unserved=result.plan.unserved)
        lifted_prices = None
        if result.prices is not None:
            capacity_per_load = np.zeros(instance.num_configurations)
            capacity_per_load[active] = result.prices.capacity_per_load
            lifted_prices = dataclasses.replace(result.prices, capacity_per_load=capacity_per_load)
        return RoutingResult(result.feasible, plan, result.objective_per_hour, lifted_prices)
