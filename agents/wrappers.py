"""Residual action space for learning agents: RL sets the demand headroom (and patience), a planner the replicas.

AGH re-planning on the forecast (``agh-rolling``) provisions for the forecast exactly, with no headroom for
forecast error or queueing. ``HeadroomAction`` lets a policy choose per-query-type demand multipliers instead:
each step the planner plans for ``forecast × multipliers`` and the resulting replicas go to the env.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from servegym.baselines.policies import AGH_REPLANNING, PlannerPolicy
from servegym.envs.provisioning import ProvisioningEnv

HEADROOM_PLANNERS = ("agh", "gh")
"""Planners fast enough to run every step (AGH about 0.1 s, GH a few ms on the default candidates)."""


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
        if not (np.isfinite(low) and np.isfinite(high) and 0.0 < low <= high):
            raise ValueError(f"HeadroomAction: multipliers [low, high] = [{low}, {high}] need 0 < low ≤ high < inf")
        if planner not in HEADROOM_PLANNERS:
            raise ValueError(f"HeadroomAction: planner {planner!r} not one of {list(HEADROOM_PLANNERS)}")
        if not (np.isfinite(max_payback_periods) and max_payback_periods >= 0.0):
            raise ValueError(f"HeadroomAction: max_payback_periods = {max_payback_periods} must be in [0, inf)")
        self.low, self.high = float(low), float(high)
        self.max_payback_periods = float(max_payback_periods)
        num_types = base.instance.num_query_types
        lows, highs = [self.low] * num_types, [self.high] * num_types
        if self.max_payback_periods > 0.0:
            lows.append(0.0)
            highs.append(self.max_payback_periods)
        self.action_space = spaces.Box(np.array(lows, np.float32), np.array(highs, np.float32), dtype=np.float32)
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

    def replicas(self, action: Any) -> np.ndarray:
        """Replica counts (C,) the planner (and switching rule) choose for an action; validates the action."""
        if self._last is None:
            raise RuntimeError("HeadroomAction: call reset() before step()")
        array = np.asarray(action, dtype=float)
        if array.shape != self.action_space.shape:
            raise ValueError(f"HeadroomAction: action has shape {array.shape}, expected {self.action_space.shape}")
        # Compare with the space's float32 bounds, so that every action the space contains is accepted.
        low, high = self.action_space.low.astype(float), self.action_space.high.astype(float)
        bad = np.flatnonzero(~np.isfinite(array) | (array < low) | (array > high))
        if bad.size:
            index = int(bad[0])
            lowest, highest, meaning = self._dimension(index)
            raise ValueError(
                f"HeadroomAction: action[{index}] = {array[index]} outside allowed range [{lowest}, {highest}] "
                f"({meaning})"
            )
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
