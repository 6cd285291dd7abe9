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

import base64
import binascii
import hashlib
import io
import json
import math
import os
import pickle
import random
import shutil
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from servegym.agents.train_config import RunFolderError
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
CHECKPOINT_FORMAT = "servegym-checkpoint-2"
"""Value of the ``format`` key of a checkpoint's :data:`STATE_FILE`."""
KEEP_CHECKPOINTS = 2
"""Checkpoints kept in a run folder: the latest and the previous one, to fall back to when the latest is damaged."""
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


def _digest(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def rng_state(model: BaseAlgorithm) -> dict[str, Any]:
    """The random states training draws from, as JSON values: Python's ``random``, NumPy's global generator
    (SB3 shuffles minibatches with it), torch's CPU generator (action sampling) and the action space's generator
    (SAC's warm-up actions)."""
    import torch

    version, key, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": {"version": version, "key": list(key), "gauss": gauss},
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": np.asarray(numpy_state["state"]["key"]).tolist(),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
        "action_space": model.action_space.np_random.bit_generator.state,
    }


def restore_rng(model: BaseAlgorithm, state: Any, source: Path) -> None:
    """Set the random states of :func:`rng_state` (the ``$.rng`` object of a checkpoint's ``state.json``).

    Raises:
        RunFolderError: A state is missing or malformed (the message names ``source`` and the JSON path).
    """
    import torch

    reader = _StateReader(source)
    state = reader.keys(state, "$.rng", {"python", "numpy", "torch", "action_space"})
    try:
        python = state["python"]
        random.setstate((python["version"], tuple(python["key"]), python["gauss"]))
    except (KeyError, TypeError, ValueError) as error:
        raise reader.error("$.rng.python", f"not a random.getstate() value ({error!r})") from None
    try:
        numpy_state = state["numpy"]
        np.random.set_state(
            {
                "bit_generator": numpy_state["bit_generator"],
                "state": {"key": np.asarray(numpy_state["key"], dtype=np.uint32), "pos": numpy_state["pos"]},
                "has_gauss": numpy_state["has_gauss"],
                "gauss": numpy_state["gauss"],
            }
        )
    except (KeyError, TypeError, ValueError) as error:
        raise reader.error("$.rng.numpy", f"not a numpy.random.get_state() value ({error!r})") from None
    try:
        raw = bytearray(base64.b64decode(state["torch"], validate=True))
        torch.set_rng_state(torch.frombuffer(raw, dtype=torch.uint8))
    except (TypeError, ValueError, RuntimeError, binascii.Error) as error:
        raise reader.error("$.rng.torch", f"not a torch.get_rng_state() value ({error!r})") from None
    try:
        model.action_space.np_random.bit_generator.state = state["action_space"]
    except (KeyError, TypeError, ValueError) as error:
        raise reader.error("$.rng.action_space", f"not a bit generator state ({error!r})") from None


def _step_folder(run_dir: Path, steps: int) -> Path:
    return run_dir / CHECKPOINTS_DIR / f"step_{steps:012d}"


def save_checkpoint(model: BaseAlgorithm, run_dir: Path, keep: int = KEEP_CHECKPOINTS) -> Path:
    """Write a checkpoint at the model's current step count (call it at a rollout boundary); returns its folder.

    ``model.zip`` and ``vecnormalize.json`` are written first, then ``state.json`` with their sizes and SHA-256
    and the random states (:func:`rng_state`), so a checkpoint whose writing was interrupted, or whose files were
    damaged later, is recognised (:func:`latest_checkpoint`). Afterwards only the ``keep`` complete checkpoints
    (with a ``state.json``) with the most steps are kept, and folders of interrupted writes are removed.
    """
    folder = _step_folder(run_dir, int(model.num_timesteps))
    (folder / VECNORMALIZE_FILE).unlink(missing_ok=True)
    save_model(model, folder)
    files = {name: _digest(folder / name) for name in (MODEL_FILE, VECNORMALIZE_FILE) if (folder / name).is_file()}
    state = {"format": CHECKPOINT_FORMAT, "num_timesteps": int(model.num_timesteps), "files": files}
    atomic_write_json(folder / STATE_FILE, {**state, "rng": rng_state(model)})
    folders = sorted((run_dir / CHECKPOINTS_DIR).glob("step_*"), reverse=True)
    complete = [f for f in folders if (f / STATE_FILE).is_file()]
    for old in [f for f in folders if f not in complete] + complete[keep:]:  # interrupted writes never count
        shutil.rmtree(old, ignore_errors=True)
    return folder


