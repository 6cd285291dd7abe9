"""The ``servegym`` command line: one module per command, each defining its arguments next to its handler.

A command module has ``NAME``, ``HELP`` (one line), ``EXAMPLE`` (one command line), ``add_arguments(parser)``
and ``run(args) -> int``. Flags mean the same in every command (``--env``, ``--env-kwargs``, ``--demand``,
``--seeds``, ``--out``; ``servegym.cli._common``), every option's help shows its default, and renamed flags keep
working as deprecated aliases (``--env-id`` for ``--env``, ``--timesteps`` for ``--total-timesteps``).

Exit status: 0 on success; 2 for a user error, printed as one line ``servegym COMMAND: error: MESSAGE`` without a
traceback: a bad argument (argparse) or any :class:`~servegym.errors.ServegymError` (a bad file, setting or
path; arguments and output paths are checked before any work is done); 1 when a command ran but its outcome is
negative (an infeasible plan, failed sweep cells), and for any other exception, which is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import textwrap
from collections.abc import Sequence
from types import ModuleType

from servegym import __version__
from servegym.cli import describe, evaluate, export, report, scenarios, score, solve, sweep, trace, train
from servegym.cli._common import HelpFormatter, Parser, check_aliases
from servegym.errors import ServegymError

COMMANDS: tuple[ModuleType, ...] = (scenarios, describe, export, solve, evaluate, train, score, sweep, report, trace)
"""The command modules, in the order ``servegym --help`` lists them."""

DESCRIPTION = (
    "servegym: LLM serving capacity planning. Plan replicas of (model, GPU, parallelism) configurations under "
    "delay and error SLOs with heuristics (GH, AGH) or the exact MILP, play planners and trained agents on the "
    "Gymnasium environment over Azure-calibrated days, and run sweeps. Every command's --help shows its options "
    "and their defaults."
)


def _epilog() -> str:
    width = max(len(module.NAME) for module in COMMANDS)
    lines = ["examples:"] + [f"  {module.NAME:<{width}}  {module.EXAMPLE}" for module in COMMANDS]
    return "\n".join(lines) + "\n\nexit status: 0 success, 1 negative outcome or internal error, 2 user error"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = Parser(
        prog="servegym", description=textwrap.fill(DESCRIPTION, 100), epilog=_epilog(), formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"servegym {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        sub = commands.add_parser(
            module.NAME,
            help=module.HELP,
            description=f"{module.HELP}.\n\nexample:\n  {module.EXAMPLE}",
            formatter_class=HelpFormatter,
        )
        sub.set_defaults(run=module.run)
        module.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``servegym`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    tokens = list(sys.argv[1:] if argv is None else argv)
    args.command_line = shlex.join(["servegym", *tokens])  # for output manifests
    try:
        check_aliases(args, tokens)
        return args.run(args)
    except ServegymError as error:  # a user error; anything else is a bug and keeps its traceback (exit status 1)
        command = f"trace {args.trace_command}" if args.command == "trace" else args.command
        print(f"servegym {command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
