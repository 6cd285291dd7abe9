"""A user's catalog directory: rows override or extend the shipped catalog by name, validated like the shipped files."""

import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from catalog_files import DATA, edit

import servegym.envs  # noqa: F401  (registers the environment ids)
from servegym.baselines.heuristics.greedy import solve_gh
from servegym.cli import main
from servegym.envs.catalog import CatalogError, default_catalog, load_catalog, load_catalog_overrides
from servegym.envs.instance import Instance, InstanceError
from servegym.envs.scenarios import AZURE_MODELS, azure_models, make_instance
from servegym.experiments import ConfigError, load_config, plan_cells, run_cell

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "examples" / "my-catalog"
"""The documented example directory: new prices for H100-SXM and L40S, and Qwen2.5-14B as an extra model."""


def shipped_rows(name: str, column: str, keys: list[str]) -> pd.DataFrame:
    """Rows of a shipped catalog file whose ``column`` is one of ``keys``, all cells as text."""
    frame = pd.read_csv(DATA / name, dtype=str, keep_default_na=False)
    return frame[frame[column].isin(keys)].reset_index(drop=True)


def overlay(directory: Path, name: str, frame: pd.DataFrame) -> Path:
    """Write one catalog file into an overlay directory; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / name, index=False)
    return directory


def h100_price_overlay(directory: Path, price: float) -> Path:
    """An overlay directory holding only the shipped H100-SXM row of gpus.csv, at ``price`` $/GPU-hour."""
    row = shipped_rows("gpus.csv", "name", ["H100-SXM"])
    row.loc[0, "price_per_gpu_hour"] = str(price)
    return overlay(directory, "gpus.csv", row)


def new_gpu_overlay(directory: Path, *, with_startup: bool) -> Path:
    """An overlay adding GPU type 'H100-NVL-test' (the H100-SXM row renamed), optionally with its start-up row."""
    gpu = shipped_rows("gpus.csv", "name", ["H100-SXM"])
    gpu.loc[0, "name"] = "H100-NVL-test"
    overlay(directory, "gpus.csv", gpu)
    if with_startup:
        startup = shipped_rows("startup.csv", "gpu", ["H100-SXM"])
        startup.loc[0, "gpu"] = "H100-NVL-test"
        overlay(directory, "startup.csv", startup)
    return directory


def gpus_of(instance: Instance, plan_replicas: np.ndarray, gpu: str) -> int:
    """GPUs of type ``gpu`` a plan rents."""
    on_gpu = np.array([c.gpu == gpu for c in instance.configurations])
    return int((plan_replicas * instance.gpus_per_replica)[on_gpu].sum())


def test_custom_catalog__a_row_overrides_the_shipped_row_with_the_same_name(tmp_path):
    catalog = load_catalog_overrides(h100_price_overlay(tmp_path, 5.0))
    shipped = default_catalog()
    assert catalog.gpus["H100-SXM"].price_per_gpu_hour == 5.0
    assert list(catalog.gpus) == list(shipped.gpus)
    assert {g: v for g, v in catalog.gpus.items() if g != "H100-SXM"} == {
        g: v for g, v in shipped.gpus.items() if g != "H100-SXM"
    }
    assert catalog.models == shipped.models and catalog.accuracy == shipped.accuracy
    assert catalog.startup == shipped.startup and catalog.quantisation == shipped.quantisation


def test_custom_catalog__new_rows_extend_the_catalog_and_a_new_gpu_joins_the_azure_tiers(tmp_path):
    catalog = load_catalog_overrides(new_gpu_overlay(tmp_path, with_startup=True))
    assert list(catalog.gpus)[-1] == "H100-NVL-test" and len(catalog.gpus) == len(default_catalog().gpus) + 1
    assert catalog.startup["H100-NVL-test"].provisioning_s == default_catalog().startup["H100-SXM"].provisioning_s
    instance = make_instance("azure", catalog=tmp_path)
    assert "H100-NVL-test" in {c.gpu for c in instance.configurations}
    assert instance.models == AZURE_MODELS


def test_custom_catalog__a_full_copy_of_the_shipped_files_gives_the_shipped_catalog(data_dir):
    assert load_catalog_overrides(data_dir) == default_catalog()
    assert load_catalog_overrides(data_dir) == load_catalog(data_dir)


def test_custom_catalog__a_partial_override_of_quality_and_quantisation_keeps_the_other_rows(tmp_path):
    quality = shipped_rows("quality.csv", "model", ["Llama-3.1-8B"])
    quality = quality[quality["task_family"] == "code"].reset_index(drop=True)
    quality.loc[0, "accuracy"] = "0.5"
    quantisation = shipped_rows("quantization.csv", "precision", ["int4"])
    quantisation.loc[0, "error_factor"] = "1.2"
    overlay(tmp_path, "quality.csv", quality)
    catalog = load_catalog_overrides(overlay(tmp_path, "quantization.csv", quantisation))
    shipped = default_catalog()
    assert catalog.accuracy[("Llama-3.1-8B", "code")] == 0.5
    assert catalog.accuracy[("Llama-3.1-8B", "math")] == shipped.accuracy[("Llama-3.1-8B", "math")]
    assert catalog.quantisation["int4"].error_factor == 1.2
    assert catalog.quantisation["int8"] == shipped.quantisation["int8"]


def test_custom_catalog__a_missing_column_names_file_and_column(tmp_path):
    overlay(tmp_path, "gpus.csv", shipped_rows("gpus.csv", "name", ["L40S"]).drop(columns=["memory_gb"]))
    with pytest.raises(CatalogError, match=rf"{tmp_path / 'gpus.csv'}: missing column\(s\) \['memory_gb'\]"):
        load_catalog_overrides(tmp_path)


def test_custom_catalog__an_empty_source_is_rejected_like_in_the_shipped_files(tmp_path):
    rows = shipped_rows("quality.csv", "model", ["Llama-3.1-8B"])
    rows.loc[1, "source"] = " "
    overlay(tmp_path, "quality.csv", rows)
    with pytest.raises(CatalogError, match=rf"{tmp_path / 'quality.csv'}: row 2, field 'source': empty"):
        load_catalog_overrides(tmp_path)


def test_custom_catalog__validation_messages_are_the_shipped_loaders(tmp_path, data_dir):
    edit(data_dir / "gpus.csv", 0, "price_per_gpu_hour", "-1")
    with pytest.raises(CatalogError) as shipped:
        load_catalog(data_dir)
    with pytest.raises(CatalogError) as custom:
        load_catalog_overrides(data_dir)
    assert str(custom.value) == str(shipped.value)
    assert "gpus.csv: row 1, field 'price_per_gpu_hour': -1.0 outside allowed range [0.05, 20.0]" in str(custom.value)


@pytest.mark.parametrize(
    ("file", "key_column", "key", "column", "value", "expected"),
    [
        ("gpus.csv", "name", "L40S", "memory_gb", "4000", r"row 1, field 'memory_gb': 4000.0 outside allowed range"),
        ("models.csv", "name", "Qwen2.5-7B", "kv_heads", "3", r"row 1, field 'kv_heads': 3 does not divide"),
        ("startup.csv", "gpu", "L4", "engine_start_s", "-5", r"row 1, field 'engine_start_s': -5.0 outside allowed"),
        ("quantization.csv", "precision", "int8", "error_factor", "0.5", r"row 1, field 'error_factor': 0.5 outside"),
    ],
)
def test_custom_catalog__out_of_range_values_name_file_row_and_field(
    tmp_path, file, key_column, key, column, value, expected
):
    rows = shipped_rows(file, key_column, [key])
    rows.loc[0, column] = value
    overlay(tmp_path, file, rows)
    with pytest.raises(CatalogError, match=rf"{tmp_path / file}: {expected}"):
        load_catalog_overrides(tmp_path)


def test_custom_catalog__an_unknown_file_name_lists_the_allowed_names(tmp_path):
    overlay(tmp_path, "gpu.csv", shipped_rows("gpus.csv", "name", ["L40S"]))
    (tmp_path / "README.md").write_text("notes are fine\n")
    with pytest.raises(CatalogError, match=r"unknown catalog file\(s\) \['gpu.csv'\]; allowed names: \['gpus.csv'"):
        load_catalog_overrides(tmp_path)


def test_custom_catalog__non_csv_files_are_ignored(tmp_path):
    h100_price_overlay(tmp_path, 4.0)
    (tmp_path / "README.md").write_text("my prices\n")
    assert load_catalog_overrides(tmp_path).gpus["H100-SXM"].price_per_gpu_hour == 4.0


def test_custom_catalog__a_quality_row_for_an_unknown_model_is_rejected(tmp_path):
    rows = shipped_rows("quality.csv", "model", ["Llama-3.1-8B"])
    rows.loc[0, "model"] = "GPT-7"
    overlay(tmp_path, "quality.csv", rows)
    with pytest.raises(CatalogError, match=rf"{tmp_path / 'quality.csv'}: row 1, field 'model': 'GPT-7' is not in"):
        load_catalog_overrides(tmp_path)


def test_custom_catalog__a_new_gpu_without_a_startup_row_names_the_gpu_and_the_file(tmp_path):
    new_gpu_overlay(tmp_path, with_startup=False)
    with pytest.raises(
        CatalogError, match=rf"{tmp_path / 'startup.csv'}: no row for GPU type\(s\) \['H100-NVL-test'\]"
    ):
        load_catalog_overrides(tmp_path)


def test_custom_catalog__a_new_model_without_the_required_quality_rows_is_rejected(tmp_path):
    model = shipped_rows("models.csv", "name", ["Qwen2.5-7B"])
    model.loc[0, "name"] = "Qwen2.5-7B-finetune"
    overlay(tmp_path, "models.csv", model)
    with pytest.raises(CatalogError, match=rf"{tmp_path / 'quality.csv'}: model 'Qwen2.5-7B-finetune' has no accuracy"):
        load_catalog_overrides(tmp_path)
    quality = shipped_rows("quality.csv", "model", ["Qwen2.5-7B"])
    quality = quality[quality["task_family"].isin(["general", "math"])].assign(model="Qwen2.5-7B-finetune")
    overlay(tmp_path, "quality.csv", quality)
    with pytest.raises(CatalogError, match=r"'Qwen2.5-7B-finetune' has no accuracy for required family 'code'"):
        load_catalog_overrides(tmp_path)


def test_custom_catalog__an_empty_or_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogError, match=rf"{tmp_path}: no catalog files; give one or more of \['gpus.csv'"):
        load_catalog_overrides(tmp_path)
    with pytest.raises(CatalogError, match=rf"{tmp_path / 'absent'}: catalog directory not found"):
        load_catalog_overrides(tmp_path / "absent")
    (tmp_path / "file.csv").write_text("x\n")
    with pytest.raises(CatalogError, match=r"file.csv: not a directory"):
        load_catalog_overrides(tmp_path / "file.csv")
    with pytest.raises(CatalogError, match=r"empty path"):
        make_instance("azure", catalog="")


def test_custom_catalog__make_instance_takes_a_path_a_string_or_a_catalog(tmp_path):
    h100_price_overlay(tmp_path, 5.0)
    from_path = make_instance("paper", catalog=tmp_path)
    from_string = make_instance("paper", catalog=str(tmp_path))
    from_catalog = make_instance("paper", catalog=load_catalog_overrides(tmp_path))
    shipped = make_instance("paper")
    for instance in (from_string, from_catalog):
        np.testing.assert_array_equal(instance.capacity_per_hour, from_path.capacity_per_hour)
    # The paper preset keeps its own tier prices; the catalog's hardware and model rows still apply.
    np.testing.assert_array_equal(from_path.gpu_price_per_hour, shipped.gpu_price_per_hour)
    random = make_instance("random", seed=3, size=(4, 4, 24), catalog=tmp_path)
    prices = dict(zip(random.gpus, random.gpu_price_per_hour, strict=True))
    assert 0.8 * 5.0 <= prices["H100-SXM"] <= 1.2 * 5.0


def test_custom_catalog__the_toy_scenario_takes_no_catalog(tmp_path):
    with pytest.raises(InstanceError, match=r"toy scenario has hand-set coefficients and takes no catalog"):
        make_instance("toy", catalog=h100_price_overlay(tmp_path, 5.0))
    assert make_instance("toy").name == make_instance("toy", catalog=None).name


def test_custom_catalog__a_doubled_h100_price_moves_the_gh_plan_off_h100(tmp_path):
    shipped_instance = make_instance("azure")
    price = default_catalog().gpus["H100-SXM"].price_per_gpu_hour
    doubled_instance = make_instance("azure", catalog=h100_price_overlay(tmp_path, 2.0 * price))
    prices = dict(zip(doubled_instance.gpus, doubled_instance.gpu_price_per_hour, strict=True))
    assert prices["H100-SXM"] == pytest.approx(2.0 * price)
    shipped_plan, doubled_plan = solve_gh(shipped_instance), solve_gh(doubled_instance)
    assert shipped_plan.feasible and doubled_plan.feasible
    shipped_h100 = gpus_of(shipped_instance, shipped_plan.plan.replicas, "H100-SXM")
    doubled_h100 = gpus_of(doubled_instance, doubled_plan.plan.replicas, "H100-SXM")
    assert shipped_h100 > 0
    assert doubled_h100 < shipped_h100


def test_custom_catalog__the_example_directory_changes_two_prices_and_adds_a_model_to_azure_plans():
    catalog = load_catalog_overrides(EXAMPLE)
    shipped = default_catalog()
    changed = [g for g in shipped.gpus if catalog.gpus[g] != shipped.gpus[g]]
    assert changed == ["L40S", "H100-SXM"]
    assert catalog.gpus["H100-SXM"].price_per_gpu_hour == 2.10
    assert catalog.gpus["L40S"].price_per_gpu_hour == 0.79
    assert all(catalog.gpus[g].memory_gb == shipped.gpus[g].memory_gb for g in changed)
    assert set(catalog.models) - set(shipped.models) == {"Qwen2.5-14B"}
    assert azure_models(catalog) == (*AZURE_MODELS, "Qwen2.5-14B")
    instance = make_instance("azure", catalog=EXAMPLE)
    assert "Qwen2.5-14B" in instance.models
    result = solve_gh(instance)
    assert result.feasible
    used = {instance.configurations[c].model for c in np.flatnonzero(result.plan.replicas)}
    assert "Qwen2.5-14B" in used


def test_custom_catalog__cli_describe_reads_the_directory_and_a_bad_one_exits_2(tmp_path, capsys):
    assert main(["describe", "--catalog", str(EXAMPLE), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "extra models Qwen2.5-14B" in out and "7 models" in out
    bad = h100_price_overlay(tmp_path, 100.0)
    assert main(["solve", "--method", "gh", "--catalog", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{bad / 'gpus.csv'}: row 1, field 'price_per_gpu_hour': 100.0 outside allowed range" in err


def test_custom_catalog__gym_make_takes_a_catalog_directory():
    env = gym.make("servegym/Provisioning-v3", catalog=str(EXAMPLE), horizon_hours=1.0)
    instance = env.unwrapped.instance
    prices = dict(zip(instance.gpus, instance.gpu_price_per_hour, strict=True))
    assert prices["H100-SXM"] == 2.10 and prices["L40S"] == 0.79
    assert "Qwen2.5-14B" in instance.models
    env.reset(seed=0)
    env.close()


def write_config(directory: Path, body: str) -> Path:
    path = directory / "config.toml"
    path.write_text(body)
    return path


def test_custom_catalog__toml_catalog_key_is_relative_to_the_file_and_reaches_the_env(tmp_path):
    h100_price_overlay(tmp_path / "prices", 5.0)
    path = write_config(
        tmp_path,
        """
