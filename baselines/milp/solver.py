"""The exact MILP baseline (MODEL.md §3) on four backends: HiGHS, SCIP, CBC and CP-SAT.

:func:`solve` runs AGH for a warm start (by default), builds the model on the undominated configurations
(``baselines/milp/dominance.py``; the optimum is the same), optionally exports it as MPS, hints the warm start, runs the
backend (``milp_backends.run``) and maps its outcome:

- ``optimal``: proven optimal within ``RELATIVE_MIP_GAP``; ``bound`` is the solver's best bound.
- ``feasible``: a plan without an optimality proof (time limit): the solver's incumbent or, if the solver found
  nothing better, the warm-start plan; ``bound`` and ``PlanResult.gap`` say how far, ``message`` starts with
  ``time limit:`` and names the plan's source.
- ``infeasible``: no plan meets every constraint; the model is re-solved with one constraint family relaxed at a
  time and ``message`` names the families whose relaxation alone restores feasibility.
- ``no_solution``: the time limit came before any feasible plan (``bound`` when the backend proved one).

The time limit covers the whole call: warm start, build, presolve, solve, re-routing and the infeasibility
diagnosis (docs/milp.md, "Time limit"); :class:`MilpResult` reports where the time went. Every plan is snapped to
whole replicas, re-routed for those replicas with the routing LP (which removes solver-tolerance noise and can only
lower the routing cost) and checked by ``evaluate_plan`` in ``finish``. CP-SAT accepts only integer variables: see
:func:`_round_for_cp_sat` and docs/milp.md.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from servegym.baselines.heuristics.active_routing import ActiveRouter
from servegym.baselines.heuristics.adaptive import solve_agh
from servegym.baselines.milp.backends import (
    RELATIVE_MIP_GAP,
    SLOW_PRESOLVE_RULES,
    SolverOutcome,
    SolveSettings,
    run,
    settings_problem,
)
from servegym.baselines.milp.dominance import dominators, to_undominated
from servegym.baselines.milp.model import (
    RELAXABLE_FAMILIES,
    ColumnLayout,
    HighsModel,
    MilpModel,
    build_highs_model,
    build_model,
)
from servegym.baselines.result import PlanResult, finish
from servegym.envs.evaluation import Plan, evaluate_plan
from servegym.envs.instance import Instance
from servegym.errors import ServegymError
from servegym.io import atomic_write_text

SOLVERS: tuple[str, ...] = ("HIGHS", "SCIP", "CBC", "CP_SAT")
"""Selectable backends (HiGHS through highspy, the others through OR-Tools pywraplp)."""
DEFAULT_SOLVER = "HIGHS"
"""Fastest robust backend in scripts/bench_solvers.py (see docs/milp.md for the measurements)."""
METHOD = "milp"
WARM_START_AGH = "agh"
"""``warm_start`` value (the default) that runs ``solve_agh(instance, seed=seed)`` first and hints its plan."""
WARM_START_SHARE = 0.3
"""Share of the time limit AGH may use for the warm start (its first start always runs; docs/milp.md)."""
POST_RESERVE_SHARE = 0.05
"""Share of the time limit kept back from the backend for re-routing and evaluating the plans afterwards."""
TIME_PHASES: tuple[str, ...] = ("warm_start", "build", "presolve", "solve", "post", "diagnosis")
"""Phases of :attr:`MilpResult.time_split_s`, seconds each."""


class MilpSolverError(ServegymError, ValueError):
    """Bad arguments to :func:`solve` (unknown solver, non-positive time limit, malformed warm start)."""


@dataclass(frozen=True)
class MilpResult(PlanResult):
    """A :class:`PlanResult` of :func:`solve`, with where the time went and where the plan came from.

    Attributes:
        time_split_s: Seconds per phase of :data:`TIME_PHASES`: the warm start (AGH), building the model, the
            backend's presolve (HiGHS; 0 for the pywraplp backends, whose solve includes it) and solve, re-routing
            and evaluating the plans, and the infeasibility diagnosis.
        plan_source: ``"solver"`` (the backend's incumbent), ``"warm_start"`` (the hinted plan, when the backend
            found nothing better in time) or ``"none"``.
        presolve_rules_off: HiGHS ``presolve_rule_off`` mask used (0: full presolve).
    """

    time_split_s: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    plan_source: str = "none"
    presolve_rules_off: int = 0

    def to_dict(self, instance: Instance) -> dict[str, Any]:
        """:meth:`PlanResult.to_dict` plus ``time_split_s``, ``plan_source`` and ``presolve_rules_off``."""
        return super().to_dict(instance) | {
            "time_split_s": dict(self.time_split_s),
            "plan_source": self.plan_source,
            "presolve_rules_off": self.presolve_rules_off,
        }


class _Clock:
    """Wall-clock time since the start of :func:`solve`, the deadline, and the seconds spent per phase."""

    def __init__(self, time_limit_s: float | None) -> None:
        self.start = time.perf_counter()
        self.limit_s = time_limit_s
        self.split = dict.fromkeys(TIME_PHASES, 0.0)
        self._mark = self.start

    def lap(self, phase: str) -> None:
        """Charge the time since the last lap to ``phase``."""
        now = time.perf_counter()
        self.split[phase] += now - self._mark
        self._mark = now

    def left_s(self) -> float | None:
        """Seconds until the deadline (may be negative); None without a limit."""
        return None if self.limit_s is None else self.start + self.limit_s - time.perf_counter()

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.start


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


def _hint(layout: ColumnLayout, solver: str, plan: Plan) -> tuple[list[int], list[float]]:
    """Columns and values of ``plan``; only n and s for CP-SAT (its x is integral)."""
    values = layout.plan_values(plan)
    if solver != "CP_SAT":
        return list(range(len(values))), values.tolist()
    num_replicas, num_stored = layout.instance.num_configurations, len(layout.instance.models)
    positions = [*range(num_replicas), *range(len(values) - num_stored, len(values))]
    return positions, [float(values[k]) for k in positions]


def _final_plan(layout: ColumnLayout, values: np.ndarray) -> Plan:
    """The solver's replicas with the routing LP's optimal routing; the raw solver routing if the LP fails."""
    raw = layout.solution_plan(values)
    routed = ActiveRouter(layout.instance).route(raw.replicas)
    return routed.plan if routed is not None and routed.feasible else raw


def _build(
    instance: Instance, solver: str, configurations: np.ndarray, *, relax: tuple[str, ...] = (), with_objective=True
) -> MilpModel | HighsModel:
    """The model on ``configurations`` for ``solver``: numpy-built HiGHS data, or a pywraplp model."""
    if solver == "HIGHS":
        return build_highs_model(
            instance, relax=relax, with_objective=with_objective, configurations=configurations, drop_idle_routes=True
        )
    return build_model(
        instance,
        solver,
        relax=relax,
        with_objective=with_objective,
        configurations=configurations,
        drop_idle_routes=True,
    )


def availability_lifted(instance: Instance) -> Instance:
    """``instance`` with each GPU type's availability raised so that it no longer bounds a useful plan.

    Relaxing the ``availability`` family drops the rows Σ_c G_c·n_c ≤ A_g, but the replica bounds
    n_c ≤ ⌊A_g / G_c⌋ derive from A_g too (with A_g = 0 they pin every n_c of type g to 0), so the diagnosis lifts
    them with it: A_g becomes at least G_c·N_c for every configuration c on type g, where N_c = ⌈Σ_i λ_i /
    (ρ_max·μ_ic)⌉ over the types c may serve is the replicas that serve all of that demand alone. Any plan feasible
    without availability limits stays feasible with n_c capped at N_c (capacity still covers what c serves,
    cost, budget and storage only shrink), so the verdict is the same as with no bound at all.
    """
    allowed = instance.route_allowed
    mu = np.where(allowed, instance.capacity_per_hour, np.inf)
    need = np.ceil((instance.demand_per_hour[:, None] / (instance.design_utilisation * mu)).sum(axis=0))
    gpus_needed = need.astype(np.int64) * instance.gpus_per_replica
    lifted = np.array(instance.gpu_availability, dtype=np.int64)
    np.maximum.at(lifted, instance.config_gpu, gpus_needed)
    return dataclasses.replace(instance, gpu_availability=lifted)


def _is_feasible(
    instance: Instance, solver: str, relax: tuple[str, ...], settings: SolveSettings, configurations: np.ndarray
) -> bool | None:
    """Feasibility of the exact model with ``relax`` dropped (zero objective); None if undecided in time.

    Relaxing ``availability`` also lifts the replica bounds that derive from it (:func:`availability_lifted`).
    """
    backend = _exact_backend(solver)
    if "availability" in relax:
        instance = availability_lifted(instance)
    model = _build(instance, backend, configurations, relax=relax, with_objective=False)
    outcome = run(model, backend, settings)
    if outcome.status in ("optimal", "feasible"):
        return True
    return False if outcome.status == "infeasible" else None


def _diagnose_infeasibility(
    instance: Instance, solver: str, settings: SolveSettings, configurations: np.ndarray, clock: _Clock
) -> str:
    """Name the constraint families whose relaxation alone makes the instance feasible.

    Under a time limit the families share what is left of it; a family whose turn comes after the deadline is
    reported undecided.
    """
    verdicts: dict[str, bool | None] = {}
    for k, family in enumerate(RELAXABLE_FAMILIES):
        left = clock.left_s()
        if left is not None and left <= 0.0:
            verdicts[family] = None
            continue
        share = None if left is None else left / (len(RELAXABLE_FAMILIES) - k)
        family_settings = dataclasses.replace(settings, time_limit_s=share)
        verdicts[family] = _is_feasible(instance, solver, (family,), family_settings, configurations)
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


def _gap_text(cost: float, bound: float | None) -> str:
    return "no bound yet" if bound is None else f"gap {100.0 * max(0.0, cost - bound) / max(abs(cost), 1e-9):.2f} %"


def _warm_start(
    instance: Instance,
    warm_start: Plan | str | None,
    seed: int,
    clock: _Clock,
    agh_settings: Mapping[str, bool | None] | None,
) -> tuple[Plan | None, str]:
    """The warm-start plan (None if there is none or it is infeasible) and its label for messages."""
    if warm_start is None:
        return None, "none"
    if isinstance(warm_start, Plan):
        return (warm_start if evaluate_plan(instance, warm_start).feasible else None), "given plan"
    agh_limit = None if clock.limit_s is None else WARM_START_SHARE * clock.limit_s
    agh = solve_agh(instance, seed=seed, time_limit_s=agh_limit, **dict(agh_settings or {}))
    return (agh.plan if agh.feasible else None), "AGH"


def _result(
    instance: Instance, plan: Plan | None, clock: _Clock, rules_off: int, source: str = "none", **fields: Any
) -> MilpResult:
    """``finish`` the plan (``fields`` go to ``finish``) and attach the time split and the plan's source."""
    result = finish(METHOD, instance, plan, clock.elapsed_s(), **fields)
    clock.lap("post")
    base = {f.name: getattr(result, f.name) for f in dataclasses.fields(PlanResult)}
    base["runtime_s"] = clock.elapsed_s()
    return MilpResult(
        **base,
        time_split_s=MappingProxyType(dict(clock.split)),
        plan_source=source if plan is not None else "none",
        presolve_rules_off=rules_off,
    )


