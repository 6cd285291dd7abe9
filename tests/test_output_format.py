"""What servegym prints: zeros as 0 in tables, an informative ``Evaluation.summary()``."""

import math

import numpy as np
import pandas as pd

from servegym.baselines.greedy import solve_gh
from servegym.envs.evaluation import Plan, evaluate_plan
from servegym.envs.scenarios import make_instance
from servegym.tables import format_number, markdown_table


def test_format_number__float_noise_of_a_zero_prints_0_and_the_rest_4_significant_digits():
    assert format_number(1.63e-16) == "0"
    assert format_number(-2e-13) == "0"
    assert format_number(0.0) == "0"
    assert format_number(1.5e-9) == "1.5e-09"
    assert format_number(1844.987) == "1,845"
    assert format_number(math.nan) == "–"


def test_markdown_table__prints_0_for_a_zero_rate():
    table = markdown_table(pd.DataFrame({"policy": ["gh"], "error_violation_rate": [1.63e-16], "cost": [2.5]}))
    assert table.splitlines()[-1] == "| gh | 0 | 2.5 |"


def test_evaluation_summary__feasible_plan_gives_cost_per_hour_gpus_and_replicas():
    instance = make_instance("paper")
    evaluation = evaluate_plan(instance, solve_gh(instance).plan)
    text = evaluation.summary()
    assert text.startswith("feasible; $")
    assert f"${format_number(evaluation.cost.total / instance.period_hours)}/hour" in text
    gpus = int(np.sum(evaluation.gpus_used))
    assert f"{gpus} GPU" in text and "replica" in text and "rental" in text and "unmet penalty 0 " in text


def test_evaluation_summary__infeasible_plan_starts_with_its_violations():
    instance = make_instance("paper")
    evaluation = evaluate_plan(instance, Plan.empty(instance))
    text = evaluation.summary()
    assert text.startswith(f"{len(evaluation.violations)} violations: unmet_cap[")
    assert text.endswith("; 0 GPUs; 0 replicas of 0 configurations")
