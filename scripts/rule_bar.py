"""The bar a learned agent must clear: the tuned rule beside the untuned baselines on every setting's test episodes.

Usage (from the repository root)::

    python scripts/rule_bar.py [--env ID ...] [--policies P,Q,...] [--out results/rule_bar]

Plays each policy on the test episodes of ``servegym.envs.protocol`` (the held-out days × seeds 0–2, or seeds
0–2 of the synthetic settings) and writes, per setting, the mean cost in $ per episode, the SLO-violation rate
and GPU-hours, and each policy's cost relative to the tuned rule: ``--out/rule_bar.json`` (every episode),
``--out/rule_bar.md``, and replaces the table between the ``rule-bar`` markers of docs/benchmark.md ("The
tuned-rule bar on the test episodes"; not with ``--no-docs``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import servegym.envs  # noqa: F401  (registers the ids)
from servegym.baselines.runner.episodes import run_episode
from servegym.baselines.runner.policies import make_policy
from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.protocol import protocol_for
from servegym.io import atomic_write_json, atomic_write_text, block_markers, replace_marked_block, run_provenance

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("docs/benchmark.md",)
"""Documents (from the repository root) that show the table between the ``rule-bar`` markers."""
BEGIN, END = block_markers("rule-bar", "scripts/rule_bar.py")
DEFAULT_SETTINGS = (DEFAULT_ENV_ID, "servegym/ProvisioningDrift-v3", "servegym/ProvisioningVolatile-v3")
DEFAULT_POLICIES = (
    "tuned-rule",
    "tuned-mix",
    "agh-mix",
    "gh-quantile-hold",
    "agh-quantile-hold",
    "gh-hold",
    "agh-hold",
    "gh-rolling",
    "agh-rolling",
    "gh-adaptive",
    "agh-static",
)


def markdown_table(report: dict) -> str:
    """One table per setting: mean cost, SLO violations, GPU-hours, cost relative to ``tuned-rule``."""
    lines = [
        f"Test episodes of docs/benchmark.md, {report['date'][:10]}, commit {report['commit']}; $ per episode, mean "
        "over the episodes; SLO violations request-weighted.",
        "",
    ]
    for env_id, rows in report["settings"].items():
        bar = rows["tuned-rule"]["mean_cost"] if "tuned-rule" in rows else None
        lines += [
            f"**`{env_id}`** ({rows[next(iter(rows))]['episodes']} episodes)",
            "",
            "| policy | cost $ | vs tuned-rule | SLO violations | GPU-hours |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, row in sorted(rows.items(), key=lambda item: item[1]["mean_cost"]):
            relative = "—" if bar is None else f"{100.0 * (row['mean_cost'] / bar - 1.0):+.1f} %"
            lines.append(
                f"| {name} | {row['mean_cost']:,.0f} | {relative} | {100.0 * row['slo_violation_rate']:.1f} % | "
                f"{row['gpu_hours']:,.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", action="append", help="setting (repeatable; default: default, Drift, Volatile)")
    parser.add_argument("--policies", default=",".join(DEFAULT_POLICIES), help="comma-separated baseline names")
    parser.add_argument("--out", default="results/rule_bar", help="folder for rule_bar.json and rule_bar.md")
    parser.add_argument("--no-docs", action="store_true", help="leave the table of docs/benchmark.md")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    policies = [p for p in args.policies.split(",") if p]
    report: dict = {
        **run_provenance(),
        "settings": {},
        "episodes": [],
    }
    for env_id in args.env or DEFAULT_SETTINGS:
        protocol = protocol_for(env_id)
        env = gym.make(env_id)
        rows = {}
        for name in policies:
            policy = make_policy(name, env.unwrapped)
            start = time.perf_counter()
            records = []
            for seed, options in protocol.test:
                record, _ = run_episode(env, policy, seed, options)
                records.append(record)
                report["episodes"].append({"env_id": env_id, "policy": name, "seed": seed, **options, **record})
            rows[name] = {
                "episodes": len(records),
                "mean_cost": float(np.mean([r["total_cost"] for r in records])),
                "slo_violation_rate": float(np.mean([r["slo_violation_rate"] for r in records])),
                "gpu_hours": float(np.mean([r["gpu_hours"] for r in records])),
                "wall_s": time.perf_counter() - start,
            }
            print(f"{env_id:34} {name:20} ${rows[name]['mean_cost']:>12,.2f}", file=sys.stderr)
        env.close()
        report["settings"][env_id] = rows
        atomic_write_json(out / "rule_bar.json", report)
    table = markdown_table(report)
    atomic_write_text(out / "rule_bar.md", table)
    for doc in () if args.no_docs else DOCS:
        replace_marked_block(ROOT / doc, BEGIN, END, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
