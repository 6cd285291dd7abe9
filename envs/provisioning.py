"""The rolling-horizon provisioning environment (MODEL.md §4 and §6): the Gymnasium contract.

The world's parts live in their own modules and are handed to the environment: demand sources
(``demand_source``), the latent drift process (``drift``), cold starts (``cold_start``), the router
(``routing``), the realised outcome and its cost (``outcome``), the masks and repair (``repair``, on the rule
book of ``limits``), and the typed ``info`` (``step_info``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from servegym.envs.candidates import select_candidates
from servegym.envs.catalog import Catalog
from servegym.envs.cold_start import INITIAL_FLEETS, StartingReplicas
from servegym.envs.demand_source import DemandSource, EpisodeDemand, parse_demand_source
from servegym.envs.drift import DEFAULT_DRIFT, NO_DRIFT, Drift, DriftSettings, sample_drift
from servegym.envs.forecast import DEFAULT_FORECASTER, QUANTILE_LEVELS, Forecaster
from servegym.envs.instance import Instance
from servegym.envs.limits import gpus_used
from servegym.envs.observation import ObservationPacker
from servegym.envs.outcome import Outcome, Realiser, start_cost_per_replica
from servegym.envs.repair import ActionRepair
from servegym.envs.routing import Router
from servegym.envs.scenarios import make_instance
from servegym.envs.step_info import StepInfo, outcome_fields
from servegym.errors import ServegymError

OBSERVATION_KEYS = (
    "time",
    "calendar",
    "demand",
    "forecast",
    "forecast_quantiles",
    "replicas",
    "starting",
    "utilisation",
    "slo",
    "action_mask",
)
"""Keys of the observation, in the order of the returned dict."""
HISTORY_PERIODS = 4
"""Past periods of realised demand in the observation."""
DEMAND_OBS_HIGH = 10.0
"""Demand in the observation is divided by the nominal λ and clipped to [0, 10]."""
MAX_REPLICAS_PER_CANDIDATE = 32
"""Upper end of each action dimension (also bounded by the GPU type's availability)."""
MAX_HORIZON_HOURS = 7 * 24.0
"""Longest episode: the Azure trace's full week."""
ROUTERS = ("realised", "nominal")
"""``realised``: ready capacity at realised speed (v1); ``nominal``: rented replicas at catalog speed (v0)."""
DRIFTS: dict[str, DriftSettings] = {"none": NO_DRIFT, "default": DEFAULT_DRIFT}
"""Named drift settings (``drift`` keyword)."""


@functools.lru_cache(maxsize=16)
def _cached_scenario_instance(scenario: str, catalog_dir: str | None) -> Instance:
    return make_instance(scenario, catalog=catalog_dir)


def _catalog(catalog: str | Path | Catalog | None) -> Catalog | None:
    """A Catalog from the env's ``catalog`` keyword (a directory is loaded over the shipped catalog)."""
    if catalog is None or isinstance(catalog, Catalog):
        return catalog
    from servegym.envs.catalog import load_catalog_overrides

    return load_catalog_overrides(catalog)


def _scenario_instance(scenario: str, catalog: str | Path | Catalog | None) -> Instance:
    """The scenario's instance on the shipped catalog, a catalog directory's overrides, or a Catalog object."""
    if isinstance(catalog, Catalog):
        return make_instance(scenario, catalog=catalog)
    return _cached_scenario_instance(scenario, None if catalog is None else str(Path(catalog).resolve()))


class EnvKeywordError(ServegymError, ValueError):
    """A keyword of :class:`ProvisioningEnv` (``gymnasium.make``) has a value of the wrong type or outside its
    allowed range; the message names the keyword and what is allowed."""


@dataclass
class _State:
    """The small mutable state of an episode."""

    period: int
    history: np.ndarray  # (HISTORY_PERIODS, I) realised demand, newest last, requests/hour
    last_slo: np.ndarray  # (4,) delay-violation, error-violation, unserved rates, mean utilisation
    last_utilisation: np.ndarray  # (C,) realised utilisation of the period just played
    demand: EpisodeDemand
    drift: Drift


class ProvisioningEnv(gym.Env):
    """Provision LLM serving replicas period by period under SLOs, on Azure-calibrated or synthetic demand.

    ## Description
    One episode is one planning horizon (default 24 h of 15-minute periods; up to the Azure week). Each step the
    agent sets the number of replicas of every candidate configuration (model, GPU type, precision, TP, PP) for
    the next period. The world (MODEL.md §6) then runs the period:

    - **cold starts**: a replica started for the period is rented from its start but serves only after its
      start-up time S_c (provisioning + engine start + weight loading, ``Instance.startup_s``): (1 − S_c/Δt)⁺ of
      its capacity in its first period, nothing while S_c is not over (``servegym.envs.cold_start``);
    - **routing on what is observable**: the router routes the realised demand over the ready capacity at the
      realised service speed (``router="realised"``); error rates stay nominal, as accuracy is not observable
      online. ``router="nominal"`` is the v0 router (rented replicas, catalog speed);
    - **realised parameters**: service time × delay inflation × latent drift per GPU type, error rate × error
      inflation × latent drift per model (``drift``, seeded and unobserved); overload beyond 98 % utilisation is
      dropped, queueing adds the wait for a batch slot (``servegym.envs.outcome``);
    - **graded SLO outcomes**: delay violations, excess erroneous responses (beyond the error budget) and
      unserved requests, each request counted once, and a price on each.

    ## Action Space
    ``MultiDiscrete(nvec)``: target replicas per candidate configuration, ``nvec[c] = min(32, ⌊A_g / G_c⌋) + 1``.
    Candidates are chosen per instance by ``servegym.envs.candidates.select_candidates`` (default at most 24).
    ``action_masks()`` masks counts that break GPU availability, storage or the budget (rental + storage, the
    rule book of ``servegym.envs.limits``) *on their own*. Coupled limits are enforced by the documented repair
    of ``servegym.envs.repair`` (remove replicas from the most expensive running configuration that uses the
    exceeded resource); ``info["repaired_replicas"]`` counts the removals. Lowering a count stops the replicas
    that are still starting first.

    ## Observation Space
    ``Dict`` of ``Box``es (float32), all normalised:

    | key         | shape         | content                                                            | range   |
    |-------------|---------------|--------------------------------------------------------------------|---------|
    | time        | (3,)          | sin and cos of the time of day, fraction of the episode elapsed    | [-1, 1] |
    | calendar    | (3,)          | sin and cos of the day of week, 1 on Saturday and Sunday           | [-1, 1] |
    | demand      | (4·I,)        | realised demand of the last 4 periods ÷ nominal λ (oldest first;   | [0, 10] |
    |             |               | at reset the source's lead-in, the periods before the episode)      |         |
    | forecast    | (I,)          | forecast of next period's demand ÷ nominal λ                        | [0, 10] |
    | forecast_quantiles | (Q·I,) | its quantiles at ``QUANTILE_LEVELS`` (0.05 … 0.99, Q = 8) ÷ nominal | [0, 10] |
    |             |               | λ, level-major (every type at 0.05, then at 0.1, …)                 |         |
    | replicas    | (C,)          | rented replicas ÷ (nvec − 1)                                        | [0, 1]  |
    | starting    | (C,)          | replicas still starting when the next period begins ÷ (nvec − 1)    | [0, 1]  |
    | utilisation | (C,)          | last period's realised utilisation of each candidate's capacity    | [0, 1]  |
    | slo         | (4,)          | last period's delay- and error-violation and unserved rates,       | [0, 1]  |
    |             |               | mean utilisation of running replicas                               |         |
    | action_mask | (Σ nvec,)     | ``action_masks()`` as 0/1                                           | [0, 1]  |

    ## Rewards
    ``reward = −cost / reward_scale`` where cost = rental + storage + delay penalty + unmet penalty + error
    penalty + start fees in $ over the period, and ``reward_scale`` = budget $/hour × period hours (a period
    that spends the whole budget on rental and nothing else scores −1). ``info["cost"]`` has every part; the
    reward is exactly −Σ parts / scale. The error penalty ψ_i = ``error_penalty_factor`` · φ_i per excess
    erroneous response (default factor 1: a wrong answer is worth no more to the user than no answer).

    ## Starting State
    An episode is one day (or week) of a service that runs around the clock, so by default
    (``initial_fleet="warm"``) the replicas of the first action are already serving when it begins: ready for the
    whole of period 0 (started in the period before the episode, so no start-up loss and no start fee inside it).
    Every later change starts cold. ``initial_fleet="empty"`` is the v2 start: no replicas run, and every replica
    of the first action starts cold.

    ## Episode End
    Terminates after ``horizon_hours`` of periods; never truncated by the environment itself.

    ## Arguments
    scenario (``azure``, ``paper``, ``random``, ``toy``); demand (a ``DemandSource`` or ``azure-train``,
    ``azure-test``, ``azure-validation``, ``azure-week``, ``azure:<day>``, ``synthetic``; see docs/traces.md);
    period_minutes (divides 1440; 5, 15, 60); horizon_hours (≤ 168, what the demand source can fill); sigma
    (synthetic volatility); noise_sigma (extra noise on trace demand); reconfiguration_cost (fixed $ per started
    replica on top of the rental paid while it starts, default 0); cold_start (replicas take S_c to become
    ready, default True); initial_fleet (``warm``, default: the first action's replicas serve at once; ``empty``:
    they start cold, as in v2); router (``realised`` or ``nominal``); delay_inflation and error_inflation (≥ 1, fixed
    stress factors); drift (``none``, ``default`` or a ``DriftSettings``); error_penalty_factor (ψ_i / φ_i ≥ 0);
    queueing; forecaster (``holt-winters`` (default), ``seasonal-naive``, ``profile-naive``, ``ewma``; see
    ``servegym.envs.forecast``); max_candidates; instance (an Instance to use instead of
    the scenario's); catalog (a directory of catalog CSVs overriding or extending the shipped rows by name, or a
    ``Catalog``; docs/catalog.md). ``reset(options=...)`` accepts ``demand`` or ``day`` (not both) to pick the
    next episode's source. A ``trace:PATH`` demand whose file has token columns brings its own query types: with
    the ``azure`` scenario and no ``instance``, the env plays the azure scenario on them
    (``servegym.envs.scenarios.trace_instance``); otherwise the trace drives the instance's types per service or by its
    total load (``TraceDemand``).

    ## Version History
    * v3: performance model version 2 (issue 11: KV-cache precision per tier, measured all-reduce costs, W4A16
      dequantisation, per-layer and per-request overheads, the experts an MoE batch reads, the engine's batch
      cap; docs/model.md), so every instance's capacities, delays and memory moved; an episode begins with its
      first action's fleet already serving (``initial_fleet="warm"``; ``"empty"`` is v2's start) and with the
      demand of the hour before it observed (``EpisodeDemand.lead_in_per_hour``: the forecaster and the
      ``demand`` history start from it instead of from nothing).
    * v2 (no longer registered): forecasts learned from the demand's own history (``holt-winters``: statsmodels
      exponential smoothing with a daily season, fitted on the source's reference days other than the episode's)
      with error quantiles; new observation key ``forecast_quantiles`` and ``info["forecast_quantiles_per_hour"]``;
      episodes from any trace file (``trace:PATH``) and a time of day that follows where the episode starts;
      ``catalog`` keyword.
    * v1 (no longer registered): the world of MODEL.md §6: cold starts, a router on ready capacity at realised
      speed, graded error violations with an error penalty, latent drift, week-long episodes, the budget as
      rental + storage in the masks and repair, pipeline parallelism no longer shortening delays, new observation
      keys (``calendar``, ``starting``, ``utilisation``), typed ``info``.
    * v0: initial release (no longer registered; see docs/env.md).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        scenario: str = "azure",
        demand: str | DemandSource = "azure-train",
        period_minutes: int = 15,
        horizon_hours: float = 24.0,
        sigma: float = 0.05,
        noise_sigma: float = 0.0,
        reconfiguration_cost: float = 0.0,
        cold_start: bool = True,
        initial_fleet: str = "warm",
        router: str = "realised",
        delay_inflation: float = 1.0,
        error_inflation: float = 1.0,
        drift: str | DriftSettings = "none",
        error_penalty_factor: float = 1.0,
        queueing: bool = True,
        forecaster: str = DEFAULT_FORECASTER,
        max_candidates: int = 24,
        instance: Instance | None = None,
        catalog: str | Path | Catalog | None = None,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(period_minutes, bool) or not isinstance(period_minutes, (int, np.integer)):
            raise EnvKeywordError(
                f"period_minutes {period_minutes!r} must be an integer number of minutes dividing 1440"
            )
        if period_minutes < 1 or 1440 % period_minutes:
            raise EnvKeywordError(f"period_minutes {period_minutes} must divide 1440 (e.g. 5, 15, 60)")
        for name, value in (
            ("horizon_hours", horizon_hours),
            ("delay_inflation", delay_inflation),
            ("error_inflation", error_inflation),
            ("sigma", sigma),
            ("noise_sigma", noise_sigma),
            ("error_penalty_factor", error_penalty_factor),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise EnvKeywordError(f"{name} {value!r} must be a number")
        if not (np.isfinite(horizon_hours) and 0.0 < horizon_hours <= MAX_HORIZON_HOURS):
            raise EnvKeywordError(f"horizon_hours {horizon_hours} outside allowed range (0, {MAX_HORIZON_HOURS:g}]")
        periods = horizon_hours * 60.0 / period_minutes
        if periods < 1 or abs(periods - round(periods)) > 1e-9:
            raise EnvKeywordError(f"horizon_hours {horizon_hours} must be a positive multiple of the period")
        for name, value in (("delay_inflation", delay_inflation), ("error_inflation", error_inflation)):
            if not (np.isfinite(value) and value >= 1.0):
                raise EnvKeywordError(f"{name} {value} outside allowed range [1, inf)")
        if not (np.isfinite(sigma) and sigma >= 0.0 and np.isfinite(noise_sigma) and noise_sigma >= 0.0):
            raise EnvKeywordError(f"sigma {sigma} and noise_sigma {noise_sigma} must be finite and ≥ 0")
        if isinstance(reconfiguration_cost, str) or not (
            np.isfinite(reconfiguration_cost) and reconfiguration_cost >= 0.0
        ):
            raise EnvKeywordError(
                f"reconfiguration_cost {reconfiguration_cost!r} must be a finite $ per started replica ≥ 0 (v1 prices "
                "the load time through cold starts; the v0 option 'load-time' is gone)"
            )
        if not (np.isfinite(error_penalty_factor) and error_penalty_factor >= 0.0):
            raise EnvKeywordError(f"error_penalty_factor {error_penalty_factor} must be finite and ≥ 0")
        for name, value in (("cold_start", cold_start), ("queueing", queueing)):
            if not isinstance(value, (bool, np.bool_)):
                raise EnvKeywordError(f"{name} {value!r} must be True or False")
        if router not in ROUTERS:
            raise EnvKeywordError(f"router {router!r} not one of {list(ROUTERS)}")
        if initial_fleet not in INITIAL_FLEETS:
            raise EnvKeywordError(f"initial_fleet {initial_fleet!r} not one of {list(INITIAL_FLEETS)}")
        if isinstance(drift, str):
            if drift not in DRIFTS:
                raise EnvKeywordError(f"drift {drift!r} not one of {list(DRIFTS)} or a DriftSettings")
            drift = DRIFTS[drift]
        elif not isinstance(drift, DriftSettings):
            raise EnvKeywordError(f"drift {drift!r} must be one of {list(DRIFTS)} or a DriftSettings")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise EnvKeywordError(f"render_mode {render_mode!r} not in {self.metadata['render_modes']}")
        self.demand_source = parse_demand_source(demand, sigma=sigma, noise_sigma=noise_sigma)
        self.num_periods = round(periods)
        self._check_horizon(self.demand_source, period_minutes)

        if instance is not None and catalog is not None:
            raise EnvKeywordError("catalog applies to the scenario's instance; pass instance or catalog, not both")
        own = self.demand_source.own_instance(_catalog(catalog)) if instance is None and scenario == "azure" else None
        full = instance if instance is not None else own if own is not None else _scenario_instance(scenario, catalog)
        self.candidates = select_candidates(full, max_candidates=max_candidates)
        period_hours = period_minutes / 60.0
        self.instance = full.restrict(self.candidates, name=f"{full.name}/candidates").with_demand(
            full.demand_per_hour, period_hours=period_hours
        )
        inst = self.instance
        self.scenario = full.name
        self.period_minutes = period_minutes
        self.sigma = sigma
        self.noise_sigma = noise_sigma
        self.delay_inflation = float(delay_inflation)
        self.error_inflation = float(error_inflation)
        self.drift_settings = drift
        self.router_kind = router
        self.cold_start = bool(cold_start)
        self.queueing = bool(queueing)
        self.render_mode = render_mode
        self.error_penalty_per_request = error_penalty_factor * inst.unmet_penalty_per_request
        self.start_fee = float(reconfiguration_cost)
        self.router = Router(inst)
        self.forecaster = Forecaster(forecaster, inst.demand_per_hour, period_minutes)
        startup_s = inst.startup_s if self.cold_start else np.zeros(inst.num_configurations)
        self.initial_fleet = initial_fleet
        self.replicas = StartingReplicas(startup_s, period_minutes * 60.0, initial_fleet)
        self.start_cost = start_cost_per_replica(inst, startup_s, self.start_fee)
        """(C,) $ a started replica costs beyond a ready one (the hold rule's switching cost)."""

        self.max_replicas = np.minimum(inst.max_replicas, MAX_REPLICAS_PER_CANDIDATE).astype(np.int64)
        self.repair = ActionRepair(inst, self.max_replicas)
        self.reward_scale = max(inst.budget_per_hour * period_hours, 1e-9)
        num_types, num_configs = inst.num_query_types, inst.num_configurations
        self.action_space = spaces.MultiDiscrete(self.max_replicas + 1)
        unit = spaces.Box(0.0, 1.0, (num_configs,), np.float32)
        self.observation_space = spaces.Dict(
            {
                "time": spaces.Box(-1.0, 1.0, (3,), np.float32),
                "calendar": spaces.Box(-1.0, 1.0, (3,), np.float32),
                "demand": spaces.Box(0.0, DEMAND_OBS_HIGH, (HISTORY_PERIODS * num_types,), np.float32),
                "forecast": spaces.Box(0.0, DEMAND_OBS_HIGH, (num_types,), np.float32),
                "forecast_quantiles": spaces.Box(0.0, DEMAND_OBS_HIGH, (len(QUANTILE_LEVELS) * num_types,), np.float32),
                "replicas": unit,
                "starting": unit,
                "utilisation": unit,
                "slo": spaces.Box(0.0, 1.0, (4,), np.float32),
                "action_mask": spaces.Box(0.0, 1.0, (self.repair.mask.size,), np.float32),
            }
        )
        nominal = np.maximum(inst.demand_per_hour, 1e-9)  # demand in the observation is ÷ nominal λ
        replica_scale = np.maximum(self.max_replicas, 1).astype(float)  # counts are ÷ (nvec − 1)
        self._packer = ObservationPacker(
            self.observation_space,
            OBSERVATION_KEYS,
            shapes={"demand": (HISTORY_PERIODS, num_types), "forecast_quantiles": (len(QUANTILE_LEVELS), num_types)},
            scales={
                "demand": nominal,
                "forecast": nominal,
                "forecast_quantiles": nominal,
                "replicas": replica_scale,
                "starting": replica_scale,
            },
        )
        self._packer.views["action_mask"][:] = self.repair.mask  # static: written once
        self._last_action: tuple[np.dtype, bytes, np.ndarray, int] | None = None
        """(dtype, bytes, repaired replicas, removed) of the last decoded action: a repeated action is neither
        validated nor repaired again."""
        self._realise = Realiser(inst)
        self._factors: tuple[Drift, np.ndarray, np.ndarray] | None = None  # (drift, (T, C) slowdown, (T, C) error)
        self._state: _State | None = None

    def _check_horizon(self, source: DemandSource, period_minutes: int) -> None:
        """Raise the source's own error (naming what it can fill) when the horizon is longer than it plays."""
        source.check_horizon(period_minutes=period_minutes, num_periods=self.num_periods)

    def action_masks(self) -> np.ndarray:
        """Flat bool mask over ``MultiDiscrete`` choices, as sb3-contrib's MaskablePPO expects."""
        return self.repair.mask.copy()

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
        if "demand" in options and "day" in options:
            raise ValueError("reset options 'day' and 'demand' both given; pass one (day D is demand 'azure:D')")
        source = self.demand_source
        if "demand" in options or "day" in options:
            spec = options["demand"] if "demand" in options else f"azure:{options['day']}"
            source = parse_demand_source(spec, sigma=self.sigma, noise_sigma=self.noise_sigma)
            self._check_horizon(source, self.period_minutes)
        inst = self.instance
        demand = source.sample(inst, self.np_random, period_minutes=self.period_minutes, num_periods=self.num_periods)
        drift = sample_drift(
            self.drift_settings,
            self.np_random,
            num_periods=self.num_periods,
            period_minutes=self.period_minutes,
            num_gpus=len(inst.gpus),
            num_models=len(inst.models),
        )
        self.replicas.reset()
        self.router.reset()
        self._state = _State(
            period=0,
            history=np.zeros((HISTORY_PERIODS, inst.num_query_types)),
            last_slo=np.zeros(4),
            last_utilisation=np.zeros(inst.num_configurations),
            demand=demand,
            drift=drift,
        )
        self.forecaster.begin_episode(demand)  # the history, then the lead-in: what the service saw before period 0
        if demand.lead_in_per_hour is not None:
            recent = demand.lead_in_per_hour[-HISTORY_PERIODS:]
            self._state.history[-len(recent) :] = recent
        forecast = self.forecaster.forecast(self._profile_period(0))
        pending = self.replicas.pending()
        return self._observation(forecast, pending), self._info(forecast, pending, None)

    def _profile_period(self, period: int) -> int:
        """Period ``period`` of the episode counted from 00:00 of its first day (episodes may start later)."""
        return period + self.state.demand.start_minute_of_day // self.period_minutes

    def decode_action(self, action: Any) -> tuple[np.ndarray, int]:
        """Validate an action and apply the coupled-limit repair; returns (replicas, replicas removed).

        The last action and its decoding are remembered: an agent that repeats its action is not validated or
        repaired again (the replicas returned are a new array all the same).
        """
        array = np.asarray(action)
        key = array.tobytes()
        last = self._last_action
        if last is not None and last[1] == key and last[0] == array.dtype and array.shape == last[2].shape:
            return last[2].copy(), last[3]
        replicas, removed = self._validate_and_repair(array)
        self._last_action = (array.dtype, key, replicas.copy(), removed)
        return replicas, removed

    def _validate_and_repair(self, array: np.ndarray) -> tuple[np.ndarray, int]:
        """:meth:`decode_action` without the memory of the last action."""
        if array.shape != self.action_space.shape:
            raise ValueError(f"action has shape {array.shape}, expected {self.action_space.shape}")
        if array.dtype.kind in "iu":  # finite and whole: only the range to check
            if array.min() >= 0 and (array <= self.max_replicas).all():
                return self.repair.repair(array.astype(np.int64))
        elif not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise ValueError("action must be finite numbers (replica counts)")
        outside = (array < 0) | (array > self.max_replicas) | (array != np.round(array))
        if outside.any():
            bad = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"action[{bad}] = {array[bad]} outside allowed integers [0, {self.max_replicas[bad]}] "
                f"for candidate {self.instance.configurations[bad].name}"
            )
        return self.repair.repair(array.astype(np.int64))

    def realised_factors(self, period: int) -> tuple[np.ndarray, np.ndarray]:
        """(C,) service-time and (C,) error multipliers of the candidates in ``period``: stress × drift."""
        drift = self.state.drift
        if self._factors is None or self._factors[0] is not drift:  # once per episode, for every period
            inst = self.instance
            slowdown = self.delay_inflation * drift.slowdown[:, inst.config_gpu]
            error = self.error_inflation * drift.error_factor[:, inst.config_model]
            self._factors = (drift, slowdown, error)
        _, slowdown, error = self._factors
        return slowdown[period], error[period]

    def play_period(
        self, period: int, replicas: np.ndarray, tracker: StartingReplicas, router: Router
    ) -> tuple[Outcome, np.ndarray, np.ndarray]:
        """What period ``period`` of the current episode costs with ``replicas`` (C,) rented (already repaired).

        ``tracker`` holds the replicas by age before the period and is advanced to ``replicas``; ``router`` routes
        the realised demand as the environment's router does (over the ready replicas at the realised speed, or
        over the rented ones at catalog speed for ``router="nominal"``). :meth:`step` plays every period with the
        environment's own tracker and router; a planner that replays candidate schedules passes copies, so the
        episode is not touched. Returns the outcome, the (C,) replicas started and the (C,) ready replicas.
        """
        started = tracker.advance(replicas)
        ready = tracker.ready()
        slowdown, error_factor = self.realised_factors(period)
        demand = self.state.demand.rates_per_hour[period]
        if self.router_kind == "realised":
            routed = router.route(ready, demand, relax_unmet_cap=True, slowdown=slowdown)
        else:
            routed = router.route(replicas, demand, relax_unmet_cap=True)
        outcome = self._realise(
            replicas,
            routed.plan.routing,
            routed.plan.unserved,
            ready=ready,
            slowdown=slowdown,
            error_factor=error_factor,
            error_penalty_per_request=self.error_penalty_per_request,
            queueing=self.queueing,
            start_fee=self.start_fee * float(started.sum()),
        )
        return outcome, started, ready

    def step(self, action: Any):
        state = self.state
        if state.period >= self.num_periods:
            raise RuntimeError("ProvisioningEnv: episode is over, call reset()")
        replicas, removed = self.decode_action(action)
        outcome, started, ready = self.play_period(state.period, replicas, self.replicas, self.router)
        num_started = int(started.sum())
        demand = state.demand.rates_per_hour[state.period]
        self.forecaster.observe(demand, self._profile_period(state.period))
        history = state.history
        history[:-1] = history[1:]
        history[-1] = demand
        busy = ready > 0
        num_busy = np.count_nonzero(busy)
        state.last_slo = np.array(
            [
                outcome.delay_violation_rate,
                outcome.error_violation_rate,
                outcome.unserved_rate,
                float(outcome.utilisation[busy].sum()) / num_busy if num_busy else 0.0,  # np.mean's own division
            ]
        )
        state.last_utilisation = outcome.utilisation
        state.period += 1
        reward = -outcome.total_cost / self.reward_scale
        terminated = state.period >= self.num_periods
        forecast = self.forecaster.forecast(self._profile_period(state.period))
        pending = self.replicas.pending()
        weekday = self._weekday()
        info = self._info(
            forecast,
            pending,
            outcome,
            rented=replicas,
            weekday=weekday,
            demand=demand.copy(),
            ready=ready,
            starting=self.replicas.starting(),
            started=num_started,
            removed=removed,
        )
        return (
            self._observation(forecast, pending, replicas, weekday),
            float(reward),
            terminated,
            False,
            info,
        )

    def _weekday(self) -> int:
        state = self.state
        weekday = state.demand.weekday
        return int(weekday[min(state.period, len(weekday) - 1)])

    def _observation(
        self,
        forecast: tuple[np.ndarray, np.ndarray],
        pending: np.ndarray,
        rented: np.ndarray | None = None,
        weekday: int | None = None,
    ) -> dict[str, np.ndarray]:
        """The observation of the current period; ``forecast`` is its demand forecast (I,) and quantiles (Q, I),
        requests/hour, ``pending`` (C,) the replicas still starting when it begins, ``rented`` (C,) the replicas
        rented now and ``weekday`` its day of week (both computed here when None). Written into the
        :class:`~servegym.envs.observation.ObservationPacker`, which scales (demand ÷ nominal λ, counts ÷ (nvec − 1))
        and clips every key to its bounds."""
        state = self.state
        minutes = (state.demand.start_minute_of_day + state.period * self.period_minutes) % 1440
        angle = 2.0 * np.pi * minutes / 1440.0
        weekday = self._weekday() if weekday is None else weekday
        day_angle = 2.0 * np.pi * weekday / 7.0
        views = self._packer.views
        clock, calendar = views["time"], views["calendar"]
        clock[0], clock[1], clock[2] = math.sin(angle), math.cos(angle), state.period / self.num_periods
        calendar[0], calendar[1], calendar[2] = math.sin(day_angle), math.cos(day_angle), float(weekday >= 5)
        views["demand"][...] = state.history
        views["forecast"][...] = forecast[0]
        views["forecast_quantiles"][...] = forecast[1]
        views["replicas"][...] = self.replicas.rented if rented is None else rented
        views["starting"][...] = pending
        views["utilisation"][...] = state.last_utilisation
        views["slo"][...] = state.last_slo
        return self._packer.pack()

    def _info(
        self,
        forecast: tuple[np.ndarray, np.ndarray],
        pending: np.ndarray,
        outcome: Outcome | None,
        *,
        rented: np.ndarray | None = None,
        weekday: int | None = None,
        demand: np.ndarray | None = None,
        ready: np.ndarray | None = None,
        starting: np.ndarray | None = None,
        started: int = 0,
        removed: int = 0,
    ) -> StepInfo:
        """The ``info`` of the current period: ``forecast``, ``pending``, ``rented`` and ``weekday`` as for the
        observation, and what the period just played gave (``outcome``, its demand, ready and starting replicas,
        starts and repair); without a period played (``reset``) those are zeros."""
        state = self.state
        inst = self.instance
        rented = self.replicas.rented if rented is None else rented
        info: StepInfo = {  # type: ignore[typeddict-item]  (the outcome keys come from outcome_fields)
            "period": state.period,
            "demand_label": state.demand.label,
            "weekday": self._weekday() if weekday is None else weekday,
            "forecast_per_hour": forecast[0],
            "forecast_quantiles_per_hour": forecast[1],
            "demand_per_hour": np.zeros(inst.num_query_types) if demand is None else demand,
            "replicas": rented,
            "ready_replicas": np.zeros(inst.num_configurations) if ready is None else ready,
            "starting_replicas": np.zeros(inst.num_configurations, dtype=np.int64) if starting is None else starting,
            "pending_replicas": pending,
            "started_replicas": started,
            "repaired_replicas": removed,
            "action_mask": self.repair.mask.copy(),
            "gpus": gpus_used(inst, rented),
            "reward_scale": self.reward_scale,
            **outcome_fields(outcome, inst.num_query_types, inst.num_configurations),  # type: ignore[typeddict-item]
        }
        return info

    def render(self) -> str | np.ndarray | None:
        """``ansi``: one line of the running replicas; ``rgb_array``: an (H, W, 3) uint8 picture of the state
        (``servegym.envs.render``); None before ``reset`` or without a render mode."""
        if self.render_mode is None or self._state is None:
            return None
        if self.render_mode == "rgb_array":
            from servegym.envs.render import render_rgb

            return render_rgb(self)
        state = self.state
        rented = self.replicas.rented
        pending = self.replicas.pending()
        running = [
            f"{self.instance.configurations[c].name}×{rented[c]}" + (f" ({pending[c]} starting)" if pending[c] else "")
            for c in np.flatnonzero(rented)
        ]
        return f"period {state.period}/{self.num_periods}: " + (", ".join(running) or "no replicas")
