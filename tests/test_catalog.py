"""The catalog loader: shipped files load; malformed files fail with messages naming file, row and field."""

import pandas as pd
import pytest
from catalog_files import edit

from servegym.envs.catalog import CatalogError, default_catalog, load_catalog


def test_catalog__shipped_catalog_has_the_required_breadth():
    catalog = default_catalog()
    assert len(catalog.gpus) >= 6 and len(catalog.models) >= 6
    params = [m.total_params_b for m in catalog.models.values()]
    assert min(params) <= 1.5 and max(params) >= 400
    assert catalog.quantisation["fp16"].error_factor == 1.0
    assert catalog.error_rate("Llama-3.1-8B", "code", "int4") > catalog.error_rate("Llama-3.1-8B", "code", "fp16")
    assert catalog.error_rate("Llama-3.1-70B", "general", "fp16") < catalog.error_rate(
        "Llama-3.1-8B", "general", "fp16"
    )


def test_catalog__loads_from_a_copied_directory(data_dir):
    assert load_catalog(data_dir).models.keys() == default_catalog().models.keys()


def test_catalog__missing_file(data_dir):
    (data_dir / "gpus.csv").unlink()
    with pytest.raises(CatalogError, match=r"gpus.csv: catalog file not found"):
        load_catalog(data_dir)


def test_catalog__missing_column_is_named(data_dir):
    frame = pd.read_csv(data_dir / "models.csv", dtype=str, keep_default_na=False).drop(columns=["kv_heads"])
    frame.to_csv(data_dir / "models.csv", index=False)
    with pytest.raises(CatalogError, match=r"models.csv: missing column\(s\) \['kv_heads'\]"):
        load_catalog(data_dir)


def test_catalog__non_numeric_value_names_row_and_field(data_dir):
    edit(data_dir / "gpus.csv", 2, "memory_gb", "lots")
    with pytest.raises(CatalogError, match=r"gpus.csv: row 3, field 'memory_gb': 'lots' is not a number"):
        load_catalog(data_dir)


def test_catalog__out_of_range_value_names_the_allowed_range(data_dir):
    edit(data_dir / "gpus.csv", 0, "price_per_gpu_hour", "-1")
    with pytest.raises(CatalogError, match=r"row 1, field 'price_per_gpu_hour': -1.0 outside allowed range"):
        load_catalog(data_dir)


def test_catalog__every_row_must_be_sourced(data_dir):
    edit(data_dir / "quality.csv", 4, "source", " ")
    with pytest.raises(CatalogError, match=r"quality.csv: row 5, field 'source': empty"):
        load_catalog(data_dir)


def test_catalog__unknown_precision_and_model_are_rejected(data_dir):
    edit(data_dir / "models.csv", 0, "precisions", "fp16;fp3")
    with pytest.raises(CatalogError, match=r"field 'precisions': \['fp3'\] not in allowed"):
        load_catalog(data_dir)


def test_catalog__quality_row_for_an_unknown_model_is_rejected(data_dir):
    edit(data_dir / "quality.csv", 0, "model", "GPT-7")
    with pytest.raises(CatalogError, match=r"quality.csv: row 1, field 'model': 'GPT-7' is not in models.csv"):
        load_catalog(data_dir)
