"""Scale benchmark of GH, AGH and the MILP: runtime, feasibility, cost gap to the optimum, MILP time split, memory.

Usage (from the repository root)::

    python scripts/bench_planners.py [--sizes 3,3,4 6,6,10 ... 40,40,40] [--seeds 0 1 2 3 4]
                                     [--milp-time-limit 600] [--gh-repeats 20] [--agh-repeats 5]
                                     [--out results/bench_planners] [--reuse-milp results/bench_planners.json]

Grid: the ``paper`` instance and random instances of each size (I query types, J models, K tiers) for each seed.
Per instance: GH (median of ``--gh-repeats`` runs), AGH (seed 0, with the MILP polish ``milp.agh_polish.milp_polish``,
median of ``--agh-repeats`` runs, wall and CPU time), and the MILP (default solver, one thread, warm-started from the
AGH plan, ``--milp-time-limit`` for the whole call) with its time split (build, presolve, solve, post) and the peak
resident memory it added. Gaps are (cost − bound) / cost against the MILP's best proven bound; where the MILP proved
optimality that is the gap to the optimum, reported per size as median and worst. Every record carries the 1-minute
load average before and after (``os.getloadavg``): the machine is shared, so wall times above its core count are
inflated. Each finished instance is appended to ``OUT.partial.jsonl`` so an interrupted run resumes where it stopped;
the end writes ``OUT.json``, ``OUT.md`` and ``OUT.png`` (runtime vs size, log scale) atomically. The report states the
machine and date.

``--reuse-milp PATH`` takes each instance's MILP outcome (status, cost, bound, time split, memory) from an earlier
``OUT.json`` instead of solving it again: a proven optimum and a proven bound do not depend on the heuristics, so a
change of AGH can be measured against them in minutes instead of hours (each record keeps the ``milp_date`` of the run
that solved its MILP, also through repeated reuse, and the report names those runs). A record is reused only for the
same instance: the same digest (SHA-256 of every coefficient, :func:`instance_digest`) where the earlier record has
one; records written before the digest are matched on configuration count, route count and GH's cost (GH is
deterministic and reads every coefficient). Instances without a match are solved. Gaps and the cost order are
recomputed for the new AGH plans.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from servegym.baselines.heuristics.adaptive import solve_agh
from servegym.baselines.heuristics.greedy import solve_gh
from servegym.baselines.milp.agh_polish import milp_polish
from servegym.baselines.milp.solver import DEFAULT_SOLVER, solve
from servegym.baselines.result import PlanResult
from servegym.envs.instance import Instance
from servegym.envs.scenarios import make_instance
from servegym.io import atomic_write_bytes, atomic_write_json, atomic_write_text, block_markers, replace_marked_block
from servegym.tables import markdown_table

COST_TOLERANCE = 1e-6
"""Relative tolerance of the cost-order check MILP ≤ AGH ≤ GH."""
DEFAULT_SIZES = (
    (3, 3, 4),
    (6, 6, 10),
    (10, 10, 10),
    (15, 15, 15),
    (20, 20, 20),
    (20, 20, 24),
    (30, 30, 30),
    (40, 40, 40),
)
MEMORY_SAMPLE_S = 0.05
"""Seconds between resident-memory samples while the MILP runs."""


RESULTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"
DOC_BLOCK = block_markers("bench-planners", "scripts/bench_planners.py")
"""The summary table of docs/results.md ("Planners at scale") this script rewrites (unless ``--no-docs``)."""


def resident_mb() -> float:
    """Resident memory of this process in MB (1e6 bytes), from /proc/self/statm (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


class PeakMemory:
    """Peak resident memory while the ``with`` block runs, sampled every :data:`MEMORY_SAMPLE_S` seconds.

    Attributes:
        before_mb: Resident MB when the block started.
        peak_mb: Largest resident MB seen during the block.
    """

    def __init__(self) -> None:
        self.before_mb = self.peak_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(MEMORY_SAMPLE_S):
            self.peak_mb = max(self.peak_mb, resident_mb())

    def __enter__(self) -> PeakMemory:
        self.before_mb = self.peak_mb = resident_mb()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, resident_mb())


def timed(function: Callable[[], PlanResult], repeats: int) -> tuple[PlanResult, float, float]:
    """(last result, median wall-clock seconds, median CPU seconds of this process) over ``repeats`` calls."""
    wall, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return result, statistics.median(wall), statistics.median(cpu)


MILP_FIELDS = (
    "milp_solver",
    "milp_time_limit_s",
    "best_bound",
    "milp_optimal",
    "milp_plan_source",
    "milp_message",
    "milp_peak_rss_mb",
    "milp_added_rss_mb",
    "milp_status",
    "milp_feasible",
    "milp_cost",
    "milp_runtime_s",
    "milp_gap",
)
"""Fields of a record that come from the MILP call (with the ``milp_*_s`` time split), copied by ``--reuse-milp``."""


