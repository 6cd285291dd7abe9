"""Loaders for the raw Azure LLM inference traces (Microsoft Azure Public Dataset, CC-BY 4.0).

Two formats are read:

* the 2023 per-request traces ``AzureLLMInferenceTrace_{code,conv}.csv`` (Patel et al., Splitwise,
  ISCA 2024): one request per row, columns ``TIMESTAMP``, ``ContextTokens``, ``GeneratedTokens``;
* the per-minute totals of the 2024 week-long traces ``azure2024-llm-minutes.csv`` (Stojkovic et al.,
  DynamoLLM, HPCA 2025): ``#`` comment lines, then ``minute`` and, per service ``code``/``conv``, the
  request count and the context/generated token sums of that minute.

Both loaders validate the whole file and raise :class:`TraceFormatError` with a message naming the file,
the 1-based data row (header and comment lines not counted), the field and the offending value.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from servegym.errors import ServegymError

REQUEST_COLUMNS: tuple[str, ...] = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
"""Columns of the 2023 per-request traces."""

SERVICES: tuple[str, ...] = ("code", "conv")
"""Azure services in the traces: code completion and conversation."""

MINUTE_COUNT_FIELDS: tuple[str, ...] = ("requests", "context_tokens", "generated_tokens")
"""Per-service quantities of the per-minute file; columns are ``<service>_<field>``."""

MINUTE_COLUMNS: tuple[str, ...] = (
    "minute",
    *(f"{service}_{field}" for service in SERVICES for field in MINUTE_COUNT_FIELDS),
)
"""Columns of ``azure2024-llm-minutes.csv`` in file order."""


MAX_COUNT = 2**53 - 1
"""Largest token or request count a trace value may hold, and the largest total of a count column: integers up to
it are exact in float64 (the values are parsed as float64), and any sum of a few such totals fits in int64."""


class TraceFormatError(ServegymError, ValueError):
    """A trace or processed-data file is missing, empty or malformed.

    The message names the file and, for a bad value, the 1-based data row, the field and the value.
    """


def load_request_trace(path: str | Path) -> pd.DataFrame:
    """Load and validate a 2023 per-request Azure trace.

    Args:
        path: CSV with columns ``TIMESTAMP`` (e.g. ``2023-11-16 18:17:03.9799600``), ``ContextTokens``
            and ``GeneratedTokens`` (non-negative integers). Extra columns are ignored.

    Returns:
        One row per request with columns ``timestamp`` (datetime64, as written in the file, UTC),
        ``prompt_tokens`` (int64, prompt/context tokens) and ``output_tokens`` (int64, generated tokens).

    Raises:
        TraceFormatError: The file is missing or empty, a column is missing, a value is not a
            non-negative integer or not a timestamp, or a timestamp is earlier than the one before it
            (equal timestamps are allowed: distinct requests may share a clock tick).
    """
    path = Path(path)
    raw = _read_csv_as_text(path, _read_text(path))
    _require_columns(path, raw, REQUEST_COLUMNS)
    timestamps = _parse_timestamps(path, raw["TIMESTAMP"], "TIMESTAMP")
    _require_non_decreasing(path, timestamps, "TIMESTAMP")
    return pd.DataFrame(
        {
            "timestamp": timestamps,
            "prompt_tokens": _parse_counts(path, raw["ContextTokens"], "ContextTokens"),
            "output_tokens": _parse_counts(path, raw["GeneratedTokens"], "GeneratedTokens"),
        }
    )


def load_minute_trace(path: str | Path) -> pd.DataFrame:
    """Load and validate the per-minute totals of the 2024 week-long Azure traces.

    Args:
        path: CSV whose leading lines may be ``#`` comments, then a header with at least the columns of
            :data:`MINUTE_COLUMNS`. ``minute`` counts minutes since 00:00 UTC of each service's first
            day; the other columns are per-minute request counts and token sums.

    Returns:
        The columns of :data:`MINUTE_COLUMNS`, all int64, one row per minute.

    Raises:
        TraceFormatError: The file is missing or has no data rows, a column is missing, a value is not a
            non-negative integer, or ``minute`` does not run 0, 1, 2, ... without gaps or repeats.
    """
    path = Path(path)
    lines = _read_text(path).splitlines(keepends=True)
    comment_lines = 0
    while comment_lines < len(lines) and lines[comment_lines].lstrip().startswith("#"):
        comment_lines += 1
    raw = _read_csv_as_text(path, "".join(lines[comment_lines:]))
    _require_columns(path, raw, MINUTE_COLUMNS)
    table = pd.DataFrame({column: _parse_counts(path, raw[column], column) for column in MINUTE_COLUMNS})
    minutes = table["minute"].to_numpy()
    expected = np.arange(len(minutes), dtype=np.int64)
    bad = np.flatnonzero(minutes != expected)
    if bad.size:
        row = int(bad[0])
        after = f" after minute {minutes[row - 1]} in data row {row}" if row else " as the first minute"
        raise TraceFormatError(
            f"{path}: data row {row + 1}, field 'minute': value {minutes[row]}{after}; "
            f"minutes must run 0, 1, 2, ... consecutively (expected {expected[row]})"
        )
    return table


def _read_text(path: Path) -> str:
    """Return the file's text (gunzipped when the name ends in ``.gz``), rejecting a missing, unreadable or empty
    file."""
    if not path.is_file():
        raise TraceFormatError(f"{path}: file not found")
    try:
        if path.suffix == ".gz":
            text = gzip.decompress(path.read_bytes()).decode("utf-8-sig")
        else:
            text = path.read_text(encoding="utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"{path}: cannot read as UTF-8 text ({exc})") from exc
    if not text.strip():
        raise TraceFormatError(f"{path}: file is empty")
    return text


def _read_csv_as_text(path: Path, text: str, header_line: int | None = None) -> pd.DataFrame:
    """Parse CSV text into string columns (no type inference, header names stripped), rejecting a header-only
    file; ``header_line`` (1-based file line of the header), when known, is named in that error."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TraceFormatError(f"{path}: not a well-formed CSV file ({exc})") from exc
    frame.columns = [str(column).strip() for column in frame.columns]
    if frame.empty:
        where = f" (line {header_line})" if header_line is not None else ""
        raise TraceFormatError(f"{path}: file has a header{where} but no data rows")
    return frame


