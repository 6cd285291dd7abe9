"""The exact MILP baseline against hand-solved, brute-forced and re-solved (MPS) optima."""

import itertools
import math

import highspy
import numpy as np
import pytest

from servegym.baselines.milp.backends import highs_lp
from servegym.baselines.milp.model import build_highs_model, build_model
from servegym.baselines.milp.solver import (
    DEFAULT_SOLVER,
    SOLVERS,
    TIME_PHASES,
    MilpSolverError,
    lp_relaxation_bound,
    solve,
)
from servegym.envs.evaluation import Plan, evaluate_plan
from servegym.envs.instance import Instance
from servegym.envs.routing import Router, new_highs
from servegym.envs.scenarios import make_instance
from servegym.envs.toy import tiny_random_instance, toy_instance

TINY_SEEDS = range(24)


def brute_force_optimum(instance: Instance) -> float:
    """Cheapest feasible total cost over every replica vector up to max_replicas (inf if none is feasible)."""
    router = Router(instance)
    best = math.inf
    for replicas in itertools.product(*(range(int(m) + 1) for m in instance.max_replicas)):
        routed = router.route(np.array(replicas))
        if not routed.feasible:
            continue
        evaluation = evaluate_plan(instance, routed.plan)
        if evaluation.feasible:
            best = min(best, evaluation.cost.total)
    return best


@pytest.mark.parametrize("solver", SOLVERS)
def test_milp__toy_optimum_found_by_each_solver(solver):
    result = solve(toy_instance(), solver=solver)
    assert result.status == "optimal", result.message
    assert result.method == "milp"
    assert result.total_cost == pytest.approx(5.0)
    np.testing.assert_array_equal(result.plan.replicas, [0, 1, 0])
    assert result.bound == pytest.approx(5.0)


def test_milp__default_solver_matches_brute_force_on_tiny_instances():
    statuses = set()
    for seed in TINY_SEEDS:
        instance = tiny_random_instance(seed)
        expected = brute_force_optimum(instance)
        result = solve(instance)
        statuses.add(result.status)
        if math.isinf(expected):
            assert result.status == "infeasible", (seed, result.message)
            assert result.plan is None
        else:
            assert result.status == "optimal", (seed, result.message)
            assert result.total_cost == pytest.approx(expected, rel=1e-6), seed
            assert result.bound <= result.total_cost * (1 + 1e-6)
    assert statuses == {"optimal", "infeasible"}  # the seeds cover both outcomes


@pytest.mark.parametrize("solver", [s for s in SOLVERS if s != DEFAULT_SOLVER])
def test_milp__other_solvers_agree_with_default_on_tiny_instances(solver):
    for seed in range(8):
        instance = tiny_random_instance(seed)
        reference = solve(instance)
        result = solve(instance, solver=solver)
        if reference.status == "infeasible":
            assert result.status == "infeasible", (seed, result.message)
        elif solver == "CP_SAT":  # a restriction of the exact model: never cheaper, bound is the LP relaxation
            assert result.feasible, (seed, result.message)
            assert result.total_cost >= reference.total_cost * (1 - 1e-6)
            assert result.bound <= reference.total_cost * (1 + 1e-6)
        else:
            assert result.status == "optimal", (seed, result.message)
            assert result.total_cost == pytest.approx(reference.total_cost, rel=1e-6)


def test_milp__exported_mps_solved_by_highspy_gives_the_same_optimum(tmp_path):
    for index, instance in enumerate([toy_instance(), tiny_random_instance(0), tiny_random_instance(3)]):
        path = tmp_path / f"model{index}.mps"
        result = solve(instance, export_mps=path)
        highs = new_highs()
        assert highs.readModel(str(path)) == highspy.HighsStatus.kOk
        highs.setOptionValue("mip_rel_gap", 1e-9)
        highs.run()
        assert highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
        assert highs.getInfo().objective_function_value == pytest.approx(result.total_cost, rel=1e-6)


@pytest.mark.parametrize("relax", [(), ("budget",), ("error_slo", "storage")])
def test_milp__numpy_built_highs_model_equals_the_pywraplp_model(relax):
    for instance in (toy_instance().with_changes(budget_per_hour=9.0), tiny_random_instance(3), make_instance("paper")):
        reference = highs_lp(build_model(instance, "SCIP", relax=relax).solver)
        built = build_highs_model(instance, relax=relax).lp
        assert (built.num_col_, built.num_row_) == (reference.num_col_, reference.num_row_)
        for name in ("col_cost_", "col_lower_", "col_upper_", "row_lower_", "row_upper_"):
            ours, theirs = np.asarray(getattr(built, name)), np.asarray(getattr(reference, name))
            np.testing.assert_array_equal(np.clip(ours, -1e30, 1e30), np.clip(theirs, -1e30, 1e30), err_msg=name)
        assert list(built.integrality_) == list(reference.integrality_)
        np.testing.assert_array_equal(np.asarray(built.a_matrix_.start_), np.asarray(reference.a_matrix_.start_))
        ours, theirs = (_sorted_entries(lp) for lp in (built, reference))
        np.testing.assert_array_equal(ours, theirs)


