"""Named scenarios build sensible, genuinely constrained instances; export round-trips every coefficient."""

import numpy as np
import pytest

from servegym.envs.catalog import default_catalog
from servegym.envs.export import instance_from_dict, instance_to_dict
from servegym.envs.instance import InstanceError
from servegym.envs.performance import replica_for
from servegym.envs.scenarios import SCENARIOS, azure_instance, make_instance


@pytest.fixture(scope="module", params=["paper", "azure", "random"])
def instance(request):
    return make_instance(request.param)


def test_scenarios__every_named_scenario_builds():
    assert set(SCENARIOS) == {"azure", "paper", "random", "toy"}
    for name in SCENARIOS:
        assert make_instance(name).num_configurations > 0


def test_scenarios__arrays_are_read_only(instance):
    with pytest.raises(ValueError, match="read-only"):
        instance.capacity_per_hour[0, 0] = 1.0


def test_scenarios__only_configurations_that_fit_memory_are_present(instance):
    catalog = default_catalog()
    for config in instance.configurations:
        replica = replica_for(
            catalog, config.model, config.gpu, config.precision, config.tensor_parallel, config.pipeline_parallel
        )
        assert replica.fits, config.name


def test_scenarios__slos_are_genuinely_constraining(instance):
    meets_both = instance.route_allowed & (instance.error_rate <= instance.error_slo[:, None])
    assert meets_both.any(axis=1).all(), "every query type has a configuration meeting Δ and ε on its own"
    assert not meets_both.all(axis=1).any(), "no query type is met by every configuration"
    assert (~instance.route_allowed).any(), "some configurations miss some delay SLO"


def test_scenarios__budget_is_finite_and_above_the_fluid_rental(instance):
    from servegym.envs.scenarios import fluid_rental_per_hour

    assert np.isfinite(instance.budget_per_hour)
    assert instance.budget_per_hour > fluid_rental_per_hour(instance)


def test_scenarios__random_is_reproducible_and_seed_dependent():
    a = make_instance("random", seed=3, size=(4, 5, 6))
    b = make_instance("random", seed=3, size=(4, 5, 6))
    c = make_instance("random", seed=4, size=(4, 5, 6))
    assert a.configurations == b.configurations
    np.testing.assert_array_equal(a.capacity_per_hour, b.capacity_per_hour)
    assert a.configurations != c.configurations or not np.array_equal(a.demand_per_hour, c.demand_per_hour)


def test_scenarios__random_sizes_beyond_the_catalog_use_variants():
    instance = make_instance("random", seed=0, size=(3, 14, 5))
    assert len(instance.models) == 14
    assert any("~v" in m for m in instance.models)


def test_scenarios__bad_arguments_give_clear_errors():
    with pytest.raises(InstanceError, match="unknown scenario 'nope'"):
        make_instance("nope")
    with pytest.raises(InstanceError, match=r"random size J = 41 outside allowed range \[1, 40\]"):
        make_instance("random", size=(3, 41, 3))
    with pytest.raises(InstanceError, match="--size applies to the random scenario only"):
        make_instance("paper", size=(1, 1, 1))
    with pytest.raises(InstanceError, match=r"demand_scale=-1\.0 must be finite and >= 0"):
        azure_instance(demand_scale=-1.0)


def test_export__round_trip_keeps_every_coefficient(instance):
    rebuilt = instance_from_dict(instance_to_dict(instance))
    assert rebuilt.configurations == instance.configurations
    assert rebuilt.query_types == instance.query_types
    for name in ("capacity_per_hour", "delay_s", "error_rate", "demand_per_hour", "gpu_availability"):
        np.testing.assert_array_equal(getattr(rebuilt, name), getattr(instance, name))
    np.testing.assert_array_equal(rebuilt.route_allowed, instance.route_allowed)
    assert rebuilt.budget_per_hour == instance.budget_per_hour
