"""``servegym sweep``: run every cell of a sweep config on a process pool or Ray; resumable."""

from __future__ import annotations

import argparse
import sys

from servegym.cli._common import no_progress_argument, positive_int
from servegym.io import check_output_folder

NAME = "sweep"
HELP = "run every cell of a sweep config on a process pool or Ray; resumable"
EXAMPLE = "servegym sweep configs/sweep-small.toml --workers 2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The config file, where cells run, the store."""
    parser.add_argument("config", help="TOML configuration file (docs/experiments.md)")
    parser.add_argument("--backend", choices=["local", "ray"], default="local", help="where cells run")
    parser.add_argument(
        "--address",
        help="Ray cluster address (ray://HOST:10001, HOST:6379 or auto; fails if it does not answer within 30 s); "
        "default: a new local cluster",
    )
    parser.add_argument(
        "--workers", type=positive_int, help="processes (local) or CPUs of a local Ray cluster (default: all CPUs)"
    )
    parser.add_argument("--store", help="results store folder (default: results/sweeps/<config name>)")
    parser.add_argument(
        "--max-cells", type=positive_int, help="compute at most this many cells in this run (default: all)"
    )
    no_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the sweep; status 1 when cells failed, 130 when interrupted (finished cells stay)."""
    import pandas as pd

    from servegym.experiments.config import load_config
    from servegym.experiments.report import format_summary, summarise
    from servegym.experiments.store import ResultStore
    from servegym.experiments.sweep import default_store, run_sweep

    config = load_config(args.config)
    if args.store is not None:
        store = ResultStore(check_output_folder(args.store, "--store"))
    else:
        store = ResultStore(check_output_folder(default_store(config), "results store"))
    try:
        outcome = run_sweep(
            config,
            store,
            backend=args.backend,
            workers=args.workers,
            address=args.address,
            max_cells=args.max_cells,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished cells stay in {store.root}; run the same command to resume", file=sys.stderr)
        return 130
    results = pd.read_csv(outcome.merge.results_path)
    summary = summarise(results, outcome.keys)
    if not summary.empty:
        print(format_summary(summary))
    print(
        f"\n{len(outcome.keys)} cells: {outcome.already_finished} already finished, {outcome.executed} run "
        f"({len(outcome.rerun_corrupt)} of them corrupt before), {len(outcome.failures)} failed, "
        f"{outcome.not_started} not started; {outcome.wall_s:.1f} s on {args.backend}"
    )
    print(f"store {store.root}: {outcome.merge.finished} finished cells merged into {outcome.merge.results_path}")
    for failure in outcome.failures:
        print(f"failed: {failure.label}: {failure.error}", file=sys.stderr)
    return 1 if outcome.failures else 0
