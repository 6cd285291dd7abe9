"""Plans and their evaluation: the single place where every constraint of MODEL.md §3 is checked and priced.

GH, AGH, the MILP's post-check, the environment and the tests all call :func:`evaluate_plan`; nothing else
re-implements a constraint. The shared limits (budget, availability, storage, replica and unmet caps) and the
tolerance come from the rule book ``servegym.envs.limits``, which the planners' screens and the environment call
too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from servegym.envs.instance import Instance
from servegym.envs.limits import FEASIBILITY_TOLERANCE, exceeds, limit_excess, stored_models, usage
from servegym.errors import ServegymError


class PlanError(ServegymError, ValueError):
    """A plan is malformed (wrong shape, NaN, negative or fractional replicas): not a constraint violation."""


@dataclass(frozen=True)
class Plan:
    """Decisions for one period.

    Attributes:
        replicas: (C,) int, n_c replicas of each configuration.
        routing: (I, C) requests/hour of type i sent to configuration c (x).
        unserved: (I,) requests/hour of type i dropped (u).
    """

    replicas: np.ndarray
    routing: np.ndarray
    unserved: np.ndarray

    @staticmethod
    def empty(instance: Instance) -> Plan:
        """No replicas, everything unserved."""
        return Plan(
            replicas=np.zeros(instance.num_configurations, dtype=np.int64),
            routing=np.zeros((instance.num_query_types, instance.num_configurations)),
            unserved=np.array(instance.demand_per_hour, dtype=float),
        )

    def stored_models(self, instance: Instance) -> np.ndarray:
        """(J,) bool, s_j: a model's weights are stored iff it has a replica."""
        return stored_models(instance, self.replicas)


@dataclass(frozen=True)
class Violation:
    """One violated constraint, quantified.

    Attributes:
        constraint: Family name: ``demand``, ``unmet_cap``, ``capacity``, ``error_slo``, ``delay_slo``,
            ``budget``, ``availability``, ``storage``, ``max_replicas``.
        subject: What it is about (query type, configuration, GPU type, or ``"total"``).
        value: Left-hand side.
        limit: Right-hand side.
        unit: Unit of value and limit.
    """

    constraint: str
    subject: str
    value: float
    limit: float
    unit: str

    @property
    def excess(self) -> float:
        return self.value - self.limit

    def __str__(self) -> str:
        return f"{self.constraint}[{self.subject}]: {self.value:.6g} > {self.limit:.6g} {self.unit}"


@dataclass(frozen=True)
class CostBreakdown:
    """Cost parts of one period in $ (rates × Δt)."""

    rental: float
    storage: float
    delay_penalty: float
    unmet_penalty: float

    @property
    def total(self) -> float:
        return self.rental + self.storage + self.delay_penalty + self.unmet_penalty

    def as_dict(self) -> dict[str, float]:
        return {
            "rental": self.rental,
            "storage": self.storage,
            "delay_penalty": self.delay_penalty,
            "unmet_penalty": self.unmet_penalty,
        }


@dataclass(frozen=True)
class Evaluation:
    """Feasibility and cost of a plan.

    Attributes:
        feasible: True iff no constraint is violated.
        violations: Every violated constraint, quantified.
        cost: Cost parts over the period.
        utilisation: (C,) share of each configuration's replica capacity in use (0 where no replica).
        error_rate: (I,) demand-weighted average error of each query type's served requests.
        delay_slack_s: (I,) Δ_i minus the largest delay of a route carrying type i (Δ_i where nothing is served).
        gpus_used: (G,) GPUs rented per GPU type.
        spend_per_hour: Rental plus storage, $/hour (what the budget limits).
        replicas: (C,) replicas of each configuration, as evaluated.
        gpu_names: (G,) names of the GPU types of ``gpus_used``.
        period_hours: Length of the period the cost parts are priced over, hours.
    """

    feasible: bool
    violations: tuple[Violation, ...]
    cost: CostBreakdown
    utilisation: np.ndarray
    error_rate: np.ndarray
    delay_slack_s: np.ndarray
    gpus_used: np.ndarray
    spend_per_hour: float
    replicas: np.ndarray
    gpu_names: tuple[str, ...]
    period_hours: float

    def summary(self) -> str:
        """One line: feasible or the violations, the cost per hour and its parts, the GPUs and replicas rented.

        E.g. (GH on the paper scenario) ``feasible; $7.707/hour (rental 2.5, storage 0.0022, delay penalty 5.205,
        unmet penalty 0 $/hour); 1 GPU (H100-SXM 1); 1 replica of 1 configuration``. An infeasible plan starts
        with ``N violations: constraint[subject]: value > limit unit; …``.
        """
        from servegym.tables import format_number

        def count(number: int, noun: str) -> str:
            return f"{number} {noun}{'s' * (number != 1)}"

        head = (
            "feasible"
            if self.feasible
            else count(len(self.violations), "violation") + ": " + "; ".join(str(v) for v in self.violations)
        )
        hours = max(self.period_hours, 1e-12)
        parts = ", ".join(
            f"{name.replace('_', ' ')} {format_number(value / hours)}" for name, value in self.cost.as_dict().items()
        )
        gpus = ", ".join(
            f"{name} {int(used)}" for name, used in zip(self.gpu_names, self.gpus_used, strict=True) if used > 0
        )
        replicas = np.asarray(self.replicas)
        return (
            f"{head}; ${format_number(self.cost.total / hours)}/hour ({parts} $/hour); "
            + count(int(np.sum(self.gpus_used)), "GPU")
            + (f" ({gpus})" if gpus else "")
            + f"; {count(int(replicas.sum()), 'replica')} of {count(int(np.count_nonzero(replicas)), 'configuration')}"
        )


