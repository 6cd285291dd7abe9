"""Benchmark end-to-end training throughput: SB3 PPO env steps per second per action space, environment, action
wrapper, normaliser and policy together.

Usage (from the repository root)::

    python scripts/bench_training.py [--actions native,headroom,scaled] [--steps 12288]
                                     [--settings dummy:8,subproc:2] [--torch-threads 1]
                                     [--out runs/bench_training.json] [--no-docs]

Each action space trains PPO (``MultiInputPolicy``, CPU) with the trainer's stack and its default hyperparameters
(``servegym.agents.train_config``): ``gymnasium.make`` of the env id, the run's action wrapper
(``wrap_action``), ``Monitor``, ``VecNormalize`` of every Box entry but ``action_mask`` and of the reward, for
``--steps`` env steps (rounded up to whole rollouts, ``n_steps × n_envs``; the count trained is recorded). No
evaluation, no checkpoints, no TensorBoard. The throughput is SB3's ``fps``: steps trained ÷ wall time of
``learn``; a callback splits that time into rollouts (env, wrapper, policy forward, normaliser) and updates (PPO's
epochs). Each of ``--settings`` (``KIND:N``) runs every action space: ``dummy:N`` steps N envs in this process
(``DummyVecEnv``, one core), ``subproc:N`` in N ``SubprocVecEnv`` workers (fork; what ``servegym train --n-envs N``
does by default).

Before the clock starts, the Holt-Winters forecaster is fitted once on the history of every Azure train day
(``servegym.envs.forecast`` caches the fit per history and process, 0.4–1.3 s each), so a short run measures the
steady state a long run reaches after its first few resets; ``--cold-forecasts`` leaves the cache empty.

Writes the JSON (atomic, with date, command, commit, machine, load averages) and, unless ``--no-docs``, replaces
the block between the ``bench-training`` markers of docs/agents.md with the table.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from servegym.agents.train_config import ACTIONS, MASK_KEY, TrainConfig, make_base_env, wrap_action
from servegym.envs import DEFAULT_ENV_ID
from servegym.io import atomic_write_json, block_markers, machine_info, replace_marked_block, source_commit
from servegym.traces import TRAIN_DAYS

AGENTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "agents.md"
DOC_BLOCK = block_markers("bench-training", "scripts/bench_training.py")
DEFAULT_ACTIONS = ("native", "headroom", "scaled")
VEC_KINDS = ("dummy", "subproc")


def warm_forecasts(env_id: str) -> float:
    """Fit the forecaster on every train day's history (the per-process cache); returns the seconds it took."""
    started = time.perf_counter()
    env = gym.make(env_id)
    for day in TRAIN_DAYS:
        env.reset(seed=0, options={"day": day})
    env.close()
    return time.perf_counter() - started


def _env(config: TrainConfig) -> gym.Env:
    from stable_baselines3.common.monitor import Monitor

    from servegym.envs.wrappers import EPISODE_INFO_KEYS

    return Monitor(wrap_action(make_base_env(config), config), info_keywords=EPISODE_INFO_KEYS)


