"""The routing LP: for fixed replica counts, route demand optimally (x, u) with HiGHS.

    minimise   Σ_{i,c} ρ_i·D_{i,c}·x_{i,c} + Σ_i φ_i·u_i          ($/hour)
    s.t.       Σ_c x_{i,c} + u_i = λ_i                              ∀i
               Σ_i x_{i,c}/μ_{i,c} ≤ ρ_max·n_c                      ∀c
               Σ_c (e_{i,c} − ε_i)·x_{i,c} ≤ 0                       ∀i
               0 ≤ u_i ≤ ζ_i·λ_i   (or ≤ λ_i when the unmet cap is relaxed, as the environment's router does)
               x_{i,c} ≥ 0 only on allowed routes (μ_{i,c} > 0 and D_{i,c} ≤ Δ_i)

A :class:`Router` builds the LP once per instance; each :meth:`Router.route` only changes bounds (and, when the
service speed differs from the last call, the delay costs), so HiGHS warm-starts from the previous basis (tens to
hundreds of microseconds on the shipped scenarios).

The environment's router (MODEL.md §6, "What the router sees") routes the realised demand over the capacity that
is ready, at the realised service speed: ``route(ready_replicas, demand, slowdown=s)`` with fractional ready
replica counts and a per-configuration service-time multiplier s_c ≥ 0 scales each capacity row to
ρ_max·n_c / s_c and each route's delay cost to ρ_i·s_c·D_{i,c}. Error rates stay nominal: accuracy is not
observable online.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import highspy
import numpy as np

from servegym.envs.evaluation import Plan
from servegym.envs.instance import Instance


def new_highs() -> highspy.Highs:
    """A silent single-threaded HiGHS instance.

    HiGHS prints its banner from the C++ constructor before any option can be set, so standard output is
    pointed at /dev/null for the construction only (the banner is printed once per process).
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            highs = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    return highs


@dataclass(frozen=True)
class RoutingPrices:
    """The routing LP's dual values (shadow prices) at its optimum: how the objective ($/hour) changes per unit of
    each row's right-hand side, all other rows and every column bound held fixed.

    Signs are those of the economic reading, each ≥ 0 where the LP has no degenerate alternative: HiGHS reports
    ``row_dual`` y with ∂objective/∂rhs = y for a minimisation, so the demand prices are y and the capacity and
    error prices −y (one more unit of capacity or of error allowance can only lower the cost).

    Attributes:
        demand_per_request: (I,) ∂objective/∂λ_i, $ per request: what one more request/hour of type i would add.
        capacity_per_load: (C,) −∂objective/∂(ρ_max·n_c), $/hour per replica's worth of load: what one more unit
            of configuration c's capacity row (load at full utilisation of one replica) would save; 0 where the
            capacity has slack.
        error_per_request: (I,) −∂objective/∂(error allowance of type i), $ per erroneous request/hour: what
            relaxing Σ_c (e_ic − ε_i)·x_ic ≤ 0 to ≤ 1 would save; 0 where the error average has slack.
    """

    demand_per_request: np.ndarray
    capacity_per_load: np.ndarray
    error_per_request: np.ndarray


@dataclass(frozen=True)
class RoutingResult:
    """Outcome of one routing LP.

    Attributes:
        feasible: False iff the LP is infeasible (only possible with the unmet cap enforced).
        plan: The replicas with the optimal routing (all demand unserved when infeasible).
        objective_per_hour: Delay plus unmet penalty, $/hour (inf when infeasible).
        prices: The LP's dual values when asked for (``Router.route(prices=True)``) and the LP is feasible; else
            None.
    """

    feasible: bool
    plan: Plan
    objective_per_hour: float
    prices: RoutingPrices | None = None


