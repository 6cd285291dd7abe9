"""Arrival traces from any CSV file: per-request rows or per-interval counts, read into a minute timeline.

:func:`load_trace` reads two kinds of file (detected from the header, or set with ``format=``):

* **requests**: one row per request with a time column and, optionally, prompt and output token columns and a
  service (or class) column. The Azure 2023 traces (``TIMESTAMP, ContextTokens, GeneratedTokens``) and
  BurstGPT (``Timestamp, Model, Request tokens, Response tokens, …``) are two examples.
* **counts**: one row per interval with a time column and one or more count columns: the Azure 2024
  per-minute file (``minute, code_requests, …, conv_requests, …``) or a plain ``timestamp,requests`` file.

Lines starting with ``#`` are skipped anywhere in the file; ``.gz`` files are decompressed. Every error names
the file, the line, the field and the value (:class:`~servegym.traces.azure.TraceFormatError`).

**Time.** A time column holds ISO timestamps (offsets converted to UTC), epoch seconds or milliseconds, seconds
since the trace start (BurstGPT) or a minute index; :data:`TIME_UNITS` names them and ``time_unit=`` overrides
the detection rule: a column named like ``minute`` is a minute index; other numbers are epoch milliseconds
above 10¹², epoch seconds above 10⁹, and seconds since the start otherwise. The trace's *timeline* starts at
00:00 UTC of the first timestamp's date (day 0); relative times put 0 at 00:00 of day 0, and their calendar
starts on ``start_date`` (Monday 2024-01-01 unless told otherwise).

**Coverage.** Per-request traces cover the minutes from the first request's minute to the last request's
minute inclusive, each edge moved to a clock hour within :data:`EDGE_SNAP_MINUTES` of it; count traces cover
their intervals (the spacing of the times, which must be constant and a whole number of minutes; a count is
spread evenly over its interval's minutes). Only periods inside the coverage are played; a *full day* is a
timeline day whose 1,440 minutes are all covered.

**Streams.** A per-request trace with token columns is split into query types the way the Azure ones are
(service × prompt-length class, :func:`~servegym.traces.query_types.derive_query_types`); without tokens, and
for count traces, the streams are its services (the count columns, ``<service>_requests`` or one column).
A trace without a service column has one service, ``service_name`` (default ``trace``).

**Split and reference window.** With two or more full days the last ⌈n/4⌉ full days are the test split and
the others the train split (chronological hold-out, as forecasting benchmarks do; the Azure week holds out 2 of
7). The *reference window* (the train days, or the whole coverage with fewer than two full days) is what query
types and nominal peaks are computed on, so nothing about the test days leaks into an instance built from it.
"""

from __future__ import annotations

import datetime
import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from servegym.traces.azure import (
    TraceFormatError,
    _parse_counts,
    _parse_non_negative_floats,
    _parse_timestamps,
    _read_csv_as_text,
    _read_text,
    _require_non_decreasing,
    _row_label,
)
from servegym.traces.days import MINUTES_PER_DAY
from servegym.traces.demand import check_period_minutes
from servegym.traces.query_types import derive_query_types

TRACE_FORMATS = ("requests", "counts")
"""``requests``: one row per request; ``counts``: one row per interval with request counts."""

TIME_UNITS = ("iso", "epoch-s", "epoch-ms", "s", "min")
"""ISO timestamps, epoch seconds, epoch milliseconds, seconds since the trace start, minute index."""

STREAM_KINDS = ("query-types", "services")
"""What a trace's streams are: derived query types (requests with tokens) or services."""

EDGE_SNAP_MINUTES = 5
"""A per-request trace whose first (last) request lies within this many minutes after (before) a clock hour is
taken to start (end) on that hour."""

DEFAULT_START_DATE = datetime.date(2024, 1, 1)
"""Calendar date of day 0 for traces with relative times (a Monday)."""

