"""The perfect-foresight oracle (MODEL.md §4 and §6): the multi-period MILP over one whole episode of world v1.

**This is an oracle, not an online policy.** :func:`solve_oracle` reads, before the first step, what the episode
will realise in every period: the demand (``env.state.demand.rates_per_hour``) and the service-time and error
multipliers of stress inflation × latent drift (``env.realised_factors(t)``, from ``env.state.drift``), all drawn by
``env.reset``. It exists to score policies: its ``bound`` is a lower bound on the realised cost of every replica
schedule the environment can run (conditions below), and its schedule is the best one the MILP found, polished in
the environment (last paragraph).

**Model.** Periods t = 0..T−1 share one ``pywraplp`` model. Each period is a copy of the single-period MILP of
MODEL.md §3 built with the ``add_*`` families of ``milp_model`` (names carry ``t=<t>``) on ``env.instance`` with
λ = λ_t, changed to what the v1 world does and charges. With s_{c,t} and k_{c,t} the service-time and error
multipliers of period t, F_{a,c} = ``env.replicas.ready_share`` the share of a period a replica of age a serves
(clip(a + 1 − S_c/Δt, 0, 1); all ones when ``cold_start`` is False) and K_c the ages with F_{a,c} < 1:

- demand balance Σ_c x_{i,c,t} + u_{i,t} = λ_{i,t}, unmet cap relaxed (0 ≤ u ≤ λ: the router drops any share);
- n_{c,t} ∈ {0, …, ``env.max_replicas[c]``} (the action space); per period the budget on rental + storage, GPU
  availability, the linking rows n ≤ n_max·s and the storage capacity: the rule book the repair enforces, with the
  rule book's tolerance (``limits.tolerance``) on the budget and storage-capacity rows, as the repair accepts it;
- starts z_{c,t} ≥ n_{c,t} − n_{c,t−1} for t ≥ 1, z ≥ 0 continuous (for integer n its optimum is
  max(0, n_{c,t} − n_{c,t−1}), an integer), each priced at the fixed fee ``env.start_fee``. Period 0 follows the
  environment's initial fleet (``env.replicas.initial_fleet``): ``empty`` gives it the row with n_{c,−1} = 0, so
  its replicas start cold; ``warm`` gives it none, so z_{c,0} = 0 at the optimum and period 0's replicas serve at
  once, as the environment's do. The rental paid while a
  replica starts is already in n (a starting replica is rented from its period's start); ``env.start_cost`` (rental
  while starting + fee) is the *expected* start cost for hold rules and would count that rental twice;
- capacity on the ready replicas at the realised speed, linear in the starts:

      Σ_i x_{i,c,t}/μ_{i,c} ≤ (ρ_max/s_{c,t})·(n_{c,t} − Σ_{a ∈ K_c} (1 − F_{a,c})·z_{c,t−a}),

  the row of the environment's router, which routes over the ready capacity at the realised speed. Terms whose
  z_{c,t−a} lies before a model's first period are left out (only in the windows of :func:`period_bounds`; a
  relaxation);
- the delay penalty at the realised service delay, ρ_i·s_{c,t}·D_{i,c} per request; route admissibility stays
  nominal (x only on ``route_allowed``, the router's routes);
- errors: one soft row per type and period on the realised error rates ẽ_{i,c,t} = min(1, k_{c,t}·e_{i,c}),

      Σ_c (ẽ_{i,c,t} − ε_i)·x_{i,c,t} − v_{i,t} ≤ 0,   v_{i,t} ≥ 0 priced Δt·ψ_i (``env.error_penalty_per_request``),

  so v_{i,t} is the excess erroneous responses per hour the environment charges; and the hard error SLO row on the
  *nominal* rates, Σ_c (e_{i,c} − ε_i)·x_{i,c,t} ≤ 0 (``add_error_slo``), because both routers keep it: every
  routing the environment runs satisfies it, so it tightens the model without cutting off a schedule the
  environment can play (without it the optimum serves past the nominal SLO where the router would drop).

Objective ($ over the episode): Σ_t Δt·(rental + storage + Σ ρ_i·s_{c,t}·D_{i,c}·x + Σ φ_i·u + Σ ψ_i·v)
+ ``start_fee``·Σ z.

With ``router="nominal"`` (the v0 router: rented replicas at catalog speed) the capacity rows are
Σ_i x_{i,c,t}/μ_{i,c} ≤ ρ_max·n_{c,t}, what that router routes over; everything else is the same. That model is not
exact: replayed, its schedule overloads replicas that are still starting or slowed down (drops at φ_i), so only
the bound below is claimed for it.

**Exact where the schedule never stops a starting replica** (realised router). Say a schedule (after the repair)
*stops a starting replica* if it lowers n_c from period t to t + 1 while a replica of c started at t − a has
F_{a+1,c} < 1, i.e. would still be starting in t + 1 (``StartingReplicas.pending``; the environment stops the
youngest first, so such replicas go first). Without
such stops every replica started at t − a for a ∈ K_c is still rented at t, so the environment's ready capacity
Σ_a F_{a,c}·(replicas of age a) is exactly n_{c,t} − Σ_{a ∈ K_c} (1 − F_{a,c})·z_{c,t−a} with z the replicas it
started: the router's capacity row is the MILP's, its delay costs are the MILP's, and it loads a pool to at most
ρ_max < ``OVERLOAD_CAP`` of its ready capacity, so nothing overloads. The router's routing, with z the starts, s
the stored models and v the realised excess errors, is then a feasible point whose MILP cost is exactly what the
environment charges, less the queueing delay penalty (≥ 0, not modelled). For the oracle's own schedule the
replayed cost without queueing equals ``objective`` whenever the router's routing is as cheap as the MILP's at the
same replicas; the router can be dearer only because it keeps the nominal error SLO hard and does not price errors
(on the toy instance with S_c = Δt/2 they coincide: tested).

With such a stop the environment has *more* capacity than the MILP assumes for the same n (the stopped replica's
start stays in z), so the point may violate the MILP's rows. But a replica stopped while still starting never
served: F_{a+1,c} < 1 means a + 1 < S_c/Δt, so F_{a',c} = 0 at every age a' ≤ a it was rented. Cancelling its
start (:func:`cancel_unready_starts`) leaves the ready capacity, and so the router's inputs, routing and outcome, of
every period unchanged and lowers rental, storage and fees. So the bound holds for schedules with such stops too
(through the cheaper schedule without them), and the oracle's own optimum never contains one: cancelling is a
feasible point (the start's loss term vanishes, capacity is unchanged where the replica was rented, every other row
only loosens) that is strictly cheaper, as every replica has a positive rental. With every S_c ≤ Δt, as on the
default 15-minute environments, no replica is ever still starting at a boundary, so no schedule has them.

**When it is a lower bound** (:func:`is_lower_bound`). Realised router: always when ρ_max ≤ ``OVERLOAD_CAP`` (by
the argument above; otherwise the drop check below applies to its overload). Nominal router: its routing satisfies
ρ_max·n, so it is a feasible point; the world serves it on the ready replicas at the realised speed and drops what
pushes a pool past ``OVERLOAD_CAP``. A request
dropped from route (i, c) changes the cost by φ_i − ρ_i·s_{c,t}·D_{i,c} − ψ_i·(ẽ_{i,c,t} − ε_i)⁺ or more (the excess
errors fall by at most (ẽ − ε)⁺ per dropped request). So the MILP optimum bounds every schedule when no pool can
overload (ρ_max·s_{c,t} ≤ ``OVERLOAD_CAP`` and no start-up loss, F_{0,c} = 1) or when that change is ≥ 0 on every
allowed route of each configuration that can, checked with the episode's largest s_{c,t} and k_{c,t}. For both
routers queueing only adds cost, and demand noise, drift and inflation enter through the realised λ, s and k the
model reads.

**Solving** (:func:`solve_oracle`). Every period is first solved alone (:func:`period_bounds`): period 0 as the
episode begins it (from an empty fleet with its starts and their start-up loss), later periods without start rows
(their z is then 0, so without start-up loss).
Each window is a relaxation of the oracle restricted to its period, so its proven bound is a floor on that period's
own cost in every feasible schedule; added as valid rows (:func:`add_period_floors`) they lift the whole model's LP
bound to at least their sum. Three warm starts, each passed through :func:`cancel_unready_starts` and routed as
the environment would (:func:`schedule_values`): the windows' replicas run in sequence; the same started ahead of
need (:func:`started_ahead`: each period holds the largest of its own and the next K_c periods' counts, repaired
to the rule book), which pays for start-up before demand needs the capacity; and a forward pass
(:func:`forward_schedule`: period t solved with period t + 1 as lookahead and the past fixed, so its starts and
start-up losses are exact). The cheapest is the hint. If it is already within the requested gap it is the answer;
otherwise the whole episode is solved from there on HiGHS (highspy, on the exported model data as in
``milp_backends``) or SCIP (pywraplp). The returned schedule is passed through :func:`cancel_unready_starts`
(which only ever lowers its cost).

**Polish in the environment.** The MILP routes its own traffic and sees the realised error rates; the environment's
router sees neither and keeps only the nominal error SLO (MODEL.md §6). Where drift raises a model's errors, the
router fills replicas the MILP used sparingly, and the MILP's schedule can cost the environment twice its objective
(Drift's test episodes: up to 3.1×, docs/benchmark.md). Last, the schedule is therefore polished by local search on
what the environment charges (``servegym.baselines.milp.schedule_polish``, a deterministic number of sweeps): the
result keeps the MILP's schedule (``milp_replicas``, ``objective``, ``bound``, ``gap``) and plays the polished one
(``replicas``, ``played_cost``). The bound is untouched: it holds for every schedule.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.linear_solver import pywraplp

from servegym.baselines.milp.backends import RELATIVE_MIP_GAP, SolverOutcome, SolveSettings, run, settings_problem
from servegym.baselines.milp.model import (
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
from servegym.baselines.milp.schedule_polish import POLISH_SWEEPS, polish_schedule
from servegym.envs.evaluation import Plan
from servegym.envs.limits import tolerance
from servegym.envs.outcome import OVERLOAD_CAP
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.routing import Router
from servegym.errors import ServegymError

ORACLE_SOLVERS: tuple[str, ...] = ("highs", "scip")
"""Backends of :func:`solve_oracle`: HiGHS through highspy (default), SCIP through pywraplp."""
ORACLE_RELATIVE_GAP = 1e-2
"""Relative gap at which the oracle's solve stops as ``optimal``. 1 % is far below the spread between policies;
smaller gaps make HiGHS search the whole-episode model for better switching (slow)."""


class OracleError(ServegymError, ValueError):
    """Bad arguments to :func:`solve_oracle` (no episode yet, unknown solver, bad limits or gap)."""


@dataclass(frozen=True)
class OracleResult:
    """The oracle's schedule and its proof quality.

    Attributes:
        replicas: (T, C) int replicas per period and candidate configuration: ``milp_replicas`` polished in the
            environment (:func:`~servegym.baselines.milp.schedule_polish.polish_schedule`), the schedule the oracle
            plays.
        played_cost: What the environment charges for ``replicas`` over the episode, $ (queueing included).
        milp_replicas: (T, C) the MILP's own schedule, before the polish.
        milp_played_cost: What the environment charges for ``milp_replicas``, $.
        polish_moves: Moves the polish accepted (0: ``replicas`` is ``milp_replicas``).
        objective: MILP cost of ``milp_replicas`` over the episode, $ (with the realised router: the realised cost
            without queueing when the router routes it as cheaply as the MILP; see the module docstring).
        bound: Proven lower bound on the MILP optimum over the episode, $ (at least the sum of the period floors).
        gap: (objective − bound) / objective.
        status: ``optimal`` (gap ≤ the requested relative gap) or ``feasible`` (time limit first). There is always a
            schedule: the warm start at worst (periods the time limit cut off run no replicas).
        runtime_s: Wall-clock seconds of the whole call (model building, warm start, solve and polish).
        polish_s: Wall-clock seconds of the polish (outside ``time_limit_s``).
        warm_start_objective: MILP cost over the episode of the warm start (the better of the per-period optima run
            in sequence and the same started ahead), $.
        is_lower_bound: Whether ``bound`` bounds the realised episode cost of every schedule from below
            (:func:`is_lower_bound`).
    """

    replicas: np.ndarray
    played_cost: float
    milp_replicas: np.ndarray
    milp_played_cost: float
    polish_moves: int
    objective: float
    bound: float
    gap: float
    status: str
    runtime_s: float
    polish_s: float
    warm_start_objective: float
    is_lower_bound: bool


@dataclass(frozen=True)
class OracleModel:
    """The multi-period model: one :class:`MilpModel` per period on one solver, plus starts and excess errors.

    Attributes:
        solver: The ``pywraplp`` solver holding every period.
        periods: (T,) single-period models, period t built on ``env.instance`` with λ = λ_t.
        starts: (T, C) variables z_{c,t}, replicas started at the beginning of period t.
        excess: (T, I) variables v_{i,t}, excess erroneous responses per hour.
        num_columns: Variables in the solver.
    """

    solver: pywraplp.Solver
    periods: tuple[MilpModel, ...]
    starts: tuple[tuple[pywraplp.Variable, ...], ...]
    excess: tuple[tuple[pywraplp.Variable, ...], ...]
    num_columns: int

    def variables(self) -> list[pywraplp.Variable]:
        """Every solver column in index order (the order of hints and solution values)."""
        return self.solver.variables()

    def replica_columns(self) -> np.ndarray:
        """(T, C) solver column index of every n_{c,t}."""
        return np.array([[var.index() for var in model.replicas] for model in self.periods], dtype=np.int64)

    def start_columns(self) -> np.ndarray:
        """(T, C) solver column index of every z_{c,t}."""
        return np.array([[var.index() for var in starts] for starts in self.starts], dtype=np.int64)

    def stored_columns(self) -> np.ndarray:
        """(T, J) solver column index of every s_{j,t}."""
        return np.array([[var.index() for var in model.stored] for model in self.periods], dtype=np.int64)


def episode_factors(env: ProvisioningEnv) -> tuple[np.ndarray, np.ndarray]:
    """(T, C) service-time and (T, C) error multipliers of every period of the episode (``env.realised_factors``)."""
    factors = [env.realised_factors(t) for t in range(env.state.demand.rates_per_hour.shape[0])]
    return np.array([slowdown for slowdown, _ in factors]), np.array([error for _, error in factors])


def _starting_ages(ready_share: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(a, (C,) 1 − F_{a,c}) for every age a at which some configuration is still starting."""
    loss = 1.0 - ready_share
    return [(a, loss[a]) for a in range(len(loss)) if np.any(loss[a] > 0.0)]


