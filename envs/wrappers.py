"""Wrappers of the provisioning environment: episode totals in ``info``, and an action space for learning agents.

``EpisodeStatistics`` adds the episode's cost parts, SLO rates and GPU-hours to the last step's ``info`` under
flat scalar keys (:data:`EPISODE_INFO_KEYS`), which SB3's ``Monitor(info_keywords=...)`` copies into its episode
record; every registered id applies it (``servegym.envs``). ``DeltaAction`` turns the absolute replica counts
into small moves: per candidate configuration, remove one replica, keep, or add one. The policy then only has to
learn changes, and its masks stay meaningful. ``SLOPricedReward`` charges a learner for every request that misses
an SLO, on top of the cost (a fixed Lagrange price of the SLO-violation rate, for agents that must not buy their
savings with violations).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from servegym.envs.outcome import COST_PARTS, SLO_RATES
from servegym.envs.provisioning import ProvisioningEnv

EPISODE_PREFIX = "episode_"
EPISODE_INFO_KEYS = tuple(
    f"{EPISODE_PREFIX}{name}" for name in ("total_cost", *COST_PARTS, *SLO_RATES, "gpu_hours", "started_replicas")
)
"""Keys :class:`EpisodeStatistics` adds to the last ``info`` of an episode: ``episode_total_cost`` and one per
cost part ($ over the episode), one per SLO rate (share of the episode's demanded requests, request-weighted as
``servegym evaluate`` weighs them), ``episode_gpu_hours`` (GPU-hours) and ``episode_started_replicas``."""

MOVES = (-1, 0, 1)
"""Replica change per candidate for action values 0, 1, 2."""


class EpisodeTotals:
    """Running totals of an episode from each step's ``info``: cost parts ($), demand-weighted SLO rates, GPU-hours
    and started replicas; the episode rows of ``servegym evaluate`` and :class:`EpisodeStatistics` both use it.

    Args:
        period_hours: Length of a period, hours (GPU-hours = GPUs × period length).
    """

    def __init__(self, period_hours: float) -> None:
        self.period_hours = float(period_hours)
        self.costs = dict.fromkeys(COST_PARTS, 0.0)  # $ over the episode
        self.violations = dict.fromkeys(SLO_RATES, 0.0)  # rate × demand, summed: requests/hour
        self.demand = 0.0  # requests/hour summed over periods
        self.gpu_hours = 0.0
        self.started = 0

    def add(self, info: dict[str, Any]) -> float:
        """Take in one step's ``info``; returns the period's total demand, requests/hour."""
        demand = float(np.sum(info["demand_per_hour"]))
        self.demand += demand
        costs, cost = self.costs, info["cost"]
        for part in COST_PARTS:
            costs[part] += cost[part]
        violations = self.violations
        for rate in SLO_RATES:
            violations[rate] += info[rate] * demand
        self.gpu_hours += float(info["gpus"].sum()) * self.period_hours
        self.started += info["started_replicas"]
        return demand

    def totals(self) -> dict[str, Any]:
        """``total_cost`` and the cost parts ($ over the episode), each SLO rate (share of the demanded requests),
        ``gpu_hours`` and ``started_replicas`` (an integer) of the steps taken in so far."""
        weight = max(self.demand, 1e-12)
        return {
            "total_cost": sum(self.costs.values()),
            **self.costs,
            **{rate: value / weight for rate, value in self.violations.items()},
            "gpu_hours": self.gpu_hours,
            "started_replicas": self.started,
        }


class EpisodeStatistics(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Add the episode's totals to the ``info`` of its last step (terminated or truncated), as scalar floats.

    The totals are :data:`EPISODE_INFO_KEYS`, the same sums and request-weighted means as the episode rows of
    ``servegym evaluate`` (:class:`EpisodeTotals`); other steps' ``info`` is passed through unchanged.
    Observation, action and reward are the wrapped env's. Usage with SB3::

        Monitor(env, info_keywords=EPISODE_INFO_KEYS)
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self._period_hours = float(env.unwrapped.instance.period_hours)  # type: ignore[attr-defined]
        self._totals = EpisodeTotals(self._period_hours)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._totals = EpisodeTotals(self._period_hours)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._totals.add(info)
        if terminated or truncated:
            info = {**info, **self.totals()}
        return obs, reward, terminated, truncated, info

    def totals(self) -> dict[str, float]:
        """:data:`EPISODE_INFO_KEYS` of the periods played since the last ``reset``."""
        return {f"{EPISODE_PREFIX}{name}": float(value) for name, value in self._totals.totals().items()}


class SLOPricedReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Charge ``price_per_request`` $ for every request of a period that misses an SLO, on top of its cost.

    ``reward = −(cost + price · m) / reward_scale``, with m = ``slo_violation_rate`` · Σ_i λ_i · Δt the period's
    requests that miss any SLO (delay, error or unserved; each counted once, as ``info`` counts them). The env
    already prices lateness and drops in its cost; this price is an extra term of a learner's objective only, the
    Lagrange multiplier of a bound on the violation rate. Observation, action and ``info`` (its ``cost`` too) are
    the wrapped env's, so scores and evaluations are unchanged. Wrap the env below any action wrapper that strips
    ``info`` (it reads ``slo_violation_rate``, ``demand_per_hour`` and ``reward_scale``).

    Args:
        env: A ``ProvisioningEnv``, possibly wrapped.
        price_per_request: $ per request that misses an SLO, finite and ≥ 0 (0 leaves the reward as it is).

    Raises:
        ValueError: ``price_per_request`` is not a finite number ≥ 0.
    """

    def __init__(self, env: gym.Env, price_per_request: float) -> None:
        if isinstance(price_per_request, bool) or not isinstance(price_per_request, int | float):
            raise ValueError(f"price_per_request = {price_per_request!r} must be a number ($ per request)")
        if not (math.isfinite(price_per_request) and price_per_request >= 0.0):
            raise ValueError(f"price_per_request = {price_per_request} outside allowed range [0, inf) $ per request")
        gym.utils.RecordConstructorArgs.__init__(self, price_per_request=price_per_request)
        gym.Wrapper.__init__(self, env)
        self.price_per_request = float(price_per_request)
        self._period_hours = float(env.unwrapped.instance.period_hours)  # type: ignore[attr-defined]

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        missed = float(info["slo_violation_rate"]) * float(np.sum(info["demand_per_hour"])) * self._period_hours
        return obs, reward - self.price_per_request * missed / info["reward_scale"], terminated, truncated, info


