"""Train stable-baselines3 / sb3-contrib agents on the provisioning environment, resumably.

:func:`train` runs one :class:`~servegym.agents.train_config.TrainConfig`: vectorised training environments (demand
drawn from the env's own source, by default a train day per reset), ``VecNormalize`` of the Box observations
and of the reward, TensorBoard logs, an evaluation on the validation day every ``eval_freq`` steps (keeping the
best model), a checkpoint every ``checkpoint_freq`` steps, and the final model with its ``config.json``. When the
run folder already holds checkpoints, training resumes from the latest intact one and continues until
``total_timesteps`` (the step counter, the learning-rate schedule and the TensorBoard curve continue too).

**Resuming repeats the uninterrupted run** (on-policy algorithms: PPO, MaskablePPO, A2C). A checkpoint is written
only at a rollout boundary and holds the weights, the optimiser, the normaliser's statistics and every random
state training draws from; right after it the training episodes restart, seeded ``seed + num_timesteps``, in the
uninterrupted run as in a resumed one (episodes cannot be saved mid-way), and every validation evaluation is
seeded ``seed``. So a run killed at any point (even SIGKILL) and resumed in the same folder reaches the same
weights and validation rewards as one never interrupted. Ctrl-C writes nothing: the session's work since its
latest checkpoint is dropped. The latest two checkpoints are kept; a damaged latest one (size or SHA-256 differ
from its ``state.json``) is passed over for the previous one with a warning. SAC resumes with an empty replay
buffer (it is not saved), so its resumed run differs.

Run folder::

    config.json              settings, resolved hyperparameters, library versions
    model.zip                final model (after total_timesteps)
    vecnormalize.json        its observation and reward statistics (JSON, never a pickle)
    result.json              step counts and validation rewards of the run
    evaluations.npz          every validation evaluation (SB3 EvalCallback format)
    best/model.zip, best/vecnormalize.json      best model on the validation day
    checkpoints/step_<N>/{model.zip, vecnormalize.json, state.json}   the latest two; state.json: step count,
                             files' sizes and SHA-256, random states (JSON)
    tb/run_0/                TensorBoard events

Settings are checked before anything is written: unknown ``env_kwargs`` or values the environment rejects, and
unknown hyperparameters or values the algorithm rejects, raise :class:`TrainConfigError` and leave no
``config.json`` behind (so the corrected command is not refused as a resume with different settings).
``SubprocVecEnv`` workers die with the trainer (:func:`servegym.processes.die_with_parent`).

stable-baselines3 and torch are imported inside the functions, so this module imports without them.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import importlib.util
import inspect
import json
import os
import platform
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from servegym.agents.train_config import (
    MASK_KEY,
    RunFolderError,
    TrainConfig,
    TrainConfigError,
    check_env_kwargs,
    check_resumable,
    load_run_config,
    make_base_env,
    save_run_config,
    validation_demand,
    wrap_action,
)
from servegym.errors import MissingDependencyError
from servegym.io import atomic_write_json, check_output_folder
from servegym.processes import die_with_parent

__all__ = ["TrainConfig", "TrainResult", "TrainingInterrupted", "algorithm_class", "train", "train_from_config"]

TENSORBOARD_DIR = "tb"
TB_RUN_NAME = "run"
RESULT_FILE = "result.json"
VERSION_PACKAGES = ("servegym", "stable-baselines3", "sb3-contrib", "torch", "gymnasium", "numpy")
TRAINER_SETTINGS = (
    "action",
    "n_envs",
    "vec_env",
    "headroom_low",
    "headroom_high",
    "headroom_planner",
    "headroom_max_payback_periods",
    "norm_obs",
    "norm_reward",
    "eval_freq",
    "eval_episodes",
    "checkpoint_freq",
    "torch_threads",
)
"""Keys of an experiment's ``hyperparameters`` table that set :class:`TrainConfig` fields, not algorithm kwargs."""
RL_PACKAGES = ("torch", "stable_baselines3", "sb3_contrib")
"""Modules of the ``rl`` extra that training and playing a trained model need."""
TRAINER_KEYWORDS = ("policy", "env", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model")
"""Algorithm keyword arguments the trainer sets itself; ``hyperparameters`` may not give them."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C. No checkpoint is written mid-rollout: the partial rollout and the steps since
    the latest checkpoint are dropped, so that resuming repeats the uninterrupted run exactly.

    Attributes:
        run_dir: The run folder.
        checkpoint: The checkpoint the next session resumes from (None: it starts over).
    """

    def __init__(self, run_dir: Path) -> None:
        from servegym.agents.checkpoints import latest_checkpoint

        self.run_dir = run_dir
        try:
            self.checkpoint = latest_checkpoint(run_dir)
        except RunFolderError:
            self.checkpoint = None
        where = f"from {self.checkpoint}" if self.checkpoint is not None else "from the start (no checkpoint yet)"
        super().__init__(f"training interrupted; the same command resumes {where}")


@dataclass(frozen=True)
class TrainResult:
    """What a training session did.

    Attributes:
        run_dir: The run folder.
        start_timesteps: Step count the session started from (0, or the checkpoint's when resumed).
        num_timesteps: Step count at the end (≥ ``total_timesteps``: training stops after whole rollouts).
        model_path: The final model.
        best_model_path: The best model on the validation day (None before the first evaluation).
        validation_timesteps: Step count of every validation evaluation of the run, all sessions.
        validation_rewards: Mean episode reward of each evaluation (−cost / reward_scale summed over the day).
    """

    run_dir: Path
    start_timesteps: int
    num_timesteps: int
    model_path: Path
    best_model_path: Path | None
    validation_timesteps: tuple[int, ...]
    validation_rewards: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (paths as strings)."""
        return {
            key: str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }


def require_rl() -> None:
    """Raise :class:`~servegym.errors.MissingDependencyError` unless the ``rl`` extra is installed."""
    missing = [name for name in RL_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependencyError(
            f"training and trained models need the rl extra, missing {missing}: pip install 'servegym[rl]'"
        )


def algorithm_class(algo: str) -> type:
    """The SB3 class of an algorithm name of ``servegym.agents.train_config.ALGORITHMS``."""
    if algo == "maskable_ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    if algo == "recurrent_ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    from stable_baselines3 import A2C, PPO, SAC

    return {"ppo": PPO, "a2c": A2C, "sac": SAC}[algo]


def policy_name(algo: str) -> str:
    """The SB3 policy of an algorithm on servegym's dict observations (``RecurrentPPO`` needs its LSTM policy)."""
    return "MultiInputLstmPolicy" if algo == "recurrent_ppo" else "MultiInputPolicy"


def library_versions() -> dict[str, str]:
    """Versions of Python and of the packages a saved model depends on."""
    versions = {"python": platform.python_version()}
    for package in VERSION_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _monitored_env(config: TrainConfig, demand: str | None) -> gym.Env:
    """A training or validation env: the run's env, its SLO price (if any) and action wrapper, monitored."""
    from stable_baselines3.common.monitor import Monitor

    from servegym.envs.wrappers import EPISODE_INFO_KEYS, SLOPricedReward

    env = make_base_env(config, demand)
    if config.slo_price_per_request > 0.0:
        env = SLOPricedReward(env, config.slo_price_per_request)
    return Monitor(wrap_action(env, config), info_keywords=EPISODE_INFO_KEYS)


def _worker_env(config: TrainConfig, demand: str | None, driver_pid: int) -> gym.Env:
    """The env of a ``SubprocVecEnv`` worker, which first arranges to die with the trainer."""
    die_with_parent(driver_pid)
    return _monitored_env(config, demand)


def make_vec_env(config: TrainConfig, n_envs: int, demand: str | None = None):
    """``n_envs`` monitored, action-wrapped envs: ``SubprocVecEnv`` (fork) when > 1 and ``config.vec_env`` is
    ``subproc``, else ``DummyVecEnv`` (all in this process).

    ``fork`` starts workers in milliseconds (``forkserver``, SB3's default, re-imports everything per worker);
    the factories are only called in the workers, which die with this process even when it is killed.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if n_envs == 1 or config.vec_env == "dummy":
        return DummyVecEnv([functools.partial(_monitored_env, config, demand) for _ in range(n_envs)])
    factories = [functools.partial(_worker_env, config, demand, os.getpid()) for _ in range(n_envs)]
    return SubprocVecEnv(factories, start_method="fork")


def _normalizer(config: TrainConfig, venv, gamma: float, training: bool):
    from stable_baselines3.common.vec_env import VecNormalize

    keys = [key for key in venv.observation_space.spaces if key != MASK_KEY]
    return VecNormalize(
        venv,
        training=training,
        norm_obs=config.norm_obs,
        norm_reward=config.norm_reward and training,
        norm_obs_keys=keys,
        gamma=gamma,
    )


def _prepare_run(config: TrainConfig, require_checkpoint: bool) -> Path | None:
    """Check the run folder against ``config``; returns the checkpoint to resume from, if any."""
    from servegym.agents.checkpoints import latest_checkpoint

    run_dir = Path(config.out_dir)
    checkpoint = latest_checkpoint(run_dir)
    if (run_dir / "config.json").is_file():
        check_resumable(load_run_config(run_dir), config)
    if checkpoint is None and require_checkpoint:
        raise RunFolderError(f"{run_dir}: no checkpoint to resume from (checkpoints/step_*/state.json)")
    return checkpoint


def check_hyperparameters(config: TrainConfig, cls: type) -> None:
    """Raise :class:`TrainConfigError` naming ``hyperparameters`` keys the algorithm does not take."""
    parameters = inspect.signature(cls.__init__).parameters
    allowed = [name for name in parameters if name not in ("self", *TRAINER_KEYWORDS)]
    reserved = sorted(set(config.hyperparameters) & set(TRAINER_KEYWORDS))
    if reserved:
        raise TrainConfigError(f"hyperparameters {reserved} are set by the trainer (use the training settings)")
    unknown = sorted(set(config.hyperparameters) - set(allowed))
    if unknown:
        raise TrainConfigError(
            f"hyperparameters: {unknown} not keyword arguments of {cls.__name__}; allowed: {', '.join(allowed)}"
        )


def _eval_callback(config: TrainConfig, eval_env, run_dir: Path, start_timesteps: int):
    from servegym.agents.checkpoints import SaveBestCallback, validation_callback

    return validation_callback(
        eval_env,
        run_dir,
        maskable=config.algo == "maskable_ppo",
        seed=config.seed,
        start_timesteps=start_timesteps,
        n_envs=config.n_envs,
        callback_on_new_best=SaveBestCallback(run_dir),
        n_eval_episodes=config.eval_episodes,
        eval_freq=max(config.eval_freq // config.n_envs, 1),
        deterministic=True,
        verbose=0,
    )


def _model(config: TrainConfig, cls: type, venv, checkpoint: Path | None, gamma: float):
    """The environment (normalised or not) and the model to train: new, or the checkpoint's with its statistics.

    Raises:
        TrainConfigError: The algorithm rejects the given hyperparameters' values.
    """
    from servegym.agents.checkpoints import MODEL_FILE, STATE_FILE, load_normalizer, restore_rng, verify_checkpoint

    tensorboard_log = str(Path(config.out_dir) / TENSORBOARD_DIR)
    if checkpoint is not None:
        state = verify_checkpoint(checkpoint)
        env = load_normalizer(checkpoint, venv) or venv
        model = cls.load(checkpoint / MODEL_FILE, env=env, device=config.device, tensorboard_log=tensorboard_log)
        env.seed(config.seed + model.num_timesteps)  # the episodes the run restarted at this checkpoint
        if "rng" in state:
            restore_rng(model, state["rng"], checkpoint / STATE_FILE)
        else:
            warnings.warn(
                f"{checkpoint / STATE_FILE}: written before servegym saved random states; the resumed run will not "
                "repeat the uninterrupted one exactly",
                stacklevel=2,
            )
        return env, model
    env = _normalizer(config, venv, gamma, training=True) if config.norm_obs or config.norm_reward else venv
    try:
        model = cls(
            policy_name(config.algo),
            env,
            seed=config.seed,
            device=config.device,
            tensorboard_log=tensorboard_log,
            verbose=0,
            **copy.deepcopy(config.resolved_hyperparameters()),  # A2C adds optimizer_class to policy_kwargs
        )
    except (TypeError, ValueError, AssertionError) as error:  # SB3 checks its arguments with asserts
        if not config.hyperparameters:
            raise
        given = json.dumps(dict(config.hyperparameters))
        reason = str(error) or type(error).__name__
        raise TrainConfigError(f"hyperparameters {given}: {cls.__name__} rejects them: {reason}") from None
    return env, model


def train(config: TrainConfig, *, progress_bar: bool = False, require_checkpoint: bool = False) -> TrainResult:
    """Train (or resume) one run; see the module docstring for what it writes.

    Args:
        config: The run's settings.
        progress_bar: Show SB3's progress bar (tqdm + rich).
        require_checkpoint: Fail unless the run folder has a checkpoint to resume from (``--resume``); without
            it, a run folder with checkpoints is resumed and an empty one starts fresh.

    Raises:
        TrainConfigError: Bad ``env_kwargs`` or hyperparameters (nothing is written then), or the run folder holds
            a run with different settings.
        RunFolderError: ``require_checkpoint`` and no checkpoint, or a checkpoint that cannot be read.
        OutputPathError: The run folder cannot be written.
        MissingDependencyError: The rl extra is not installed.
        TrainingInterrupted: Ctrl-C (a ``KeyboardInterrupt``); nothing is written, the run resumes from its latest
            checkpoint.
    """
    require_rl()
    import torch
    from stable_baselines3.common.callbacks import CallbackList

    from servegym.agents.callbacks import EpisodeMetricsCallback
    from servegym.agents.checkpoints import BEST_DIR, MODEL_FILE, CheckpointCallback, save_checkpoint, save_model

    run_dir = check_output_folder(config.out_dir, "run folder")
    checkpoint = _prepare_run(config, require_checkpoint)
    cls = algorithm_class(config.algo)
    check_hyperparameters(config, cls)
    check_env_kwargs(config)
    torch.set_num_threads(config.torch_threads)
    gamma = float(config.resolved_hyperparameters().get("gamma", 0.99))
    venv = make_vec_env(config, config.n_envs)
    eval_env = make_vec_env(config, 1, demand=validation_demand(config))
    try:
        env, model = _model(config, cls, venv, checkpoint, gamma)
    except BaseException:
        venv.close()
        eval_env.close()
        raise
    save_run_config(config, library_versions())
    if config.norm_obs or config.norm_reward:
        eval_env = _normalizer(config, eval_env, gamma, training=False)
    start = int(model.num_timesteps)
    evaluation = _eval_callback(config, eval_env, run_dir, start)
    checkpoints = CheckpointCallback(run_dir, config.checkpoint_freq, config.seed)
    try:
        if config.total_timesteps > start:
            with warnings.catch_warnings():  # SB3's bar is tqdm.rich, which warns that it is experimental
                warnings.filterwarnings("ignore", message="rich is experimental")
                model.learn(
                    config.total_timesteps - start,
                    callback=CallbackList([checkpoints, evaluation, EpisodeMetricsCallback()]),
                    reset_num_timesteps=False,
                    tb_log_name=TB_RUN_NAME,
                    progress_bar=progress_bar,
                )
    except KeyboardInterrupt:
        with contextlib.suppress(EOFError, OSError):  # Ctrl-C also stopped the SubprocVecEnv workers
            env.close()
            eval_env.close()
        raise TrainingInterrupted(run_dir) from None
    env.close()
    eval_env.close()
    save_checkpoint(model, run_dir)
    save_model(model, run_dir)
    best = run_dir / BEST_DIR / MODEL_FILE
    result = TrainResult(
        run_dir=run_dir,
        start_timesteps=start,
        num_timesteps=int(model.num_timesteps),
        model_path=run_dir / MODEL_FILE,
        best_model_path=best if best.is_file() else None,
        validation_timesteps=tuple(int(t) for t in evaluation.evaluations_timesteps),
        validation_rewards=tuple(float(np.mean(r)) for r in evaluation.evaluations_results),
    )
    atomic_write_json(run_dir / RESULT_FILE, result.to_dict())
    return result


def train_from_config(config: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    """Run a training cell of ``servegym sweep`` (``servegym.experiments.cells.TrainingCell.config()``).

    The cell's ``scenario`` gives the env id, its keyword arguments and instance overrides; ``algorithm``,
    ``total_timesteps``, ``seed`` and ``name`` map to the same :class:`TrainConfig` fields. Keys of
    ``hyperparameters`` that name trainer settings (:data:`TRAINER_SETTINGS`, e.g. ``action`` or ``n_envs``) set
    those fields; the rest are algorithm keyword arguments. Cells train in one process unless ``n_envs`` is
    given (sweep workers run side by side). Re-running a finished cell returns its result without training.

    Returns:
        Scalars and lists for the sweep's ``training.csv``: step counts, last and best validation reward,
        the validation curve and the run folder.
    """
    from servegym.envs.settings import ENV_KEYWORDS, INSTANCE_KEYWORDS, ScenarioConfig

    scenario = config["scenario"]
    defaults = {f.name: f.default for f in dataclasses.fields(ScenarioConfig)}
    hyperparameters = dict(config.get("hyperparameters", {}))
    settings = {key: hyperparameters.pop(key) for key in TRAINER_SETTINGS if key in hyperparameters}
    settings.setdefault("n_envs", 1)
    try:
        train_config = TrainConfig(
            out_dir=str(out_dir),
            algo=config["algorithm"],
            env_id=scenario["env_id"],
            total_timesteps=int(config["total_timesteps"]),
            seed=int(config["seed"]),
            name=str(config.get("name", "")),
            env_kwargs={key: scenario[key] for key in ENV_KEYWORDS},
            instance_overrides={
                key: scenario[key] for key in INSTANCE_KEYWORDS if key in scenario and scenario[key] != defaults[key]
            },
            hyperparameters=hyperparameters,
            **settings,
        )
    except TypeError as error:
        raise TrainConfigError(f"training cell {config.get('name')!r}: {error}") from None
    result = train(train_config)
    rewards = result.validation_rewards
    return {
        "start_timesteps": result.start_timesteps,
        "num_timesteps": result.num_timesteps,
        "final_validation_reward": rewards[-1] if rewards else None,
        "best_validation_reward": max(rewards) if rewards else None,
        "validation_curve": [[t, r] for t, r in zip(result.validation_timesteps, rewards, strict=True)],
        "run_dir": str(result.run_dir),
    }
