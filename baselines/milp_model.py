"""The single-period MILP of MODEL.md §3 as an OR-Tools ``pywraplp`` model, one ``add_*`` function per family.

Variables carry structured names so an exported MPS file reads like the formulation:
``n[c=Llama-3.1-8B@H100-SXM/fp16/tp1pp1]`` replicas, ``x[i=conv-short,c=...]`` requests/hour routed,
``u[i=conv-short]`` requests/hour dropped, ``s[j=Llama-3.1-8B]`` model stored. Route variables exist only where
``instance.route_allowed`` (the delay SLO per route), so that family needs no rows.

Several periods can share one solver (the perfect-foresight oracle, ``baselines/oracle.py``): each period gets its
own :class:`MilpModel` built with ``period=t``, which appends ``t=<t>`` to every variable and row name
(``n[c=...,t=3]``, ``budget[t=3]``).

The objective is in $ per period (Δt × $/hour), the unit of ``PlanResult.bound``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
from ortools.linear_solver import pywraplp

from servegym.envs.evaluation import Plan
from servegym.envs.instance import Instance

RELAXABLE_FAMILIES: tuple[str, ...] = ("budget", "unmet_cap", "availability", "storage", "error_slo")
"""Constraint families that :func:`build_model` can drop (``relax``), in the order infeasibility is diagnosed."""


class MilpModelError(ValueError):
    """The MILP cannot be built (unknown solver backend or relaxed family)."""


@dataclass(frozen=True)
class MilpModel:
    """A built model and the handles needed to read or hint a solution.

    Attributes:
        instance: The instance the model encodes.
        solver: The ``pywraplp`` solver holding variables, rows and objective.
        replicas: (C,) variables n_c, integer replicas (continuous when built relaxed).
        routes: (R,) variables x for the allowed routes, requests/hour, in ``np.nonzero(route_allowed)`` order.
        route_type: (R,) query type index i of each route.
        route_config: (R,) configuration index c of each route.
        unserved: (I,) variables u_i, requests/hour.
        stored: (J,) variables s_j in {0, 1}.
        type_labels: (I,) unique MPS-safe query type names used in variable and row names.
        config_labels: (C,) unique MPS-safe configuration names.
        demand_rows: (I,) demand-balance rows, filled by :func:`add_demand_balance`.
        period: Period index t appended to every name when several periods share the solver; None for one period.
    """

    instance: Instance
    solver: pywraplp.Solver
    replicas: tuple[pywraplp.Variable, ...]
    routes: tuple[pywraplp.Variable, ...]
    route_type: np.ndarray
    route_config: np.ndarray
    unserved: tuple[pywraplp.Variable, ...]
    stored: tuple[pywraplp.Variable, ...]
    type_labels: tuple[str, ...]
    config_labels: tuple[str, ...]
    demand_rows: list[pywraplp.Constraint] = field(default_factory=list)
    period: int | None = None

    def name(self, family: str, key: str = "") -> str:
        """Structured name of one of this model's variables or rows (see :func:`structured_name`)."""
        return structured_name(family, key, self.period)

    def variables(self) -> list[pywraplp.Variable]:
        """All variables in a fixed order: n, x, u, s."""
        return [*self.replicas, *self.routes, *self.unserved, *self.stored]

    def plan_values(self, plan: Plan) -> list[float]:
        """Values of :meth:`variables` that encode ``plan`` (s_j = 1 iff model j has a replica)."""
        routing = np.asarray(plan.routing, dtype=float)
        return [
            *np.round(plan.replicas).astype(float).tolist(),
            *routing[self.route_type, self.route_config].tolist(),
            *np.asarray(plan.unserved, dtype=float).tolist(),
            *plan.stored_models(self.instance).astype(float).tolist(),
        ]

    def solution_plan(self, values: np.ndarray) -> Plan:
        """The plan that ``values`` (in :meth:`variables` order) encode: n rounded to whole replicas, tiny
        negatives clipped."""
        instance = self.instance
        num_replicas, num_routes = len(self.replicas), len(self.routes)
        routing = np.zeros((instance.num_query_types, instance.num_configurations))
        routing[self.route_type, self.route_config] = np.maximum(values[num_replicas : num_replicas + num_routes], 0.0)
        unserved_start = num_replicas + num_routes
        return Plan(
            replicas=np.round(values[:num_replicas]).astype(np.int64),
            routing=routing,
            unserved=np.maximum(values[unserved_start : unserved_start + len(self.unserved)], 0.0),
        )


