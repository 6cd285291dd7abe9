"""Tables and figures from a results store: cost per policy and scenario, SLO violation rates, runtime.

:func:`write_report` refuses a store whose sweeps planned cells that are missing or whose cells are damaged,
naming them, unless told ``partial=True`` (``servegym report --partial``); a partial report says in
``summary.md`` which cells it lacks. The report reads the cells without rewriting the store's ``results.csv``,
and writes its files as one set with a ``manifest.json`` (:func:`servegym.io.write_file_set`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from servegym.experiments.store import ResultStore, StoreError, StoreStatus
from servegym.io import check_output_folder, write_file_set
from servegym.tables import markdown_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RATE_COLUMNS = ("delay_violation_rate", "error_violation_rate", "unserved_rate")
REPORT_FILES = ("summary.csv", "summary.md", "cost_by_policy.png", "violations.png", "runtime.png")
"""What :func:`write_report` writes into its output folder (with ``manifest.json``)."""


def summarise(results: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Per (scenario, policy): cells, mean and standard deviation of the episode cost over seeds and days, mean
    violation rates, mean decision time and mean cell wall time; cheapest policy first within a scenario.

    Args:
        results: Merged evaluation results (``results.csv``).
        keys: Keep only these cells (e.g. those of one sweep); None keeps all.
    """
    if keys is not None:
        results = results[results["cell"].isin(set(keys))]
    grouped = results.groupby(["scenario", "policy"])
    summary = pd.DataFrame(
        {
            "cells": grouped.size(),
            "cost_mean": grouped["total_cost"].mean(),
            "cost_std": grouped["total_cost"].std(ddof=1).fillna(0.0),
            **{rate: grouped[rate].mean() for rate in RATE_COLUMNS},
            "mean_decision_s": grouped["mean_decision_s"].mean(),
            "wall_s": grouped["wall_s"].mean(),
        }
    )
    return summary.sort_values(["scenario", "cost_mean"]).reset_index()


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as a plain-text table for the terminal."""
    return summary.to_string(index=False, float_format=lambda v: f"{v:,.4g}")


def _markdown(summary: pd.DataFrame, store: Path, status: StoreStatus) -> str:
    cost = summary[["scenario", "policy", "cells", "cost_mean", "cost_std"]]
    rates = summary[["scenario", "policy", *RATE_COLUMNS]]
    runtime = summary[["scenario", "policy", "mean_decision_s", "wall_s"]]
    partial = [] if status.complete else [f"**Partial report**: {status.describe(limit=20)}."]
    return (
        "\n\n".join(
            [
                f"# Sweep report: {store}",
                *partial,
                "## Cost per episode ($): mean and standard deviation over seeds and days",
                markdown_table(cost),
                "## SLO violation rates (request-weighted, mean over cells)",
                markdown_table(rates),
                "## Runtime: mean decision time per period and wall time per cell (s)",
                markdown_table(runtime),
            ]
        )
        + "\n"
    )


def _png(figure: Figure) -> bytes:
    """Render to PNG in memory, then free the figure."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    return buffer.getvalue()


def _grid(count: int) -> tuple[int, int]:
    columns = min(count, 3)
    return math.ceil(count / columns), columns


def _in_policy_order(part: pd.DataFrame) -> pd.DataFrame:
    """``part``'s rows in the one policy order every figure uses (``servegym.baselines.plots.ordered_policies``)."""
    from servegym.baselines.plots import ordered_policies  # lazily, as matplotlib below

    order = {name: k for k, name in enumerate(ordered_policies(part["policy"]))}
    return part.sort_values("policy", key=lambda names: names.map(order)).reset_index(drop=True)


def _plot_cost(summary: pd.DataFrame) -> bytes:
    import matplotlib.pyplot as plt

    from servegym.baselines.plots import policy_colour

    scenarios = list(dict.fromkeys(summary["scenario"]))
    rows, columns = _grid(len(scenarios))
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.5 * rows), squeeze=False)
    for ax, scenario in zip(axes.flat, scenarios, strict=False):
        part = _in_policy_order(summary[summary["scenario"] == scenario])
        colours = [policy_colour(p) for p in part["policy"]]
        ax.bar(part["policy"], part["cost_mean"], yerr=part["cost_std"], capsize=3, color=colours)
        ax.set_title(scenario, fontsize=9)
        ax.set_ylabel("$ per episode")
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.set_visible(False)
    figure.suptitle("Episode cost by policy (error bars: std over seeds and days)")
    return _png(figure)


def _plot_violations(summary: pd.DataFrame) -> bytes:
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(summary["scenario"]))
    rows, columns = _grid(len(scenarios))
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.5 * rows), squeeze=False)
    width = 0.8 / len(RATE_COLUMNS)
    for ax, scenario in zip(axes.flat, scenarios, strict=False):
        part = _in_policy_order(summary[summary["scenario"] == scenario])
        for k, rate in enumerate(RATE_COLUMNS):
            ax.bar([x + k * width for x in range(len(part))], part[rate], width=width, label=rate.replace("_", " "))
        ax.set_xticks([x + width for x in range(len(part))], part["policy"], rotation=45, fontsize=8)
        ax.set_title(scenario, fontsize=9)
        ax.set_ylabel("share of requests")
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    figure.suptitle("SLO violation rates by policy")
    return _png(figure)


def _plot_runtime(summary: pd.DataFrame) -> bytes:
    import matplotlib.pyplot as plt

    decision = summary.pivot(index="policy", columns="scenario", values="mean_decision_s")
    wall = summary.pivot(index="policy", columns="scenario", values="wall_s")
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, table, label in ((axes[0], decision, "mean decision time (s)"), (axes[1], wall, "wall time per cell (s)")):
        table.plot.bar(ax=ax, logy=True, rot=45, fontsize=8)
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    figure.suptitle("Runtime by policy")
    return _png(figure)


def write_report(
    store: ResultStore, out_dir: Path | str, *, partial: bool = False, command: str = "servegym report"
) -> list[Path]:
    """Write :data:`REPORT_FILES` (and ``manifest.json``) into ``out_dir`` from the store's finished evaluation
    cells; returns their paths.

    Args:
        store: The results store.
        out_dir: The output folder; the previous report's files in it are replaced as a set.
        partial: Report a store with missing or damaged cells (summary.md names them) instead of refusing it.
        command: The command recorded in the manifest.

    Raises:
        StoreError: There is no store at ``store.root``, it holds no finished evaluation cell, or (unless
            ``partial``) a planned cell is missing or a cell is damaged (the message names them).
        OutputPathError: ``out_dir`` cannot be a folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    if not store.root.is_dir():
        raise StoreError(f"no results store at {store.root} (a folder written by servegym sweep)")
    if not store.keys():
        raise StoreError(f"store {store.root} holds no cells (run servegym sweep first)")
    out = check_output_folder(out_dir, "report folder")
    status = store.status()
    if not status.complete and not partial:
        raise StoreError(
            f"store {store.root} is incomplete: {status.describe()}; run the sweep again to finish it, or report "
            "the finished cells only with --partial"
        )
    results = store.results()
    if results.empty:
        raise StoreError(f"store {store.root} holds no finished evaluation cells (run servegym sweep first)")
    summary = summarise(results)
    contents = {
        "summary.csv": summary.to_csv(index=False).encode("utf-8"),
        "summary.md": _markdown(summary, store.root, status).encode("utf-8"),
        "cost_by_policy.png": _plot_cost(summary),
        "violations.png": _plot_violations(summary),
        "runtime.png": _plot_runtime(summary),
    }
    return write_file_set(out, {name: contents[name] for name in REPORT_FILES}, command=command)
