"""``servegym export``: write an instance with every coefficient as JSON."""

from __future__ import annotations

import argparse

from servegym.cli._common import add_scenario_arguments, selected_instance
from servegym.io import atomic_write_json, check_output_file

NAME = "export"
HELP = "write the full instance with every coefficient as JSON"
EXAMPLE = "servegym export --scenario azure --out azure.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Scenario selection and ``--out``."""
    add_scenario_arguments(parser)
    parser.add_argument("--out", required=True, help="output JSON file (schema: docs/instance-schema.md)")


def run(args: argparse.Namespace) -> int:
    """Write the JSON file."""
    from servegym.envs.export import instance_to_dict

    out = check_output_file(args.out, "--out")
    chosen = selected_instance(args)
    path = atomic_write_json(out, instance_to_dict(chosen))
    print(f"wrote {path} ({chosen.num_query_types} query types, {chosen.num_configurations} configurations)")
    return 0