def structured_name(family: str, key: str = "", period: int | None = None) -> str:
    """``family[key]``, with ``t=<period>`` appended to the key when given; ``family`` alone without either.

    Examples: ``n[c=m-big@fast/fp16/tp2pp1]``, ``n[c=m-big@fast/fp16/tp2pp1,t=3]``, ``budget``, ``budget[t=3]``.
    """
    parts = [part for part in (key, "" if period is None else f"t={period}") if part]
    return f"{family}[{','.join(parts)}]" if parts else family


def _label(text: str) -> str:
    """A name fragment safe in MPS files (no whitespace)."""
    return "_".join(text.split())


def _unique_labels(names: list[str]) -> list[str]:
    """MPS-safe labels, with ``#k`` (the index) appended to names that occur more than once."""
    labels = [_label(name) for name in names]
    repeated = {label for label, count in Counter(labels).items() if count > 1}
    return [f"{label}#{k}" if label in repeated else label for k, label in enumerate(labels)]


def _finite(value: float) -> bool:
    return math.isfinite(value) and value < 1e20


def add_variables(
    solver: pywraplp.Solver, instance: Instance, *, integral: bool, relax: Collection[str], period: int | None = None
) -> MilpModel:
    """Create n, x (allowed routes only), u and s with their bounds.

    The unmet cap u_i ≤ ζ_i·λ_i is a variable bound (u_i ≤ λ_i when ``"unmet_cap"`` is relaxed), and so is
    n_c ≤ n_max_c (replicas that fit the GPU type's availability on their own). ``period`` (t) is appended to
    every variable and row name of the model (see :func:`structured_name`).
    """
    type_names = tuple(_unique_labels([q.name for q in instance.query_types]))
    config_names = tuple(_unique_labels([c.name for c in instance.configurations]))
    replicas = tuple(
        solver.Var(0.0, float(instance.max_replicas[c]), integral, structured_name("n", f"c={config_names[c]}", period))
        for c in range(instance.num_configurations)
    )
    route_type, route_config = np.nonzero(instance.route_allowed)
    routes = tuple(
        solver.NumVar(0.0, solver.infinity(), structured_name("x", f"i={type_names[i]},c={config_names[c]}", period))
        for i, c in zip(route_type.tolist(), route_config.tolist(), strict=True)
    )
    demand = instance.demand_per_hour
    unmet_limit = demand if "unmet_cap" in relax else instance.max_unmet_fraction * demand
    unserved = tuple(
        solver.NumVar(0.0, float(unmet_limit[i]), structured_name("u", f"i={type_names[i]}", period))
        for i in range(instance.num_query_types)
    )
    stored = tuple(
        solver.Var(0.0, 1.0, integral, structured_name("s", f"j={_label(m)}", period)) for m in instance.models
    )
    return MilpModel(
        instance,
        solver,
        replicas,
        routes,
        route_type,
        route_config,
        unserved,
        stored,
        type_names,
        config_names,
        period=period,
    )


def add_demand_balance(model: MilpModel) -> None:
    """Σ_c x_{i,c} + u_i = λ_i for every query type i (requests/hour): each request is served or dropped."""
    instance, solver = model.instance, model.solver
    rows = [
        solver.Constraint(float(lam), float(lam), model.name("demand", f"i={label}"))
        for label, lam in zip(model.type_labels, instance.demand_per_hour.tolist(), strict=True)
    ]
    for var, i in zip(model.routes, model.route_type.tolist(), strict=True):
        rows[i].SetCoefficient(var, 1.0)
    for row, var in zip(rows, model.unserved, strict=True):
        row.SetCoefficient(var, 1.0)
    model.demand_rows.extend(rows)


