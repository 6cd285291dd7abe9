"""The ``servegym`` command line: ``servegym --help`` lists the subcommands.

Exit status: 0 on success; 2 for a user error, printed as one line ``servegym COMMAND: error: MESSAGE`` without a
traceback: a bad argument (argparse) or any :class:`~servegym.errors.ServegymError` (a bad file, setting or
path; arguments and output paths are checked before any work is done); 1 when a command ran but its outcome is
negative (an infeasible plan, failed sweep cells), and for any other exception, which is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.instance import Instance, InstanceError
from servegym.errors import ServegymError, UsageError
from servegym.io import atomic_write_json, atomic_write_text, check_output_file, check_output_folder
from servegym.traces import TEST_DAYS

DEFAULT_EVALUATION_DAY = "2024-05-16-thu"
"""The shipped Azure test day the main job plays."""
DEMAND_HELP = (
    "demand source: azure-train, azure-test, azure-validation, azure-week, azure:<day>, synthetic, or "
    "trace:PATH[?key=value&...] for your own trace file (docs/traces.md, 'Your own traces'; "
    "servegym trace inspect PATH shows what it gives)"
)


SB3_POLICY_PREFIX = "sb3:"
"""Prefix of a trained model's run folder in ``--policies`` (``sb3:RUN_DIR[@best]``)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, ``PROG: error: MESSAGE (see PROG --help)``, status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _size(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be three integers I,J,K (e.g. 6,6,10), got {text!r}") from None
    if len(size) != 3:
        raise argparse.ArgumentTypeError(f"--size must be three integers I,J,K (e.g. 6,6,10), got {text!r}")
    return size  # type: ignore[return-value]


def _add_scenario_arguments(parser: argparse.ArgumentParser, *, instance_file: bool = True) -> None:
    from servegym.envs.scenarios import DEFAULT_SCENARIO, SCENARIOS

    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help=f"named scenario (default: {DEFAULT_SCENARIO})")
    parser.add_argument(
        "--size",
        type=_size,
        help="I,J,K sizes for --scenario random (max 40,40,40; over 24 tiers adds spot and 2nd-cloud offers)",
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="seed for --scenario random (default: 0)")
    _add_catalog_argument(parser)
    if instance_file:
        parser.add_argument(
            "--instance",
            metavar="FILE.json",
            help="instance file in the exported schema (docs/instance-schema.md) instead of a scenario",
        )


def _add_catalog_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalog",
        metavar="DIR",
        help="directory of catalog CSVs (gpus, models, quality, quantization, startup) whose rows override or "
        "extend the shipped ones by name (docs/catalog.md)",
    )


def _instance(args: argparse.Namespace) -> Instance:
    from servegym.envs.scenarios import DEFAULT_SCENARIO, make_instance

    instance_file = getattr(args, "instance", None)
    if instance_file is not None:
        given = [
            flag
            for flag, value in (("--scenario", args.scenario), ("--size", args.size), ("--catalog", args.catalog))
            if value is not None
        ]
        if given:
            raise InstanceError(
                f"--instance {instance_file} fixes every coefficient; drop {', '.join(given)} (they build a scenario)"
            )
        from servegym.envs.export import load_instance

        return load_instance(instance_file)
    return make_instance(args.scenario or DEFAULT_SCENARIO, seed=args.seed, size=args.size, catalog=args.catalog)


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

    out = check_output_file(args.out, "--out")
    instance = _instance(args)
    path = atomic_write_json(out, instance_to_dict(instance))
    print(f"wrote {path} ({instance.num_query_types} query types, {instance.num_configurations} configurations)")
    return 0


