"""Trained agents and the rules on demand shapes no agent trained on: the last clause of issue #14's target.

Usage (from the repository root)::

    python scripts/score_unseen_shapes.py RUN_DIR [RUN_DIR ...] [--shapes double-peak,night-batch,shifted,bursty]
        [--seeds 0] [--policies tuned-rule,agh-quantile-hold,gh-hold] [--out results/unseen_shapes]

Writes each shape of ``servegym.traces.shapes`` (seed 0, deterministic bytes) into a temporary folder and scores
the runs on its first test day (``trace:…?start=6``, Sunday 2026-11-08) with ``servegym.agents.scoring.score``:
every run, the reference (``agh-static``), the rules named by ``--policies`` and the perfect-foresight oracle
(solved fresh, under the shipped stopping rule: minutes per shape). The runs must share their env settings
(one setting per call). ``--out.json`` holds every (policy, episode) row with the run's provenance;
``--out.md`` the mean cost, SLO-violation rate and GPU-hours per shape and policy (agents: the mean over runs,
and the runs' range), with each policy's cost relative to ``tuned-rule``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from servegym.agents.scoring import score
from servegym.errors import ServegymError
from servegym.io import atomic_write_json, atomic_write_text, run_provenance
from servegym.traces.shapes import SHAPES, write_shape

DEFAULT_SHAPES = ("double-peak", "night-batch", "shifted", "bursty")
DEFAULT_POLICIES = ("tuned-rule", "agh-quantile-hold", "gh-hold")
FIRST_TEST_DAY = 6
"""Index of the shapes' first test day (the trace split rule: six train days, then two test days)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders of servegym train (one env setting)")
    parser.add_argument("--shapes", default=",".join(DEFAULT_SHAPES), help=f"comma-separated, of {sorted(SHAPES)}")
    parser.add_argument("--seeds", default="0", help="comma-separated episode seeds")
    parser.add_argument("--policies", default=",".join(DEFAULT_POLICIES), help="rules to play beside the runs")
    parser.add_argument("--out", default="results/unseen_shapes", help="output path without suffix")
    args = parser.parse_args(argv)
    args.shapes = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in args.shapes if s not in SHAPES]
    if unknown or not args.shapes:
        parser.error(f"--shapes: {unknown or 'empty'} not among {sorted(SHAPES)}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: comma-separated integers >= 0")
    if any(s < 0 for s in args.seeds):
        parser.error(f"--seeds {args.seeds}: integers >= 0")
    args.policies = [p for p in args.policies.split(",") if p]
    return args


def summary_rows(scores: pd.DataFrame, shape: str) -> list[dict]:
    """Per policy: mean cost, SLO violations, GPU-hours; agents also the cheapest and dearest run."""
    rows = []
    for policy, group in scores.groupby("policy", sort=False):
        per_run = group.groupby("run_dir")["total_cost"].mean()
        rows.append(
            {
                "shape": shape,
                "policy": policy,
                "kind": group["kind"].iloc[0],
                "runs": int(group["run_dir"].nunique()) if group["kind"].iloc[0] == "agent" else 0,
                "cost": float(group["total_cost"].mean()),
                "cost_min_run": float(per_run.min()),
                "cost_max_run": float(per_run.max()),
                "slo_violation_rate": float(group["slo_violation_rate"].mean()),
                "gpu_hours": float(group["gpu_hours"].mean()),
            }
        )
    return rows


def markdown(rows: list[dict], provenance: dict) -> str:
    lines = [
        f"Unseen demand shapes (`scripts/score_unseen_shapes.py`, {provenance['date'][:16]} UTC, commit "
        f"{provenance['commit'][:7]}); first test day of each shape of `servegym.traces.shapes` (seed 0); $ per day; "
        "agents: mean over runs [cheapest, dearest run].",
        "",
        "| shape | policy | kind | cost $ | vs tuned-rule | SLO violations | GPU-hours |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for shape in dict.fromkeys(r["shape"] for r in rows):
        group = sorted((r for r in rows if r["shape"] == shape), key=lambda r: r["cost"])
        bar = next((r["cost"] for r in group if r["policy"] == "tuned-rule"), None)
        for r in group:
            cost = f"{r['cost']:,.0f}"
            if r["runs"] > 1:
                cost += f" [{r['cost_min_run']:,.0f}, {r['cost_max_run']:,.0f}]"
            versus = f"{100 * (r['cost'] / bar - 1):+.1f} %" if bar else "–"
            lines.append(
                f"| {shape} | `{r['policy']}` | {r['kind']} | {cost} | {versus} | "
                f"{100 * r['slo_violation_rate']:.2f} % | {r['gpu_hours']:,.0f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    provenance = run_provenance()
    all_scores, rows = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="servegym-shapes-") as folder:
            for shape in args.shapes:
                path = write_shape(shape, Path(folder) / f"{shape}-s0.csv.gz", 0)
                scores = score(
                    args.runs,
                    demand=f"trace:{path}?start={FIRST_TEST_DAY}",
                    seeds=args.seeds,
                    baselines=args.policies,
                )
                scores.insert(0, "shape", shape)
                all_scores.append(scores)
                rows += summary_rows(scores, shape)
                print(markdown([r for r in rows if r["shape"] == shape], provenance), flush=True)
    except ServegymError as error:
        print(f"score_unseen_shapes: error: {error}", file=sys.stderr)
        return 2
    table = pd.concat(all_scores, ignore_index=True)
    table = table.astype(object).where(table.notna(), None)  # JSON has no NaN
    report = {**provenance, "args": vars(args), "summary": rows, "episodes": table.to_dict(orient="records")}
    atomic_write_json(out.with_suffix(".json"), report)
    atomic_write_text(out.with_suffix(".md"), markdown(rows, provenance))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
