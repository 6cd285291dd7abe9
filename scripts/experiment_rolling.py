"""Rolling vs static planning under synthetic demand volatility σ and on real Azure test days.

Usage (from the repository root)::

    python scripts/experiment_rolling.py [--sigmas 0 0.01 0.02 0.03 0.04 0.05] [--seeds 0 1 2 3 4]
                                         [--policies agh-rolling agh-static milp-static gh-rolling gh-static]
                                         [--model RUN_DIR ...] [--period-minutes 15] [--out results/experiment_rolling]

The ``azure`` scenario in the environment (24-hour episodes): synthetic demand (the mean Azure daily profile ×
mean-one lognormal noise of volatility σ) for every σ and seed, then the two Azure test days. For each policy:
mean and standard deviation of the episode cost, and the change of the rolling planners' mean cost against the
static plans (the paper: AGH-5min vs AGH-24h −16 % and vs DM-24h −48 % at σ = 0.05). Each finished (σ, policy)
block is appended to OUT.partial.jsonl so an interrupted run resumes; the end writes OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from servegym.baselines.runner.episodes import evaluate
from servegym.io import atomic_write_json, atomic_write_text, block_markers, replace_marked_block
from servegym.tables import markdown_table
from servegym.traces import TEST_DAYS

RESULTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"
DOC_BLOCKS = {name: block_markers(name, "scripts/experiment_rolling.py") for name in ("experiment-rolling",)}
"""The tables of docs/results.md this script rewrites (unless ``--no-docs``), between these marker lines."""


def run_block(setting: str, policy: str, spec: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """All episodes of one policy in one setting (a σ value or the Azure test days)."""
    env_kwargs: dict[str, Any] = {"period_minutes": args.period_minutes}
    if setting == "azure-test":
        result = evaluate({policy: spec}, days=list(TEST_DAYS), seeds=[0], env_kwargs=env_kwargs, progress=False)
    else:
        env_kwargs |= {"demand": "synthetic", "sigma": float(setting)}
        result = evaluate({policy: spec}, seeds=args.seeds, env_kwargs=env_kwargs, progress=False)
    return [
        {
            "setting": setting,
            "policy": policy,
            "episode": r["episode"],
            "cost": r["total_cost"],
            "unmet_penalty": r["unmet_penalty"],
            "reconfiguration": r["reconfiguration"],
            "violation_rate": r["delay_violation_rate"] + r["error_violation_rate"] + r["unserved_rate"],
        }
        for r in result.episodes.to_dict("records")
    ]


def summarise(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    table = frame.groupby(["setting", "policy"], sort=False).agg(
        mean_cost=("cost", "mean"),
        std_cost=("cost", "std"),
        violation_pct=("violation_rate", "mean"),
        episodes=("cost", "size"),
    )
    table["violation_pct"] *= 100
    rows = []
    for setting, block in table.groupby(level=0, sort=False):
        means = block["mean_cost"].droplevel(0)
        for (_, policy), row in block.iterrows():
            entry = {"setting": setting, "policy": policy, **row.to_dict()}
            if not policy.endswith("-static"):
                for static in ("agh-static", "milp-static"):
                    if static in means:
                        entry[f"vs {static} %"] = 100 * (row["mean_cost"] / means[static] - 1)
            rows.append(entry)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sigmas", nargs="+", default=["0", "0.01", "0.02", "0.03", "0.04", "0.05"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--policies", nargs="+", default=["agh-rolling", "agh-static", "milp-static", "gh-rolling", "gh-static"]
    )
    parser.add_argument("--model", nargs="*", default=[], help="trained agent run directories (servegym train)")
    parser.add_argument("--period-minutes", type=int, default=15)
    parser.add_argument("--out", default="results/experiment_rolling", help="output path without extension")
    parser.add_argument("--no-docs", action="store_true", help="leave the tables of docs/results.md as they are")
    args = parser.parse_args()

    specs: dict[str, Any] = {name: name for name in args.policies}
    if args.model:
        from servegym.agents.adapter import sb3_policy_factory

        specs |= {f"agent:{os.path.basename(p.rstrip('/'))}": sb3_policy_factory(p) for p in args.model}
    partial = Path(f"{args.out}.partial.jsonl")
    done: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            try:
                block = json.loads(line)
            except json.JSONDecodeError:
                continue  # cut by an interruption: that block runs again
            done[(block["setting"], block["policy"])] = block["records"]
    partial.parent.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    for setting in [*args.sigmas, "azure-test"]:
        for policy, spec in specs.items():
            block = done.get((setting, policy))
            if block is None:
                block = run_block(setting, policy, spec, args)
                with partial.open("a") as stream:
                    stream.write(json.dumps({"setting": setting, "policy": policy, "records": block}) + "\n")
                print(f"σ/setting {setting} {policy}: mean ${pd.DataFrame(block)['cost'].mean():,.0f}", flush=True)
            records += block
    table = summarise(records)
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs"
    markdown = (
        f"Rolling vs static ({date}; {machine}); `azure` scenario, 24-h episodes of {args.period_minutes}-minute "
        f"periods, synthetic demand seeds {args.seeds} per σ and the Azure test days {list(TEST_DAYS)}.\n\n"
        + markdown_table(table)
        + "\n"
    )
    print(markdown)
    atomic_write_json(f"{args.out}.json", {"date": date, "machine": machine, "records": records})
    atomic_write_text(f"{args.out}.md", markdown)
    if not args.no_docs:
        replace_marked_block(RESULTS_DOC, *DOC_BLOCKS["experiment-rolling"], markdown_table(table))
    partial.unlink()


if __name__ == "__main__":
    main()
