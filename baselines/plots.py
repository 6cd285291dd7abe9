"""Figures of an evaluation, readable without the code: ``evaluate.png`` (cost of every policy over the episode)
and ``plan.png`` (one policy's GPUs by type against demand and SLO violations).

Both draw one episode (the first of the periods table unless told) and say which in the title. Time axes show
clock time: periods start at 00:00 of the episode's first day (every demand source starts its days at midnight),
ticks are HH:MM within a day and day names (``Sun 12 May``, or ``day 2`` when the demand carries no date) across
days.

Every figure gives a policy the same colour (:data:`POLICY_COLOURS`, :func:`policy_colour`) and the same place in
legends (:data:`POLICY_ORDER`, :func:`ordered_policies`): a fixed order, grouped by planner family, not the
ranking of one run, so that two figures (or two settings) list and colour policies alike. Totals are written next
to the names.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from servegym.baselines.policies import MODES, PLANNERS
from servegym.io import atomic_write_bytes

_FAMILY_COLOURMAPS = {"gh": "Blues", "agh": "Greens", "milp": "Purples"}
POLICY_ORDER: tuple[str, ...] = (
    *(f"{planner}-{mode}" for planner in PLANNERS for mode in MODES),
    "tuned-rule",
    "oracle",
    "random",
)
"""Legend order of the known policies: GH, AGH and MILP planners (each in :data:`MODES` order), the tuned rule, the
oracle, the random policy. Other names (trained agents, custom factories) follow, alphabetically."""


def _family_colour(planner: str, mode: str) -> str:
    shades = np.linspace(0.5, 1.0, len(MODES))
    return matplotlib.colors.to_hex(matplotlib.colormaps[_FAMILY_COLOURMAPS[planner]](shades[MODES.index(mode)]))


POLICY_COLOURS: dict[str, str] = {
    **{f"{p}-{m}": _family_colour(p, m) for p in PLANNERS for m in MODES},
    "tuned-rule": "#ff7f0e",
    "oracle": "#000000",
    "random": "#7f7f7f",
}
"""Colour (hex) of each known policy: a planner family is one hue (GH blue, AGH green, MILP purple), its modes
shades of it; tuned rule orange, oracle black, random grey."""
GPU_COLOURS = ("#1f77b4", "#17becf", "#2ca02c", "#bcbd22", "#9467bd", "#8c564b", "#e377c2", "#393b79")
"""Colour of the i-th ``gpus[<type>]`` column of a periods table (the catalog's order, the same in every table)."""
_OTHER_COLOURS = ("#d62728", "#8c564b", "#e377c2", "#bcbd22", "#17becf")

OFF_SCALE_FACTOR = 5.0
"""A policy whose episode cost exceeds this multiple of the median policy's is drawn on its own panel."""


def policy_colour(name: str) -> str:
    """The colour (hex) of policy ``name``: :data:`POLICY_COLOURS`, else one of five colours outside the
    families' hues picked by a hash of the name (the same in every process)."""
    if name in POLICY_COLOURS:
        return POLICY_COLOURS[name]
    return _OTHER_COLOURS[int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16) % len(_OTHER_COLOURS)]


def ordered_policies(names: Iterable[str]) -> list[str]:
    """``names`` without repeats in :data:`POLICY_ORDER` order, unknown names after it alphabetically."""
    rank = {name: i for i, name in enumerate(POLICY_ORDER)}
    return sorted(set(names), key=lambda name: (rank.get(name, len(rank)), name))


