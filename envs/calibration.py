"""The performance model against published measurements (envs/data/measurements.csv, docs/measurements.md).

:func:`compare_measurements` predicts every measurement whose batch size and token lengths are stated, so
``scripts/calibrate_performance.py`` can fit the physical constants on the ``fit`` split, report both splits per
regime (docs/model.md) and a test can pin each prediction within its regime's tolerance.

Each row is predicted with the settings its engine ran: the KV-cache precision it states (the tier's default
when ``unknown``), the effective bits per weight of its checkpoint format (``weight_bits``, GGUF files) and the
engine's batch cap (:data:`ENGINE_BATCH_CAP`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from servegym.envs.catalog import Catalog, CatalogError, default_catalog, read_table
from servegym.envs.performance import PerformanceConstants, Replica

MODEL_ALIASES = {"Llama-2-70B": "Llama-3.1-70B"}
"""Llama-2-70B has Llama-3.1-70B's layer shape (80 layers, width 8192, 8 KV heads, 69 vs 70.6 B parameters)."""

ENGINE_BATCH_CAP = {"vLLM": 256, "SGLang": 256, "TensorRT-LLM": 1024, "NIM": 1024, "llama.cpp": 1}
"""Sequences per forward pass each engine admits in the measured runs: vLLM ``max_num_seqs`` default 256 (vLLM
engine arguments); SGLang capped at 256 as vLLM (its ``max_running_requests`` is derived from memory, and no
SGLang row here is offline); TensorRT-LLM 1024: the largest batch its own peak-throughput tables ran
(perf-overview v0.9.0: batch 1024 for Llama-70B 128/128 on H100 TP2 and A100 TP4) — later releases pick it by
heuristic (trtllm-bench), NIM runs TensorRT-LLM; llama.cpp: every llama.cpp row is batch 1 (llama-bench) or
states its ``--parallel`` slots in ``batch_size``."""

ENGINE_MEMORY_RESERVE = {"SGLang": 0.15}
"""Share of GPU memory each vLLM-style engine keeps from weights and KV cache where it differs from vLLM's 0.10
(``gpu_memory_utilization`` 0.9): the SGLang rows ran ``--mem-frac 0.85`` (inference-bench README)."""

ENGINE_KV_FREE_FRACTION = {"TensorRT-LLM": 0.95, "NIM": 0.90}
"""Engines that give the KV cache a fraction of the memory the weights leave (TensorRT-LLM
``kv_cache_free_gpu_mem_fraction``, "the maximum fraction of GPU memory (after loading the model) that may be used
for KV cache"): trtllm-bench rows 0.95 (perf-overview v0.17: "In majority of cases, we also use a higher KV cache
percentage by setting ``--kv_cache_free_gpu_mem_fraction 0.95``"); NIM, which runs TensorRT-LLM and states no
setting, the engine default 0.90 (TensorRT-LLM docs/source/examples/kvcacheconfig.md). Rows behind the Triton
backend take the backend's default, also 0.90 (triton-inference-server/tensorrtllm_backend model configuration:
``kv_cache_free_gpu_mem_fraction`` "(default=0.9)"), see :func:`row_replica`."""
_TRITON_KV_FREE_FRACTION = 0.90

SPLITS = ("fit", "validation")

REGIMES = ("prefill", "decode", "offline", "fp16", "int8", "int4", "tp-nvlink", "tp-pcie", "pipeline", "moe")
"""Regimes reported per split in docs/model.md; a row belongs to one phase and any of the others."""

OUTSIDE_FACTOR = 1.4
"""The factor beyond which a prediction counts as off in the per-regime share (issue 11 measured version 1 with it)."""

TOLERANCE_FACTOR = {"prefill": 1.95, "decode": 1.6, "offline": 1.85}
"""Pin tolerance per phase: 1/f ≤ predicted/measured ≤ f for every pinned row of that phase (docs/model.md)."""