def _require_columns(path: Path, frame: pd.DataFrame, required: Sequence[str]) -> None:
    """Raise naming the missing columns and the columns found."""
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise TraceFormatError(
            f"{path}: missing required column(s) {missing}; found columns {list(frame.columns)}; "
            f"required: {list(required)}"
        )


def _row_label(row: int, lines: np.ndarray | None) -> str:
    """Where data row ``row`` (0-based) is: its file line when ``lines`` maps rows to lines, else its data row."""
    return f"line {int(lines[row])}" if lines is not None else f"data row {row + 1}"


def _parse_counts(path: Path, values: pd.Series, field: str, lines: np.ndarray | None = None) -> np.ndarray:
    """Parse a column of non-negative integers (token or request counts) into int64.

    ``lines`` (optional) maps each data row to its 1-based file line, so messages name the line. Values and the
    column's total are bounded by :data:`MAX_COUNT`.
    """
    text = values.str.strip()
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers) | (numbers < 0) | (numbers != np.floor(numbers)) | (numbers > MAX_COUNT)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = numbers[row]
        if not text.iloc[row]:
            problem = "is empty"
        elif not np.isfinite(value):
            problem = "is not a number"
        elif value < 0:
            problem = "is negative"
        elif value > MAX_COUNT:
            problem = f"is larger than {MAX_COUNT} (2**53 - 1, the largest count read exactly)"
        else:
            problem = "is not an integer"
        raise TraceFormatError(
            f"{path}: {_row_label(row, lines)}, field '{field}': value {text.iloc[row]!r} {problem}; "
            "expected a non-negative integer"
        )
    _require_bounded_total(path, numbers, field)
    return numbers.astype(np.int64)