TIME_COLUMNS = ("timestamp", "time", "ts", "arrival_time", "arrival_timestamp", "datetime", "date", "start_time")
MINUTE_COLUMNS = ("minute", "minutes", "minute_index", "minute_of_trace")
PROMPT_COLUMNS = (
    "contexttokens",
    "prompt_tokens",
    "input_tokens",
    "request tokens",
    "context_tokens",
    "prompt_len",
    "input_length",
    "num_prompt_tokens",
)
OUTPUT_COLUMNS = (
    "generatedtokens",
    "output_tokens",
    "completion_tokens",
    "response tokens",
    "generated_tokens",
    "output_len",
    "output_length",
    "num_output_tokens",
)
SERVICE_COLUMNS = ("service", "class", "query_type", "type", "model", "endpoint")
"""Column names (case-insensitive) each role is detected from, in order of preference."""

CODE_SERVICES = re.compile(r"code|coder|coding|completion", re.IGNORECASE)
"""Services whose query types take task family ``code`` (the rest take ``general``)."""

_IGNORED_COLUMNS = re.compile(r"(?i).*(\bid|_id|index)|total[ _]tokens|unnamed: \d+")
"""Numeric columns that do not make a per-request file ambiguous: identifiers, row indices, token totals."""
_COUNT_SUFFIX = "_requests"
_COUNT_NAMES = ("requests", "count", "counts", "arrivals", "num_requests", "request_count")


class TraceOptionError(TraceFormatError):
    """An invalid trace option (unknown format, time unit or column)."""


@dataclass(frozen=True)
class TraceOptions:
    """How to read a trace file; ``None`` fields are detected from the header and the values.

    Attributes:
        format: ``requests`` or ``counts`` (:data:`TRACE_FORMATS`).
        time_column: Name of the time column.
        time_unit: One of :data:`TIME_UNITS`.
        prompt_column: Prompt-token column of a per-request trace (``""``: none, even if one is detected).
        output_column: Output-token column of a per-request trace (``""``: none).
        service_column: Service or class column of a per-request trace (``""``: none).
        count_columns: Count columns of a counts trace; their names (minus a ``_requests`` suffix) are the
            services.
        service_name: The one service of a trace without a service column.
        start_date: Calendar date of day 0 for relative times (default :data:`DEFAULT_START_DATE`).
    """

    format: str | None = None
    time_column: str | None = None
    time_unit: str | None = None
    prompt_column: str | None = None
    output_column: str | None = None
    service_column: str | None = None
    count_columns: tuple[str, ...] | None = None
    service_name: str = "trace"
    start_date: datetime.date | None = None

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in TRACE_FORMATS:
            raise TraceOptionError(f"trace option format={self.format!r} not one of {list(TRACE_FORMATS)}")
        if self.time_unit is not None and self.time_unit not in TIME_UNITS:
            raise TraceOptionError(f"trace option time_unit={self.time_unit!r} not one of {list(TIME_UNITS)}")
        if not self.service_name or "-" in self.service_name:
            raise TraceOptionError(
                f"trace option service_name={self.service_name!r} must be a non-empty name without '-'"
            )
        if self.count_columns is not None:
            object.__setattr__(self, "count_columns", tuple(self.count_columns))
            if not self.count_columns:
                raise TraceOptionError("trace option count_columns is empty; name at least one column")
        if isinstance(self.start_date, str):
            try:
                object.__setattr__(self, "start_date", datetime.date.fromisoformat(self.start_date))
            except ValueError:
                raise TraceOptionError(
                    f"trace option start_date={self.start_date!r} is not an ISO date (YYYY-MM-DD)"
                ) from None