def add_switching(oracle: OracleModel, start_cost: np.ndarray, *, first_period_starts_cold: bool) -> None:
    """n_{c,t} − n_{c,t−1} − z_{c,t} ≤ 0 (replicas) and start_cost_c·z_{c,t} in the objective ($).

    The model's first period gets the row n_{c,t} − z_{c,t} ≤ 0 only when ``first_period_starts_cold``: period 0
    of an episode with an empty initial fleet. A window of :func:`period_bounds` that starts later does not know
    its predecessor, and period 0 of a warm episode serves at once; both get no row (their z is then 0 at the
    optimum), which for the window is a relaxation and for the warm period 0 is what the environment does.
    """
    solver = oracle.solver
    objective = solver.Objective()
    previous: tuple[pywraplp.Variable, ...] | None = None
    for model, starts in zip(oracle.periods, oracle.starts, strict=True):
        for c, (replicas, start) in enumerate(zip(model.replicas, starts, strict=True)):
            objective.SetCoefficient(start, float(start_cost[c]))
            if previous is None and not first_period_starts_cold:
                continue
            row = solver.Constraint(-solver.infinity(), 0.0, model.name("start", f"c={model.config_labels[c]}"))
            row.SetCoefficient(replicas, 1.0)
            row.SetCoefficient(start, -1.0)
            if previous is not None:
                row.SetCoefficient(previous[c], -1.0)
        previous = model.replicas


