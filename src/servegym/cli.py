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


def _solve(args: argparse.Namespace, instance: Instance):
    if args.method == "gh":
        from servegym.baselines.greedy import solve_gh

        return solve_gh(instance)
    if args.method == "agh":
        from servegym.baselines.adaptive import solve_agh

        return solve_agh(instance, seed=args.seed)
    from servegym.baselines.milp import DEFAULT_SOLVER, solve

    return solve(
        instance,
        solver=args.solver or DEFAULT_SOLVER,
        time_limit_s=args.time_limit,
        export_mps=Path(args.export_mps) if args.export_mps else None,
    )


def _format_plan(instance: Instance, payload: dict) -> str:
    import pandas as pd

    lines = [
        f"{payload['method']} on {instance.name}: status {payload['status']}, runtime {payload['runtime_s']:.4f} s",
    ]
    if payload["feasible"]:
        gap = payload["gap"]
        bound = payload["bound"]
        lines.append(
            f"total cost ${payload['total_cost']:,.4f} per {instance.period_hours:g} h"
            + (f"; bound ${bound:,.4f}, gap {100 * gap:.3f} %" if bound is not None and gap is not None else "")
        )
    if payload.get("message"):
        lines.append(f"note: {payload['message']}")
    if payload.get("deployments"):
        table = pd.DataFrame(payload["deployments"])
        table["routing_share"] = table["routing_share"].map(
            lambda shares: ", ".join(f"{k} {100 * v:.1f}%" for k, v in shares.items())
        )
        lines += ["", "Deployments", table.drop(columns=["configuration"]).to_string(index=False)]
    if payload.get("cost_parts"):
        lines += [
            "",
            "Cost parts ($ per period): " + ", ".join(f"{k} {v:,.4f}" for k, v in payload["cost_parts"].items()),
        ]
    if payload.get("delay_slack_s"):
        slo = pd.DataFrame(
            {
                "delay slack s": payload["delay_slack_s"],
                "error": payload["error_rate"],
                "ε": {q.name: q.error_slo for q in instance.query_types},
                "unserved req/h": payload["unserved_per_hour"],
            }
        )
        lines += ["", "SLO slack per query type", slo.to_string(float_format=lambda v: f"{v:,.4g}")]
    return "\n".join(lines)


def _cmd_solve(args: argparse.Namespace) -> int:
    import json

    instance = _instance(args)
    result = _solve(args, instance)
    payload = result.to_dict(instance)
    print(json.dumps(payload, indent=2) if args.json else _format_plan(instance, payload))
    return 0 if result.feasible else 1


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
        "slo_violation_rate",
        "delay_violation_rate",
        "unserved_rate",
        "gpu_hours",
        "mean_decision_s",
        "fallbacks",
    ]
    print(result.summary()[columns].to_string(float_format=lambda v: f"{v:,.4g}"))
    print(f"\nwrote {out / 'episodes.csv'}, {out / 'periods.csv'} and {figure}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from servegym.experiments.config import load_config
    from servegym.experiments.report import format_summary, summarise
    from servegym.experiments.store import ResultStore
    from servegym.experiments.sweep import default_store, run_sweep

    config = load_config(args.config)
    store = ResultStore(args.store or default_store(config))
    try:
        outcome = run_sweep(
            config,
            store,
            backend=args.backend,
            workers=args.workers,
            address=args.address,
            max_cells=args.max_cells,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished cells stay in {store.root}; run the same command to resume", file=sys.stderr)
        return 130
    results = pd.read_csv(outcome.merge.results_path)
    summary = summarise(results, outcome.keys)
    if not summary.empty:
        print(format_summary(summary))
    print(
        f"\n{len(outcome.keys)} cells: {outcome.already_finished} already finished, {outcome.executed} run "
        f"({len(outcome.rerun_corrupt)} of them corrupt before), {len(outcome.failures)} failed, "
        f"{outcome.not_started} not started; {outcome.wall_s:.1f} s on {args.backend}"
    )
    print(f"store {store.root}: {outcome.merge.finished} finished cells merged into {outcome.merge.results_path}")
    for failure in outcome.failures:
        print(f"failed: {failure.label}: {failure.error}", file=sys.stderr)
    return 1 if outcome.failures else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from servegym.experiments.report import write_report
    from servegym.experiments.store import ResultStore

    store = ResultStore(args.store)
    if not store.root.is_dir():
        raise FileNotFoundError(f"no results store at {store.root}")
    paths = write_report(store, args.out or store.root / "report")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


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

    solve = command("solve", _cmd_solve, "solve one single-period instance with GH, AGH or the MILP")
    _add_scenario_arguments(solve)
    solve.add_argument("--method", choices=["gh", "agh", "milp"], default="agh", help="planner")
    solve.add_argument("--time-limit", type=float, help="MILP time limit in seconds")
    solve.add_argument("--solver", help="MILP solver backend (default: the benchmarked fastest)")
    solve.add_argument("--export-mps", help="write the exact MILP in MPS format to this file")
    solve.add_argument("--json", action="store_true", help="print a machine-readable result")

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

    sweep = command("sweep", _cmd_sweep, "run every cell of a sweep config on a process pool or Ray; resumable")
    sweep.add_argument("config", help="TOML configuration file (docs/experiments.md)")
    sweep.add_argument("--backend", choices=["local", "ray"], default="local", help="where cells run")
    sweep.add_argument("--address", help="Ray cluster address (ray://HOST:10001, HOST:6379 or auto); default: local")
    sweep.add_argument("--workers", type=_positive_int, help="processes (local) or CPUs of a local Ray cluster")
    sweep.add_argument("--store", help="results store folder (default: results/sweeps/<config name>)")
    sweep.add_argument("--max-cells", type=_positive_int, help="compute at most this many cells in this run")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    report = command("report", _cmd_report, "figures and tables from a results store")
    report.add_argument("store", help="results store folder written by servegym sweep")
    report.add_argument("--out", help="output folder (default: STORE/report)")
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
