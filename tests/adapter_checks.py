"""The check that a trained run plays the same through the SB3 adapter as through its training stack (shared by
test_agents and test_scaled_plan)."""

from pathlib import Path

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

from servegym.agents import checkpoints
from servegym.agents.adapter import SB3Policy
from servegym.agents.train import algorithm_class
from servegym.agents.train_config import TrainConfig, make_base_env, wrap_action
from servegym.baselines.runner.episodes import run_episode


def assert_adapter_plays_as_trained(config: TrainConfig, day: str, seed: int = 3) -> list[float]:
    """Play the run's model on one episode through ``wrap_action`` (as in training, with its normaliser) and through
    ``SB3Policy`` on the base env; assert equal per-period costs and return them. A recurrent model carries its
    LSTM state through the episode on the direct path, starting from an empty one."""
    run_dir = Path(config.out_dir)
    model = algorithm_class(config.algo).load(run_dir / "model.zip")
    stack = wrap_action(make_base_env(config), config)
    normalizer = checkpoints.load_normalizer(run_dir, DummyVecEnv([lambda: stack]), training=False)
    obs, _ = stack.reset(seed=seed, options={"day": day})
    direct, done, memory = [], False, None  # memory: RecurrentPPO's LSTM state (other models return None)
    while not done:
        start = np.array([not direct])
        prediction, memory = model.predict(
            normalizer.normalize_obs(obs), state=memory, episode_start=start, deterministic=True
        )
        obs, _, terminated, truncated, info = stack.step(prediction)
        direct.append(info["total_cost"])
        done = terminated or truncated
    env = make_base_env(config)
    _, periods = run_episode(env, SB3Policy(env.unwrapped, run_dir), seed=seed, options={"day": day})
    np.testing.assert_allclose([p["total_cost"] for p in periods], direct)
    return direct