def _check_shapes(instance: Instance, plan: Plan) -> None:
    expected = {
        "replicas": (instance.num_configurations,),
        "routing": (instance.num_query_types, instance.num_configurations),
        "unserved": (instance.num_query_types,),
    }
    for name, shape in expected.items():
        array = np.asarray(getattr(plan, name))
        if array.shape != shape:
            raise PlanError(f"Plan.{name} has shape {array.shape}, expected {shape}")
        if not np.all(np.isfinite(array)):
            raise PlanError(f"Plan.{name} contains NaN or infinite values")
        if np.any(array < -FEASIBILITY_TOLERANCE):
            raise PlanError(f"Plan.{name} has negative entries (min {array.min():.6g})")
    replicas = np.asarray(plan.replicas)
    if np.any(np.abs(replicas - np.round(replicas)) > 1e-6):
        raise PlanError("Plan.replicas must be whole numbers of replicas")


def evaluate_plan(instance: Instance, plan: Plan) -> Evaluation:
    """Check every constraint of MODEL.md §3 and price every cost part.

    Raises:
        PlanError: if the plan is malformed (shapes, NaN, negative or fractional replica counts).
    """
    _check_shapes(instance, plan)
    n = np.round(np.asarray(plan.replicas)).astype(np.int64)
    x = np.asarray(plan.routing, dtype=float)
    u = np.asarray(plan.unserved, dtype=float)
    demand = instance.demand_per_hour
    names_i = instance.query_type_names
    names_c = instance.configuration_names
    violations: list[Violation] = []
    used = usage(instance, n)
    excess = limit_excess(instance, n, u, used=used)

    def check(constraint: str, subjects: Sequence[str], value: np.ndarray, limit: np.ndarray, unit: str) -> None:
        value, limit = np.broadcast_arrays(np.asarray(value, dtype=float), np.asarray(limit, dtype=float))
        for index in np.flatnonzero(exceeds(value, limit)):
            violations.append(Violation(constraint, subjects[index], float(value[index]), float(limit[index]), unit))

    def report(
        constraint: str,
        subjects: Sequence[str],
        value: float | np.ndarray,
        limit: float | np.ndarray,
        over: float | np.ndarray,
        unit: str,
    ) -> None:
        """One violation per subject whose excess in ``limits.limit_excess`` (``over``) is positive."""
        over = np.atleast_1d(over)
        if not over.any():
            return
        value, limit = np.broadcast_arrays(
            np.atleast_1d(np.asarray(value, dtype=float)), np.asarray(limit, dtype=float)
        )
        for index in np.flatnonzero(over > 0.0):
            violations.append(Violation(constraint, subjects[index], float(value[index]), float(limit[index]), unit))

    served = x.sum(axis=1)
    imbalance = np.abs(served + u - demand)
    check("demand", names_i, imbalance, np.zeros_like(demand), "requests/hour |Σx + u − λ|")
    report("unmet_cap", names_i, u, instance.max_unmet_fraction * demand, excess.unmet_cap, "requests/hour")

    mu = instance.capacity_per_hour
    forbidden = (~instance.route_allowed) & (x > FEASIBILITY_TOLERANCE)
    for i, c in zip(*np.nonzero(forbidden), strict=True):
        reason = "cannot serve" if mu[i, c] <= 0 else f"delay {instance.delay_s[i, c]:.3g} s"
        violations.append(
            Violation("delay_slo", f"{names_i[i]}→{names_c[c]} ({reason})", float(x[i, c]), 0.0, "requests/hour")
        )
    load = np.divide(x, mu, out=np.zeros_like(x), where=mu > 0).sum(axis=0)  # replica-equivalents (C,)
    check("capacity", names_c, load, instance.design_utilisation * n, "replica-loads")
    utilisation = np.divide(load, n, out=np.zeros_like(load), where=n > 0)

    error_sum = (instance.error_rate * x).sum(axis=1)
    check("error_slo", names_i, error_sum, instance.error_slo * served, "error-weighted requests/hour")
    error_rate = np.divide(error_sum, served, out=np.zeros_like(served), where=served > 0)
    used_routes = x > FEASIBILITY_TOLERANCE
    worst_delay = np.where(used_routes, instance.delay_s, 0.0).max(axis=1, initial=0.0)
    delay_slack = instance.delay_slo_s - worst_delay

    report("max_replicas", names_c, n, instance.max_replicas, excess.max_replicas, "replicas")
    gpus = used.gpus
    report("availability", list(instance.gpus), gpus, instance.gpu_availability, excess.availability_gpus, "GPUs")
    stored_gb = used.storage_gb
    report("storage", ["total"], stored_gb, instance.storage_capacity_gb, excess.storage_gb, "GB")
    rental = used.rental_per_hour
    storage = stored_gb * instance.storage_price_per_gb_hour
    spend = used.spend_per_hour
    report("budget", ["total"], spend, instance.budget_per_hour, excess.budget_per_hour, "$/hour")

    dt = instance.period_hours
    cost = CostBreakdown(
        rental=dt * rental,
        storage=dt * storage,
        delay_penalty=dt * float((instance.delay_penalty_per_request_s[:, None] * instance.delay_s * x).sum()),
        unmet_penalty=dt * float(instance.unmet_penalty_per_request @ u),
    )
    return Evaluation(
        feasible=not violations,
        violations=tuple(violations),
        cost=cost,
        utilisation=utilisation,
        error_rate=error_rate,
        delay_slack_s=delay_slack,
        gpus_used=gpus,
        spend_per_hour=spend,
        replicas=n,
        gpu_names=tuple(instance.gpus),
        period_hours=dt,
    )
