"""Checks on the sourced catalog CSV files in ``envs/data/``, read with pandas only (not the package loader)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA_DIR = Path(__file__).resolve().parents[1] / "envs" / "data"

HEADERS: dict[str, list[str]] = {
    "gpus.csv": [
        "name",
        "memory_gb",
        "memory_mib",
        "memory_bandwidth_gb_s",
        "bf16_dense_tflops",
        "fp8_dense_tflops",
        "int8_dense_tops",
        "int4_dense_tops",
        "gpus_per_node",
        "interconnect",
        "interconnect_gb_s",
        "price_per_gpu_hour",
        "price_provider",
        "price_date",
        "default_availability",
        "allreduce_latency_us",
        "allreduce_busbw_gb_s",
        "fp32_tflops",
        "matmul_bf16_tflops",
        "source",
        "price_source",
    ],
    "models.csv": [
        "name",
        "family",
        "hf_repo",
        "total_params_b",
        "active_params_b",
        "layers",
        "hidden_size",
        "attention_heads",
        "kv_heads",
        "head_dim",
        "max_context_tokens",
        "precisions",
        "vocab_size",
        "tie_word_embeddings",
        "experts",
        "experts_per_token",
        "source",
    ],
    "quality.csv": ["model", "task_family", "benchmark", "metric", "accuracy", "protocol", "source"],
    "quantization.csv": [
        "precision",
        "weight_bytes_per_param",
        "compute_precision",
        "accuracy_recovery",
        "error_factor",
        "kv_cache_bytes_per_element",
        "source",
    ],
}

REQUIRED_GPUS = ("RTX4090", "L4", "A6000", "L40S", "A100-40GB", "A100-80GB", "H100-SXM", "H200")
REQUIRED_MODELS = (
    "Llama-3.2-1B",
    "Llama-3.2-3B",
    "Llama-3.1-8B",
    "Llama-3.2-11B-Vision",
    "Qwen2.5-7B",
    "Qwen2.5-32B",
    "Llama-3.1-70B",
    "Qwen2.5-72B",
    "Mixtral-8x7B",
    "Llama-3.1-405B",
)
TASK_FAMILIES = ("general", "code", "math", "instruction", "multilingual", "reasoning")


def read(name: str) -> pd.DataFrame:
    """Read one catalog file the way the loader does (strings, empty cells kept as ``""``).

    Args:
        name: File name inside ``envs/data/``.

    Returns:
        The table with every cell as a string.
    """
    return pd.read_csv(DATA_DIR / name, dtype=str, keep_default_na=False, comment="#")


def numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """Parse a column as floats, failing the test on any non-numeric cell.

    Args:
        frame: A catalog table.
        column: Column to parse.

    Returns:
        The column as floats.
    """
    return pd.to_numeric(frame[column], errors="raise").astype(float)


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_catalog_data__file_has_exact_header(name: str) -> None:
    path = DATA_DIR / name
    assert path.is_file(), f"{path} missing"
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(HEADERS[name])
    assert list(read(name).columns) == HEADERS[name]


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_catalog_data__every_row_has_a_source(name: str) -> None:
    frame = read(name)
    assert len(frame) > 0
    empty = frame.index[frame["source"].str.strip() == ""].tolist()
    assert not empty, f"{name}: rows {empty} have an empty source"


def test_catalog_data__gpus_cover_required_types_with_sane_ranges() -> None:
    gpus = read("gpus.csv")
    assert set(REQUIRED_GPUS) <= set(gpus["name"])
    assert gpus["name"].is_unique
    assert numeric(gpus, "memory_gb").between(8, 200).all()
    # nvidia-smi memory.total (MiB) within -6.5 % (ECC on GDDR takes 1/16) and +8 % (GB vs GiB) of the datasheet GB
    ratio = numeric(gpus, "memory_mib") * 2**20 / (numeric(gpus, "memory_gb") * 1e9)
    assert ratio.between(0.935, 1.08).all(), ratio
    assert numeric(gpus, "memory_bandwidth_gb_s").between(200, 6000).all()
    assert numeric(gpus, "price_per_gpu_hour").between(0.1, 15).all()
    assert numeric(gpus, "bf16_dense_tflops").between(10, 5000).all()
    assert numeric(gpus, "gpus_per_node").isin([1, 2, 4, 8, 16]).all()
    assert numeric(gpus, "default_availability").ge(1).all()
    assert gpus["interconnect"].isin(["nvlink", "pcie"]).all()
    assert numeric(gpus, "interconnect_gb_s").between(1, 2000).all()
    assert (gpus["price_source"].str.strip() != "").all()
    assert gpus["price_date"].str.fullmatch(r"\d{4}-\d{2}(-\d{2})?").all()


def test_catalog_data__measured_matmul_rate_is_a_plausible_share_of_the_datasheet_peak() -> None:
    gpus = read("gpus.csv").set_index("name")
    share = numeric(gpus, "matmul_bf16_tflops") / numeric(gpus, "bf16_dense_tflops")
    # mamf-finder BF16 matmul: 0.70 (L40S) to 1.08 (RTX 4090, which sustains more than its quoted boost clock)
    assert share.between(0.6, 1.15).all(), share
    for name in gpus.index:
        assert "matmul_bf16_tflops" in gpus.loc[name, "source"], f"{name}: matmul_bf16_tflops not cited"


def test_catalog_data__eight_bit_throughput_missing_only_where_unsupported() -> None:
    gpus = read("gpus.csv").set_index("name")
    for name in ("A6000", "A100-40GB", "A100-80GB"):
        assert gpus.loc[name, "fp8_dense_tflops"] == "", f"{name}: Ampere has no FP8 tensor cores"
    for name in ("H100-SXM", "H200"):
        assert gpus.loc[name, "int4_dense_tops"] == "", f"{name}: Hopper has no INT4 tensor cores"
    assert ((gpus["fp8_dense_tflops"] != "") | (gpus["int8_dense_tops"] != "")).all()


def test_catalog_data__models_cover_required_set_with_consistent_shapes() -> None:
    models = read("models.csv")
    assert set(REQUIRED_MODELS) <= set(models["name"])
    assert models["name"].is_unique
    total = numeric(models, "total_params_b")
    active = numeric(models, "active_params_b")
    assert total.between(0.5, 500).all()
    assert active.between(0.5, 500).all()
    assert (active <= total).all()
    heads = numeric(models, "attention_heads").astype(int)
    kv_heads = numeric(models, "kv_heads").astype(int)
    assert (kv_heads > 0).all()
    assert (heads % kv_heads == 0).all()
    assert (numeric(models, "layers") > 0).all()
    assert (numeric(models, "head_dim") > 0).all()
    # the performance model prices attention with the query width H_q = heads × head_dim as the model width H
    assert (heads * numeric(models, "head_dim").astype(int) == numeric(models, "hidden_size").astype(int)).all()
    assert (numeric(models, "max_context_tokens") >= 4096).all()
    for cell in models["precisions"]:
        precisions = [p for p in cell.split(";") if p]
        assert precisions and set(precisions) <= {"fp16", "int8", "int4"}


def test_catalog_data__mixtral_is_sparse() -> None:
    models = read("models.csv").set_index("name")
    assert float(models.loc["Mixtral-8x7B", "active_params_b"]) < float(models.loc["Mixtral-8x7B", "total_params_b"])


def test_catalog_data__quality_accuracies_in_unit_interval_and_core_families_present() -> None:
    quality = read("quality.csv")
    accuracy = numeric(quality, "accuracy")
    assert accuracy.between(0, 1).all()
    assert quality["task_family"].isin(TASK_FAMILIES).all()
    assert not quality.duplicated(["model", "task_family"]).any()
    models = set(read("models.csv")["name"])
    assert set(quality["model"]) <= models
    families = quality.groupby("model")["task_family"].apply(set)
    for model in models:
        assert {"general", "code", "math"} <= families.get(model, set()), f"{model} lacks a core family"


def test_catalog_data__every_quality_row_states_its_protocol_against_the_reference() -> None:
    protocol = read("quality.csv")["protocol"]
    reference = protocol.str.startswith("reference")
    assert (reference | protocol.str.startswith("differs: ")).all()
    assert protocol[~reference].str.contains("adjusted|proxy").all()  # a differing row says how it was adjusted


def test_catalog_data__quantisation_factors_start_at_one_and_increase() -> None:
    quant = read("quantization.csv").set_index("precision")
    assert list(quant.index) == ["fp16", "int8", "int4"]
    factor = pd.to_numeric(quant["error_factor"]).astype(float)
    recovery = pd.to_numeric(quant["accuracy_recovery"]).astype(float)
    assert factor["fp16"] == 1.0
    assert factor["fp16"] <= factor["int8"] <= factor["int4"]
    assert recovery.between(0.5, 1.0).all()
    assert list(pd.to_numeric(quant["weight_bytes_per_param"]).astype(float)) == [2.0, 1.0, 0.52]
    assert list(quant["compute_precision"]) == ["bf16", "fp8_or_int8", "bf16"]