@dataclass(frozen=True, eq=False)
class Trace:
    """A trace read into a minute timeline.

    Attributes:
        path: The file read.
        format: ``requests`` or ``counts``.
        columns: The column used for each role (``time``, ``prompt``, ``output``, ``service``, ``counts``).
        time_unit: How the time column was read (:data:`TIME_UNITS`).
        kind: ``query-types`` or ``services`` (:data:`STREAM_KINDS`).
        streams: Stream names: query-type names (``<service>-<class>``) or service names.
        stream_services: (K,) the service of each stream.
        minute_counts: (M, K) requests of each stream in each timeline minute (minute 0 = 00:00 of day 0);
            read-only float64.
        covered: [first, end) covered timeline minutes.
        day0: Calendar date of day 0.
        relative_time: Whether the times were relative (their calendar is a convention, ``start_date``).
        query_types: Derived query-type table (columns of
            :data:`~servegym.traces.query_types.QUERY_TYPE_COLUMNS`, rows in stream order) when ``kind`` is
            ``query-types``, else ``None``.
        requests: Requests in the file.
    """

    path: Path
    format: str
    columns: Mapping[str, str | tuple[str, ...]]
    time_unit: str
    kind: str
    streams: tuple[str, ...]
    stream_services: tuple[str, ...]
    minute_counts: np.ndarray = field(repr=False)
    covered: tuple[int, int]
    day0: datetime.date
    relative_time: bool
    query_types: pd.DataFrame | None = field(repr=False)
    requests: float

    @property
    def services(self) -> tuple[str, ...]:
        """Distinct services, in stream order."""
        return tuple(dict.fromkeys(self.stream_services))

    @property
    def full_days(self) -> tuple[int, ...]:
        """Timeline days whose 1,440 minutes are all covered."""
        return full_days(self.covered)

    def split_days(self, split: str) -> tuple[int, ...]:
        """Full days of ``split`` (one of :data:`SPLITS`; see :func:`split_days`).

        Raises:
            TraceFormatError: ``train``/``test``/``validation`` on a trace with fewer than two full days.
        """
        if split in SPLITS[1:] and len(self.full_days) < 2:
            raise TraceFormatError(
                f"{self.path}: split={split!r} needs at least two full days (00:00–24:00 covered); the trace has "
                f"{len(self.full_days)} ({self.span_text()}); play it whole with split=all"
            )
        return split_days(self.covered, split)

    def reference_minutes(self) -> tuple[int, int]:
        """[first, end) minutes of the reference window (module docstring)."""
        return reference_window(self.covered)

    def playable_periods(self, period_minutes: int) -> tuple[int, int]:
        """[first, end) timeline periods of ``period_minutes`` inside the coverage (period 0 starts at 00:00 of
        day 0)."""
        period_minutes = check_period_minutes(period_minutes)
        first, end = self.covered
        return -(-first // period_minutes), end // period_minutes

    def period_rates(
        self, period_minutes: int, first_period: int, num_periods: int, combine: np.ndarray | None = None
    ) -> np.ndarray:
        """(num_periods, K) arrival rate of each stream in timeline periods ``first_period`` on, requests/hour.

        ``combine`` (K, G) sums streams into G groups first (e.g. query types into services); the result is then
        (num_periods, G).
        """
        start = first_period * period_minutes
        counts = self._counts(combine)[start : start + num_periods * period_minutes]
        return counts.reshape(num_periods, period_minutes, -1).sum(axis=1) * (60.0 / period_minutes)

    def peak_per_hour(self, combine: np.ndarray | None = None) -> np.ndarray:
        """(K,) each stream's (or each ``combine`` group's) busiest clock hour in the reference window,
        requests/hour; a stream with no requests there uses its busiest hour of the whole coverage. A window
        without a whole clock hour uses its mean rate instead."""
        counts = self._counts(combine)
        peak = _busiest_hour(counts, self.reference_minutes())
        return np.where(peak > 0, peak, _busiest_hour(counts, self.covered))

    def _counts(self, combine: np.ndarray | None) -> np.ndarray:
        return self.minute_counts if combine is None else self.minute_counts @ combine

    def weekday(self, day: int) -> int:
        """Day of week of timeline day ``day`` (Monday = 0)."""
        return (self.day0 + datetime.timedelta(days=int(day))).weekday()

    def day_name(self, day: int) -> str:
        """Name of timeline day ``day``: ``<date>-<weekday>``, e.g. ``2024-05-12-sun``."""
        date = self.day0 + datetime.timedelta(days=int(day))
        return f"{date.isoformat()}-{date.strftime('%a').lower()}"

    def span_text(self) -> str:
        """The coverage as text, e.g. ``2023-11-16 18:17 to 19:15 UTC (58 min)``."""
        first, end = self.covered
        midnight = datetime.datetime.combine(self.day0, datetime.time())
        start = midnight + datetime.timedelta(minutes=first)
        stop = midnight + datetime.timedelta(minutes=end)
        minutes = end - first
        length = f"{minutes / MINUTES_PER_DAY:.3g} days" if minutes >= MINUTES_PER_DAY else f"{minutes} min"
        until = f"{stop:%H:%M}" if start.date() == stop.date() else f"{stop:%Y-%m-%d %H:%M}"
        zone = "" if self.relative_time else " UTC"
        return f"{start:%Y-%m-%d %H:%M} to {until}{zone} ({length})"


def _busiest_hour(counts: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """(K,) the most requests of any whole clock hour inside ``window`` [first, end) minutes, per hour; the mean
    rate per hour if the window holds no whole clock hour."""
    first, end = window
    hours = range(-(-first // 60), end // 60)
    if not hours:
        return counts[first:end].sum(axis=0) * 60.0 / max(end - first, 1)
    hourly = counts[hours[0] * 60 : (hours[-1] + 1) * 60]
    return hourly.reshape(len(hours), 60, -1).sum(axis=1).max(axis=0)


SPLITS = ("all", "train", "test", "validation")
"""Trace splits: every full day, the chronological train/test hold-out of the module docstring, and the last
train day as the validation day (set aside from the train days for model selection, as the Azure Wednesday)."""


def full_days(covered: tuple[int, int]) -> tuple[int, ...]:
    """Timeline days whose 1,440 minutes all lie in the covered minutes [first, end)."""
    first, end = covered
    return tuple(range(-(-first // MINUTES_PER_DAY), end // MINUTES_PER_DAY))


def split_days(covered: tuple[int, int], split: str) -> tuple[int, ...]:
    """Full days of ``split``: all, or with two or more full days the last ⌈n/4⌉ (test), the rest (train) and the
    last train day (validation).

    Raises:
        TraceOptionError: ``split`` is not one of :data:`SPLITS`, or ``train``/``test`` with fewer than two full
            days.
    """
    days = full_days(covered)
    if split not in SPLITS:
        raise TraceOptionError(f"trace split={split!r} not one of {list(SPLITS)}")
    if split == "all":
        return days
    if len(days) < 2:
        raise TraceOptionError(f"trace split={split!r} needs at least two full days; the trace has {len(days)}")
    test = math.ceil(len(days) / 4)
    if split == "validation":
        return (days[-test - 1],)
    return days[-test:] if split == "test" else days[:-test]


def reference_window(covered: tuple[int, int]) -> tuple[int, int]:
    """[first, end) minutes of the reference window: the train days if there are two or more full days (they are
    consecutive), else the covered minutes."""
    if len(full_days(covered)) >= 2:
        train = split_days(covered, "train")
        return train[0] * MINUTES_PER_DAY, (train[-1] + 1) * MINUTES_PER_DAY
    return covered


def load_trace(path: str | Path, options: TraceOptions | None = None) -> Trace:
    """Read and validate a trace file (see the module docstring).

    Cached by (resolved path, modification time, size, options), so environments that re-read a source at each
    reset parse the file once.

    Raises:
        TraceFormatError: The file is missing, empty, not CSV, has no usable time or count column, or a value
            is malformed; the message names the file, line, field and value.
    """
    path = Path(path)
    options = options or TraceOptions()
    if not path.is_file():
        raise TraceFormatError(f"{path}: file not found")
    stat = path.stat()
    return _load_trace_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, options, str(path))


@functools.lru_cache(maxsize=8)
def _load_trace_cached(resolved: str, mtime_ns: int, size: int, options: TraceOptions, shown: str) -> Trace:
    del resolved, mtime_ns, size  # cache key only
    path = Path(shown)
    raw, lines = _read_data_rows(path)
    fmt = options.format or _detect_format(path, raw, options)
    if fmt == "requests":
        return _requests_trace(path, raw, lines, options)
    return _counts_trace(path, raw, lines, options)


def _read_data_rows(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """String columns of the file's data rows and each row's 1-based file line (``#`` lines skipped)."""
    text = _read_text(path)
    all_lines = text.splitlines()
    kept = [k for k, line in enumerate(all_lines) if line.strip() and not line.lstrip().startswith("#")]
    if not kept:
        raise TraceFormatError(f"{path}: file has only comment or blank lines")
    frame = _read_csv_as_text(path, "\n".join(all_lines[k] for k in kept), header_line=kept[0] + 1)
    return frame, np.asarray(kept[1:], dtype=np.int64) + 1


def _find(columns: Sequence[str], names: Sequence[str]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    return next((lowered[name] for name in names if name in lowered), None)


def _require_column(path: Path, raw: pd.DataFrame, name: str, option: str) -> str:
    if name not in raw.columns:
        raise TraceOptionError(f"{path}: trace option {option}={name!r} is not a column; columns: {list(raw.columns)}")
    return name


def _count_columns(raw: pd.DataFrame) -> list[str]:
    suffixed = [c for c in raw.columns if c.lower().endswith(_COUNT_SUFFIX)]
    return suffixed or [c for c in raw.columns if c.lower() in _COUNT_NAMES]


def _detect_format(path: Path, raw: pd.DataFrame, options: TraceOptions) -> str:
    """``counts`` if the file has count columns (or a minute index), ``requests`` if it has a time column."""
    if options.count_columns or _count_columns(raw) or _find(raw.columns, MINUTE_COLUMNS):
        return "counts"
    time_column = options.time_column or _find(raw.columns, TIME_COLUMNS)
    if time_column:
        known = {
            time_column,
            *(_find(raw.columns, names) for names in (PROMPT_COLUMNS, OUTPUT_COLUMNS, SERVICE_COLUMNS)),
        }
        numeric = [
            c
            for c in raw.columns
            if c not in known
            and not _IGNORED_COLUMNS.fullmatch(c)
            and pd.to_numeric(raw[c].str.strip(), errors="coerce").notna().all()
        ]
        if numeric:
            raise TraceFormatError(
                f"{path}: cannot tell the format: numeric column(s) {numeric} are neither token nor count columns "
                "this reader knows; for one row per request pass format=requests, for per-interval counts "
                "format=counts&time=COLUMN&counts=COLUMN[+COLUMN...]"
            )
        return "requests"
    raise TraceFormatError(
        f"{path}: unknown trace format: no time column (one of {list(TIME_COLUMNS + MINUTE_COLUMNS)}, any case) "
        f"and no count column (<service>_requests or one of {list(_COUNT_NAMES)}); found columns "
        f"{list(raw.columns)}; name them with the trace options time=, counts=, format="
    )


def _time_column(path: Path, raw: pd.DataFrame, options: TraceOptions) -> str:
    if options.time_column:
        return _require_column(path, raw, options.time_column, "time")
    name = _find(raw.columns, MINUTE_COLUMNS + TIME_COLUMNS)
    if name is None:
        raise TraceFormatError(
            f"{path}: no time column (one of {list(MINUTE_COLUMNS + TIME_COLUMNS)}, any case); found columns "
            f"{list(raw.columns)}; name it with the trace option time=COLUMN"
        )
    return name


def _parse_times(
    path: Path, raw: pd.DataFrame, column: str, lines: np.ndarray, options: TraceOptions
) -> tuple[np.ndarray, datetime.date, str, bool]:
    """Timeline minutes (float) of each row, day 0's date, the time unit read and whether times are relative."""
    text = raw[column].str.strip()
    unit = options.time_unit
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    if unit is None:
        if np.isnan(numbers).all():
            unit = "iso"
        elif column.lower() in MINUTE_COLUMNS:
            unit = "min"
        else:
            finite = numbers[np.isfinite(numbers)]
            level = float(np.median(finite)) if finite.size else 0.0
            unit = "epoch-ms" if level > 1e12 else "epoch-s" if level > 1e9 else "s"
    if unit == "iso":
        stamps = _parse_timestamps(path, text, column, lines)
        _require_non_decreasing(path, stamps, column, lines)
        day0 = stamps.iloc[0].date()
        origin = pd.Timestamp(day0)
        minutes = (stamps - origin).dt.total_seconds().to_numpy() / 60.0
        return minutes, day0, unit, False
    bad = np.flatnonzero(~np.isfinite(numbers) | (numbers < 0))
    if bad.size:
        row = int(bad[0])
        raise TraceFormatError(
            f"{path}: {_row_label(row, lines)}, field '{column}': value {text.iloc[row]!r} is not a time "
            f"({_UNIT_TEXT[unit]}: a finite number >= 0)"
        )
    _require_non_decreasing(path, pd.Series(numbers), column, lines)
    if unit in ("epoch-s", "epoch-ms"):
        seconds = numbers / (1000.0 if unit == "epoch-ms" else 1.0)
        day0 = datetime.datetime.fromtimestamp(seconds[0], tz=datetime.timezone.utc).date()
        origin = datetime.datetime.combine(day0, datetime.time(), tzinfo=datetime.timezone.utc).timestamp()
        return (seconds - origin) / 60.0, day0, unit, False
    minutes = numbers if unit == "min" else numbers / 60.0
    return minutes, options.start_date or DEFAULT_START_DATE, unit, True


_UNIT_TEXT = {
    "epoch-s": "epoch seconds",
    "epoch-ms": "epoch milliseconds",
    "s": "seconds since the trace start",
    "min": "minute index",
}


def _optional_column(raw: pd.DataFrame, given: str | None, names: Sequence[str], path: Path, option: str) -> str | None:
    if given == "":
        return None
    if given is not None:
        return _require_column(path, raw, given, option)
    return _find(raw.columns, names)


def _requests_trace(path: Path, raw: pd.DataFrame, lines: np.ndarray, options: TraceOptions) -> Trace:
    time_column = _time_column(path, raw, options)
    minutes, day0, unit, relative = _parse_times(path, raw, time_column, lines, options)
    prompt_column = _optional_column(raw, options.prompt_column, PROMPT_COLUMNS, path, "prompt")
    output_column = _optional_column(raw, options.output_column, OUTPUT_COLUMNS, path, "output")
    service_column = _optional_column(raw, options.service_column, SERVICE_COLUMNS, path, "service")
    if (prompt_column is None) != (output_column is None):
        found, missing = ("prompt", "output") if output_column is None else ("output", "prompt")
        raise TraceFormatError(
            f"{path}: has a {found}-token column but no {missing}-token column (one of "
            f"{list(OUTPUT_COLUMNS if missing == 'output' else PROMPT_COLUMNS)}, any case); name it with the trace "
            f"option {missing}=COLUMN, or ignore tokens with {found}= (empty)"
        )
    if service_column is None:
        services = np.full(len(raw), options.service_name, dtype=object)
    else:
        services = raw[service_column].str.strip().to_numpy(dtype=object)
        empty = np.flatnonzero(services == "")
        if empty.size:
            row = int(empty[0])
            raise TraceFormatError(f"{path}: {_row_label(row, lines)}, field '{service_column}': empty service")
        services = np.array([_service_name(s) for s in services], dtype=object)
    minute_index = np.floor(minutes).astype(np.int64)
    covered = _snap_to_hours(int(minute_index[0]), int(minute_index[-1]) + 1)
    columns: dict[str, str | tuple[str, ...]] = {"time": time_column}
    if service_column is not None:
        columns["service"] = service_column
    service_names = tuple(dict.fromkeys(services))
    query_types = None
    if prompt_column is not None and output_column is not None:
        columns |= {"prompt": prompt_column, "output": output_column}
        prompt = _parse_counts(path, raw[prompt_column], prompt_column, lines)
        output = _parse_counts(path, raw[output_column], output_column, lines)
        stream, query_types = _classify(minute_index, services, prompt, output, service_names, covered, path)
        names = tuple(query_types["name"])
        stream_services = tuple(query_types["service"])
        kind = "query-types"
    else:
        order = {name: k for k, name in enumerate(service_names)}
        stream = np.array([order[s] for s in services], dtype=np.int64)
        names = stream_services = service_names
        kind = "services"
    counts = np.zeros((covered[1], len(names)))
    np.add.at(counts, (minute_index, stream), 1.0)
    counts.setflags(write=False)
    return Trace(
        path=path,
        format="requests",
        columns=columns,
        time_unit=unit,
        kind=kind,
        streams=names,
        stream_services=stream_services,
        minute_counts=counts,
        covered=covered,
        day0=day0,
        relative_time=relative,
        query_types=query_types,
        requests=float(len(raw)),
    )


def _snap_to_hours(first: int, end: int) -> tuple[int, int]:
    """[first, end) covered minutes of a per-request trace, each edge moved to the clock hour it lies within
    :data:`EDGE_SNAP_MINUTES` of (arrivals leave gaps of a few minutes at the edges at low rates)."""
    start_hour, end_hour = (first // 60) * 60, -(-end // 60) * 60
    first = start_hour if first - start_hour <= EDGE_SNAP_MINUTES else first
    end = end_hour if end_hour - end <= EDGE_SNAP_MINUTES else end
    return first, end


def _service_name(value: str) -> str:
    """A service value as a name usable in query-type names: ``-`` and spaces become ``_``."""
    return re.sub(r"[\s\-]+", "_", value)


def _classify(
    minute_index: np.ndarray,
    services: np.ndarray,
    prompt: np.ndarray,
    output: np.ndarray,
    service_names: tuple[str, ...],
    covered: tuple[int, int],
    path: Path,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Query types derived on the reference window and the stream (type) index of every request."""
    first, end = reference_window(covered)
    in_window = (minute_index >= first) & (minute_index < end)
    if any(not np.any(in_window & (services == s)) for s in service_names):
        in_window = np.ones_like(in_window)  # a service absent from the train days: derive on the whole trace
    tables = {}
    for service in service_names:
        mask = in_window & (services == service)
        tables[service] = pd.DataFrame({"prompt_tokens": prompt[mask], "output_tokens": output[mask]})
    families = {s: "code" if CODE_SERVICES.search(s) else "general" for s in service_names}
    source = f"derived from {path.name} (servegym.traces.user_trace, reference window minutes {first}–{end})"
    table = derive_query_types(tables, dict.fromkeys(service_names, source), task_families=families)
    stream = np.zeros(len(prompt), dtype=np.int64)
    for k, row in enumerate(table.itertuples(index=False)):
        upper = np.inf if pd.isna(row.prompt_max_tokens) else row.prompt_max_tokens
        member = (services == row.service) & (prompt >= row.prompt_min_tokens) & (prompt <= upper)
        stream[member] = k
    return stream, table


def _counts_trace(path: Path, raw: pd.DataFrame, lines: np.ndarray, options: TraceOptions) -> Trace:
    time_column = _time_column(path, raw, options)
    if options.count_columns:
        count_columns = [_require_column(path, raw, c, "counts") for c in options.count_columns]
    else:
        count_columns = _count_columns(raw)
        if not count_columns:
            others = [c for c in raw.columns if c != time_column]
            if len(others) != 1:
                raise TraceFormatError(
                    f"{path}: no count column (<service>_requests or one of {list(_COUNT_NAMES)}, any case) among "
                    f"{others}; name them with the trace option counts=COL1+COL2"
                )
            count_columns = others
    minutes, day0, unit, relative = _parse_times(path, raw, time_column, lines, options)
    if len(minutes) > 1 and np.any(np.diff(minutes) == 0):
        _require_non_decreasing(path, pd.Series(minutes), time_column, lines, strict=True)
    start = np.round(minutes).astype(np.int64)
    off_grid = np.flatnonzero(np.abs(minutes - start) > 1e-6)
    if off_grid.size:
        row = int(off_grid[0])
        raise TraceFormatError(
            f"{path}: {_row_label(row, lines)}, field '{time_column}': value {raw[time_column].iloc[row]!r} is not "
            "on a whole minute; count intervals must start on whole minutes (use a per-request file otherwise)"
        )
    steps = np.diff(start)
    interval = int(steps[0]) if steps.size else 1
    irregular = np.flatnonzero(steps != interval)
    if irregular.size:
        row = int(irregular[0]) + 1
        raise TraceFormatError(
            f"{path}: {_row_label(row, lines)}, field '{time_column}': interval of {int(steps[row - 1])} min after "
            f"{_row_label(row - 1, lines)}, but the first interval is {interval} min; count rows must be evenly "
            "spaced with no gaps (fill missing intervals with 0)"
        )
    values = np.column_stack([_parse_non_negative_floats(path, raw[c], c, lines, counts=True) for c in count_columns])
    services = tuple(
        _service_name(c[: -len(_COUNT_SUFFIX)])
        if c.lower().endswith(_COUNT_SUFFIX) and len(c) > len(_COUNT_SUFFIX)
        else (options.service_name if len(count_columns) == 1 else _service_name(c))
        for c in count_columns
    )
    if len(set(services)) != len(services):
        raise TraceFormatError(f"{path}: count columns {count_columns} give repeated service names {list(services)}")
    covered = (int(start[0]), int(start[-1]) + interval)
    counts = np.zeros((covered[1], len(services)))
    spread = np.repeat(values / interval, interval, axis=0)
    counts[covered[0] :] = spread
    counts.setflags(write=False)
    return Trace(
        path=path,
        format="counts",
        columns={"time": time_column, "counts": tuple(count_columns)},
        time_unit=unit,
        kind="services",
        streams=services,
        stream_services=services,
        minute_counts=counts,
        covered=covered,
        day0=day0,
        relative_time=relative,
        query_types=None,
        requests=float(values.sum()),
    )


def parse_trace_spec(spec: str) -> tuple[Path, dict[str, str]]:
    """Split ``PATH[?key=value&key=value]`` into the path and the options (a path that exists as written, even
    with a ``?`` in it, is taken whole)."""
    if "?" not in spec or os.path.exists(spec):
        return Path(spec), {}
    path, _, query = spec.partition("?")
    options: dict[str, str] = {}
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise TraceOptionError(f"trace option {part!r} in {spec!r} must be key=value")
        if key.strip() in options:
            raise TraceOptionError(f"trace option {key.strip()!r} given twice in {spec!r}")
        options[key.strip()] = value.strip()
    return Path(path), options


READ_OPTION_KEYS = {
    "format": "format",
    "time": "time_column",
    "time_unit": "time_unit",
    "prompt": "prompt_column",
    "output": "output_column",
    "service": "service_column",
    "counts": "count_columns",
    "service_name": "service_name",
    "start_date": "start_date",
}
"""Spec keys of :class:`TraceOptions` fields (``counts`` takes ``COL1+COL2``)."""


def trace_option_items(options: TraceOptions) -> list[tuple[str, str]]:
    """The spec keys and values of ``options``' non-default fields (the inverse of :func:`trace_options`)."""
    default = TraceOptions()
    items = []
    for key, name in READ_OPTION_KEYS.items():
        value = getattr(options, name)
        if value != getattr(default, name):
            items.append((key, "+".join(value) if isinstance(value, tuple) else str(value)))
    return items


def trace_options(values: Mapping[str, str]) -> TraceOptions:
    """:class:`TraceOptions` from spec keys (:data:`READ_OPTION_KEYS`); other keys raise."""
    unknown = sorted(set(values) - set(READ_OPTION_KEYS))
    if unknown:
        raise TraceOptionError(f"trace option(s) {unknown} not one of {sorted(READ_OPTION_KEYS)}")
    kwargs: dict[str, object] = {READ_OPTION_KEYS[k]: v for k, v in values.items()}
    if "count_columns" in kwargs:
        kwargs["count_columns"] = tuple(c for c in str(kwargs["count_columns"]).split("+") if c)
    return TraceOptions(**kwargs)  # type: ignore[arg-type]
