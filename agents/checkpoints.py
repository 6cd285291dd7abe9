"""Checkpoints of a training run: model, VecNormalize statistics and step count, written atomically.

A checkpoint is a folder ``RUN/checkpoints/step_<num_timesteps>/`` with ``model.zip``, ``vecnormalize.json`` and
``state.json`` (``{"num_timesteps": N}``). ``state.json`` is written last, so a folder without it (an
interrupted write) is ignored. The final and the best model use the same two files in ``RUN/`` and
``RUN/best/``. This module imports stable-baselines3: the trainer imports it lazily.

**No code from data files.** SB3 saves ``VecNormalize`` with ``pickle``, and unpickling runs whatever code the
file names, so a run folder from elsewhere could run anything on load. The statistics are stored as JSON instead
(:func:`normalizer_state`: running mean, variance and count per observation key and of the return, clip values,
γ, ε, the normalisation flags) and the ``VecNormalize`` is rebuilt from them (:func:`normalizer_from_state`);
nothing here unpickles a run folder's file, except :func:`convert_pickled_normalizers`, the one-time conversion of
run folders written before (call it only on folders you trust, docs/agents.md). The model zip itself is loaded by
SB3, whose format embeds cloudpickled objects: a model zip is code, to be trusted like any package.
"""

from __future__ import annotations

import io
import json
import math
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from servegym.agents.config import RunFolderError
from servegym.io import atomic_write_bytes, atomic_write_json

CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.json"
"""The normalisation statistics beside a model (JSON; :func:`normalizer_state` gives its content)."""
PICKLED_VECNORMALIZE_FILE = "vecnormalize.pkl"
"""Where servegym used to pickle them; never read, except by :func:`convert_pickled_normalizers`."""
NORMALIZER_FORMAT = "servegym-vecnormalize-1"
"""Value of the ``format`` key of :data:`VECNORMALIZE_FILE`."""
STATE_FILE = "state.json"
EVALUATIONS_FILE = "evaluations.npz"
CONVERT_COMMAND = (
    "python -c \"from servegym.agents.checkpoints import convert_pickled_normalizers as c; c('{run_dir}')\""
)
"""The conversion command a refusal names (docs/agents.md, "Run folders written before vecnormalize.json")."""


def _statistics(stats: RunningMeanStd) -> dict[str, Any]:
    return {"mean": np.asarray(stats.mean).tolist(), "var": np.asarray(stats.var).tolist(), "count": float(stats.count)}


def normalizer_state(normalizer: VecNormalize) -> dict[str, Any]:
    """The statistics and settings of a ``VecNormalize`` over a Dict observation as JSON values."""
    observations = normalizer.obs_rms if normalizer.norm_obs else {}
    if not isinstance(observations, Mapping):
        raise TypeError(f"normalizer_state: expected per-key observation statistics, got {type(observations)}")
    return {
        "format": NORMALIZER_FORMAT,
        "norm_obs": bool(normalizer.norm_obs),
        "norm_reward": bool(normalizer.norm_reward),
        "norm_obs_keys": list(observations),
        "clip_obs": float(normalizer.clip_obs),
        "clip_reward": float(normalizer.clip_reward),
        "gamma": float(normalizer.gamma),
        "epsilon": float(normalizer.epsilon),
        "obs_rms": {key: _statistics(stats) for key, stats in observations.items()},
        "ret_rms": _statistics(normalizer.ret_rms),
    }


