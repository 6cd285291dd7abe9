"""The perfect-foresight oracle (MODEL.md §4): the multi-period MILP over one whole episode, with true demand.

**This is an oracle, not an online policy.** :func:`solve_oracle` reads the episode's *realised* demand of every
period (``env.state.demand.rates_per_hour``, drawn by ``env.reset``) before the first step. It exists to score
policies: its ``bound`` is a lower bound on the realised cost of every replica schedule the environment can run
(conditions below), and its schedule is the best one the MILP found.

Periods t = 0..T−1 share one ``pywraplp`` model. Each period is a copy of the single-period MILP of MODEL.md §3
built with the ``add_*`` families of ``milp_model`` (names carry ``t=<t>``) on ``env.instance`` with λ = λ_t,
adapted to what the environment enforces and charges:

- the unmet cap is relaxed (0 ≤ u_{i,t} ≤ λ_{i,t}): the environment's router drops any share at φ_i per request;
- n_{c,t} ≤ ``env.max_replicas[c]`` (the action space), budget on rental alone (the environment's repair ignores
  storage), no storage-capacity row (the environment does not limit it; the linking rows n ≤ n_max·s stay, so
  storage is charged);
- capacity at the nominal ρ_max·n (what the router plans with), delay penalty at κ_D·D_{i,c};
- starts z_{c,t} ≥ n_{c,t} − n_{c,t−1} with n_{c,−1} = 0, z ≥ 0, priced at ``env.start_cost[c]`` $ per start. z is
  continuous: for integer n its optimum is max(0, n_{c,t} − n_{c,t−1}), an integer, so integrality would only
  slow the search.

Objective ($ over the episode): Σ_t Δt·(rental + storage + κ_D·delay penalty + unmet penalty) + Σ_{c,t}
start_cost_c·z_{c,t}.

**When it is a lower bound.** For any schedule the environment runs (after its repair), the router's routing of
each period, the started replicas and the stored models are a feasible point of this MILP. The environment
charges that point's MILP cost plus (a) queueing delay ≥ 0 on served requests and (b) for load the realised
utilisation κ_D·load/n pushes beyond ``OVERLOAD_CAP``, φ_i per dropped request instead of κ_D·ρ_i·D_{i,c} per
served one. (b) can only happen when κ_D·ρ_max > ``OVERLOAD_CAP`` and only raises cost when φ_i ≥ κ_D·ρ_i·D_{i,c}
on every allowed route. So the MILP optimum, and a fortiori ``OracleResult.bound``, bound the realised episode
cost of every schedule from below whenever κ_D·ρ_max ≤ ``OVERLOAD_CAP`` (always at κ_D = 1 with ρ_max < 0.98) or
φ_i ≥ κ_D·ρ_i·D_{i,c} on all allowed routes; ``OracleResult.is_lower_bound`` reports this check. The error
inflation κ_E changes SLO metrics, never cost. The oracle's own schedule, replayed, costs its ``objective`` plus
its queueing surcharge (plus overload drops when κ_D·ρ_max > ``OVERLOAD_CAP``, since the capacity rows are
nominal).

Solving (:func:`solve_oracle`): every period is first solved alone (:func:`period_bounds`, 0.5–1 s each on the
default environment). Their proven bounds are floors on each period's own cost in every feasible schedule; added as
valid rows (:func:`add_period_floors`) they lift the whole model's LP bound to at least their sum, and their
replicas are a feasible warm start whose only excess over the floors is the switching it ignores. If that warm
start is already within the requested gap it is the answer; otherwise the whole episode is solved from there on
HiGHS (highspy, on the exported model data as in ``milp_backends``) or SCIP (pywraplp). Without the floors HiGHS's
tree does not decompose over periods: two hours (8 periods) of the default environment still had a 2 % gap after
300 s; with them the same two hours are proven optimal (gap 1e-6) in about 25 s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
from ortools.linear_solver import pywraplp

from servegym.baselines.milp_backends import RELATIVE_MIP_GAP, highs_lp, settings_problem
from servegym.baselines.milp_model import (
    MilpModel,
    add_availability,
    add_budget,
    add_capacity,
    add_demand_balance,
    add_error_slo,
    add_objective,
    add_storage,
    add_variables,
    structured_name,
)
from servegym.envs.outcome import OVERLOAD_CAP
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.routing import Router, new_highs

ORACLE_SOLVERS: tuple[str, ...] = ("highs", "scip")
"""Backends of :func:`solve_oracle`: HiGHS through highspy (default), SCIP through pywraplp."""
ORACLE_RELATIVE_GAP = 1e-2
"""Relative gap at which the oracle's solve stops as ``optimal``. 1 % is far below the spread between policies
(AGH rolling is ≈ 23 % above the bound on the default day) and is reached by the per-period floors alone on the
default environment; smaller gaps make HiGHS search the whole-episode model for better switching (slow)."""


class OracleError(ValueError):
    """Bad arguments to :func:`solve_oracle` (no episode yet, unknown solver, bad limits or gap)."""


@dataclass(frozen=True)
class OracleResult:
    """The oracle's schedule and its proof quality.

    Attributes:
        replicas: (T, C) int replicas per period and candidate configuration.
        objective: MILP cost of ``replicas`` over the episode, $ (the realised cost without queueing).
        bound: Proven lower bound on the MILP optimum over the episode, $ (at least the sum of the period floors).
        gap: (objective − bound) / objective.
        status: ``optimal`` (gap ≤ the requested relative gap) or ``feasible`` (time limit first). There is always a
            schedule: the per-period warm start at worst (periods the time limit cut off run no replicas).
        runtime_s: Wall-clock seconds of the whole call (model building, warm start and solve).
        warm_start_objective: MILP cost over the episode of the per-period optima run in sequence, $.
        is_lower_bound: Whether ``bound`` bounds the realised episode cost of every schedule from below (see the
            module docstring: overload cannot happen, or it can only raise cost).
    """

    replicas: np.ndarray
    objective: float
    bound: float
    gap: float
    status: str
    runtime_s: float
    warm_start_objective: float
    is_lower_bound: bool


@dataclass(frozen=True)
class OracleModel:
    """The multi-period model: one :class:`MilpModel` per period on one solver, plus the start variables.

    Attributes:
        solver: The ``pywraplp`` solver holding every period.
        periods: (T,) single-period models, period t built on ``env.instance`` with λ = λ_t.
        starts: (T, C) variables z_{c,t}, replicas started at the beginning of period t.
        num_columns: Variables in the solver.
    """

    solver: pywraplp.Solver
    periods: tuple[MilpModel, ...]
    starts: tuple[tuple[pywraplp.Variable, ...], ...]
    num_columns: int

    def replica_columns(self) -> np.ndarray:
        """(T, C) solver column index of every n_{c,t}."""
        return np.array([[var.index() for var in model.replicas] for model in self.periods], dtype=np.int64)


def add_switching(oracle: OracleModel, start_cost: np.ndarray, *, first_period: int) -> None:
    """n_{c,t} − n_{c,t−1} − z_{c,t} ≤ 0 (replicas) and start_cost_c·z_{c,t} in the objective ($).

    Period 0 of the episode starts from no replicas (n_{c,−1} = 0). A model whose first period is a later one
    (``first_period`` > 0, a window of :func:`period_bounds`) does not know its predecessor and gets no row for
    that period, which relaxes it.
    """
    solver = oracle.solver
    objective = solver.Objective()
    previous: tuple[pywraplp.Variable, ...] | None = None
    for model, starts in zip(oracle.periods, oracle.starts, strict=True):
        for c, (replicas, start) in enumerate(zip(model.replicas, starts, strict=True)):
            objective.SetCoefficient(start, float(start_cost[c]))
            if previous is None and first_period > 0:
                continue
            row = solver.Constraint(-solver.infinity(), 0.0, model.name("start", f"c={model.config_labels[c]}"))
            row.SetCoefficient(replicas, 1.0)
            row.SetCoefficient(start, -1.0)
            if previous is not None:
                row.SetCoefficient(previous[c], -1.0)
        previous = model.replicas


def build_oracle_model(env: ProvisioningEnv, periods: range | None = None) -> OracleModel:
    """The oracle MILP of the module docstring for the episode ``env`` has just been reset to.

    Args:
        env: The environment, reset to the episode.
        periods: The periods to model (default all T); a window that starts after period 0 is relaxed at its
            start (see :func:`add_switching`).

    Raises:
        OracleError: if ``env`` has not been reset.
    """
    try:
        demand = env.state.demand.rates_per_hour  # (T, I) requests/hour, the realised demand of every period
    except RuntimeError as error:
        raise OracleError(
            "solve_oracle: call env.reset() first (the oracle reads the episode's true demand)"
        ) from error
    periods = range(len(demand)) if periods is None else periods
    solver = pywraplp.Solver.CreateSolver("SCIP")  # holds the model; HiGHS gets its data, SCIP solves it in place
    models = []
    for t in periods:
        model = add_variables(
            solver, env.instance.with_demand(demand[t]), integral=True, relax=("unmet_cap",), period=t
        )
        for var, limit in zip(model.replicas, env.max_replicas.tolist(), strict=True):
            var.SetUb(float(limit))
        add_demand_balance(model)
        add_capacity(model)
        add_error_slo(model)
        add_budget(model, with_storage=False)
        add_availability(model)
        add_storage(model, limit_capacity=False)
        add_objective(model, delay_inflation=env.delay_inflation)
        models.append(model)
    starts = tuple(
        tuple(
            solver.NumVar(0.0, float(limit), structured_name("z", f"c={label}", t))
            for label, limit in zip(models[0].config_labels, env.max_replicas.tolist(), strict=True)
        )
        for t in periods
    )
    oracle = OracleModel(solver, tuple(models), starts, solver.NumVariables())
    add_switching(oracle, env.start_cost, first_period=periods.start)
    return oracle


def add_period_floors(oracle: OracleModel, floors: np.ndarray) -> None:
    """Period t's own cost (its rental, storage, delay and unmet terms; for period 0 also its starts) ≥ floor_t ($).

    Valid inequalities, not restrictions: with ``floors`` from :func:`period_bounds`, every feasible schedule meets
    them, so the optimum is unchanged while the LP bound of the whole model starts at Σ_t floor_t.
    """
    solver = oracle.solver
    objective = solver.Objective()
    for t, (model, starts, floor) in enumerate(zip(oracle.periods, oracle.starts, floors.tolist(), strict=True)):
        row = solver.Constraint(floor, solver.infinity(), model.name("floor"))
        for var in [*model.variables(), *(starts if t == 0 else ())]:
            coefficient = objective.GetCoefficient(var)
            if coefficient != 0.0:
                row.SetCoefficient(var, coefficient)


def schedule_values(oracle: OracleModel, env: ProvisioningEnv, replicas: np.ndarray) -> np.ndarray:
    """Solver column values that encode a replica schedule (T, C) in the whole-episode model: the routing LP's
    routing of each period's true demand (unmet cap relaxed, as the environment routes), stored models and starts."""
    router = Router(env.instance)  # own router: the environment's keeps its warm basis for its own steps
    values = np.zeros(oracle.num_columns)
    previous = np.zeros(env.instance.num_configurations, dtype=np.int64)
    demand = env.state.demand.rates_per_hour
    for model, starts, n, rates in zip(oracle.periods, oracle.starts, replicas, demand, strict=True):
        plan = router.route(n, rates, relax_unmet_cap=True).plan
        values[[var.index() for var in model.variables()]] = model.plan_values(plan)
        values[[var.index() for var in starts]] = np.maximum(n - previous, 0)
        previous = n
    return values


