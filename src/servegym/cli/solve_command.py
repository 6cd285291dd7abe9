"""``servegym solve``: one single-period instance with GH, AGH or the MILP."""

from __future__ import annotations

import argparse
from pathlib import Path

from servegym.cli._common import add_scenario_arguments, selected_instance
from servegym.envs.instance import Instance
from servegym.errors import UsageError
from servegym.io import check_output_file
from servegym.tables import format_number

NAME = "solve"
HELP = "solve one single-period instance with GH, AGH or the MILP"
EXAMPLE = "servegym solve --scenario paper --method milp --time-limit 60"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Scenario selection and the planner's settings."""
    add_scenario_arguments(
        parser, seed_help="seed for --scenario random, for AGH's random start orders and for the MILP solver"
    )
    parser.add_argument("--method", choices=["gh", "agh", "milp"], default="agh", help="planner")
    parser.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="MILP time limit in seconds for the whole call (AGH warm start, build, presolve, solve); default: none",
    )
    parser.add_argument("--cold", action="store_true", help="MILP: no warm start (default: from AGH's plan)")
    parser.add_argument("--solver", help="MILP solver backend (default: the benchmarked fastest)")
    parser.add_argument("--export-mps", metavar="FILE", help="write the exact MILP in MPS format (default: none)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable result")


def _solve(args: argparse.Namespace, instance: Instance):
    if args.method == "gh":
        from servegym.baselines.heuristics.greedy import solve_gh

        return solve_gh(instance)
    if args.method == "agh":
        from servegym.baselines.heuristics.adaptive import solve_agh
        from servegym.baselines.milp.agh_polish import milp_polish

        return solve_agh(instance, seed=args.seed, polish=milp_polish)
    from servegym.baselines.milp.solver import DEFAULT_SOLVER, WARM_START_AGH, solve

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
        lines += ["", "SLO slack per query type", slo.to_string(float_format=format_number)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Solve and print the plan (or its JSON); status 1 when infeasible."""
    import json

    from servegym.baselines.milp.solver import MilpSolverError

    if args.export_mps is not None:
        check_output_file(args.export_mps, "--export-mps")
    chosen = selected_instance(args)
    try:
        result = _solve(args, chosen)
    except MilpSolverError as error:  # a bad --solver or --time-limit: a user error
        raise UsageError(str(error)) from None
    payload = result.to_dict(chosen)
    print(json.dumps(payload, indent=2) if args.json else _format_plan(chosen, payload))
    return 0 if result.feasible else 1
