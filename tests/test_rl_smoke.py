"""RL smoke tests: SB3 / sb3-contrib learners run a few updates on the env and its wrappers and act in the space."""

import gymnasium as gym
import numpy as np
import pytest

import servegym.envs  # noqa: F401  (registers the ids)
from servegym.agents.action_wrappers import HeadroomAction
from servegym.envs.wrappers import DeltaAction

pytestmark = pytest.mark.rl
sb3 = pytest.importorskip("stable_baselines3")
sb3_contrib = pytest.importorskip("sb3_contrib")

ENV_ID = "servegym/Provisioning-v3"
LEARN_STEPS = 64
PPO_KWARGS = {"n_steps": 32, "batch_size": 32, "n_epochs": 2, "seed": 0, "device": "cpu"}


def short_env() -> gym.Env:
    return gym.make(ENV_ID, horizon_hours=2.0)


def test_rl_smoke__maskable_ppo_learns_and_predicts_allowed_counts():
    env = short_env()
    model = sb3_contrib.MaskablePPO("MultiInputPolicy", env, **PPO_KWARGS).learn(LEARN_STEPS)
    obs, _ = env.reset(seed=1)
    masks = env.get_wrapper_attr("action_masks")()
    action, _ = model.predict(obs, deterministic=True, action_masks=masks)
    assert env.action_space.contains(action)
    offsets = np.concatenate([[0], np.cumsum(env.action_space.nvec)[:-1]])
    assert masks[offsets + action].all()


def test_rl_smoke__maskable_ppo_reads_delta_action_masks_through_wrappers():
    env = DeltaAction(short_env())
    model = sb3_contrib.MaskablePPO("MultiInputPolicy", env, **PPO_KWARGS).learn(LEARN_STEPS)
    obs, _ = env.reset(seed=1)
    masks = env.action_masks()
    action, _ = model.predict(obs, deterministic=True, action_masks=masks)
    assert env.action_space.contains(action)
    assert masks.reshape(-1, 3)[np.arange(len(action)), action].all()


def test_rl_smoke__ppo_learns_on_delta_action():
    env = DeltaAction(short_env())
    model = sb3.PPO("MultiInputPolicy", env, **PPO_KWARGS).learn(LEARN_STEPS)
    action, _ = model.predict(env.reset(seed=1)[0], deterministic=True)
    assert env.action_space.contains(action)


@pytest.mark.parametrize("planner", ["gh", pytest.param("agh", marks=pytest.mark.slow)])
def test_rl_smoke__ppo_learns_on_headroom_action(planner):
    env = HeadroomAction(short_env(), planner=planner)  # AGH plans in about 0.1-0.3 s a step: 64 steps ≈ 20 s
    model = sb3.PPO("MultiInputPolicy", env, **PPO_KWARGS).learn(LEARN_STEPS)
    action, _ = model.predict(env.reset(seed=1)[0], deterministic=True)
    assert env.action_space.contains(action)
