"""Per-period demand per query type on the Azure days, from the processed data shipped with the package.

The per-type arrival rate combines the two Azure traces: the 2024 per-minute series gives how many
requests each service received in each period of the day, and the 2023 per-request traces give how a
service's requests split over prompt-length classes (the query-type ``share``)::

    rate[t, i] = requests[service(i), t] × share[i] × 60 / period_minutes × scale     (requests/hour)

so summing ``rate × period_hours`` over periods and a service's types gives back exactly that service's
request count of the day (times ``scale``).
"""

from __future__ import annotations

import functools
import gzip
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from servegym.traces.azure import MINUTE_COLUMNS, SERVICES, TraceFormatError
from servegym.traces.days import AZURE_DAYS, MINUTES_PER_DAY, TRAIN_DAYS, VALIDATION_DAY, azure_day
from servegym.traces.query_types import load_query_types

DAY_MINUTES_FILE = "azure2024_minutes_by_day.csv.gz"
"""Name of the shipped per-minute table (gzip CSV) in ``servegym.traces`` package data."""

DAY_MINUTE_COLUMNS: tuple[str, ...] = ("day", "minute_of_day", *MINUTE_COLUMNS[1:], "source")
"""Columns of the shipped per-minute table: Azure day name, minute since 00:00 UTC, per service the
request count and context/generated token sums of that minute, and the citation."""

ALLOWED_PERIOD_MINUTES: tuple[int, ...] = tuple(m for m in range(1, MINUTES_PER_DAY + 1) if MINUTES_PER_DAY % m == 0)
"""Period lengths (minutes) that tile a day exactly."""


@dataclass(frozen=True, eq=False)
class Demand:
    """Arrival rates per period and query type over one horizon.

    Attributes:
        rates_per_hour: (T, I) mean arrival rate of each query type in each period, requests/hour;
            read-only float64, non-negative.
        query_types: (I,) query-type names, the column order of ``rates_per_hour``.
        period_minutes: Length of one period in minutes (divides 1440).
        day: Azure day name the rates come from, or ``None`` for synthetic demand.
        start_hour_utc: UTC time of day at which period 0 starts, hours in [0, 24).
    """

    rates_per_hour: np.ndarray  # (T, I) requests/hour per query type, read-only
    query_types: tuple[str, ...]
    period_minutes: int
    day: str | None
    start_hour_utc: float

    def __post_init__(self) -> None:
        rates = np.array(self.rates_per_hour, dtype=np.float64)
        if rates.ndim != 2 or rates.shape[0] == 0 or rates.shape[1] != len(self.query_types):
            raise ValueError(
                f"rates_per_hour has shape {rates.shape}; expected (T >= 1, {len(self.query_types)}) "
                "to match query_types"
            )
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise ValueError("rates_per_hour must be finite and non-negative (requests/hour)")
        if not 0.0 <= self.start_hour_utc < 24.0:
            raise ValueError(f"start_hour_utc={self.start_hour_utc!r} must be in [0, 24) hours")
        rates.flags.writeable = False
        object.__setattr__(self, "rates_per_hour", rates)
        object.__setattr__(self, "query_types", tuple(self.query_types))
        object.__setattr__(self, "period_minutes", check_period_minutes(self.period_minutes))

    @property
    def period_hours(self) -> float:
        """Length of one period in hours."""
        return self.period_minutes / 60.0

    @property
    def num_periods(self) -> int:
        """Number of periods T."""
        return int(self.rates_per_hour.shape[0])


def check_period_minutes(period_minutes: int) -> int:
    """Return ``period_minutes`` as an int if it is a whole number of minutes dividing 1440.

    Raises:
        ValueError: Otherwise; the message names the value and lists :data:`ALLOWED_PERIOD_MINUTES`.
    """
    if (
        isinstance(period_minutes, (int, np.integer))
        and not isinstance(period_minutes, bool)
        and int(period_minutes) in ALLOWED_PERIOD_MINUTES
    ):
        return int(period_minutes)
    raise ValueError(
        f"period_minutes={period_minutes!r} is invalid: it must be a whole number of minutes that divides "
        f"1440 (one day); allowed: {', '.join(map(str, ALLOWED_PERIOD_MINUTES))}"
    )


def azure_demand(
    day: int | str,
    period_minutes: int = 15,
    scale: float = 1.0,
    query_types: pd.DataFrame | None = None,
) -> Demand:
    """Per-period arrival rates of every query type on one Azure day (00:00–24:00 UTC).

    Args:
        day: Index into :data:`~servegym.traces.days.AZURE_DAYS` (0–6) or a day name such as
            ``"2024-05-13-mon"``.
        period_minutes: Period length in minutes; must divide 1440 (e.g. 5, 15, 60).
        scale: Multiplier on all rates (dimensionless, >= 0), e.g. to size a smaller deployment.
        query_types: Query-type table (see :func:`~servegym.traces.query_types.load_query_types`);
            ``None`` uses the shipped table.

    Returns:
        Demand with ``rates_per_hour`` of shape (1440 / period_minutes, number of query types).

    Raises:
        ValueError: Unknown day, invalid period, negative or non-finite scale, or a query type of a
            service absent from the data.
    """
    name = azure_day(day).name
    period_minutes = check_period_minutes(period_minutes)
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"scale={scale!r} must be finite and >= 0")
    table = load_query_types() if query_types is None else query_types
    unknown = sorted(set(table["service"]) - set(SERVICES))
    if unknown:
        raise ValueError(f"query types refer to unknown service(s) {unknown}; allowed: {list(SERVICES)}")
    requests = service_period_requests(name, period_minutes)
    periods_per_hour = 60.0 / period_minutes
    rates = np.column_stack(
        [
            requests[service] * share * periods_per_hour * scale
            for service, share in zip(table["service"], table["share"], strict=True)
        ]
    )
    return Demand(
        rates_per_hour=rates,
        query_types=tuple(table["name"]),
        period_minutes=period_minutes,
        day=name,
        start_hour_utc=0.0,
    )


