"""``servegym evaluate``: play policies on environment episodes; table, CSV files and figure.

Demand: ``--demand`` or ``--days`` when given; otherwise the id's own demand source (``--env-kwargs`` may set
it), except for ids that draw Azure train days, which play :data:`DEFAULT_EVALUATION_DAY` (a test day) so that
no policy is scored on days a model may have been trained on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from servegym.cli._common import (
    DEMAND_HELP,
    SB3_POLICY_PREFIX,
    add_catalog_argument,
    add_env_argument,
    add_env_kwargs_argument,
    csv_list,
    days,
    no_progress_argument,
    period_minutes,
    policy_names,
    seeds,
)
from servegym.envs.instance import Instance, InstanceError
from servegym.errors import ServegymError, UsageError
from servegym.io import check_output_folder
from servegym.tables import format_number

NAME = "evaluate"
HELP = "play policies on environment episodes; table, CSV and figure"
EXAMPLE = "servegym evaluate --env servegym/Provisioning-v3 --policies agh-quantile-hold,gh-static --seeds 0,1"

DEFAULT_EVALUATION_DAY = "2024-05-16-thu"
"""The shipped Azure test day the main job plays."""
DEFAULT_POLICIES = (
    "tuned-rule,tuned-mix,agh-mix,agh-quantile-hold,agh-quantile,gh-quantile-hold,gh-rolling,agh-rolling,milp-rolling,gh-hold,agh-hold,"
    "gh-robust,gh-adaptive,gh-static,agh-static,milp-static,agh-reactive,random"
)
SUMMARY_COLUMNS = (
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
)
"""Columns of the printed table."""


def _policies(text: str) -> list[str]:
    """``--policies``: at least one baseline or trained model."""
    return policy_names(text, trained=True, allow_empty=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Environment, demand, policies, seeds and output folder."""
    from servegym.baselines.runner.policies import BASELINE_POLICIES
    from servegym.envs.scenarios import SCENARIOS

    add_env_argument(parser)
    add_env_kwargs_argument(parser)
    parser.add_argument(
        "--scenario", choices=sorted(SCENARIOS), help="override the environment's scenario (default: the id's)"
    )
    parser.add_argument(
        "--period-minutes",
        type=period_minutes,
        help="override the period length, minutes dividing 1440 (default: the id's)",
    )
    parser.add_argument(
        "--policies",
        type=_policies,
        default=csv_list(DEFAULT_POLICIES),
        help=f"comma-separated, from {', '.join(BASELINE_POLICIES)}, or sb3:RUN_DIR[@best] for a model trained by "
        "servegym train",
    )
    parser.add_argument(
        "--days",
        type=days,
        help="Azure days: test, train, all or day names (default: the id's own demand; for ids that draw Azure "
        f"train days, {DEFAULT_EVALUATION_DAY})",
    )
    parser.add_argument("--demand", metavar="SOURCE", help=DEMAND_HELP + " (default: as for --days)")
    add_catalog_argument(parser)
    parser.add_argument(
        "--instance",
        metavar="FILE.json",
        help="instance file (docs/instance-schema.md) instead of the scenario (default: the id's scenario)",
    )
    parser.add_argument("--seeds", type=seeds, default=[0], help="comma-separated episode seeds (integers >= 0)")
    parser.add_argument("--out", default="runs/evaluate", help="output folder for CSV files and the figure")
    no_progress_argument(parser)


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


def _check_env(env_id: str, env_kwargs: Mapping[str, Any]) -> None:
    """Build the environment once, so that a keyword value it rejects fails as a usage error before any episode."""
    import gymnasium as gym

    try:
        env = gym.make(env_id, **env_kwargs)
    except ServegymError:
        raise
    except (TypeError, ValueError) as error:  # ProvisioningEnv documents ValueError for a bad keyword value
        raise UsageError(f"--env {env_id}: {error}") from None
    env.close()


