"""Figures of an evaluation: cost per period per policy, and one policy's GPUs by type against demand."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from servegym.io import atomic_write_bytes


def plot_evaluation(periods: pd.DataFrame, path: Path | str, *, highlight: str | None = None) -> Path:
    """Write a two-panel PNG of the first episode of each policy.

    Top: cost per period ($) per policy. Bottom: GPUs provisioned by type for ``highlight`` (default: the
    cheapest policy) as stacked areas, with the demand (requests/hour) on a second axis.
    """
    episode = periods["episode"].iloc[0]
    data = periods[periods["episode"] == episode]
    totals = data.groupby("policy")["total_cost"].sum().sort_values()
    highlight = highlight if highlight in totals.index else totals.index[0]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    for policy in totals.index:
        series = data[data["policy"] == policy]
        top.plot(series["period"], series["total_cost"], label=f"{policy} (${totals[policy]:,.0f})")
    top.set_ylabel("cost per period ($)")
    top.set_yscale("log")
    top.set_title(f"Cost per period, episode {episode}")
    top.legend(fontsize=8, ncol=2)
    chosen = data[data["policy"] == highlight]
    gpu_columns = [c for c in chosen.columns if c.startswith("gpus[") and chosen[c].sum() > 0]
    bottom.stackplot(
        chosen["period"],
        [chosen[c] for c in gpu_columns],
        labels=[c[5:-1] for c in gpu_columns],
        alpha=0.8,
    )
    bottom.set_ylabel(f"GPUs provisioned by {highlight}")
    bottom.set_xlabel("period")
    bottom.legend(loc="upper left", fontsize=8)
    demand_axis = bottom.twinx()
    demand_axis.plot(chosen["period"], chosen["demand_per_hour"], color="black", linewidth=1.5, label="demand")
    demand_axis.set_ylabel("demand (requests/hour)")
    demand_axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
