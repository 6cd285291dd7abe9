"""Scale: random instances beyond the catalog, dominance, AGH quality and determinism, the MILP's time limit."""

import json
import time

import numpy as np
import pytest

from servegym.baselines.heuristics.adaptive import solve_agh
from servegym.baselines.heuristics.greedy import solve_gh
from servegym.baselines.milp.dominance import dominators, to_undominated
from servegym.baselines.milp.solver import TIME_PHASES, solve
from servegym.cli import main
from servegym.envs.evaluation import evaluate_plan
from servegym.envs.instance import Instance, InstanceError
from servegym.envs.scenarios import GPU_OFFERS, MAX_RANDOM_SIZE, random_instance

COST_TOLERANCE = 1e-6
"""Relative tolerance of the cost order MILP ≤ AGH ≤ GH."""
TIME_MARGIN = 1.1
"""A limited MILP call returns within 1.1 × its limit (issue 17)."""

# Digests of random instances up to (20, 20, 24), which must stay bit-identical to the code before the generated
# GPU offers existed (commit d2468d5), since other results depend on them. Recomputed for performance model v2
# (issue 11), which moves every coefficient, and again for its sourced GPU memory (memory_mib) and the iteration
# wait in the delay, and again for its FLOP count (causal attention, LM head per computed logit), and again for the
# measured achievable matmul rate per GPU (gpus.csv matmul_bf16_tflops) and its refit; the builder itself is
# unchanged. The first 16 hex digits of ``Instance.digest`` (the scale benchmark's digest), taken on 2026-12-06 from
# the instances the test's earlier digest function had pinned.
UNCHANGED_DIGESTS = {
    ((3, 3, 4), 0): "9b0672f9abfbc7ba",
    ((6, 6, 10), 1): "80e9f12b59c1a57e",
    ((15, 15, 15), 0): "e80354557aa205fa",
    ((20, 20, 24), 3): "5d2ada8338397d58",
    ((7, 13, 24), 5): "bd8eca39d23f037a",
}


def instance_digest(instance: Instance) -> str:
    return instance.digest()[:16]


@pytest.mark.parametrize(("size", "seed"), list(UNCHANGED_DIGESTS))
def test_random_instance__unchanged_up_to_the_catalog_tiers(size, seed):
    assert instance_digest(random_instance(size, seed)) == UNCHANGED_DIGESTS[(size, seed)]


def test_random_instance__beyond_24_tiers_adds_seeded_generated_gpu_offers():
    instance = random_instance((4, 4, 30), seed=2)
    generated = [g for g in instance.gpus if "~" in g]
    assert generated and all(g.split("~")[1] in {o.name for o in GPU_OFFERS} for g in generated)
    assert len({c.tier for c in instance.configurations}) <= 30
    assert "GPU offers spot, cloud-b generated" in instance.description
    assert instance_digest(random_instance((4, 4, 30), seed=2)) == instance_digest(instance)
    assert instance_digest(random_instance((4, 4, 30), seed=3)) != instance_digest(instance)
    price = dict(zip(instance.gpus, instance.gpu_price_per_hour.tolist(), strict=True))
    assert all(price[g] > 0.0 for g in generated)
    with pytest.raises(InstanceError, match="random size K = 41 outside allowed range"):
        random_instance((4, 4, MAX_RANDOM_SIZE[2] + 1))


def test_dominance__every_dominated_configuration_maps_to_an_undominated_sibling_no_worse():
    instance = random_instance((10, 10, 10), seed=1)
    dominator = dominators(instance)
    undominated = dominator == np.arange(instance.num_configurations)
    assert undominated[dominator].all() and not undominated.all()
    for c in np.flatnonzero(~undominated):
        b = dominator[c]
        assert instance.config_model[b] == instance.config_model[c] and instance.config_gpu[b] == instance.config_gpu[c]
        assert instance.replica_price_per_hour[b] <= instance.replica_price_per_hour[c]
        serves = instance.route_allowed[:, c]
        assert instance.route_allowed[serves, b].all()
        assert (instance.capacity_per_hour[serves, b] >= instance.capacity_per_hour[serves, c]).all()
    plan = solve_agh(instance).plan
    mapped = to_undominated(instance, plan, dominator)
    assert evaluate_plan(instance, mapped).feasible
    assert evaluate_plan(instance, mapped).cost.total <= evaluate_plan(instance, plan).cost.total * (1 + 1e-12)


