"""The ``servegym`` command line: ``servegym --help`` lists the subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from servegym.envs.instance import Instance, InstanceError
from servegym.io import atomic_write_json, atomic_write_text


def _size(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be three integers I,J,K (e.g. 6,6,10), got {text!r}") from None
    if len(size) != 3:
        raise argparse.ArgumentTypeError(f"--size must be three integers I,J,K (e.g. 6,6,10), got {text!r}")
    return size  # type: ignore[return-value]


def _add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    from servegym.envs.scenarios import DEFAULT_SCENARIO, SCENARIOS

    parser.add_argument("--scenario", default=DEFAULT_SCENARIO, choices=sorted(SCENARIOS), help="named scenario")
    parser.add_argument("--size", type=_size, help="I,J,K sizes for --scenario random (max 20,20,24)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --scenario random")


def _instance(args: argparse.Namespace) -> Instance:
    from servegym.envs.scenarios import make_instance

    return make_instance(args.scenario, seed=args.seed, size=args.size)


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from servegym.envs.scenarios import DEFAULT_SCENARIO, SCENARIOS

    for scenario in SCENARIOS.values():
        marker = " (default)" if scenario.name == DEFAULT_SCENARIO else ""
        print(f"{scenario.name:8s} {scenario.description}{marker}")
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    from servegym.envs.describe import describe_instance

    print(describe_instance(_instance(args), top=None if args.all else args.top))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from servegym.envs.export import instance_to_dict

    instance = _instance(args)
    path = atomic_write_json(args.out, instance_to_dict(instance))
    print(f"wrote {path} ({instance.num_query_types} query types, {instance.num_configurations} configurations)")
    return 0


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _days(text: str) -> list[str]:
    from servegym.traces import AZURE_DAYS, TEST_DAYS, TRAIN_DAYS

    named = {"test": list(TEST_DAYS), "train": list(TRAIN_DAYS), "all": list(AZURE_DAYS)}
    days: list[str] = []
    for part in _csv_list(text):
        if part in named:
            days += named[part]
        elif part in AZURE_DAYS:
            days.append(part)
        else:
            raise argparse.ArgumentTypeError(
                f"--days: {part!r} is not an Azure day; use test, train, all or names from {list(AZURE_DAYS)}"
            )
    return days


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from servegym.baselines.evaluate import evaluate
    from servegym.baselines.plots import plot_evaluation

    env_kwargs = {"scenario": args.scenario} if args.scenario else {}
    if args.period_minutes:
        env_kwargs["period_minutes"] = args.period_minutes
    result = evaluate(
        args.policies,
        args.env_id,
        days=args.days,
        seeds=[int(s) for s in args.seeds],
        env_kwargs=env_kwargs,
        progress=not args.no_progress,
    )
    out = Path(args.out)
    atomic_write_text(out / "episodes.csv", result.episodes.to_csv(index=False))
    atomic_write_text(out / "periods.csv", result.periods.to_csv(index=False))
    figure = plot_evaluation(result.periods, out / "evaluate.png")
    columns = [
        "total_cost",
        "rental",
        "delay_penalty",
        "unmet_penalty",
        "reconfiguration",
        "delay_violation_rate",
        "unserved_rate",
        "gpu_hours",
        "mean_decision_s",
        "fallbacks",
    ]
    print(result.summary()[columns].to_string(float_format=lambda v: f"{v:,.4g}"))
    print(f"\nwrote {out / 'episodes.csv'}, {out / 'periods.csv'} and {figure}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="servegym", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {}

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        handlers[name] = handler
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    command("scenarios", _cmd_scenarios, "list the named scenarios")
    describe = command("describe", _cmd_describe, "print an instance: query types, GPUs, configurations")
    _add_scenario_arguments(describe)
    describe.add_argument("--top", type=int, default=5, help="configurations shown per query type")
    describe.add_argument("--all", action="store_true", help="show every configuration")
    export = command("export", _cmd_export, "write the full instance with every coefficient as JSON")
    _add_scenario_arguments(export)
    export.add_argument("--out", required=True, help="output JSON file (schema: docs/instance-schema.md)")

    from servegym.baselines.policies import BASELINE_POLICIES

    default_policies = "gh-rolling,agh-rolling,milp-rolling,gh-static,agh-static,milp-static,agh-reactive,random"
    evaluate = command("evaluate", _cmd_evaluate, "play policies on environment episodes; table, CSV and figure")
    evaluate.add_argument("--env-id", default="servegym/Provisioning-v0", help="registered environment id")
    evaluate.add_argument("--scenario", help="override the environment's scenario (azure, paper, random, toy)")
    evaluate.add_argument("--period-minutes", type=int, help="override the period length (divides 1440)")
    evaluate.add_argument(
        "--policies",
        type=_csv_list,
        default=_csv_list(default_policies),
        help=f"comma-separated, from {', '.join(BASELINE_POLICIES)} (default: {default_policies})",
    )
    evaluate.add_argument(
        "--days", type=_days, default=["2024-05-16-thu"], help="Azure days: test, train, all or day names"
    )
    evaluate.add_argument("--seeds", type=_csv_list, default=["0"], help="comma-separated episode seeds")
    evaluate.add_argument("--out", default="results/evaluate", help="output folder for CSV files and the figure")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``servegym`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (InstanceError, ValueError, FileNotFoundError) as error:
        print(f"servegym {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
