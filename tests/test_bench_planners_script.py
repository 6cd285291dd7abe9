"""scripts/bench_planners.py --reuse-milp: MILP results are reused only for the same instance."""

import argparse

import pytest
from script_modules import load_script

from servegym.envs.scenarios import make_instance


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_planners")


def _args() -> argparse.Namespace:
    return argparse.Namespace(gh_repeats=1, agh_repeats=1, milp_time_limit=60.0)


def test_bench_instance__reuses_the_milp_of_the_same_instance_and_recomputes_the_gaps(bench):
    instance = make_instance("random", size=(6, 6, 10), seed=3)
    solved = bench.bench_instance("random 6x6x10 s3", "6x6x10", instance, _args())
    assert not solved["milp_reused"] and solved["milp_optimal"]
    earlier = dict(solved, agh_cost=1e9, agh_gap=0.5)
    reused = bench.bench_instance("random 6x6x10 s3", "6x6x10", instance, _args(), earlier)
    assert reused["milp_reused"]
    assert reused["milp_cost"] == solved["milp_cost"] and reused["milp_solve_s"] == solved["milp_solve_s"]
    assert reused["agh_gap"] == pytest.approx(solved["agh_gap"], abs=1e-12)
    assert reused["cost_order_holds"]


def test_same_instance__digest_or_legacy_counts_and_gh_cost(bench):
    instance = make_instance("random", size=(6, 6, 10), seed=3)
    other = make_instance("random", size=(6, 6, 10), seed=0)
    record = {"instance_digest": instance.digest(), "configurations": 1, "routes": 2, "gh_cost": 3.0}
    assert bench.same_instance(record, dict(record))
    assert not bench.same_instance(record, dict(record, instance_digest=other.digest()))
    legacy = {"configurations": 1, "routes": 2, "gh_cost": 3.0}
    assert bench.same_instance(record, legacy)
    assert not bench.same_instance(record, dict(legacy, gh_cost=3.1))
    assert not bench.same_instance(record, dict(legacy, routes=5))
