"""A trained SB3 model as a ``Policy``, so the evaluation loop plays it beside the baselines without special cases.

:class:`SB3Policy` loads a run folder written by ``servegym train`` (its ``config.json``, the model and the saved
``VecNormalize`` statistics) and wraps the evaluation env with the run's action wrapper, built by the same
``servegym.agents.config.wrap_action`` as in training. Each ``act(obs, info)``:

1. turns the base env's observation into the one the model was trained on (``DeltaAction`` replaces the mask
   entry; ``native`` and ``headroom`` leave it as is) and normalises it with the frozen training statistics;
2. predicts deterministically (with the wrapper's ``action_masks()`` for MaskablePPO);
3. converts the action into replica counts through the wrapper: ``DeltaAction.target`` for moves,
   ``UnitBoxAction.action`` then ``HeadroomAction.replicas`` (the planner) for multipliers; native counts pass
   through.

The wrappers read the env's state (running replicas) and the ``info`` the evaluation loop passes, so the
evaluation loop keeps stepping the base env itself. stable-baselines3 is imported inside the functions.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from servegym.agents.config import TrainConfig, load_run_config, wrap_action
from servegym.envs.provisioning import ProvisioningEnv

MODEL_CHOICES = ("final", "best")
"""Which model of a run folder to load: the one after ``total_timesteps`` or the best on the validation day."""
SB3_PREFIX = "sb3:"
"""Prefix of a run folder in ``servegym evaluate --policies`` (``sb3:PATH`` or ``sb3:PATH@best``)."""


class SB3Policy:
    """A trained model of a run folder acting through the ``Policy`` protocol.

    Args:
        env: The evaluation env (``ProvisioningEnv``), built with the run's env id and keywords; its spaces must
            match the model's.
        run_dir: Run folder written by ``servegym train`` (with ``config.json``).
        which: ``final`` (``RUN/model.zip``) or ``best`` (``RUN/best/model.zip``).
        name: Display name (default: the run's label).

    Raises:
        FileNotFoundError: The run folder has no such model.
        ValueError: The env's observation or action space differs from the model's.
    """

    def __init__(
        self, env: ProvisioningEnv, run_dir: Path | str, which: str = "final", name: str | None = None
    ) -> None:
        from servegym.agents.checkpoints import BEST_DIR, MODEL_FILE, VECNORMALIZE_FILE
        from servegym.agents.train import algorithm_class

        if which not in MODEL_CHOICES:
            raise ValueError(f"model {which!r} not one of {list(MODEL_CHOICES)}")
        self.run_dir = Path(run_dir)
        self.config: TrainConfig = load_run_config(self.run_dir)
        self.name = name or self.config.label
        folder = self.run_dir / BEST_DIR if which == "best" else self.run_dir
        if not (folder / MODEL_FILE).is_file():
            raise FileNotFoundError(f"{folder / MODEL_FILE}: no {which} model in run folder {self.run_dir}")
        self.wrapped = wrap_action(env, self.config)
        self.model = algorithm_class(self.config.algo).load(folder / MODEL_FILE, device="cpu")
        for kind, ours, theirs in (
            ("observation", self.wrapped.observation_space, self.model.observation_space),
            ("action", self.wrapped.action_space, self.model.action_space),
        ):
            if ours != theirs:
                raise ValueError(
                    f"{self.run_dir}: the model's {kind} space {theirs} differs from the env's {ours}; evaluate "
                    f"on {self.config.env_id} with env kwargs {dict(self.config.env_kwargs)}"
                )
        self.normalizer = None
        if (folder / VECNORMALIZE_FILE).is_file():
            self.normalizer = pickle.loads((folder / VECNORMALIZE_FILE).read_bytes())
            self.normalizer.training = False
        self._masked = self.config.algo == "maskable_ppo"
        self._episode_seed: int | None = self.config.seed

    @property
    def fallbacks(self) -> int:
        """Steps of the episode whose headroom plan needed the planner's fallbacks (0 for other actions)."""
        return self.wrapped.env.fallbacks if self.config.action == "headroom" else 0

    def reset(self, seed: int | None = None) -> None:
        """Start an episode; ``seed`` restarts the headroom planner's random starts, as the wrapper's reset does."""
        self._episode_seed = self.config.seed if seed is None else seed

    def _observation(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> dict[str, np.ndarray]:
        if self.config.action == "delta":
            obs = self.wrapped.observation(obs)
        elif self.config.action == "headroom":
            self.wrapped.env.observe(obs, info, seed=self._episode_seed)
        self._episode_seed = None
        return obs if self.normalizer is None else self.normalizer.normalize_obs(obs)

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """Replica counts (C,) for the base env."""
        model_obs = self._observation(obs, info)
        kwargs = {"action_masks": self.wrapped.get_wrapper_attr("action_masks")()} if self._masked else {}
        action, _ = self.model.predict(model_obs, deterministic=True, **kwargs)
        if self.config.action == "native":
            return np.asarray(action, dtype=np.int64)
        if self.config.action == "delta":
            return self.wrapped.target(action)
        return self.wrapped.env.replicas(self.wrapped.action(action))


def parse_sb3_spec(spec: str) -> tuple[Path, str]:
    """``sb3:PATH`` or ``sb3:PATH@best`` (or ``@final``) → (run folder, which model)."""
    body = spec.removeprefix(SB3_PREFIX)
    path, separator, which = body.rpartition("@")
    if separator and which in MODEL_CHOICES:
        return Path(path), which
    return Path(body), "final"


def sb3_policy_factory(
    run_dir: Path | str, which: str = "final", name: str | None = None
) -> Callable[[gym.Env], SB3Policy]:
    """A factory ``env → SB3Policy`` for ``servegym.baselines.evaluate.evaluate``."""

    def factory(env: ProvisioningEnv) -> SB3Policy:
        return SB3Policy(env, run_dir, which=which, name=name)

    return factory