def add_capacity(model: MilpModel) -> None:
    """Σ_i x_{i,c}/μ_{i,c} − ρ_max·n_c ≤ 0 for every configuration c (replica-loads).

    A replica serving a mix of types is time-shared: x_{i,c}/μ_{i,c} is the share of one replica's time that
    type i takes, and the shares may add up to at most ρ_max per replica.
    """
    instance, solver = model.instance, model.solver
    rows = []
    for c, label in enumerate(model.config_labels):
        row = solver.Constraint(-solver.infinity(), 0.0, model.name("capacity", f"c={label}"))
        row.SetCoefficient(model.replicas[c], -instance.design_utilisation)
        rows.append(row)
    inverse_mu = 1.0 / instance.capacity_per_hour[model.route_type, model.route_config]
    for var, c, coefficient in zip(model.routes, model.route_config.tolist(), inverse_mu.tolist(), strict=True):
        rows[c].SetCoefficient(var, coefficient)


def add_error_slo(model: MilpModel) -> None:
    """Σ_c (e_{i,c} − ε_i)·x_{i,c} ≤ 0 for every query type i: the served requests' mean error is at most ε_i.

    This is Σ_c e_{i,c}·x_{i,c} ≤ ε_i·Σ_c x_{i,c} moved to one side (error-weighted requests/hour). Types whose
    routes all meet ε_i on their own get no row (it could never bind).
    """
    instance, solver = model.instance, model.solver
    excess = instance.error_rate[model.route_type, model.route_config] - instance.error_slo[model.route_type]
    rows = {
        i: solver.Constraint(-solver.infinity(), 0.0, model.name("error_slo", f"i={model.type_labels[i]}"))
        for i in np.unique(model.route_type[excess > 0.0]).tolist()
    }
    for var, i, coefficient in zip(model.routes, model.route_type.tolist(), excess.tolist(), strict=True):
        if i in rows and coefficient != 0.0:
            rows[i].SetCoefficient(var, coefficient)


def add_budget(model: MilpModel) -> None:
    """Σ_c n_c·G_c·π_g + Σ_j s_j·B_j·p^s ≤ δ ($/hour): rental plus storage. No row when δ is infinite.

    This is ``limits.spend_per_hour ≤ δ`` in linear form (the linking rows of :func:`add_storage` force s_j = 1 for
    every model with a replica), the same budget ``evaluate_plan``, the heuristics and the environment enforce.
    """
    instance, solver = model.instance, model.solver
    if not _finite(instance.budget_per_hour):
        return
    row = solver.Constraint(-solver.infinity(), float(instance.budget_per_hour), model.name("budget"))
    for var, price in zip(model.replicas, instance.replica_price_per_hour.tolist(), strict=True):
        row.SetCoefficient(var, price)
    storage_price = (instance.model_storage_gb * instance.storage_price_per_gb_hour).tolist()
    for var, price in zip(model.stored, storage_price, strict=True):
        if price != 0.0:
            row.SetCoefficient(var, price)


def add_availability(model: MilpModel) -> None:
    """Σ_{c on GPU type g} n_c·G_c ≤ A_g for every GPU type g (GPUs)."""
    instance, solver = model.instance, model.solver
    rows = [
        solver.Constraint(-solver.infinity(), float(limit), model.name("availability", f"g={_label(g)}"))
        for g, limit in zip(instance.gpus, instance.gpu_availability.tolist(), strict=True)
    ]
    for var, g, gpus in zip(
        model.replicas, instance.config_gpu.tolist(), instance.gpus_per_replica.tolist(), strict=True
    ):
        rows[g].SetCoefficient(var, float(gpus))


