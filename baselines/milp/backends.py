"""Running a built MILP on a backend and reading back one uniform :class:`SolverOutcome`.

SCIP, CBC and CP-SAT run through ``pywraplp``. HiGHS runs through ``highspy`` on the model's data (a
:class:`~servegym.baselines.milp.model.HighsModel` built with numpy, or a pywraplp model exported as an
``MPModelProto``): in this OR-Tools build pywraplp's HiGHS backend crashes on a solution hint and returns an
undocumented status (99) without incumbent or bound at a time limit, while highspy reports both and takes a warm
start (``setSolution``).

HiGHS's MIP presolve does not stop at the time limit in two of its rules, probing and enumeration: on a random
(20, 20, 20) instance each ran about 20 s whatever the limit (HiGHS 1.16). :data:`SLOW_PRESOLVE_RULES` switches
both off; ``milp.solve`` decides when (docs/milp.md, "Time limit").
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import highspy
import numpy as np
from ortools.linear_solver import linear_solver_pb2, pywraplp

from servegym.baselines.milp.model import HighsModel
from servegym.envs.routing import new_highs

RELATIVE_MIP_GAP = 1e-6
"""Relative gap at which a backend may declare optimality (pywraplp's default, 1e-4, is too coarse to compare
plans that differ by a cent)."""

OUTCOMES: tuple[str, ...] = ("optimal", "feasible", "infeasible", "no_solution")
SLOW_PRESOLVE_RULES = (1 << 15) | (1 << 16)
"""HiGHS ``presolve_rule_off`` bits of probing (15) and enumeration (16), the presolve rules that overrun the time
limit (module docstring)."""


@dataclass(frozen=True)
class SolverOutcome:
    """What a backend returned, in backend-neutral terms.

    Attributes:
        status: ``optimal``, ``feasible`` (incumbent, optimality not proven), ``infeasible`` (proven), or
            ``no_solution`` (stopped without an incumbent, or ended abnormally).
        values: Variable values in ``MilpModel.variables()`` order (None without an incumbent).
        objective: Incumbent objective, $ per period (nan without an incumbent).
        bound: Best proven lower bound, $ per period (nan when the backend proved none).
        detail: The backend's own status name.
        presolve_s: Seconds from the start of the run to the first branch-and-bound check, which comes after
            presolve (HiGHS; the whole run when presolve solves the model; nan for the pywraplp backends).
        solve_s: Seconds of the run after presolve (the whole run for the pywraplp backends).
    """

    status: str
    values: np.ndarray | None
    objective: float
    bound: float
    detail: str
    presolve_s: float = math.nan
    solve_s: float = math.nan


def settings_problem(time_limit_s: float | None, threads: int, *, uses_highs: bool) -> str | None:
    """Why a time limit and thread count are invalid, or None when they are fine.

    HiGHS must run single-threaded: its thread pool is process-wide, and once one HiGHS run uses more threads,
    later single-threaded HiGHS runs in the same process (such as the environment's routing LP) fail.
    """
    if time_limit_s is not None and not time_limit_s > 0.0:
        return f"time_limit_s = {time_limit_s} must be > 0 seconds or None"
    if threads < 1 or (uses_highs and threads != 1):
        return (
            f"threads = {threads}: must be ≥ 1, and 1 for HiGHS (its thread pool is process-wide: a multi-threaded "
            "HiGHS run breaks later single-threaded HiGHS runs in the same process, such as the routing LP)"
        )
    return None


@dataclass(frozen=True)
class SolveSettings:
    """Deterministic solve settings.

    Attributes:
        time_limit_s: Wall-clock limit in seconds; None for none.
        threads: Solver threads.
        seed: Random seed (SCIP, CP-SAT, HiGHS; CBC is run at its default seed).
        presolve_rules_off: HiGHS ``presolve_rule_off`` bit mask (0: HiGHS's full presolve; see
            :data:`SLOW_PRESOLVE_RULES`).
        relative_gap: Relative gap (objective − bound)/objective at which the backend stops as optimal.
        node_limit: Branch-and-bound nodes after which the backend stops with its incumbent (HiGHS
            ``mip_max_nodes``, SCIP ``limits/nodes``; a deterministic work limit, unlike the time limit); None for
            none. The other backends ignore it.
        restarts: Let HiGHS restart its root node after presolve fixes integer columns (``mip_allow_restart``);
            False keeps one root node, which bounds the work of a root-only solve (AGH's MILP polish). The other
            backends ignore it.
    """

    time_limit_s: float | None = None
    threads: int = 1
    seed: int = 0
    presolve_rules_off: int = 0
    relative_gap: float = RELATIVE_MIP_GAP
    node_limit: int | None = None
    restarts: bool = True


class PywraplpModel(Protocol):
    """What the runners read of a model built on ``pywraplp`` (a :class:`MilpModel`, or the oracle's model)."""

    @property
    def solver(self) -> pywraplp.Solver:
        """The solver holding variables, rows and objective."""

    def variables(self) -> list[pywraplp.Variable]:
        """The variables in the order of hints and returned values."""


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null (some native backends print banners regardless of their options)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_PYWRAPLP_STATUS = {
    pywraplp.Solver.OPTIMAL: "OPTIMAL",
    pywraplp.Solver.FEASIBLE: "FEASIBLE",
    pywraplp.Solver.INFEASIBLE: "INFEASIBLE",
    pywraplp.Solver.UNBOUNDED: "UNBOUNDED",
    pywraplp.Solver.ABNORMAL: "ABNORMAL",
    pywraplp.Solver.MODEL_INVALID: "MODEL_INVALID",
    pywraplp.Solver.NOT_SOLVED: "NOT_SOLVED",
}


def run_pywraplp(
    model: PywraplpModel, backend: str, settings: SolveSettings, hint: tuple[Sequence[int], Sequence[float]] | None
) -> SolverOutcome:
    """Solve ``model`` on its own pywraplp backend.

    Args:
        model: A model built on ``backend``.
        backend: ``"SCIP"``, ``"CBC"``, ``"CP_SAT"`` or an LP backend such as ``"GLOP"``.
        settings: Time limit, threads, seed.
        hint: (variable positions in ``model.variables()``, values) to hint, or None.
    """
    solver = model.solver
    solver.SuppressOutput()
    solver.SetNumThreads(settings.threads)
    if settings.time_limit_s is not None:
        solver.SetTimeLimit(max(1, math.ceil(settings.time_limit_s * 1000.0)))
    if backend == "SCIP":
        node_limit = "" if settings.node_limit is None else f"limits/nodes = {settings.node_limit}\n"
        solver.SetSolverSpecificParametersAsString(f"randomization/randomseedshift = {settings.seed}\n{node_limit}")
    elif backend == "CP_SAT":
        solver.SetSolverSpecificParametersAsString(f"num_workers: {settings.threads} random_seed: {settings.seed}")
    variables = model.variables()
    if hint is not None:
        positions, values = hint
        solver.SetHint([variables[k] for k in positions], list(values))
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, settings.relative_gap)
    start = time.perf_counter()
    status = solver.Solve(params)
    solve_s = time.perf_counter() - start
    detail = _PYWRAPLP_STATUS.get(status, f"status {status}")
    if status in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        objective = solver.Objective()
        bound = objective.BestBound() if solver.IsMip() else objective.Value()
        values = np.array([v.solution_value() for v in variables])
        name = "optimal" if status == pywraplp.Solver.OPTIMAL else "feasible"
        return SolverOutcome(name, values, float(objective.Value()), float(bound), detail, solve_s=solve_s)
    name = "infeasible" if status == pywraplp.Solver.INFEASIBLE else "no_solution"
    return SolverOutcome(name, None, math.nan, math.nan, detail, solve_s=solve_s)


def highs_lp(solver: pywraplp.Solver) -> highspy.HighsLp:
    """A pywraplp model's exact data as a HiGHS LP with integrality, from its ``MPModelProto``."""
    proto = linear_solver_pb2.MPModelProto()
    solver.ExportModelToProto(proto)
    lp = highspy.HighsLp()
    lp.num_col_ = len(proto.variable)
    lp.num_row_ = len(proto.constraint)
    lp.col_cost_ = np.array([v.objective_coefficient for v in proto.variable])
    lp.col_lower_ = np.array([v.lower_bound for v in proto.variable])
    lp.col_upper_ = np.array([v.upper_bound for v in proto.variable])
    lp.row_lower_ = np.array([c.lower_bound for c in proto.constraint])
    lp.row_upper_ = np.array([c.upper_bound for c in proto.constraint])
    lp.offset_ = proto.objective_offset
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if v.is_integer else highspy.HighsVarType.kContinuous for v in proto.variable
    ]
    lengths = [len(c.var_index) for c in proto.constraint]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    lp.a_matrix_.index_ = np.fromiter(
        (k for c in proto.constraint for k in c.var_index), dtype=np.int32, count=sum(lengths)
    )
    lp.a_matrix_.value_ = np.fromiter((a for c in proto.constraint for a in c.coefficient), float, sum(lengths))
    return lp


_RUNNING_WORKERS: set[threading.Thread] = set()
"""HiGHS solves still winding down after their call returned at the time limit (see :func:`run_highs`)."""


@atexit.register
def _join_running_workers() -> None:
    """Let abandoned solves reach their next stop check before the interpreter exits (a native solve still
    running at exit aborts the process)."""
    for worker in list(_RUNNING_WORKERS):
        worker.join()


@dataclass
class _HighsProgress:
    """What the callbacks of a running HiGHS solve have seen (written by the solve's thread)."""

    stop: threading.Event = field(default_factory=threading.Event)
    presolve_end: float | None = None  # time.perf_counter() of the first branch-and-bound check
    bound: float = math.nan  # latest dual bound, $ per period
    best: tuple[np.ndarray, float] | None = None  # best solution found (column values, objective), set as one pair

    def on_callback(self, kind: int, _message: str, data_out: object, data_in: object, _user: object) -> None:
        if kind == highspy.cb.HighsCallbackType.kCallbackMipImprovingSolution:
            self.best = (np.array(data_out.mip_solution, dtype=float), float(data_out.objective_function_value))
            return
        if self.presolve_end is None:
            self.presolve_end = time.perf_counter()
        if math.isfinite(data_out.mip_dual_bound):
            self.bound = float(data_out.mip_dual_bound)
        if self.stop.is_set():
            data_in.user_interrupt = True


def _run_and_forget(highs: highspy.Highs) -> None:
    """Worker thread body: run the solve, then leave :data:`_RUNNING_WORKERS`."""
    try:
        highs.run()
    finally:
        _RUNNING_WORKERS.discard(threading.current_thread())


def run_highs(
    model: PywraplpModel | HighsModel, settings: SolveSettings, hint: tuple[Sequence[int], Sequence[float]] | None
) -> SolverOutcome:
    """Solve the MIP ``model`` with highspy (branch and cut on the exact model data).

    With a time limit the solve runs in a worker thread (highspy releases the GIL) and the call returns at the
    limit whatever HiGHS is doing: HiGHS checks its limit only between steps, and one step, the analytic-centre
    interior-point solve of the root node, has no limit of its own (on a random (20, 20, 20) instance it overran
    a 3.7 s limit by 1 s). The call then returns the incumbent and bound its callbacks reported last, and the
    worker is told to stop at its next check and ends on its own. The presolve time is the time of the first
    MIP interrupt callback, which HiGHS first calls once presolve has ended.
    """
    highs = new_highs()
    highs.setOptionValue("threads", settings.threads)
    highs.setOptionValue("random_seed", settings.seed)
    highs.setOptionValue("mip_rel_gap", settings.relative_gap)
    highs.setOptionValue("presolve_rule_off", settings.presolve_rules_off)
    highs.setOptionValue("mip_allow_restart", settings.restarts)
    if settings.node_limit is not None:
        highs.setOptionValue("mip_max_nodes", int(settings.node_limit))
    if settings.time_limit_s is not None:
        highs.setOptionValue("time_limit", float(settings.time_limit_s))
    highs.passModel(model.lp if isinstance(model, HighsModel) else highs_lp(model.solver))
    if hint is not None:
        positions, values = hint
        index = np.asarray(positions, dtype=np.int32)
        highs.setSolution(len(index), index, np.asarray(values, dtype=float))
    progress = _HighsProgress()
    highs.setCallback(progress.on_callback, None)
    highs.startCallback(highspy.cb.HighsCallbackType.kCallbackMipInterrupt)
    highs.startCallback(highspy.cb.HighsCallbackType.kCallbackMipImprovingSolution)
    start = time.perf_counter()
    if settings.time_limit_s is None:
        highs.run()
        finished = True
    else:
        worker = threading.Thread(target=_run_and_forget, args=(highs,), name="highs-mip", daemon=True)
        _RUNNING_WORKERS.add(worker)
        worker.start()
        worker.join(timeout=settings.time_limit_s)
        finished = not worker.is_alive()
        progress.stop.set()
    end = time.perf_counter()
    presolve_end = progress.presolve_end if progress.presolve_end is not None else end
    timing = {"presolve_s": presolve_end - start, "solve_s": end - presolve_end}
    if not finished:
        best = progress.best  # one read: the abandoned worker may still replace the pair
        busy = "time limit (HiGHS still busy)"
        if best is None:
            return SolverOutcome("no_solution", None, math.nan, progress.bound, busy, **timing)
        return SolverOutcome("feasible", best[0], best[1], progress.bound, busy, **timing)
    status = highs.getModelStatus()
    detail = highs.modelStatusToString(status)
    info = highs.getInfo()
    bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else math.nan
    if status == highspy.HighsModelStatus.kInfeasible:
        return SolverOutcome("infeasible", None, math.nan, math.nan, detail, **timing)
    if info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible.value:
        return SolverOutcome("no_solution", None, math.nan, bound, detail, **timing)
    values = np.asarray(highs.getSolution().col_value, dtype=float)
    name = "optimal" if status == highspy.HighsModelStatus.kOptimal else "feasible"
    return SolverOutcome(name, values, float(info.objective_function_value), bound, detail, **timing)


def run(
    model: PywraplpModel | HighsModel,
    backend: str,
    settings: SolveSettings,
    hint: tuple[Sequence[int], Sequence[float]] | None = None,
) -> SolverOutcome:
    """Solve ``model`` and read back the outcome.

    ``model`` is a :class:`MilpModel` (or another :class:`PywraplpModel`) built on ``backend``, or for ``"HIGHS"``
    a :class:`HighsModel` or a :class:`PywraplpModel` on any pywraplp backend.
    """
    with _stdout_silenced():
        if backend == "HIGHS":
            return run_highs(model, settings, hint)
        return run_pywraplp(model, backend, settings, hint)
