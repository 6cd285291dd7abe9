"""Ablation of the three GH mechanisms: GH and AGH with all on against M1, M2 and M3 switched off one at a time.

Usage (from the repository root)::

    python scripts/ablation.py [--sizes 6,6,10 10,10,10 20,20,20] [--seeds 5] [--out results/ablation.json]
                               [--md results/ablation.md]

Runs GH and AGH on the ``paper`` scenario and on ``random`` instances of each size for seeds 0..N−1, once per
variant. Reports per variant and instance group: AGH's feasibility rate, mean cost over its feasible runs, mean
cost relative to full AGH on the instances both solved and median runtime, and the same feasibility rate and
relative cost for GH (relative to full GH). Writes the per-run records and the summary as JSON
and the summary as a markdown table (both files written atomically) and prints the table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from servegym.baselines.heuristics.adaptive import solve_agh
from servegym.baselines.heuristics.greedy import solve_gh
from servegym.baselines.heuristics.mechanisms import Mechanisms
from servegym.envs.instance import Instance
from servegym.envs.scenarios import make_instance
from servegym.io import atomic_write_json, atomic_write_text, block_markers, replace_marked_block

VARIANTS: dict[str, Mechanisms] = {
    "full": Mechanisms(),
    "no-M1 (TP/PP selection)": Mechanisms(tp_pp_selection=False),
    "no-M2 (coverage ranking)": Mechanisms(coverage_ranking=False),
    "no-M3 (TP upgrade)": Mechanisms(tp_upgrade=False),
}


def parse_size(text: str) -> tuple[int, int, int]:
    """``"6,6,10"`` → (6, 6, 10); raises argparse.ArgumentTypeError naming the allowed form."""
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"size {text!r} must be three positive integers I,J,K, e.g. 6,6,10")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def instances(sizes: list[tuple[int, int, int]], seeds: int) -> list[tuple[str, Instance]]:
    """(group label, instance) pairs: the paper scenario, then each random size for seeds 0..seeds−1."""
    built = [("paper", make_instance("paper"))]
    for size in sizes:
        label = "random " + "x".join(str(s) for s in size)
        built += [(label, make_instance("random", size=size, seed=seed)) for seed in range(seeds)]
    return built


def run(sizes: list[tuple[int, int, int]], seeds: int) -> list[dict[str, Any]]:
    """One record per (instance, variant, planner): feasibility, cost ($ per period), runtime (s), message."""
    records = []
    for group, instance in instances(sizes, seeds):
        for variant, mechanisms in VARIANTS.items():
            for planner in (solve_gh, solve_agh):
                result = planner(instance, mechanisms=mechanisms)
                records.append(
                    {
                        "group": group,
                        "instance": instance.name,
                        "variant": variant,
                        "planner": result.method,
                        "feasible": result.feasible,
                        "cost": result.total_cost if result.feasible else None,
                        "runtime_s": result.runtime_s,
                        "message": result.message,
                    }
                )
                line = f"{instance.name:32s} {variant:26s} {result.method:4s} {result.status:10s}"
                print(f"{line} {result.total_cost:10.4g}", file=sys.stderr)
    return records


def _relative(runs: list[dict[str, Any]], full_cost: dict[str, float | None]) -> float | None:
    ratios = [r["cost"] / full_cost[r["instance"]] for r in runs if r["feasible"] and full_cost[r["instance"]]]
    return statistics.fmean(ratios) if ratios else None


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (group, variant): AGH runs, feasibility, mean cost, cost relative to full AGH, median runtime; GH's
    feasibility and cost relative to full GH."""
    full_cost = {
        planner: {r["instance"]: r["cost"] for r in records if r["variant"] == "full" and r["planner"] == planner}
        for planner in ("gh", "agh")
    }
    rows = []
    for group in dict.fromkeys(r["group"] for r in records):
        for variant in VARIANTS:
            runs = {
                planner: [r for r in records if (r["group"], r["variant"], r["planner"]) == (group, variant, planner)]
                for planner in ("gh", "agh")
            }
            agh_costs = [r["cost"] for r in runs["agh"] if r["feasible"]]
            rows.append(
                {
                    "group": group,
                    "variant": variant,
                    "runs": len(runs["agh"]),
                    "feasible_rate": sum(r["feasible"] for r in runs["agh"]) / len(runs["agh"]),
                    "mean_cost": statistics.fmean(agh_costs) if agh_costs else None,
                    "mean_cost_vs_full": _relative(runs["agh"], full_cost["agh"]),
                    "median_runtime_s": statistics.median(r["runtime_s"] for r in runs["agh"]),
                    "gh_feasible_rate": sum(r["feasible"] for r in runs["gh"]) / len(runs["gh"]),
                    "gh_mean_cost_vs_full": _relative(runs["gh"], full_cost["gh"]),
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The summary as a markdown table."""

    def number(value: float | None, fmt: str) -> str:
        return "–" if value is None else format(value, fmt)

    lines = [
        "| instances | variant | runs | AGH feasible | AGH mean cost ($) | AGH cost / full AGH "
        "| AGH median runtime (s) | GH feasible | GH cost / full GH |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['group']} | {row['variant']} | {row['runs']} | {row['feasible_rate']:.0%} | "
            f"{number(row['mean_cost'], '.3f')} | {number(row['mean_cost_vs_full'], '.3f')} | "
            f"{row['median_runtime_s']:.3f} | {row['gh_feasible_rate']:.0%} | "
            f"{number(row['gh_mean_cost_vs_full'], '.3f')} |"
        )
    return "\n".join(lines) + "\n"


RESULTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"
DOC_BLOCK = block_markers("ablation", "scripts/ablation.py")
"""The table of docs/results.md ("Ablation of the three GH mechanisms") this script rewrites (unless ``--no-docs``)."""


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the ablation, write JSON and markdown, print the table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=parse_size,
        nargs="+",
        default=[(6, 6, 10), (10, 10, 10), (20, 20, 20)],
        help="random instance sizes I,J,K (default: 6,6,10 10,10,10 20,20,20)",
    )
    parser.add_argument("--seeds", type=int, default=5, help="random seeds per size, 0..N-1 (default: 5)")
    parser.add_argument("--out", type=Path, default=Path("results/ablation.json"), help="JSON output path")
    parser.add_argument("--md", type=Path, default=Path("results/ablation.md"), help="markdown output path")
    parser.add_argument("--no-docs", action="store_true", help="leave the table of docs/results.md as it is")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds {args.seeds} must be ≥ 1")
    records = run(args.sizes, args.seeds)
    rows = summarise(records)
    table = markdown(rows)
    config = {"sizes": [list(s) for s in args.sizes], "seeds": args.seeds}
    atomic_write_json(args.out, {"config": config, "summary": rows, "runs": records})
    atomic_write_text(args.md, table)
    if not args.no_docs:
        replace_marked_block(RESULTS_DOC, *DOC_BLOCK, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
