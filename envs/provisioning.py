"""The rolling-horizon provisioning environment (MODEL.md §4)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from servegym.envs.candidates import select_candidates
from servegym.envs.catalog import default_catalog
from servegym.envs.demand_source import EpisodeDemand, episode_demand, validate_source
from servegym.envs.forecast import Forecaster
from servegym.envs.instance import Instance
from servegym.envs.outcome import Outcome, realise
from servegym.envs.routing import Router
from servegym.envs.scenarios import make_instance

HISTORY_PERIODS = 4
"""Past periods of realised demand in the observation."""
DEMAND_OBS_HIGH = 10.0
"""Demand in the observation is divided by the nominal λ and clipped to [0, 10]."""
MAX_REPLICAS_PER_CANDIDATE = 32
"""Upper end of each action dimension (also bounded by the GPU type's availability)."""
LOAD_BANDWIDTH_GB_S = 2.0
"""Weight loading bandwidth per GPU (local NVMe / object store), GB/s, for the load-time reconfiguration cost."""
STARTUP_S = 30.0
"""Fixed engine start-up time per replica (container, CUDA graphs, warm-up), seconds."""


@functools.lru_cache(maxsize=16)
def _scenario_instance(scenario: str) -> Instance:
    return make_instance(scenario)


@dataclass
class _State:
    """The small mutable state of an episode."""

    period: int
    replicas: np.ndarray  # (C,) replicas running in the period just finished
    history: np.ndarray  # (HISTORY_PERIODS, I) realised demand, newest last, requests/hour
    last_slo: np.ndarray  # (4,) delay-violation, error-violation, unserved rates, mean utilisation
    demand: EpisodeDemand


def _drain(replicas: np.ndarray, order: np.ndarray, weight: np.ndarray, limit: float) -> int:
    """Lower ``replicas`` in place, configuration by configuration in ``order``, until ``replicas @ weight ≤ limit``.

    The result is exactly that of removing one replica at a time from the first configuration in ``order`` that
    still runs, while ``replicas @ weight > limit`` (usage per replica ``weight``: GPUs or $/hour). The
    configurations emptied outright are estimated from the cumulative usage and confirmed with the exact usage;
    the last one keeps the largest count that meets the limit, estimated from the excess and corrected the same
    way, so floating-point rounding cannot make the result differ. Returns the replicas removed.
    """
    if replicas @ weight <= limit:
        return 0
    before = int(replicas.sum())
    remaining = replicas @ weight - np.cumsum(replicas[order] * weight[order])
    start = int(np.argmax(remaining <= limit)) if remaining[-1] <= limit else len(order)
    emptied = replicas.copy()
    emptied[order[:start]] = 0
    if emptied @ weight > limit:  # still over with those emptied, so one at a time empties them too
        replicas[order[:start]] = 0
    else:
        start = 0
    for c in order[start:]:
        used = replicas @ weight
        if used <= limit:
            break
        running = int(replicas[c])
        keep = max(running - math.ceil((used - limit) / weight[c]), 0)
        replicas[c] = keep
        while keep > 0 and replicas @ weight > limit:
            keep -= 1
            replicas[c] = keep
        while keep < running:
            replicas[c] = keep + 1
            if replicas @ weight > limit:
                replicas[c] = keep
                break
            keep += 1
    return before - int(replicas.sum())


class ProvisioningEnv(gym.Env):
    """Provision LLM serving replicas period by period under SLOs, on Azure-calibrated or synthetic demand.

    ## Description
    One episode is one planning horizon (default 24 h of 15-minute periods). Each step the agent sets the
    number of replicas of every candidate configuration (model, GPU type, precision, TP, PP) for the next
    period. The environment then draws the realised demand, routes it over the replicas with the routing LP
    (nominal coefficients, unmet cap relaxed), runs the period with realised parameters (delay and error
    inflation, overload, queueing; see ``servegym.envs.outcome``) and charges its cost.

    ## Action Space
    ``MultiDiscrete(nvec)``: target replicas per candidate configuration, ``nvec[c] = min(32, ⌊A_g / G_c⌋) + 1``.
    Candidates are chosen per instance by ``servegym.envs.candidates.select_candidates`` (default at most 24).
    ``action_masks()`` masks counts that break GPU availability or the budget *on their own*. Coupled limits
    (availability shared by the configurations of one GPU type; the budget shared by all) are enforced by a
    documented repair: while a limit is exceeded, one replica is removed from the most expensive running
    configuration that uses the exceeded resource. ``info["repaired_replicas"]`` counts the removals.

    ## Observation Space
    ``Dict`` of ``Box``es (float32), all normalised:

    | key         | shape         | content                                                            | range   |
    |-------------|---------------|--------------------------------------------------------------------|---------|
    | time        | (3,)          | sin and cos of the time of day, fraction of the episode elapsed    | [-1, 1] |
    | demand      | (4·I,)        | realised demand of the last 4 periods ÷ nominal λ (oldest first)    | [0, 10] |
    | forecast    | (I,)          | forecast of next period's demand ÷ nominal λ                        | [0, 10] |
    | replicas    | (C,)          | running replicas ÷ (nvec − 1)                                       | [0, 1]  |
    | slo         | (4,)          | last period's delay- and error-violation and unserved rates,       | [0, 1]  |
    |             |               | mean utilisation of running replicas                               |         |
    | action_mask | (Σ nvec,)     | ``action_masks()`` as 0/1                                           | [0, 1]  |

    ## Rewards
    ``reward = −cost / reward_scale`` where cost = rental + storage + delay penalty + unmet penalty +
    reconfiguration in $ over the period and ``reward_scale`` = budget $/hour × period hours (so a period that
    spends the whole budget on rental and nothing else scores −1). ``info["cost"]`` has every part.

    ## Starting State
    No replicas run. The first period therefore pays reconfiguration for every replica it starts.

    ## Episode End
    Terminates after ``horizon_hours`` of periods; never truncated by the environment itself.

    ## Arguments
    scenario (``azure``, ``paper``, ``random``, ``toy``), demand (``azure-train``, ``azure-test``,
    ``azure-validation``, ``azure:<day>``, ``synthetic``), period_minutes (divides 1440; 5, 15, 60),
    horizon_hours, sigma (synthetic volatility), noise_sigma (extra noise on trace demand),
    reconfiguration_cost (``"load-time"``: each started replica pays (30 s + weights / (G · 2 GB/s)) of its
    GPUs' price; or a float in $ per started replica), delay_inflation and error_inflation (≥ 1),
    queueing, forecaster (``profile-naive``, ``ewma``), max_candidates, instance (an Instance to use instead
    of the scenario's). ``reset(options=...)`` accepts ``demand`` and ``day`` to pick the next episode's source.

    ## Version History
    * v0: initial release.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(
        self,
        scenario: str = "azure",
        demand: str = "azure-train",
        period_minutes: int = 15,
        horizon_hours: float = 24.0,
        sigma: float = 0.05,
        noise_sigma: float = 0.0,
        reconfiguration_cost: str | float = "load-time",
        delay_inflation: float = 1.0,
        error_inflation: float = 1.0,
        queueing: bool = True,
        forecaster: str = "profile-naive",
        max_candidates: int = 24,
        instance: Instance | None = None,
        render_mode: str | None = None,
    ) -> None:
        if period_minutes < 1 or 1440 % period_minutes:
            raise ValueError(f"period_minutes {period_minutes} must divide 1440 (e.g. 5, 15, 60)")
        periods = horizon_hours * 60.0 / period_minutes
        if periods < 1 or abs(periods - round(periods)) > 1e-9:
            raise ValueError(f"horizon_hours {horizon_hours} must be a positive multiple of the period")
        for name, value in (("delay_inflation", delay_inflation), ("error_inflation", error_inflation)):
            if not (np.isfinite(value) and value >= 1.0):
                raise ValueError(f"{name} {value} outside allowed range [1, inf)")
        if not (sigma >= 0.0 and noise_sigma >= 0.0):
            raise ValueError(f"sigma {sigma} and noise_sigma {noise_sigma} must be ≥ 0")
        if isinstance(reconfiguration_cost, str) and reconfiguration_cost != "load-time":
            raise ValueError(f"reconfiguration_cost {reconfiguration_cost!r}: 'load-time' or $ per started replica")
        if not isinstance(reconfiguration_cost, str) and not reconfiguration_cost >= 0.0:
            raise ValueError(f"reconfiguration_cost {reconfiguration_cost} must be ≥ 0 $ per started replica")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode {render_mode!r} not in {self.metadata['render_modes']}")
        validate_source(demand)

        full = instance if instance is not None else _scenario_instance(scenario)
        self.candidates = select_candidates(full, max_candidates=max_candidates)
        period_hours = period_minutes / 60.0
        self.instance = full.restrict(self.candidates, name=f"{full.name}/candidates").with_demand(
            full.demand_per_hour, period_hours=period_hours
        )
        self.scenario = full.name
        self.demand_source = demand
        self.period_minutes = period_minutes
        self.num_periods = round(periods)
        self.sigma = sigma
        self.noise_sigma = noise_sigma
        self.delay_inflation = delay_inflation
        self.error_inflation = error_inflation
        self.queueing = queueing
        self.render_mode = render_mode
        self.router = Router(self.instance)
        self.forecaster = Forecaster(forecaster, self.instance.demand_per_hour, period_minutes)

        inst = self.instance
        self.max_replicas = np.minimum(inst.max_replicas, MAX_REPLICAS_PER_CANDIDATE).astype(np.int64)
        self.start_cost = self._start_costs(full, reconfiguration_cost)
        self.reward_scale = max(inst.budget_per_hour * period_hours, 1e-9)
        num_types, num_configs = inst.num_query_types, inst.num_configurations
        self.action_space = spaces.MultiDiscrete(self.max_replicas + 1)
        mask_size = int((self.max_replicas + 1).sum())
        self.observation_space = spaces.Dict(
            {
                "time": spaces.Box(-1.0, 1.0, (3,), np.float32),
                "demand": spaces.Box(0.0, DEMAND_OBS_HIGH, (HISTORY_PERIODS * num_types,), np.float32),
                "forecast": spaces.Box(0.0, DEMAND_OBS_HIGH, (num_types,), np.float32),
                "replicas": spaces.Box(0.0, 1.0, (num_configs,), np.float32),
                "slo": spaces.Box(0.0, 1.0, (4,), np.float32),
                "action_mask": spaces.Box(0.0, 1.0, (mask_size,), np.float32),
            }
        )
        self._mask = self._static_mask()
        # Constants of the observation: the mask as float32, the demand and replica normalisers.
        self._mask_obs = self._mask.astype(np.float32)
        self._nominal = np.maximum(inst.demand_per_hour, 1e-9)
        self._replica_scale = np.maximum(self.max_replicas, 1)
        # Constants of the repair: removal order (price descending, ties to the lower index), overall and grouped
        # by GPU type, and for each position of the grouped order the position where its group starts.
        price = inst.replica_price_per_hour
        self._removal_order = np.argsort(-price, kind="stable")
        self._gpu_order = np.lexsort((np.arange(num_configs), -price, inst.config_gpu))
        gpu_of_position = inst.config_gpu[self._gpu_order]
        self._gpu_group_start = np.searchsorted(gpu_of_position, gpu_of_position)
        self._state: _State | None = None

    def _start_costs(self, full: Instance, reconfiguration_cost: str | float) -> np.ndarray:
        """(C,) $ charged per started replica of each candidate."""
        inst = self.instance
        if not isinstance(reconfiguration_cost, str):
            return np.full(inst.num_configurations, float(reconfiguration_cost))
        bytes_per_param = default_catalog().bytes_per_param
        fp16_bytes = bytes_per_param["fp16"]
        weights_gb = inst.model_storage_gb[inst.config_model] * np.array(
            [bytes_per_param[c.precision] / fp16_bytes for c in inst.configurations]
        )
        load_s = STARTUP_S + weights_gb / (inst.gpus_per_replica * LOAD_BANDWIDTH_GB_S)
        return inst.replica_price_per_hour * load_s / 3600.0

    def _static_mask(self) -> np.ndarray:
        """Flat bool mask: count k of candidate c allowed iff k replicas alone fit availability and budget."""
        inst = self.instance
        blocks = []
        for c in range(inst.num_configurations):
            counts = np.arange(self.max_replicas[c] + 1)
            gpus_ok = counts * inst.gpus_per_replica[c] <= inst.gpu_availability[inst.config_gpu[c]]
            budget_ok = counts * inst.replica_price_per_hour[c] <= inst.budget_per_hour
            blocks.append(gpus_ok & budget_ok)
        mask = np.concatenate(blocks)
        mask.setflags(write=False)
        return mask

    def action_masks(self) -> np.ndarray:
        """Flat bool mask over ``MultiDiscrete`` choices, as sb3-contrib's MaskablePPO expects."""
        return self._mask.copy()

    @property
    def state(self) -> _State:
        if self._state is None:
            raise RuntimeError("ProvisioningEnv: call reset() before step()")
        return self._state

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"demand", "day"}
        if unknown:
            raise ValueError(f"reset options {sorted(unknown)} not supported; allowed: ['day', 'demand']")
        source = options.get("demand", self.demand_source)
        if "day" in options:
            source = f"azure:{options['day']}"
        validate_source(source)
        demand = episode_demand(
            self.instance,
            source,
            self.np_random,
            period_minutes=self.period_minutes,
            num_periods=self.num_periods,
            sigma=self.sigma,
            noise_sigma=self.noise_sigma,
        )
        self.forecaster.reset()
        num_types = self.instance.num_query_types
        self._state = _State(
            period=0,
            replicas=np.zeros(self.instance.num_configurations, dtype=np.int64),
            history=np.zeros((HISTORY_PERIODS, num_types)),
            last_slo=np.zeros(4),
            demand=demand,
        )
        forecast = self.forecaster.forecast(0)
        return self._observation(forecast), self._info(forecast, None, 0, 0.0)

    def decode_action(self, action: Any) -> tuple[np.ndarray, int]:
        """Validate an action and apply the coupled-limit repair; returns (replicas, replicas removed)."""
        array = np.asarray(action)
        if array.shape != self.action_space.shape:
            raise ValueError(f"action has shape {array.shape}, expected {self.action_space.shape}")
        integer = np.issubdtype(array.dtype, np.integer)  # finite and whole: skip those checks
        if not integer and (not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array))):
            raise ValueError("action must be finite numbers (replica counts)")
        outside = (array < 0) | (array > self.max_replicas)
        if not integer:
            outside |= array != np.round(array)
        if outside.any():
            bad = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"action[{bad}] = {array[bad]} outside allowed integers [0, {self.max_replicas[bad]}] "
                f"for candidate {self.instance.configurations[bad].name}"
            )
        replicas = array.astype(np.int64)
        return self._repair(replicas)

    def _repair(self, replicas: np.ndarray) -> tuple[np.ndarray, int]:
        """Remove replicas, most expensive running configuration first, until availability and budget hold.

        The documented rule removes one replica at a time from the most expensive running configuration that uses
        the exceeded resource (ties to the lower index). That configuration stays the most expensive until it is
        empty, so the rule empties configurations in price order and stops part-way through one; both steps
        below compute that end state directly (exactly in integers for GPUs, see :func:`_drain` for the budget).
        """
        inst = self.instance
        order = self._gpu_order
        gpus = inst.gpus_per_replica[order]
        running = replicas[order]
        used = running * gpus  # GPUs per position of the grouped order
        excess = np.bincount(inst.config_gpu, weights=replicas * inst.gpus_per_replica, minlength=len(inst.gpus))
        excess = (excess - inst.gpu_availability)[inst.config_gpu[order]]
        before = np.cumsum(used) - used  # GPUs of the positions before, from the start of the order
        still_over = excess - (before - before[self._gpu_group_start])
        remove = np.clip(-(-still_over // gpus), 0, running).astype(np.int64)
        replicas[order] -= remove
        removed = int(remove.sum())
        removed += _drain(replicas, self._removal_order, inst.replica_price_per_hour, inst.budget_per_hour)
        return replicas, removed

    def step(self, action: Any):
        state = self.state
        if state.period >= self.num_periods:
            raise RuntimeError("ProvisioningEnv: episode is over, call reset()")
        replicas, removed = self.decode_action(action)
        demand = state.demand.rates_per_hour[state.period]
        routed = self.router.route(replicas, demand, relax_unmet_cap=True)
        started = np.maximum(replicas - state.replicas, 0)
        outcome = realise(
            self.instance,
            replicas,
            routed.plan.routing,
            routed.plan.unserved,
            delay_inflation=self.delay_inflation,
            error_inflation=self.error_inflation,
            queueing=self.queueing,
            reconfiguration_cost=float(started @ self.start_cost),
        )
        self.forecaster.observe(demand, state.period)
        state.history = np.vstack([state.history[1:], demand])
        busy = replicas > 0
        state.last_slo = np.array(
            [
                outcome.delay_violation_rate,
                outcome.error_violation_rate,
                outcome.unserved_rate,
                float(outcome.utilisation[busy].mean()) if busy.any() else 0.0,
            ]
        )
        state.replicas = replicas
        state.period += 1
        reward = -outcome.total_cost / self.reward_scale
        terminated = state.period >= self.num_periods
        forecast = self.forecaster.forecast(state.period)
        info = self._info(forecast, outcome, removed, float(started.sum()))
        info["demand_per_hour"] = demand.copy()
        return self._observation(forecast), float(reward), terminated, False, info

    def _observation(self, forecast: np.ndarray) -> dict[str, np.ndarray]:
        """The observation of the current period; ``forecast`` (I,) is its demand forecast, requests/hour."""
        state = self.state
        minutes = (state.period * self.period_minutes) % 1440
        angle = 2.0 * np.pi * minutes / 1440.0
        return {
            "time": np.array([np.sin(angle), np.cos(angle), state.period / self.num_periods], dtype=np.float32),
            "demand": np.clip(state.history / self._nominal, 0.0, DEMAND_OBS_HIGH).astype(np.float32).ravel(),
            "forecast": np.clip(forecast / self._nominal, 0.0, DEMAND_OBS_HIGH).astype(np.float32),
            "replicas": (state.replicas / self._replica_scale).astype(np.float32),
            "slo": np.clip(state.last_slo, 0.0, 1.0).astype(np.float32),
            "action_mask": self._mask_obs.copy(),
        }

    def _info(self, forecast: np.ndarray, outcome: Outcome | None, removed: int, started: float) -> dict[str, Any]:
        state = self.state
        info: dict[str, Any] = {
            "period": state.period,
            "demand_label": state.demand.label,
            "forecast_per_hour": forecast,
            "replicas": state.replicas.copy(),
            "action_mask": self._mask.copy(),
            "repaired_replicas": removed,
            "started_replicas": started,
            "reward_scale": self.reward_scale,
        }
        if outcome is not None:
            info["cost"] = dict(outcome.cost)
            info["total_cost"] = outcome.total_cost
            info["delay_violation_rate"] = outcome.delay_violation_rate
            info["error_violation_rate"] = outcome.error_violation_rate
            info["unserved_rate"] = outcome.unserved_rate
            info["slo_violation_rate"] = outcome.slo_violation_rate
            info["utilisation"] = outcome.utilisation
            info["gpus"] = np.bincount(
                self.instance.config_gpu,
                weights=state.replicas * self.instance.gpus_per_replica,
                minlength=len(self.instance.gpus),
            )
        return info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._state is None:
            return None
        state = self.state
        running = [
            f"{self.instance.configurations[c].name}×{state.replicas[c]}" for c in np.flatnonzero(state.replicas)
        ]
        return f"period {state.period}/{self.num_periods}: " + (", ".join(running) or "no replicas")