class DeltaAction(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Act by −1/0/+1 replica per candidate configuration, relative to the replicas running now.

    ## Action Space
    ``MultiDiscrete([3] * C)``: value 0 removes one replica, 1 keeps, 2 adds one, per candidate. The target is
    ``clip(running + move, 0, nvec − 1)`` of the base env, which then applies its coupled-limit repair as usual
    (so the next running replicas may be fewer than the target; see ``info["repaired_replicas"]``).

    ## Masks
    :meth:`action_masks` (flat, ``3 · C`` booleans, as sb3-contrib's MaskablePPO expects; found through wrappers
    with ``get_wrapper_attr`` and ``env_method``) forbids −1 where nothing runs and +1 where the count is at
    ``nvec − 1`` or where the base env's mask forbids the next count; "keep" is always allowed. The observation's
    ``action_mask`` entry is replaced by this mask (so it stays the same array as ``action_masks()``); ``info``
    is passed through unchanged and so still carries the base env's mask.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        base: ProvisioningEnv = env.unwrapped  # type: ignore[assignment]
        if not isinstance(base, ProvisioningEnv):
            raise TypeError(f"DeltaAction wraps a ProvisioningEnv, got {type(base).__name__}")
        self._nvec = np.asarray(env.action_space.nvec, dtype=np.int64)
        num_configs = len(self._nvec)
        self.action_space = spaces.MultiDiscrete(np.full(num_configs, len(MOVES), dtype=np.int64))
        self.observation_space = spaces.Dict(
            {
                **env.observation_space.spaces,
                "action_mask": spaces.Box(0.0, 1.0, (len(MOVES) * num_configs,), np.float32),
            }
        )
        # base_allows[c, k]: the base mask allows count k of candidate c (k in 0 .. max nvec; False beyond nvec).
        offsets = np.concatenate([[0], np.cumsum(self._nvec)[:-1]])
        self._base_allows = np.zeros((num_configs, int(self._nvec.max()) + 1), dtype=bool)
        base_mask = base.action_masks()
        for c, (offset, size) in enumerate(zip(offsets, self._nvec, strict=True)):
            self._base_allows[c, :size] = base_mask[offset : offset + size]
        self._rows = np.arange(num_configs)

    def _running(self) -> np.ndarray:
        return self.env.unwrapped.replicas.rented  # type: ignore[attr-defined]

    def action_masks(self) -> np.ndarray:
        """Flat bool mask (3 · C,) over the moves, candidate-major: [−1, keep, +1] of candidate 0, then 1, …"""
        running = self._running()
        mask = np.ones((len(self._nvec), len(MOVES)), dtype=bool)
        mask[:, 0] = running > 0
        mask[:, 2] = (running < self._nvec - 1) & self._base_allows[self._rows, np.minimum(running + 1, self._nvec)]
        return mask.ravel()

    def target(self, action: Any) -> np.ndarray:
        """Replica counts (C,) for the base env: running replicas moved by ``action``, clipped to its space."""
        array = np.asarray(action)
        if array.shape != self.action_space.shape:
            raise ValueError(f"DeltaAction: action has shape {array.shape}, expected {self.action_space.shape}")
        if not np.issubdtype(array.dtype, np.integer) and not (
            np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array))
        ):
            raise ValueError("DeltaAction: action must be whole numbers in {0, 1, 2} (remove, keep, add)")
        bad = np.flatnonzero((array < 0) | (array >= len(MOVES)))
        if bad.size:
            raise ValueError(f"DeltaAction: action[{bad[0]}] = {array[bad[0]]} outside allowed integers [0, 2]")
        return np.clip(self._running() + array.astype(np.int64) - 1, 0, self._nvec - 1)

    def observation(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The base env's observation with its ``action_mask`` entry replaced by :meth:`action_masks`."""
        return {**obs, "action_mask": self.action_masks().astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self.observation(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(self.target(action))
        return self.observation(obs), reward, terminated, truncated, info
