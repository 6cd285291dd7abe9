"""Training configuration: algorithm, action space, environment, hyperparameter defaults, and the env stack.

A run is fully described by a :class:`TrainConfig`, saved as ``config.json`` in its run folder. The trainer
(``servegym.agents.train``) and the adapter that turns a saved model into a ``Policy``
(``servegym.agents.adapter``) build the environment and its action wrapper from it with the same functions
(:func:`make_base_env`, :func:`wrap_action`), so a model acts at evaluation exactly as it acted in training.

This module imports neither torch nor stable-baselines3.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

import servegym.envs  # noqa: F401  (registers the environment ids)
from servegym.agents.action_wrappers import HEADROOM_PLANNERS, HeadroomAction, ScaledPlanAction, UnitBoxAction
from servegym.envs import DEFAULT_ENV_ID, ENV_IDS
from servegym.envs.demand_source import trace_source
from servegym.envs.provisioning import EnvKeywordError, ProvisioningEnv
from servegym.errors import ServegymError
from servegym.io import atomic_write_json
from servegym.traces import VALIDATION_DAY

ALGORITHMS: Mapping[str, tuple[str, ...]] = {
    "ppo": ("native", "delta", "headroom", "scaled"),
    "maskable_ppo": ("native", "delta"),
    "a2c": ("native", "delta", "headroom", "scaled"),
    "sac": ("headroom", "scaled"),
    "recurrent_ppo": ("native", "delta", "headroom", "scaled"),
}
"""Algorithm name → the action spaces it supports (``sac`` needs a Box action, ``maskable_ppo`` a discrete one;
``recurrent_ppo`` is sb3-contrib's ``RecurrentPPO``: PPO with an LSTM in the actor and in the critic)."""
ACTIONS = ("native", "delta", "headroom", "scaled")
"""``native``: replica counts (MultiDiscrete); ``delta``: ``DeltaAction``; ``headroom``: ``HeadroomAction`` (Box);
``scaled``: ``ScaledPlanAction`` (Box: multipliers on a fixed configuration mix, no planner in the loop)."""
BOX_ACTIONS = ("headroom", "scaled")
"""Actions whose policy acts in a Box through ``UnitBoxAction`` (multipliers in [headroom_low, headroom_high])."""
SCALED_MAX_KEEP_MARGIN = 0.5
"""Largest scale-down hysteresis of the ``scaled`` action (``ScaledPlanAction.max_keep_margin``)."""
VEC_ENVS = ("subproc", "dummy")
"""How ``n_envs`` > 1 training envs run: ``SubprocVecEnv`` workers (one process each) or ``DummyVecEnv`` (all in the
trainer's process, stepped one after another; pays off where an env step is cheap next to the IPC, ``scaled``)."""
ADDED_FIELDS: Mapping[str, Any] = {"vec_env": "subproc", "slo_price_per_request": 0.0}
"""Settings added after run folders were first written, with the value every run written before them used: a
``config.json`` without one is read with this value (it is what the run did, not today's default)."""
MASK_KEY = "action_mask"
"""Observation entry that VecNormalize leaves alone (0/1 flags)."""
CONFIG_FILE = "config.json"

_NET = {"net_arch": [128, 128]}
_PPO_DISCRETE = {
    "n_steps": 384,
    "batch_size": 128,
    "n_epochs": 5,
    "learning_rate": 3e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "policy_kwargs": _NET,
}
_PPO_HEADROOM = {
    **_PPO_DISCRETE,
    "n_steps": 192,
    "batch_size": 64,
    "n_epochs": 10,
    "ent_coef": 0.0,
    "policy_kwargs": {"net_arch": [64, 64], "log_std_init": -1.0},
}
_PPO_SCALED = {
    **_PPO_HEADROOM,
    "n_steps": 256,
    "batch_size": 256,
    "n_epochs": 5,
}
_A2C = {
    "n_steps": 16,
    "learning_rate": 7e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "ent_coef": 0.01,
    "policy_kwargs": _NET,
}
_SAC = {
    "learning_rate": 3e-4,
    "buffer_size": 100_000,
    "batch_size": 256,
    "learning_starts": 960,
    "gamma": 0.99,
    "tau": 0.005,
    "train_freq": 1,
    "policy_kwargs": {"net_arch": [64, 64]},
}
_LSTM_HIDDEN_SIZE = 64
"""LSTM units of ``recurrent_ppo`` (actor and critic each): as wide as the Box policies' hidden layers."""


def _with_lstm(ppo: Mapping[str, Any]) -> dict[str, Any]:
    """``recurrent_ppo``'s defaults: PPO's on the same action with :data:`_LSTM_HIDDEN_SIZE` LSTM units."""
    return {**ppo, "policy_kwargs": {**ppo["policy_kwargs"], "lstm_hidden_size": _LSTM_HIDDEN_SIZE}}


_A2C_BOX = {**_A2C, "ent_coef": 0.0, "policy_kwargs": {"net_arch": [64, 64], "log_std_init": -1.0}}
DEFAULT_HYPERPARAMETERS: Mapping[tuple[str, str], Mapping[str, Any]] = {
    ("ppo", "native"): _PPO_DISCRETE,
    ("ppo", "delta"): _PPO_DISCRETE,
    ("ppo", "headroom"): _PPO_HEADROOM,
    ("ppo", "scaled"): _PPO_SCALED,
    ("maskable_ppo", "native"): _PPO_DISCRETE,
    ("maskable_ppo", "delta"): _PPO_DISCRETE,
    ("a2c", "native"): _A2C,
    ("a2c", "delta"): _A2C,
    ("a2c", "headroom"): _A2C_BOX,
    ("a2c", "scaled"): _A2C_BOX,
    ("sac", "headroom"): _SAC,
    ("sac", "scaled"): _SAC,
    ("recurrent_ppo", "native"): _with_lstm(_PPO_DISCRETE),
    ("recurrent_ppo", "delta"): _with_lstm(_PPO_DISCRETE),
    ("recurrent_ppo", "headroom"): _with_lstm(_PPO_HEADROOM),
    ("recurrent_ppo", "scaled"): _with_lstm(_PPO_SCALED),
}
"""Keyword arguments of the SB3 algorithm per (algorithm, action); docs/agents.md says how they were chosen."""


HYPERPARAMETER_RANGES: Mapping[str, tuple[bool, float, float]] = {
    "n_steps": (True, 1, math.inf),
    "batch_size": (True, 1, math.inf),
    "n_epochs": (True, 1, math.inf),
    "buffer_size": (True, 1, math.inf),
    "learning_starts": (True, 0, math.inf),
    "learning_rate": (False, 1e-12, math.inf),
    "gamma": (False, 0.0, 1.0),
    "gae_lambda": (False, 0.0, 1.0),
    "tau": (False, 0.0, 1.0),
}
"""Hyperparameter → (integer?, lowest, highest allowed value): ranges SB3 does not check when it builds the model
(``n_steps`` 0 fails only in the first rollout, after the run folder is written)."""


class TrainConfigError(ServegymError, ValueError):
    """A training configuration is invalid; the message names the field and the allowed values."""


class RunFolderError(ServegymError, ValueError):
    """A run folder is missing, incomplete or malformed, or holds a file servegym will not read (a pickle); the
    message names the file and, where there is one, the JSON path and the fix."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json``).

    Attributes:
        out_dir: Run folder: config, checkpoints, TensorBoard logs, final and best models.
        algo: One of :data:`ALGORITHMS`.
        action: One of :data:`ACTIONS`, supported by ``algo``.
        env_id: Registered environment id.
        total_timesteps: Environment steps to train for (rounded up to whole rollouts).
        seed: Seed of the model, the environments (worker k resets with ``seed + k``) and the evaluation env.
        n_envs: Parallel training environments (``SubprocVecEnv`` when > 1 and ``vec_env`` is ``subproc``,
            ``DummyVecEnv`` otherwise).
        vec_env: One of :data:`VEC_ENVS`.
        name: Label of the run in scores and leaderboards (default ``<algo>-<action>``); seeds of one name are
            aggregated together.
        env_kwargs: Keyword arguments of ``gymnasium.make`` (JSON values), e.g. ``{"horizon_hours": 24}``.
        instance_overrides: Instance overrides of an experiment scenario table (``models``, ``gpus``, SLO and
            budget scales; see docs/experiments.md); empty for the id's own instance.
        hyperparameters: Overrides of :data:`DEFAULT_HYPERPARAMETERS` for (algo, action), JSON values.
        headroom_low: Lowest demand multiplier of the ``headroom`` and ``scaled`` actions.
        headroom_high: Highest demand multiplier of the ``headroom`` and ``scaled`` actions.
        headroom_planner: Planner of the ``headroom`` action (``gh`` plans in ms, ``agh`` in about 0.2 s), and the
            planner whose plans give the ``scaled`` action's configuration mixes (computed once per env).
        headroom_max_payback_periods: Largest payback horizon (periods) of the ``headroom`` action's switching
            patience dimension; 0 leaves the dimension out (the planner re-plans every period).
        slo_price_per_request: $ the training reward charges per request that misses an SLO, on top of the cost
            (``servegym.envs.wrappers.SLOPricedReward``; training and validation envs only, scores are unchanged);
            0 for the cost alone.
        norm_obs: Normalise the Box observations (all but ``action_mask``) with running statistics.
        norm_reward: Scale rewards by a running estimate of the discounted return's standard deviation.
        eval_freq: Environment steps between evaluations on the validation day.
        eval_episodes: Episodes per evaluation.
        checkpoint_freq: Environment steps between checkpoints.
        torch_threads: Threads of torch (1 avoids thread contention on small, shared machines).
        device: Torch device.
    """

    out_dir: str
    algo: str = "maskable_ppo"
    action: str = "native"
    env_id: str = DEFAULT_ENV_ID
    total_timesteps: int = 200_000
    seed: int = 0
    n_envs: int = 2
    vec_env: str = "subproc"
    name: str = ""
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    instance_overrides: Mapping[str, Any] = field(default_factory=dict)
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    headroom_low: float = 0.8
    headroom_high: float = 1.3
    headroom_planner: str = "gh"
    headroom_max_payback_periods: float = 12.0
    slo_price_per_request: float = 0.0
    norm_obs: bool = True
    norm_reward: bool = True
    eval_freq: int = 9_600
    eval_episodes: int = 1
    checkpoint_freq: int = 9_600
    torch_threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        for key in ("out_dir", "name", "device"):
            if not isinstance(getattr(self, key), str):
                raise TrainConfigError(f"{key} = {getattr(self, key)!r} must be a string")
        for key in ("norm_obs", "norm_reward"):
            if not isinstance(getattr(self, key), bool):
                raise TrainConfigError(f"{key} = {getattr(self, key)!r} must be true or false")
        for key in ("headroom_low", "headroom_high", "headroom_max_payback_periods", "slo_price_per_request"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TrainConfigError(f"{key} = {value!r} must be a number")
        for key in ("env_kwargs", "instance_overrides", "hyperparameters"):
            value = getattr(self, key)
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise TrainConfigError(f"{key} = {value!r} must be a JSON object (string keys)")
        if self.algo not in ALGORITHMS:
            raise TrainConfigError(f"algo {self.algo!r} not one of {list(ALGORITHMS)}")
        if self.action not in ALGORITHMS[self.algo]:
            raise TrainConfigError(
                f"action {self.action!r} not supported by {self.algo}; allowed: {list(ALGORITHMS[self.algo])}"
            )
        if self.vec_env not in VEC_ENVS:
            raise TrainConfigError(f"vec_env {self.vec_env!r} not one of {list(VEC_ENVS)}")
        if self.env_id not in ENV_IDS:
            raise TrainConfigError(f"env_id {self.env_id!r} not one of {list(ENV_IDS)}")
        for key in ("total_timesteps", "n_envs", "eval_freq", "eval_episodes", "checkpoint_freq", "torch_threads"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TrainConfigError(f"{key} = {value!r} outside allowed range: integers in [1, inf)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise TrainConfigError(f"seed = {self.seed!r} outside allowed range: integers in [0, inf)")
        if self.headroom_planner not in HEADROOM_PLANNERS:
            raise TrainConfigError(f"headroom_planner {self.headroom_planner!r} not one of {list(HEADROOM_PLANNERS)}")
        if not (math.isfinite(self.headroom_high) and 0.0 < self.headroom_low <= self.headroom_high):
            raise TrainConfigError(
                f"headroom_low, headroom_high = {self.headroom_low}, {self.headroom_high}: need 0 < low ≤ high < inf"
            )
        for key, unit in (("headroom_max_payback_periods", "periods"), ("slo_price_per_request", "$ per request")):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0.0):
                raise TrainConfigError(f"{key} = {value} outside allowed range [0, inf) {unit}")
        for key in ("env_kwargs", "instance_overrides", "hyperparameters"):
            try:
                json.dumps(getattr(self, key), allow_nan=False)
            except (TypeError, ValueError) as error:
                raise TrainConfigError(f"{key} must hold JSON values (no NaN): {error}") from None
        for key, (integer, low, high) in HYPERPARAMETER_RANGES.items():
            if key not in self.hyperparameters:
                continue
            value = self.hyperparameters[key]
            kind = int if integer else int | float
            if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
                numbers = "integers" if integer else "numbers"
                raise TrainConfigError(
                    f"hyperparameters.{key} = {value!r} outside allowed range: {numbers} in [{low:g}, {high:g}]"
                )
        if "instance" in self.env_kwargs:
            raise TrainConfigError("env_kwargs: 'instance' is not JSON; use instance_overrides instead")

    @property
    def label(self) -> str:
        """The run's display name."""
        return self.name or f"{self.algo}-{self.action}"

    def resolved_hyperparameters(self) -> dict[str, Any]:
        """The algorithm's keyword arguments: the defaults for (algo, action) updated with ``hyperparameters``."""
        return {**DEFAULT_HYPERPARAMETERS[(self.algo, self.action)], **self.hyperparameters}

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form; :meth:`from_dict` inverts it."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys raise :class:`TrainConfigError`."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(payload) - set(names))
        if unknown:
            raise TrainConfigError(f"unknown training settings {unknown}; allowed: {names}")
        return cls(**payload)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


RESUME_FREE_FIELDS = ("out_dir", "total_timesteps", "eval_freq", "eval_episodes", "torch_threads")
"""Fields a resumed run may change; every other field must equal the saved ``config.json``. ``checkpoint_freq`` is
not among them: training episodes restart at every checkpoint (``servegym.agents.train``), so the checkpoint
schedule is part of the run."""


def check_resumable(saved: TrainConfig, config: TrainConfig) -> None:
    """Raise :class:`TrainConfigError` when ``config`` differs from a run's saved config beyond the free fields."""
    old, new = saved.to_dict(), config.to_dict()
    changed = sorted(k for k in old if k not in RESUME_FREE_FIELDS and old[k] != new[k])
    if changed:
        details = ", ".join(f"{k}: saved {old[k]!r}, now {new[k]!r}" for k in changed)
        raise TrainConfigError(
            f"{Path(config.out_dir) / CONFIG_FILE}: cannot resume with different settings ({details}); "
            "use a new output folder"
        )


def save_run_config(config: TrainConfig, versions: Mapping[str, str]) -> Path:
    """Write ``config.json``: the settings, the resolved hyperparameters and the library versions."""
    payload = {
        "train": config.to_dict(),
        "label": config.label,
        "hyperparameters_resolved": _plain(config.resolved_hyperparameters()),
        "versions": dict(versions),
    }
    return atomic_write_json(Path(config.out_dir) / CONFIG_FILE, payload)


def load_run_config(run_dir: Path | str) -> TrainConfig:
    """The :class:`TrainConfig` saved in a run folder (``out_dir`` set to where the folder is now).

    Every setting must be in the file (``$.train``): a missing one is an error, not a default, because the current
    default need not be what the run was trained with; the exceptions are :data:`ADDED_FIELDS`, settings that did
    not exist when older run folders were written, read with the value those runs used.

    Raises:
        RunFolderError: No ``config.json``, or it is not JSON, lacks a setting or holds an invalid one.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunFolderError(f"{path}: no such file; is {run_dir} a run folder written by servegym train?")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{path}: cannot read it as JSON ({error})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("train"), dict):
        raise RunFolderError(f"{path}: $.train must be an object holding the run's settings (servegym train writes it)")
    names = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "out_dir"]
    settings = {**{k: v for k, v in ADDED_FIELDS.items() if k not in payload["train"]}, **payload["train"]}
    missing = [name for name in names if name not in settings]
    if missing:
        raise RunFolderError(
            f"{path}: $.train lacks {missing}; a run folder records every setting it was trained with (re-train, or "
            "restore the file written by servegym train)"
        )
    try:
        return TrainConfig.from_dict({**settings, "out_dir": str(run_dir)})
    except TrainConfigError as error:
        raise RunFolderError(f"{path}: $.train: {error}") from None


def resolved_env_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Keyword arguments of ``gymnasium.make``: ``env_kwargs`` plus the overridden instance, if any."""
    kwargs = dict(config.env_kwargs)
    if config.instance_overrides:
        from servegym.envs.settings import ScenarioConfig, scenario_instance

        base = ScenarioConfig.for_env_id(config.env_id)
        scenario = dataclasses.replace(
            base,
            name=config.label,
            **kwargs,
            **{k: tuple(v) if isinstance(v, list) else v for k, v in config.instance_overrides.items()},
        )
        kwargs["instance"] = scenario_instance(scenario)
        kwargs.pop("catalog", None)  # the overridden instance is already built on it
    return kwargs


def env_keywords() -> dict[str, Any]:
    """The ``gymnasium.make`` keywords a run's ``env_kwargs`` may set, with their defaults (``instance`` is not
    JSON: see ``instance_overrides``)."""
    parameters = inspect.signature(ProvisioningEnv.__init__).parameters
    return {name: p.default for name, p in parameters.items() if name not in ("self", "instance", "render_mode")}


def _json_kind(default: Any) -> tuple[type | tuple[type, ...], str] | None:
    """The JSON type a keyword takes, from its default: booleans, integers, numbers or strings; None when the
    default (None) does not tell."""
    if isinstance(default, bool):
        return bool, "true or false"
    if isinstance(default, int):
        return int, "an integer"
    if isinstance(default, float):
        return (int, float), "a number"
    if isinstance(default, str):
        return str, "a string"
    return None


def check_env_kwargs(config: TrainConfig) -> None:
    """Build the run's training and validation environments once, so that bad ``env_kwargs`` fail before anything
    is written to the run folder.

    Raises:
        TrainConfigError: An unknown keyword, a value of the wrong JSON type, or a value the environment rejects
            (its message is kept).
    """
    allowed = env_keywords()
    unknown = sorted(set(config.env_kwargs) - set(allowed))
    if unknown:
        raise TrainConfigError(f"env_kwargs: unknown key(s) {unknown}; allowed: {', '.join(allowed)}")
    for key, value in config.env_kwargs.items():
        expected = _json_kind(allowed[key])
        if expected is None:
            continue
        kind, text = expected
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise TrainConfigError(f"env_kwargs.{key} = {json.dumps(value)} must be {text}")
    for demand in (None, validation_demand(config)):
        try:
            env = wrap_action(make_base_env(config, demand), config)
        except EnvKeywordError as error:
            raise TrainConfigError(f"env_kwargs {json.dumps(dict(config.env_kwargs))}: {error}") from None
        except ServegymError:
            raise
        except (TypeError, ValueError) as error:  # ProvisioningEnv documents ValueError for a bad keyword value
            raise TrainConfigError(f"env_kwargs {json.dumps(dict(config.env_kwargs))}: {error}") from None
        env.close()


def validation_demand(config: TrainConfig) -> str:
    """The demand a run is validated on: its trace's validation day (``trace:`` demand) or the Azure validation
    day."""
    demand = resolved_env_kwargs(config).get("demand")
    if isinstance(demand, str) and demand.startswith("trace:"):
        source = trace_source(demand.removeprefix("trace:"))
        return dataclasses.replace(source, split="validation", start=None).label
    return f"azure:{VALIDATION_DAY}"


def make_base_env(config: TrainConfig, demand: str | None = None) -> gym.Env:
    """``gymnasium.make`` of the run's env id and keywords; ``demand`` overrides its demand source."""
    kwargs = resolved_env_kwargs(config)
    if demand is not None:
        kwargs["demand"] = demand
    return gym.make(config.env_id, **kwargs)


def wrap_action(env: gym.Env, config: TrainConfig) -> gym.Env:
    """Wrap ``env`` (a ``ProvisioningEnv``, possibly wrapped) with the run's action wrapper.

    ``native``: unchanged; ``delta``: ``DeltaAction``; ``headroom``: ``HeadroomAction`` with the run's planner,
    bounds and patience, then ``UnitBoxAction`` to act in [−1, 1] (Gaussian policies start centred on the middle
    of the range); ``scaled``: ``ScaledPlanAction`` with the run's multiplier bounds and a keep margin up to
    :data:`SCALED_MAX_KEEP_MARGIN` and the mixes of the run's planner, then ``UnitBoxAction``.
    """
    if config.action == "native":
        return env
    if config.action == "delta":
        from servegym.envs.wrappers import DeltaAction

        return DeltaAction(env)
    if config.action == "scaled":
        scaled = ScaledPlanAction(
            env,
            low=config.headroom_low,
            high=config.headroom_high,
            max_keep_margin=SCALED_MAX_KEEP_MARGIN,
            lean_info=True,
            mix_planner=config.headroom_planner,
        )
        return UnitBoxAction(scaled)
    headroom = HeadroomAction(
        env,
        low=config.headroom_low,
        high=config.headroom_high,
        seed=config.seed,
        planner=config.headroom_planner,
        max_payback_periods=config.headroom_max_payback_periods,
    )
    return UnitBoxAction(headroom)