def _require_bounded_total(path: Path, numbers: np.ndarray, field: str) -> None:
    """Raise when a count column's total exceeds :data:`MAX_COUNT` (its sums would lose precision or overflow)."""
    total = float(np.sum(numbers))
    if total > MAX_COUNT:
        raise TraceFormatError(
            f"{path}: field '{field}': the column sums to {total:.4g}, more than {MAX_COUNT} (2**53 - 1); totals "
            "this large would overflow int64 or lose precision in the per-period sums: scale the counts down"
        )


def _parse_non_negative_floats(
    path: Path, values: pd.Series, field: str, lines: np.ndarray | None = None, *, counts: bool = False
) -> np.ndarray:
    """Parse a column of finite non-negative numbers (token statistics, shares, counts) into float64.

    ``counts``: the values are request counts, so values and the column's total are bounded by :data:`MAX_COUNT`.
    """
    text = values.str.strip()
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(numbers) | (numbers < 0))
    if bad.size:
        row = int(bad[0])
        raise TraceFormatError(
            f"{path}: {_row_label(row, lines)}, field '{field}': value {text.iloc[row]!r} is not a finite "
            "non-negative number"
        )
    if counts:
        large = np.flatnonzero(numbers > MAX_COUNT)
        if large.size:
            row = int(large[0])
            raise TraceFormatError(
                f"{path}: {_row_label(row, lines)}, field '{field}': value {text.iloc[row]!r} is larger than "
                f"{MAX_COUNT} (2**53 - 1), the largest count accepted"
            )
        _require_bounded_total(path, numbers, field)
    return numbers


_UTC_OFFSET = re.compile(r":\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
"""A timestamp whose time of day ends in a UTC offset: ``Z``, ``+01``, ``-0530`` or ``+05:30``."""
_OFFSET_KINDS = ("no UTC offset", "a UTC offset")


def _parse_timestamps(path: Path, values: pd.Series, field: str, lines: np.ndarray | None = None) -> pd.Series:
    """Parse an ISO-8601-like timestamp column (fractional seconds of any length; offsets are converted to UTC
    and dropped). Either every timestamp has a UTC offset or none has: a mix has no one time zone to read the
    naive ones in."""
    text = values.str.strip()
    with_offset = text.str.contains(_UTC_OFFSET).to_numpy(dtype=bool)
    mixed = np.flatnonzero(with_offset != with_offset[0])
    if mixed.size:
        row = int(mixed[0])
        raise TraceFormatError(
            f"{path}: {_row_label(row, lines)}, field '{field}': value {text.iloc[row]!r} has "
            f"{_OFFSET_KINDS[int(with_offset[row])]} but {_row_label(0, lines)} ({text.iloc[0]!r}) has "
            f"{_OFFSET_KINDS[int(with_offset[0])]}; give every timestamp an offset (e.g. Z) or none (naive times "
            "are read as UTC)"
        )
    try:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True).dt.tz_localize(None)
    except (ValueError, OverflowError):
        parsed = pd.Series(pd.NaT, index=text.index)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise TraceFormatError(
            f"{path}: {_row_label(row, lines)}, field '{field}': value {text.iloc[row]!r} is not a timestamp; "
            "expected e.g. '2023-11-16 18:17:03.9799600'"
        )
    return parsed.rename(None).reset_index(drop=True)


def _require_non_decreasing(
    path: Path, timestamps: pd.Series, field: str, lines: np.ndarray | None = None, *, strict: bool = False
) -> None:
    """Raise naming the first row whose time is earlier than the previous row's (or equal to it, if ``strict``)."""
    values = timestamps.to_numpy()
    backwards = np.flatnonzero(values[1:] <= values[:-1] if strict else values[1:] < values[:-1])
    if backwards.size:
        row = int(backwards[0]) + 1
        problem = "repeats" if values[row] == values[row - 1] else "goes backwards"
        raise TraceFormatError(
            f"{path}: {_row_label(row, lines)}, field '{field}': time {problem} "
            f"({timestamps.iloc[row]} after {timestamps.iloc[row - 1]} in {_row_label(row - 1, lines)}); "
            f"rows must be in {'strictly increasing ' if strict else ''}time order"
        )
