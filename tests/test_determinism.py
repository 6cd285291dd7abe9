"""``reset(seed=s)`` gives bit-identical episodes whatever the same env object (or policy object) ran before."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

from servegym.baselines.runner.episodes import evaluate
from servegym.envs import ENV_IDS

SHORT = {"horizon_hours": 3.0}


def _episode(env: gym.Env, seed: int) -> list[bytes]:
    """Every observation, reward and info of one episode under a fixed sequence of random actions, pickled (so
    equality is bit for bit, arrays and floats alike)."""
    obs, info = env.reset(seed=seed)
    actions = np.random.default_rng(123)
    records = [pickle.dumps((obs, info))]
    done = False
    while not done:
        high = env.unwrapped.max_replicas
        action = np.minimum(actions.integers(0, 3, size=high.shape), high)
        obs, reward, terminated, truncated, info = env.step(action)
        records.append(pickle.dumps((obs, reward, terminated, truncated, info)))
        done = terminated or truncated
    return records


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_reset__a_reused_env_object_replays_a_fresh_objects_episode_bit_for_bit(env_id):
    fresh = _episode(gym.make(env_id, **SHORT), seed=1)
    reused = gym.make(env_id, **SHORT)
    _episode(reused, seed=0)
    _episode(reused, seed=2)
    assert _episode(reused, seed=1) == fresh


def test_evaluate__seed_1_costs_the_same_after_seed_0_as_alone():
    policies = ["gh-rolling", "agh-rolling", "gh-hold", "agh-adaptive", "random"]
    kwargs = {"env_kwargs": SHORT, "progress": False}
    both = evaluate(policies, "servegym/ProvisioningDrift-v3", seeds=[0, 1], **kwargs).episodes
    alone = evaluate(policies, "servegym/ProvisioningDrift-v3", seeds=[1], **kwargs).episodes
    columns = [c for c in alone.columns if "decision_s" not in c]  # wall-clock times
    after = both[both["seed"] == 1][columns].reset_index(drop=True)
    assert pickle.dumps(after.to_dict("list")) == pickle.dumps(alone[columns].to_dict("list"))
