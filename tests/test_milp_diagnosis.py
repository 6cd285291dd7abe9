"""The MILP's infeasibility diagnosis names every binding family, availability included; its errors are user
errors of the ServegymError family."""

from __future__ import annotations

import numpy as np
import pytest

from servegym.baselines.milp import MilpSolverError, availability_lifted, solve
from servegym.baselines.milp_model import MilpModelError, build_model
from servegym.envs.export import instance_from_dict, instance_to_dict
from servegym.envs.toy import toy_instance
from servegym.errors import ServegymError


def _without_gpus():
    """The toy instance with no GPU of any type available (its configurations kept)."""
    payload = instance_to_dict(toy_instance())
    payload["gpu_availability"] = [0] * len(payload["gpu_availability"])
    payload.pop("derived", None)  # recomputed: max_replicas become 0
    return instance_from_dict(payload)


def test_diagnosis__zero_availability_names_availability_and_the_unmet_cap():
    instance = _without_gpus()
    assert not instance.max_replicas.any()
    result = solve(instance)
    assert result.status == "infeasible"
    assert "binding: unmet_cap, availability (relaxing any one of these alone restores feasibility)" in result.message


def test_availability_lifted__leaves_each_configuration_enough_replicas_to_serve_all_its_types_alone():
    instance = _without_gpus()
    lifted = availability_lifted(instance)
    mu = np.where(instance.route_allowed, instance.capacity_per_hour, np.inf)
    replicas_needed = (instance.demand_per_hour[:, None] / (instance.design_utilisation * mu)).sum(axis=0)
    assert np.all(lifted.max_replicas >= replicas_needed) and replicas_needed.max() > 0
    assert np.all(lifted.gpu_availability >= instance.gpu_availability)


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda: solve(toy_instance(), solver="GUROBI"), MilpSolverError, "solver 'GUROBI'"),
        (lambda: solve(toy_instance(), time_limit_s=0), MilpSolverError, "time"),
        (lambda: build_model(toy_instance(), "SCIP", relax=("weather",)), MilpModelError, "['weather']"),
    ],
)
def test_errors__milp_argument_errors_are_servegym_and_value_errors(call, error, fragment):
    with pytest.raises(error) as raised:
        call()
    assert isinstance(raised.value, ServegymError) and isinstance(raised.value, ValueError)
    assert fragment in str(raised.value)
