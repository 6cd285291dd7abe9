"""Build the processed data files shipped in ``traces/data/`` from the raw Azure traces.

``scripts/build_traces.py`` is the command-line front end. The output is deterministic: the same raw
files give the same CSV text (and, with the same zlib, the same gzip bytes: the gzip header carries no
file name and a zero timestamp).
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pandas as pd

from servegym.traces.azure import MINUTE_COLUMNS, SERVICES, load_minute_trace, load_request_trace
from servegym.traces.days import AZURE_DAYS, MINUTES_PER_DAY, TRACE_DAYS, azure_day
from servegym.traces.demand import DAY_MINUTE_COLUMNS, DAY_MINUTES_FILE
from servegym.traces.query_types import QUERY_TYPES_FILE, derive_query_types, write_query_types

REQUEST_TRACE_FILES: dict[str, str] = {service: f"AzureLLMInferenceTrace_{service}.csv" for service in SERVICES}
"""Raw 2023 per-request trace file of each service."""

MINUTE_TRACE_FILE = "azure2024-llm-minutes.csv"
"""Raw per-minute totals of the 2024 week-long traces."""

AZURE_2024_SOURCE = (
    "Microsoft Azure Public Dataset, AzureLLMInferenceDataset2024 (CC-BY 4.0), "
    "https://github.com/Azure/AzurePublicDataset; Stojkovic et al., DynamoLLM, HPCA 2025"
)
"""``source`` of every row of the per-minute table."""


def split_minutes_by_day(minutes: pd.DataFrame) -> pd.DataFrame:
    """Cut the week-long per-minute series into the seven Azure days.

    Args:
        minutes: Output of :func:`~servegym.traces.azure.load_minute_trace` covering seven full days.

    Returns:
        Table with the columns of :data:`~servegym.traces.demand.DAY_MINUTE_COLUMNS`, 1440 rows per day,
        days in :data:`~servegym.traces.days.AZURE_DAYS` order.

    Raises:
        ValueError: The series does not have 7 × 1440 minutes.
    """
    expected_rows = TRACE_DAYS * MINUTES_PER_DAY
    if len(minutes) != expected_rows:
        raise ValueError(f"per-minute series has {len(minutes)} rows; expected {expected_rows} (seven days)")
    parts = []
    for name in AZURE_DAYS:
        day = azure_day(name)
        part = {"day": [name] * MINUTES_PER_DAY, "minute_of_day": range(MINUTES_PER_DAY)}
        for service, first in (("code", day.code_first_minute), ("conv", day.conv_first_minute)):
            for column in MINUTE_COLUMNS[1:]:
                if column.startswith(f"{service}_"):
                    part[column] = minutes[column].to_numpy()[first : first + MINUTES_PER_DAY]
        part["source"] = [AZURE_2024_SOURCE] * MINUTES_PER_DAY
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True).loc[:, list(DAY_MINUTE_COLUMNS)]


def day_minutes_gzip(table: pd.DataFrame) -> bytes:
    """Serialise the per-minute table to deterministic gzip CSV bytes (level 9, zero mtime)."""
    text = table.to_csv(index=False, lineterminator="\n")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buffer, mtime=0) as stream:
        stream.write(text.encode("utf-8"))
    return buffer.getvalue()


def build_processed_data(raw_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Regenerate the shipped query-type table and per-minute day table from the raw traces.

    Args:
        raw_dir: Folder with ``AzureLLMInferenceTrace_{code,conv}.csv`` and ``azure2024-llm-minutes.csv``.
        out_dir: Folder to write ``query_types.csv`` and ``azure2024_minutes_by_day.csv.gz`` to (created
            if missing; existing files are overwritten).

    Returns:
        The paths written.

    Raises:
        TraceFormatError: A raw file is missing or malformed.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    requests = {service: load_request_trace(raw_dir / name) for service, name in REQUEST_TRACE_FILES.items()}
    minutes = load_minute_trace(raw_dir / MINUTE_TRACE_FILE)
    out_dir.mkdir(parents=True, exist_ok=True)
    query_types_path = out_dir / QUERY_TYPES_FILE
    query_types_path.write_bytes(write_query_types(derive_query_types(requests)).encode("utf-8"))
    day_minutes_path = out_dir / DAY_MINUTES_FILE
    day_minutes_path.write_bytes(day_minutes_gzip(split_minutes_by_day(minutes)))
    return [query_types_path, day_minutes_path]
