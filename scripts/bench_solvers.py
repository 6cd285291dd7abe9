"""Benchmark the MILP backends, cold and warm-started from AGH, on a scale grid; print a table, write JSON.

Usage (from the repository root)::

    python scripts/bench_solvers.py [--quick] [--time-limit 60] [--solvers HIGHS SCIP] [--seeds 0 1 2]
                                    [--out results/bench_solvers.json]

Grid: the ``paper`` instance and random instances (6,6,10), (10,10,10), (15,15,15), (20,20,20) for seeds 0, 1, 2
(``--quick``: paper and (6,6,10) seed 0 and (20,20,20) seed 0, 10 s limit). Every solve is single-threaded with
seed 0; runtimes are wall-clock seconds on whatever else the machine is running, so compare them within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from servegym.baselines.heuristics.adaptive import solve_agh
from servegym.baselines.milp.solver import SOLVERS, solve
from servegym.envs.instance import Instance
from servegym.envs.scenarios import make_instance
from servegym.io import atomic_write_json, machine_info, source_commit

REPO_ROOT = Path(__file__).resolve().parent.parent
RANDOM_SIZES = ((6, 6, 10), (10, 10, 10), (15, 15, 15), (20, 20, 20))
SEEDS = (0, 1, 2)


def grid(quick: bool, seeds: list[int]) -> list[tuple[str, Instance]]:
    """(label, instance) pairs of the benchmark grid."""
    if quick:
        cases = [("random", (6, 6, 10), 0), ("random", (20, 20, 20), 0)]
    else:
        cases = [("random", size, seed) for size in RANDOM_SIZES for seed in seeds]
    instances = [("paper", make_instance("paper"))]
    for name, size, seed in cases:
        instances.append((f"{name} {size[0]}x{size[1]}x{size[2]} s{seed}", make_instance(name, seed=seed, size=size)))
    return instances


def bench(instances: list[tuple[str, Instance]], solvers: list[str], time_limit_s: float) -> list[dict[str, Any]]:
    """One record per (instance, solver, cold/warm): status, runtime, objective, bound, gap."""
    records = []
    for label, instance in instances:
        agh = solve_agh(instance, seed=0)
        warm_plan = agh.plan if agh.feasible else None
        base = {
            "instance": label,
            "configurations": instance.num_configurations,
            "routes": int(instance.route_allowed.sum()),
            "agh_status": agh.status,
            "agh_cost": agh.total_cost if agh.feasible else None,
            "agh_runtime_s": agh.runtime_s,
        }
        for solver in solvers:
            for warm in (False, True):
                if warm and warm_plan is None:
                    continue
                result = solve(
                    instance, solver=solver, time_limit_s=time_limit_s, warm_start=warm_plan if warm else None
                )
                record = {
                    **base,
                    "solver": solver,
                    "warm_start": warm,
                    "status": result.status,
                    "runtime_s": result.runtime_s,
                    "objective": result.total_cost if result.feasible else None,
                    "bound": result.bound,
                    "gap": result.gap,
                    "message": result.message,
                }
                records.append(record)
                print(
                    json.dumps({k: record[k] for k in ("instance", "solver", "warm_start", "status", "runtime_s")}),
                    file=sys.stderr,
                    flush=True,
                )
    return records


def _number(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def markdown_table(records: list[dict[str, Any]]) -> str:
    """The records as a markdown table ($ per period for objective and bound)."""
    lines = [
        "| instance | solver | warm | status | runtime s | objective $ | bound $ | gap | AGH $ |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        gap = "–" if r["gap"] is None else f"{100 * r['gap']:.2f} %"
        lines.append(
            f"| {r['instance']} | {r['solver']} | {'AGH' if r['warm_start'] else '–'} | {r['status']} | "
            f"{r['runtime_s']:.1f} | {_number(r['objective'], 6)} | {_number(r['bound'], 6)} | {gap} | "
            f"{_number(r['agh_cost'], 6)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the grid, print the table and write the JSON; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 instances, 10 s limit")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per solve (default 60, quick 10)")
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=SOLVERS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), help="random-instance seeds")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "bench_solvers.json")
    args = parser.parse_args(argv)
    time_limit_s = args.time_limit or (10.0 if args.quick else 60.0)
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    records = bench(grid(args.quick, args.seeds), args.solvers, time_limit_s)
    print(markdown_table(records))
    payload = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(("highspy", "ortools")),
        "commit": source_commit() or "unknown",
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "time_limit_s": time_limit_s,
        "threads": 1,
        "seed": 0,
        "quick": args.quick,
        "seeds": args.seeds,
        "wall_clock_s": time.perf_counter() - start,
        "records": records,
    }
    atomic_write_json(args.out, payload)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
