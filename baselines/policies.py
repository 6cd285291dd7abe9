"""Policies that act in the environment, all through one interface: ``reset(seed)`` and ``act(obs, info)``.

Planner policies re-plan with GH, AGH or the MILP on the environment's candidate instance:

- ``rolling``: every period, on the forecast of the next period (``info["forecast_per_hour"]``);
- ``static``: once per episode, on the day's peak forecast (the nominal λ, which is the peak of the forecaster's
  day-ahead profile), then holds that plan all day (the paper's 24-h comparator);
- ``reactive``: every period, on the demand realised in the period just finished;
- ``hold``: ``rolling`` with switching hysteresis (:class:`SwitchRule`): the running replicas stay unless the
  new plan's saving pays back the replicas it starts within :data:`HOLD_PAYBACK_PERIODS` periods.

When a planner finds no feasible plan for the demand it is given (e.g. a forecast above what the budget can
serve within the unmet cap), the policy re-plans with the unmet cap lifted, then falls back to the running
replicas; ``fallbacks`` counts such periods. ``random`` samples masked replica counts uniformly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from servegym.baselines.result import PlanResult
from servegym.envs.instance import Instance
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.routing import Router

PLANNERS = ("gh", "agh", "milp")
MODES = ("rolling", "static", "reactive", "hold")
MILP_TIME_LIMIT_S = 10.0
"""Per-decision MILP time limit inside the environment; the best plan found by then is used."""
HOLD_PAYBACK_PERIODS = 4.0
"""Periods within which a re-plan must pay back its start-up cost for the ``hold`` mode to switch (1 h at 15 min)."""


class Policy(Protocol):
    """What every policy, heuristic or learned, offers."""

    name: str

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray: ...


def run_planner(planner: str, instance: Instance, seed: int) -> PlanResult:
    """Run one planner on one instance (imports lazily: the MILP pulls in OR-Tools' solvers)."""
    if planner == "gh":
        from servegym.baselines.greedy import solve_gh

        return solve_gh(instance)
    if planner == "agh":
        from servegym.baselines.adaptive import solve_agh

        return solve_agh(instance, seed=seed)
    if planner == "milp":
        from servegym.baselines.milp import solve

        return solve(instance, time_limit_s=MILP_TIME_LIMIT_S)
    raise ValueError(f"planner {planner!r} not one of {list(PLANNERS)}")


def _lift_unmet_cap(instance: Instance) -> Instance:
    return instance.with_changes(
        query_types=tuple(dataclasses.replace(q, max_unmet_fraction=1.0) for q in instance.query_types)
    )


class SwitchRule:
    """Keep the running replicas unless a new plan pays back the replicas it starts within a horizon.

    A plan's period cost is its rental plus the delay and unmet penalties of its optimal routing (the routing LP,
    unmet cap enforced) on the target demand, over one period, $. The rule switches to the new plan iff the
    running replicas cannot route the target demand feasibly, or ``payback_periods`` × (running's period cost −
    new plan's period cost) covers the reconfiguration cost of the replicas the new plan starts. With
    ``payback_periods`` = 0 it always switches, which is plain re-planning.

    Args:
        env: The environment whose candidate instance, reconfiguration cost and period length are used.
    """

    def __init__(self, env: ProvisioningEnv) -> None:
        self.instance = env.instance
        self.start_cost = np.asarray(env.start_cost, dtype=float)
        self.router = Router(env.instance)

    def period_cost(self, replicas: np.ndarray, demand_per_hour: np.ndarray) -> float:
        """Rental plus routed delay and unmet penalties over one period, $; inf if the routing is infeasible."""
        routed = self.router.route(replicas, demand_per_hour)
        if not routed.feasible:
            return math.inf
        rental = float(np.asarray(replicas, dtype=float) @ self.instance.replica_price_per_hour)
        return self.instance.period_hours * (rental + routed.objective_per_hour)

    def choose(
        self, running: np.ndarray, planned: np.ndarray, demand_per_hour: np.ndarray, payback_periods: float
    ) -> tuple[np.ndarray, bool]:
        """The replicas to run next and whether they are the running ones (a hold).

        Args:
            running: (C,) replicas running now.
            planned: (C,) the new plan's replicas.
            demand_per_hour: (I,) demand both are judged on, requests/hour.
            payback_periods: Horizon ≥ 0 within which switching must pay back, periods.
        """
        if payback_periods <= 0.0 or not running.any() or np.array_equal(running, planned):
            return planned, False
        running_cost = self.period_cost(running, demand_per_hour)
        if math.isinf(running_cost):
            return planned, False
        start_cost = float(np.maximum(planned - running, 0) @ self.start_cost)
        if (running_cost - self.period_cost(planned, demand_per_hour)) * payback_periods >= start_cost:
            return planned, False
        return running.copy(), True


class PlannerPolicy:
    """GH, AGH or the MILP re-planning in one of :data:`MODES` (see the module docstring)."""

    def __init__(self, env: ProvisioningEnv, planner: str, mode: str, seed: int = 0) -> None:
        if planner not in PLANNERS:
            raise ValueError(f"planner {planner!r} not one of {list(PLANNERS)}")
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} not one of {list(MODES)}")
        self.name = f"{planner}-{mode}"
        self.planner, self.mode = planner, mode
        self.instance = env.instance
        self.max_replicas = env.max_replicas.copy()
        self.fallbacks = 0
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._static: np.ndarray | None = None
        self._running = np.zeros(self.instance.num_configurations, dtype=np.int64)
        self._switch_rule = SwitchRule(env) if mode == "hold" else None
        self.holds = 0

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(self._seed if seed is None else seed)
        self._static = None
        self._running = np.zeros(self.instance.num_configurations, dtype=np.int64)
        self.fallbacks = 0
        self.holds = 0

    def _target_demand(self, info: dict[str, Any]) -> np.ndarray:
        if self.mode == "static":
            return np.asarray(self.instance.demand_per_hour)
        if self.mode == "reactive" and "demand_per_hour" in info:
            return np.asarray(info["demand_per_hour"])
        return np.asarray(info["forecast_per_hour"])

    def plan(self, demand_per_hour: np.ndarray) -> np.ndarray:
        """Replica counts for a demand vector, with the fallbacks of the module docstring."""
        instance = self.instance.with_demand(np.maximum(demand_per_hour, 0.0))
        seed = int(self._rng.integers(2**31))
        result = run_planner(self.planner, instance, seed)
        if not result.feasible:
            self.fallbacks += 1
            result = run_planner(self.planner, _lift_unmet_cap(instance), seed)
            if not result.feasible:
                return self._running.copy()
        return np.minimum(np.round(result.plan.replicas).astype(np.int64), self.max_replicas)

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        if "replicas" in info:  # what runs after the env's repair, which the fallback keeps
            self._running = np.asarray(info["replicas"], dtype=np.int64).copy()
        if self.mode == "static":
            if self._static is None:
                self._static = self.plan(self._target_demand(info))
            action = self._static
        else:
            demand = self._target_demand(info)
            action = self.plan(demand)
            if self._switch_rule is not None:
                action, held = self._switch_rule.choose(self._running, action, demand, HOLD_PAYBACK_PERIODS)
                self.holds += held
        self._running = action.copy()
        return action.copy()


