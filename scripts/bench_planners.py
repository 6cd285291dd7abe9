"""Scale benchmark of GH, AGH and the MILP: runtime, feasibility and cost gap to the best proven bound.

Usage (from the repository root)::

    python scripts/bench_planners.py [--sizes 3,3,4 6,6,10 10,10,10 15,15,15 20,20,20] [--seeds 0 1 2 3 4]
                                     [--milp-time-limit 120] [--gh-repeats 20] [--out results/bench_planners]

Grid: the ``paper`` instance and random instances of each size (I query types, J models, K tiers) for each seed.
Per instance: GH (median of ``--gh-repeats`` runs), AGH (seed 0, median of 5 runs), and the MILP (default solver,
one thread, warm-started from the AGH plan, ``--milp-time-limit``). Gaps are (cost − bound) / cost against the
MILP's best proven bound. Each finished instance is appended to ``OUT.partial.jsonl`` so an interrupted run resumes
where it stopped; the end writes ``OUT.json``, ``OUT.md`` and ``OUT.png`` (runtime vs size, log scale) atomically.
Runtimes are wall-clock seconds on whatever else the machine runs; the report states the machine and date.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from servegym.baselines.adaptive import solve_agh
from servegym.baselines.greedy import solve_gh
from servegym.baselines.milp import DEFAULT_SOLVER, solve
from servegym.envs.instance import Instance
from servegym.envs.scenarios import make_instance
from servegym.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from servegym.tables import markdown_table

COST_TOLERANCE = 1e-6
"""Relative tolerance of the cost-order check MILP ≤ AGH ≤ GH."""


def timed(function, repeats: int):
    """(last result, median wall-clock seconds over ``repeats`` calls)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def gap(cost: float | None, bound: float | None) -> float | None:
    if cost is None or bound is None or not np.isfinite(cost):
        return None
    return max(0.0, (cost - bound) / max(cost, 1e-12))


def bench_instance(label: str, size: str, instance: Instance, args: argparse.Namespace) -> dict[str, Any]:
    gh, gh_s = timed(lambda: solve_gh(instance), args.gh_repeats)
    agh, agh_s = timed(lambda: solve_agh(instance, seed=0), args.agh_repeats)
    milp = solve(instance, time_limit_s=args.milp_time_limit, warm_start=agh.plan if agh.feasible else None)
    bound = milp.bound if milp.bound is not None and np.isfinite(milp.bound) else None
    record: dict[str, Any] = {
        "instance": label,
        "size": size,
        "configurations": instance.num_configurations,
        "milp_solver": DEFAULT_SOLVER,
        "milp_time_limit_s": args.milp_time_limit,
        "best_bound": bound,
        "milp_optimal": milp.status == "optimal",
    }
    for name, result, runtime in (("gh", gh, gh_s), ("agh", agh, agh_s), ("milp", milp, milp.runtime_s)):
        cost = result.total_cost if result.feasible else None
        record |= {
            f"{name}_status": result.status,
            f"{name}_feasible": result.feasible,
            f"{name}_cost": cost,
            f"{name}_runtime_s": runtime,
            f"{name}_gap": gap(cost, bound),
        }
    if record["milp_optimal"] and gh.feasible and agh.feasible:
        tolerance = COST_TOLERANCE * max(1.0, abs(milp.total_cost))
        record["cost_order_holds"] = bool(
            milp.total_cost <= agh.total_cost + tolerance and agh.total_cost <= gh.total_cost + tolerance
        )
    return record


def grid(args: argparse.Namespace):
    yield "paper", "paper", lambda: make_instance("paper")
    for size in args.sizes:
        label = "x".join(str(s) for s in size)
        for seed in args.seeds:
            yield (
                f"random {label} s{seed}",
                label,
                lambda size=size, seed=seed: make_instance("random", seed=seed, size=size),
            )