def service_period_requests(day: int | str, period_minutes: int = 15) -> Mapping[str, np.ndarray]:
    """Requests each service received in each period of an Azure day.

    Returns:
        Per service, a (1440 / period_minutes,) float64 array of request counts per period.
    """
    minutes = day_minute_series(day)
    periods = MINUTES_PER_DAY // check_period_minutes(period_minutes)
    return {
        service: minutes[f"{service}_requests"].to_numpy(dtype=np.float64).reshape(periods, -1).sum(axis=1)
        for service in SERVICES
    }


def day_request_totals(day: int | str) -> dict[str, int]:
    """Total requests per service over one Azure day (the raw per-minute counts summed)."""
    minutes = day_minute_series(day)
    return {service: int(minutes[f"{service}_requests"].sum()) for service in SERVICES}


def day_minute_series(day: int | str) -> pd.DataFrame:
    """The shipped per-minute series of one Azure day.

    Returns:
        1440 rows (``minute_of_day`` 0–1439, 00:00 UTC first) with, per service, ``<service>_requests``,
        ``<service>_context_tokens`` and ``<service>_generated_tokens`` (sums over the minute, int64).
    """
    name = azure_day(day).name
    table = _shipped_day_minutes()
    return table.loc[table["day"] == name, list(DAY_MINUTE_COLUMNS[1:-1])].reset_index(drop=True)


def validation_peak_per_hour() -> np.ndarray:
    """(I,) each query type's busiest hourly rate on the validation day, requests/hour (read-only).

    The ``azure`` scenario's nominal demand is this times its scale, and the environment normalises every Azure
    day by it, so both must come from here.
    """
    peak = azure_demand(VALIDATION_DAY, period_minutes=60).rates_per_hour.max(axis=0)
    peak.setflags(write=False)
    return peak


def mean_daily_profile(
    period_minutes: int = 15,
    days: Sequence[int | str] = TRAIN_DAYS,
    services: Sequence[str] = SERVICES,
) -> np.ndarray:
    """Mean normalised daily load shape of the Azure traces.

    Each (day, service) series of per-period request counts is divided by its own mean, and the results
    are averaged, so every day and service weighs the same whatever its volume. The default uses the
    train days only, so a generator built on it carries no information about the test days.

    Returns:
        (1440 / period_minutes,) float64 multipliers with mean 1; entry t covers the period starting at
        t × period_minutes after 00:00 UTC.
    """
    if not days or not services:
        raise ValueError("mean_daily_profile needs at least one day and one service")
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise ValueError(f"unknown service(s) {unknown}; allowed: {list(SERVICES)}")
    shapes = []
    for day in days:
        requests = service_period_requests(day, period_minutes)
        shapes.extend(requests[service] / requests[service].mean() for service in services)
    return np.mean(shapes, axis=0)


@functools.cache
def _shipped_day_minutes() -> pd.DataFrame:
    resource = resources.files("servegym.traces").joinpath("data", DAY_MINUTES_FILE)
    return parse_day_minutes(Path(str(resource)), resource.read_bytes())


def parse_day_minutes(path: Path, gzip_bytes: bytes) -> pd.DataFrame:
    """Parse and check the shipped per-minute table (gzip CSV bytes read from ``path``).

    Raises:
        TraceFormatError: A column is missing or the rows are not 1440 consecutive minutes for each of
            the seven Azure days in order.
    """
    try:
        text = gzip.decompress(gzip_bytes).decode("utf-8")
        table = pd.read_csv(io.StringIO(text))
    except (OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TraceFormatError(f"{path}: not a readable gzip CSV file ({exc})") from exc
    missing = [column for column in DAY_MINUTE_COLUMNS if column not in table.columns]
    if missing:
        raise TraceFormatError(f"{path}: missing required column(s) {missing}; found {list(table.columns)}")
    expected_days = np.repeat(np.array(AZURE_DAYS, dtype=object), MINUTES_PER_DAY)
    expected_minutes = np.tile(np.arange(MINUTES_PER_DAY), len(AZURE_DAYS))
    if len(table) != len(expected_days) or not (
        np.array_equal(table["day"].to_numpy(dtype=object), expected_days)
        and np.array_equal(table["minute_of_day"].to_numpy(), expected_minutes)
    ):
        raise TraceFormatError(
            f"{path}: rows must be minutes 0–1439 of each Azure day {list(AZURE_DAYS)} in order "
            f"({len(expected_days)} rows); found {len(table)} rows"
        )
    counts = table.loc[:, list(DAY_MINUTE_COLUMNS[2:-1])]
    if not all(pd.api.types.is_integer_dtype(dtype) for dtype in counts.dtypes) or (counts < 0).any().any():
        raise TraceFormatError(f"{path}: request and token counts must be non-negative integers")
    return table
