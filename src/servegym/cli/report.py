"""``servegym report``: figures and tables from a results store."""

from __future__ import annotations

import argparse

from servegym.io import check_output_folder

NAME = "report"
HELP = "figures and tables from a results store"
EXAMPLE = "servegym report results/sweeps/sweep-small --partial"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The store, the output folder and ``--partial``."""
    parser.add_argument("store", help="results store folder written by servegym sweep")
    parser.add_argument("--out", help="output folder (default: STORE/report)")
    parser.add_argument(
        "--partial",
        action="store_true",
        help="report a store with missing or damaged cells (summary.md names them) instead of refusing it",
    )


def run(args: argparse.Namespace) -> int:
    """Write the report files and list them."""
    from servegym.experiments.report import write_report
    from servegym.experiments.store import ResultStore

    store = ResultStore(args.store)
    out = store.root / "report" if args.out is None else check_output_folder(args.out, "--out")
    paths = write_report(store, out, partial=args.partial, command=args.command_line)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