def same_instance(record: dict[str, Any], earlier: dict[str, Any]) -> bool:
    """Whether ``earlier`` (a record of a previous run) was measured on the instance of ``record`` (module
    docstring: the digest, or for records without one the configuration and route counts and GH's cost)."""
    if "instance_digest" in earlier:
        return earlier["instance_digest"] == record["instance_digest"]
    if (earlier["configurations"], earlier["routes"]) != (record["configurations"], record["routes"]):
        return False
    if earlier["gh_cost"] is None or record["gh_cost"] is None:
        return earlier["gh_cost"] is None and record["gh_cost"] is None
    return math.isclose(earlier["gh_cost"], record["gh_cost"], rel_tol=1e-9)


def load_milp_records(path: Path) -> dict[str, dict[str, Any]]:
    """Records of an earlier ``OUT.json`` by instance label, each with the ``milp_date`` of the run that solved its
    MILP (that file's date where the record does not say)."""
    payload = json.loads(path.read_text())
    return {record["instance"]: {"milp_date": payload["date"]} | record for record in payload["records"]}


def gap(cost: float | None, bound: float | None) -> float | None:
    if cost is None or bound is None or not np.isfinite(cost):
        return None
    return max(0.0, (cost - bound) / max(cost, 1e-12))


def bench_instance(
    label: str, size: str, instance: Instance, args: argparse.Namespace, earlier: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One instance's record; the MILP outcome is copied from ``earlier`` when that is a record of the same
    instance (``same_instance``), else solved."""
    load_before = os.getloadavg()[0]
    gh, gh_s, gh_cpu_s = timed(lambda: solve_gh(instance), args.gh_repeats)
    agh, agh_s, agh_cpu_s = timed(lambda: solve_agh(instance, seed=0, polish=milp_polish), args.agh_repeats)
    record: dict[str, Any] = {
        "instance": label,
        "size": size,
        "instance_digest": instance.digest(),
        "configurations": instance.num_configurations,
        "routes": int(instance.route_allowed.sum()),
        "gh_cpu_s": gh_cpu_s,
        "agh_cpu_s": agh_cpu_s,
    }
    for name, result, runtime in (("gh", gh, gh_s), ("agh", agh, agh_s)):
        record |= {
            f"{name}_status": result.status,
            f"{name}_feasible": result.feasible,
            f"{name}_cost": result.total_cost if result.feasible else None,
            f"{name}_runtime_s": runtime,
        }
    if earlier is not None and same_instance(record, earlier):
        record |= {key: earlier[key] for key in (*MILP_FIELDS, "milp_date")}
        record |= {key: value for key, value in earlier.items() if key.startswith("milp_") and key.endswith("_s")}
        record["milp_reused"] = True
    else:
        with PeakMemory() as memory:
            milp = solve(instance, time_limit_s=args.milp_time_limit, warm_start=agh.plan if agh.feasible else None)
        bound = milp.bound if milp.bound is not None and np.isfinite(milp.bound) else None
        cost = milp.total_cost if milp.feasible else None
        record |= {
            "milp_solver": DEFAULT_SOLVER,
            "milp_time_limit_s": args.milp_time_limit,
            "best_bound": bound,
            "milp_optimal": milp.status == "optimal",
            "milp_plan_source": milp.plan_source,
            "milp_message": milp.message,
            "milp_peak_rss_mb": memory.peak_mb,
            "milp_added_rss_mb": memory.peak_mb - memory.before_mb,
            "milp_status": milp.status,
            "milp_feasible": milp.feasible,
            "milp_cost": cost,
            "milp_runtime_s": milp.runtime_s,
            "milp_gap": gap(cost, bound),
            "milp_reused": False,
            "milp_date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        record |= {f"milp_{phase}_s": seconds for phase, seconds in milp.time_split_s.items()}
    record["load_before"] = load_before
    record["load_after"] = os.getloadavg()[0]
    bound = record["best_bound"]
    record["gh_gap"] = gap(record["gh_cost"], bound)
    record["agh_gap"] = gap(record["agh_cost"], bound)
    if record["milp_optimal"] and gh.feasible and agh.feasible:
        milp_cost = record["milp_cost"]
        tolerance = COST_TOLERANCE * max(1.0, abs(milp_cost))
        record["cost_order_holds"] = bool(
            milp_cost <= agh.total_cost + tolerance and agh.total_cost <= gh.total_cost + tolerance
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


def _median(series: pd.Series) -> float:
    return float(series.median()) if len(series) else float("nan")


def summarise(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per size: feasibility, median runtimes, AGH and GH gaps to the optimum, MILP time split and memory."""
    frame = pd.DataFrame(records)
    rows = []
    for size, group in frame.groupby("size", sort=False):
        optimal = group[group["milp_optimal"] & group["agh_feasible"]]
        row: dict[str, Any] = {
            "size": size,
            "instances": len(group),
            "configs (median)": group["configurations"].median(),
            "feasible (MILP)": f"{int(group['milp_feasible'].sum())}/{len(group)}",
            "MILP optimal": f"{int(group['milp_optimal'].sum())}/{len(group)}",
            "GH s": group["gh_runtime_s"].median(),
            "AGH s": group["agh_runtime_s"].median(),
            "AGH CPU s": group["agh_cpu_s"].median(),
            "AGH max s": group["agh_runtime_s"].max(),
            "MILP s": group["milp_runtime_s"].median(),
            "AGH gap % median": 100 * _median(optimal["agh_gap"].dropna()),
            "AGH gap % worst": 100 * optimal["agh_gap"].max() if len(optimal) else float("nan"),
            "GH gap % median": 100 * _median(optimal["gh_gap"].dropna()),
            "MILP bound gap % median": 100 * _median(group["milp_gap"].dropna()),
        }
        for phase in ("warm_start", "build", "presolve", "solve"):
            row[f"MILP {phase} s"] = group[f"milp_{phase}_s"].median()
        row["MILP peak MB"] = group["milp_peak_rss_mb"].max()
        order = group.get("cost_order_holds", pd.Series(dtype=object)).dropna()
        row["MILP ≤ AGH ≤ GH"] = f"{int(order.sum())}/{len(order)}" if len(order) else "–"
        row["load (median)"] = group["load_before"].median()
        rows.append(row)
    return pd.DataFrame(rows)


def per_instance(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per instance: each planner's cost ($ per period) and AGH's runtime, the MILP's status, time split and
    bound, and the AGH gap to the bound (to the optimum where the MILP proved one)."""
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
            "presolve s": frame["milp_presolve_s"],
            "solve s": frame["milp_solve_s"],
            "peak MB": frame["milp_peak_rss_mb"],
            "bound $": frame["best_bound"],
            "AGH gap %": 100 * frame["agh_gap"],
            "load": frame["load_before"],
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
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=list(DEFAULT_SIZES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--milp-time-limit", type=float, default=600.0, help="seconds per MILP call")
    parser.add_argument("--gh-repeats", type=int, default=20)
    parser.add_argument("--agh-repeats", type=int, default=5)
    parser.add_argument("--out", default="results/bench_planners", help="output path without extension")
    parser.add_argument(
        "--reuse-milp",
        type=Path,
        default=None,
        metavar="PATH",
        help="take the MILP results of the same instances from an earlier OUT.json (module docstring)",
    )
    parser.add_argument("--no-docs", action="store_true", help="leave the table of docs/results.md as it is")
    args = parser.parse_args()
    earlier = load_milp_records(args.reuse_milp) if args.reuse_milp is not None else {}
    reuse_path = None if args.reuse_milp is None else str(args.reuse_milp)

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
        record = bench_instance(label, size, build(), args, earlier.get(label))
        records.append(record)
        with partial.open("a") as stream:
            stream.write(json.dumps(record) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        print(
            f"{label}: GH {record['gh_runtime_s'] * 1e3:.1f} ms, AGH {record['agh_runtime_s']:.2f} s "
            f"(CPU {record['agh_cpu_s']:.2f} s), MILP {record['milp_status']} {record['milp_runtime_s']:.1f} s"
            f"{' (reused)' if record['milp_reused'] else ''}, "
            f"AGH gap {record['agh_gap']}, load {record['load_before']:.2f}",
            flush=True,
        )
    table = summarise(records)
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    loads = [r["load_before"] for r in records]
    reused = [r for r in records if r.get("milp_reused")]
    reuse_note = (
        f"; MILP results of {len(reused)} of {len(records)} instances reused (--reuse-milp) from the run of "
        + ", ".join(sorted({r["milp_date"] for r in reused}))
        if reused
        else ""
    )
    markdown = (
        f"Planner scale benchmark ({date}; {machine}; MILP = {DEFAULT_SOLVER}, 1 thread, "
        f"{args.milp_time_limit:g} s limit for the whole call, warm-started from AGH; 1-minute load average "
        f"{min(loads):.2f}-{max(loads):.2f}, median {statistics.median(loads):.2f}{reuse_note})\n\n"
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
            "args": vars(args) | {"sizes": [list(s) for s in args.sizes], "reuse_milp": reuse_path},
            "records": records,
            "summary": json.loads(table.to_json(orient="records")),
        },
    )
    atomic_write_text(out.with_suffix(".md"), markdown)
    atomic_write_bytes(out.with_suffix(".png"), plot(records))
    if not args.no_docs:
        replace_marked_block(RESULTS_DOC, *DOC_BLOCK, markdown_table(table))
    partial.unlink()
    print(f"wrote {out.with_suffix('.json')}, {out.with_suffix('.md')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
