"""The tuned rule: the strongest non-learned policy after its parameters are tuned, the bar a learner must beat.

A reinforcement-learning benchmark that reports agents only against untuned baselines overstates them: the most
careful published comparison (RLScale-Bench) found a calibrated rule cheapest on every workload. ``tuned-rule``
is that calibrated rule here: the ``hold`` / ``quantile-hold`` re-planner of :mod:`servegym.baselines.runner.policies`
with five parameters searched instead of fixed (:class:`RuleParameters`):

- ``forecast``: plan on the point forecast or on a quantile of the forecast distribution;
- ``quantile_level``: the forecast quantile every query type is planned at (the untuned rule uses the newsvendor
  level, 0.99 on the shipped scenarios);
- ``headroom``: a multiplier on the planned demand (below 1 plans under it, above 1 adds a margin);
- ``payback_periods``: the switching hysteresis (keep the running replicas unless a new plan pays back its
  start-ups within this many periods; 0 re-plans every period);
- ``drift_alpha``: the weight of the newest period in the online drift correction of the ``adaptive`` mode
  (:class:`~servegym.baselines.runner.policies.DriftEstimate`); 0 plans on the catalog as it is.

The planner inside is GH (``planner``), the fastest: tuning plays hundreds of episodes.

:func:`tune_rule` is the documented search (docs/benchmark.md, "The tuned-rule bar"): Optuna's TPE sampler,
seeded, sequential trials, each trial's objective the mean total cost over the setting's tuning episodes (the
train days other than the validation day). The first trials are the untuned rules the space contains
(:data:`UNTUNED_RULES`), so the search starts from them and its best tuning cost is never above theirs. The
``finalists`` cheapest trials are replayed on the validation episodes and the cheapest there is frozen. The frozen
parameters of every registered setting ship in ``baselines/data/tuned_rules.json`` (written by
``scripts/tune_rule.py``) and are what ``make_policy("tuned-rule", env)`` plays.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from servegym.baselines.runner.policies import PLANNERS, DriftEstimate, PlannerPolicy
from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.protocol import Episode
from servegym.envs.provisioning import ProvisioningEnv
from servegym.errors import UsageError
from servegym.tuning import completed_trials, is_waiting, open_study, require_optuna, seed_sampler

TUNED_RULE = "tuned-rule"
"""Policy name of the tuned rule."""
TUNED_RULES_FILE = "tuned_rules.json"
"""File of ``servegym.baselines``' package data that holds the frozen parameters per environment id."""
REFERENCE_ENV_ID = DEFAULT_ENV_ID
"""Setting whose parameters a setting without its own tuned parameters plays (with a warning)."""

SEARCH_SPACE: dict[str, tuple[float, float]] = {
    "quantile_level": (0.5, 0.99),
    "headroom": (0.85, 1.3),
    "payback_periods": (0.0, 16.0),
    "drift_alpha": (0.0, 0.5),
}
"""Allowed range of each numeric parameter, [low, high]; the search draws every parameter uniformly in it
(``drift_alpha``: 0, i.e. off, with probability 1/2, else uniform in (0.02, 0.5])."""
MIN_DRIFT_ALPHA = 0.02
"""Smallest drift weight the search tries when the correction is on (half-life ≈ 35 periods)."""
FORECASTS = ("point", "quantile")
"""What the rule plans on: the point forecast (``info["forecast_per_hour"]``) or a quantile of the forecast
distribution (``info["forecast_quantiles_per_hour"]``)."""


