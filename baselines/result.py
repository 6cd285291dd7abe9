"""What every planner returns: the plan, its evaluation by ``evaluate_plan``, status, runtime, bound and gap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from servegym.envs.evaluation import Evaluation, Plan, evaluate_plan
from servegym.envs.instance import Instance

STATUSES: tuple[str, ...] = ("optimal", "feasible", "infeasible", "no_solution")
"""``optimal``: proven optimal; ``feasible``: a feasible plan, optimality not proven (see ``gap``);
``infeasible``: proven that no feasible plan exists, or the planner's plan violates constraints (``message`` names
them); ``no_solution``: the planner stopped (time limit) without a feasible plan."""


@dataclass(frozen=True)
class PlanResult:
    """Outcome of one planner run on one instance.

    Attributes:
        method: Planner name, e.g. ``"gh"``, ``"agh"``, ``"milp"``.
        status: One of :data:`STATUSES`.
        plan: The plan (None when no plan was produced).
        evaluation: ``evaluate_plan(instance, plan)`` (None when no plan).
        runtime_s: Wall-clock seconds the planner took.
        bound: Best proven lower bound on the total cost of the period in $, when the planner proves one.
        message: Human-readable detail: the binding or violated constraints when infeasible, solver notes.
    """

    method: str
    status: str
    plan: Plan | None
    evaluation: Evaluation | None
    runtime_s: float
    bound: float | None = None
    message: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"PlanResult.status {self.status!r} not in {list(STATUSES)}")

    @property
    def feasible(self) -> bool:
        """True iff a plan exists and passes every constraint."""
        return self.evaluation is not None and self.evaluation.feasible

    @property
    def total_cost(self) -> float:
        """Total cost of the period in $ (inf without a feasible plan)."""
        return self.evaluation.cost.total if self.feasible else float("inf")

    @property
    def gap(self) -> float | None:
        """Relative gap (cost − bound) / cost to the proven bound, when both exist."""
        if self.bound is None or not self.feasible:
            return None
        cost = self.total_cost
        return max(0.0, (cost - self.bound) / max(abs(cost), 1e-9))

    def to_dict(self, instance: Instance) -> dict[str, Any]:
        """Machine-readable summary (what ``servegym solve --json`` prints)."""
        result: dict[str, Any] = {
            "method": self.method,
            "status": self.status,
            "feasible": self.feasible,
            "total_cost": self.total_cost if self.feasible else None,
            "cost_parts": self.evaluation.cost.as_dict() if self.evaluation else None,
            "runtime_s": self.runtime_s,
            "bound": self.bound,
            "gap": self.gap,
            "message": self.message,
            "instance": instance.name,
            "period_hours": instance.period_hours,
        }
        if self.plan is not None and self.evaluation is not None:
            result["deployments"] = deployments(instance, self.plan, self.evaluation)
            result["violations"] = [str(v) for v in self.evaluation.violations]
            result["error_rate"] = dict(zip(_type_names(instance), self.evaluation.error_rate.tolist(), strict=True))
            result["delay_slack_s"] = dict(
                zip(_type_names(instance), self.evaluation.delay_slack_s.tolist(), strict=True)
            )
            result["unserved_per_hour"] = dict(zip(_type_names(instance), self.plan.unserved.tolist(), strict=True))
        return result


def _type_names(instance: Instance) -> list[str]:
    return [q.name for q in instance.query_types]


def deployments(instance: Instance, plan: Plan, evaluation: Evaluation) -> list[dict[str, Any]]:
    """One record per configuration with replicas: model, GPU, precision, TP, PP, replicas, routing shares."""
    records = []
    demand = instance.demand_per_hour
    for c in np.flatnonzero(plan.replicas > 0):
        config = instance.configurations[c]
        shares = {
            q.name: float(plan.routing[i, c] / demand[i])
            for i, q in enumerate(instance.query_types)
            if demand[i] > 0 and plan.routing[i, c] > 0
        }
        records.append(
            {
                "configuration": config.name,
                "model": config.model,
                "gpu": config.gpu,
                "precision": config.precision,
                "tp": config.tensor_parallel,
                "pp": config.pipeline_parallel,
                "replicas": int(plan.replicas[c]),
                "gpus": int(plan.replicas[c] * instance.gpus_per_replica[c]),
                "utilisation": float(evaluation.utilisation[c]),
                "routing_share": shares,
            }
        )
    return records


def finish(
    method: str,
    instance: Instance,
    plan: Plan | None,
    runtime_s: float,
    *,
    status_if_feasible: str = "feasible",
    bound: float | None = None,
    message: str = "",
) -> PlanResult:
    """Evaluate a planner's plan and build its result; an infeasible plan never passes silently.

    A plan that violates any constraint gets status ``infeasible`` and a message naming every violation.
    """
    if plan is None:
        return PlanResult(method, "no_solution", None, None, runtime_s, bound, message)
    evaluation = evaluate_plan(instance, plan)
    if evaluation.feasible:
        return PlanResult(method, status_if_feasible, plan, evaluation, runtime_s, bound, message)
    detail = "violated: " + evaluation.summary()
    return PlanResult(method, "infeasible", plan, evaluation, runtime_s, bound, f"{message} {detail}".strip())