def _solve(args: argparse.Namespace, instance: Instance):
    if args.method == "gh":
        from servegym.baselines.greedy import solve_gh

        return solve_gh(instance)
    if args.method == "agh":
        from servegym.baselines.adaptive import solve_agh

        return solve_agh(instance, seed=args.seed)
    from servegym.baselines.milp import DEFAULT_SOLVER, WARM_START_AGH, solve

    return solve(
        instance,
        solver=args.solver or DEFAULT_SOLVER,
        time_limit_s=args.time_limit,
        warm_start=None if args.cold else WARM_START_AGH,
        export_mps=Path(args.export_mps) if args.export_mps else None,
        seed=args.seed,
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
    if payload.get("time_split_s"):
        lines.append(
            f"time (plan from {payload['plan_source']}): "
            + ", ".join(
                f"{phase.replace('_', ' ')} {seconds:.2f} s" for phase, seconds in payload["time_split_s"].items()
            )
        )
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

    from servegym.baselines.milp import MilpSolverError

    if args.export_mps is not None:
        check_output_file(args.export_mps, "--export-mps")
    instance = _instance(args)
    try:
        result = _solve(args, instance)
    except MilpSolverError as error:  # a bad --solver or --time-limit: a user error
        raise UsageError(str(error)) from None
    payload = result.to_dict(instance)
    print(json.dumps(payload, indent=2) if args.json else _format_plan(instance, payload))
    return 0 if result.feasible else 1


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _seeds(text: str) -> list[int]:
    """Comma-separated episode seeds: at least one integer >= 0."""
    parts = _csv_list(text)
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0 (e.g. 0,1,2), got {text!r}")
    seeds = []
    for part in parts:
        try:
            seed = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not an integer; expected comma-separated integers >= 0 (e.g. 0,1,2)"
            ) from None
        if seed < 0:
            raise argparse.ArgumentTypeError(f"seed {seed} is negative; seeds are integers >= 0")
        seeds.append(seed)
    return seeds


def _known_policies() -> list[str]:
    from servegym.baselines.policies import BASELINE_POLICIES

    return [*BASELINE_POLICIES, "oracle"]


def _policy_names(text: str, *, trained: bool, allow_empty: bool) -> list[str]:
    """Comma-separated policy names: baselines, ``oracle`` and, if ``trained``, ``sb3:RUN_DIR[@best]``."""
    names = _csv_list(text)
    known = _known_policies()
    choices = ", ".join(known) + (f" or {SB3_POLICY_PREFIX}RUN_DIR[@best]" if trained else "")
    if not names and not allow_empty:
        raise argparse.ArgumentTypeError(f"no policy given in {text!r}; choose from {choices}")
    for name in names:
        model = trained and name.startswith(SB3_POLICY_PREFIX) and len(name) > len(SB3_POLICY_PREFIX)
        if name not in known and not model:
            raise argparse.ArgumentTypeError(f"unknown policy {name!r}; choose from {choices}")
    return names


def _policies(text: str) -> list[str]:
    """``--policies``: at least one baseline or trained model."""
    return _policy_names(text, trained=True, allow_empty=False)


def _baselines(text: str) -> list[str]:
    """``--baselines``: baseline names, possibly none."""
    return _policy_names(text, trained=False, allow_empty=True)


def _baseline(text: str) -> str:
    """One baseline policy name (``--reference``, ``--oracle``)."""
    names = _policy_names(text, trained=False, allow_empty=False)
    if len(names) != 1:
        raise argparse.ArgumentTypeError(f"expected one policy name, got {text!r}")
    return names[0]


def _period_minutes(text: str) -> int:
    """A period length in minutes that divides the day (1440)."""
    minutes = _positive_int(text)
    if 1440 % minutes:
        divisors = ", ".join(str(m) for m in range(1, 1441) if 1440 % m == 0)
        raise argparse.ArgumentTypeError(f"{minutes} does not divide 1440 minutes; allowed: {divisors}")
    return minutes


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
                f"{part!r} is not an Azure day; use test, train, all or names from {list(AZURE_DAYS)}"
            )
    return days


def _policy_specs(names: Sequence[str]) -> dict:
    """Policy names for ``evaluate``: baselines as they are, ``sb3:RUN[@best]`` as a trained model's factory."""
    specs: dict = {}
    for name in names:
        if name.startswith(SB3_POLICY_PREFIX):
            from servegym.agents.adapter import parse_sb3_spec, sb3_policy_factory

            specs[name] = sb3_policy_factory(*parse_sb3_spec(name))
        else:
            specs[name] = name
    return specs