def solve(
    instance: Instance,
    *,
    solver: str = DEFAULT_SOLVER,
    time_limit_s: float | None = None,
    warm_start: Plan | str | None = WARM_START_AGH,
    export_mps: Path | None = None,
    threads: int = 1,
    seed: int = 0,
    agh_settings: Mapping[str, bool | None] | None = None,
) -> MilpResult:
    """Solve MODEL.md §3 exactly (CP-SAT: an integer-rounded restriction, see :func:`_round_for_cp_sat`).

    Args:
        instance: The single-period problem.
        solver: One of :data:`SOLVERS`.
        time_limit_s: Wall-clock limit of the whole call in seconds: warm start (at most
            :data:`WARM_START_SHARE` of it), build, presolve, solve, re-routing and the infeasibility diagnosis.
            None for no limit (deterministic).
        warm_start: :data:`WARM_START_AGH` (default) runs AGH and hints its plan; a ``Plan`` is hinted as given;
            None starts cold. A feasible warm start is returned when the backend finds nothing better in time.
        export_mps: Write the solved model (before any CP-SAT rounding) to this path in free MPS format.
        threads: Solver threads (1 for determinism; HIGHS accepts only 1, see the check below).
        seed: Random seed of HiGHS, SCIP and CP-SAT (CBC runs at its default seed) and of the AGH warm start.
        agh_settings: Keyword settings of ``solve_agh`` for the AGH warm start (the environment's policies pass
            ``policies.AGH_IN_ENV``); None: its defaults.

    Returns:
        A :class:`MilpResult` with method ``"milp"``; ``bound`` is in $ per period.

    Raises:
        MilpSolverError: for an unknown solver, a non-positive time limit or thread count, or a warm start of the
            wrong shape or kind.
    """
    clock = _Clock(time_limit_s)
    if solver not in SOLVERS:
        raise MilpSolverError(f"solver {solver!r} not in {list(SOLVERS)}")
    problem = settings_problem(time_limit_s, threads, uses_highs=solver == "HIGHS")
    if problem:
        raise MilpSolverError(problem)
    if isinstance(warm_start, str) and warm_start != WARM_START_AGH:
        raise MilpSolverError(f"warm_start {warm_start!r}: a Plan, None or {WARM_START_AGH!r}")
    if isinstance(warm_start, Plan) and np.shape(warm_start.replicas) != (instance.num_configurations,):
        raise MilpSolverError(
            f"warm_start.replicas has shape {np.shape(warm_start.replicas)}, expected ({instance.num_configurations},)"
        )
    # HiGHS presolve without probing and enumeration: they ignore the time limit (20-40 s on (20, 20, 20)), and
    # without them the optima of the presolve grid in docs/milp.md ("Time limit") were proven faster in total.
    rules_off = SLOW_PRESOLVE_RULES if solver == "HIGHS" else 0
    warm, warm_label = _warm_start(instance, warm_start, seed, clock, agh_settings)
    clock.lap("warm_start")

    dominator = dominators(instance)
    configurations = dominator == np.arange(instance.num_configurations)
    model = _build(instance, solver, configurations)
    if export_mps is not None:
        exported = (
            model
            if isinstance(model, MilpModel)
            else build_model(instance, "SCIP", configurations=configurations, drop_idle_routes=True)
        )
        atomic_write_text(export_mps, exported.solver.ExportModelAsMpsFormat(False, False))
    if solver == "CP_SAT":
        _round_for_cp_sat(model)
    hinted = None if warm is None else to_undominated(instance, warm, dominator)
    hint = None if hinted is None else _hint(model.layout, solver, hinted)
    clock.lap("build")

    left = clock.left_s()
    solver_limit = None if left is None else left - POST_RESERVE_SHARE * time_limit_s
    outcome: SolverOutcome | None = None
    if solver_limit is None or solver_limit > 0.0:
        settings = SolveSettings(solver_limit, threads, seed, rules_off)
        outcome = run(model, solver, settings, hint)
        clock.split["presolve"] += 0.0 if math.isnan(outcome.presolve_s) else outcome.presolve_s
        clock.lap("solve")
        clock.split["solve"] -= clock.split["presolve"]
    settings = SolveSettings(None, threads, seed, rules_off)  # the diagnosis sets its own limits from the clock
    return _conclude(
        instance, solver, model.layout, outcome, (warm, hinted, warm_label), configurations, clock, settings
    )


