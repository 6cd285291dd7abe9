"""evaluate_plan flags each constraint family on hand-built violating plans and prices every cost part."""

import dataclasses

import numpy as np
import pytest

from servegym.envs.evaluation import Plan, PlanError, evaluate_plan
from servegym.envs.toy import toy_instance


def optimal_toy_plan() -> Plan:
    return Plan(
        replicas=np.array([0, 1, 0]), routing=np.array([[0.0, 160.0, 0.0], [0.0, 40.0, 0.0]]), unserved=np.zeros(2)
    )


def violated(instance, plan) -> set[str]:
    return {v.constraint for v in evaluate_plan(instance, plan).violations}


def test_evaluate_plan__optimal_toy_plan_is_feasible_with_hand_computed_costs():
    evaluation = evaluate_plan(toy_instance(), optimal_toy_plan())
    assert evaluation.feasible, evaluation.summary()
    assert evaluation.cost.rental == pytest.approx(3.0)
    assert evaluation.cost.delay_penalty == pytest.approx(2.0)
    assert evaluation.cost.unmet_penalty == 0.0
    assert evaluation.cost.storage == 0.0
    assert evaluation.cost.total == pytest.approx(5.0)
    assert evaluation.utilisation == pytest.approx([0.0, 0.8, 0.0])
    assert evaluation.error_rate == pytest.approx([0.05, 0.05])
    assert evaluation.delay_slack_s == pytest.approx([9.0, 9.0])
    assert evaluation.gpus_used.tolist() == [0, 2]


def test_evaluate_plan__period_length_scales_every_cost_part():
    instance = toy_instance().with_demand(np.array([160.0, 40.0]), period_hours=0.25)
    assert evaluate_plan(instance, optimal_toy_plan()).cost.total == pytest.approx(1.25)


def test_evaluate_plan__flags_demand_imbalance():
    plan = dataclasses.replace(optimal_toy_plan(), unserved=np.array([5.0, 0.0]))
    assert "demand" in violated(toy_instance(), plan)


def test_evaluate_plan__flags_unmet_cap_and_prices_unmet_demand():
    plan = Plan(np.array([0, 1, 0]), np.array([[0.0, 130.0, 0.0], [0.0, 40.0, 0.0]]), np.array([30.0, 0.0]))
    evaluation = evaluate_plan(toy_instance(), plan)
    [violation] = evaluation.violations
    assert (violation.constraint, violation.subject) == ("unmet_cap", "A")
    assert violation.value == pytest.approx(30.0) and violation.limit == pytest.approx(16.0)
    assert evaluation.cost.unmet_penalty == pytest.approx(30.0)


def test_evaluate_plan__flags_capacity_overload_per_configuration():
    plan = Plan(np.array([1, 0, 0]), np.array([[160.0, 0.0, 0.0], [40.0, 0.0, 0.0]]), np.zeros(2))
    found = {(v.constraint, v.subject) for v in evaluate_plan(toy_instance(), plan).violations}
    assert ("capacity", "m-small@cheap/fp16/tp1pp1") in found


def test_evaluate_plan__flags_error_slo_of_the_demand_weighted_average():
    plan = Plan(np.array([3, 0, 0]), np.array([[160.0, 0.0, 0.0], [40.0, 0.0, 0.0]]), np.zeros(2))
    evaluation = evaluate_plan(toy_instance(), plan)
    assert {(v.constraint, v.subject) for v in evaluation.violations} == {("error_slo", "A")}
    assert evaluation.error_rate[0] == pytest.approx(0.15)


def test_evaluate_plan__flags_routes_over_the_delay_slo():
    plan = Plan(np.array([0, 1, 1]), np.array([[0.0, 160.0, 0.0], [0.0, 0.0, 40.0]]), np.zeros(2))
    violations = evaluate_plan(toy_instance(), plan).violations
    assert [v.constraint for v in violations] == ["delay_slo"]
    assert "B→m-small@cheap/int4/tp1pp1" in violations[0].subject


def test_evaluate_plan__flags_budget_availability_max_replicas_and_storage():
    instance = toy_instance().with_changes(budget_per_hour=2.0, storage_capacity_gb=10.0)
    plan = Plan(np.array([0, 3, 0]), np.array([[0.0, 160.0, 0.0], [0.0, 40.0, 0.0]]), np.zeros(2))
    assert violated(instance, plan) == {"budget", "availability", "max_replicas", "storage"}


def test_evaluate_plan__rejects_malformed_plans_with_clear_errors():
    good = optimal_toy_plan()
    with pytest.raises(PlanError, match=r"replicas has shape \(2,\), expected \(3,\)"):
        evaluate_plan(toy_instance(), dataclasses.replace(good, replicas=np.array([0, 1])))
    with pytest.raises(PlanError, match="NaN"):
        evaluate_plan(toy_instance(), dataclasses.replace(good, unserved=np.array([np.nan, 0.0])))
    with pytest.raises(PlanError, match="whole numbers"):
        evaluate_plan(toy_instance(), dataclasses.replace(good, replicas=np.array([0, 0.5, 0])))
    with pytest.raises(PlanError, match="negative"):
        evaluate_plan(toy_instance(), dataclasses.replace(good, replicas=np.array([0, -1, 0])))