def _check_env(env_id: str, env_kwargs: dict) -> None:
    """Build the environment once, so that a keyword value it rejects fails as a usage error before any episode."""
    import gymnasium as gym

    try:
        env = gym.make(env_id, **env_kwargs)
    except ServegymError:
        raise
    except ValueError as error:  # ProvisioningEnv documents ValueError for a bad keyword value
        raise UsageError(f"--env-id {env_id}: {error}") from None
    env.close()


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from servegym.baselines.evaluate import evaluate
    from servegym.baselines.plots import plot_evaluation
    from servegym.envs import ENV_IDS

    out = check_output_folder(args.out, "--out")
    if args.demand is not None and args.days is not None:
        raise UsageError("--demand and --days both given; pass one (--days D is --demand azure:D)")
    env_kwargs: dict = {"scenario": args.scenario} if args.scenario else {}
    if args.instance is not None:
        if args.scenario is not None or args.catalog is not None:
            raise InstanceError(f"--instance {args.instance} fixes every coefficient; drop --scenario and --catalog")
        from servegym.envs.export import load_instance

        env_kwargs["instance"] = load_instance(args.instance)
    if args.catalog is not None:
        env_kwargs["catalog"] = args.catalog
    if args.period_minutes is not None:
        env_kwargs["period_minutes"] = args.period_minutes
    days = args.days
    if days is None and args.demand is None:  # the id's own demand, unless it draws Azure train days: the test day
        own_demand = ENV_IDS[args.env_id].get("demand", "azure-train")
        days = [DEFAULT_EVALUATION_DAY] if own_demand == "azure-train" else None
    policies = _policy_specs(args.policies)
    _check_env(args.env_id, {**env_kwargs, **({"demand": args.demand} if args.demand is not None else {})})
    result = evaluate(
        policies,
        args.env_id,
        days=days,
        seeds=args.seeds,
        env_kwargs=env_kwargs,
        demand=args.demand,
        progress=not args.no_progress,
    )
    atomic_write_text(out / "episodes.csv", result.episodes.to_csv(index=False))
    atomic_write_text(out / "periods.csv", result.periods.to_csv(index=False))
    figure = plot_evaluation(result.periods, out / "evaluate.png")
    columns = [
        "total_cost",
        "rental",
        "delay_penalty",
        "unmet_penalty",
        "error_penalty",
        "reconfiguration",
        "slo_violation_rate",
        "delay_violation_rate",
        "error_violation_rate",
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
    if args.store is not None:
        store = ResultStore(check_output_folder(args.store, "--store"))
    else:
        store = ResultStore(check_output_folder(default_store(config), "results store"))
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
    out = store.root / "report" if args.out is None else check_output_folder(args.out, "--out")
    paths = write_report(store, out)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _json_object(text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"horizon_hours\": 24}}', got {text!r}")
    return value


def _train_env_kwargs(args: argparse.Namespace) -> dict:
    """``--env-kwargs`` with ``--demand`` and ``--catalog`` (absolute path, so the run folder is portable) added."""
    kwargs = dict(args.env_kwargs)
    for flag, key, value in (("--demand", "demand", args.demand), ("--catalog", "catalog", args.catalog)):
        if value is None:
            continue
        if key in kwargs:
            raise UsageError(f"{flag} and --env-kwargs '{key}' both given; pass one")
        kwargs[key] = str(Path(value).resolve()) if key == "catalog" else value
    return kwargs


def _cmd_train(args: argparse.Namespace) -> int:
    from servegym.agents.train import TrainConfig, require_rl, train

    require_rl()
    name = args.name or f"{args.algo}-{args.action}"
    out = args.out if args.out is not None else str(Path("runs") / f"{name}-{args.env.split('/')[-1]}-s{args.seed}")
    check_output_folder(out, "--out")
    config = TrainConfig(
        out_dir=out,
        algo=args.algo,
        action=args.action,
        env_id=args.env,
        total_timesteps=args.timesteps,
        seed=args.seed,
        n_envs=args.n_envs,
        name=args.name or "",
        env_kwargs=_train_env_kwargs(args),
        hyperparameters=args.hyperparameters,
        headroom_low=args.headroom_low,
        headroom_high=args.headroom_high,
        headroom_planner=args.headroom_planner,
        headroom_max_payback_periods=args.headroom_max_payback,
        norm_obs=not args.no_norm_obs,
        norm_reward=not args.no_norm_reward,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        checkpoint_freq=args.checkpoint_freq,
        torch_threads=args.torch_threads,
    )
    try:
        result = train(config, progress_bar=not args.no_progress, require_checkpoint=args.resume)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: checkpoint written in {out}/checkpoints; run the same command to resume", file=sys.stderr
        )
        return 130
    resumed = f" (resumed from step {result.start_timesteps})" if result.start_timesteps else ""
    rewards = result.validation_rewards
    validation = f"best validation reward {max(rewards):.4g}" if rewards else "no validation evaluation yet"
    print(
        f"trained {config.label} to {result.num_timesteps} steps{resumed}; {validation}\n"
        f"model {result.model_path}; best {result.best_model_path}; TensorBoard: tensorboard --logdir {out}/tb"
    )
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from servegym.agents.leaderboard import check_markdown, format_leaderboard, update_markdown
    from servegym.agents.scoring import score, summarise
    from servegym.agents.train import require_rl

    require_rl()
    out = check_output_folder(args.out, "--out")
    for path in args.update:
        check_markdown(path)
    if args.demand is not None and args.days is not None:
        raise UsageError("--demand and --days both given; pass one (--days D is --demand azure:D)")
    days = args.days if args.days is not None else list(TEST_DAYS)
    scores = score(
        args.model,
        days=days,
        demand=args.demand,
        reference=args.reference,
        seeds=args.seeds,
        oracle=args.oracle,
        baselines=args.baselines,
        which=args.which,
        progress=not args.no_progress,
    )
    summary = summarise(scores)
    table = format_leaderboard(
        summary,
        reference=args.reference,
        oracle=args.oracle,
        days=[args.demand] if args.demand else days,
        seeds=args.seeds,
    )
    atomic_write_text(out / "scores.csv", scores.to_csv(index=False))
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(out / "leaderboard.md", table)
    for path in args.update:
        update_markdown(path, table)
    print(table)
    written = [out / "scores.csv", out / "summary.csv", out / "leaderboard.md", *args.update]
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _cmd_trace_inspect(args: argparse.Namespace) -> int:
    from servegym.envs.demand_source import TRACE_EPISODE_KEYS
    from servegym.traces.inspect import describe_trace, plot_trace
    from servegym.traces.user_trace import load_trace, parse_trace_spec, trace_options

    path, values = parse_trace_spec(args.file.removeprefix("trace:"))
    episode_keys = sorted(set(values) & set(TRACE_EPISODE_KEYS))
    if episode_keys:
        raise UsageError(f"trace inspect reads the file; options {episode_keys} choose episodes (use them in --demand)")
    default_out = Path("results") / "trace-inspect" / f"{path.name.split('.')[0]}.png"
    out = check_output_file(args.out if args.out is not None else default_out, "--out")
    trace = load_trace(path, trace_options(values))
    print(describe_trace(trace, args.period_minutes))
    print(f"\nwrote {plot_trace(trace, out, args.period_minutes)}")
    return 0


