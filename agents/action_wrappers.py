"""Residual action space for learning agents: RL sets the demand headroom (and patience), a planner the replicas.

AGH re-planning on the forecast (``agh-rolling``) provisions for the forecast exactly, with no headroom for
forecast error or queueing. ``HeadroomAction`` lets a policy choose per-query-type demand multipliers instead:
each step the planner plans for ``forecast × multipliers`` and the resulting replicas go to the env.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from servegym import numerics
from servegym.baselines.runner.mix_rule import MIX_LEVELS, MixProvisioner
from servegym.baselines.runner.policies import AGH_REPLANNING, PlannerPolicy
from servegym.envs.outcome import SLO_RATES
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.wrappers import EPISODE_INFO_KEYS

HEADROOM_PLANNERS = ("agh", "gh")
"""Planners fast enough to run every step (AGH about 0.1 s, GH a few ms on the default candidates)."""


def _check_multipliers(wrapper: str, low: float, high: float) -> None:
    if not (np.isfinite(low) and np.isfinite(high) and 0.0 < low <= high):
        raise ValueError(f"{wrapper}: multipliers [low, high] = [{low}, {high}] need 0 < low ≤ high < inf")


def _multiplier_space(num_types: int, low: float, high: float, extra_high: float) -> spaces.Box:
    """Box of one demand multiplier in [low, high] per query type, plus one dimension in [0, extra_high] when
    ``extra_high`` > 0."""
    lows, highs = [low] * num_types, [high] * num_types
    if extra_high > 0.0:
        lows.append(0.0)
        highs.append(extra_high)
    return spaces.Box(np.array(lows, np.float32), np.array(highs, np.float32), dtype=np.float32)


def _checked_action(
    wrapper: str, action: Any, space: spaces.Box, dimension: Callable[[int], tuple[float, float, str]]
) -> np.ndarray:
    """``action`` as a float array, or ``ValueError`` naming the first dimension that is NaN or outside the space.

    Compared with the space's float32 bounds, so that every action the space contains is accepted; ``dimension``
    gives a dimension's bounds and meaning for the message."""
    array = np.asarray(action, dtype=float)
    if array.shape != space.shape:
        raise ValueError(f"{wrapper}: action has shape {array.shape}, expected {space.shape}")
    bad = np.flatnonzero(~np.isfinite(array) | (array < space.low) | (array > space.high))
    if bad.size:
        index = int(bad[0])
        lowest, highest, meaning = dimension(index)
        raise ValueError(
            f"{wrapper}: action[{index}] = {array[index]} outside allowed range [{lowest}, {highest}] ({meaning})"
        )
    return array


