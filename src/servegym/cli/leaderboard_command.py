"""``servegym leaderboard``: the shipped agents' leaderboard; ``--verify`` re-scores them and checks every number."""

from __future__ import annotations

import argparse
import sys

from servegym.cli._common import no_progress_argument
from servegym.io import check_output_folder, write_file_set

NAME = "leaderboard"
HELP = "the shipped agents' leaderboard; --verify re-scores every shipped agent and checks each number"
EXAMPLE = "servegym leaderboard --verify"
SHOWN_MISMATCHES = 20
"""How many differing numbers ``--verify`` prints (it always counts them all)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The leaderboard folder, ``--verify`` and where to write the fresh scores."""
    parser.add_argument(
        "--folder",
        help="leaderboard folder written by scripts/refresh_leaderboard.py (default: the one shipped in the package, "
        "servegym/agents/data/leaderboard)",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="play every shipped agent, the reference and the baselines again on the leaderboard's episodes and "
        "fail (exit status 1) if any number differs from its scores.csv",
    )
    parser.add_argument("--out", help="with --verify: folder for the fresh scores.csv (default: none written)")
    no_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Print the table, or verify it: 0 when every number is reproduced, 1 when any differs."""
    from servegym.agents.shipped_agents import leaderboard_table, shipped_leaderboard_dir, verify_leaderboard
    from servegym.agents.train import require_rl
    from servegym.errors import UsageError

    folder = args.folder or shipped_leaderboard_dir()
    if not args.verify:
        if args.out is not None:
            raise UsageError("--out needs --verify (it is where the fresh scores go)")
        print(leaderboard_table(folder))
        return 0
    require_rl()
    out = check_output_folder(args.out, "--out") if args.out is not None else None
    fresh, mismatches = verify_leaderboard(folder, progress=not args.no_progress)
    if out is not None:
        write_file_set(out, {"scores.csv": fresh.to_csv(index=False).encode("utf-8")}, command=args.command_line)
        print(f"wrote {out / 'scores.csv'}")
    agents = fresh.loc[fresh["kind"] == "agent", "run_dir"].nunique()
    if mismatches:
        for mismatch in mismatches[:SHOWN_MISMATCHES]:
            print(f"differs: {mismatch}", file=sys.stderr)
        more = len(mismatches) - SHOWN_MISMATCHES
        print(
            f"servegym leaderboard: {len(mismatches)} numbers differ from {folder}/scores.csv"
            + (f" ({more} not shown)" if more > 0 else ""),
            file=sys.stderr,
        )
        return 1
    print(f"verified {folder}: {agents} agents, {len(fresh)} episode rows, every number as shipped")
    return 0