def _read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{path}: cannot read it as JSON ({error!r})") from None
    if not isinstance(state, dict) or "num_timesteps" not in state:
        raise RunFolderError(f"{path}: cannot read $.num_timesteps (the file must be an object holding it)")
    steps = state["num_timesteps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise RunFolderError(f"{path}: $.num_timesteps: value {steps!r} must be an integer >= 0")
    return state


def checkpoint_steps(folder: Path) -> int:
    """The step count recorded in a checkpoint folder.

    Raises:
        RunFolderError: ``state.json`` is not JSON or ``$.num_timesteps`` is not a non-negative integer.
    """
    return _read_state(folder)["num_timesteps"]


SB3_ZIP_MEMBERS = ("data", "policy.pth")
"""Members every SB3 model zip holds: the JSON of its settings and spaces, and the policy's weights."""


def check_model_zip(path: Path) -> None:
    """Check that ``path`` is an intact SB3 model zip (every member passes its CRC check) without loading it.

    Raises:
        RunFolderError: The file is missing, not a zip, truncated or damaged, or lacks :data:`SB3_ZIP_MEMBERS`.
    """
    if not path.is_file():
        raise RunFolderError(f"{path}: no such model file")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            missing = [name for name in SB3_ZIP_MEMBERS if name not in archive.namelist()]
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise RunFolderError(f"{path}: not a readable model zip, truncated or damaged ({error})") from None
    if damaged is not None:
        raise RunFolderError(f"{path}: damaged, member {damaged!r} fails its CRC check")
    if missing:
        raise RunFolderError(f"{path}: not an SB3 model zip, it lacks {missing}")


def verify_checkpoint(folder: Path) -> dict[str, Any]:
    """Check a checkpoint folder without loading the model; returns its parsed ``state.json``.

    Checks that ``state.json`` is valid, that the normaliser is JSON (not a pickle), and that every file it lists
    has the recorded size and SHA-256 (checkpoints written before servegym recorded them: that ``model.zip`` is
    an intact SB3 model zip, :func:`check_model_zip`).

    Raises:
        RunFolderError: What is missing or damaged, naming the file.
    """
    state = _read_state(folder)
    read_normalizer_state(folder)
    files = state.get("files")
    if files is None:
        check_model_zip(folder / MODEL_FILE)
        return state
    if not isinstance(files, Mapping) or MODEL_FILE not in files:
        raise RunFolderError(f"{folder / STATE_FILE}: $.files must list {MODEL_FILE} with its bytes and sha256")
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise RunFolderError(f"{path}: missing (listed in {STATE_FILE})")
        if _digest(path) != expected:
            recorded = expected.get("bytes") if isinstance(expected, Mapping) else expected
            size = path.stat().st_size
            raise RunFolderError(
                f"{path}: damaged ({size} bytes, {recorded} recorded in {STATE_FILE}, or another SHA-256)"
            )
    return state


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The intact checkpoint with the most steps, or None when there is no complete checkpoint.

    A damaged latest checkpoint (see :func:`verify_checkpoint`) is passed over for the previous one with a
    warning naming what is wrong.

    Raises:
        RunFolderError: Every checkpoint is damaged (the message is the latest one's).
    """
    folders = sorted(
        (f for f in (run_dir / CHECKPOINTS_DIR).glob("step_*") if (f / STATE_FILE).is_file()), reverse=True
    )
    errors: list[RunFolderError] = []
    for folder in folders:
        try:
            verify_checkpoint(folder)
        except RunFolderError as error:
            errors.append(error)
            continue
        for error in errors:
            warnings.warn(f"{error}; resuming from the previous checkpoint {folder}", stacklevel=2)
        return folder
    if errors:
        raise errors[0]
    return None


def restart_episodes(model: BaseAlgorithm, seed: int) -> None:
    """Start fresh training episodes seeded ``seed + num_timesteps``, as ``model.learn`` does when resumed.

    Called right after every checkpoint, so that training continues from exactly what the checkpoint holds: a
    run resumed from it (whose environments cannot be saved mid-episode) repeats the uninterrupted run. The episode
    start flags also clear RecurrentPPO's LSTM state at the next step, as they do in the resumed run.
    """
    env = model.get_env()
    env.seed(seed + model.num_timesteps)
    model._last_obs = env.reset()
    model._last_episode_starts = np.ones((env.num_envs,), dtype=bool)
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:
        model._last_original_obs = normalizer.get_original_obs()


class CheckpointCallback(BaseCallback):
    """Save a checkpoint every ``freq`` environment steps, at the start of a rollout, then restart the episodes.

    A rollout start follows a policy update, so a checkpoint never holds half a rollout: resuming from it
    repeats no update and skips none, and (with :func:`restart_episodes`) reproduces the uninterrupted run.
    """

    def __init__(self, run_dir: Path, freq: int, seed: int) -> None:
        super().__init__()
        self.run_dir, self.freq, self.seed = run_dir, freq, seed
        self._next = freq

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.freq + 1) * self.freq

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self._next:
            save_checkpoint(self.model, self.run_dir)
            restart_episodes(self.model, self.seed)
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


VALIDATION_DIR = ".validation"
"""Folder where the evaluation callback writes ``evaluations.npz`` before it is renamed to
:data:`EVALUATIONS_FILE` in the run folder, so a killed run never leaves a partial one."""


class _ValidationMixin:
    """Re-seed the validation env before each evaluation and publish ``evaluations.npz`` by an atomic rename.

    Seeding every evaluation the same way makes each one independent of the evaluations before it, so a resumed
    run (whose validation env is new) evaluates exactly as the uninterrupted run did.
    """

    eval_seed: int
    run_dir: Path

    def _on_step(self) -> bool:
        evaluating = self.eval_freq > 0 and self.n_calls % self.eval_freq == 0
        if evaluating:
            self.eval_env.seed(self.eval_seed)
        keep_going = super()._on_step()
        temporary = self.run_dir / VALIDATION_DIR / EVALUATIONS_FILE
        if evaluating and temporary.is_file():
            os.replace(temporary, self.run_dir / EVALUATIONS_FILE)
        return keep_going


class ValidationCallback(_ValidationMixin, EvalCallback):
    """SB3's ``EvalCallback`` with seeded evaluations and an atomic ``evaluations.npz``."""


class MaskableValidationCallback(_ValidationMixin, MaskableEvalCallback):
    """sb3-contrib's ``MaskableEvalCallback`` with seeded evaluations and an atomic ``evaluations.npz``."""


def validation_callback(
    eval_env: VecEnv, run_dir: Path, *, maskable: bool, seed: int, start_timesteps: int, n_envs: int, **kwargs: Any
) -> EvalCallback:
    """The validation callback of a run: evaluations every ``eval_freq`` calls, seeded ``seed``.

    On resume (``start_timesteps`` > 0) it continues the run's evaluation schedule (its call counter starts at
    ``start_timesteps // n_envs``) and its record (:func:`restore_evaluations`, up to ``start_timesteps``).
    """
    cls = MaskableValidationCallback if maskable else ValidationCallback
    callback = cls(eval_env, log_path=str(run_dir / VALIDATION_DIR), **kwargs)
    callback.eval_seed, callback.run_dir = seed, run_dir
    callback.n_calls = start_timesteps // n_envs
    restore_evaluations(callback, run_dir, start_timesteps)
    return callback


def restore_evaluations(callback: EvalCallback, run_dir: Path, up_to: int) -> None:
    """Load the evaluations of earlier sessions of a resumed run, up to step ``up_to`` (the checkpoint's: later
    ones were made by the interrupted session and are made again), into ``callback``.

    Raises:
        RunFolderError: ``evaluations.npz`` cannot be read.
    """
    path = run_dir / EVALUATIONS_FILE
    if not path.is_file():
        return
    try:
        with np.load(path) as saved:
            timesteps = [int(t) for t in saved["timesteps"]]
            results = [list(map(float, r)) for r in saved["results"]]
            lengths = [list(map(int, n)) for n in saved["ep_lengths"]]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise RunFolderError(f"{path}: cannot read the validation record ({error!r}); delete it to start one") from None
    kept = sum(t <= up_to for t in timesteps)
    callback.evaluations_timesteps = timesteps[:kept]
    callback.evaluations_results = results[:kept]
    callback.evaluations_length = lengths[:kept]
    if callback.evaluations_results:
        callback.best_mean_reward = max(float(np.mean(r)) for r in callback.evaluations_results)
