"""The mix rule: provision each period from a planner's configuration mix for the forecast's level, in closed form.

:class:`MixProvisioner` takes, once, ``planner``'s plans (GH or AGH) for each of :data:`MIX_LEVELS` × the
nominal (peak) demand (:func:`reference_shares`: the share s_{i,c} of type i's demand routed to configuration c)
and turns them into replicas per request/hour, a_{i,c} = s_{i,c} / (μ_{i,c} · ρ_design). For a period's demand d
(a forecast times multipliers) it takes the mix of the smallest level ≥ Σ_i d_i / Σ_i λ_i (the largest level above
them all) and provisions

    need_c = Σ_i a_{i,c} · d_i,     target_c = ⌈need_c⌉ (clipped to the env's replica limits),

with an optional scale-down keep margin k: a configuration keeps its running replicas r_c while
r_c ≤ ⌈need_c · (1 + k)⌉ (scaling up is never held back), then the planner policies' cold-start rules
(``compensate_cold_starts``) and the env's coupled-limit repair. No planner runs in the loop: a period is one
(I, C) product.

The learned ``scaled`` action space (``servegym.agents.action_wrappers.ScaledPlanAction``) is this provisioner with
the multiplier of each query type and the keep margin chosen by a policy every period. Played with one constant
action it is a rule (:class:`MixRulePolicy`), a bar for the agents that act through it:

- ``gh-mix`` / ``agh-mix``: every multiplier 1, keep margin 0, GH's or AGH's mixes;
- ``tuned-mix``: AGH's mixes (those of the shipped ``scaled`` agents) with one multiplier for every query type and
  a keep margin tuned per setting by :func:`tune_mix_rule` (every point of a grid on the setting's tuning
  episodes, the cheapest finalists replayed on its validation episodes; test episodes are never played), shipped
  in ``baselines/data/mix_rules.json`` (written by ``scripts/tune_mix_rule.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from servegym.baselines.runner.policies import MIX_POLICIES, compensate_cold_starts
from servegym.baselines.runner.tuned_rule import REFERENCE_ENV_ID, mean_episode_cost, shipped_entry
from servegym.envs.instance import Instance
from servegym.envs.provisioning import ProvisioningEnv
from servegym.errors import UsageError

MIX_PLANNERS = ("agh", "gh")
"""Planners whose plans give the mixes."""
MIX_LEVELS = (0.4, 0.6, 0.8, 1.0)
"""Demand levels (fractions of the nominal, peak, demand) at which the mixes are taken.
Chosen among (1.0,), (0.5, 1.0) and these by the constant action m = 1, k = 0 of the ``scaled`` space with GH's
mixes on the five Azure train days (Sun / Mon / Tue / Wed (validation) / Fri), ``Provisioning-v2``, episode seed 0:
$1,442 / 2,069 / 2,275 / 2,084 / 1,945 with the peak mix alone, $1,380 / 2,267 / 2,625 / 2,363 / 2,202 with
(0.5, 1.0), $1,056 / 2,047 / 2,263 / 2,083 / 1,844 with these. (The test days were looked at first, a protocol
slip: Thu / Sat $2,055 / 1,478 with the peak mix, $2,087 / 1,077 with these.)"""
TUNED_MIX = "tuned-mix"
"""Policy name of the tuned mix rule."""
MIX_RULES_FILE = "mix_rules.json"
"""File of ``servegym.baselines``' package data with the tuned mix rule's parameters per environment id."""
TUNING_MULTIPLIERS = tuple(round(0.8 + 0.05 * k, 2) for k in range(11))
"""Grid of the tuned mix rule's multiplier (one for every query type): 0.8 to 1.3 by 0.05, the range of the shipped
``scaled`` agents' multipliers."""
TUNING_KEEP_MARGINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
"""Grid of the tuned mix rule's keep margin (the range of the ``scaled`` action space, [0, 0.5])."""
TUNING_FINALISTS = 3
"""How many of the grid's cheapest points on the tuning episodes are replayed on the validation episodes."""


