"""The performance model against published measurements (envs/data/measurements.csv, docs/measurements.md).

:func:`compare_measurements` predicts every measurement whose batch size and token lengths are stated, so
``scripts/calibrate_performance.py`` can print the table of docs/model.md and a test can pin each prediction
within the tolerance that doc states.
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
"""Llama-2-70B has Llama-3.1-70B's shape (80 layers, width 8192, 8 KV heads, 69 vs 70.6 B parameters)."""

TOLERANCE_FACTOR = 1.4
"""Every pinned prediction lies within a factor 1.4 of its measurement: 1/1.4 ≤ predicted/measured ≤ 1.4."""

EXCLUDED = {"m02": "llama.cpp FP16-accumulate GEMMs run at 2x the BF16/FP32-accumulate peak the model uses"}
"""Measurements not pinned, with the reason (docs/model.md)."""

_COLUMNS = ("id", "model", "gpu", "precision", "tp", "pp", "metric", "batch_size", "prompt_tokens", "output_tokens")


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
    return frame


@dataclass(frozen=True)
class Comparison:
    """One measurement next to its prediction."""

    id: str
    description: str
    metric: str
    measured: float
    predicted: float

    @property
    def ratio(self) -> float:
        return self.predicted / self.measured


def predict(row: pd.Series, catalog: Catalog, constants: PerformanceConstants) -> float | None:
    """The model's value for one measurement row, or None when the row lacks batch size or token lengths."""
    batch, prompt, output = float(row["batch_size"]), float(row["prompt_tokens"]), float(row["output_tokens"])
    if prompt < 0 or output < 0 or (batch < 0 and row["metric"] != "output_throughput_tok_s"):
        return None
    model = catalog.models[MODEL_ALIASES.get(row["model"], row["model"])]
    replica = Replica(
        model,
        catalog.gpus[row["gpu"]],
        row["precision"],
        catalog.bytes_per_param[row["precision"]],
        int(row["tp"]),
        int(row["pp"]),
        constants,
    )
    context = prompt + output / 2.0
    metric = row["metric"]
    if metric == "ttft_ms":
        return 1e3 * float(replica.prefill_s(prompt))
    if metric == "tpot_ms":
        return 1e3 * float(replica.tpot_s(max(batch, 1.0), context))
    if metric == "total_throughput_tok_s" and output == 0:
        return prompt / float(replica.prefill_s(prompt))
    if metric == "output_throughput_tok_s":
        if batch < 0:  # offline maximum throughput: the replica's capacity μ at b_max
            return float(replica.capacity_per_hour(prompt, output)) * output / 3600.0
        # batch requests start together: one prefill of all prompts, then `output` decode steps
        elapsed = float(replica.prefill_s(batch * prompt)) + output * float(replica.tpot_s(batch, context))
        return batch * output / elapsed
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
            f"{row.get('engine', '')} b={int(row['batch_size'])} "
            f"{int(row['prompt_tokens'])}/{int(row['output_tokens'])}"
        )
        comparisons.append(Comparison(row["id"], description, row["metric"], float(row["value"]), value))
    return comparisons