def add_storage(model: MilpModel, *, limit_capacity: bool) -> None:
    """Linking n_c ≤ n_max_c·s_{j(c)} (replicas need their model stored) and Σ_j s_j·B_j ≤ C^s (GB).

    The linking rows always hold (without them s would be free); ``limit_capacity=False`` drops only the capacity
    row, which is what relaxing the ``storage`` family means.
    """
    instance, solver = model.instance, model.solver
    for c, (var, j) in enumerate(zip(model.replicas, instance.config_model.tolist(), strict=True)):
        row = solver.Constraint(-solver.infinity(), 0.0, model.name("stored", f"c={model.config_labels[c]}"))
        row.SetCoefficient(var, 1.0)
        row.SetCoefficient(model.stored[j], -float(instance.max_replicas[c]))
    if not limit_capacity or not _finite(instance.storage_capacity_gb):
        return
    row = solver.Constraint(-solver.infinity(), float(instance.storage_capacity_gb), model.name("storage"))
    for var, size in zip(model.stored, instance.model_storage_gb.tolist(), strict=True):
        row.SetCoefficient(var, size)


def add_objective(model: MilpModel, *, delay_inflation: float = 1.0) -> None:
    """Minimise Δt·(rental + storage + delay penalty + unmet penalty), $ per period.

    ``delay_inflation`` (κ_D ≥ 1) prices each route's delay at κ_D·D_{i,c}, as the environment charges it under
    delay inflation; route admissibility (D_{i,c} ≤ Δ_i) stays nominal, as the environment's router plans it.
    Coefficients are set per variable, so the objectives of several periods sharing one solver add up.
    """
    instance = model.instance
    dt = instance.period_hours
    objective = model.solver.Objective()
    for var, price in zip(model.replicas, instance.replica_price_per_hour.tolist(), strict=True):
        objective.SetCoefficient(var, dt * price)
    storage_price = (instance.model_storage_gb * instance.storage_price_per_gb_hour).tolist()
    for var, price in zip(model.stored, storage_price, strict=True):
        objective.SetCoefficient(var, dt * price)
    delay_cost = (
        delay_inflation
        * instance.delay_penalty_per_request_s[model.route_type]
        * instance.delay_s[model.route_type, model.route_config]
    ).tolist()
    for var, cost in zip(model.routes, delay_cost, strict=True):
        objective.SetCoefficient(var, dt * cost)
    for var, penalty in zip(model.unserved, instance.unmet_penalty_per_request.tolist(), strict=True):
        objective.SetCoefficient(var, dt * penalty)
    objective.SetMinimization()


def build_model(
    instance: Instance,
    backend: str = "SCIP",
    *,
    integral: bool = True,
    relax: Collection[str] = (),
    with_objective: bool = True,
) -> MilpModel:
    """Build MODEL.md §3 for ``instance`` on a ``pywraplp`` backend.

    Args:
        instance: The single-period problem.
        backend: ``pywraplp.Solver.CreateSolver`` id, e.g. ``"SCIP"``, ``"CP_SAT"``, ``"HIGHS"``, ``"GLOP"``.
        integral: False gives the LP relaxation (n and s continuous).
        relax: Constraint families to drop, a subset of :data:`RELAXABLE_FAMILIES` (infeasibility diagnosis).
        with_objective: False leaves the objective at zero (a pure feasibility problem).

    Raises:
        MilpModelError: if the backend is not available in this OR-Tools build or a family is unknown.
    """
    unknown = set(relax) - set(RELAXABLE_FAMILIES)
    if unknown:
        raise MilpModelError(f"relax: unknown constraint families {sorted(unknown)}; allowed {RELAXABLE_FAMILIES}")
    solver = pywraplp.Solver.CreateSolver(backend)
    if solver is None:
        raise MilpModelError(f"OR-Tools backend {backend!r} is not available in this build")
    model = add_variables(solver, instance, integral=integral, relax=relax)
    add_demand_balance(model)
    add_capacity(model)
    if "error_slo" not in relax:
        add_error_slo(model)
    if "budget" not in relax:
        add_budget(model)
    if "availability" not in relax:
        add_availability(model)
    add_storage(model, limit_capacity="storage" not in relax)
    if with_objective:
        add_objective(model)
    return model