@dataclass(frozen=True)
class Clock:
    """When the periods of an episode happen.

    Attributes:
        period_minutes: Length of a period (minutes); period ``k`` starts at ``k * period_minutes`` after 00:00 of
            the first day.
        first_day: Calendar date of the first day, or None (days are then named ``day 1``, ``day 2``, ...).
    """

    period_minutes: float
    first_day: date | None = None

    def hours(self, periods: Iterable[int]) -> np.ndarray:
        """Start of each period in hours since 00:00 of the first day."""
        return np.asarray(list(periods), dtype=float) * self.period_minutes / 60.0

    def day_name(self, day: int) -> str:
        """Name of day ``day`` (0 = the first) of the episode."""
        if self.first_day is None:
            return f"day {day + 1}"
        return (self.first_day + timedelta(days=day)).strftime("%a %d %b")

    def format_axis(self, axis: Axes, num_periods: int) -> None:
        """Ticks and label of a time axis spanning ``num_periods`` periods: HH:MM within a day, day names across
        days."""
        span = num_periods * self.period_minutes / 60.0
        if span > 36.0:
            axis.xaxis.set_major_locator(MultipleLocator(24.0))
            axis.xaxis.set_minor_locator(MultipleLocator(6.0))
            axis.xaxis.set_major_formatter(FuncFormatter(lambda x, _: self.day_name(round(x / 24.0))))
            axis.set_xlabel("day (ticks at 00:00, minor ticks every 6 h)")
            axis.grid(True, which="major", axis="x", alpha=0.4)
        else:
            major = 3.0 if span > 6.0 else 1.0 if span > 1.5 else 0.25
            axis.xaxis.set_major_locator(MultipleLocator(major))
            axis.xaxis.set_minor_locator(MultipleLocator(major / 3.0))
            axis.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _hh_mm(x)))
            axis.set_xlabel(f"time of day, {self.day_name(0)} ({self.period_minutes:g}-min periods)")
        axis.set_xlim(0.0, span)


def _hh_mm(hours: float) -> str:
    minutes = round(hours * 60.0)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def episode_clock(episodes: pd.DataFrame, periods: pd.DataFrame, episode: str | None = None) -> Clock:
    """The clock of ``episode`` (default: the first of ``periods``) of an evaluation's tables.

    The period length is the episode's GPU-hours (``episodes.gpu_hours``) over its GPU-periods (the ``gpus[...]``
    columns summed over periods); with no GPU ever provisioned it is one day over the number of periods. The
    first day is the first ISO date in the episode's demand label (``azure 2024-05-16-thu``), if any.
    """
    episode = periods["episode"].iloc[0] if episode is None else episode
    rows = episodes[episodes["episode"] == episode]
    data = periods[periods["episode"] == episode]
    gpu_periods = data.groupby("policy")[[c for c in data.columns if c.startswith("gpus[")]].sum().sum(axis=1)
    gpu_hours = rows.set_index("policy")["gpu_hours"].reindex(gpu_periods.index)
    used = gpu_periods > 0
    if used.any():
        period_minutes = round(float((gpu_hours[used] / gpu_periods[used]).median()) * 60.0, 6)
    else:
        period_minutes = 1440.0 / data.groupby("policy").size().max()
    found = re.search(r"\d{4}-\d{2}-\d{2}", str(rows["demand"].iloc[0])) if len(rows) else None
    return Clock(period_minutes, date.fromisoformat(found.group()) if found else None)


def _episode_text(periods: pd.DataFrame, episode: str) -> str:
    count = periods["episode"].nunique()
    match = re.fullmatch(r"(?:(.+)/)?s(\d+)", episode)
    what = f"{match.group(1) + ', ' if match.group(1) else ''}seed {match.group(2)}" if match else episode
    others = "the run's only episode" if count == 1 else f"1 of the run's {count} episodes, all in periods.csv"
    return f"episode {episode} ({what}; {others})"


def off_scale(totals: pd.Series) -> list[str]:
    """Policies (index of ``totals``, episode cost in $) costing more than :data:`OFF_SCALE_FACTOR` × the median."""
    return [name for name, total in totals.items() if total > OFF_SCALE_FACTOR * totals.median()]


def _one_episode(periods: pd.DataFrame, episode: str | None) -> tuple[str, pd.DataFrame, pd.Series]:
    episode = periods["episode"].iloc[0] if episode is None else episode
    data = periods[periods["episode"] == episode]
    if data.empty:
        raise ValueError(f"no periods of episode {episode!r}; the table has {sorted(periods['episode'].unique())}")
    return episode, data, data.groupby("policy")["total_cost"].sum()