def _sorted_entries(lp: highspy.HighsLp) -> np.ndarray:
    """(nnz, 3) row, column, value of a row-wise matrix, sorted by row and column."""
    rows = np.repeat(np.arange(lp.num_row_), np.diff(np.asarray(lp.a_matrix_.start_)))
    columns, values = np.asarray(lp.a_matrix_.index_), np.asarray(lp.a_matrix_.value_)
    order = np.lexsort((columns, rows))
    return np.stack([rows[order], columns[order], values[order]], axis=1)


def test_milp__exported_mps_has_structured_names(tmp_path):
    path = tmp_path / "toy.mps"
    solve(toy_instance(), export_mps=path)
    text = path.read_text()
    for name in ("n[c=m-big@fast/fp16/tp2pp1]", "x[i=A,c=m-small@cheap/int4/tp1pp1]", "u[i=B]", "s[j=m-big]"):
        assert name in text
    assert "x[i=B,c=m-small@cheap/int4/tp1pp1]" not in text  # route breaks Δ_B: no variable at all
    for row in ("demand[i=A]", "capacity[c=m-big@fast/fp16/tp2pp1]", "error_slo[i=A]", "budget", "storage"):
        assert row in text


@pytest.mark.parametrize("solver", SOLVERS)
def test_milp__over_budget_toy_is_infeasible_naming_the_budget(solver):
    result = solve(toy_instance().with_changes(budget_per_hour=1.0), solver=solver)
    assert result.status == "infeasible"
    assert result.plan is None and not result.feasible
    assert "binding: budget" in result.message


@pytest.mark.parametrize("solver", SOLVERS)
def test_milp__warm_start_keeps_the_optimum(solver):
    instance = toy_instance()
    hint = Router(instance).route(np.array([2, 0, 1])).plan  # feasible, $7/h
    assert evaluate_plan(instance, hint).feasible
    result = solve(instance, solver=solver, warm_start=hint)
    assert result.status == "optimal"
    assert result.total_cost == pytest.approx(5.0)


def test_milp__lp_relaxation_bounds_the_optimum():
    assert lp_relaxation_bound(toy_instance()) == pytest.approx(5.0)
    assert lp_relaxation_bound(toy_instance().with_changes(budget_per_hour=1.0)) == math.inf
    for seed in range(8):
        instance = tiny_random_instance(seed)
        result = solve(instance)
        if result.feasible:
            assert lp_relaxation_bound(instance) <= result.total_cost * (1 + 1e-6)


def test_milp__same_seed_gives_the_same_plan():
    instance = tiny_random_instance(4)
    first, second = solve(instance, seed=3), solve(instance, seed=3)
    np.testing.assert_array_equal(first.plan.replicas, second.plan.replicas)
    np.testing.assert_array_equal(first.plan.routing, second.plan.routing)


def test_milp__cost_is_charged_over_the_period():
    result = solve(toy_instance().with_changes(period_hours=0.25))
    assert result.total_cost == pytest.approx(1.25)
    assert result.bound == pytest.approx(1.25)


def test_milp__rejects_bad_arguments():
    instance = toy_instance()
    with pytest.raises(MilpSolverError, match="not in"):
        solve(instance, solver="GUROBI")
    with pytest.raises(MilpSolverError, match="time_limit_s"):
        solve(instance, time_limit_s=0.0)
    with pytest.raises(MilpSolverError, match=r"threads = 2: must be ≥ 1, and 1 for HiGHS"):
        solve(instance, solver="HIGHS", threads=2)
    with pytest.raises(MilpSolverError, match=r"threads = 0"):
        solve(instance, solver="SCIP", threads=0)
    with pytest.raises(MilpSolverError, match="warm_start"):
        solve(instance, warm_start=Plan(replicas=np.zeros(2), routing=np.zeros((2, 2)), unserved=np.zeros(2)))
    with pytest.raises(MilpSolverError, match="warm_start 'gh'"):
        solve(instance, warm_start="gh")


def test_milp__warm_starts_from_agh_by_default_and_reports_the_time_split():
    instance = tiny_random_instance(4)
    result = solve(instance)
    assert result.status == "optimal"
    assert "warm start AGH" in result.message
    assert set(result.time_split_s) == set(TIME_PHASES) and result.time_split_s["warm_start"] > 0.0
    assert "warm start none" in solve(instance, warm_start=None).message


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["HIGHS", "SCIP"])
def test_milp__short_time_limit_returns_a_plan_warm_and_a_bound_or_nothing_cold(solver):
    instance = make_instance("random", size=(15, 15, 15), seed=1)
    warm = solve(instance, solver=solver, time_limit_s=2.0)
    assert warm.feasible and warm.message.startswith("time limit:"), warm.message
    assert warm.runtime_s <= 2.2
    cold = solve(instance, solver=solver, time_limit_s=1.0, warm_start=None)
    assert cold.status in ("feasible", "no_solution"), cold.message
    if cold.status == "feasible":
        assert cold.bound is not None and 0.0 <= cold.gap < 1.0
    else:
        assert cold.plan is None


@pytest.mark.slow
def test_milp__paper_instance_proves_optimality_within_ten_seconds():
    result = solve(make_instance("paper"))
    assert result.status == "optimal", result.message
    assert result.runtime_s < 10.0