def is_lower_bound(env: ProvisioningEnv) -> bool:
    """Whether the oracle's optimum bounds every schedule's realised cost (see the module docstring)."""
    instance = env.instance
    if env.delay_inflation * instance.design_utilisation <= OVERLOAD_CAP:
        return True
    served_cost = env.delay_inflation * instance.delay_penalty_per_request_s[:, None] * instance.delay_s
    dropped_cost = np.broadcast_to(instance.unmet_penalty_per_request[:, None], served_cost.shape)
    return bool(np.all(dropped_cost[instance.route_allowed] >= served_cost[instance.route_allowed]))


@dataclass(frozen=True)
class _Solved:
    """A backend's answer: status, incumbent column values (None without one), objective and bound in $."""

    status: str
    values: np.ndarray | None
    objective: float
    bound: float


def _run_highs(
    oracle: OracleModel, hint: np.ndarray | None, time_limit_s: float | None, threads: int, relative_gap: float
) -> _Solved:
    highs = new_highs()
    highs.setOptionValue("threads", threads)
    highs.setOptionValue("random_seed", 0)
    highs.setOptionValue("mip_rel_gap", relative_gap)
    if time_limit_s is not None:
        highs.setOptionValue("time_limit", float(time_limit_s))
    highs.passModel(highs_lp(oracle.solver))
    if hint is not None:
        highs.setSolution(len(hint), np.arange(len(hint), dtype=np.int32), hint)
    highs.run()
    status = highs.getModelStatus()
    info = highs.getInfo()
    bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else math.nan
    if status == highspy.HighsModelStatus.kInfeasible:
        return _Solved("infeasible", None, math.nan, math.nan)
    if info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible.value:
        return _Solved("no_solution", None, math.nan, bound)
    values = np.asarray(highs.getSolution().col_value, dtype=float)
    name = "optimal" if status == highspy.HighsModelStatus.kOptimal else "feasible"
    return _Solved(name, values, float(info.objective_function_value), bound)


