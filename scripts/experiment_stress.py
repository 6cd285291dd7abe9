"""The paper's stress test: plans made on nominal parameters, run with delay and error inflated 1.0×, 1.2×, 1.5×.

Usage (from the repository root)::

    python scripts/experiment_stress.py [--inflation 1.0 1.2 1.5] [--day 2024-05-16-thu] [--model RUN_DIR ...]
                                        [--out results/experiment_stress]

Two parts, both following the paper's Stage 1 (plan on nominal parameters) / Stage 2 (run the fixed placement with
inflated parameters) protocol:

1. Single period, ``paper`` and ``azure`` scenarios: GH, AGH and the MILP plan once on the nominal instance; the
   plan's replicas are routed with nominal coefficients and run through the realised world (envs/outcome.py) with
   delay and error inflation κ. Reported: realised cost per hour and the SLO-violation rate (the share of
   requests that miss any SLO: dropped, served over the delay SLO, or of a type over its error SLO; each request
   counted once).
2. A 24-hour Azure test day in the environment with the same inflation: the static planners (the paper's fixed
   placement), rolling AGH, and any trained agents given with ``--model``.

Writes OUT.json and OUT.md atomically.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from servegym.baselines.evaluate import evaluate
from servegym.baselines.policies import run_planner
from servegym.envs.outcome import realise
from servegym.envs.routing import Router
from servegym.envs.scenarios import make_instance
from servegym.io import atomic_write_json, atomic_write_text
from servegym.tables import markdown_table

PLANNERS = ("gh", "agh", "milp")
ENV_POLICIES = ("gh-static", "agh-static", "milp-static", "agh-rolling", "gh-hold")


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
        routed = router.route(result.plan.replicas, relax_unmet_cap=True)
        for inflation in inflations:
            outcome = realise(
                instance,
                result.plan.replicas,
                routed.plan.routing,
                routed.plan.unserved,
                delay_inflation=inflation,
                error_inflation=inflation,
            )
            rows.append(
                {
                    "scenario": scenario,
                    "method": planner.upper(),
                    "inflation": inflation,
                    "nominal cost $/h": result.total_cost / instance.period_hours,
                    "realised cost $/h": outcome.total_cost / instance.period_hours,
                    "SLO violation %": 100 * outcome.slo_violation_rate,
                    "delay viol. %": 100 * outcome.delay_violation_rate,
                    "error viol. %": 100 * outcome.error_violation_rate,
                    "unserved %": 100 * outcome.unserved_rate,
                    "GPUs": int(result.plan.replicas @ instance.gpus_per_replica),
                }
            )
    return rows


def environment_day(day: str, inflations: list[float], models: list[str]) -> list[dict[str, Any]]:
    """Policies over one 24-h Azure day at each inflation."""
    policies: dict[str, Any] = {name: name for name in ENV_POLICIES}
    if models:
        from servegym.agents.adapter import sb3_policy_factory

        policies |= {f"agent:{os.path.basename(path.rstrip('/'))}": sb3_policy_factory(path) for path in models}
    rows = []
    for inflation in inflations:
        result = evaluate(
            policies,
            days=[day],
            env_kwargs={"delay_inflation": inflation, "error_inflation": inflation},
            progress=False,
        )
        for record in result.episodes.to_dict("records"):
            rows.append(
                {
                    "policy": record["policy"],
                    "inflation": inflation,
                    "day cost $": record["total_cost"],
                    "unmet penalty $": record["unmet_penalty"],
                    "SLO violation %": 100 * record["slo_violation_rate"],
                    "GPU-hours": record["gpu_hours"],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inflation", nargs="+", type=float, default=[1.0, 1.2, 1.5])
    parser.add_argument("--day", default="2024-05-16-thu", help="Azure test day of the environment part")
    parser.add_argument("--model", nargs="*", default=[], help="trained agent run directories (servegym train)")
    parser.add_argument("--out", default="results/experiment_stress", help="output path without extension")
    args = parser.parse_args()

    single = [row for scenario in ("paper", "azure") for row in single_period(scenario, args.inflation)]
    day = environment_day(args.day, args.inflation, args.model)
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs"
    command = "python scripts/experiment_stress.py " + " ".join(
        [f"--inflation {' '.join(map(str, args.inflation))}", f"--day {args.day}"]
        + ([f"--model {' '.join(args.model)}"] if args.model else [])
    )
    markdown = (
        f"Stress test ({date}; {machine}); command: `{command}`\n\n"
        "Single period (plan on nominal parameters, run inflated):\n\n"
        + markdown_table(pd.DataFrame(single))
        + f"\n\n24-hour environment episode on {args.day}, delay and error inflated:\n\n"
        + markdown_table(pd.DataFrame(day))
        + "\n"
    )
    print(markdown)
    atomic_write_json(f"{args.out}.json", {"date": date, "machine": machine, "single_period": single, "day": day})
    atomic_write_text(f"{args.out}.md", markdown)


if __name__ == "__main__":
    main()
