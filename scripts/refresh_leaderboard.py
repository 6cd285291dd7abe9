"""Refresh the leaderboard in docs/agents.md and README.md from trained run folders.

Usage (from the repository root)::

    python scripts/refresh_leaderboard.py [RUN_DIR ...] [--seeds 0,1,2] [--which final|best] [--out results/leaderboard]

Without run folders it scores every ``runs/*/`` with a final model. It runs ``servegym score`` on the test days
against ``agh-static`` (0) and the oracle (100), writes ``scores.csv``, ``summary.csv`` and ``leaderboard.md``
to ``--out``, and replaces the table between the leaderboard markers of docs/agents.md and README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from servegym.cli import main as servegym_main

DOCS = ("docs/agents.md", "README.md")


def main(argv: list[str] | None = None) -> int:
    """Score the runs and rewrite the leaderboard blocks; returns the exit code of ``servegym score``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run folders (default: runs/*/ with a model.zip)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated episode seeds")
    parser.add_argument("--which", choices=["final", "best"], default="final", help="model of each run")
    parser.add_argument("--out", default="results/leaderboard", help="folder for the CSV files and the table")
    args = parser.parse_args(argv)
    runs = args.runs or sorted(str(p.parent) for p in Path("runs").glob("*/model.zip"))
    if not runs:
        print("no run folders given and none with a model.zip under runs/", file=sys.stderr)
        return 2
    return servegym_main(
        ["score", "--model", *runs, "--seeds", args.seeds, "--which", args.which, "--out", args.out, "--update", *DOCS]
    )


if __name__ == "__main__":
    sys.exit(main())