class _StateReader:
    """Checks of one normaliser file's values; every message names the file and the JSON path."""

    def __init__(self, source: Path | str) -> None:
        self.source = source

    def error(self, where: str, message: str) -> RunFolderError:
        return RunFolderError(f"{self.source}: {where}: {message}")

    def keys(self, value: Any, where: str, expected: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(where, "must be an object")
        missing, unknown = sorted(expected - set(value)), sorted(set(value) - expected)
        if missing:
            raise self.error(where, f"lacks {missing}")
        if unknown:
            raise self.error(where, f"has unknown keys {unknown}; allowed: {sorted(expected)}")
        return value

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(where, f"value {value!r} must be true or false")
        return value

    def number(self, value: Any, where: str, *, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(where, f"value {value!r} must be a finite number")
        if value < 0 or (positive and value == 0):
            raise self.error(where, f"value {value!r} must be {'> 0' if positive else '>= 0'}")
        return float(value)

    def statistics(self, value: Any, where: str, shape: tuple[int, ...]) -> RunningMeanStd:
        value = self.keys(value, where, {"mean", "var", "count"})
        stats = RunningMeanStd(shape=shape)
        for name in ("mean", "var"):
            try:
                array = np.asarray(value[name], dtype=np.float64)
            except (TypeError, ValueError):
                raise self.error(f"{where}.{name}", "must be a number or a list of numbers") from None
            if array.shape != shape:
                raise self.error(f"{where}.{name}", f"has shape {array.shape}; the environment's is {shape}")
            if not np.all(np.isfinite(array)) or (name == "var" and np.any(array < 0)):
                raise self.error(f"{where}.{name}", "must be finite" + (" and >= 0" if name == "var" else ""))
            setattr(stats, name, array)
        stats.count = self.number(value["count"], f"{where}.count", positive=True)
        return stats


def normalizer_from_state(state: Any, venv: VecEnv, *, training: bool, source: Path | str) -> VecNormalize:
    """A ``VecNormalize`` around ``venv`` with the statistics and settings of a :func:`normalizer_state` dict.

    Args:
        state: The parsed JSON.
        venv: The vectorised environment to wrap; its observation keys and shapes must match the statistics.
        training: Whether the statistics keep updating (resumed training) or stay frozen (evaluation).
        source: Where ``state`` was read from, for messages.

    Raises:
        RunFolderError: A key is missing or unknown, or a value has the wrong type, shape or range.
    """
    reader = _StateReader(source)
    fields = {"format", "norm_obs", "norm_reward", "norm_obs_keys", "clip_obs", "clip_reward", "gamma", "epsilon"}
    state = reader.keys(state, "$", fields | {"obs_rms", "ret_rms"})
    if state["format"] != NORMALIZER_FORMAT:
        raise reader.error("$.format", f"value {state['format']!r}; expected {NORMALIZER_FORMAT!r}")
    norm_obs = reader.flag(state["norm_obs"], "$.norm_obs")
    keys = state["norm_obs_keys"]
    spaces = getattr(venv.observation_space, "spaces", {})
    if not isinstance(keys, list) or not all(isinstance(key, str) and key in spaces for key in keys):
        raise reader.error("$.norm_obs_keys", f"value {keys!r} must list observation keys of {sorted(spaces)}")
    if not norm_obs and keys:
        raise reader.error("$.norm_obs_keys", "must be empty when norm_obs is false")
    normalizer = VecNormalize(
        venv,
        training=training,
        norm_obs=norm_obs,
        norm_reward=reader.flag(state["norm_reward"], "$.norm_reward"),
        clip_obs=reader.number(state["clip_obs"], "$.clip_obs", positive=True),
        clip_reward=reader.number(state["clip_reward"], "$.clip_reward", positive=True),
        gamma=reader.number(state["gamma"], "$.gamma"),
        epsilon=reader.number(state["epsilon"], "$.epsilon", positive=True),
        norm_obs_keys=keys if norm_obs else None,
    )
    observations = reader.keys(state["obs_rms"], "$.obs_rms", set(keys))
    if norm_obs:
        normalizer.obs_rms = {
            key: reader.statistics(observations[key], f"$.obs_rms.{key}", spaces[key].shape) for key in keys
        }
    normalizer.ret_rms = reader.statistics(state["ret_rms"], "$.ret_rms", ())
    return normalizer


def save_normalizer(normalizer: VecNormalize, folder: Path) -> Path:
    """Write ``folder/vecnormalize.json`` atomically."""
    return atomic_write_json(folder / VECNORMALIZE_FILE, normalizer_state(normalizer))


def _run_folder_of(folder: Path) -> Path:
    """The run folder a model folder belongs to (itself, or the parent of ``best/`` or of a checkpoint)."""
    if folder.name == BEST_DIR:
        return folder.parent
    if folder.parent.name == CHECKPOINTS_DIR:
        return folder.parent.parent
    return folder


def read_normalizer_state(folder: Path) -> Any | None:
    """The parsed ``vecnormalize.json`` of a model folder; None when the folder has no normaliser at all.

    Raises:
        RunFolderError: The folder has only a pickled normaliser (named with the conversion command), or the file
            is not JSON.
    """
    path = folder / VECNORMALIZE_FILE
    if not path.is_file():
        if (folder / PICKLED_VECNORMALIZE_FILE).exists():
            raise RunFolderError(
                f"{folder / PICKLED_VECNORMALIZE_FILE}: a pickled normaliser, which servegym does not load (unpickling "
                f"can run any code); if you trust this run folder, convert it once with "
                f"{CONVERT_COMMAND.format(run_dir=_run_folder_of(folder))} (docs/agents.md)"
            )
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{path}: cannot read it as JSON ({error})") from None


def load_normalizer(folder: Path, venv: VecEnv, *, training: bool = True) -> VecNormalize | None:
    """The ``VecNormalize`` saved in ``folder`` around ``venv`` (None when the run did not normalise)."""
    state = read_normalizer_state(folder)
    if state is None:
        return None
    return normalizer_from_state(state, venv, training=training, source=folder / VECNORMALIZE_FILE)


def convert_pickled_normalizers(run_dir: Path | str) -> list[Path]:
    """Write ``vecnormalize.json`` beside every ``vecnormalize.pkl`` under a run folder (final, best, checkpoints).

    A one-time conversion of run folders written before servegym stored the statistics as JSON. It unpickles
    the files, which runs any code they name: call it only on run folders you produced or otherwise trust. The
    pickles are left in place (nothing reads them any more); delete them once converted.

    Returns:
        The JSON files written.

    Raises:
        RunFolderError: A pickle does not hold a ``VecNormalize``.
    """
    written = []
    for pickled in sorted(Path(run_dir).rglob(PICKLED_VECNORMALIZE_FILE)):
        with pickled.open("rb") as stream:
            normalizer = pickle.load(stream)  # trusted by the caller: see the docstring
        if not isinstance(normalizer, VecNormalize):
            raise RunFolderError(f"{pickled}: holds a {type(normalizer).__name__}, not a VecNormalize")
        written.append(save_normalizer(normalizer, pickled.parent))
    return written


def save_model(model: BaseAlgorithm, folder: Path) -> None:
    """Write ``model.zip`` and, when the model trains on a ``VecNormalize``, ``vecnormalize.json`` atomically."""
    buffer = io.BytesIO()
    model.save(buffer)
    atomic_write_bytes(folder / MODEL_FILE, buffer.getvalue())
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:
        save_normalizer(normalizer, folder)


def save_checkpoint(model: BaseAlgorithm, run_dir: Path) -> Path:
    """Write a checkpoint at the model's current step count; returns its folder."""
    folder = run_dir / CHECKPOINTS_DIR / f"step_{model.num_timesteps:012d}"
    save_model(model, folder)
    atomic_write_json(folder / STATE_FILE, {"num_timesteps": int(model.num_timesteps)})
    return folder


def checkpoint_steps(folder: Path) -> int:
    """The step count recorded in a checkpoint folder.

    Raises:
        RunFolderError: ``state.json`` is not JSON or ``$.num_timesteps`` is not a non-negative integer.
    """
    path = folder / STATE_FILE
    try:
        steps = json.loads(path.read_text(encoding="utf-8"))["num_timesteps"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise RunFolderError(f"{path}: cannot read $.num_timesteps ({error!r})") from None
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise RunFolderError(f"{path}: $.num_timesteps: value {steps!r} must be an integer >= 0")
    return steps


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the most steps, or None."""
    folders = [f for f in (run_dir / CHECKPOINTS_DIR).glob("step_*") if (f / STATE_FILE).is_file()]
    return max(folders, key=checkpoint_steps, default=None)


class CheckpointCallback(BaseCallback):
    """Save a checkpoint every ``freq`` environment steps, at the start of a rollout.

    A rollout start follows a policy update, so a checkpoint never holds half a rollout: resuming from it
    repeats no update and skips none.
    """

    def __init__(self, run_dir: Path, freq: int) -> None:
        super().__init__()
        self.run_dir, self.freq = run_dir, freq
        self._next = freq

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.freq + 1) * self.freq

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self._next:
            save_checkpoint(self.model, self.run_dir)
            self._next = (self.num_timesteps // self.freq + 1) * self.freq

    def _on_step(self) -> bool:
        return True


class SaveBestCallback(BaseCallback):
    """Called by the evaluation callback on a new best validation reward: saves model and statistics to ``best/``."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.folder = run_dir / BEST_DIR

    def _on_step(self) -> bool:
        save_model(self.model, self.folder)
        return True


def restore_evaluations(callback: EvalCallback, run_dir: Path) -> None:
    """Load the evaluations of earlier sessions of a resumed run into ``callback`` (it appends and rewrites them)."""
    path = run_dir / EVALUATIONS_FILE
    if not path.is_file():
        return
    with np.load(path) as saved:
        callback.evaluations_timesteps = [int(t) for t in saved["timesteps"]]
        callback.evaluations_results = [list(map(float, r)) for r in saved["results"]]
        callback.evaluations_length = [list(map(int, n)) for n in saved["ep_lengths"]]
    if callback.evaluations_results:
        callback.best_mean_reward = max(float(np.mean(r)) for r in callback.evaluations_results)