class HeadroomAction(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Act by demand multipliers per query type (and optionally a switching patience); a planner sets replicas.

    ## Action Space
    ``Box(low, high, (I,), float32)``: multiplier of each query type's forecast (``info["forecast_per_hour"]``
    of the previous ``reset``/``step``). Each step plans with ``planner`` on the env's candidate instance with
    demand ``forecast × multipliers``, exactly as the ``<planner>-rolling`` baseline does on the forecast: it
    re-plans with the unmet cap lifted when no feasible plan exists, then falls back to its last replicas
    (``fallbacks`` counts such steps), and clips to the base action space. Multipliers of 1 therefore reproduce
    ``<planner>-rolling``.

    With ``max_payback_periods`` > 0 the space has I + 1 dimensions: the last is a payback horizon in
    [0, max_payback_periods] periods, and the running replicas stay unless the new plan pays back the replicas it
    starts within that horizon (``baselines.policies.SwitchRule``, judged on ``forecast × multipliers``;
    ``holds`` counts the steps that kept the running replicas). Multipliers of 1 with a horizon of
    ``HOLD_PAYBACK_PERIODS`` reproduce ``<planner>-hold``; a horizon of 0 is plain re-planning.

    NaN or out-of-range actions raise ``ValueError`` naming the dimension.

    ## Seeding
    The planner's seeds come from ``np.random.default_rng(seed)``, re-created at every ``reset`` from the reset
    seed (or the constructor's ``seed`` when the reset has none), as ``PlannerPolicy.reset`` does.

    Observation, reward and ``info`` are the base env's, unchanged; ``info["replicas"]`` shows the plan after the
    env's coupled-limit repair.

    Args:
        env: A ``ProvisioningEnv``, possibly wrapped.
        low: Lowest multiplier (> 0).
        high: Highest multiplier (≥ low).
        seed: Default seed of the planner's random starts.
        planner: One of :data:`HEADROOM_PLANNERS`.
        max_payback_periods: Largest payback horizon the policy may choose, periods; 0 leaves it out of the action.
    """

    def __init__(
        self,
        env: gym.Env,
        low: float = 0.8,
        high: float = 2.0,
        seed: int = 0,
        planner: str = "agh",
        max_payback_periods: float = 0.0,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, low=low, high=high, seed=seed, planner=planner, max_payback_periods=max_payback_periods
        )
        gym.Wrapper.__init__(self, env)
        base: ProvisioningEnv = env.unwrapped  # type: ignore[assignment]
        if not isinstance(base, ProvisioningEnv):
            raise TypeError(f"HeadroomAction wraps a ProvisioningEnv, got {type(base).__name__}")
        _check_multipliers("HeadroomAction", low, high)
        if planner not in HEADROOM_PLANNERS:
            raise ValueError(f"HeadroomAction: planner {planner!r} not one of {list(HEADROOM_PLANNERS)}")
        if not (np.isfinite(max_payback_periods) and max_payback_periods >= 0.0):
            raise ValueError(f"HeadroomAction: max_payback_periods = {max_payback_periods} must be in [0, inf)")
        self.low, self.high = float(low), float(high)
        self.max_payback_periods = float(max_payback_periods)
        num_types = base.instance.num_query_types
        self.action_space = _multiplier_space(num_types, self.low, self.high, self.max_payback_periods)
        self._num_types = num_types
        self._seed = seed
        self._planner = PlannerPolicy(base, planner, "rolling", seed, agh_settings=AGH_REPLANNING)
        self.holds = 0
        self._last: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None

    @property
    def fallbacks(self) -> int:
        """Steps of this episode whose plan needed the lifted unmet cap or fell back to the last replicas."""
        return self._planner.fallbacks

    def _dimension(self, index: int) -> tuple[float, float, str]:
        """Bounds and meaning of one action dimension, for error messages."""
        if index < self._num_types:
            return self.low, self.high, f"demand multiplier of query type {index}"
        return 0.0, self.max_payback_periods, "payback horizon, periods"

    def decision(self, action: np.ndarray) -> dict[str, float]:
        """What an action of this wrapper's space decides, by name: ``multiplier[i]`` per query type and, with a
        payback dimension, ``payback_periods``."""
        record = {f"multiplier[{i}]": float(action[i]) for i in range(self._num_types)}
        if self.max_payback_periods > 0.0:
            record["payback_periods"] = float(action[self._num_types])
        return record

    def replicas(self, action: Any) -> np.ndarray:
        """Replica counts (C,) the planner (and switching rule) choose for an action; validates the action."""
        if self._last is None:
            raise RuntimeError("HeadroomAction: call reset() before step()")
        array = _checked_action("HeadroomAction", action, self.action_space, self._dimension)
        _, info = self._last
        demand = np.asarray(info["forecast_per_hour"], dtype=float) * array[: self._num_types]
        self._planner.observe(info)
        payback = float(array[self._num_types]) if self.max_payback_periods > 0.0 else 0.0
        holds_before = self._planner.holds
        chosen = self._planner.decide(demand, payback)
        self.holds += self._planner.holds - holds_before
        return chosen

    def observe(self, obs: dict[str, np.ndarray], info: dict[str, Any], seed: int | None = None) -> None:
        """Record the base env's latest observation and ``info``, which :meth:`replicas` plans from.

        ``reset`` and ``step`` call it; so does a policy adapter that steps the base env itself and uses this
        wrapper only to turn actions into replicas. ``seed`` (given at the first observation of an episode)
        restarts the planner's random starts, as ``reset`` does.
        """
        if seed is not None:
            self._planner.reset(seed)
            self.holds = 0
        self._last = (obs, info)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.observe(obs, info, seed=self._seed if seed is None else seed)
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(self.replicas(action))
        self.observe(obs, info)
        return obs, reward, terminated, truncated, info


class UnitBoxAction(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Act in [−1, 1] on an env whose action space is a bounded ``Box`` (e.g. :class:`HeadroomAction`).

    SB3's Gaussian policies start centred on 0 with unit spread, so they expect symmetric actions. The action is
    mapped affinely onto the inner space and clipped to its (float32) bounds: gymnasium's ``RescaleAction`` can
    overshoot them by one float32 step (e.g. 2.0000002 for a bound of 2.0), which :class:`HeadroomAction`
    rightly rejects. Actions outside [−1, 1] are clipped first, as SB3 does.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        inner = env.action_space
        if not (isinstance(inner, spaces.Box) and inner.is_bounded()):
            raise TypeError(f"UnitBoxAction wraps an env with a bounded Box action space, got {inner}")
        self._low, self._high = inner.low.astype(float), inner.high.astype(float)
        self.action_space = spaces.Box(-1.0, 1.0, inner.shape, np.float32)

    def action(self, action: Any) -> np.ndarray:
        """The inner action for a unit action: −1 → low, 1 → high, linear in between."""
        unit = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        inner = self._low + 0.5 * (unit + 1.0) * (self._high - self._low)
        return np.clip(inner, self._low, self._high).astype(self.env.action_space.dtype)


SCALED_OBSERVATION_KEYS = ("forecast_error", "gpu_utilisation")
"""Observation entries :class:`ScaledPlanAction` adds to the base env's (which loses ``action_mask``)."""
LEAN_INFO_KEYS = ("period", "total_cost", "reward_scale", *SLO_RATES)
"""The scalar ``info`` entries :class:`ScaledPlanAction` returns with ``lean_info`` (plus the episode totals of
``EPISODE_INFO_KEYS`` at an episode's last step)."""
FORECAST_ERROR_BOUND = 2.0
"""The ``forecast_error`` entries (log ratios) are clipped to [−bound, bound] (a factor of e² ≈ 7.4 either way)."""


class ScaledPlanAction(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Act by demand multipliers per query type on fixed configuration mixes; replicas follow in closed form.

    At construction the wrapper takes the configuration mix of ``mix_planner``'s plan (GH by default, or AGH) for
    each of ``mix_levels`` × the nominal (peak) demand (:func:`reference_shares`: share s_{i,c} of type i's demand
    routed to configuration c) and turns it into replicas per request/hour, a_{i,c} = s_{i,c} / (μ_{i,c} · ρ_design).
    Each step, with the forecast f_i of ``info["forecast_per_hour"]`` and the policy's multipliers m_i, the demand
    d_i = f_i · m_i picks the mix of the smallest level ≥ Σ_i d_i / Σ_i λ_i (the largest level above them all), and
    the replicas that mix needs are

        need_c = Σ_i a_{i,c} · d_i,        target_c = ⌈need_c⌉ (clipped to the base action space),

    which at m = 1 and the nominal demand is the mix planner's own plan. No planner runs: a step is a (I, C)
    product, so the wrapper costs microseconds and training runs at the speed of the env and the policy. The
    provisioning is ``servegym.baselines.runner.mix_rule.MixProvisioner``'s; played with one constant action it is
    the ``agh-mix`` / ``tuned-mix`` baselines, the bar for agents that act through this space.

    ## Action Space
    ``Box(low, high, (I,), float32)`` of multipliers; with ``max_keep_margin`` > 0 one more dimension k in
    [0, max_keep_margin], a scale-down hysteresis: a configuration keeps its running replicas r_c as long as
    r_c ≤ ⌈need_c · (1 + k)⌉ (scaling up is never held back), i.e. ``max(target_c, min(r_c, ⌈need_c (1 + k)⌉))``.
    Then the cold-start rules of the planner policies (``compensate_cold_starts``: over-start by 1/F where the
    target grows, make before break while replicas start) and the env's coupled-limit repair apply.
    NaN or out-of-range actions raise ``ValueError`` naming the dimension.

    ## Observation Space
    The base env's ``Dict`` without ``action_mask`` (static, and meaningless for a Box action), plus
    (:data:`SCALED_OBSERVATION_KEYS`):

    - ``forecast_error`` (2·I,): per query type, log(realised ÷ forecast) of the period just played, then the mean
      of that log ratio over the episode so far (0 at reset), clipped to ±:data:`FORECAST_ERROR_BOUND`;
    - ``gpu_utilisation`` (G,): last period's realised utilisation per GPU type, the mean over its candidates
      weighted by their ready GPUs (0 where none was ready).

    The base observation already carries the day of week (``calendar``), the replicas still starting
    (``starting``) and the realised utilisation per candidate (``utilisation``).

    Reward is the base env's. ``info`` is the base env's, unchanged, unless ``lean_info``: then ``step`` returns only
    :data:`LEAN_INFO_KEYS` and, at an episode's end, the episode totals (``EPISODE_INFO_KEYS``, what ``Monitor`` and
    the trainer's callbacks read), because SB3's ``DummyVecEnv`` deep-copies every step's ``info`` (about 40 µs for
    the full one, an eighth of an env step); :meth:`observe` and :meth:`replicas` still use the full ``info``.
    Deterministic: no random numbers are drawn.

    Args:
        env: A ``ProvisioningEnv``, possibly wrapped.
        low: Lowest multiplier (> 0).
        high: Highest multiplier (≥ low).
        max_keep_margin: Largest scale-down hysteresis k; 0 leaves the dimension out of the action.
        lean_info: ``step`` returns the scalar ``info`` entries only.
        mix_levels: Increasing demand levels in (0, 1] of the reference mixes; ``(1.0,)``: the peak mix only.
        mix_planner: Planner whose plans give the mixes, one of :data:`HEADROOM_PLANNERS` (AGH's cost about
            0.1–0.3 s per level at construction).
    """

    def __init__(
        self,
        env: gym.Env,
        low: float = 0.8,
        high: float = 1.6,
        max_keep_margin: float = 0.5,
        lean_info: bool = False,
        mix_levels: tuple[float, ...] = MIX_LEVELS,
        mix_planner: str = "gh",
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            low=low,
            high=high,
            max_keep_margin=max_keep_margin,
            lean_info=lean_info,
            mix_levels=mix_levels,
            mix_planner=mix_planner,
        )
        gym.Wrapper.__init__(self, env)
        base: ProvisioningEnv = env.unwrapped  # type: ignore[assignment]
        if not isinstance(base, ProvisioningEnv):
            raise TypeError(f"ScaledPlanAction wraps a ProvisioningEnv, got {type(base).__name__}")
        _check_multipliers("ScaledPlanAction", low, high)
        if not (np.isfinite(max_keep_margin) and max_keep_margin >= 0.0):
            raise ValueError(f"ScaledPlanAction: max_keep_margin = {max_keep_margin} must be in [0, inf)")
        self.mix = MixProvisioner(base, mix_levels, mix_planner, owner="ScaledPlanAction")
        self.mix_levels = self.mix.mix_levels
        self.mix_planner = mix_planner
        self.shares = self.mix.shares
        """(L, I, C) the reference plans' routing shares per mix level (:func:`reference_shares`)."""
        self.replicas_per_request = self.mix.replicas_per_request
        """(L, I, C) a_{i,c} per mix level: replicas of c per request/hour of type i."""
        self.low, self.high = float(low), float(high)
        self.max_keep_margin = float(max_keep_margin)
        inst = base.instance
        self._num_types = inst.num_query_types
        self.action_space = _multiplier_space(self._num_types, self.low, self.high, self.max_keep_margin)
        num_gpus = len(inst.gpus)
        self._config_gpu = np.asarray(inst.config_gpu)
        self._gpus_per_replica = np.asarray(inst.gpus_per_replica, dtype=float)
        self._num_gpus = num_gpus
        spaces_in = {key: space for key, space in env.observation_space.spaces.items() if key != "action_mask"}
        bound = FORECAST_ERROR_BOUND
        entries = {
            **spaces_in,
            "forecast_error": spaces.Box(-bound, bound, (2 * self._num_types,), np.float32),
            "gpu_utilisation": spaces.Box(0.0, 1.0, (num_gpus,), np.float32),
        }
        self.lean_info = bool(lean_info)
        self.observation_space = spaces.Dict(entries)
        self._info: dict[str, Any] | None = None
        self._forecast = np.zeros(self._num_types)  # forecast made for the period about to be played
        self._error_sum = np.zeros(self._num_types)
        self._error_count = 0
        self._extra = np.zeros(2 * self._num_types + num_gpus)

    def _dimension(self, index: int) -> tuple[float, float, str]:
        if index < self._num_types:
            return self.low, self.high, f"demand multiplier of query type {index}"
        return 0.0, self.max_keep_margin, "scale-down keep margin"

    def decision(self, action: np.ndarray) -> dict[str, float]:
        """What an action of this wrapper's space decides for the period about to be played, by name:
        ``multiplier[i]`` per query type, ``keep_margin`` (with that dimension) and ``mix_level``, the level ℓ
        whose mix provisions ``forecast × multipliers``."""
        multipliers = np.asarray(action[: self._num_types], dtype=float)
        record = {f"multiplier[{i}]": float(m) for i, m in enumerate(multipliers)}
        if self.max_keep_margin > 0.0:
            record["keep_margin"] = float(action[self._num_types])
        record["mix_level"] = float(self.mix_levels[self.mix_index(self._forecast * multipliers)])
        return record

    def mix_index(self, demand_per_hour: np.ndarray) -> int:
        """Index of the mix level a demand (I,) is provisioned with (``MixProvisioner.mix_index``)."""
        return self.mix.mix_index(demand_per_hour)

    def need(self, multipliers: np.ndarray) -> np.ndarray:
        """(C,) fractional replicas the reference mix needs for ``forecast × multipliers``."""
        return self.mix.need(self._forecast * multipliers)

    def replicas(self, action: Any) -> np.ndarray:
        """Replica counts (C,) for an action (module docstring of the class); validates the action."""
        if self._info is None:
            raise RuntimeError("ScaledPlanAction: call reset() before step()")
        array = _checked_action("ScaledPlanAction", action, self.action_space, self._dimension)
        keep = float(array[self._num_types]) if self.max_keep_margin > 0.0 else None
        return self.mix.replicas(self._forecast * array[: self._num_types], keep, self._info)

    def observe(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        """Take in the base env's latest ``info`` (``reset`` and ``step`` call it; so does a policy adapter that
        steps the base env itself). ``info["period"]`` 0 starts a new episode's statistics."""
        realised = np.asarray(info["demand_per_hour"], dtype=float)
        extra = self._extra
        num_types = self._num_types
        if info["period"] == 0:
            self._error_sum[:] = 0.0
            self._error_count = 0
            extra[: 2 * num_types] = 0.0
        else:
            ratio = numerics.log(np.maximum(realised, 1e-6) / np.maximum(self._forecast, 1e-6))
            np.clip(ratio, -FORECAST_ERROR_BOUND, FORECAST_ERROR_BOUND, out=ratio)
            self._error_sum += ratio
            self._error_count += 1
            extra[:num_types] = ratio
            extra[num_types : 2 * num_types] = self._error_sum / self._error_count
        ready_gpus = np.asarray(info["ready_replicas"], dtype=float) * self._gpus_per_replica
        utilisation = np.asarray(info["utilisation"], dtype=float)
        busy = np.bincount(self._config_gpu, weights=ready_gpus * utilisation, minlength=self._num_gpus)
        total = np.bincount(self._config_gpu, weights=ready_gpus, minlength=self._num_gpus)
        extra[2 * num_types :] = np.divide(busy, total, out=np.zeros_like(busy), where=total > 0)
        self._forecast = np.asarray(info["forecast_per_hour"], dtype=float).copy()
        self._info = info

    def observation(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The base observation without ``action_mask``, with the entries :meth:`observe` computed."""
        extra = self._extra.astype(np.float32)
        num_types = self._num_types
        out = {key: value for key, value in obs.items() if key != "action_mask"}
        out["forecast_error"] = extra[: 2 * num_types]
        out["gpu_utilisation"] = np.clip(extra[2 * num_types :], 0.0, 1.0)
        return out

    def _returned_info(self, info: dict[str, Any]) -> dict[str, Any]:
        if not self.lean_info:
            return info
        return {key: info[key] for key in (*LEAN_INFO_KEYS, *EPISODE_INFO_KEYS) if key in info}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.observe(obs, info)
        return self.observation(obs), self._returned_info(info)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(self.replicas(action))
        self.observe(obs, info)
        return self.observation(obs), reward, terminated, truncated, self._returned_info(info)