[scenarios.mine]
catalog = "prices"
horizon_hours = 1.0
demand = "azure:2024-05-16-thu"

[scenarios.mine-subset]
catalog = "prices"
gpus = ["H100-SXM", "H200"]
horizon_hours = 1.0

[sweep]
policies = ["gh-static"]
scenarios = ["mine"]
""",
    )
    config = load_config(path)
    mine = config.scenarios["mine"]
    assert mine.catalog == str((tmp_path / "prices").resolve())
    assert mine.env_kwargs()["catalog"] == mine.catalog
    env = mine.make_env()
    prices = dict(zip(env.unwrapped.instance.gpus, env.unwrapped.instance.gpu_price_per_hour, strict=True))
    assert prices["H100-SXM"] == 5.0
    subset = config.scenarios["mine-subset"].make_env().unwrapped.instance
    assert {c.gpu for c in subset.configurations} <= {"H100-SXM", "H200"}
    assert dict(zip(subset.gpus, subset.gpu_price_per_hour, strict=True))["H100-SXM"] == 5.0
    (cell,) = plan_cells(config)
    (record,) = run_cell(cell, tmp_path)
    assert record["scenario"] == "mine"


def test_custom_catalog__toml_catalog_edits_change_the_cell_keys(tmp_path):
    h100_price_overlay(tmp_path / "prices", 5.0)
    body = '[scenarios.mine]\ncatalog = "prices"\nhorizon_hours = 1.0\n[sweep]\npolicies = ["gh-static"]\n'
    path = write_config(tmp_path, body + 'scenarios = ["mine"]\n')
    (before,) = plan_cells(load_config(path))
    h100_price_overlay(tmp_path / "prices", 6.0)
    (after,) = plan_cells(load_config(path))
    assert before.key != after.key


def test_custom_catalog__toml_extra_model_may_be_selected(tmp_path):
    example = EXAMPLE.resolve()
    path = write_config(tmp_path, f'[scenarios.mine]\ncatalog = "{example}"\nmodels = ["Qwen2.5-14B", "Qwen2.5-32B"]\n')
    config = load_config(path).scenarios["mine"]
    instance = config.make_env().unwrapped.instance
    assert {c.model for c in instance.configurations} <= {"Qwen2.5-14B", "Qwen2.5-32B"}


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ('catalog = "absent"', r"FILE: \[scenarios.mine\] catalog = 'absent': no such directory .*absent"),
        ('catalog = "bad"', r"FILE: \[scenarios.mine\] catalog = 'bad': .*bad/gpus.csv: row 1, field 'price_per_gpu"),
        ("catalog = 3", r"FILE: \[scenarios.mine\] catalog = 3 must be a non-empty string"),
        ('catalog = "prices"\nscenario = "toy"', r"FILE: \[scenarios.mine\] catalog does not apply to scenario 'toy'"),
        ('catalog = "prices"\nmodels = ["GPT-7"]', r"FILE: \[scenarios.mine\] models: 'GPT-7' not allowed"),
    ],
)
def test_custom_catalog__toml_catalog_errors_name_the_file_and_key(tmp_path, lines, expected):
    h100_price_overlay(tmp_path / "prices", 5.0)
    h100_price_overlay(tmp_path / "bad", 100.0)
    path = write_config(tmp_path, f"[scenarios.mine]\n{lines}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert re.search(expected, str(error.value).replace(str(path), "FILE"))