def _setting(env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords that define a setting: all but the demand source (evaluation plays other days on purpose), an
    instance object by its name, a catalog folder as an absolute path."""
    setting = {}
    for key, value in env_kwargs.items():
        if key == "demand":
            continue
        if isinstance(value, Instance):
            value = f"<instance {value.name}>"
        elif key == "catalog" and isinstance(value, str | Path):
            value = str(Path(value).resolve())
        setting[key] = value
    return setting


def warn_other_setting(names: Sequence[str], env_id: str, env_kwargs: Mapping[str, Any]) -> list[str]:
    """Warn on stderr for each ``sb3:`` policy whose run trained on another setting than ``env_id`` with
    ``env_kwargs`` (each side with its id's registered keywords; the demand source aside); returns the warnings."""
    from servegym.agents.adapter import parse_sb3_spec
    from servegym.agents.train_config import load_run_config
    from servegym.envs import ENV_IDS

    played = _setting({**ENV_IDS[env_id], **env_kwargs})
    messages = []
    for name in names:
        if not name.startswith(SB3_POLICY_PREFIX):
            continue
        config = load_run_config(parse_sb3_spec(name)[0])
        trained = _setting({**ENV_IDS[config.env_id], **config.env_kwargs})
        if config.env_id != env_id or trained != played or config.instance_overrides:
            overrides = f", instance overrides {dict(config.instance_overrides)}" if config.instance_overrides else ""
            messages.append(
                f"servegym evaluate: warning: {name} was trained on {config.env_id} {trained}{overrides}; "
                f"here it plays {env_id} {played}"
            )
    for message in messages:
        print(message, file=sys.stderr)
    return messages


def _env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``--env-kwargs`` with the override flags added; a key given both ways is a usage error."""
    kwargs = dict(args.env_kwargs)
    if args.instance is not None:
        if args.scenario is not None or args.catalog is not None:
            raise InstanceError(f"--instance {args.instance} fixes every coefficient; drop --scenario and --catalog")
        from servegym.envs.export import load_instance

        args_instance = load_instance(args.instance)
    else:
        args_instance = None
    for flag, key, value in (
        ("--scenario", "scenario", args.scenario),
        ("--instance", "instance", args_instance),
        ("--catalog", "catalog", args.catalog),
        ("--period-minutes", "period_minutes", args.period_minutes),
        ("--demand", "demand", args.demand),
    ):
        if value is None:
            continue
        if key in kwargs:
            raise UsageError(f"{flag} and --env-kwargs '{key}' both given; pass one")
        kwargs[key] = value
    return kwargs


def run(args: argparse.Namespace) -> int:
    """Play the episodes, write ``episodes.csv``, ``periods.csv``, ``evaluate.png`` and ``plan.png`` as a set
    (``manifest.json``), print the table."""
    from servegym.baselines.runner.episodes import evaluate, write_evaluation
    from servegym.envs import ENV_IDS

    out = check_output_folder(args.out, "--out")
    if args.demand is not None and args.days is not None:
        raise UsageError("--demand and --days both given; pass one (--days D is --demand azure:D)")
    env_kwargs = _env_kwargs(args)
    demand = env_kwargs.pop("demand", None)
    if demand is not None and args.days is not None:
        raise UsageError("--env-kwargs 'demand' and --days both given; pass one (--days D is --demand azure:D)")
    chosen_days = args.days
    if chosen_days is None and demand is None:  # the id's own demand, unless it draws Azure train days
        own_demand = ENV_IDS[args.env].get("demand", "azure-train")
        chosen_days = [DEFAULT_EVALUATION_DAY] if own_demand == "azure-train" else None
    policies = _policy_specs(args.policies)
    _check_env(args.env, {**env_kwargs, **({"demand": demand} if demand is not None else {})})
    warn_other_setting(args.policies, args.env, env_kwargs)
    result = evaluate(
        policies,
        args.env,
        days=chosen_days,
        seeds=args.seeds,
        env_kwargs=env_kwargs,
        demand=demand,
        progress=not args.no_progress,
    )
    paths = write_evaluation(result, out, command=args.command_line)
    print(result.summary()[list(SUMMARY_COLUMNS)].to_string(float_format=format_number))
    print(f"\nwrote {', '.join(str(p) for p in paths)} and {out / 'manifest.json'}")
    return 0
