"""Reliability: no code runs from a run folder's data files, killed jobs leave no process behind, and a Ray address
that does not answer fails within the stated timeout."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from servegym.envs import DEFAULT_ENV_ID
from servegym.processes import process_running

REPO = Path(__file__).resolve().parents[1]
TOY = {"scenario": "toy", "demand": "synthetic", "horizon_hours": 1.0}
HAS_RL = all(importlib.util.find_spec(name) is not None for name in ("torch", "stable_baselines3", "sb3_contrib"))
HAS_RAY = importlib.util.find_spec("ray") is not None
LINUX = sys.platform.startswith("linux")


class _Payload:
    """Unpickling this object writes ``marker``: a file whose existence proves that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))


def _malicious_run(root: Path) -> tuple[Path, Path]:
    """A run folder whose every normaliser is a pickle that writes a marker file when loaded; (run, marker)."""
    from servegym.agents.train_config import TrainConfig, save_run_config

    run, marker = root / "run", root / "marker.txt"
    config = TrainConfig(out_dir=str(run), algo="ppo", action="delta", env_kwargs=TOY, n_envs=1)
    save_run_config(config, {})
    checkpoint = run / "checkpoints" / "step_000000000064"
    for folder in (run, run / "best", checkpoint):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.zip").write_bytes(b"")
        (folder / "vecnormalize.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    (checkpoint / "state.json").write_text(json.dumps({"num_timesteps": 64}))
    return run, marker


@pytest.mark.skipif(not HAS_RL, reason="needs the rl extra")
def test_pickle__a_crafted_normaliser_pickle_is_never_loaded(tmp_path, capsys, monkeypatch):
    from servegym.agents.adapter import SB3Policy
    from servegym.agents.scoring import score
    from servegym.agents.train import train
    from servegym.agents.train_config import RunFolderError, load_run_config
    from servegym.cli import main

    run, marker = _malicious_run(tmp_path)
    pickle.loads(pickle.dumps(_Payload(tmp_path / "proof.txt")))
    assert (tmp_path / "proof.txt").exists()  # the payload works when unpickled
    env = gym.make(DEFAULT_ENV_ID, **TOY).unwrapped
    for which in ("final", "best"):
        with pytest.raises(RunFolderError, match=r"vecnormalize\.pkl: a pickled normaliser.*convert_pickled"):
            SB3Policy(env, run, which=which)
    with pytest.raises(RunFolderError, match="pickled normaliser"):
        score([run], days=["2024-05-16-thu"], seeds=[0], oracle="gh-static", baselines=())
    with pytest.raises(RunFolderError, match=r"step_000000000064/vecnormalize\.pkl: a pickled normaliser"):
        train(load_run_config(run))  # resumes from the checkpoint
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--policies", f"sb3:{run}", "--scenario", "toy", "--no-progress"]) == 2
    assert main(["score", "--model", str(run), "--oracle", "gh-static", "--no-progress"]) == 2
    assert capsys.readouterr().err.count("pickled normaliser") == 2
    assert not marker.exists()


@pytest.mark.skipif(not HAS_RL, reason="needs the rl extra")
def test_pickle__statistics_come_from_the_json_even_beside_a_pickle(tmp_path):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from servegym.agents.checkpoints import load_normalizer, save_normalizer

    run, marker = _malicious_run(tmp_path)
    saved = VecNormalize(DummyVecEnv([lambda: gym.make(DEFAULT_ENV_ID, **TOY)]), norm_obs_keys=["demand"])
    saved.obs_rms["demand"].update(np.random.default_rng(0).uniform(0, 3, size=(16, 8)))
    save_normalizer(saved, run)
    loaded = load_normalizer(run, DummyVecEnv([lambda: gym.make(DEFAULT_ENV_ID, **TOY)]), training=False)
    np.testing.assert_array_equal(loaded.obs_rms["demand"].var, saved.obs_rms["demand"].var)
    assert loaded.obs_rms["demand"].count == saved.obs_rms["demand"].count and not loaded.training
    assert not marker.exists()


@pytest.mark.skipif(not HAS_RL, reason="needs the rl extra")
def test_pickle__the_trusted_converter_gives_the_same_normalisation_as_the_pickle(tmp_path):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from servegym.agents.checkpoints import convert_pickled_normalizers, load_normalizer

    def venv():
        return DummyVecEnv([lambda: gym.make(DEFAULT_ENV_ID, **TOY)])

    legacy = VecNormalize(venv(), norm_obs_keys=["demand", "forecast"], gamma=0.95, clip_obs=5.0)
    legacy.reset()
    for _ in range(3):
        legacy.step(np.array([legacy.action_space.sample()]))
    (tmp_path / "best").mkdir()
    for folder in (tmp_path, tmp_path / "best"):
        (folder / "vecnormalize.pkl").write_bytes(pickle.dumps(legacy))  # the format servegym used to write
    written = convert_pickled_normalizers(tmp_path)
    assert written == [tmp_path / "best" / "vecnormalize.json", tmp_path / "vecnormalize.json"]
    converted = load_normalizer(tmp_path, venv(), training=False)
    raw = legacy.get_original_obs()
    for key, value in converted.normalize_obs(raw).items():
        np.testing.assert_array_equal(value, legacy.normalize_obs(raw)[key])
    assert (converted.gamma, converted.clip_obs, converted.ret_rms.count) == (0.95, 5.0, legacy.ret_rms.count)


def _descendants(root: int) -> set[int]:
    """Processes below ``root`` in the process tree that have not ended (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if fields[0] not in ("Z", "X"):
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _kill_and_expect_no_survivors(
    argv: list[str], cwd: Path, workers: int, timeout_s: float = 60.0, ready: Callable[[], bool] | None = None
) -> None:
    """Start ``servegym ARGV``, wait until it has at least ``workers`` descendant processes (and ``ready()`` holds),
    SIGKILL it while it is still running, and assert that every descendant has ended within 10 s."""
    process = subprocess.Popen(
        [sys.executable, "-m", "servegym", *argv], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + timeout_s
        while len(children := _descendants(process.pid)) < workers or (ready is not None and not ready()):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, f"only {len(children)} child processes after {timeout_s} s"
            time.sleep(0.05 if ready is not None else 0.2)
        if ready is None:
            time.sleep(0.5)  # let the workers get into their task
        children = _descendants(process.pid)
        assert process.poll() is None, "the job ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10.0
        while (alive := [pid for pid in children if process_running(pid)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in alive:  # fail, but do not leave them running for the rest of the suite
            os.kill(pid, signal.SIGKILL)
        assert not alive, f"child processes {alive} of the killed job still running"
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()


@pytest.mark.skipif(not LINUX, reason="parent-death signals are Linux-only")
def test_sigkill__of_a_sweep_driver_ends_its_fork_server_and_workers(tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text(
        'name = "slow"\n[scenarios.slow]\nscenario = "azure"\n'
        '[sweep]\npolicies = ["milp-rolling"]\nscenarios = ["slow"]\nseeds = [0, 1, 2, 3]\n'
    )
    argv = ["sweep", str(config), "--workers", "2", "--store", str(tmp_path / "store"), "--no-progress"]
    _kill_and_expect_no_survivors(argv, tmp_path, workers=4)  # resource tracker, fork server, two workers


@pytest.mark.skipif(not (LINUX and HAS_RL), reason="needs Linux and the rl extra")
def test_sigkill__of_training_ends_its_subproc_vec_env_workers(tmp_path):
    argv = ["train", "--out", str(tmp_path / "run"), "--timesteps", "1000000", "--n-envs", "2", "--no-progress"]
    _kill_and_expect_no_survivors(argv, tmp_path, workers=2)


@pytest.mark.skipif(not HAS_RAY, reason="needs the ray extra")
def test_ray__an_address_that_accepts_but_never_answers_fails_within_the_timeout(tmp_path):
    config = tmp_path / "toy.toml"
    config.write_text(
        '[scenarios.toy]\nscenario = "toy"\nhorizon_hours = 1.0\n[sweep]\npolicies = ["gh-static"]\n'
        'scenarios = ["toy"]\n'
    )
    with socket.socket() as silent:  # accepts TCP connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        script = textwrap.dedent(
            f"""
            import sys
            import servegym.experiments.sweep as sweep
            from servegym.cli import main

            sweep.RAY_CONNECT_TIMEOUT_S = 1.0
            sys.exit(main(["sweep", {str(config)!r}, "--store", {str(tmp_path / "store")!r}, "--backend", "ray",
                           "--address", {address!r}, "--no-progress"]))
            """
        )
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        elapsed = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    assert f"servegym sweep: error: --address {address}: the Ray cluster did not answer within 1 s" in done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 30.0


TINY_TRAIN = [
    "--env-kwargs",
    '{"scenario": "toy", "demand": "synthetic", "horizon_hours": 2.0, "forecaster": "ewma"}',
    "--hyperparameters",
    '{"n_steps": 32, "batch_size": 32, "n_epochs": 1}',
    "--eval-freq",
    "32",
    "--checkpoint-freq",
    "64",
    "--no-progress",
]
"""A run on the toy instance (8-period episodes) with 64-step rollouts (2 envs × 32), a checkpoint every rollout
and an evaluation every 32 steps."""


def _checkpoint_written(run: Path, steps: int) -> Callable[[], bool]:
    return lambda: (run / "checkpoints" / f"step_{steps:012d}" / "state.json").is_file()


@pytest.mark.skipif(not (LINUX and HAS_RL), reason="needs Linux and the rl extra")
def test_sigkill__a_killed_training_resumes_to_the_uninterrupted_runs_validation_rewards(tmp_path):
    argv = ["train", "--timesteps", "320", "--n-envs", "2", *TINY_TRAIN]
    whole = subprocess.Popen(  # runs meanwhile
        [sys.executable, "-m", "servegym", *argv, "--out", str(tmp_path / "whole")],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        killed = tmp_path / "killed"
        # killed mid-rollout, after the checkpoint at step 128 (a few steps of the next rollout are lost)
        ready = _checkpoint_written(killed, 128)
        _kill_and_expect_no_survivors([*argv, "--out", str(killed)], tmp_path, workers=2, ready=ready)
        resumed = subprocess.run(
            [sys.executable, "-m", "servegym", *argv, "--out", str(killed)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert whole.wait(timeout=120) == 0, whole.stderr.read()
    finally:
        if whole.poll() is None:
            whole.kill()
        whole.stderr.close()
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from step" in resumed.stdout
    expected = json.loads((tmp_path / "whole" / "result.json").read_text())
    got = json.loads((killed / "result.json").read_text())
    assert got["start_timesteps"] >= 128
    assert got["validation_timesteps"] == expected["validation_timesteps"] == list(range(32, 321, 32))
    assert got["validation_rewards"] == expected["validation_rewards"]  # exactly
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == ["step_000000000256", "step_000000000320"]


@pytest.mark.skipif(not HAS_RL, reason="needs the rl extra")
def test_checkpoint__a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    from servegym.agents import checkpoints
    from servegym.agents.train import train
    from servegym.agents.train_config import RunFolderError, TrainConfig

    def config(total: int) -> TrainConfig:
        return TrainConfig(
            out_dir=str(tmp_path / "run"),
            algo="ppo",
            action="delta",
            total_timesteps=total,
            n_envs=1,
            env_kwargs={"horizon_hours": 2.0},
            hyperparameters={"n_steps": 32, "batch_size": 32, "n_epochs": 1},
            eval_freq=32,
            checkpoint_freq=32,
        )

    whole = train(dataclasses.replace(config(128), out_dir=str(tmp_path / "whole")))
    train(config(96))
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_000000000064", "step_000000000096"]
    latest = run / "checkpoints" / "step_000000000096" / "model.zip"
    latest.write_bytes(latest.read_bytes()[:-100])  # truncated
    with pytest.warns(UserWarning, match=r"step_000000000096/model\.zip: damaged .*resuming from the previous"):
        assert checkpoints.latest_checkpoint(run) == run / "checkpoints" / "step_000000000064"
    with pytest.warns(UserWarning, match="damaged"):
        resumed = train(config(128))
    assert resumed.start_timesteps == 64
    assert resumed.validation_rewards == whole.validation_rewards
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_000000000096", "step_000000000128"]
    for name in ("step_000000000096", "step_000000000128"):  # both damaged: the latest one's error
        state = run / "checkpoints" / name / "state.json"
        state.write_text(state.read_text().replace('"sha256": "', '"sha256": "0'))
    with pytest.raises(RunFolderError, match=r"step_000000000128/model\.zip: damaged"):
        checkpoints.latest_checkpoint(run)


@pytest.mark.skipif(not HAS_RL, reason="needs the rl extra")
@pytest.mark.parametrize(
    ("algo", "action", "horizon_hours"),
    [("maskable_ppo", "native", 2.0), ("recurrent_ppo", "scaled", 1.5)],  # 6-step episodes: the checkpoint at 64
)  # restarts them mid-episode, so the LSTM's memory is cut there too
def test_checkpoint__an_interrupt_writes_nothing_and_resuming_repeats_the_uninterrupted_run(
    tmp_path, monkeypatch, algo, action, horizon_hours
):
    from servegym.agents import checkpoints
    from servegym.agents.train import TrainingInterrupted, train
    from servegym.agents.train_config import TrainConfig

    config = TrainConfig(
        out_dir=str(tmp_path / "run"),
        algo=algo,
        action=action,
        total_timesteps=160,
        n_envs=1,
        env_kwargs={"horizon_hours": horizon_hours},
        hyperparameters={"n_steps": 32, "batch_size": 32, "n_epochs": 1},
        eval_freq=32,
        checkpoint_freq=64,
    )
    whole = train(dataclasses.replace(config, out_dir=str(tmp_path / "whole")))

    def interrupt(self) -> bool:
        if self.num_timesteps == 100:  # mid-rollout, after the checkpoint at 64
            raise KeyboardInterrupt
        return True

    monkeypatch.setattr(checkpoints.CheckpointCallback, "_on_step", interrupt)
    with pytest.raises(TrainingInterrupted, match=r"resumes from .*step_000000000064"):
        train(config)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step_000000000064"]
    monkeypatch.undo()
    resumed = train(config)
    assert resumed.start_timesteps == 64
    assert resumed.validation_rewards == whole.validation_rewards


@pytest.mark.skipif(not HAS_RL, reason="needs the rl extra")
def test_model_folder__score_and_evaluate_refuse_a_damaged_model_before_playing_any_episode(
    tmp_path, capsys, monkeypatch
):
    from servegym.agents.train_config import TrainConfig, save_run_config
    from servegym.baselines.runner import episodes as evaluation
    from servegym.cli import main

    run = tmp_path / "run"
    save_run_config(TrainConfig(out_dir=str(run), env_kwargs=TOY, norm_obs=False, norm_reward=False), {})
    (run / "model.zip").write_bytes(b"PK\x03\x04 cut short")
    played = []
    monkeypatch.setattr(evaluation, "run_episode", lambda *args: played.append(args))
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    assert main(["score", "--model", str(run), "--oracle", "gh-static", "--no-progress"]) == 2
    assert main(["evaluate", "--policies", f"gh-static,sb3:{run}", "--scenario", "toy", "--no-progress"]) == 2
    assert time.monotonic() - start < 20.0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(f"{run / 'model.zip'}: not a readable model zip" in line for line in lines), lines
    assert not played
