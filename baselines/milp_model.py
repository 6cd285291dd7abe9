"""The single-period MILP of MODEL.md §3: one function per constraint family, two ways to hold the model.

Each family is computed once, as a :class:`RowBlock` (its rows in coordinate form on the columns of a
:class:`ColumnLayout`), by a ``*_rows`` function. Two sinks take the blocks:

- :func:`build_model` and the ``add_*`` functions put them into an OR-Tools ``pywraplp`` solver (:class:`MilpModel`:
  SCIP, CBC, CP-SAT, GLOP, MPS export, and the perfect-foresight oracle, which shares one solver between periods);
- :func:`build_highs_model` stacks them into a ``highspy.HighsLp`` with numpy (:class:`HighsModel`, what the default
  HiGHS backend solves): on a random (40, 40, 40) instance 0.4 s instead of 7.7 s for pywraplp plus its export.

Variables carry structured names so an exported MPS file reads like the formulation:
``n[c=Llama-3.1-8B@H100-SXM/fp16/tp1pp1]`` replicas, ``x[i=conv-short,c=...]`` requests/hour routed,
``u[i=conv-short]`` requests/hour dropped, ``s[j=Llama-3.1-8B]`` model stored. Route variables exist only where
``instance.route_allowed`` (the delay SLO per route), so that family needs no rows. A layout may model only some
configurations (``configurations``, the exact solver passes the undominated ones of ``baselines/dominance.py``):
the others keep their n column, fixed at 0, and get no routes and no rows. ``drop_idle_routes`` also leaves out
routes that no feasible plan can use (error above ε_i while no route of the type is below it).

Several periods can share one solver (the perfect-foresight oracle, ``baselines/oracle.py``): each period gets its
own :class:`MilpModel` built with ``period=t``, which appends ``t=<t>`` to every variable and row name
(``n[c=...,t=3]``, ``budget[t=3]``).

The objective is in $ per period (Δt × $/hour), the unit of ``PlanResult.bound``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import highspy
import numpy as np
from ortools.linear_solver import pywraplp

from servegym.envs.evaluation import Plan
from servegym.envs.instance import Instance
from servegym.errors import ServegymError

RELAXABLE_FAMILIES: tuple[str, ...] = ("budget", "unmet_cap", "availability", "storage", "error_slo")
"""Constraint families that :func:`build_model` can drop (``relax``), in the order infeasibility is diagnosed."""


class MilpModelError(ServegymError, ValueError):
    """The MILP cannot be built (unknown solver backend or relaxed family)."""


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


@dataclass(frozen=True)
class ColumnLayout:
    """The columns of one period's model, in the order n (C), x (R), u (I), s (J).

    Attributes:
        instance: The instance the model encodes.
        modelled: (C,) bool configurations with routes and rows (the others' n is fixed at 0).
        route_type: (R,) query type index i of each route column.
        route_config: (R,) configuration index c of each route column.
        unmet_limit: (I,) upper bound of u_i, requests/hour (ζ_i·λ_i, or λ_i with the unmet cap relaxed).
        type_labels: (I,) unique MPS-safe query type names used in variable and row names.
        config_labels: (C,) unique MPS-safe configuration names.
        period: Period index t appended to every name when several periods share a solver; None for one period.
    """

    instance: Instance
    modelled: np.ndarray
    route_type: np.ndarray
    route_config: np.ndarray
    unmet_limit: np.ndarray
    type_labels: tuple[str, ...]
    config_labels: tuple[str, ...]
    period: int | None = None

    @property
    def num_routes(self) -> int:
        return len(self.route_type)

    @property
    def num_columns(self) -> int:
        instance = self.instance
        return instance.num_configurations + self.num_routes + instance.num_query_types + len(instance.models)

    def route_columns(self) -> np.ndarray:
        """(R,) columns of the routes x."""
        return self.instance.num_configurations + np.arange(self.num_routes)

    def unserved_column(self, i: np.ndarray | int) -> np.ndarray | int:
        """Column of u_i."""
        return self.instance.num_configurations + self.num_routes + i

    def stored_column(self, j: np.ndarray | int) -> np.ndarray | int:
        """Column of s_j."""
        return self.instance.num_configurations + self.num_routes + self.instance.num_query_types + j

    def name(self, family: str, key: str = "") -> str:
        """Structured name of one of this model's variables or rows (see :func:`structured_name`)."""
        return structured_name(family, key, self.period)

    def column_names(self) -> list[str]:
        """Structured names of every column, in column order."""
        instance = self.instance
        return [
            *(self.name("n", f"c={label}") for label in self.config_labels),
            *(
                self.name("x", f"i={self.type_labels[i]},c={self.config_labels[c]}")
                for i, c in zip(self.route_type.tolist(), self.route_config.tolist(), strict=True)
            ),
            *(self.name("u", f"i={label}") for label in self.type_labels),
            *(self.name("s", f"j={_label(m)}") for m in instance.models),
        ]

    def plan_values(self, plan: Plan) -> np.ndarray:
        """Column values that encode ``plan`` (s_j = 1 iff model j has a replica); traffic off the routes is lost."""
        routing = np.asarray(plan.routing, dtype=float)
        return np.concatenate(
            [
                np.round(plan.replicas).astype(float),
                routing[self.route_type, self.route_config],
                np.asarray(plan.unserved, dtype=float),
                plan.stored_models(self.instance).astype(float),
            ]
        )

    def solution_plan(self, values: np.ndarray) -> Plan:
        """The plan that column ``values`` encode: n rounded to whole replicas, tiny negatives clipped."""
        instance = self.instance
        num_replicas, num_routes = instance.num_configurations, self.num_routes
        routing = np.zeros((instance.num_query_types, instance.num_configurations))
        routing[self.route_type, self.route_config] = np.maximum(values[num_replicas : num_replicas + num_routes], 0.0)
        unserved_start = num_replicas + num_routes
        return Plan(
            replicas=np.round(values[:num_replicas]).astype(np.int64),
            routing=routing,
            unserved=np.maximum(values[unserved_start : unserved_start + instance.num_query_types], 0.0),
        )


def column_layout(
    instance: Instance,
    *,
    relax: Collection[str] = (),
    period: int | None = None,
    configurations: np.ndarray | None = None,
    drop_idle_routes: bool = False,
) -> ColumnLayout:
    """The columns of the model of ``instance``.

    Args:
        instance: The single-period problem.
        relax: Relaxed families (``unmet_cap`` widens the bound of u; ``error_slo`` keeps every allowed route).
        period: Period index appended to every name (several periods in one solver), or None.
        configurations: (C,) bool configurations to model (None: all); the others' n is fixed at 0.
        drop_idle_routes: Leave out routes with e_{i,c} > ε_i of types without an allowed route below ε_i: the error
            SLO row Σ_c (e_{i,c} − ε_i)·x_{i,c} ≤ 0 then has only positive coefficients and forces them to 0.
    """
    modelled = np.ones(instance.num_configurations, dtype=bool) if configurations is None else configurations
    routes = instance.route_allowed & modelled[None, :]
    if drop_idle_routes and "error_slo" not in relax:
        below = (routes & (instance.error_rate < instance.error_slo[:, None])).any(axis=1)
        routes &= below[:, None] | (instance.error_rate <= instance.error_slo[:, None])
    route_type, route_config = np.nonzero(routes)
    demand = instance.demand_per_hour
    unmet_limit = demand if "unmet_cap" in relax else instance.max_unmet_fraction * demand
    return ColumnLayout(
        instance,
        np.asarray(modelled, dtype=bool),
        route_type,
        route_config,
        np.asarray(unmet_limit, dtype=float),
        tuple(_unique_labels([q.name for q in instance.query_types])),
        tuple(_unique_labels([c.name for c in instance.configurations])),
        period,
    )


@dataclass(frozen=True)
class Columns:
    """Bounds, integrality and objective of every column of a layout.

    Attributes:
        lower: (N,) lower bounds.
        upper: (N,) upper bounds (inf for x).
        integer: (N,) bool n and s (False when relaxed).
        cost: (N,) objective coefficients, $ per period per unit.
    """

    lower: np.ndarray
    upper: np.ndarray
    integer: np.ndarray
    cost: np.ndarray


def column_bounds(layout: ColumnLayout, *, integral: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, integer) of every column.

    The unmet cap u_i ≤ ζ_i·λ_i is a variable bound, and so is n_c ≤ n_max_c (replicas that fit the GPU type's
    availability on their own; 0 for configurations not modelled).
    """
    instance = layout.instance
    num_configs, num_types, num_models = instance.num_configurations, instance.num_query_types, len(instance.models)
    upper = np.concatenate(
        [
            np.where(layout.modelled, instance.max_replicas, 0).astype(float),
            np.full(layout.num_routes, np.inf),
            layout.unmet_limit,
            np.ones(num_models),
        ]
    )
    integer = np.zeros(layout.num_columns, dtype=bool)
    if integral:
        integer[:num_configs] = True
        integer[num_configs + layout.num_routes + num_types :] = True
    return np.zeros(layout.num_columns), upper, integer


def objective_costs(layout: ColumnLayout, *, delay_inflation: float = 1.0) -> np.ndarray:
    """(N,) objective coefficients: Δt·(rental, delay penalty, unmet penalty, storage), $ per period per unit.

    ``delay_inflation`` (κ_D ≥ 1) prices each route's delay at κ_D·D_{i,c}, as the environment charges it under
    delay inflation; route admissibility (D_{i,c} ≤ Δ_i) stays nominal, as the environment's router plans it.
    """
    instance = layout.instance
    delay_cost = (
        delay_inflation
        * instance.delay_penalty_per_request_s[layout.route_type]
        * instance.delay_s[layout.route_type, layout.route_config]
    )
    return instance.period_hours * np.concatenate(
        [
            instance.replica_price_per_hour,
            delay_cost,
            instance.unmet_penalty_per_request,
            instance.model_storage_gb * instance.storage_price_per_gb_hour,
        ]
    )


@dataclass(frozen=True)
class RowBlock:
    """The rows of one constraint family in coordinate form.

    Attributes:
        family: Row name family, e.g. ``"capacity"``.
        keys: (m,) name keys of the rows (``""`` for a family of one unkeyed row).
        lower: (m,) row lower bounds (−inf for ≤ rows).
        upper: (m,) row upper bounds.
        row: (nnz,) row of each coefficient, 0..m−1.
        column: (nnz,) column of each coefficient in the layout's order.
        value: (nnz,) the coefficients.
    """

    family: str
    keys: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    row: np.ndarray
    column: np.ndarray
    value: np.ndarray


def _block(
    family: str, keys: Sequence[str], lower: np.ndarray, upper: np.ndarray, entries: Sequence[tuple[np.ndarray, ...]]
) -> RowBlock:
    """A block from (rows, columns, values) triples of arrays, concatenated."""
    rows, columns, values = (
        np.concatenate([np.asarray(entry[k]) for entry in entries]) if entries else np.zeros(0) for k in range(3)
    )
    return RowBlock(
        family,
        tuple(keys),
        np.asarray(lower, dtype=float),
        np.asarray(upper, dtype=float),
        rows.astype(np.int64),
        columns.astype(np.int64),
        values.astype(float),
    )


def demand_rows(layout: ColumnLayout) -> RowBlock:
    """Σ_c x_{i,c} + u_i = λ_i for every query type i (requests/hour): each request is served or dropped."""
    instance = layout.instance
    types = np.arange(instance.num_query_types)
    demand = instance.demand_per_hour
    return _block(
        "demand",
        [f"i={label}" for label in layout.type_labels],
        demand,
        demand,
        [
            (layout.route_type, layout.route_columns(), np.ones(layout.num_routes)),
            (types, layout.unserved_column(types), np.ones(len(types))),
        ],
    )


def capacity_rows(layout: ColumnLayout) -> RowBlock:
    """Σ_i x_{i,c}/μ_{i,c} − ρ_max·n_c ≤ 0 for every modelled configuration c (replica-loads).

    A replica serving a mix of types is time-shared: x_{i,c}/μ_{i,c} is the share of one replica's time that
    type i takes, and the shares may add up to at most ρ_max per replica.
    """
    instance = layout.instance
    configs = np.flatnonzero(layout.modelled)
    row_of = np.full(instance.num_configurations, -1)
    row_of[configs] = np.arange(len(configs))
    inverse_mu = 1.0 / instance.capacity_per_hour[layout.route_type, layout.route_config]
    return _block(
        "capacity",
        [f"c={layout.config_labels[c]}" for c in configs.tolist()],
        np.full(len(configs), -np.inf),
        np.zeros(len(configs)),
        [
            (np.arange(len(configs)), configs, np.full(len(configs), -instance.design_utilisation)),
            (row_of[layout.route_config], layout.route_columns(), inverse_mu),
        ],
    )


def error_slo_rows(layout: ColumnLayout) -> RowBlock:
    """Σ_c (e_{i,c} − ε_i)·x_{i,c} ≤ 0 for every query type i: the served requests' mean error is at most ε_i.

    This is Σ_c e_{i,c}·x_{i,c} ≤ ε_i·Σ_c x_{i,c} moved to one side (error-weighted requests/hour). Types whose
    routes all meet ε_i on their own get no row (it could never bind).
    """
    instance = layout.instance
    excess = instance.error_rate[layout.route_type, layout.route_config] - instance.error_slo[layout.route_type]
    types = np.unique(layout.route_type[excess > 0.0])
    row_of = np.full(instance.num_query_types, -1)
    row_of[types] = np.arange(len(types))
    entries = (row_of[layout.route_type] >= 0) & (excess != 0.0)
    return _block(
        "error_slo",
        [f"i={layout.type_labels[i]}" for i in types.tolist()],
        np.full(len(types), -np.inf),
        np.zeros(len(types)),
        [(row_of[layout.route_type[entries]], layout.route_columns()[entries], excess[entries])],
    )


def budget_rows(layout: ColumnLayout) -> RowBlock:
    """Σ_c n_c·G_c·π_g + Σ_j s_j·B_j·p^s ≤ δ ($/hour): rental plus storage. No row when δ is infinite.

    This is ``limits.spend_per_hour ≤ δ`` in linear form (the linking rows of :func:`storage_rows` force s_j = 1
    for every model with a replica), the same budget ``evaluate_plan``, the heuristics and the environment enforce.
    """
    instance = layout.instance
    if not _finite(instance.budget_per_hour):
        return _block("budget", [], np.zeros(0), np.zeros(0), [])
    configs = np.flatnonzero(layout.modelled)
    models = np.arange(len(instance.models))
    storage_price = instance.model_storage_gb * instance.storage_price_per_gb_hour
    priced = storage_price != 0.0
    return _block(
        "budget",
        [""],
        np.array([-np.inf]),
        np.array([float(instance.budget_per_hour)]),
        [
            (np.zeros(len(configs)), configs, instance.replica_price_per_hour[configs]),
            (np.zeros(int(priced.sum())), layout.stored_column(models[priced]), storage_price[priced]),
        ],
    )


def availability_rows(layout: ColumnLayout) -> RowBlock:
    """Σ_{c on GPU type g} n_c·G_c ≤ A_g for every GPU type g (GPUs)."""
    instance = layout.instance
    configs = np.flatnonzero(layout.modelled)
    return _block(
        "availability",
        [f"g={_label(g)}" for g in instance.gpus],
        np.full(len(instance.gpus), -np.inf),
        instance.gpu_availability.astype(float),
        [(instance.config_gpu[configs], configs, instance.gpus_per_replica[configs].astype(float))],
    )


def storage_rows(layout: ColumnLayout, *, limit_capacity: bool) -> list[RowBlock]:
    """Linking n_c ≤ n_max_c·s_{j(c)} (replicas need their model stored) and Σ_j s_j·B_j ≤ C^s (GB).

    The linking rows always hold (without them s would be free); ``limit_capacity=False`` drops only the capacity
    row, which is what relaxing the ``storage`` family means.
    """
    instance = layout.instance
    configs = np.flatnonzero(layout.modelled)
    rows = np.arange(len(configs))
    linking = _block(
        "stored",
        [f"c={layout.config_labels[c]}" for c in configs.tolist()],
        np.full(len(configs), -np.inf),
        np.zeros(len(configs)),
        [
            (rows, configs, np.ones(len(configs))),
            (rows, layout.stored_column(instance.config_model[configs]), -instance.max_replicas[configs].astype(float)),
        ],
    )
    if not limit_capacity or not _finite(instance.storage_capacity_gb):
        return [linking]
    models = np.arange(len(instance.models))
    capacity = _block(
        "storage",
        [""],
        np.array([-np.inf]),
        np.array([float(instance.storage_capacity_gb)]),
        [(np.zeros(len(models)), layout.stored_column(models), instance.model_storage_gb)],
    )
    return [linking, capacity]


def row_blocks(layout: ColumnLayout, relax: Collection[str] = ()) -> list[RowBlock]:
    """Every family of MODEL.md §3 except those in ``relax`` (the storage linking rows always stay)."""
    blocks = [demand_rows(layout), capacity_rows(layout)]
    if "error_slo" not in relax:
        blocks.append(error_slo_rows(layout))
    if "budget" not in relax:
        blocks.append(budget_rows(layout))
    if "availability" not in relax:
        blocks.append(availability_rows(layout))
    return blocks + storage_rows(layout, limit_capacity="storage" not in relax)


def _check_relax(relax: Collection[str]) -> None:
    unknown = set(relax) - set(RELAXABLE_FAMILIES)
    if unknown:
        raise MilpModelError(f"relax: unknown constraint families {sorted(unknown)}; allowed {RELAXABLE_FAMILIES}")


@dataclass(frozen=True)
class MilpModel:
    """A ``pywraplp`` model and the handles needed to read or hint a solution.

    Attributes:
        layout: The columns (``variables()`` are in its order).
        solver: The ``pywraplp`` solver holding variables, rows and objective.
        replicas: (C,) variables n_c, integer replicas (continuous when built relaxed).
        routes: (R,) variables x for the routes of the layout, requests/hour.
        unserved: (I,) variables u_i, requests/hour.
        stored: (J,) variables s_j in {0, 1}.
        demand_rows: (I,) demand-balance rows, filled by :func:`add_demand_balance`.
    """

    layout: ColumnLayout
    solver: pywraplp.Solver
    replicas: tuple[pywraplp.Variable, ...]
    routes: tuple[pywraplp.Variable, ...]
    unserved: tuple[pywraplp.Variable, ...]
    stored: tuple[pywraplp.Variable, ...]
    demand_rows: list[pywraplp.Constraint] = field(default_factory=list)

    @property
    def instance(self) -> Instance:
        return self.layout.instance

    @property
    def route_type(self) -> np.ndarray:
        """(R,) query type index i of each route."""
        return self.layout.route_type

    @property
    def route_config(self) -> np.ndarray:
        """(R,) configuration index c of each route."""
        return self.layout.route_config

    @property
    def type_labels(self) -> tuple[str, ...]:
        return self.layout.type_labels

    @property
    def config_labels(self) -> tuple[str, ...]:
        return self.layout.config_labels

    @property
    def period(self) -> int | None:
        return self.layout.period

    def name(self, family: str, key: str = "") -> str:
        """Structured name of one of this model's variables or rows (see :func:`structured_name`)."""
        return self.layout.name(family, key)

    def variables(self) -> list[pywraplp.Variable]:
        """All variables in a fixed order: n, x, u, s."""
        return [*self.replicas, *self.routes, *self.unserved, *self.stored]

    def plan_values(self, plan: Plan) -> list[float]:
        """Values of :meth:`variables` that encode ``plan`` (s_j = 1 iff model j has a replica)."""
        return self.layout.plan_values(plan).tolist()

    def solution_plan(self, values: np.ndarray) -> Plan:
        """The plan that ``values`` (in :meth:`variables` order) encode: n rounded to whole replicas, tiny
        negatives clipped."""
        return self.layout.solution_plan(values)


def add_variables(
    solver: pywraplp.Solver,
    instance: Instance,
    *,
    integral: bool,
    relax: Collection[str],
    period: int | None = None,
    configurations: np.ndarray | None = None,
    drop_idle_routes: bool = False,
) -> MilpModel:
    """Create n, x (the layout's routes), u and s with their bounds (see :func:`column_layout`,
    :func:`column_bounds`); ``period`` (t) is appended to every variable and row name of the model."""
    layout = column_layout(
        instance, relax=relax, period=period, configurations=configurations, drop_idle_routes=drop_idle_routes
    )
    lower, upper, integer = column_bounds(layout, integral=integral)
    infinity = solver.infinity()
    variables = [
        solver.Var(low, high if math.isfinite(high) else infinity, bool(is_integer), name)
        for low, high, is_integer, name in zip(
            lower.tolist(), upper.tolist(), integer.tolist(), layout.column_names(), strict=True
        )
    ]
    num_configs, num_routes, num_types = instance.num_configurations, layout.num_routes, instance.num_query_types
    return MilpModel(
        layout,
        solver,
        tuple(variables[:num_configs]),
        tuple(variables[num_configs : num_configs + num_routes]),
        tuple(variables[num_configs + num_routes : num_configs + num_routes + num_types]),
        tuple(variables[num_configs + num_routes + num_types :]),
    )


def add_rows(model: MilpModel, block: RowBlock) -> list[pywraplp.Constraint]:
    """Put ``block`` into ``model.solver``; returns its rows in block order."""
    solver = model.solver
    infinity = solver.infinity()
    rows = [
        solver.Constraint(
            low if math.isfinite(low) else -infinity,
            high if math.isfinite(high) else infinity,
            model.name(block.family, key),
        )
        for key, low, high in zip(block.keys, block.lower.tolist(), block.upper.tolist(), strict=True)
    ]
    variables = model.variables()
    for r, k, value in zip(block.row.tolist(), block.column.tolist(), block.value.tolist(), strict=True):
        rows[r].SetCoefficient(variables[k], value)
    return rows


def add_demand_balance(model: MilpModel) -> None:
    """The rows of :func:`demand_rows`, kept in ``model.demand_rows``."""
    model.demand_rows.extend(add_rows(model, demand_rows(model.layout)))


def add_capacity(model: MilpModel) -> None:
    """The rows of :func:`capacity_rows` (``capacity[c=…]``)."""
    add_rows(model, capacity_rows(model.layout))


def add_error_slo(model: MilpModel) -> None:
    """The rows of :func:`error_slo_rows` (``error_slo[i=…]``)."""
    add_rows(model, error_slo_rows(model.layout))


def add_budget(model: MilpModel) -> None:
    """The row of :func:`budget_rows` (``budget``), if δ is finite."""
    add_rows(model, budget_rows(model.layout))


def add_availability(model: MilpModel) -> None:
    """The rows of :func:`availability_rows` (``availability[g=…]``)."""
    add_rows(model, availability_rows(model.layout))


def add_storage(model: MilpModel, *, limit_capacity: bool) -> None:
    """The rows of :func:`storage_rows` (``stored[c=…]`` and, with ``limit_capacity``, ``storage``)."""
    for block in storage_rows(model.layout, limit_capacity=limit_capacity):
        add_rows(model, block)


def add_objective(model: MilpModel, *, delay_inflation: float = 1.0) -> None:
    """Minimise :func:`objective_costs` ($ per period).

    Coefficients are set per variable, so the objectives of several periods sharing one solver add up.
    """
    objective = model.solver.Objective()
    costs = objective_costs(model.layout, delay_inflation=delay_inflation).tolist()
    for var, cost in zip(model.variables(), costs, strict=True):
        objective.SetCoefficient(var, cost)
    objective.SetMinimization()


def build_model(
    instance: Instance,
    backend: str = "SCIP",
    *,
    integral: bool = True,
    relax: Collection[str] = (),
    with_objective: bool = True,
    configurations: np.ndarray | None = None,
    drop_idle_routes: bool = False,
) -> MilpModel:
    """Build MODEL.md §3 for ``instance`` on a ``pywraplp`` backend.

    Args:
        instance: The single-period problem.
        backend: ``pywraplp.Solver.CreateSolver`` id, e.g. ``"SCIP"``, ``"CP_SAT"``, ``"GLOP"``.
        integral: False gives the LP relaxation (n and s continuous).
        relax: Constraint families to drop, a subset of :data:`RELAXABLE_FAMILIES` (infeasibility diagnosis).
        with_objective: False leaves the objective at zero (a pure feasibility problem).
        configurations: (C,) bool configurations to model (None: all), see :func:`column_layout`.
        drop_idle_routes: Leave out routes no feasible plan can use, see :func:`column_layout`.

    Raises:
        MilpModelError: if the backend is not available in this OR-Tools build or a family is unknown.
    """
    _check_relax(relax)
    solver = pywraplp.Solver.CreateSolver(backend)
    if solver is None:
        raise MilpModelError(f"OR-Tools backend {backend!r} is not available in this build")
    model = add_variables(
        solver,
        instance,
        integral=integral,
        relax=relax,
        configurations=configurations,
        drop_idle_routes=drop_idle_routes,
    )
    blocks = row_blocks(model.layout, relax)
    model.demand_rows.extend(add_rows(model, blocks[0]))
    for block in blocks[1:]:
        add_rows(model, block)
    if with_objective:
        add_objective(model)
    return model


@dataclass(frozen=True)
class HighsModel:
    """The model as HiGHS data, built with numpy (:func:`build_highs_model`).

    Attributes:
        layout: The columns.
        lp: The model (with integrality) as ``highspy.HighsLp``.
    """

    layout: ColumnLayout
    lp: highspy.HighsLp

    def plan_values(self, plan: Plan) -> np.ndarray:
        """Column values that encode ``plan``."""
        return self.layout.plan_values(plan)

    def solution_plan(self, values: np.ndarray) -> Plan:
        """The plan that column ``values`` encode."""
        return self.layout.solution_plan(values)


def build_highs_model(
    instance: Instance,
    *,
    integral: bool = True,
    relax: Collection[str] = (),
    with_objective: bool = True,
    configurations: np.ndarray | None = None,
    drop_idle_routes: bool = False,
) -> HighsModel:
    """The same model as :func:`build_model` (same columns, rows and coefficients) as a ``highspy.HighsLp``.

    Raises:
        MilpModelError: if a family in ``relax`` is unknown.
    """
    _check_relax(relax)
    layout = column_layout(instance, relax=relax, configurations=configurations, drop_idle_routes=drop_idle_routes)
    lower, upper, integer = column_bounds(layout, integral=integral)
    blocks = row_blocks(layout, relax)
    offsets = np.cumsum([0, *(len(block.keys) for block in blocks)])
    rows = np.concatenate([block.row + offset for block, offset in zip(blocks, offsets[:-1].tolist(), strict=True)])
    columns = np.concatenate([block.column for block in blocks])
    values = np.concatenate([block.value for block in blocks])
    order = np.argsort(rows, kind="stable")
    lp = highspy.HighsLp()
    lp.num_col_ = layout.num_columns
    lp.num_row_ = int(offsets[-1])
    lp.col_cost_ = objective_costs(layout) if with_objective else np.zeros(layout.num_columns)
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = np.concatenate([block.lower for block in blocks])
    lp.row_upper_ = np.concatenate([block.upper for block in blocks])
    kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
    lp.integrality_ = [kinds[k] for k in integer.tolist()]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=lp.num_row_))]).astype(np.int32)
    lp.a_matrix_.index_ = columns[order].astype(np.int32)
    lp.a_matrix_.value_ = values[order]
    return HighsModel(layout, lp)