def vec_env(config: TrainConfig, kind: str):
    """``config.n_envs`` monitored, action-wrapped envs in this process (``dummy``) or in fork workers."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    factories = [functools.partial(_env, config) for _ in range(config.n_envs)]
    if kind == "dummy":
        return DummyVecEnv(factories)
    return SubprocVecEnv(factories, start_method="fork")


def phase_timer():
    """An SB3 callback that adds up the wall time of rollouts and of the updates between them."""
    from stable_baselines3.common.callbacks import BaseCallback

    class PhaseTimer(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rollout_s = 0.0
            self.update_s = 0.0
            self._mark: float | None = None

        def _on_rollout_start(self) -> None:
            now = time.perf_counter()
            if self._mark is not None:
                self.update_s += now - self._mark
            self._mark = now

        def _on_rollout_end(self) -> None:
            now = time.perf_counter()
            self.rollout_s += now - (self._mark or now)
            self._mark = now

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            if self._mark is not None:
                self.update_s += time.perf_counter() - self._mark

    return PhaseTimer()


def parse_settings(text: str) -> list[tuple[str, int]]:
    """``dummy:8,subproc:2`` → [("dummy", 8), ("subproc", 2)]; raises ValueError naming a bad item."""
    settings = []
    for item in (part for part in text.split(",") if part):
        kind, _, count = item.partition(":")
        if kind not in VEC_KINDS or not count.isdigit() or int(count) < 1:
            raise ValueError(f"setting {item!r}: need KIND:N with KIND one of {list(VEC_KINDS)} and N ≥ 1")
        settings.append((kind, int(count)))
    if not settings:
        raise ValueError("no settings given")
    return settings


def bench_action(action: str, vec: str, n_envs: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train PPO on one action space for ``args.steps`` steps; returns the record of its throughput."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    with tempfile.TemporaryDirectory(prefix="bench_training_") as folder:
        config = TrainConfig(
            out_dir=folder,
            algo="ppo",
            action=action,
            env_id=args.env_id,
            n_envs=n_envs,
            seed=args.seed,
            torch_threads=args.torch_threads,
        )
        hyperparameters = copy.deepcopy(config.resolved_hyperparameters())
        torch.set_num_threads(args.torch_threads)
        venv = vec_env(config, vec)
        keys = [key for key in venv.observation_space.spaces if key != MASK_KEY]
        env = VecNormalize(venv, norm_obs_keys=keys, gamma=float(hyperparameters.get("gamma", 0.99)))
        model = PPO("MultiInputPolicy", env, seed=args.seed, device="cpu", verbose=0, **hyperparameters)
        timer = phase_timer()
        load_before = os.getloadavg()
        wall, cpu = time.perf_counter(), time.process_time()
        model.learn(args.steps, callback=timer)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        load_after = os.getloadavg()
        env.close()
    steps = int(model.num_timesteps)
    rollout = hyperparameters["n_steps"] * n_envs
    observation_size = sum(int(np.prod(space.shape)) for space in model.observation_space.spaces.values())
    return {
        "action": action,
        "action_space": str(model.action_space),
        "observation_size": observation_size,
        "vec_env": vec,
        "n_envs": n_envs,
        "torch_threads": args.torch_threads,
        "hyperparameters": {k: v for k, v in hyperparameters.items() if k != "policy_kwargs"},
        "net_arch": hyperparameters.get("policy_kwargs", {}).get("net_arch"),
        "steps": steps,
        "rollouts": steps // rollout,
        "wall_s": round(wall, 3),
        "cpu_s_this_process": round(cpu, 3),
        "fps": round(steps / wall, 1),
        "rollout_s": round(timer.rollout_s, 3),
        "update_s": round(timer.update_s, 3),
        "rollout_steps_per_s": round(steps / max(timer.rollout_s, 1e-9), 1),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in load_after],
    }


def table(payload: dict[str, Any]) -> str:
    """The Markdown table of a benchmark payload (what the docs block shows)."""
    machine = payload["machine"]
    lines = [
        f"`scripts/bench_training.py` of {payload['date']} (commit `{payload['commit']}`), `{payload['env_id']}`, "
        f"{machine['cpu_count']} × {machine['cpu_model']}, load average {payload['load_average_at_start'][0]} at "
        f"start; PPO, `MultiInputPolicy`, CPU, forecasts {payload['forecasts']}.",
        "",
        "| action | vec env × envs | torch threads | steps | wall s | fps | rollout steps/s | update s | load avg "
        "(1 min, before → after) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in payload["results"]:
        lines.append(
            f"| `{row['action']}` | {row['vec_env']} × {row['n_envs']} | {row['torch_threads']} | {row['steps']:,} | "
            f"{row['wall_s']:.1f} | **{row['fps']:,.0f}** | {row['rollout_steps_per_s']:,.0f} | "
            f"{row['update_s']:.1f} | {row['load_average_before'][0]} → {row['load_average_after'][0]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmarks, print the table and write the JSON; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", "--env-id", dest="env_id", default=DEFAULT_ENV_ID, help="registered environment id")
    parser.add_argument("--actions", default=",".join(DEFAULT_ACTIONS), help=f"comma-separated, of {list(ACTIONS)}")
    parser.add_argument("--steps", type=int, default=12_288, help="env steps per action space (default 12288)")
    parser.add_argument(
        "--settings", default="dummy:8,subproc:2", help="comma-separated KIND:N vectorisations (dummy:8,subproc:2)"
    )
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model and the envs (default 0)")
    parser.add_argument("--cold-forecasts", action="store_true", help="do not fit the forecasts before timing")
    parser.add_argument("--out", default="runs/bench_training.json", help="JSON output (runs/bench_training.json)")
    parser.add_argument("--no-docs", action="store_true", help="leave the table of docs/agents.md as it is")
    args = parser.parse_args(argv)
    actions = [action for action in args.actions.split(",") if action]
    unknown = sorted(set(actions) - set(ACTIONS))
    if unknown or not actions:
        parser.error(f"--actions {args.actions!r}: need names of {list(ACTIONS)}")
    try:
        settings = parse_settings(args.settings)
    except ValueError as error:
        parser.error(f"--settings {args.settings!r}: {error}")
    if args.steps < 1 or args.torch_threads < 1:
        parser.error("--steps and --torch-threads must be ≥ 1")
    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()
    warm_s = None if args.cold_forecasts else warm_forecasts(args.env_id)
    records = []
    for vec, n_envs in settings:
        for action in actions:
            record = bench_action(action, vec, n_envs, args)
            records.append(record)
            print(
                f"{action} {vec}×{n_envs}: {record['steps']} steps in {record['wall_s']} s, {record['fps']} fps, "
                f"load {record['load_average_before'][0]} → {record['load_average_after'][0]}",
                flush=True,
            )
    payload = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        "env_id": args.env_id,
        "commit": source_commit() or "unknown",
        "machine": machine_info(("gymnasium", "highspy", "stable-baselines3", "torch")),
        "load_average_at_start": [round(value, 2) for value in load_before],
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "forecasts": "cold (fitted during training)" if warm_s is None else f"fitted before timing ({warm_s:.1f} s)",
        "results": records,
    }
    atomic_write_json(args.out, payload)
    text = table(payload)
    if not args.no_docs:
        replace_marked_block(AGENTS_DOC, *DOC_BLOCK, text)
    print(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