def _int_at_least(low: int, words: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``, described as ``words`` in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {words}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {words}, got {value}")
        return value

    return parse


_non_negative_int = _int_at_least(0, "an integer >= 0")
_positive_int = _int_at_least(1, "a positive integer")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="servegym", description=__doc__.splitlines()[0])
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
    describe.add_argument("--top", type=_non_negative_int, default=5, help="configurations shown per query type")
    describe.add_argument("--all", action="store_true", help="show every configuration")
    export = command("export", _cmd_export, "write the full instance with every coefficient as JSON")
    _add_scenario_arguments(export)
    export.add_argument("--out", required=True, help="output JSON file (schema: docs/instance-schema.md)")

    solve = command("solve", _cmd_solve, "solve one single-period instance with GH, AGH or the MILP")
    _add_scenario_arguments(solve)
    solve.add_argument("--method", choices=["gh", "agh", "milp"], default="agh", help="planner")
    solve.add_argument(
        "--time-limit",
        type=float,
        help="MILP time limit in seconds for the whole call (AGH warm start, build, presolve, solve)",
    )
    solve.add_argument("--cold", action="store_true", help="MILP: no warm start (default: from AGH's plan)")
    solve.add_argument("--solver", help="MILP solver backend (default: the benchmarked fastest)")
    solve.add_argument("--export-mps", help="write the exact MILP in MPS format to this file")
    solve.add_argument("--json", action="store_true", help="print a machine-readable result")

    from servegym.baselines.policies import BASELINE_POLICIES
    from servegym.envs import ENV_IDS
    from servegym.envs.scenarios import SCENARIOS

    default_policies = (
        "agh-quantile-hold,agh-quantile,gh-quantile-hold,gh-rolling,agh-rolling,milp-rolling,gh-hold,agh-hold,"
        "gh-robust,gh-adaptive,gh-static,agh-static,milp-static,agh-reactive,random"
    )
    evaluate = command("evaluate", _cmd_evaluate, "play policies on environment episodes; table, CSV and figure")
    evaluate.add_argument("--env-id", choices=list(ENV_IDS), default=DEFAULT_ENV_ID, help="registered environment id")
    evaluate.add_argument("--scenario", choices=sorted(SCENARIOS), help="override the environment's scenario")
    evaluate.add_argument("--period-minutes", type=_period_minutes, help="override the period length (divides 1440)")
    evaluate.add_argument(
        "--policies",
        type=_policies,
        default=_csv_list(default_policies),
        help=f"comma-separated, from {', '.join(BASELINE_POLICIES)}, or sb3:RUN_DIR[@best] for a model trained by "
        f"servegym train (default: {default_policies})",
    )
    evaluate.add_argument(
        "--days",
        type=_days,
        default=None,
        help="Azure days: test, train, all or day names (default: the id's own demand; for ids that draw Azure "
        f"train days, {DEFAULT_EVALUATION_DAY})",
    )
    evaluate.add_argument("--demand", metavar="SOURCE", help=DEMAND_HELP)
    _add_catalog_argument(evaluate)
    evaluate.add_argument(
        "--instance", metavar="FILE.json", help="instance file (docs/instance-schema.md) instead of the scenario"
    )
    evaluate.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated episode seeds (integers >= 0)")
    evaluate.add_argument("--out", default="results/evaluate", help="output folder for CSV files and the figure")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    from servegym.agents.config import ACTIONS, ALGORITHMS, HEADROOM_PLANNERS, TrainConfig
    from servegym.agents.scoring import DEFAULT_BASELINES

    defaults = TrainConfig(out_dir="")
    train = command("train", _cmd_train, "train an SB3 agent (needs the rl extra); resumes from the last checkpoint")
    train.add_argument("--algo", choices=list(ALGORITHMS), default=defaults.algo, help="learning algorithm")
    train.add_argument("--action", choices=ACTIONS, default=defaults.action, help="action space (docs/agents.md)")
    train.add_argument("--env", choices=list(ENV_IDS), default=defaults.env_id, help="environment id")
    train.add_argument("--env-kwargs", type=_json_object, default={}, help="JSON object of gymnasium.make keywords")
    train.add_argument("--demand", metavar="SOURCE", help=DEMAND_HELP + "; validation plays the trace's validation day")
    _add_catalog_argument(train)
    train.add_argument("--timesteps", type=_positive_int, default=defaults.total_timesteps, help="total env steps")
    train.add_argument("--seed", type=_non_negative_int, default=defaults.seed, help="training seed (integer >= 0)")
    train.add_argument("--n-envs", type=_positive_int, default=defaults.n_envs, help="parallel environments")
    train.add_argument("--out", help="run folder (default: runs/<name>-<env>-s<seed>)")
    train.add_argument("--name", help="label in scores and leaderboards (default: <algo>-<action>)")
    train.add_argument(
        "--hyperparameters", type=_json_object, default={}, help="JSON object overriding the algorithm's defaults"
    )
    train.add_argument("--eval-freq", type=_positive_int, default=defaults.eval_freq, help="steps between evaluations")
    train.add_argument(
        "--eval-episodes", type=_positive_int, default=defaults.eval_episodes, help="validation episodes"
    )
    train.add_argument(
        "--checkpoint-freq", type=_positive_int, default=defaults.checkpoint_freq, help="steps between checkpoints"
    )
    train.add_argument("--headroom-low", type=float, default=defaults.headroom_low, help="lowest demand multiplier")
    train.add_argument("--headroom-high", type=float, default=defaults.headroom_high, help="highest demand multiplier")
    train.add_argument(
        "--headroom-planner", choices=HEADROOM_PLANNERS, default=defaults.headroom_planner, help="headroom planner"
    )
    train.add_argument(
        "--headroom-max-payback",
        type=float,
        default=defaults.headroom_max_payback_periods,
        metavar="PERIODS",
        help="largest switching payback horizon the agent may choose, periods (0: no patience dimension)",
    )
    train.add_argument("--no-norm-obs", action="store_true", help="do not normalise observations")
    train.add_argument("--no-norm-reward", action="store_true", help="do not normalise rewards")
    train.add_argument("--torch-threads", type=_positive_int, default=defaults.torch_threads, help="torch threads")
    train.add_argument("--resume", action="store_true", help="fail unless the run folder has a checkpoint")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    score = command("score", _cmd_score, "score trained models on the test days: costs, SLOs, normalised score")
    score.add_argument("--model", nargs="+", action="extend", required=True, help="run folders of servegym train")
    score.add_argument("--which", choices=["final", "best"], default="final", help="final or best-on-validation model")
    score.add_argument("--days", type=_days, default=None, help="Azure days (default: test)")
    score.add_argument(
        "--demand",
        metavar="SOURCE",
        help=DEMAND_HELP + "; replaces --days (the runs' query types must match: trace:PATH?types=total drives "
        "them by the trace's total load)",
    )
    score.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="comma-separated episode seeds (integers >= 0)")
    score.add_argument("--reference", type=_baseline, default="agh-static", help="baseline policy that scores 0")
    score.add_argument(
        "--oracle", type=_baseline, default="oracle", help="policy that scores 100 (default: the oracle)"
    )
    score.add_argument(
        "--baselines", type=_baselines, default=list(DEFAULT_BASELINES), help="further baselines to play"
    )
    score.add_argument("--out", default="results/score", help="folder for scores.csv, summary.csv, leaderboard.md")
    score.add_argument("--update", nargs="*", default=[], help="Markdown files whose leaderboard block to replace")
    score.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sweep = command("sweep", _cmd_sweep, "run every cell of a sweep config on a process pool or Ray; resumable")
    sweep.add_argument("config", help="TOML configuration file (docs/experiments.md)")
    sweep.add_argument("--backend", choices=["local", "ray"], default="local", help="where cells run")
    sweep.add_argument(
        "--address",
        help="Ray cluster address (ray://HOST:10001, HOST:6379 or auto; fails if it does not answer within 30 s); "
        "default: a new local cluster",
    )
    sweep.add_argument("--workers", type=_positive_int, help="processes (local) or CPUs of a local Ray cluster")
    sweep.add_argument("--store", help="results store folder (default: results/sweeps/<config name>)")
    sweep.add_argument("--max-cells", type=_positive_int, help="compute at most this many cells in this run")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    trace = command("trace", _cmd_trace_inspect, "inspect your own trace file (subcommand: inspect)")
    trace_commands = trace.add_subparsers(dest="trace_command", required=True, metavar="SUBCOMMAND")
    inspect = trace_commands.add_parser(
        "inspect",
        help="format, span, rates and derived query types of a trace file, and a PNG of its rate over time",
        description="format, span, rates and derived query types of a trace file, and a PNG of its rate over time",
    )
    inspect.add_argument("file", help="trace file, optionally with read options: PATH[?time_unit=s&service=...]")
    inspect.add_argument(
        "--period-minutes", type=_positive_int, default=15, help="period of the rate table and figure (default: 15)"
    )
    inspect.add_argument("--out", help="PNG to write (default: results/trace-inspect/<file name>.png)")
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
    except ServegymError as error:  # a user error; anything else is a bug and keeps its traceback (exit status 1)
        command = f"trace {args.trace_command}" if args.command == "trace" else args.command
        print(f"servegym {command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
