"""A trained SB3 model as a ``Policy``, so the evaluation loop plays it beside the baselines without special cases.

:class:`SB3Policy` loads a run folder written by ``servegym train`` (its ``config.json``, the model and the saved
``VecNormalize`` statistics) and wraps the evaluation env with the run's action wrapper, built by the same
``servegym.agents.train_config.wrap_action`` as in training. Each ``act(obs, info)``:

1. turns the base env's observation into the one the model was trained on (``DeltaAction`` replaces the mask
   entry; ``ScaledPlanAction`` drops it and adds its forecast-error and per-GPU-type utilisation entries;
   ``native`` and ``headroom`` leave it as is) and normalises it with the frozen training statistics;
2. predicts deterministically (with the wrapper's ``action_masks()`` for MaskablePPO; RecurrentPPO carries its
   LSTM state from step to step and starts each episode (``reset``) with an empty one, as in training);
3. converts the action into replica counts through the wrapper: ``DeltaAction.target`` for moves,
   ``UnitBoxAction.action`` then ``HeadroomAction.replicas`` (the planner) or ``ScaledPlanAction.replicas`` (the
   scaled mix) for multipliers; native counts pass through.

The wrappers read the env's state (running replicas) and the ``info`` the evaluation loop passes, so the
evaluation loop keeps stepping the base env itself. stable-baselines3 is imported inside the functions.

A run folder is checked before anything of it is loaded (:func:`check_run_folder`): its ``config.json``, the
model file and the normalisation statistics, which are read from ``vecnormalize.json`` only: a pickled
``vecnormalize.pkl`` is refused with the command that converts it (unpickling a file can run any code). The
model zip is loaded by SB3 and is code to be trusted like any package (docs/agents.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from servegym.agents.train_config import CONFIG_FILE, RunFolderError, TrainConfig, load_run_config, wrap_action
from servegym.envs.provisioning import ProvisioningEnv
from servegym.errors import ServegymError, UsageError

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
        RunFolderError: The run folder is incomplete or holds a pickled normaliser (see :func:`check_run_folder`).
        ValueError: The env's observation or action space differs from the model's.
    """

    def __init__(
        self, env: ProvisioningEnv, run_dir: Path | str, which: str = "final", name: str | None = None
    ) -> None:
        from stable_baselines3.common.vec_env import DummyVecEnv

        from servegym.agents.checkpoints import MODEL_FILE, VECNORMALIZE_FILE, normalizer_from_state
        from servegym.agents.train import algorithm_class

        self.run_dir = Path(run_dir)
        self.config, folder, state = check_run_folder(self.run_dir, which)
        self.name = name or self.config.label
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
        if state is not None:
            self.normalizer = normalizer_from_state(
                state, DummyVecEnv([lambda: self.wrapped]), training=False, source=folder / VECNORMALIZE_FILE
            )
        self._masked = self.config.algo == "maskable_ppo"
        self._episode_seed: int | None = self.config.seed
        self._memory: Any = None  # RecurrentPPO's LSTM state within the episode: None before its first step
        self._inner_action: np.ndarray | None = None  # the last act's action in the wrapper's space (Box actions)

    @property
    def fallbacks(self) -> int:
        """Steps of the episode whose headroom plan needed the planner's fallbacks (0 for other actions)."""
        return self.wrapped.env.fallbacks if self.config.action == "headroom" else 0

    def reset(self, seed: int | None = None) -> None:
        """Start an episode; ``seed`` restarts the headroom planner's random starts, as the wrapper's reset does."""
        self._episode_seed = self.config.seed if seed is None else seed
        self._memory = None
        self._inner_action = None

    def _observation(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> dict[str, np.ndarray]:
        if self.config.action == "delta":
            obs = self.wrapped.observation(obs)
        elif self.config.action == "headroom":
            self.wrapped.env.observe(obs, info, seed=self._episode_seed)
        elif self.config.action == "scaled":
            self.wrapped.env.observe(obs, info)
            obs = self.wrapped.env.observation(obs)
        self._episode_seed = None
        return obs if self.normalizer is None else self.normalizer.normalize_obs(obs)

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """Replica counts (C,) for the base env."""
        model_obs = self._observation(obs, info)
        kwargs = {"action_masks": self.wrapped.get_wrapper_attr("action_masks")()} if self._masked else {}
        start = np.array([self._memory is None])  # models without memory ignore it and return the state unchanged
        action, self._memory = self.model.predict(
            model_obs, state=self._memory, episode_start=start, deterministic=True, **kwargs
        )
        if self.config.action == "native":
            return np.asarray(action, dtype=np.int64)
        if self.config.action == "delta":
            return self.wrapped.target(action)
        self._inner_action = self.wrapped.action(action)
        return self.wrapped.env.replicas(self._inner_action)

    def decision_record(self) -> dict[str, float]:
        """What the last ``act`` decided in its wrapper's terms (``HeadroomAction.decision`` or
        ``ScaledPlanAction.decision``: multipliers per query type and the keep margin or payback horizon); empty
        for ``native`` and ``delta`` runs, whose actions are the replicas themselves, and before the first act."""
        if self._inner_action is None:
            return {}
        return self.wrapped.env.decision(self._inner_action)


def check_run_folder(run_dir: Path | str, which: str = "final") -> tuple[TrainConfig, Path, Any | None]:
    """Check a run folder before anything of it is loaded: its settings, its model file and its statistics.

    Reads ``config.json``, checks the model zip's integrity (``checkpoints.check_model_zip``), and checks the
    ``vecnormalize.json`` statistics against the observation space of the run's environment (built once, which
    also checks that its settings still build). The model itself is not loaded.

    Args:
        run_dir: Run folder written by ``servegym train``.
        which: ``final`` or ``best`` (:data:`MODEL_CHOICES`).

    Returns:
        The run's settings, the folder holding the chosen model, and the parsed ``vecnormalize.json`` (None when
        the run did not normalise).

    Raises:
        UsageError: ``which`` is not one of :data:`MODEL_CHOICES`.
        RunFolderError: ``run_dir`` is not a folder; ``config.json`` is missing or malformed; the model file is
            missing, truncated or damaged; the run normalised but its ``vecnormalize.json`` is missing or does not
            fit the environment; or only a pickled ``vecnormalize.pkl`` is there (never loaded).
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from servegym.agents.checkpoints import (
        BEST_DIR,
        MODEL_FILE,
        VECNORMALIZE_FILE,
        check_model_zip,
        normalizer_from_state,
        read_normalizer_state,
    )
    from servegym.agents.train_config import make_base_env

    if which not in MODEL_CHOICES:
        raise UsageError(f"model {which!r} not one of {list(MODEL_CHOICES)}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: no such run folder (one holding {run_dir / CONFIG_FILE}, by servegym train)")
    config = load_run_config(run_dir)
    folder = run_dir / BEST_DIR if which == "best" else run_dir
    state = read_normalizer_state(folder)
    if not (folder / MODEL_FILE).is_file():
        raise RunFolderError(f"{folder / MODEL_FILE}: no {which} model in run folder {run_dir}")
    check_model_zip(folder / MODEL_FILE)
    if state is None and (config.norm_obs or config.norm_reward):
        raise RunFolderError(
            f"{folder / VECNORMALIZE_FILE}: missing; the run normalised its observations or rewards, so its model "
            "needs these statistics"
        )
    if state is not None:
        try:
            env = wrap_action(make_base_env(config), config)
        except (ServegymError, ValueError) as error:
            raise RunFolderError(f"{run_dir / CONFIG_FILE}: the run's environment does not build: {error}") from None
        try:
            normalizer_from_state(state, DummyVecEnv([lambda: env]), training=False, source=folder / VECNORMALIZE_FILE)
        finally:
            env.close()
    return config, folder, state


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
    """A factory ``env → SB3Policy`` for ``servegym.baselines.runner.episodes.evaluate``; the run folder is checked now
    (:func:`check_run_folder`), before any episode is played.

    Raises:
        RunFolderError: See :func:`check_run_folder`.
        MissingDependencyError: The rl extra is not installed.
    """
    from servegym.agents.train import require_rl

    require_rl()
    check_run_folder(run_dir, which)

    def factory(env: ProvisioningEnv) -> SB3Policy:
        return SB3Policy(env, run_dir, which=which, name=name)

    return factory