def summarise(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    rows = []
    for size, group in frame.groupby("size", sort=False):
        row: dict[str, Any] = {
            "size": size,
            "instances": len(group),
            "configs (median)": group["configurations"].median(),
        }
        for name in ("gh", "agh", "milp"):
            row[f"{name} median s"] = group[f"{name}_runtime_s"].median()
            row[f"{name} feasible"] = f"{int(group[f'{name}_feasible'].sum())}/{len(group)}"
            gaps = group[f"{name}_gap"].dropna()
            row[f"{name} median gap %"] = 100 * gaps.median() if len(gaps) else float("nan")
        row["milp optimal"] = f"{int(group['milp_optimal'].sum())}/{len(group)}"
        optimal = group[group["milp_optimal"] & group["agh_feasible"]]
        row["agh gap to optimum % (median)"] = 100 * optimal["agh_gap"].median() if len(optimal) else float("nan")
        order = group.get("cost_order_holds", pd.Series(dtype=object)).dropna()
        row["MILP ≤ AGH ≤ GH"] = f"{int(order.sum())}/{len(order)}" if len(order) else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def per_instance(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per instance: each planner's cost ($ per period) and AGH's runtime, the MILP's status and bound,
    and the AGH gap to the bound (to the optimum where the MILP proved one)."""
    frame = pd.DataFrame(records)
    return pd.DataFrame(
        {
            "instance": frame["instance"],
            "GH $": frame["gh_cost"],
            "AGH $": frame["agh_cost"],
            "AGH s": frame["agh_runtime_s"],
            "MILP $": frame["milp_cost"],
            "MILP status": frame["milp_status"],
            "MILP s": frame["milp_runtime_s"],
            "bound $": frame["best_bound"],
            "AGH gap %": 100 * frame["agh_gap"],
        }
    )


def plot(records: list[dict[str, Any]]) -> bytes:
    frame = pd.DataFrame(records)
    order = list(dict.fromkeys(frame["size"]))
    figure, axis = plt.subplots(figsize=(8, 5))
    for name in ("gh", "agh", "milp"):
        medians = frame.groupby("size", sort=False)[f"{name}_runtime_s"].median().reindex(order)
        axis.plot(order, medians.values, marker="o", label=name.upper())
    axis.set_yscale("log")
    axis.set_xlabel("instance (I x J x K)")
    axis.set_ylabel("median runtime (s)")
    axis.set_title("Planner runtime vs instance size")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def parse_size(text: str) -> tuple[int, int, int]:
    parts = tuple(int(p) for p in text.split(","))
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"size {text!r} must be I,J,K")
    return parts  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", nargs="+", type=parse_size, default=[(3, 3, 4), (6, 6, 10), (10, 10, 10), (15, 15, 15), (20, 20, 20)]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--milp-time-limit", type=float, default=120.0, help="seconds per MILP solve")
    parser.add_argument("--gh-repeats", type=int, default=20)
    parser.add_argument("--agh-repeats", type=int, default=5)
    parser.add_argument("--out", default="results/bench_planners", help="output path without extension")
    args = parser.parse_args()

    out = Path(args.out)
    partial = out.with_suffix(".partial.jsonl")
    done: dict[str, dict[str, Any]] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interruption: that instance runs again
            done[record["instance"]] = record
    partial.parent.mkdir(parents=True, exist_ok=True)
    records = []
    for label, size, build in grid(args):
        if label in done:
            records.append(done[label])
            continue
        record = bench_instance(label, size, build(), args)
        records.append(record)
        with partial.open("a") as stream:
            stream.write(json.dumps(record) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        print(
            f"{label}: GH {record['gh_runtime_s'] * 1e3:.1f} ms, AGH {record['agh_runtime_s'] * 1e3:.0f} ms, "
            f"MILP {record['milp_status']} {record['milp_runtime_s']:.1f} s, AGH gap {record['agh_gap']}",
            flush=True,
        )
    table = summarise(records)
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    markdown = (
        f"Planner scale benchmark ({date}; {machine}; MILP = {DEFAULT_SOLVER}, 1 thread, "
        f"{args.milp_time_limit:g} s limit, warm-started from AGH)\n\n"
        + markdown_table(table)
        + "\n\nPer instance (infeasible: empty cost):\n\n"
        + markdown_table(per_instance(records))
        + "\n"
    )
    print("\n" + markdown)
    atomic_write_json(
        out.with_suffix(".json"),
        {
            "date": date,
            "machine": machine,
            "args": vars(args) | {"sizes": [list(s) for s in args.sizes]},
            "records": records,
            "summary": json.loads(table.to_json(orient="records")),
        },
    )
    atomic_write_text(out.with_suffix(".md"), markdown)
    atomic_write_bytes(out.with_suffix(".png"), plot(records))
    partial.unlink()
    print(f"wrote {out.with_suffix('.json')}, {out.with_suffix('.md')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