def set_ready_capacity(oracle: OracleModel, env: ProvisioningEnv, slowdown: np.ndarray) -> None:
    """Rewrite the rows of ``add_capacity`` to the router's capacity (module docstring).

    Realised router: Σ_i x_{i,c,t}/μ_{i,c} − (ρ_max/s_{c,t})·(n_{c,t} − Σ_a (1 − F_{a,c})·z_{c,t−a}) ≤ 0, with the
    terms whose z lies before the model's first period left out. Nominal router: the rows stay ρ_max·n_{c,t}.

    Args:
        oracle: The model, with its capacity rows and starts.
        env: The environment (router kind, ρ_max, F).
        slowdown: (T, C) service-time multipliers of the whole episode, indexed by period.
    """
    if env.router_kind != "realised":
        return
    solver = oracle.solver
    ages = _starting_ages(env.replicas.ready_share)
    rho = env.instance.design_utilisation
    for k, model in enumerate(oracle.periods):
        rate = rho / slowdown[model.period]  # (C,) replica-loads per ready replica
        for c, label in enumerate(model.config_labels):
            row = solver.LookupConstraint(model.name("capacity", f"c={label}"))
            if row is None:
                raise RuntimeError(f"oracle: capacity row of {label} in period {model.period} not found")
            row.SetCoefficient(model.replicas[c], -float(rate[c]))
            for a, loss in ages:
                if loss[c] > 0.0 and k - a >= 0:
                    row.SetCoefficient(oracle.starts[k - a][c], float(rate[c] * loss[c]))


