"""Demand shapes unlike Azure's, written as per-minute count traces: what the forecasting benchmark plays.

Each shape is eight days (Monday 2026-11-02 to Monday 2026-11-09, UTC) of per-minute request counts for two
services, ``code`` and ``conv`` (the Azure 2024 column names, so the ``azure`` scenario's query types follow each
service: the "per service" mapping of ``TraceDemand``). With the trace split rule the first six days are the
train days (the sixth, Saturday, the validation day) and the last two, Sunday and Monday, the test days. Counts
are Poisson draws around the shape's rate (peak about 2,000 requests/minute per service, so the noise is that of
a busy service, not of a toy), from ``np.random.default_rng(seed)``.

==================  ===================================================================================
shape               rate over the day and the week
==================  ===================================================================================
``shifted``         the mean Azure daily profile of each service, moved 7 hours later and with its swing
                    around the mean 1.6× larger (another region's clock, a peakier service)
``bursty``          a mild daily cycle (±20 %) with bursts: 4 a day on average, 20–90 minutes long,
                    × 1.5–3 (batch jobs, retries, a viral link)
``step``            business hours (trough 15 % of the peak at night); from day 7 (the first test day)
                    the whole level is 1.5× higher (a launch)
``weekly``          business hours on weekdays, 35 % of that on Saturday and Sunday
``double-peak``     a consumer app: a morning peak at 08:00 and a larger evening peak at 20:00, 10 % at 04:00
``ramp``            business hours growing 6 % a day (a service gaining users)
``night-batch``     light daytime traffic (40 % of the peak) and a nightly batch window 01:00–04:00 at the
                    peak, starting and ending within 15 minutes
==================  ===================================================================================

Every day also gets a day-level factor exp(0.05 z − 0.05²/2) per service, so no two days are copies. The shapes
are for benchmarking forecasts and planners; they are not measurements of any service.
"""

from __future__ import annotations

import datetime
import gzip
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from servegym import numerics
from servegym.io import atomic_write_bytes
from servegym.traces.days import MINUTES_PER_DAY

SHAPE_DAYS = 8
SHAPE_START = datetime.date(2026, 11, 2)  # a Monday
PEAK_PER_MINUTE = 2000.0
"""Rate of each service at its shape's peak, requests per minute."""
DAY_LEVEL_SIGMA = 0.05
SERVICES = ("code", "conv")


def _hours(minutes: np.ndarray) -> np.ndarray:
    return (minutes % MINUTES_PER_DAY) / 60.0


def _business_hours(hours: np.ndarray, trough: float) -> np.ndarray:
    rise = 1.0 / (1.0 + numerics.exp(-(hours - 8.0) * 1.8))
    fall = 1.0 / (1.0 + numerics.exp((hours - 18.0) * 1.5))
    return trough + (1.0 - trough) * rise * fall


def _shifted(minutes: np.ndarray, service: int, rng: np.random.Generator) -> np.ndarray:
    from servegym.traces.demand import mean_daily_profile

    profile = mean_daily_profile(1, services=(SERVICES[service],))
    rolled = np.roll(profile, 7 * 60)
    peakier = np.maximum(1.0 + 1.6 * (rolled - 1.0), 0.05)
    return peakier[minutes % MINUTES_PER_DAY] / peakier.max()


def _bursty(minutes: np.ndarray, service: int, rng: np.random.Generator) -> np.ndarray:
    base = 1.0 + 0.2 * np.sin(2 * np.pi * (_hours(minutes) - 9.0 - 2.0 * service) / 24.0)
    rate = base.copy()
    bursts = rng.poisson(4.0 * SHAPE_DAYS)
    for start, length, factor in zip(
        rng.integers(0, len(minutes), bursts), rng.integers(20, 91, bursts), rng.uniform(1.5, 3.0, bursts), strict=True
    ):
        rate[start : start + length] *= factor
    return rate / 3.0


def _step(minutes: np.ndarray, service: int, rng: np.random.Generator) -> np.ndarray:
    level = np.where(minutes >= 6 * MINUTES_PER_DAY, 1.5, 1.0)
    return _business_hours(_hours(minutes), 0.15) * level / 1.5


def _weekly(minutes: np.ndarray, service: int, rng: np.random.Generator) -> np.ndarray:
    weekday = (SHAPE_START.weekday() + minutes // MINUTES_PER_DAY) % 7
    return _business_hours(_hours(minutes), 0.12) * np.where(weekday >= 5, 0.35, 1.0)


def _double_peak(minutes: np.ndarray, service: int, rng: np.random.Generator) -> np.ndarray:
    hours = _hours(minutes)

    def bump(centre: float, width: float) -> np.ndarray:
        distance = (hours - centre + 12.0) % 24.0 - 12.0
        return numerics.exp(-0.5 * (distance / width) ** 2)

    return (0.10 + 0.55 * bump(8.0, 1.5) + 0.9 * bump(20.0, 2.0)) / 1.0


def _ramp(minutes: np.ndarray, service: int, rng: np.random.Generator) -> np.ndarray:
    growth = numerics.power(1.06, minutes / MINUTES_PER_DAY)
    return _business_hours(_hours(minutes), 0.15) * growth / 1.06**SHAPE_DAYS


def _night_batch(minutes: np.ndarray, service: int, rng: np.random.Generator) -> np.ndarray:
    hours = _hours(minutes)
    daytime = 0.4 * _business_hours(hours, 0.3)
    batch = 1.0 / (1.0 + numerics.exp(-(hours - 1.0) * 16.0)) / (1.0 + numerics.exp((hours - 4.0) * 16.0))
    return np.maximum(daytime, batch)


SHAPES: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "shifted": _shifted,
    "bursty": _bursty,
    "step": _step,
    "weekly": _weekly,
    "double-peak": _double_peak,
    "ramp": _ramp,
    "night-batch": _night_batch,
}
"""Shape name → rate (relative to the peak) per timeline minute for service index 0 or 1."""


def shape_counts(name: str, seed: int = 0) -> pd.DataFrame:
    """Per-minute counts of a shape: columns ``timestamp`` (ISO, UTC), ``code_requests``, ``conv_requests``.

    Raises:
        ValueError: ``name`` is not one of :data:`SHAPES`.
    """
    if name not in SHAPES:
        raise ValueError(f"shape {name!r} not one of {list(SHAPES)}")
    rng = np.random.default_rng(seed)
    minutes = np.arange(SHAPE_DAYS * MINUTES_PER_DAY)
    columns = {}
    for k, service in enumerate(SERVICES):
        relative = SHAPES[name](minutes, k, rng)
        day_level = numerics.exp(DAY_LEVEL_SIGMA * rng.standard_normal(SHAPE_DAYS) - 0.5 * DAY_LEVEL_SIGMA**2)
        rate = PEAK_PER_MINUTE * relative * day_level[minutes // MINUTES_PER_DAY]
        columns[f"{service}_requests"] = rng.poisson(rate)
    stamps = pd.Timestamp(SHAPE_START) + pd.to_timedelta(minutes, unit="min")
    return pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M"), **columns})


def write_shape(name: str, path: Path | str, seed: int = 0) -> Path:
    """Write a shape's per-minute counts as a gzip CSV trace (deterministic bytes) and return the path."""
    text = io.StringIO()
    text.write(f"# servegym.traces.shapes: shape {name!r}, seed {seed} (synthetic, not a measurement)\n")
    shape_counts(name, seed).to_csv(text, index=False, lineterminator="\n")
    return atomic_write_bytes(path, gzip.compress(text.getvalue().encode("utf-8"), mtime=0))
