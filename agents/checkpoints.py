"""Checkpoints of a training run: model, VecNormalize statistics and step count, written atomically.

A checkpoint is a folder ``RUN/checkpoints/step_<num_timesteps>/`` with ``model.zip``, ``vecnormalize.pkl`` and
``state.json`` (``{"num_timesteps": N}``). ``state.json`` is written last, so a folder without it (an
interrupted write) is ignored. The final and the best model use the same two files in ``RUN/`` and
``RUN/best/``. This module imports stable-baselines3: the trainer imports it lazily.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.vec_env import VecNormalize

from servegym.io import atomic_write_bytes, atomic_write_json

CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
STATE_FILE = "state.json"
EVALUATIONS_FILE = "evaluations.npz"


def save_model(model: BaseAlgorithm, folder: Path) -> None:
    """Write ``model.zip`` and, when the model trains on a ``VecNormalize``, ``vecnormalize.pkl`` atomically."""
    buffer = io.BytesIO()
    model.save(buffer)
    atomic_write_bytes(folder / MODEL_FILE, buffer.getvalue())
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:
        # VecNormalize pickles without its wrapped envs; VecNormalize.load re-attaches them.
        atomic_write_bytes(folder / VECNORMALIZE_FILE, pickle.dumps(normalizer))


def save_checkpoint(model: BaseAlgorithm, run_dir: Path) -> Path:
    """Write a checkpoint at the model's current step count; returns its folder."""
    folder = run_dir / CHECKPOINTS_DIR / f"step_{model.num_timesteps:012d}"
    save_model(model, folder)
    atomic_write_json(folder / STATE_FILE, {"num_timesteps": int(model.num_timesteps)})
    return folder


def checkpoint_steps(folder: Path) -> int:
    """The step count recorded in a checkpoint folder."""
    return int(json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))["num_timesteps"])


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the most steps, or None."""
    folders = [f for f in (run_dir / CHECKPOINTS_DIR).glob("step_*") if (f / STATE_FILE).is_file()]
    return max(folders, key=checkpoint_steps, default=None)


def load_normalizer(folder: Path, venv) -> VecNormalize | None:
    """The ``VecNormalize`` saved in ``folder`` around ``venv`` (None when the run did not normalise)."""
    path = folder / VECNORMALIZE_FILE
    return VecNormalize.load(str(path), venv) if path.is_file() else None


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
