"""``servegym describe``: print an instance."""

from __future__ import annotations

import argparse

from servegym.cli._common import add_scenario_arguments, non_negative_int, selected_instance

NAME = "describe"
HELP = "print an instance: query types, GPUs, configurations"
EXAMPLE = "servegym describe --scenario paper --top 3"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Scenario selection, ``--top`` and ``--all``."""
    add_scenario_arguments(parser)
    parser.add_argument("--top", type=non_negative_int, default=5, help="configurations shown per query type")
    parser.add_argument("--all", action="store_true", help="show every configuration (overrides --top)")


def run(args: argparse.Namespace) -> int:
    """Print the instance's tables."""
    from servegym.envs.describe import describe_instance

    print(describe_instance(selected_instance(args), top=None if args.all else args.top))
    return 0
