"""What ``servegym trace inspect`` shows of a trace: its format, span, rates, query types, and a rate figure."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from servegym.io import atomic_write_bytes
from servegym.traces.days import MINUTES_PER_DAY
from servegym.traces.user_trace import Trace


def trace_rates(trace: Trace, period_minutes: int) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Start time of each playable period and (T, K) each stream's rate in it, requests/hour."""
    first, end = trace.playable_periods(period_minutes)
    if end <= first:
        return pd.DatetimeIndex([]), np.zeros((0, len(trace.streams)))
    midnight = pd.Timestamp(trace.day0)
    starts = midnight + pd.to_timedelta(np.arange(first, end) * period_minutes, unit="min")
    return pd.DatetimeIndex(starts), trace.period_rates(period_minutes, first, end - first)


def describe_trace(trace: Trace, period_minutes: int = 15) -> str:
    """A plain-text report: detected format and columns, span and days, requests, per-period rates and the
    derived query types (with the nominal λ an instance built from the trace takes)."""
    columns = ", ".join(
        f"{role}={'+'.join(value) if isinstance(value, tuple) else value}" for role, value in trace.columns.items()
    )
    lines = [
        f"trace {trace.path}",
        f"format: {trace.format} ({columns}; time read as {trace.time_unit})",
        f"span: {trace.span_text()}"
        + (" (relative times: calendar starts on the start_date option)" if trace.relative_time else ""),
    ]
    days = trace.full_days
    if days:
        if len(days) >= 2:
            test = set(trace.split_days("test"))
            split = ", ".join(f"{trace.day_name(d)} ({'test' if d in test else 'train'})" for d in days)
        else:
            split = f"{trace.day_name(days[0])} (one full day: no train/test split, play it with split=all)"
        lines.append(f"full days: {len(days)}: {split}")
    else:
        lines.append("full days: none (episodes are at most the span; no train/test split)")
    lines.append(f"requests: {trace.requests:,.0f}")
    _, rates = trace_rates(trace, period_minutes)
    if rates.shape[0]:
        table = pd.DataFrame(
            {
                "min": rates.min(axis=0),
                "median": np.median(rates, axis=0),
                "peak": rates.max(axis=0),
            },
            index=list(trace.streams),
        )
        total = rates.sum(axis=1)
        table.loc["total"] = [total.min(), float(np.median(total)), total.max()]
        lines += [
            "",
            f"rate per {period_minutes}-min period, requests/hour ({rates.shape[0]} whole periods)",
            table.to_string(float_format=lambda v: f"{v:,.1f}"),
        ]
    else:
        lines += ["", f"no whole {period_minutes}-min period inside the span"]
    if trace.query_types is not None:
        first, end = trace.reference_minutes()
        types = trace.query_types.assign(nominal_per_hour=trace.peak_per_hour())
        shown = types[
            [
                "name",
                "task_family",
                "prompt_min_tokens",
                "prompt_max_tokens",
                "request_count",
                "share",
                "mean_prompt_tokens",
                "mean_output_tokens",
                "nominal_per_hour",
            ]
        ]
        lines += [
            "",
            f"query types (service × prompt-length class, derived on minutes {first}–{end} of the timeline; "
            "nominal = busiest clock hour, requests/hour)",
            shown.to_string(index=False, float_format=lambda v: f"{v:,.3g}"),
        ]
    else:
        lines += ["", f"streams: services {list(trace.streams)} (no token columns: no query types of its own)"]
    return "\n".join(lines)


def plot_trace(trace: Trace, path: Path | str, period_minutes: int = 15) -> Path:
    """Write a PNG of each stream's rate per period over time, with the total and the test days shaded."""
    starts, rates = trace_rates(trace, period_minutes)
    figure, axis = plt.subplots(figsize=(11, 4.5))
    if rates.shape[0]:
        axis.stackplot(starts, rates.T, labels=list(trace.streams), alpha=0.85, step="post")
        axis.plot(starts, rates.sum(axis=1), color="black", linewidth=0.8, label="total", drawstyle="steps-post")
    if len(trace.full_days) >= 2:
        for index, day in enumerate(trace.split_days("test")):
            start = pd.Timestamp(trace.day0) + datetime.timedelta(days=day)
            axis.axvspan(
                start,
                start + datetime.timedelta(minutes=MINUTES_PER_DAY),
                color="grey",
                alpha=0.15,
                label="test split" if index == 0 else None,
            )
    axis.set_ylabel(f"requests/hour (per {period_minutes}-min period)")
    zone = "" if trace.relative_time else " (UTC)"
    axis.set_xlabel(f"time{zone}")
    axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(axis.xaxis.get_major_locator()))
    axis.set_title(f"{trace.path.name}: arrival rate by {'query type' if trace.kind == 'query-types' else 'service'}")
    axis.legend(loc="upper left", fontsize=8, ncol=2)
    axis.set_ylim(bottom=0)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
