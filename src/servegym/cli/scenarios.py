"""``servegym scenarios``: list the named scenarios."""

from __future__ import annotations

import argparse

NAME = "scenarios"
HELP = "list the named scenarios"
EXAMPLE = "servegym scenarios"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args: argparse.Namespace) -> int:
    """Print one line per scenario, the default marked."""
    from servegym.envs.scenarios import DEFAULT_SCENARIO, SCENARIOS

    for scenario in SCENARIOS.values():
        marker = " (default)" if scenario.name == DEFAULT_SCENARIO else ""
        print(f"{scenario.name:8s} {scenario.description}{marker}")
    return 0
