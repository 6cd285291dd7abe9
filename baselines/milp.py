"""The exact MILP baseline (MODEL.md §3) on four backends: HiGHS, SCIP, CBC and CP-SAT.

:func:`solve` builds the model (``milp_model.build_model``), optionally exports the exact model as MPS and hints
a warm-start plan, runs the backend (``milp_backends.run``) and maps its outcome:

- ``optimal``: proven optimal within ``RELATIVE_MIP_GAP``; ``bound`` is the solver's best bound.
- ``feasible``: a plan without an optimality proof (time limit); ``bound`` and ``PlanResult.gap`` say how far.
- ``infeasible``: no plan meets every constraint; the model is re-solved with one constraint family relaxed at a
  time and ``message`` names the families whose relaxation alone restores feasibility.
- ``no_solution``: the time limit came before any feasible plan (``bound`` when the backend proved one).

Every plan is snapped to whole replicas, re-routed for those replicas with the routing LP (``Router``, which
removes solver-tolerance noise and can only lower the routing cost) and checked by ``evaluate_plan`` in
``finish``. CP-SAT accepts only integer variables: see :func:`_round_for_cp_sat` and docs/milp.md.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from servegym.baselines.milp_backends import RELATIVE_MIP_GAP, Outcome, SolveSettings, run, settings_problem
from servegym.baselines.milp_model import RELAXABLE_FAMILIES, MilpModel, build_model
from servegym.baselines.result import PlanResult, finish
from servegym.envs.evaluation import Plan, evaluate_plan
from servegym.envs.instance import Instance
from servegym.envs.routing import Router

SOLVERS: tuple[str, ...] = ("HIGHS", "SCIP", "CBC", "CP_SAT")
"""Selectable backends (HiGHS through highspy, the others through OR-Tools pywraplp)."""
DEFAULT_SOLVER = "HIGHS"
"""Fastest robust backend in scripts/bench_solvers.py (see docs/milp.md for the measurements)."""
METHOD = "milp"


class MilpSolverError(ValueError):
    """Bad arguments to :func:`solve` (unknown solver, non-positive time limit, malformed warm start)."""


def _exact_backend(solver: str) -> str:
    """The backend that decides feasibility of the exact model (CP-SAT only sees a rounded restriction)."""
    return "SCIP" if solver == "CP_SAT" else solver


def _round_for_cp_sat(model: MilpModel) -> None:
    """Make the demand rows integral so CP-SAT's all-integer view of the model stays feasible.

    pywraplp's CP-SAT backend treats every continuous variable as an integer (x and u in whole requests/hour)
    and scales constraint coefficients to integers. With integer x and u, Σ_c x_{i,c} + u_i = λ_i needs an
    integral λ_i, so λ_i is rounded up (and the unmet cap down to ⌊ζ_i·⌈λ_i⌉⌋). Any plan of this model stays
    feasible for the true demand: scaling its x and u by λ_i/⌈λ_i⌉ keeps capacity, the homogeneous error SLO and
    the unmet cap. The model is a restriction, so CP-SAT's objective and bound are not bounds of the true
    problem; :func:`solve` reports the LP relaxation bound of the exact model instead.
    """
    instance = model.instance
    ceiled = np.ceil(instance.demand_per_hour - 1e-9)
    for row, demand in zip(model.demand_rows, ceiled.tolist(), strict=True):
        row.SetBounds(demand, demand)
    for var, demand, zeta in zip(model.unserved, ceiled.tolist(), instance.max_unmet_fraction.tolist(), strict=True):
        var.SetBounds(0.0, math.floor(zeta * demand + 1e-9))


def _hint(model: MilpModel, solver: str, plan: Plan) -> tuple[list[int], list[float]]:
    """Positions and values of ``plan`` in ``model.variables()``; only n and s for CP-SAT (its x is integral)."""
    values = model.plan_values(plan)
    if solver != "CP_SAT":
        return list(range(len(values))), values
    num_replicas, num_stored = len(model.replicas), len(model.stored)
    positions = [*range(num_replicas), *range(len(values) - num_stored, len(values))]
    return positions, [values[k] for k in positions]


def _final_plan(model: MilpModel, values: np.ndarray) -> Plan:
    """The solver's replicas with the routing LP's optimal routing; the raw solver routing if the LP fails."""
    raw = model.solution_plan(values)
    routed = Router(model.instance).route(raw.replicas)
    return routed.plan if routed.feasible else raw


def _is_feasible(instance: Instance, solver: str, relax: tuple[str, ...], settings: SolveSettings) -> bool | None:
    """Feasibility of the exact model with ``relax`` dropped (zero objective); None if undecided in time."""
    backend = _exact_backend(solver)
    outcome = run(build_model(instance, backend, relax=relax, with_objective=False), backend, settings)
    if outcome.status in ("optimal", "feasible"):
        return True
    return False if outcome.status == "infeasible" else None


def _diagnose_infeasibility(instance: Instance, solver: str, settings: SolveSettings) -> str:
    """Name the constraint families whose relaxation alone makes the instance feasible."""
    verdicts = {family: _is_feasible(instance, solver, (family,), settings) for family in RELAXABLE_FAMILIES}
    restoring = [family for family, feasible in verdicts.items() if feasible]
    undecided = [family for family, feasible in verdicts.items() if feasible is None]
    parts = [f"{_exact_backend(solver)}: no plan meets every constraint"]
    if restoring:
        parts.append(f"binding: {', '.join(restoring)} (relaxing any one of these alone restores feasibility)")
    else:
        parts.append(f"relaxing any single family of {', '.join(RELAXABLE_FAMILIES)} does not restore feasibility")
    if undecided:
        parts.append(f"undecided within the time limit: {', '.join(undecided)}")
    return "; ".join(parts)


def lp_relaxation_bound(instance: Instance) -> float:
    """Optimum of the LP relaxation (n and s continuous, GLOP): a lower bound on the MILP, $ per period.

    Returns:
        The bound in $ per period; ``inf`` when even the relaxation is infeasible.

    Raises:
        RuntimeError: if GLOP ends without an optimal or infeasible verdict.
    """
    outcome = run(build_model(instance, "GLOP", integral=False), "GLOP", SolveSettings())
    if outcome.status == "infeasible":
        return math.inf
    if outcome.status != "optimal":
        raise RuntimeError(f"LP relaxation ended with GLOP status {outcome.detail}")
    return outcome.objective


def _valid_bound(bound: float) -> float | None:
    """A reportable lower bound in $ per period: None when the backend has none (nan, or ≤ −1e19 before its
    root LP ends), else at least 0, which every plan costs (all cost coefficients are non-negative)."""
    if math.isnan(bound) or bound <= -1e19:
        return None
    return max(bound, 0.0)


def _solved_result(instance: Instance, model: MilpModel, solver: str, outcome: Outcome, start: float) -> PlanResult:
    """A result from an outcome with an incumbent: re-routed plan, bound, status and a message with both costs."""
    plan = _final_plan(model, outcome.values)
    evaluated = evaluate_plan(instance, plan).cost.total
    if solver == "CP_SAT":
        bound = lp_relaxation_bound(instance)
        proven = evaluated <= bound + RELATIVE_MIP_GAP * max(abs(bound), 1.0)
        message = (
            f"CP_SAT {outcome.detail} on the integer-rounded model (objective ${outcome.objective:.6g}); "
            f"bound = LP relaxation of the exact model; evaluated ${evaluated:.6g}"
        )
    else:
        bound = _valid_bound(outcome.bound)
        proven = outcome.status == "optimal"
        message = (
            f"{solver} {outcome.detail}: objective ${outcome.objective:.6g}, bound ${outcome.bound:.6g}, "
            f"evaluated ${evaluated:.6g}"
        )
    return finish(
        METHOD,
        instance,
        plan,
        time.perf_counter() - start,
        status_if_feasible="optimal" if proven else "feasible",
        bound=bound,
        message=message,
    )


def solve(
    instance: Instance,
    *,
    solver: str = DEFAULT_SOLVER,
    time_limit_s: float | None = None,
    warm_start: Plan | None = None,
    export_mps: Path | None = None,
    threads: int = 1,
    seed: int = 0,
) -> PlanResult:
    """Solve MODEL.md §3 exactly (CP-SAT: an integer-rounded restriction, see :func:`_round_for_cp_sat`).

    Args:
        instance: The single-period problem.
        solver: One of :data:`SOLVERS`.
        time_limit_s: Wall-clock limit of the main solve in seconds (each infeasibility-diagnosis solve gets the
            same limit); None for no limit (deterministic).
        warm_start: A plan hinted to the backend (a feasible one gives an incumbent at once).
        export_mps: Write the exact model (before any CP-SAT rounding) to this path in free MPS format.
        threads: Solver threads (1 for determinism; HIGHS accepts only 1, see the check below).
        seed: Random seed of HiGHS, SCIP and CP-SAT (CBC runs at its default seed).

    Returns:
        A ``PlanResult`` with method ``"milp"``; ``bound`` is in $ per period.

    Raises:
        MilpSolverError: for an unknown solver, a non-positive time limit or thread count, or a warm start of the
            wrong shape.
    """
    start = time.perf_counter()
    if solver not in SOLVERS:
        raise MilpSolverError(f"solver {solver!r} not in {list(SOLVERS)}")
    problem = settings_problem(time_limit_s, threads, uses_highs=solver == "HIGHS")
    if problem:
        raise MilpSolverError(problem)
    if warm_start is not None and np.shape(warm_start.replicas) != (instance.num_configurations,):
        raise MilpSolverError(
            f"warm_start.replicas has shape {np.shape(warm_start.replicas)}, expected ({instance.num_configurations},)"
        )
    settings = SolveSettings(time_limit_s, threads, seed)
    model = build_model(instance, "SCIP" if solver == "HIGHS" else solver)
    if export_mps is not None:
        Path(export_mps).write_text(model.solver.ExportModelAsMpsFormat(False, False))
    if solver == "CP_SAT":
        _round_for_cp_sat(model)
    hint = None if warm_start is None else _hint(model, solver, warm_start)
    outcome = run(model, solver, settings, hint)

    if outcome.values is not None:
        return _solved_result(instance, model, solver, outcome, start)
    if outcome.status == "infeasible":
        if solver != "CP_SAT" or _is_feasible(instance, solver, (), settings) is False:
            message = _diagnose_infeasibility(instance, solver, settings)
            return PlanResult(METHOD, "infeasible", None, None, time.perf_counter() - start, None, message)
        message = "CP_SAT: the integer-rounded model is infeasible but the exact model is not proven infeasible"
        return finish(METHOD, instance, None, time.perf_counter() - start, message=message)
    bound = None if solver == "CP_SAT" else _valid_bound(outcome.bound)
    message = f"{solver} {outcome.detail}: no feasible plan (time limit or abnormal end)"
    return finish(METHOD, instance, None, time.perf_counter() - start, bound=bound, message=message)
