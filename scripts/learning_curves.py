"""Learning curves of trained runs on the validation day, with the baselines' rewards on the same day for scale.

Usage (from the repository root)::

    python scripts/learning_curves.py RUN_DIR [RUN_DIR ...] [--baselines agh-rolling,gh-hold,agh-static]
                                      [--seeds 0,1,2] [--out results/learning_curves]

Reads each run's ``evaluations.npz`` (the validation-day evaluations written during training: mean episode reward
= −cost ÷ reward_scale summed over the day) and plays the baselines on the validation day with the runs' env
settings (all runs must share them) for each episode seed, converting their cost to the same reward. Writes
OUT.json, OUT.md (the table) and OUT.png (reward vs training steps, one line per run, baselines as horizontal
lines) atomically.
"""

from __future__ import annotations

import argparse
import io
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from servegym.agents.scoring import env_settings
from servegym.agents.train_config import load_run_config, resolved_env_kwargs
from servegym.baselines.runner.episodes import evaluate
from servegym.envs.provisioning import ProvisioningEnv
from servegym.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from servegym.tables import markdown_table
from servegym.traces import VALIDATION_DAY

EVALUATIONS_FILE = "evaluations.npz"


def run_curve(run_dir: Path) -> dict[str, Any]:
    """A run's display name (folder, label, training seed), evaluation step counts and mean validation rewards."""
    path = run_dir / EVALUATIONS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; has {run_dir} reached its first evaluation?")
    config = load_run_config(run_dir)
    with np.load(path) as data:
        timesteps = [int(t) for t in data["timesteps"]]
        rewards = [float(np.mean(r)) for r in data["results"]]
    return {
        "run": str(run_dir),
        "name": f"{run_dir.name} ({config.label}, seed {config.seed})",
        "timesteps": timesteps,
        "rewards": rewards,
    }


def baseline_rewards(run_dir: Path, baselines: list[str], seeds: list[int]) -> dict[str, float]:
    """Mean validation-day reward of each baseline over the episode seeds, in the run's environment."""
    config = load_run_config(run_dir)
    kwargs = resolved_env_kwargs(config)
    result = evaluate(baselines, config.env_id, days=[VALIDATION_DAY], seeds=seeds, env_kwargs=kwargs, progress=False)
    env: ProvisioningEnv = gym.make(config.env_id, **kwargs).unwrapped  # type: ignore[assignment]
    costs = result.episodes.groupby("policy")["total_cost"].mean()
    return {name: -float(costs[name]) / env.reward_scale for name in baselines}


def plot(curves: list[dict[str, Any]], baselines: dict[str, float]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    for curve in curves:
        axes.plot(curve["timesteps"], curve["rewards"], marker="o", label=curve["name"])
    styles = iter(["--", ":", "-.", (0, (5, 1)), (0, (1, 3))])
    for name, reward in baselines.items():
        axes.axhline(reward, color="grey", linestyle=next(styles, "--"), label=name)
    axes.set_xlabel("training steps")
    axes.set_ylabel(f"validation-day reward ({VALIDATION_DAY})")
    axes.set_title("Learning curves (higher is better; reward = −cost ÷ reward_scale)")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders written by servegym train")
    parser.add_argument("--baselines", default="agh-rolling,gh-hold,agh-static", help="comma-separated baselines")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated episode seeds of the baselines")
    parser.add_argument("--out", default="results/learning_curves", help="output path without extension")
    args = parser.parse_args(argv)
    runs = [Path(run) for run in args.runs]
    configs = {str(run): load_run_config(run) for run in runs}
    settings = {run: (config.env_id, env_settings(config)) for run, config in configs.items()}
    if len(set(settings.values())) > 1:
        print(f"runs differ in environment settings: {settings}", file=sys.stderr)
        return 2
    curves = [run_curve(run) for run in runs]
    baselines = [name for name in args.baselines.split(",") if name]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    rewards = baseline_rewards(runs[0], baselines, seeds) if baselines else {}
    env_id, settings_text = next(iter(settings.values()))
    rows = [
        {
            "policy": curve["name"],
            "first evaluation": f"{curve['rewards'][0]:.1f} @ {curve['timesteps'][0]:,}",
            "best": f"{max(curve['rewards']):.1f} @ {curve['timesteps'][int(np.argmax(curve['rewards']))]:,}",
            "last": f"{curve['rewards'][-1]:.1f} @ {curve['timesteps'][-1]:,}",
        }
        for curve in curves
    ]
    rows += [
        {"policy": name, "first evaluation": "", "best": "", "last": f"{reward:.1f}"}
        for name, reward in rewards.items()
    ]
    out = Path(args.out)
    written = datetime.now(timezone.utc).isoformat(timespec="seconds")
    header = (
        f"Validation-day reward ({VALIDATION_DAY}, `{env_id}` {settings_text}), reward @ training steps; "
        f"baselines: mean over episode seeds {args.seeds}. Written {written}."
    )
    table = markdown_table(pd.DataFrame(rows))
    atomic_write_text(out.with_suffix(".md"), header + "\n\n" + table + "\n")
    atomic_write_json(
        out.with_suffix(".json"),
        {"env_id": env_id, "validation_day": VALIDATION_DAY, "curves": curves, "baselines": rewards, "seeds": seeds},
    )
    atomic_write_bytes(out.with_suffix(".png"), plot(curves, rewards))
    print(header + "\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