@pytest.mark.parametrize(
    ("size", "seed"),
    [((6, 6, 10), 3), ((10, 10, 10), 1), pytest.param((15, 15, 15), 4, marks=pytest.mark.slow)],
)
def test_planners__plans_pass_evaluate_plan_and_cost_order_holds_where_the_milp_is_optimal(size, seed):
    instance = random_instance(size, seed)
    gh, agh, milp = solve_gh(instance), solve_agh(instance), solve(instance)
    for result in (gh, agh, milp):
        assert evaluate_plan(instance, result.plan).feasible == result.feasible, result.message
    assert milp.status == "optimal", milp.message
    tolerance = COST_TOLERANCE * milp.total_cost
    assert milp.total_cost <= agh.total_cost + tolerance
    assert agh.total_cost <= gh.total_cost + tolerance


def test_agh__same_seed_gives_the_same_plan_and_another_seed_may_not():
    instance = random_instance((10, 10, 10), seed=3)
    first, second = solve_agh(instance, seed=5), solve_agh(instance, seed=5)
    np.testing.assert_array_equal(first.plan.replicas, second.plan.replicas)
    np.testing.assert_array_equal(first.plan.routing, second.plan.routing)
    assert first.message == second.message


def test_largest_size__builds_gh_and_agh_answer_and_a_milp_limit_shorter_than_presolve_is_kept():
    assert MAX_RANDOM_SIZE >= (40, 40, 40)
    largest = random_instance((40, 40, 40), seed=0)
    assert largest.num_query_types == 40 and len(largest.models) == 40
    assert len({(c.gpu, c.precision) for c in largest.configurations}) <= 40
    for planner in (solve_gh, solve_agh):
        result = planner(largest)
        assert evaluate_plan(largest, result.plan).feasible == (result.status == "feasible"), result.message
    limit_s = 4.0  # HiGHS presolve alone takes about 5 s on this instance (docs/milp.md, "Time limit")
    start = time.perf_counter()
    result = solve(largest, time_limit_s=limit_s)
    elapsed = time.perf_counter() - start
    assert elapsed <= TIME_MARGIN * limit_s, result.time_split_s
    assert result.status == "feasible" and result.plan_source == "warm_start", result.message
    assert result.message.startswith("time limit: warm-start plan"), result.message
    assert evaluate_plan(largest, result.plan).feasible
    assert set(result.time_split_s) == set(TIME_PHASES)
    assert sum(result.time_split_s.values()) == pytest.approx(result.runtime_s, rel=0.05, abs=0.05)
    assert result.bound is None or result.bound <= result.total_cost


def test_milp__time_split_and_source_reach_the_json_of_servegym_solve(capsys):
    args = ["solve", "--scenario", "random", "--size", "6,6,10", "--method", "milp", "--time-limit", "30", "--json"]
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["status"] == "optimal"
    assert set(payload["time_split_s"]) == set(TIME_PHASES)
    assert payload["plan_source"] in ("solver", "warm_start")
    assert "warm start AGH" in payload["message"]


@pytest.mark.slow
def test_cli__describe_and_solve_the_largest_random_size(capsys):
    assert main(["describe", "--scenario", "random", "--size", "40,40,40"]) == 0
    assert "random-40x40x40-s0" in capsys.readouterr().out
    start = time.perf_counter()
    assert main(["solve", "--scenario", "random", "--size", "40,40,40", "--method", "milp", "--time-limit", "20"]) == 0
    assert time.perf_counter() - start <= 40.0  # instance build (~3 s) and the 20 s limit, + margin
    assert "time (plan from" in capsys.readouterr().out