def _conclude(
    instance: Instance,
    solver: str,
    layout: ColumnLayout,
    outcome: SolverOutcome | None,
    warm_start: tuple[Plan | None, Plan | None, str],
    configurations: np.ndarray,
    clock: _Clock,
    settings: SolveSettings,
) -> MilpResult:
    """The result of the solve: the better of the solver's incumbent and the warm start, with status and message.

    Args:
        instance: The problem.
        solver: The backend.
        layout: The solved model's columns.
        outcome: The backend's outcome (None when the time limit left no time to start it).
        warm_start: The feasible warm-start plan (or None), the plan hinted for it (on undominated configurations)
            and its label.
        configurations: (C,) bool configurations the model holds (for the infeasibility diagnosis).
        clock: Time split and deadline.
        settings: Threads, seed and presolve of the diagnosis solves (their limits come from ``clock``).
    """
    warm, hinted, warm_label = warm_start
    rules_off = settings.presolve_rules_off
    stop = "time limit" if clock.limit_s is not None else "solver stopped"
    warm_cost = math.inf if warm is None else evaluate_plan(instance, warm).cost.total
    detail = "not started (time limit)" if outcome is None else outcome.detail
    if outcome is not None and outcome.values is not None:
        plan = _final_plan(layout, outcome.values)
        evaluated = evaluate_plan(instance, plan)
        cost = evaluated.cost.total if evaluated.feasible else math.inf
        if solver == "CP_SAT":
            bound = lp_relaxation_bound(instance)
            proven = cost <= bound + RELATIVE_MIP_GAP * max(abs(bound), 1.0)
            note = (
                f"CP_SAT {detail} on the integer-rounded model (objective ${outcome.objective:.6g}); "
                f"bound = LP relaxation of the exact model; evaluated ${cost:.6g}"
            )
        else:
            bound = _valid_bound(outcome.bound)
            proven = outcome.status == "optimal"
            note = (
                f"{solver} {detail}: objective ${outcome.objective:.6g}, bound ${outcome.bound:.6g}, "
                f"evaluated ${cost:.6g}"
            )
        use_warm = warm_cost < cost
        final, final_cost = (warm, warm_cost) if use_warm else (plan, cost)
        # The backend's incumbent may be the hint itself (re-routed): then the plan is still the warm start's.
        hint_kept = hinted is not None and np.array_equal(final.replicas, hinted.replicas)
        source = "warm_start" if use_warm or hint_kept else "solver"
        if not proven:
            head = f"{stop}: {source.replace('_', '-')} plan, {_gap_text(final_cost, bound)}"
            note = f"{head}; {note}"
        note += f"; warm start {warm_label}" + ("" if warm is None else f" ${warm_cost:.6g}")
        return _result(
            instance,
            final,
            clock,
            rules_off,
            source,
            status_if_feasible="optimal" if proven else "feasible",
            bound=bound,
            message=note,
        )
    bound = None if outcome is None or solver == "CP_SAT" else _valid_bound(outcome.bound)
    if warm is not None:
        message = (
            f"{stop}: warm-start plan ({warm_label}), {_gap_text(warm_cost, bound)}; {solver} {detail}: "
            "no incumbent of its own"
        )
        if outcome is not None and outcome.status == "infeasible":
            message = f"{solver} reported infeasible, but the warm-start plan ({warm_label}) passes evaluate_plan"
        return _result(instance, warm, clock, rules_off, "warm_start", bound=bound, message=message)
    if outcome is not None and outcome.status == "infeasible":
        left = clock.left_s()
        exact_settings = dataclasses.replace(settings, time_limit_s=None if left is None else max(left, 1e-3))
        if solver != "CP_SAT" or _is_feasible(instance, solver, (), exact_settings, configurations) is False:
            message = _diagnose_infeasibility(instance, solver, settings, configurations, clock)
            clock.lap("diagnosis")
            return MilpResult(
                METHOD,
                "infeasible",
                None,
                None,
                clock.elapsed_s(),
                None,
                message,
                time_split_s=MappingProxyType(dict(clock.split)),
                presolve_rules_off=rules_off,
            )
        message = "CP_SAT: the integer-rounded model is infeasible but the exact model is not proven infeasible"
        return _result(instance, None, clock, rules_off, message=message)
    message = f"{stop}: no plan; {solver} {detail}: no feasible plan (time limit or abnormal end)"
    return _result(instance, None, clock, rules_off, bound=bound, message=message)