class Router:
    """Routing LP for one instance's configurations and coefficients; demand and replicas vary per call.

    Args:
        instance: The problem.
        highs: A HiGHS object to solve in (e.g. one a discarded router no longer needs; the LP is passed into it,
            which leaves it as a new one would be, see :meth:`reset`); None for a new one (about 0.4 ms to make).
    """

    def __init__(self, instance: Instance, highs: highspy.Highs | None = None) -> None:
        self.instance = instance
        num_types, num_configs = instance.num_query_types, instance.num_configurations
        self._route_type, self._route_config = np.nonzero(instance.route_allowed)
        num_routes = len(self._route_type)
        mu = instance.capacity_per_hour[self._route_type, self._route_config]
        error_excess = instance.error_rate[self._route_type, self._route_config] - instance.error_slo[self._route_type]
        # Column order: x routes, then u per type. Row order: demand (I), capacity (C), error (I).
        route_index = np.arange(num_routes)
        rows = np.concatenate(
            [self._route_type, num_types + self._route_config, num_types + num_configs + self._route_type]
        )
        cols = np.concatenate([route_index, route_index, route_index])
        values = np.concatenate([np.ones(num_routes), 1.0 / mu, error_excess])
        unmet_index = num_routes + np.arange(num_types)
        rows = np.concatenate([rows, np.arange(num_types)])
        cols = np.concatenate([cols, unmet_index])
        values = np.concatenate([values, np.ones(num_types)])
        order = np.lexsort((rows, cols))
        rows, cols, values = rows[order], cols[order], values[order]
        num_cols = num_routes + num_types
        starts = np.searchsorted(cols, np.arange(num_cols + 1))

        lp = highspy.HighsLp()
        lp.num_col_ = num_cols
        lp.num_row_ = 2 * num_types + num_configs
        lp.col_cost_ = np.concatenate(
            [
                instance.delay_penalty_per_request_s[self._route_type]
                * instance.delay_s[self._route_type, self._route_config],
                instance.unmet_penalty_per_request,
            ]
        )
        lp.col_lower_ = np.zeros(num_cols)
        lp.col_upper_ = np.full(num_cols, highspy.kHighsInf)
        lp.row_lower_ = np.concatenate([np.zeros(num_types), np.full(num_configs + num_types, -highspy.kHighsInf)])
        lp.row_upper_ = np.zeros(2 * num_types + num_configs)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = starts
        lp.a_matrix_.index_ = rows
        lp.a_matrix_.value_ = values
        self._lp = lp  # the LP as built: nominal costs, no demand, no capacity
        self._highs = new_highs() if highs is None else highs
        self._highs.passModel(lp)
        self._num_routes = num_routes
        self._demand_rows = np.arange(num_types, dtype=np.int32)
        self._capacity_rows = np.arange(num_types, num_types + num_configs, dtype=np.int32)
        self._unmet_cols = unmet_index.astype(np.int32)
        self._no_capacity_lower = np.full(num_configs, -highspy.kHighsInf)
        self._no_unmet_lower = np.zeros(num_types)
        self._route_cols = np.arange(num_routes, dtype=np.int32)
        self._nominal_route_cost = np.array(lp.col_cost_[:num_routes])
        self._slowdown = np.ones(num_configs)  # service-time multiplier the delay costs currently hold

    def reset(self) -> None:
        """Return HiGHS to the state of a new router, so the next routes are the same whatever was solved before
        (the environment calls this in ``reset``: episodes are then bit-identical in a fresh or a reused object).

        ``clearSolver`` is not enough: HiGHS keeps simplex data beyond the basis, which changed low-order bits of
        later routes (rel. 1e-14 on drifting service speeds). Passing the model again takes about 0.1 ms.
        """
        self._highs.passModel(self._lp)
        self._slowdown = np.ones(self.instance.num_configurations)

    @property
    def highs(self) -> highspy.Highs:
        """The HiGHS object this router solves in (to hand to a new router once this one is discarded)."""
        return self._highs

    def __getstate__(self) -> dict[str, Instance]:
        """Pickle only the instance (the HiGHS object cannot be pickled); the LP is rebuilt on unpickling."""
        return {"instance": self.instance}

    def __setstate__(self, state: dict[str, Instance]) -> None:
        self.__init__(state["instance"])

    def route(
        self,
        replicas: np.ndarray,
        demand_per_hour: np.ndarray | None = None,
        *,
        relax_unmet_cap: bool = False,
        slowdown: np.ndarray | None = None,
        prices: bool = False,
    ) -> RoutingResult:
        """Route ``demand_per_hour`` (default the instance's λ) over ``replicas`` (C,) optimally.

        Args:
            replicas: Replica counts n (C,); fractional counts are ready capacity in replica units (a replica that
                is ready for half the period counts 0.5).
            demand_per_hour: Demand λ (I,), requests/hour.
            relax_unmet_cap: Allow dropping any share of the demand (the LP is then always feasible); the
                environment's router does this and reports the excess as an SLO violation.
            slowdown: (C,) service-time multiplier per configuration (1 = catalog speed, 1.2 = 20 % slower); the
                capacity of configuration c becomes ρ_max·n_c / s_c and its delay costs s_c·D. None means 1.
            prices: Also return the LP's dual values (:class:`RoutingPrices`); the solve is the same either way.

        The returned plan's ``replicas`` are ``replicas`` rounded up to whole replicas (a plan's unit); the routing
        respects the fractional capacity.
        """
        instance = self.instance
        n = np.asarray(replicas, dtype=float)
        demand = instance.demand_per_hour if demand_per_hour is None else np.asarray(demand_per_hour, dtype=float)
        if n.shape != (instance.num_configurations,) or demand.shape != (instance.num_query_types,):
            raise ValueError(
                f"route: replicas shape {n.shape} / demand shape {demand.shape}, expected "
                f"({instance.num_configurations},) / ({instance.num_query_types},)"
            )
        highs = self._highs
        num_types = instance.num_query_types
        highs.changeRowsBounds(num_types, self._demand_rows, demand, demand)
        capacity = instance.design_utilisation * n
        if slowdown is not None:
            slowdown = np.asarray(slowdown, dtype=float)
            if slowdown.shape != n.shape or not np.all(np.isfinite(slowdown) & (slowdown > 0)):
                raise ValueError(f"route: slowdown must be ({len(n)},) finite and > 0, got shape {slowdown.shape}")
            capacity = capacity / slowdown
        else:
            slowdown = np.ones_like(n)
        if not np.array_equal(slowdown, self._slowdown):
            route_slowdown = slowdown[self._route_config]
            highs.changeColsCost(self._num_routes, self._route_cols, self._nominal_route_cost * route_slowdown)
            self._slowdown = slowdown.copy()
        highs.changeRowsBounds(len(capacity), self._capacity_rows, self._no_capacity_lower, capacity)
        unmet_upper = demand if relax_unmet_cap else instance.max_unmet_fraction * demand
        highs.changeColsBounds(num_types, self._unmet_cols, self._no_unmet_lower, unmet_upper)
        highs.run()
        status = highs.getModelStatus()
        if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible):
            # A warm start from the basis of an earlier (e.g. infeasible) solve can end as "Unknown": solve cold.
            highs.clearSolver()
            highs.run()
            status = highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            if status == highspy.HighsModelStatus.kInfeasible:
                empty = Plan(
                    replicas=np.ceil(n - 1e-9).astype(np.int64),
                    routing=np.zeros((num_types, instance.num_configurations)),
                    unserved=demand.copy(),
                )
                return RoutingResult(False, empty, float("inf"))
            raise RuntimeError(f"routing LP ended with HiGHS status {highs.modelStatusToString(status)}")
        solution = highs.getSolution()
        values = np.asarray(solution.col_value)
        routing = np.zeros((num_types, instance.num_configurations))
        routing[self._route_type, self._route_config] = np.maximum(values[: self._num_routes], 0.0)
        unserved = np.maximum(values[self._num_routes :], 0.0)
        plan = Plan(replicas=np.ceil(n - 1e-9).astype(np.int64), routing=routing, unserved=unserved)
        dual_values = None
        if prices:
            row_dual = np.asarray(solution.row_dual)
            num_configs = instance.num_configurations
            dual_values = RoutingPrices(
                demand_per_request=row_dual[:num_types].copy(),
                capacity_per_load=-row_dual[num_types : num_types + num_configs],
                error_per_request=-row_dual[num_types + num_configs :],
            )
        return RoutingResult(True, plan, float(highs.getObjectiveValue()), dual_values)


def route(instance: Instance, replicas: np.ndarray, *, relax_unmet_cap: bool = False) -> RoutingResult:
    """One-off convenience: build a :class:`Router` and route the instance's demand over ``replicas``."""
    return Router(instance).route(replicas, relax_unmet_cap=relax_unmet_cap)