def _run_scip(
    oracle: OracleModel, hint: np.ndarray | None, time_limit_s: float | None, threads: int, relative_gap: float
) -> _Solved:
    solver = oracle.solver
    solver.SuppressOutput()
    solver.SetNumThreads(threads)
    if time_limit_s is not None:
        solver.SetTimeLimit(max(1, math.ceil(time_limit_s * 1000.0)))
    if hint is not None:
        solver.SetHint(solver.variables(), hint.tolist())
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, relative_gap)
    status = solver.Solve(params)
    if status == pywraplp.Solver.INFEASIBLE:
        return _Solved("infeasible", None, math.nan, math.nan)
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return _Solved("no_solution", None, math.nan, math.nan)
    values = np.array([var.solution_value() for var in solver.variables()])
    name = "optimal" if status == pywraplp.Solver.OPTIMAL else "feasible"
    return _Solved(name, values, float(solver.Objective().Value()), float(solver.Objective().BestBound()))


Runner = Callable[[OracleModel, np.ndarray | None, float | None, int, float], _Solved]
_RUNNERS: dict[str, Runner] = {"highs": _run_highs, "scip": _run_scip}


def period_bounds(env: ProvisioningEnv, run: Runner, deadline: float, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Solve every period alone (period 0 with its starts, later periods without switching).

    Each window is a relaxation of the oracle restricted to its period, so its proven bound is a floor on that
    period's cost in every feasible schedule (:func:`add_period_floors`), and its replicas are a feasible schedule
    for the whole episode (the warm start).

    Args:
        env: The environment, reset to the episode.
        run: The backend (an entry of ``_RUNNERS``).
        deadline: ``time.perf_counter()`` value after which no window gets more time (its bound is then 0 and its
            replicas none, unless the solver found them already).
        threads: Solver threads.

    Returns:
        (T,) floors in $ and (T, C) replicas.
    """
    num_periods = env.state.demand.rates_per_hour.shape[0]
    floors = np.zeros(num_periods)
    replicas = np.zeros((num_periods, env.instance.num_configurations), dtype=np.int64)
    for t in range(num_periods):
        remaining = deadline - time.perf_counter()
        if remaining <= 0.0:
            break
        window = build_oracle_model(env, range(t, t + 1))
        solved = run(window, None, None if math.isinf(deadline) else remaining, threads, RELATIVE_MIP_GAP)
        if solved.values is not None:
            replicas[t] = np.round(solved.values[window.replica_columns()[0]]).astype(np.int64)
        floors[t] = 0.0 if math.isnan(solved.bound) else max(solved.bound, 0.0)
    return floors, replicas


def solve_oracle(
    env: ProvisioningEnv,
    *,
    time_limit_s: float | None = 300.0,
    solver: str = "highs",
    threads: int = 1,
    relative_gap: float = ORACLE_RELATIVE_GAP,
) -> OracleResult:
    """Solve the perfect-foresight MILP for the episode ``env`` has just been reset to. **Reads the true demand.**

    Call after ``env.reset(...)``; the result depends on the episode (day, seed), not on any step taken since.
    First every period is solved alone (:func:`period_bounds`): floors for the whole model and a warm start. Then
    the whole episode is solved with the floors added (:func:`add_period_floors`) from that warm start.

    Args:
        env: The (unwrapped) environment, reset to the episode to solve.
        time_limit_s: Wall-clock limit in seconds of all solves together (model building comes on top); None for
            none (deterministic).
        solver: One of :data:`ORACLE_SOLVERS`, for every solve.
        threads: Solver threads (SCIP only; HiGHS must run single-threaded in a process that also routes).
        relative_gap: Stop as ``optimal`` once (objective − bound)/objective is at most this.

    Returns:
        The schedule, its MILP objective and proven bound in $ over the episode, and the status.

    Raises:
        OracleError: for a non-reset environment, an unknown solver, a non-positive time limit, a thread count
            other than 1 for HiGHS, or a negative gap.
        RuntimeError: if the solver declares the model infeasible (it never is: no replicas, everything dropped is
            always feasible).
    """
    start = time.perf_counter()
    if solver not in ORACLE_SOLVERS:
        raise OracleError(f"solver {solver!r} not in {list(ORACLE_SOLVERS)}")
    problem = settings_problem(time_limit_s, threads, uses_highs=solver == "highs")
    if problem:
        raise OracleError(problem)
    if not relative_gap >= 0.0:
        raise OracleError(f"relative_gap = {relative_gap} must be ≥ 0")
    run = _RUNNERS[solver]
    oracle = build_oracle_model(env)
    deadline = math.inf if time_limit_s is None else time.perf_counter() + time_limit_s
    floors, warm_replicas = period_bounds(env, run, deadline, threads)
    add_period_floors(oracle, floors)
    objective_row = oracle.solver.Objective()
    cost = np.array([objective_row.GetCoefficient(var) for var in oracle.solver.variables()])  # $ per unit
    hint = schedule_values(oracle, env, warm_replicas)
    warm_objective = float(cost @ hint)
    remaining = deadline - time.perf_counter()
    if warm_objective - floors.sum() <= relative_gap * max(abs(warm_objective), 1e-9):
        solved = _Solved("optimal", hint, warm_objective, float(floors.sum()))
    elif remaining > 0.0:
        solved = run(oracle, hint, None if math.isinf(remaining) else remaining, threads, relative_gap)
    else:
        solved = _Solved("feasible", None, math.nan, math.nan)
    if solved.status == "infeasible":
        raise RuntimeError(f"oracle MILP declared infeasible by {solver}; the empty schedule is always feasible")
    columns = oracle.replica_columns()
    if solved.values is not None:
        replicas = np.round(solved.values[columns]).astype(np.int64)
        objective, status = solved.objective, solved.status
    else:  # time limit before the whole-episode solve found or kept an incumbent: the per-period schedule
        replicas, objective, status = warm_replicas, warm_objective, "feasible"
    bound = float(floors.sum()) if math.isnan(solved.bound) else max(solved.bound, float(floors.sum()), 0.0)
    gap = max(0.0, (objective - bound) / max(abs(objective), 1e-9))
    return OracleResult(
        replicas=replicas,
        objective=objective,
        bound=bound,
        gap=gap,
        status="optimal" if gap <= relative_gap else status,
        runtime_s=time.perf_counter() - start,
        warm_start_objective=warm_objective,
        is_lower_bound=is_lower_bound(env),
    )


class OraclePolicy:
    """The perfect-foresight oracle as a :class:`~servegym.baselines.policies.Policy`. **Not an online policy.**

    On the first ``act`` of an episode (``info["period"] == 0``) it solves :func:`solve_oracle` on the episode's
    true demand, read from the environment it was built with, then replays that schedule period by period.
    ``last_result`` holds the latest :class:`OracleResult` (objective, bound, gap) for reporting.
    """

    def __init__(
        self,
        env: ProvisioningEnv,
        *,
        time_limit_s: float | None = 300.0,
        threads: int = 1,
        relative_gap: float = ORACLE_RELATIVE_GAP,
    ) -> None:
        self.name = "oracle"
        self.env = env
        self.time_limit_s = time_limit_s
        self.threads = threads
        self.relative_gap = relative_gap
        self.last_result: OracleResult | None = None

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the schedule is solved on the first ``act`` of each episode."""

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        period = int(info["period"])
        if period == 0 or self.last_result is None:
            self.last_result = solve_oracle(
                self.env, time_limit_s=self.time_limit_s, threads=self.threads, relative_gap=self.relative_gap
            )
        return self.last_result.replicas[period].copy()