def price_realised_delay(model: MilpModel, slowdown: np.ndarray) -> None:
    """Each route's objective coefficient to Δt·ρ_i·s_c·D_{i,c} ($ per request/hour over the period)."""
    instance = model.instance
    objective = model.solver.Objective()
    cost = (
        instance.period_hours
        * slowdown[model.route_config]
        * instance.delay_penalty_per_request_s[model.route_type]
        * instance.delay_s[model.route_type, model.route_config]
    )
    for var, coefficient in zip(model.routes, cost.tolist(), strict=True):
        objective.SetCoefficient(var, coefficient)


def add_error_excess(
    model: MilpModel, error_factor: np.ndarray, penalty_per_request: np.ndarray
) -> tuple[pywraplp.Variable, ...]:
    """v_i ≥ 0 priced Δt·ψ_i and, for types with a route over ε_i, Σ_c (min(1, k_c·e_{i,c}) − ε_i)·x_{i,c} − v_i ≤ 0.

    Types whose routes all meet ε_i at the realised rates get no row (their excess is 0).

    Args:
        model: The period's model.
        error_factor: (C,) realised error multipliers k_c of the period.
        penalty_per_request: (I,) ψ_i, $ per excess erroneous response.

    Returns:
        (I,) the variables v_i, responses/hour.
    """
    instance, solver = model.instance, model.solver
    objective = solver.Objective()
    realised = np.minimum(error_factor[None, :] * instance.error_rate, 1.0)
    excess_rate = realised[model.route_type, model.route_config] - instance.error_slo[model.route_type]
    psi = np.broadcast_to(np.asarray(penalty_per_request, dtype=float), (instance.num_query_types,))
    variables = []
    for i, label in enumerate(model.type_labels):
        var = solver.NumVar(0.0, solver.infinity(), model.name("v", f"i={label}"))
        objective.SetCoefficient(var, instance.period_hours * float(psi[i]))
        variables.append(var)
    rows: dict[int, pywraplp.Constraint] = {}
    for i in np.unique(model.route_type[excess_rate > 0.0]).tolist():
        rows[i] = solver.Constraint(-solver.infinity(), 0.0, model.name("error_excess", f"i={model.type_labels[i]}"))
        rows[i].SetCoefficient(variables[i], -1.0)
    for var, i, coefficient in zip(model.routes, model.route_type.tolist(), excess_rate.tolist(), strict=True):
        if i in rows and coefficient != 0.0:
            rows[i].SetCoefficient(var, coefficient)
    return tuple(variables)