_GEFORCE_F16 = (
    "llama.cpp F16 prefill on a GeForce card: FP16-accumulate GEMMs run at 2x the BF16/FP32-accumulate peak the"
    " model uses"
)
_L40S_LLAMACPP = (
    "llama.cpp prefill on L40S (build 2834) reaches 10 % of the card's dense FP16 peak where the A6000 run of the"
    " same benchmark (build 2824) reaches 47 %; unexplained by the notebook (no GEMM backend printed)"
)
_PREFIX_CACHED = (
    "vLLM v0.8.5 (prefix caching on by default) serves repeated prompts: a 1800-token TTFT of 75.6 ms needs 360"
    " TFLOP/s, 3x the L4's dense BF16 peak, so the prompts were cached and this is not a prefill measurement"
)
EXCLUDED = {
    "m02": _GEFORCE_F16,
    "n074": _GEFORCE_F16,
    "n079": _GEFORCE_F16,
    "n080": _GEFORCE_F16,
    "n082": _L40S_LLAMACPP,
    "n084": _L40S_LLAMACPP,
    "n086": _L40S_LLAMACPP,
    "n093": _L40S_LLAMACPP,
    "n104": _PREFIX_CACHED,
    "n105": _PREFIX_CACHED,
    "n112": "SGLang AWQ ran after a torch 2.5.1 downgrade without CUDA graphs (source README): 120 ms per token,"
    " 5x vLLM AWQ on the same L4; a broken engine setup, not the hardware",
}
"""Measurements not pinned, with the reason (docs/model.md)."""

_COLUMNS = (
    "id",
    "model",
    "gpu",
    "precision",
    "kv_precision",
    "weight_bits",
    "tp",
    "pp",
    "engine",
    "engine_version",
    "metric",
    "client",
    "batching",
    "batch_size",
    "prompt_tokens",
    "output_tokens",
    "source_group",
    "split",
)
_KV_BYTES = {"fp16": 2.0, "fp8": 1.0}


def load_measurements(path: Path | None = None) -> pd.DataFrame:
    """The measurements table, with numeric columns parsed."""
    path = path or Path(str(resources.files("servegym.envs") / "data" / "measurements.csv"))
    frame = read_table(path, (*_COLUMNS, "value", "source"))
    for column in ("tp", "pp", "batch_size", "prompt_tokens", "output_tokens", "value"):
        parsed = pd.to_numeric(frame[column], errors="coerce")
        bad = parsed.isna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise CatalogError(f"{path}: row {row + 1}, field {column!r}: {frame[column].iloc[row]!r} is not a number")
        frame[column] = parsed
    bad_split = ~frame["split"].isin(SPLITS)
    if bad_split.any():
        row = int(np.flatnonzero(bad_split)[0])
        raise CatalogError(f"{path}: row {row + 1}, field 'split': {frame['split'].iloc[row]!r} not in {SPLITS}")
    return frame


@dataclass(frozen=True)
class Comparison:
    """One measurement next to its prediction."""

    id: str
    description: str
    metric: str
    measured: float
    predicted: float
    split: str
    phase: str
    regimes: tuple[str, ...]

    @property
    def ratio(self) -> float:
        """predicted / measured."""
        return self.predicted / self.measured


def row_replica(row: pd.Series, catalog: Catalog, constants: PerformanceConstants) -> Replica:
    """The replica a measurement ran: its KV precision, checkpoint format and engine batch cap."""
    precision = row["precision"]
    weight_bits = str(row["weight_bits"]).strip()
    kv = _KV_BYTES.get(row["kv_precision"], catalog.kv_bytes_per_element[precision])
    engine = row["engine"].split(" ")[0]
    kv_free = ENGINE_KV_FREE_FRACTION.get(engine)
    if kv_free is not None and "Triton" in row["engine_version"]:
        kv_free = _TRITON_KV_FREE_FRACTION
    return Replica(
        catalog.models[MODEL_ALIASES.get(row["model"], row["model"])],
        catalog.gpus[row["gpu"]],
        precision,
        float(weight_bits) / 8.0 if weight_bits else catalog.bytes_per_param[precision],
        int(row["tp"]),
        int(row["pp"]),
        constants,
        kv_bytes_per_element=kv,
        batch_cap=ENGINE_BATCH_CAP.get(engine),
        quantised_embeddings=bool(weight_bits),
        memory_reserve_fraction=ENGINE_MEMORY_RESERVE.get(engine),
        kv_free_fraction=kv_free,
    )


def phase(row: pd.Series) -> str:
    """``prefill`` (TTFT, prompt throughput), ``offline`` (engine-chosen batch) or ``decode`` (the rest)."""
    if row["metric"] == "ttft_ms" or row["metric"] == "total_throughput_tok_s":
        return "prefill"
    return "offline" if row["batching"] == "offline" else "decode"


