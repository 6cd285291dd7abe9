"""The paper's stress test in world v1: plans made on nominal parameters, run with delay and error inflated.

Usage (from the repository root)::

    python scripts/experiment_stress.py [--inflation 1.0 1.2 1.5] [--days DAY ...] [--model RUN_DIR ...]
                                        [--out results/experiment_stress]

Two parts, both following the paper's Stage 1 (plan on nominal parameters) / Stage 2 (run the fixed placement with
inflated parameters) protocol:

1. Single period, ``paper`` and ``azure`` scenarios: GH, AGH and the MILP plan once on the nominal instance; the
   plan's replicas are routed as the v1 router routes (realised demand over ready capacity at the realised,
   inflated service speed, nominal error rates) and run through the realised world (envs/outcome.py) with delay
   and error inflation κ. Reported: realised cost per hour (error penalty ψ_i = φ_i included) and the graded
   SLO outcomes (delay violations, excess erroneous responses beyond the error budget, unserved; the
   SLO-violation rate counts each request once).
2. The Azure test days in the environment (``servegym/Provisioning-v3``, cold starts) with the same inflation:
   the static planners (the paper's fixed placement), rolling, hold and robust GH and AGH, rolling MILP, and any
   trained agents given with ``--model``.

Writes OUT.json and OUT.md atomically.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from servegym.baselines.runner.episodes import evaluate
from servegym.baselines.runner.policies import run_planner
from servegym.envs.outcome import realise
from servegym.envs.routing import Router
from servegym.envs.scenarios import make_instance
from servegym.io import atomic_write_json, atomic_write_text, block_markers, replace_marked_block
from servegym.tables import markdown_table
from servegym.traces import TEST_DAYS

PLANNERS = ("gh", "agh", "milp")
ENV_POLICIES = (
    "gh-static",
    "agh-static",
    "milp-static",
    "gh-rolling",
    "agh-rolling",
    "milp-rolling",
    "gh-hold",
    "agh-hold",
    "agh-quantile-hold",
    "gh-robust",
    "agh-robust",
)


RESULTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"
DOC_BLOCKS = {
    name: block_markers(name, "scripts/experiment_stress.py")
    for name in ("experiment-stress-single", "experiment-stress-day")
}
"""The tables of docs/results.md this script rewrites (unless ``--no-docs``), between these marker lines."""


def single_period(scenario: str, inflations: list[float]) -> list[dict[str, Any]]:
    """Stage 1 on the nominal instance, Stage 2 at each inflation."""
    instance = make_instance(scenario)
    router = Router(instance)
    rows = []
    for planner in PLANNERS:
        result = run_planner(planner, instance, seed=0)
        if not result.feasible:
            rows.append({"scenario": scenario, "method": planner, "status": result.status})
            continue
        for inflation in inflations:
            slowdown = np.full(instance.num_configurations, inflation)
            routed = router.route(result.plan.replicas, relax_unmet_cap=True, slowdown=slowdown)
            outcome = realise(
                instance,
                result.plan.replicas,
                routed.plan.routing,
                routed.plan.unserved,
                slowdown=slowdown,
                error_factor=inflation,
                error_penalty_per_request=instance.unmet_penalty_per_request,
            )
            rows.append(
                {
                    "scenario": scenario,
                    "method": planner.upper(),
                    "inflation": inflation,
                    "nominal cost $/h": result.total_cost / instance.period_hours,
                    "realised cost $/h": outcome.total_cost / instance.period_hours,
                    "SLO violation %": 100 * outcome.slo_violation_rate,
                    "error penalty $/h": outcome.cost["error_penalty"] / instance.period_hours,
                    "delay viol. %": 100 * outcome.delay_violation_rate,
                    "error viol. %": 100 * outcome.error_violation_rate,
                    "unserved %": 100 * outcome.unserved_rate,
                    "GPUs": int(result.plan.replicas @ instance.gpus_per_replica),
                }
            )
    return rows


def environment_days(days: list[str], inflations: list[float], models: list[str]) -> list[dict[str, Any]]:
    """Policies over 24-h Azure days at each inflation (mean over the days)."""
    policies: dict[str, Any] = {name: name for name in ENV_POLICIES}
    if models:
        from servegym.agents.adapter import sb3_policy_factory

        policies |= {f"agent:{os.path.basename(path.rstrip('/'))}": sb3_policy_factory(path) for path in models}
    rows = []
    for inflation in inflations:
        result = evaluate(
            policies,
            days=days,
            env_kwargs={"delay_inflation": inflation, "error_inflation": inflation},
            progress=False,
        )
        for policy, record in result.summary().iterrows():
            rows.append(
                {
                    "policy": policy,
                    "inflation": inflation,
                    "day cost $": record["total_cost"],
                    "unmet penalty $": record["unmet_penalty"],
                    "error penalty $": record["error_penalty"],
                    "SLO violation %": 100 * record["slo_violation_rate"],
                    "delay viol. %": 100 * record["delay_violation_rate"],
                    "error viol. %": 100 * record["error_violation_rate"],
                    "unserved %": 100 * record["unserved_rate"],
                    "GPU-hours": record["gpu_hours"],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inflation", nargs="+", type=float, default=[1.0, 1.2, 1.5])
    parser.add_argument(
        "--days", nargs="+", default=list(TEST_DAYS), help="Azure days of the environment part (default: test days)"
    )
    parser.add_argument("--model", nargs="*", default=[], help="trained agent run directories (servegym train)")
    parser.add_argument("--out", default="results/experiment_stress", help="output path without extension")
    parser.add_argument("--no-docs", action="store_true", help="leave the tables of docs/results.md as they are")
    args = parser.parse_args()

    single = [row for scenario in ("paper", "azure") for row in single_period(scenario, args.inflation)]
    day = environment_days(args.days, args.inflation, args.model)
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs"
    command = "python scripts/experiment_stress.py " + " ".join(
        [f"--inflation {' '.join(map(str, args.inflation))}", f"--days {' '.join(args.days)}"]
        + ([f"--model {' '.join(args.model)}"] if args.model else [])
    )
    markdown = (
        f"Stress test ({date}; {machine}); command: `{command}`\n\n"
        "Single period (plan on nominal parameters, run inflated):\n\n"
        + markdown_table(pd.DataFrame(single))
        + f"\n\n24-hour environment episodes (mean over {', '.join(args.days)}), delay and error inflated:\n\n"
        + markdown_table(pd.DataFrame(day))
        + "\n"
    )
    print(markdown)
    atomic_write_json(f"{args.out}.json", {"date": date, "machine": machine, "single_period": single, "day": day})
    atomic_write_text(f"{args.out}.md", markdown)
    if not args.no_docs:
        replace_marked_block(RESULTS_DOC, *DOC_BLOCKS["experiment-stress-single"], markdown_table(pd.DataFrame(single)))
        replace_marked_block(RESULTS_DOC, *DOC_BLOCKS["experiment-stress-day"], markdown_table(pd.DataFrame(day)))


if __name__ == "__main__":
    main()
