"""``servegym score``: score trained models on the test days (costs, SLOs, normalised score)."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import TextIO

from servegym.cli._common import DEMAND_HELP, add_alias, days, no_progress_argument, policy_names, seeds
from servegym.errors import UsageError
from servegym.io import check_output_folder, write_file_set

NAME = "score"
HELP = "score trained models on the test days: costs, SLOs, normalised score"
EXAMPLE = "servegym score --model runs/maskable_ppo-native-Provisioning-v3-s0 --seeds 0,1,2"


def _baselines(text: str) -> list[str]:
    """``--policies``: baseline names, possibly none."""
    return policy_names(text, trained=False, allow_empty=True)


def _baseline(text: str) -> str:
    """One baseline policy name (``--reference``, ``--oracle``)."""
    names = policy_names(text, trained=False, allow_empty=False)
    if len(names) != 1:
        raise argparse.ArgumentTypeError(f"expected one policy name, got {text!r}")
    return names[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Models, days or demand, seeds, the reference policies and the output."""
    from servegym.agents.scoring import DEFAULT_BASELINES

    parser.add_argument("--model", nargs="+", action="extend", required=True, help="run folders of servegym train")
    parser.add_argument("--which", choices=["final", "best"], default="final", help="final or best-on-validation model")
    parser.add_argument(
        "--days",
        type=days,
        help="Azure days: test, train, all or day names (default: the setting's test episodes, docs/benchmark.md)",
    )
    parser.add_argument(
        "--demand",
        metavar="SOURCE",
        help=DEMAND_HELP + "; replaces --days (the runs' query types must match: trace:PATH?types=total drives "
        "them by the trace's total load; default: --days)",
    )
    parser.add_argument("--seeds", type=seeds, default=[0, 1, 2], help="comma-separated episode seeds (integers >= 0)")
    parser.add_argument("--reference", type=_baseline, default="agh-static", help="baseline policy that scores 0")
    parser.add_argument(
        "--oracle",
        type=_baseline,
        default="oracle",
        help="policy that scores 100 (default: the oracle, from the shipped references where they fit the episode, "
        "else solved fresh under the same stopping rule)",
    )
    parser.add_argument(
        "--recompute-oracle",
        action="store_true",
        help="solve the oracle of every episode fresh (minutes each) and fail if a fresh cost lies outside the shipped "
        "reference's proven gap (docs/benchmark.md, 'Reference points')",
    )
    parser.add_argument(
        "--policies", type=_baselines, default=list(DEFAULT_BASELINES), help="baselines to play beside the models"
    )
    add_alias(parser, "--baselines", "--policies", "policies", type=_baselines)
    parser.add_argument("--out", default="runs/score", help="folder for scores.csv, summary.csv, leaderboard.md")
    parser.add_argument(
        "--update", nargs="*", default=[], metavar="FILE.md", help="Markdown files whose leaderboard block to replace"
    )
    no_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Score the models, write the CSV files and the leaderboard, update the Markdown files."""
    from servegym.agents.leaderboard import check_markdown, format_leaderboard, played_days, update_markdown
    from servegym.agents.scoring import OracleNotice, score, summarise
    from servegym.agents.train import require_rl

    require_rl()
    out = check_output_folder(args.out, "--out")
    for path in args.update:
        check_markdown(path)
    if args.demand is not None and args.days is not None:
        raise UsageError("--demand and --days both given; pass one (--days D is --demand azure:D)")
    if args.recompute_oracle and args.oracle != "oracle":
        raise UsageError(f"--recompute-oracle re-solves the oracle; --oracle {args.oracle} is a baseline, not it")
    default_show = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        """Oracle notices as one ``notice:`` line on standard error, when they happen; other warnings as usual."""
        if issubclass(category, OracleNotice):
            print(f"notice: {message}", file=sys.stderr, flush=True)
        else:
            default_show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", OracleNotice)
        warnings.showwarning = show
        scores = score(
            args.model,
            days=args.days,
            demand=args.demand,
            reference=args.reference,
            seeds=args.seeds,
            oracle=args.oracle,
            baselines=args.policies,
            which=args.which,
            progress=not args.no_progress,
            recompute_oracle=args.recompute_oracle,
        )
    summary = summarise(scores)
    table = format_leaderboard(
        summary,
        reference=args.reference,
        oracle=args.oracle,
        days=played_days(scores, args.demand),
        seeds=args.seeds,
    )
    files = {
        "scores.csv": scores.to_csv(index=False),
        "summary.csv": summary.to_csv(index=False),
        "leaderboard.md": table,
    }
    write_file_set(out, {name: text.encode("utf-8") for name, text in files.items()}, command=args.command_line)
    for path in args.update:
        update_markdown(path, table)
    print(table)
    written = [out / "scores.csv", out / "summary.csv", out / "leaderboard.md", *args.update]
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
