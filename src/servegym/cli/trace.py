"""``servegym trace inspect``: what a trace file gives (format, span, rates, derived query types) and a figure."""

from __future__ import annotations

import argparse
from pathlib import Path

from servegym.cli._common import HelpFormatter, period_minutes
from servegym.errors import UsageError
from servegym.io import check_output_file

NAME = "trace"
HELP = "inspect your own trace file (subcommand: inspect)"
EXAMPLE = "servegym trace inspect my_trace.csv --period-minutes 15"
INSPECT_HELP = "format, span, rates and derived query types of a trace file, and a PNG of its rate over time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``inspect`` subcommand and its arguments."""
    commands = parser.add_subparsers(dest="trace_command", required=True, metavar="SUBCOMMAND")
    inspect = commands.add_parser("inspect", help=INSPECT_HELP, description=INSPECT_HELP, formatter_class=HelpFormatter)
    inspect.set_defaults(run=run)
    inspect.add_argument("file", help="trace file, optionally with read options: PATH[?time_unit=s&service=...]")
    inspect.add_argument(
        "--period-minutes",
        type=period_minutes,
        default=15,
        help="period of the rate table and figure, minutes (divides 1440, as the environment's periods do)",
    )
    inspect.add_argument("--out", help="PNG to write (default: runs/trace-inspect/<file name>.png, git-ignored)")


def run(args: argparse.Namespace) -> int:
    """Describe the trace and write its figure."""
    from servegym.envs.demand_source import TRACE_EPISODE_KEYS
    from servegym.traces.inspect import describe_trace, plot_trace
    from servegym.traces.user_trace import load_trace, parse_trace_spec, trace_options

    path, values = parse_trace_spec(args.file.removeprefix("trace:"))
    episode_keys = sorted(set(values) & set(TRACE_EPISODE_KEYS))
    if episode_keys:
        raise UsageError(f"trace inspect reads the file; options {episode_keys} choose episodes (use them in --demand)")
    default_out = Path("runs") / "trace-inspect" / f"{path.name.split('.')[0]}.png"
    out = check_output_file(args.out if args.out is not None else default_out, "--out")
    trace = load_trace(path, trace_options(values))
    print(describe_trace(trace, args.period_minutes))
    print(f"\nwrote {plot_trace(trace, out, args.period_minutes)}")
    return 0