def reference_shares(instance: Instance, level: float = 1.0, planner: str = "gh") -> np.ndarray:
    """(I, C) the share of each query type's demand that ``planner``'s plan (one of :data:`MIX_PLANNERS`; AGH with
    its default seed 0 and ``policies.AGH_IN_ENV``) for ``level`` × the instance's nominal (peak) demand routes to
    each configuration; rows sum to 1.

    A type the planner leaves unserved (or every type, when it finds no feasible plan) goes wholly to its
    admissible route with the lowest rental per request at the design utilisation (a type with no admissible route
    keeps a zero row: the mix never provisions for it).
    """
    if planner not in MIX_PLANNERS:
        raise ValueError(f"reference_shares: planner {planner!r} not one of {list(MIX_PLANNERS)}")
    from servegym.baselines.heuristics.adaptive import solve_agh
    from servegym.baselines.heuristics.greedy import solve_gh
    from servegym.baselines.runner.policies import AGH_IN_ENV

    scaled = instance.with_demand(np.asarray(instance.demand_per_hour) * level)
    result = solve_agh(scaled, **AGH_IN_ENV) if planner == "agh" else solve_gh(scaled)
    num_types, num_configs = instance.num_query_types, instance.num_configurations
    routing = np.asarray(result.plan.routing, dtype=float) if result.feasible else np.zeros((num_types, num_configs))
    routed = routing.sum(axis=1)
    shares = np.divide(routing, routed[:, None], out=np.zeros_like(routing), where=routed[:, None] > 0)
    capacity = instance.capacity_per_hour * instance.design_utilisation
    per_request = np.divide(
        instance.replica_price_per_hour[None, :], capacity, out=np.full_like(capacity, np.inf), where=capacity > 0
    )
    per_request[~instance.route_allowed] = np.inf
    for i in np.flatnonzero(routed <= 0):
        if np.isfinite(per_request[i]).any():
            shares[i, int(np.argmin(per_request[i]))] = 1.0
    return shares


class MixProvisioner:
    """Replica counts from fixed configuration mixes (module docstring).

    Args:
        env: The ``ProvisioningEnv`` whose candidates, replica limits and cold-start rules apply.
        mix_levels: Increasing demand levels in (0, 1] of the mixes; ``(1.0,)``: the peak mix only.
        planner: One of :data:`MIX_PLANNERS` (AGH costs about 0.1–0.3 s per level here).
        owner: Name in error messages.

    Raises:
        ValueError: Levels that do not increase within (0, 1], or an unknown planner.
    """

    def __init__(
        self,
        env: ProvisioningEnv,
        mix_levels: Sequence[float] = MIX_LEVELS,
        planner: str = "gh",
        owner: str = "MixProvisioner",
    ) -> None:
        levels = np.asarray(mix_levels, dtype=float)
        if (
            not (levels.ndim == 1 and levels.size and (levels > 0).all() and (levels <= 1).all())
            or (np.diff(levels) <= 0).any()
        ):
            raise ValueError(f"{owner}: mix_levels = {tuple(mix_levels)} must increase within (0, 1]")
        if planner not in MIX_PLANNERS:
            raise ValueError(f"{owner}: mix_planner {planner!r} not one of {list(MIX_PLANNERS)}")
        inst = env.instance
        self.env = env
        self.mix_levels = levels
        self.planner = planner
        self.shares = np.stack([reference_shares(inst, level, planner) for level in levels])
        capacity = inst.capacity_per_hour * inst.design_utilisation
        self.replicas_per_request = np.divide(
            self.shares, capacity[None], out=np.zeros_like(self.shares), where=capacity[None] > 0
        )
        self._nominal_total = max(float(np.sum(inst.demand_per_hour)), 1e-9)
        self._max_replicas = np.asarray(env.max_replicas, dtype=np.int64)

    def mix_index(self, demand_per_hour: np.ndarray) -> int:
        """Index of the mix level a demand (I,) is provisioned with: the smallest level ≥ its share of the nominal
        total (the largest level above them all)."""
        share = float(np.sum(demand_per_hour)) / self._nominal_total
        return min(int(np.searchsorted(self.mix_levels, share - 1e-9)), len(self.mix_levels) - 1)

    def need(self, demand_per_hour: np.ndarray) -> np.ndarray:
        """(C,) fractional replicas the mix of the demand's level needs for the demand (I,)."""
        return demand_per_hour @ self.replicas_per_request[self.mix_index(demand_per_hour)]

    def replicas(self, demand_per_hour: np.ndarray, keep_margin: float | None, info: Mapping[str, Any]) -> np.ndarray:
        """Replica counts (C,) for a demand (I,), with the running and pending replicas of ``info`` (the env's
        latest); ``keep_margin`` None or 0 holds nothing back."""
        need = self.need(demand_per_hour)
        target = np.minimum(np.ceil(need - 1e-9).astype(np.int64), self._max_replicas)
        running = np.asarray(info["replicas"], dtype=np.int64)
        if keep_margin is not None:
            keep = np.ceil(need * (1.0 + keep_margin) - 1e-9).astype(np.int64)
            target = np.maximum(target, np.minimum(running, keep))
        pending = np.asarray(info["pending_replicas"], dtype=np.int64)
        return compensate_cold_starts(self.env, target, running, pending)