class RandomPolicy:
    """Uniformly random replica counts among the choices ``action_masks()`` allows, per candidate."""

    def __init__(self, env: ProvisioningEnv, seed: int = 0) -> None:
        self.name = "random"
        self._nvec = env.action_space.nvec.copy()
        self._seed = seed
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(self._seed if seed is None else seed)

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        mask = np.asarray(info["action_mask"], dtype=bool)
        action = np.zeros(len(self._nvec), dtype=np.int64)
        start = 0
        for c, size in enumerate(self._nvec):
            allowed = np.flatnonzero(mask[start : start + size])
            action[c] = self._rng.choice(allowed) if allowed.size else 0
            start += size
        return action


PolicyFactory = Callable[[ProvisioningEnv], Policy]
BASELINE_POLICIES: tuple[str, ...] = (*(f"{p}-{m}" for m in MODES for p in PLANNERS), "random")


def make_policy(name: str, env: ProvisioningEnv, seed: int = 0) -> Policy:
    """A baseline policy by name: ``<gh|agh|milp>-<rolling|static|reactive>``, ``random``, or ``oracle`` (the
    perfect-foresight oracle of ``servegym.baselines.oracle``, which reads the episode's true demand)."""
    if name == "random":
        return RandomPolicy(env, seed)
    if name == "oracle":
        from servegym.baselines.oracle import OraclePolicy  # lazily: the oracle pulls in OR-Tools' solvers

        return OraclePolicy(env)
    planner, _, mode = name.partition("-")
    if planner not in PLANNERS or mode not in MODES:
        raise ValueError(f"unknown policy {name!r}; choose from {[*BASELINE_POLICIES, 'oracle']}")
    return PlannerPolicy(env, planner, mode, seed)
