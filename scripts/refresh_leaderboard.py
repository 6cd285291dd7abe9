"""Ship trained agents with the package and refresh the leaderboard in docs/agents.md and README.md.

Usage (from the repository root)::

    python scripts/refresh_leaderboard.py [RUN_DIR ...] [--seeds 0,1,2] [--which final|best]
        [--out agents/data/leaderboard]

Without run folders it ships every ``runs/*/`` with a final model. Each run's model is copied into the leaderboard
folder (``agents/<label>-s<training seed>/``, ``servegym.agents.shipped_agents.ship``); the copies are scored on
their setting's test episodes against ``agh-static`` (0) and the oracle (100), with the default baselines beside
them; ``scores.csv``, ``leaderboard.md``, ``settings.json`` and ``manifest.json`` are written there, and the table
between the leaderboard markers of docs/agents.md, docs/results.md and README.md is replaced. ``servegym leaderboard
--verify`` re-scores the shipped agents and fails if any number differs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "docs" / "agents.md", ROOT / "docs" / "results.md", ROOT / "README.md")
DEFAULT_OUT = ROOT / "agents" / "data" / "leaderboard"


def main(argv: list[str] | None = None) -> int:
    """Ship and score the runs, then rewrite the leaderboard blocks; returns the exit status."""
    from servegym.agents.leaderboard import check_markdown, update_markdown
    from servegym.agents.shipped_agents import TABLE_FILE, ship
    from servegym.cli._common import seeds
    from servegym.errors import ServegymError

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run folders (default: runs/*/ with a model.zip)")
    parser.add_argument("--seeds", type=seeds, default=[0, 1, 2], help="comma-separated episode seeds")
    parser.add_argument("--which", choices=["final", "best"], default="final", help="model of each run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="leaderboard folder (default: the shipped one)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the docs' leaderboard blocks")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    runs = args.runs or sorted(str(p.parent) for p in Path("runs").glob("*/model.zip"))
    if not runs:
        print("no run folders given and none with a model.zip under runs/", file=sys.stderr)
        return 2
    command = shlex.join(["python", "scripts/refresh_leaderboard.py", *(argv if argv is not None else sys.argv[1:])])
    try:
        docs = [] if args.no_docs else [check_markdown(path) for path in DOCS]
        ship(runs, args.out, seeds=args.seeds, which=args.which, command=command, progress=not args.no_progress)
    except ServegymError as error:
        print(f"refresh_leaderboard: error: {error}", file=sys.stderr)
        return 2
    table = (args.out / TABLE_FILE).read_text(encoding="utf-8")
    for path in docs:
        update_markdown(path, table)
    print(table)
    print(f"shipped {len(runs)} agents to {args.out}; updated {', '.join(map(str, docs)) or 'no docs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