def _rule_book_tolerance(model: MilpModel) -> None:
    """Budget and storage-capacity rows up to limit + ``limits.tolerance(limit)``: what the repair accepts."""
    solver, instance = model.solver, model.instance
    for family, limit in (("budget", instance.budget_per_hour), ("storage", instance.storage_capacity_gb)):
        row = solver.LookupConstraint(model.name(family))
        if row is not None and math.isfinite(limit):
            row.SetUb(float(limit) + tolerance(float(limit)))


def build_oracle_model(env: ProvisioningEnv, periods: range | None = None) -> OracleModel:
    """The oracle MILP of the module docstring for the episode ``env`` has just been reset to.

    Args:
        env: The environment, reset to the episode.
        periods: The periods to model (default all T); a window that starts after period 0 is relaxed at its
            start (see :func:`add_switching` and :func:`set_ready_capacity`).

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
    slowdown, error_factor = episode_factors(env)
    solver = pywraplp.Solver.CreateSolver("SCIP")  # holds the model; HiGHS gets its data, SCIP solves it in place
    models, excess = [], []
    for t in periods:
        model = add_variables(
            solver, env.instance.with_demand(demand[t]), integral=True, relax=("unmet_cap",), period=t
        )
        for var, limit in zip(model.replicas, env.max_replicas.tolist(), strict=True):
            var.SetUb(float(limit))
        add_demand_balance(model)
        add_capacity(model)
        add_error_slo(model)
        add_budget(model)
        add_availability(model)
        add_storage(model, limit_capacity=True)
        _rule_book_tolerance(model)
        add_objective(model)
        price_realised_delay(model, slowdown[t])
        excess.append(add_error_excess(model, error_factor[t], env.error_penalty_per_request))
        models.append(model)
    starts = tuple(
        tuple(
            solver.NumVar(0.0, float(limit), structured_name("z", f"c={label}", t))
            for label, limit in zip(models[0].config_labels, env.max_replicas.tolist(), strict=True)
        )
        for t in periods
    )
    oracle = OracleModel(solver, tuple(models), starts, tuple(excess), solver.NumVariables())
    add_switching(
        oracle,
        np.full(env.instance.num_configurations, env.start_fee),
        first_period_starts_cold=periods.start == 0 and env.replicas.initial_fleet == "empty",
    )
    set_ready_capacity(oracle, env, slowdown)
    return oracle


def add_period_floors(oracle: OracleModel, floors: np.ndarray) -> None:
    """Period t's own cost (rental, storage, delay, unmet and error terms; for period 0 also its starts) ≥ floor_t.

    Valid inequalities, not restrictions: with ``floors`` from :func:`period_bounds`, every feasible schedule meets
    them, so the optimum is unchanged while the LP bound of the whole model starts at Σ_t floor_t ($).
    """
    solver = oracle.solver
    objective = solver.Objective()
    for t, (model, starts, excess, floor) in enumerate(
        zip(oracle.periods, oracle.starts, oracle.excess, floors.tolist(), strict=True)
    ):
        row = solver.Constraint(floor, solver.infinity(), model.name("floor"))
        for var in [*model.variables(), *excess, *(starts if t == 0 else ())]:
            coefficient = objective.GetCoefficient(var)
            if coefficient != 0.0:
                row.SetCoefficient(var, coefficient)


def cancel_unready_starts(replicas: np.ndarray, ready_share: np.ndarray, initial_fleet: str) -> np.ndarray:
    """The schedule with every start cancelled whose replica is stopped while still starting (module docstring).

    Replays ``replicas`` (T, C) with the environment's cohort rule (every period the target is started or the
    youngest replicas stop). A replica stopped at the start of period t that is still starting then (started at
    t − a with F_{a,c} < 1) never served, so it is removed from every period it was rented. The result never stops
    a starting replica, rents no more than ``replicas``, and has the same ready capacity in every period.

    Args:
        replicas: (T, C) int replica schedule.
        ready_share: (K+1, C) F_{a,c}, ``StartingReplicas.ready_share``.
        initial_fleet: ``StartingReplicas.initial_fleet``; ``warm``: period 0's replicas are ready, never starting.
    """
    schedule = np.array(replicas, dtype=np.int64)
    last_age = ready_share.shape[0] - 1
    warm_start_period = -last_age  # a cohort "started" then is ready at period 0
    for c in range(schedule.shape[1]):
        cohorts: list[list[int]] = []  # [start period, replicas], oldest first
        for t in range(schedule.shape[0]):
            rented = sum(count for _, count in cohorts)
            target = int(schedule[t, c])
            if target > rented:
                cohorts.append([warm_start_period if t == 0 and initial_fleet == "warm" else t, target - rented])
            to_stop = rented - target
            while to_stop > 0:
                start, count = cohorts[-1]
                stop = min(count, to_stop)
                if ready_share[min(t - start, last_age), c] < 1.0:
                    schedule[max(start, 0) : t, c] -= stop  # still starting: it never served, so it never ran
                cohorts[-1][1] -= stop
                if cohorts[-1][1] == 0:
                    cohorts.pop()
                to_stop -= stop
    return schedule


def schedule_values(oracle: OracleModel, env: ProvisioningEnv, replicas: np.ndarray) -> np.ndarray:
    """Solver column values of the whole-episode model that encode a replica schedule (T, C): a feasible point.

    The schedule is replayed as the environment runs it: a start-up tracker like the environment's gives each
    period's ready capacity, and an own :class:`Router` routes the period's true demand over it at the realised
    speed (``router="nominal"``: over the rented replicas at catalog speed), unmet cap relaxed. n is the rented
    schedule, z the replicas started, s the stored models, v the realised excess errors of the routing.

    Raises:
        ValueError: if the schedule stops a replica while it is still starting (the point would not be feasible;
            pass it through :func:`cancel_unready_starts` first), or ``oracle`` does not start at period 0.
    """
    if oracle.periods[0].period != 0:
        raise ValueError("schedule_values: the model must cover the episode from period 0")
    instance = env.instance
    router = Router(instance)  # own router: the environment's keeps its warm basis for its own steps
    tracker = env.replicas.fresh()
    ages = _starting_ages(tracker.ready_share)
    realised = env.router_kind == "realised"
    slowdown, error_factor = episode_factors(env)
    demand = env.state.demand.rates_per_hour
    values = np.zeros(oracle.num_columns)
    started_history: list[np.ndarray] = []
    for model, starts, excess, n in zip(oracle.periods, oracle.starts, oracle.excess, replicas, strict=True):
        t = model.period
        rented = np.asarray(n, dtype=np.int64)
        started = tracker.advance(rented)
        started_history.append(started)
        ready = tracker.ready()
        if realised:
            modelled = rented - sum(loss * started_history[t - a] for a, loss in ages if t - a >= 0)
            if np.any(ready > modelled + 1e-9):
                raise ValueError(
                    f"schedule_values: period {t} stops replicas that are still starting; "
                    "apply cancel_unready_starts to the schedule first"
                )
            routed = router.route(ready, demand[t], relax_unmet_cap=True, slowdown=slowdown[t]).plan
        else:
            routed = router.route(rented.astype(float), demand[t], relax_unmet_cap=True).plan
        plan = Plan(replicas=rented, routing=routed.routing, unserved=routed.unserved)
        values[[var.index() for var in model.variables()]] = model.plan_values(plan)
        values[[var.index() for var in starts]] = started
        realised_error = np.minimum(error_factor[t][None, :] * instance.error_rate, 1.0)
        erroneous = (realised_error * plan.routing).sum(axis=1) - instance.error_slo * plan.routing.sum(axis=1)
        values[[var.index() for var in excess]] = np.maximum(erroneous, 0.0)
    return values


def is_lower_bound(env: ProvisioningEnv) -> bool:
    """Whether the oracle's optimum bounds every schedule's realised cost (module docstring, "When it is a lower
    bound"). Call after ``env.reset``: the check uses the episode's realised multipliers."""
    instance = env.instance
    rho = instance.design_utilisation
    slowdown, error_factor = episode_factors(env)
    largest_slowdown, largest_error = slowdown.max(axis=0), error_factor.max(axis=0)  # (C,)
    if env.router_kind == "realised":
        can_overload = np.full(instance.num_configurations, rho > OVERLOAD_CAP)
    else:
        startup_loss = env.replicas.ready_share[0] < 1.0
        can_overload = (rho * largest_slowdown > OVERLOAD_CAP) | startup_loss
    routes = instance.route_allowed & can_overload[None, :]
    if not routes.any():
        return True
    served = largest_slowdown[None, :] * instance.delay_penalty_per_request_s[:, None] * instance.delay_s
    realised_error = np.minimum(largest_error[None, :] * instance.error_rate, 1.0)
    psi = np.broadcast_to(np.asarray(env.error_penalty_per_request, dtype=float), (instance.num_query_types,))
    errors = psi[:, None] * np.maximum(realised_error - instance.error_slo[:, None], 0.0)
    dropped = instance.unmet_penalty_per_request[:, None]
    change = np.broadcast_to(dropped, served.shape) - served - errors
    return bool(np.all(change[routes] >= 0.0))


@dataclass(frozen=True)
class OracleBackend:
    """A backend of ``milp_backends.run`` with the oracle's fixed settings (seed 0, silenced output).

    Attributes:
        name: The ``milp_backends`` backend, ``"HIGHS"`` or ``"SCIP"`` (:data:`ORACLE_SOLVERS` in upper case).
        threads: Solver threads.
        node_limit: Branch-and-bound nodes per solve after which the backend stops with its incumbent (a
            deterministic work limit); None for none.
    """

    name: str
    threads: int = 1
    node_limit: int | None = None

    def solve(
        self, model: OracleModel, hint: np.ndarray | None, time_limit_s: float | None, relative_gap: float
    ) -> SolverOutcome:
        """Solve ``model`` from ``hint`` (a value per solver column, or None) within the limits."""
        settings = SolveSettings(
            time_limit_s=time_limit_s,
            threads=self.threads,
            seed=0,
            relative_gap=relative_gap,
            node_limit=self.node_limit,
        )
        return run(model, self.name, settings, None if hint is None else (range(len(hint)), hint))


def period_bounds(env: ProvisioningEnv, backend: OracleBackend, deadline: float) -> tuple[np.ndarray, np.ndarray]:
    """Solve every period alone (period 0 as the episode begins it, later periods without switching or start-up loss).

    Each window is a relaxation of the oracle restricted to its period, so its proven bound is a floor on that
    period's cost in every feasible schedule (:func:`add_period_floors`), and its replicas, run in sequence, are a
    schedule for the whole episode (the warm start).

    Args:
        env: The environment, reset to the episode.
        backend: The backend.
        deadline: ``time.perf_counter()`` value after which no window gets more time (its bound is then 0 and its
            replicas none, unless the solver found them already).

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
        solved = backend.solve(window, None, None if math.isinf(deadline) else remaining, RELATIVE_MIP_GAP)
        if solved.values is not None:
            replicas[t] = np.round(solved.values[window.replica_columns()[0]]).astype(np.int64)
        floors[t] = 0.0 if math.isnan(solved.bound) else max(solved.bound, 0.0)
    return floors, replicas


def started_ahead(env: ProvisioningEnv, replicas: np.ndarray) -> np.ndarray:
    """``replicas`` (T, C) with every replica started ahead of need: period t holds the largest count of periods
    t..t+K_c (K_c = ages at which configuration c is still starting), repaired by the environment's rule."""
    num_ages = (env.replicas.ready_share < 1.0).sum(axis=0)  # (C,) K_c
    ahead = np.array(replicas, dtype=np.int64)
    for c, k in enumerate(num_ages.tolist()):
        for t in range(len(ahead)):
            ahead[t, c] = replicas[t : t + k + 1, c].max()
    return np.array([env.repair.repair(row.copy())[0] for row in ahead], dtype=np.int64)


def forward_schedule(env: ProvisioningEnv, backend: OracleBackend, deadline: float, fallback: np.ndarray) -> np.ndarray:
    """A schedule decided period by period with the past fixed and one period of lookahead (a warm start).

    Period t is solved together with period t + 1, with the replicas and starts of the max(K, 1) periods before it
    fixed to the decisions already taken (so its starts, fees and start-up losses are exact); period t's replicas
    are kept. Periods the deadline cuts off keep ``fallback`` (T, C).
    """
    num_periods, num_configs = fallback.shape
    lead_periods = max(env.replicas.ready_share.shape[0] - 1, 1)
    schedule = np.array(fallback, dtype=np.int64)
    started = np.zeros_like(schedule)
    for t in range(num_periods):
        remaining = deadline - time.perf_counter()
        if remaining <= 0.0:
            break
        lead = min(lead_periods, t)
        window = build_oracle_model(env, range(t - lead, min(num_periods, t + 2)))
        for k in range(lead):
            past = t - lead + k
            for c in range(num_configs):
                window.periods[k].replicas[c].SetBounds(float(schedule[past, c]), float(schedule[past, c]))
                window.starts[k][c].SetBounds(float(started[past, c]), float(started[past, c]))
        solved = backend.solve(window, None, None if math.isinf(deadline) else remaining, RELATIVE_MIP_GAP)
        if solved.values is None:
            break
        schedule[t] = np.round(solved.values[window.replica_columns()[lead]]).astype(np.int64)
        if t or env.replicas.initial_fleet == "empty":  # a warm period 0 starts nothing
            started[t] = np.maximum(schedule[t] - (schedule[t - 1] if t else 0), 0)
    return schedule


def _without_unready_stops(oracle: OracleModel, env: ProvisioningEnv, values: np.ndarray) -> np.ndarray:
    """``values`` with the schedule passed through :func:`cancel_unready_starts` (z and s recomputed, x, u, v kept:
    still feasible, as the ready capacity can only grow, and no dearer)."""
    columns = oracle.replica_columns()
    replicas = np.round(values[columns]).astype(np.int64)
    schedule = cancel_unready_starts(replicas, env.replicas.ready_share, env.replicas.initial_fleet)
    if np.array_equal(schedule, replicas):
        return values
    fixed = values.copy()
    fixed[columns] = schedule
    before_episode = schedule[:1] if env.replicas.initial_fleet == "warm" else np.zeros_like(schedule[:1])
    previous = np.vstack([before_episode, schedule[:-1]])
    fixed[oracle.start_columns()] = np.maximum(schedule - previous, 0)
    config_model = env.instance.config_model
    stored = np.zeros((len(schedule), len(env.instance.models)))
    for t, row in enumerate(schedule):
        stored[t, config_model[row > 0]] = 1.0
    fixed[oracle.stored_columns()] = stored
    return fixed


def solve_oracle(
    env: ProvisioningEnv,
    *,
    time_limit_s: float | None = 300.0,
    solver: str = "highs",
    threads: int = 1,
    relative_gap: float = ORACLE_RELATIVE_GAP,
    node_limit: int | None = None,
    polish_sweeps: int = POLISH_SWEEPS,
) -> OracleResult:
    """Solve the perfect-foresight MILP for the episode ``env`` has just been reset to. **Reads the true demand and
    the realised multipliers.**

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
        node_limit: Branch-and-bound nodes of each solve (every window and the whole episode) after which it stops
            with its incumbent and bound: a deterministic work limit, the same on every machine; None for none.
        polish_sweeps: Most sweeps of the polish in the environment after the MILP (0: replay only, no polish;
            the polish is outside ``time_limit_s``).

    Returns:
        The polished schedule and its cost in the environment, the MILP's schedule with its cost in the
        environment, its MILP objective and proven bound in $ over the episode, and the status.

    Raises:
        OracleError: for a non-reset environment, an unknown solver, a non-positive time limit, a thread count
            other than 1 for HiGHS, a negative gap, a node limit below 1 or a negative number of polish sweeps.
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
    if node_limit is not None and node_limit < 1:
        raise OracleError(f"node_limit = {node_limit} must be ≥ 1 or None")
    if polish_sweeps < 0:
        raise OracleError(f"polish_sweeps = {polish_sweeps} must be ≥ 0")
    backend = OracleBackend(solver.upper(), threads, node_limit)
    oracle = build_oracle_model(env)
    realised = env.router_kind == "realised"
    deadline = math.inf if time_limit_s is None else time.perf_counter() + time_limit_s
    floors, window_replicas = period_bounds(env, backend, deadline)
    add_period_floors(oracle, floors)
    objective_row = oracle.solver.Objective()
    cost = np.array([objective_row.GetCoefficient(var) for var in oracle.solver.variables()])  # $ per unit
    ahead = started_ahead(env, window_replicas)
    candidates = [window_replicas, ahead, forward_schedule(env, backend, deadline, ahead)]
    if realised:
        candidates = [
            cancel_unready_starts(schedule, env.replicas.ready_share, env.replicas.initial_fleet)
            for schedule in candidates
        ]
    hints = [schedule_values(oracle, env, schedule) for schedule in candidates]
    objectives = [float(cost @ hint) for hint in hints]
    best = int(np.argmin(objectives))
    warm_replicas, hint, warm_objective = candidates[best], hints[best], objectives[best]
    remaining = deadline - time.perf_counter()
    if warm_objective - floors.sum() <= relative_gap * max(abs(warm_objective), 1e-9):
        solved = SolverOutcome("optimal", hint, warm_objective, float(floors.sum()), "warm start within the gap")
    elif remaining > 0.0:
        solved = backend.solve(oracle, hint, None if math.isinf(remaining) else remaining, relative_gap)
    else:
        solved = SolverOutcome("feasible", None, math.nan, math.nan, "time limit before the whole-episode solve")
    if solved.status == "infeasible":
        raise RuntimeError(f"oracle MILP declared infeasible by {solver}; the empty schedule is always feasible")
    if solved.values is not None:
        values, objective, status = solved.values, solved.objective, solved.status
        if realised:
            fixed = _without_unready_stops(oracle, env, values)
            if fixed is not values:
                values, objective = fixed, float(cost @ fixed)
        replicas = np.round(values[oracle.replica_columns()]).astype(np.int64)
    else:  # time limit before the whole-episode solve found or kept an incumbent: the warm start
        replicas, objective, status = warm_replicas, warm_objective, "feasible"
    bound = float(floors.sum()) if math.isnan(solved.bound) else max(solved.bound, float(floors.sum()), 0.0)
    gap = max(0.0, (objective - bound) / max(abs(objective), 1e-9))
    polish_start = time.perf_counter()
    polished = polish_schedule(env, replicas, max_sweeps=polish_sweeps)
    polish_s = time.perf_counter() - polish_start
    return OracleResult(
        replicas=polished.replicas,
        played_cost=polished.cost_after,
        milp_replicas=replicas,
        milp_played_cost=polished.cost_before,
        polish_moves=polished.moves,
        objective=objective,
        bound=bound,
        gap=gap,
        status="optimal" if gap <= relative_gap else status,
        runtime_s=time.perf_counter() - start,
        polish_s=polish_s,
        warm_start_objective=warm_objective,
        is_lower_bound=is_lower_bound(env),
    )


class OraclePolicy:
    """The perfect-foresight oracle as a :class:`~servegym.baselines.runner.policies.Policy`. **Not an online policy.**

    On the first ``act`` of an episode (``info["period"] == 0``) it solves :func:`solve_oracle` on the episode's
    true demand and realised multipliers, read from the environment it was built with, then replays that schedule
    period by period. ``last_result`` holds the latest :class:`OracleResult` (objective, bound, gap) for reporting.
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
        self.fallbacks = 0  # the oracle replays its schedule; nothing falls back
        self.env: ProvisioningEnv = getattr(env, "unwrapped", env)  # a gym.make wrapper reads the same episode
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