def _held(clock: Clock, series: pd.DataFrame, column: str, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Step-plot points of ``column`` (× ``scale``) held over each period: period starts (hours) and the episode's
    end, with the last value repeated there so that the last period shows."""
    periods = series["period"].to_numpy()
    values = series[column].to_numpy(dtype=float) * scale
    return clock.hours([*periods, periods[-1] + 1]), np.append(values, values[-1])


def _dollars(value: float, _position: float | None = None) -> str:
    return f"${value:,.0f}"


def _log_cost_axis(axis: Axes) -> None:
    """A log axis of $ labelled in plain dollars at 1, 2 and 5 × powers of ten."""
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(FuncFormatter(_dollars))
    axis.yaxis.set_minor_formatter(
        FuncFormatter(lambda y, _: _dollars(y) if f"{y:.0e}"[0] in "25" else "")  # 20, 50, 200, 500, ...
    )
    axis.grid(True, which="major", alpha=0.3)


def plot_evaluation(
    periods: pd.DataFrame, path: Path | str, *, clock: Clock | None = None, episode: str | None = None
) -> Path:
    """Write ``evaluate.png``: the cost of every policy over one episode; returns ``path``.

    Panels: cumulative cost ($) and cost per period ($, log axis) of the policies on the common scale; below them,
    if any, the policies off it (:func:`off_scale`) on their own axis, with a note of their multiple of the median.
    Legends list policies in :data:`POLICY_ORDER` with their episode cost and rank (1 = cheapest).

    Args:
        periods: Per-period records (:attr:`EvaluationResult.periods`).
        path: PNG file to write.
        clock: When the periods happen; default one day split into the episode's periods.
        episode: Episode label to draw; default the first in ``periods``.
    """
    episode, data, totals = _one_episode(periods, episode)
    clock = clock or Clock(1440.0 / data.groupby("policy").size().max())
    outliers = off_scale(totals)
    rank = {name: i + 1 for i, name in enumerate(totals.sort_values().index)}
    rows = 3 if outliers else 2
    figure, axes = plt.subplots(
        rows, 1, figsize=(13, 3.2 * rows + 1.0), sharex=True, height_ratios=[3, 3, 2][:rows], squeeze=False
    )
    cumulative, per_period = axes[0, 0], axes[1, 0]
    for policy in [p for p in ordered_policies(totals.index) if p not in outliers]:
        series = data[data["policy"] == policy]
        hours, costs = _held(clock, series, "total_cost")
        colour = policy_colour(policy)
        label = f"{policy}  {_dollars(totals[policy])} (#{rank[policy]})"
        cumulative.plot(hours, np.append(0.0, np.cumsum(costs[:-1])), color=colour, label=label)
        per_period.step(hours, costs, where="post", color=colour, linewidth=1.0)
    cumulative.set_ylabel("cumulative cost ($)")
    cumulative.yaxis.set_major_formatter(FuncFormatter(_dollars))
    cumulative.grid(True, alpha=0.3)
    per_period.set_ylabel(f"cost per {clock.period_minutes:g}-min period ($)")
    _log_cost_axis(per_period)
    if outliers:
        own = axes[2, 0]
        for policy in ordered_policies(outliers):
            own.step(
                *_held(clock, data[data["policy"] == policy], "total_cost"),
                where="post",
                color=policy_colour(policy),
                label=f"{policy}  {_dollars(totals[policy])} (#{rank[policy]})",
            )
        median = totals.median()
        note = "; ".join(f"{p} costs {totals[p] / median:,.0f}× the median policy" for p in ordered_policies(outliers))
        own.set_title(f"Off the common scale (> {OFF_SCALE_FACTOR:g}× the median policy's {_dollars(median)}): {note}")
        own.set_ylabel(f"cost per {clock.period_minutes:g}-min period ($)")
        own.yaxis.set_major_formatter(FuncFormatter(_dollars))
        own.grid(True, alpha=0.3)
        own.legend(loc="upper left", fontsize=8)
    clock.format_axis(axes[-1, 0], int(data["period"].max()) + 1)
    figure.legend(
        *cumulative.get_legend_handles_labels(),
        loc="upper left",
        bbox_to_anchor=(0.80, 0.93),
        fontsize=8,
        title="policy, episode cost (rank)",
        title_fontsize=8,
    )
    figure.suptitle(f"Cost of each policy over the episode: {_episode_text(periods, episode)}")
    figure.tight_layout(rect=(0.0, 0.0, 0.80, 1.0))
    return _save(figure, path)


def plan_policy(totals: pd.Series) -> str:
    """The policy ``plan.png`` shows by default: the cheapest (``totals``, $) that re-plans (name not ending in
    ``-static``) and is on the common scale; the cheapest of all if there is none."""
    outliers = off_scale(totals)
    candidates = [p for p in totals.index if not p.endswith("-static") and p not in outliers]
    return str(totals[candidates].idxmin() if candidates else totals.idxmin())


def plot_plan(
    periods: pd.DataFrame,
    path: Path | str,
    *,
    policy: str | None = None,
    clock: Clock | None = None,
    episode: str | None = None,
) -> Path:
    """Write ``plan.png``: one policy's plan over one episode; returns ``path``.

    Top: GPUs provisioned by type (stacked, count) against the demand (requests/hour, black line, right axis).
    Bottom: share of the period's requests outside the SLO (%), split into delayed, errors and unserved.

    Args:
        periods: Per-period records (:attr:`EvaluationResult.periods`).
        path: PNG file to write.
        policy: Policy to draw; default :func:`plan_policy`.
        clock: When the periods happen; default one day split into the episode's periods.
        episode: Episode label to draw; default the first in ``periods``.

    Raises:
        ValueError: ``policy`` or ``episode`` is not in ``periods``.
    """
    episode, data, totals = _one_episode(periods, episode)
    policy = plan_policy(totals) if policy is None else policy
    if policy not in totals.index:
        raise ValueError(f"no periods of policy {policy!r} in episode {episode!r}; choose from {sorted(totals.index)}")
    chosen = data[data["policy"] == policy]
    clock = clock or Clock(1440.0 / len(chosen))
    figure, (gpus_axis, slo_axis) = plt.subplots(2, 1, figsize=(13, 7.5), sharex=True, height_ratios=(3, 1.3))
    all_types = [c for c in periods.columns if c.startswith("gpus[")]
    bottom = 0.0
    for index, column in enumerate(all_types):
        hours, counts = _held(clock, chosen, column)
        if counts.sum() == 0:
            continue
        colour = GPU_COLOURS[index % len(GPU_COLOURS)]
        gpus_axis.fill_between(
            hours, bottom, bottom + counts, step="post", color=colour, linewidth=0, label=column[5:-1]
        )
        bottom = bottom + counts
    gpus_axis.set_ylabel("GPUs provisioned (count)")
    gpus_axis.set_ylim(0, max(1.0, float(np.max(bottom))) * 1.1)
    gpus_axis.grid(True, axis="y", alpha=0.3)
    demand_axis = gpus_axis.twinx()
    demand_axis.step(*_held(clock, chosen, "demand_per_hour"), where="post", color="black", linewidth=1.4)
    demand_axis.set_ylabel("demand (requests/hour, black line)")
    demand_axis.set_ylim(0, chosen["demand_per_hour"].max() * 1.1)
    demand_axis.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.0f}"))
    handles, labels = gpus_axis.get_legend_handles_labels()
    gpus_axis.legend(
        [*handles, *demand_axis.get_lines()],
        [*labels, "demand (right axis)"],
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=len(labels) + 1,
        fontsize=8,
        frameon=False,
        title="GPUs by type (stacked, left axis)",
        title_fontsize=8,
        alignment="left",
    )
    parts = (("delay_violation_rate", "delayed"), ("error_violation_rate", "errors"), ("unserved_rate", "unserved"))
    lower = 0.0
    for (column, label), colour in zip(parts, ("#ff7f0e", "#d62728", "#7f7f7f"), strict=True):
        hours, share = _held(clock, chosen, column, 100.0)
        share[share < 1e-9] = 0.0  # the router's round-off, not violations
        slo_axis.fill_between(hours, lower, lower + share, step="post", color=colour, linewidth=0, label=label)
        lower = lower + share
    slo_axis.set_ylabel("requests outside\nthe SLO (%)")
    slo_axis.set_ylim(0, max(1.0, float(np.max(lower)) * 1.3))
    slo_axis.legend(loc="upper right", fontsize=8, ncol=3)
    slo_axis.grid(True, axis="y", alpha=0.3)
    clock.format_axis(slo_axis, len(chosen))
    weights = chosen["demand_per_hour"]
    violated = float((chosen["slo_violation_rate"] * weights).sum() / max(float(weights.sum()), 1e-12))
    figure.suptitle(
        f"Plan of {policy} (${totals[policy]:,.0f} over the episode, {violated:.2%} of requests outside the SLO)\n"
        f"{_episode_text(periods, episode)}"
    )
    figure.tight_layout()
    return _save(figure, path)


def _save(figure: Figure, path: Path | str) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
