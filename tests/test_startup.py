"""Start-up time S_c (MODEL.md §6): the catalog's startup.csv, the formula, and S_c on the instance."""

import shutil

import numpy as np
import pandas as pd
import pytest
from catalog_files import DATA, edit

from servegym.envs.catalog import CatalogError, StartupConstants, default_catalog, load_catalog
from servegym.envs.export import instance_from_dict, instance_to_dict
from servegym.envs.instance import InstanceError
from servegym.envs.scenarios import make_instance
from servegym.envs.startup import startup_time_s
from servegym.envs.toy import tiny_random_instance, toy_instance


@pytest.fixture(scope="module", params=["azure", "paper"])
def instance(request):
    return make_instance(request.param)


def test_startup_catalog__shipped_file_has_every_gpu_type():
    catalog = default_catalog()
    assert set(catalog.startup) == set(catalog.gpus)
    for gpu, constants in catalog.startup.items():
        assert constants.gpu == gpu and constants.source.strip()
        assert constants.provisioning_s > 0 and constants.engine_start_s > 0 and constants.load_bandwidth_gb_s > 0


def test_startup_catalog__copied_directory_loads_the_same_constants(data_dir):
    assert load_catalog(data_dir).startup == default_catalog().startup


def test_startup_catalog__missing_row_is_named(data_dir):
    frame = pd.read_csv(data_dir / "startup.csv", dtype=str, keep_default_na=False)
    frame[frame["gpu"] != "L4"].to_csv(data_dir / "startup.csv", index=False)
    with pytest.raises(CatalogError, match=r"startup.csv: no row for GPU type\(s\) \['L4'\] of gpus.csv"):
        load_catalog(data_dir)


def test_startup_catalog__bad_number_names_file_row_and_field(data_dir):
    edit(data_dir / "startup.csv", 2, "engine_start_s", "slow")
    with pytest.raises(CatalogError, match=r"startup.csv: row 3, field 'engine_start_s': 'slow' is not a number"):
        load_catalog(data_dir)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("provisioning_s", "3601"),
        ("engine_start_s", "-1"),
        ("load_bandwidth_gb_s", "0.01"),
        ("load_bandwidth_gb_s", "101"),
    ],
)
def test_startup_catalog__out_of_range_number_names_the_range(data_dir, column, value):
    edit(data_dir / "startup.csv", 0, column, value)
    with pytest.raises(CatalogError, match=rf"startup.csv: row 1, field '{column}': .* outside allowed range"):
        load_catalog(data_dir)


def test_startup_catalog__empty_source_names_file_row_and_field(data_dir):
    edit(data_dir / "startup.csv", 4, "source", " ")
    with pytest.raises(CatalogError, match=r"startup.csv: row 5, field 'source': empty"):
        load_catalog(data_dir)


def test_startup_catalog__unknown_and_duplicate_gpu_are_rejected(data_dir):
    edit(data_dir / "startup.csv", 1, "gpu", "B300")
    with pytest.raises(CatalogError, match=r"startup.csv: row 2, field 'gpu': 'B300' is not in gpus.csv"):
        load_catalog(data_dir)
    shutil.copy(DATA / "startup.csv", data_dir / "startup.csv")
    edit(data_dir / "startup.csv", 1, "gpu", "RTX4090")
    with pytest.raises(CatalogError, match=r"startup.csv: row 2, field 'gpu': empty or duplicate 'RTX4090'"):
        load_catalog(data_dir)


def test_startup_catalog__directory_without_the_file_has_no_constants(data_dir):
    (data_dir / "startup.csv").unlink()
    assert load_catalog(data_dir).startup == {}


def test_startup_time__hand_computed_case():
    constants = StartupConstants("g", provisioning_s=100.0, engine_start_s=30.0, load_bandwidth_gb_s=2.5, source="x")
    # 140 GB over 4 GPUs at 2.5 GB/s each: 140 / 10 = 14 s of loading.
    assert startup_time_s(constants, 140.0, 4) == pytest.approx(100.0 + 30.0 + 14.0)
    assert startup_time_s(constants, 0.0, 1) == pytest.approx(130.0)
    with pytest.raises(ValueError, match="gpus_per_replica 0 must be ≥ 1"):
        startup_time_s(constants, 1.0, 0)
    with pytest.raises(ValueError, match=r"weight_gb -1\.0 must be finite and ≥ 0 GB"):
        startup_time_s(constants, -1.0, 1)


def test_startup_instance__every_configuration_has_a_finite_positive_start_up(instance):
    assert instance.startup_s.shape == (instance.num_configurations,)
    assert np.all(np.isfinite(instance.startup_s)) and np.all(instance.startup_s > 0)
    assert not instance.startup_s.flags.writeable


def test_startup_instance__matches_the_formula_at_the_configuration_precision(instance):
    catalog = default_catalog()
    bytes_per_param = catalog.bytes_per_param
    for c, config in enumerate(instance.configurations):
        fp16_gb = catalog.models[config.model].total_params_b * 2.0  # B_j, the FP16 checkpoint
        weight_gb = fp16_gb * bytes_per_param[config.precision] / bytes_per_param["fp16"]
        expected = startup_time_s(catalog.startup[config.gpu], weight_gb, int(instance.gpus_per_replica[c]))
        assert instance.startup_s[c] == pytest.approx(expected)


def test_startup_instance__larger_model_on_the_same_gpu_tp_pp_loads_no_faster(instance):
    params = np.array([default_catalog().models[m].total_params_b for m in instance.models])
    by_setting: dict[tuple, list[int]] = {}
    for c, config in enumerate(instance.configurations):
        key = (config.gpu, config.precision, config.tensor_parallel, config.pipeline_parallel)
        by_setting.setdefault(key, []).append(c)
    compared = 0
    for members in by_setting.values():
        for a in members:
            for b in members:
                if params[instance.config_model[a]] < params[instance.config_model[b]]:
                    assert instance.startup_s[a] <= instance.startup_s[b]
                    compared += 1
    assert compared > 0


def test_startup_instance__restrict_keeps_each_configurations_start_up(instance):
    keep = [instance.num_configurations - 1, 0, instance.num_configurations // 2]
    restricted = instance.restrict(keep)
    np.testing.assert_array_equal(restricted.startup_s, instance.startup_s[keep])
    assert restricted.with_demand(restricted.demand_per_hour * 2.0).startup_s is restricted.startup_s


def test_startup_instance__export_round_trip_keeps_it(instance):
    payload = instance_to_dict(instance)
    np.testing.assert_array_equal(instance_from_dict(payload).startup_s, instance.startup_s)
    del payload["startup_s"]
    np.testing.assert_array_equal(instance_from_dict(payload).startup_s, np.zeros(instance.num_configurations))


def test_startup_instance__defaults_to_zero_and_is_validated():
    toy = toy_instance()
    np.testing.assert_array_equal(toy.startup_s, np.zeros(3))
    np.testing.assert_array_equal(tiny_random_instance(0).startup_s, np.zeros(4))
    assert np.all(toy.with_changes(startup_s=None).startup_s == 0.0)
    with pytest.raises(InstanceError, match=r"Instance.startup_s has shape \(2,\), expected \(3,\)"):
        toy.with_changes(startup_s=np.zeros(2))
    with pytest.raises(InstanceError, match=r"Instance\.startup_s must be finite and ≥ 0 seconds"):
        toy.with_changes(startup_s=np.array([0.0, -1.0, 0.0]))
    with pytest.raises(InstanceError, match=r"Instance\.startup_s must be finite and ≥ 0 seconds"):
        toy.with_changes(startup_s=np.array([0.0, np.inf, 0.0]))
