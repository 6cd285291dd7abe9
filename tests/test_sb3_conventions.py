"""SB3, sb3-contrib and RL Zoo conventions on the plain registered ids: make_vec_env, SubprocVecEnv, Monitor's
info_keywords, the TensorBoard callback, rgb_array rendering and an RL Zoo training run with the shipped YAML."""

import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import servegym.envs  # noqa: F401  (registers the ids)
from servegym.baselines.evaluate import run_episode
from servegym.baselines.policies import make_policy
from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.render import RENDER_SIZE
from servegym.envs.wrappers import EPISODE_INFO_KEYS, EPISODE_PREFIX

pytestmark = pytest.mark.rl
sb3 = pytest.importorskip("stable_baselines3")

ROOT = Path(__file__).resolve().parents[1]
SHORT = {"horizon_hours": 1.0}
"""Four 15-minute periods per episode."""


class _LastInfo(gym.Wrapper):
    """Keeps the ``info`` of the latest step."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.last_info = info
        return obs, reward, terminated, truncated, info


def test_render__rgb_array_is_an_image_of_the_state_and_ansi_still_a_line():
    env = gym.make(DEFAULT_ENV_ID, render_mode="rgb_array", **SHORT)
    assert env.unwrapped.render() is None  # before reset
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (*RENDER_SIZE, 3) and first.dtype == np.uint8
    env.step(env.action_space.sample())
    assert not np.array_equal(env.render(), first)
    ansi = gym.make(DEFAULT_ENV_ID, render_mode="ansi", **SHORT)
    ansi.reset(seed=0)
    assert ansi.render().startswith("period 0/4")
    with pytest.raises(ValueError, match="render_mode 'video' not in"):
        type(env.unwrapped)(render_mode="video", **SHORT)


def test_make_vec_env__plain_id_with_two_envs_steps_and_renders():
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(DEFAULT_ENV_ID, n_envs=2, seed=0, env_kwargs=SHORT)
    venv.reset()
    venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
    images = venv.get_images()
    assert len(images) == 2 and images[0].shape == (*RENDER_SIZE, 3)
    venv.close()


def test_subproc_vec_env__plain_id_with_fork_workers():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = make_vec_env(
        DEFAULT_ENV_ID,
        n_envs=2,
        seed=0,
        env_kwargs=SHORT,
        vec_env_cls=SubprocVecEnv,
        vec_env_kwargs={"start_method": "fork"},
    )
    try:
        venv.reset()
        _, rewards, _, _ = venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
        assert rewards.shape == (2,)
    finally:
        venv.close()


def test_subproc_vec_env__plain_id_in_a_script_with_the_default_start_method(tmp_path):
    script = tmp_path / "train_script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import servegym.envs  # the one import: registers the ids in every worker
            from stable_baselines3.common.env_util import make_vec_env
            from stable_baselines3.common.vec_env import SubprocVecEnv

            if __name__ == "__main__":
                venv = make_vec_env({DEFAULT_ENV_ID!r}, n_envs=2, env_kwargs={SHORT!r}, vec_env_cls=SubprocVecEnv)
                venv.reset()
                venv.close()
                print("ok")
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_monitor__episode_info_carries_the_evaluation_loops_cost_parts_and_slo_rates():
    from stable_baselines3.common.monitor import Monitor

    env = _LastInfo(Monitor(gym.make(DEFAULT_ENV_ID, **SHORT), info_keywords=EPISODE_INFO_KEYS))
    record, _ = run_episode(env, make_policy("gh-static", env.unwrapped), 0, {})
    episode = env.last_info["episode"]
    assert set(EPISODE_INFO_KEYS) <= set(episode)
    for key in EPISODE_INFO_KEYS:
        assert episode[key] == pytest.approx(record[key.removeprefix(EPISODE_PREFIX)], rel=1e-12, abs=1e-12), key


def test_episode_metrics_callback__writes_cost_parts_and_slo_rates_to_tensorboard(tmp_path):
    from stable_baselines3.common.env_util import make_vec_env
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from servegym.agents.callbacks import METRIC_PREFIX, EpisodeMetricsCallback

    venv = make_vec_env(DEFAULT_ENV_ID, n_envs=1, seed=0, env_kwargs=SHORT)
    model = sb3.PPO(
        "MultiInputPolicy",
        venv,
        n_steps=16,
        batch_size=16,
        n_epochs=1,
        seed=0,
        device="cpu",
        tensorboard_log=str(tmp_path),
    )
    model.learn(32, callback=EpisodeMetricsCallback(), tb_log_name="run")
    events = EventAccumulator(str(next(tmp_path.glob("run_*"))))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {METRIC_PREFIX + key for key in EPISODE_INFO_KEYS} <= tags
    costs = [event.value for event in events.Scalars(METRIC_PREFIX + "episode_total_cost")]
    assert costs and all(cost > 0 for cost in costs)


@pytest.mark.slow
def test_rl_zoo__trains_ppo_with_the_shipped_hyperparameters(tmp_path):
    pytest.importorskip("rl_zoo3")
    command = [
        sys.executable, "-m", "rl_zoo3.train",
        "--algo", "ppo",
        "--env", DEFAULT_ENV_ID,
        "--gym-packages", "servegym.envs",
        "--conf-file", str(ROOT / "hyperparams" / "ppo.yml"),
        "-n", "64",
        "--env-kwargs", "horizon_hours:1.0",
        "--hyperparams", "n_steps:32", "batch_size:32", "n_envs:1",
        "--eval-freq", "-1",
        "-f", str(tmp_path / "logs"),
        "--tensorboard-log", str(tmp_path / "tb"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "servegym/" in done.stdout and "episode_total_cost" in done.stdout
    monitor = next((tmp_path / "logs").rglob("0.monitor.csv")).read_text().splitlines()
    assert set(EPISODE_INFO_KEYS) <= set(monitor[1].split(","))


def test_maskable_ppo__learns_on_make_vec_env_of_the_plain_id_with_its_masks():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.maskable.utils import get_action_masks
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(DEFAULT_ENV_ID, n_envs=1, seed=0, env_kwargs=SHORT)
    model = sb3_contrib.MaskablePPO("MultiInputPolicy", venv, n_steps=16, batch_size=16, n_epochs=1, device="cpu")
    model.learn(16)
    masks = get_action_masks(venv)
    assert masks.shape == (1, int(np.sum(venv.action_space.nvec)))
    obs = venv.reset()
    action, _ = model.predict(obs, action_masks=masks, deterministic=True)
    assert venv.action_space.contains(action[0])
