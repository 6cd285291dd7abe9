"""Latent drift: plain re-planning against robust planning and hysteresis on ``servegym/ProvisioningDrift-v3``.

Usage (from the repository root)::

    python scripts/experiment_drift.py [--days DAY ...] [--seeds 0 1 2 3 4] [--policies ...]
                                       [--out results/experiment_drift]

Every policy plays the same episodes: each Azure test day with each episode seed, the seed drawing the
episode's drift (GPU speed and model error paths, unobserved; docs/drift.md). The same episodes without drift
(``servegym/Provisioning-v3``) are played too, so the table shows what drift costs each policy. Reported per
policy and setting: mean day cost over the episodes with its standard deviation, the unmet and error penalties,
the graded SLO outcomes, GPU-hours.

Writes OUT.json and OUT.md atomically.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from servegym.baselines.runner.episodes import evaluate
from servegym.envs import DEFAULT_ENV_ID
from servegym.io import atomic_write_json, atomic_write_text, block_markers, replace_marked_block
from servegym.tables import markdown_table
from servegym.traces import TEST_DAYS

POLICIES = (
    "tuned-rule",
    "agh-static",
    "gh-rolling",
    "agh-rolling",
    "gh-hold",
    "agh-hold",
    "agh-quantile-hold",
    "gh-robust",
    "agh-robust",
    "gh-adaptive",
    "agh-adaptive",
)
SETTINGS = {"drift": "servegym/ProvisioningDrift-v3", "no drift": DEFAULT_ENV_ID}


RESULTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"
DOC_BLOCKS = {name: block_markers(name, "scripts/experiment_drift.py") for name in ("experiment-drift",)}
"""The tables of docs/results.md this script rewrites (unless ``--no-docs``), between these marker lines."""


def run(env_id: str, policies: list[str], days: list[str], seeds: list[int]) -> pd.DataFrame:
    """One row per (policy, episode)."""
    return evaluate(policies, env_id, days=days, seeds=seeds, progress=False).episodes


def summarise(episodes: pd.DataFrame, setting: str) -> list[dict[str, Any]]:
    rows = []
    for policy, group in episodes.groupby("policy", sort=False):
        rows.append(
            {
                "setting": setting,
                "policy": policy,
                "episodes": len(group),
                "day cost $": group["total_cost"].mean(),
                "± sd $": group["total_cost"].std(ddof=1) if len(group) > 1 else 0.0,
                "unmet penalty $": group["unmet_penalty"].mean(),
                "error penalty $": group["error_penalty"].mean(),
                "SLO violation %": 100 * group["slo_violation_rate"].mean(),
                "delay viol. %": 100 * group["delay_violation_rate"].mean(),
                "error viol. %": 100 * group["error_violation_rate"].mean(),
                "unserved %": 100 * group["unserved_rate"].mean(),
                "GPU-hours": group["gpu_hours"].mean(),
            }
        )
    return sorted(rows, key=lambda row: row["day cost $"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", nargs="+", default=list(TEST_DAYS), help="Azure days (default: the test days)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="episode seeds")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), help="policies to compare")
    parser.add_argument("--out", default="results/experiment_drift", help="output path without extension")
    parser.add_argument("--no-docs", action="store_true", help="leave the tables of docs/results.md as they are")
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    per_episode: dict[str, list[dict[str, Any]]] = {}
    for setting, env_id in SETTINGS.items():
        episodes = run(env_id, args.policies, args.days, args.seeds)
        per_episode[setting] = episodes.to_dict("records")
        rows += summarise(episodes, setting)
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs"
    command = (
        f"python scripts/experiment_drift.py --days {' '.join(args.days)} --seeds {' '.join(map(str, args.seeds))}"
    )
    markdown = (
        f"Latent drift ({date}; {machine}); command: `{command}`\n\n"
        f"Mean over {len(args.days)} days × {len(args.seeds)} seeds; the seed draws the drift paths.\n\n"
        + markdown_table(pd.DataFrame(rows))
        + "\n"
    )
    print(markdown)
    atomic_write_json(
        f"{args.out}.json",
        {"date": date, "machine": machine, "command": command, "summary": rows, "episodes": per_episode},
    )
    atomic_write_text(f"{args.out}.md", markdown)
    if not args.no_docs:
        replace_marked_block(RESULTS_DOC, *DOC_BLOCKS["experiment-drift"], markdown_table(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