@dataclass(frozen=True)
class RuleParameters:
    """The parameters of the tuned rule (module docstring); the defaults are the untuned ``gh-quantile-hold``'s
    except ``quantile_level`` (which the untuned rule sets per type by the newsvendor rule).

    Attributes:
        forecast: ``"point"`` or ``"quantile"`` (:data:`FORECASTS`).
        quantile_level: Forecast quantile planned at when ``forecast`` is ``"quantile"``, in [0.5, 0.99].
        headroom: Multiplier on the quantile demand, in [0.85, 1.3].
        payback_periods: Switching hysteresis in periods, in [0, 16]; 0 never holds.
        drift_alpha: Weight of the newest period in the drift correction, 0 (off) or in [0.02, 0.5].
        planner: The planner inside, one of ``gh``, ``agh``, ``milp``.
    """

    forecast: str = "quantile"
    quantile_level: float = 0.99
    headroom: float = 1.0
    payback_periods: float = 4.0
    drift_alpha: float = 0.0
    planner: str = "gh"

    def __post_init__(self) -> None:
        for name, (low, high) in SEARCH_SPACE.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
                raise UsageError(f"tuned rule: {name} = {value!r} outside allowed range [{low}, {high}]")
        if 0.0 < self.drift_alpha < MIN_DRIFT_ALPHA:
            raise UsageError(
                f"tuned rule: drift_alpha = {self.drift_alpha!r} must be 0 (off) or in [{MIN_DRIFT_ALPHA}, 0.5]"
            )
        if self.forecast not in FORECASTS:
            raise UsageError(f"tuned rule: forecast = {self.forecast!r} not one of {list(FORECASTS)}")
        if self.planner not in PLANNERS:
            raise UsageError(f"tuned rule: planner = {self.planner!r} not one of {list(PLANNERS)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str) -> RuleParameters:
        """Parameters from a JSON object; ``where`` names it in errors (file and JSON path)."""
        if not isinstance(values, Mapping):
            raise UsageError(f"{where}: expected an object of tuned-rule parameters, got {type(values).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise UsageError(f"{where}: unknown tuned-rule parameters {unknown}; allowed: {sorted(fields)}")
        try:
            return cls(**values)
        except UsageError as error:
            raise UsageError(f"{where}: {error}") from None


UNTUNED_RULES: dict[str, dict[str, Any]] = {
    "gh-rolling": {"forecast": "point", "payback_periods": 0.0},
    "gh-hold": {"forecast": "point", "payback_periods": 4.0},
    "gh-quantile": {"forecast": "quantile", "quantile_level": 0.99, "payback_periods": 0.0},
    "gh-quantile-hold": {"forecast": "quantile", "quantile_level": 0.99, "payback_periods": 4.0},
    "gh-adaptive": {"forecast": "point", "payback_periods": 0.0, "drift_alpha": 0.1},
}
"""The untuned GH rules as points of the search space (each with headroom 1 and, unless given, no drift
correction); ``gh-quantile`` and ``gh-quantile-hold`` plan at 0.99 where they plan at the newsvendor level, which
is 0.99 on every shipped scenario. The search evaluates them first."""


class TunedRulePolicy(PlannerPolicy):
    """The ``quantile-hold`` re-planner with :class:`RuleParameters` (module docstring)."""

    def __init__(self, env: ProvisioningEnv, parameters: RuleParameters, seed: int = 0) -> None:
        super().__init__(env, parameters.planner, "quantile-hold", seed)
        self.name = TUNED_RULE
        self.parameters = parameters
        self.levels = np.full(env.instance.num_query_types, parameters.quantile_level)
        self._drift = DriftEstimate(env.instance, parameters.drift_alpha) if parameters.drift_alpha > 0 else None

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        self.observe(info)
        point = np.asarray(info["forecast_per_hour"])
        planned = point if self.parameters.forecast == "point" else self._target_demand(info)
        return self.decide(planned * self.parameters.headroom, self.parameters.payback_periods, point)


def shipped_entry(file_name: str, env_id: str, policy: str) -> tuple[Mapping[str, Any], str, str]:
    """The ``parameters`` object of ``env_id`` in the package-data file ``file_name`` of ``servegym.baselines``,
    the id they were tuned on (``env_id``'s own, else :data:`REFERENCE_ENV_ID`'s, with a warning naming
    ``policy``: an unregistered or untuned setting) and where they are, for error messages (file and JSON path)."""
    text = resources.files("servegym.baselines").joinpath("data", file_name).read_text(encoding="utf-8")
    rules = json.loads(text)
    tuned_on = env_id if env_id in rules else REFERENCE_ENV_ID
    if tuned_on != env_id:
        warnings.warn(
            f"{policy}: no parameters tuned for {env_id!r} (tuned: {sorted(rules)}); playing those of "
            f"{REFERENCE_ENV_ID!r}",
            stacklevel=3,
        )
    return rules[tuned_on]["parameters"], tuned_on, f"{file_name}: $[{tuned_on!r}].parameters"


def shipped_parameters(env_id: str) -> tuple[RuleParameters, str]:
    """The frozen parameters for ``env_id`` and the id they were tuned on (:func:`shipped_entry`)."""
    values, tuned_on, where = shipped_entry(TUNED_RULES_FILE, env_id, TUNED_RULE)
    return RuleParameters.from_mapping(values, where), tuned_on


def make_tuned_rule(env: ProvisioningEnv, seed: int = 0) -> TunedRulePolicy:
    """The tuned rule with the shipped parameters of ``env``'s registered id."""
    env_id = env.spec.id if env.spec is not None else REFERENCE_ENV_ID
    parameters, _ = shipped_parameters(env_id)
    return TunedRulePolicy(env, parameters, seed)


@dataclass(frozen=True)
class TuningResult:
    """What :func:`tune_rule` found.

    Attributes:
        parameters: The frozen parameters (cheapest finalist on the validation episodes).
        tuning_cost: Their mean total cost over the tuning episodes, $ per episode.
        validation_cost: Their mean total cost over the validation episodes, $ per episode.
        trials: Every trial: number, ``rule`` (the untuned rule it is, or ``"search"``), parameters, tuning cost;
            finalists also carry their validation cost.
    """

    parameters: RuleParameters
    tuning_cost: float
    validation_cost: float
    trials: list[dict[str, Any]]


def mean_episode_cost(env: gym.Env, policy: PlannerPolicy, episodes: Sequence[Episode]) -> float:
    """Mean total cost of ``policy`` over ``episodes``, $ per episode."""
    from servegym.baselines.runner.episodes import run_episode

    costs = [run_episode(env, policy, seed, options)[0]["total_cost"] for seed, options in episodes]
    return float(np.mean(costs))


def _suggest(trial: Any, planner: str) -> RuleParameters:
    low, high = SEARCH_SPACE["drift_alpha"]
    drift = trial.suggest_categorical("drift_correction", [False, True])
    return RuleParameters(
        forecast=trial.suggest_categorical("forecast", list(FORECASTS)),
        quantile_level=trial.suggest_float("quantile_level", *SEARCH_SPACE["quantile_level"]),
        headroom=trial.suggest_float("headroom", *SEARCH_SPACE["headroom"]),
        payback_periods=trial.suggest_float("payback_periods", *SEARCH_SPACE["payback_periods"]),
        drift_alpha=trial.suggest_float("drift_alpha", MIN_DRIFT_ALPHA, high) if drift else low,
        planner=planner,
    )


def tune_rule(
    env_id: str,
    tuning_episodes: Sequence[Episode],
    validation_episodes: Sequence[Episode],
    *,
    trials: int,
    seed: int = 0,
    finalists: int = 5,
    planner: str = "gh",
    env_kwargs: Mapping[str, Any] | None = None,
    journal: Path | None = None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> TuningResult:
    """Search :class:`RuleParameters` for ``env_id`` (module docstring) and return the frozen choice.

    Args:
        env_id: Registered environment id.
        tuning_episodes: Episodes whose mean cost each trial minimises.
        validation_episodes: Episodes that pick among the ``finalists`` cheapest trials.
        trials: Number of trials (≥ 1); with ``journal`` the trials already completed there count (a trial killed
            mid-way is marked failed and drawn again), and only the first ``trials`` completed ones are used.
        seed: Seed of the TPE sampler; the search is deterministic per seed (trials run one after another).
        finalists: How many of the cheapest trials are replayed on the validation episodes (≥ 1).
        planner: The planner inside every trial.
        env_kwargs: Extra keyword arguments for ``gymnasium.make``.
        journal: Optuna journal file: an interrupted search resumes from it; it records a fingerprint of the
            settings (id, env keywords, seed, planner, tuning episodes) and refuses to resume with others.
        on_trial: Called with each finished trial's record (progress reporting).

    Raises:
        MissingDependencyError: Optuna is not installed.
        UsageError: ``trials`` or ``finalists`` < 1, no tuning or validation episodes, or a ``journal`` recorded
            with other settings.
    """
    require_optuna("tuning the rule")
    if trials < 1 or finalists < 1:
        raise UsageError(f"tune_rule: trials = {trials} and finalists = {finalists} must both be ≥ 1")
    if not tuning_episodes or not validation_episodes:
        raise UsageError("tune_rule: needs at least one tuning episode and one validation episode")
    env = gym.make(env_id, **dict(env_kwargs or {}))
    unwrapped: ProvisioningEnv = env.unwrapped  # type: ignore[assignment]

    current = {"index": 0}  # the trial's position among the completed trials (its number in the records)

    def objective(trial: Any) -> float:
        parameters = _suggest(trial, planner)
        cost = mean_episode_cost(env, TunedRulePolicy(unwrapped, parameters), tuning_episodes)
        if on_trial is not None:
            record = {"number": current["index"], "parameters": dataclasses.asdict(parameters), "tuning_cost": cost}
            on_trial(record)
        return cost

    fingerprint = json.dumps(
        {
            "env_id": env_id,
            "env_kwargs": dict(env_kwargs or {}),
            "seed": seed,
            "planner": planner,
            "tuning_episodes": [list(e) for e in tuning_episodes],
        },
        sort_keys=True,
    )
    study = open_study(
        journal, f"tuned-rule {env_id}", "minimize", fingerprint, fresh_hint="scripts/tune_rule.py --fresh"
    )
    untuned = list(UNTUNED_RULES.items())
    for index in range(len(completed_trials(study)), trials):
        current["index"] = index
        if index < len(untuned) and not is_waiting(study):  # a killed search may have left its next one enqueued
            name, values = untuned[index]
            study.enqueue_trial(_optuna_params(RuleParameters(**values, planner=planner)), user_attrs={"rule": name})
        seed_sampler(study, seed, index)
        study.optimize(objective, n_trials=1)
    searched = completed_trials(study)[:trials]  # index = position among the completed trials
    records = [
        {
            "number": index,
            "rule": t.user_attrs.get("rule", "search"),
            "parameters": dataclasses.asdict(_parameters_of(t, planner)),
            "tuning_cost": float(t.value),
        }
        for index, t in enumerate(searched)
    ]
    finalists_of = sorted(records, key=lambda r: (r["tuning_cost"], r["number"]))[:finalists]
    for record in finalists_of:
        policy = TunedRulePolicy(unwrapped, RuleParameters(**record["parameters"]))
        record["validation_cost"] = mean_episode_cost(env, policy, validation_episodes)
    env.close()
    chosen = min(finalists_of, key=lambda r: (r["validation_cost"], r["number"]))
    return TuningResult(
        parameters=RuleParameters(**chosen["parameters"]),
        tuning_cost=chosen["tuning_cost"],
        validation_cost=chosen["validation_cost"],
        trials=records,
    )


def _optuna_params(parameters: RuleParameters) -> dict[str, Any]:
    """``parameters`` under the names :func:`_suggest` draws them by."""
    values: dict[str, Any] = {
        "forecast": parameters.forecast,
        "quantile_level": parameters.quantile_level,
        "headroom": parameters.headroom,
        "payback_periods": parameters.payback_periods,
        "drift_correction": parameters.drift_alpha > 0,
    }
    if parameters.drift_alpha > 0:
        values["drift_alpha"] = parameters.drift_alpha
    return values


def _parameters_of(trial: Any, planner: str) -> RuleParameters:
    values = trial.params
    return RuleParameters(
        forecast=values["forecast"],
        quantile_level=values["quantile_level"],
        headroom=values["headroom"],
        payback_periods=values["payback_periods"],
        drift_alpha=values.get("drift_alpha", 0.0) if values["drift_correction"] else 0.0,
        planner=planner,
    )