@dataclass(frozen=True)
class MixRuleParameters:
    """The constant action of the mix rule: ``multiplier`` of every query type's forecast (> 0), the
    ``keep_margin`` (≥ 0) and the ``planner`` of the mixes (one of :data:`MIX_PLANNERS`)."""

    multiplier: float = 1.0
    keep_margin: float = 0.0
    planner: str = "agh"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.multiplier) and self.multiplier > 0.0):
            raise UsageError(f"mix rule: multiplier = {self.multiplier} must be > 0")
        if not (np.isfinite(self.keep_margin) and self.keep_margin >= 0.0):
            raise UsageError(f"mix rule: keep_margin = {self.keep_margin} must be ≥ 0")
        if self.planner not in MIX_PLANNERS:
            raise UsageError(f"mix rule: planner {self.planner!r} not one of {list(MIX_PLANNERS)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str) -> MixRuleParameters:
        """Parameters from a JSON object; errors name ``where`` (file and JSON path) and the field."""
        if not isinstance(values, Mapping):
            raise UsageError(f"{where}: expected an object of parameters, got {type(values).__name__}")
        unknown = sorted(set(values) - {"multiplier", "keep_margin", "planner"})
        if unknown:
            raise UsageError(f"{where}: unknown parameters {unknown}; known: multiplier, keep_margin, planner")
        try:
            return cls(
                multiplier=float(values.get("multiplier", 1.0)),
                keep_margin=float(values.get("keep_margin", 0.0)),
                planner=str(values.get("planner", "agh")),
            )
        except (TypeError, ValueError) as error:
            raise UsageError(f"{where}: {error}") from error
        except UsageError as error:
            raise UsageError(f"{where}: {error}") from error


class MixRulePolicy:
    """The mix rule with a constant action: every query type's forecast × ``multiplier``, ``keep_margin``.

    Args:
        env: The ``ProvisioningEnv``.
        parameters: The constant action and the planner of the mixes.
        name: Display name (default ``<planner>-mix``).
        mix_levels: The mixes' demand levels.
    """

    def __init__(
        self,
        env: ProvisioningEnv,
        parameters: MixRuleParameters = MixRuleParameters(),
        name: str | None = None,
        mix_levels: Sequence[float] = MIX_LEVELS,
    ) -> None:
        self.name = name or f"{parameters.planner}-mix"
        self.fallbacks = 0
        self.mix = MixProvisioner(env, mix_levels, parameters.planner, owner=self.name)
        self._num_types = env.instance.num_query_types
        self.choose(parameters)

    def choose(self, parameters: MixRuleParameters) -> None:
        """Play ``parameters``' multiplier and keep margin from now on (their planner must be the mixes')."""
        if parameters.planner != self.mix.planner:
            raise UsageError(f"{self.name}: built with {self.mix.planner}'s mixes, asked for {parameters.planner}'s")
        self.parameters = parameters
        self._demand: np.ndarray | None = None

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the rule is deterministic and keeps no state between periods."""

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """Replica counts (C,) for the period about to be played."""
        self._demand = np.asarray(info["forecast_per_hour"], dtype=float) * self.parameters.multiplier
        return self.mix.replicas(self._demand, self.parameters.keep_margin, info)

    def decision_record(self) -> dict[str, float]:
        """The last ``act``'s action in the terms of the ``scaled`` space: ``multiplier[i]`` per query type,
        ``keep_margin`` and ``mix_level``; empty before the first act."""
        if self._demand is None:
            return {}
        record = {f"multiplier[{i}]": self.parameters.multiplier for i in range(self._num_types)}
        record["keep_margin"] = self.parameters.keep_margin
        record["mix_level"] = float(self.mix.mix_levels[self.mix.mix_index(self._demand)])
        return record


def shipped_mix_parameters(env_id: str) -> tuple[MixRuleParameters, str]:
    """The tuned parameters for ``env_id`` and the id they were tuned on: ``env_id``'s own, else
    :data:`REFERENCE_ENV_ID`'s with a warning (``tuned_rule.shipped_entry``)."""
    values, tuned_on, where = shipped_entry(MIX_RULES_FILE, env_id, TUNED_MIX)
    return MixRuleParameters.from_mapping(values, where), tuned_on


def make_mix_policy(name: str, env: ProvisioningEnv) -> MixRulePolicy:
    """The mix rule of a name of :data:`MIX_POLICIES`; ``tuned-mix`` plays the shipped parameters of ``env``'s
    registered id."""
    if name == TUNED_MIX:
        env_id = env.spec.id if env.spec is not None else REFERENCE_ENV_ID
        parameters, _ = shipped_mix_parameters(env_id)
        return MixRulePolicy(env, parameters, name=TUNED_MIX)
    if name not in MIX_POLICIES:
        raise ValueError(f"make_mix_policy: {name!r} not one of {list(MIX_POLICIES)}")
    return MixRulePolicy(env, MixRuleParameters(planner=name.removesuffix("-mix")))


@dataclass(frozen=True)
class MixTuningResult:
    """What :func:`tune_mix_rule` chose: the ``parameters``, their mean costs over the tuning and validation
    episodes ($ per episode), and every grid point (multiplier, keep_margin, tuning_cost; the finalists also
    validation_cost)."""

    parameters: MixRuleParameters
    tuning_cost: float
    validation_cost: float
    candidates: tuple[dict[str, float], ...]


def tune_mix_rule(
    env_id: str,
    multipliers: Sequence[float] = TUNING_MULTIPLIERS,
    keep_margins: Sequence[float] = TUNING_KEEP_MARGINS,
    finalists: int = TUNING_FINALISTS,
    planner: str = "agh",
    env_kwargs: Mapping[str, Any] | None = None,
) -> MixTuningResult:
    """Tune the mix rule as the tuned rule is tuned: every (multiplier, keep margin) of the grid on the setting's
    tuning episodes (``servegym.envs.protocol``), the ``finalists`` cheapest replayed on its validation episodes,
    the cheapest there chosen (ties: the earlier grid point). Deterministic; the test episodes are never played.

    Raises:
        UsageError: An empty grid, a grid point out of range, ``finalists`` < 1, or ``env_id`` without a protocol.
    """
    from servegym.envs.protocol import protocol_for

    if not multipliers or not keep_margins or finalists < 1:
        raise UsageError(
            f"tune_mix_rule: multipliers {list(multipliers)} and keep margins {list(keep_margins)} must not be empty "
            f"and finalists = {finalists} must be ≥ 1"
        )
    grid = [MixRuleParameters(float(m), float(k), planner) for m in multipliers for k in keep_margins]
    protocol = protocol_for(env_id)
    env = gym.make(env_id, **dict(env_kwargs or {}))
    try:
        policy = MixRulePolicy(env.unwrapped, grid[0], name=TUNED_MIX)  # type: ignore[arg-type]
        candidates: list[dict[str, float]] = []
        for parameters in grid:
            policy.choose(parameters)
            cost = mean_episode_cost(env, policy, protocol.tuning)  # type: ignore[arg-type]
            candidates.append(
                {"multiplier": parameters.multiplier, "keep_margin": parameters.keep_margin, "tuning_cost": cost}
            )
        ranked = sorted(range(len(grid)), key=lambda k: (candidates[k]["tuning_cost"], k))[:finalists]
        for k in ranked:
            policy.choose(grid[k])
            candidates[k]["validation_cost"] = mean_episode_cost(env, policy, protocol.validation)  # type: ignore[arg-type]
    finally:
        env.close()
    best = min(ranked, key=lambda k: (candidates[k]["validation_cost"], k))
    return MixTuningResult(
        grid[best], candidates[best]["tuning_cost"], candidates[best]["validation_cost"], tuple(candidates)
    )
