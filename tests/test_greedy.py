"""GH (baselines/heuristics/greedy.py) and its mechanisms: hand-checked toy, feasibility on random instances,
ablation flags."""

import dataclasses

import numpy as np
import pytest

from servegym.baselines.heuristics.greedy import solve_gh
from servegym.baselines.heuristics.mechanisms import (
    Mechanisms,
    candidate_configurations,
    deployment_groups,
    upgrade_targets,
    usable_routes,
)
from servegym.envs.evaluation import evaluate_plan
from servegym.envs.scenarios import make_instance
from servegym.envs.toy import tiny_random_instance, toy_instance


@pytest.fixture(scope="module")
def paper():
    return make_instance("paper")


def test_gh__toy_is_feasible_and_not_below_the_hand_optimum():
    result = solve_gh(toy_instance())
    assert result.status == "feasible", result.message
    assert result.method == "gh"
    assert result.total_cost >= 5.0 - 1e-9


def test_gh__every_plan_claimed_feasible_passes_evaluate_plan():
    feasible = 0
    for seed in range(30):
        instance = tiny_random_instance(seed)
        result = solve_gh(instance)
        assert result.status in ("feasible", "infeasible")
        assert evaluate_plan(instance, result.plan).feasible == (result.status == "feasible"), result.message
        feasible += result.feasible
    assert feasible >= 10


def test_gh__over_budget_toy_is_infeasible_and_names_the_budget():
    result = solve_gh(toy_instance().with_changes(budget_per_hour=1.0))
    assert result.status == "infeasible"
    assert "blocked by budget" in result.message
    assert "unmet_cap" in result.message


def test_gh__is_deterministic(paper):
    first, second = solve_gh(paper), solve_gh(paper)
    np.testing.assert_array_equal(first.plan.replicas, second.plan.replicas)
    np.testing.assert_array_equal(first.plan.routing, second.plan.routing)


def test_gh__without_coverage_ranking_pays_more_on_paper(paper):
    full = solve_gh(paper)
    without = solve_gh(paper, mechanisms=Mechanisms(coverage_ranking=False))
    assert full.feasible
    assert not np.array_equal(full.plan.replicas, without.plan.replicas)
    assert without.total_cost > full.total_cost


def test_gh__without_tp_pp_selection_breaks_delay_slos_on_a_random_instance():
    instance = make_instance("random", size=(6, 6, 10), seed=2)
    assert solve_gh(instance).feasible
    without = solve_gh(instance, mechanisms=Mechanisms(tp_pp_selection=False))
    assert without.status == "infeasible"
    assert "delay_slo" in without.message


def test_gh__without_tp_upgrade_changes_the_plan_on_paper_at_twenty_times_the_demand(paper):
    # At nominal demand one replica serves the whole paper instance, so no upgrade is ever needed.
    busy = paper.with_demand(20 * paper.demand_per_hour).with_changes(budget_per_hour=20 * paper.budget_per_hour)
    full = solve_gh(busy)
    without = solve_gh(busy, mechanisms=Mechanisms(tp_upgrade=False))
    assert full.feasible and without.feasible
    assert not np.array_equal(full.plan.replicas, without.plan.replicas)


def test_mechanisms__m1_keeps_one_allowed_configuration_per_type_and_group(paper):
    groups = deployment_groups(paper)
    usable = usable_routes(paper, Mechanisms())
    for query_type, configs in enumerate(candidate_configurations(paper, Mechanisms(), usable, groups)):
        assert len(np.unique(groups[configs])) == len(configs)
        assert paper.route_allowed[query_type, configs].all()


def test_mechanisms__without_m1_candidates_are_the_smallest_configuration_of_each_group(paper):
    groups = deployment_groups(paper)
    off = Mechanisms(tp_pp_selection=False)
    candidates = candidate_configurations(paper, off, usable_routes(paper, off), groups)
    for config in candidates[0]:
        same_group = groups == groups[config]
        assert paper.gpus_per_replica[config] == paper.gpus_per_replica[same_group].min()


def test_mechanisms__upgrade_target_doubles_tensor_parallelism_only(paper):
    targets = upgrade_targets(paper)
    assert (targets >= 0).any()
    for source in np.flatnonzero(targets >= 0):
        a, b = paper.configurations[source], paper.configurations[targets[source]]
        assert dataclasses.replace(a, tensor_parallel=2 * a.tensor_parallel) == b


def test_mechanisms__label_names_the_switched_off_mechanisms():
    assert Mechanisms().label == "full"
    assert Mechanisms(tp_pp_selection=False, tp_upgrade=False).label == "no-M1-M3"