def regimes(row: pd.Series, catalog: Catalog) -> tuple[str, ...]:
    """Every regime of :data:`REGIMES` a row belongs to."""
    model = catalog.models[MODEL_ALIASES.get(row["model"], row["model"])]
    tags = [phase(row), row["precision"]]
    if int(row["tp"]) > 1:
        tags.append(f"tp-{catalog.gpus[row['gpu']].interconnect}")
    if int(row["pp"]) > 1:
        tags.append("pipeline")
    if model.experts > 1:
        tags.append("moe")
    return tuple(tags)


def predict(row: pd.Series, catalog: Catalog, constants: PerformanceConstants) -> float | None:
    """The model's value for one measurement row, or None when the row lacks batch size or token lengths."""
    batch, prompt, output = float(row["batch_size"]), float(row["prompt_tokens"]), float(row["output_tokens"])
    if prompt < 0 or output < 0 or (batch < 0 and row["metric"] != "output_throughput_tok_s"):
        return None
    replica = row_replica(row, catalog, constants)
    context = prompt + output / 2.0
    metric, batching = row["metric"], row["batching"]
    b = max(batch, 1.0)
    # τ_req (scheduling, transport) only where a client talks to a server; in-process benchmarks do not pay it
    ttft = float(replica.ttft_s(prompt) if row["client"] == "http" else replica.prefill_s(prompt))
    if batching == "closed-loop":  # the other b − 1 requests keep the engine inside an iteration a new one waits for
        ttft += float(replica.iteration_wait_s(b - 1.0, context))
    # closed-loop clients: per cycle, each of the b requests prefills once (interleaved with the decode steps)
    cycle_s = ttft + output * float(replica.tpot_s(b, context))
    if batching == "closed-loop":
        cycle_s += (b - 1.0) * float(replica.prefill_busy_s(prompt))
    if metric == "ttft_ms":
        return 1e3 * ttft
    if metric == "tpot_ms":
        if batching == "closed-loop":
            return 1e3 * (cycle_s - ttft) / output
        return 1e3 * float(replica.tpot_s(b, context))
    if metric == "total_throughput_tok_s" and output == 0:
        return prompt / float(replica.prefill_s(prompt))
    if metric == "output_throughput_tok_s":
        if batching == "offline":  # offline maximum throughput: the replica's capacity μ at b_max
            return float(replica.capacity_per_hour(prompt, output)) * output / 3600.0
        if batching == "static":  # requests start together: one prefill pass over all b prompts, then the decode steps
            elapsed = float(replica.prefill_s(prompt, batch)) + output * float(replica.tpot_s(batch, context))
            return batch * output / elapsed
        return b * output / cycle_s
    return None


def compare_measurements(
    constants: PerformanceConstants | None = None,
    catalog: Catalog | None = None,
    measurements: pd.DataFrame | None = None,
) -> list[Comparison]:
    """Predict every usable measurement."""
    constants = constants or PerformanceConstants()
    catalog = catalog or default_catalog()
    measurements = load_measurements() if measurements is None else measurements
    comparisons = []
    for _, row in measurements.iterrows():
        value = predict(row, catalog, constants)
        if value is None:
            continue
        description = (
            f"{row['model']} {row['gpu']} {row['precision']} tp{int(row['tp'])}pp{int(row['pp'])} "
            f"{row['engine']} {row['batching']} b={int(row['batch_size'])} "
            f"{int(row['prompt_tokens'])}/{int(row['output_tokens'])}"
        )
        comparisons.append(
            Comparison(
                row["id"],
                description,
                row["metric"],
                float(row["value"]),
                value,
                row["split"],
                phase(row),
                regimes(row, catalog),
            )
        )
    return comparisons


def regime_errors(comparisons: list[Comparison]) -> dict[str, dict[str, dict[str, float]]]:
    """Split → regime (and ``all``) → rows, RMS log error, worst factor, share of rows off by more than
    :data:`OUTSIDE_FACTOR` and geometric-mean ratio over the pinned comparisons."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for split in SPLITS:
        pinned = [c for c in comparisons if c.split == split and c.id not in EXCLUDED]
        table[split] = {}
        for regime in ("all", *REGIMES):
            errors = np.array([np.log(c.ratio) for c in pinned if regime == "all" or regime in c.regimes])
            if errors.size:
                table[split][regime] = {
                    "rows": int(errors.size),
                    "rms_log_error": float(np.sqrt(np.mean(errors**2))),
                    "worst_factor": float(np.exp(np.abs(errors).max())),
                    "share_outside_1_4": float(np.mean(np.abs(errors) > np.log(OUTSIDE_FACTOR))),
                    "geomean_ratio": float(np.exp(errors.mean())),
                }
    return table
