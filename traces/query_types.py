"""Query types derived from the 2023 Azure per-request traces: service × prompt-length class.

A query type is one service (``code`` or ``conv``) and one prompt-length class:

============  ======================  =====================
class         prompt tokens           example name
============  ======================  =====================
``short``     0 – 1,023               ``code-short``
``medium``    1,024 – 4,095           ``conv-medium``
``long``      4,096 and more          ``code-long``
============  ======================  =====================

The class boundaries are powers of two close to the medians of the two services (code 1,469 and
conversation 1,020 prompt tokens), so each service splits into a large short and medium class and a
tail of long prompts whose KV-cache footprint is several times larger. A class holding fewer than
:data:`MIN_CLASS_SHARE` of a service's requests is merged into its neighbour (the larger neighbour for
the middle class); the merged class keeps the neighbour's name and its token bounds widen. On the
shipped Azure traces no class is that small (the smallest, ``conv-long``, holds 2.1 %), so all six
types exist.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from servegym.traces.azure import (
    SERVICES,
    TraceFormatError,
    _parse_counts,
    _parse_non_negative_floats,
    _read_csv_as_text,
    _read_text,
    _require_columns,
)

LENGTH_CLASSES: tuple[str, ...] = ("short", "medium", "long")
"""Prompt-length classes, shortest first."""

PROMPT_CLASS_LOWER_TOKENS: tuple[int, ...] = (0, 1024, 4096)
"""Smallest prompt length (tokens, inclusive) of each class in :data:`LENGTH_CLASSES`."""

MIN_CLASS_SHARE = 0.01
"""Classes with a smaller fraction of their service's requests are merged into a neighbour."""

TASK_FAMILIES: Mapping[str, str] = {"code": "code", "conv": "general"}
"""Benchmark task family standing for each service's quality (see ``envs`` catalog)."""

AZURE_2023_SOURCES: Mapping[str, str] = {
    service: (
        f"Microsoft Azure Public Dataset, AzureLLMInferenceTrace_{service}.csv (2023, CC-BY 4.0), "
        "https://github.com/Azure/AzurePublicDataset; Patel et al., Splitwise, ISCA 2024"
    )
    for service in SERVICES
}
"""Default ``source`` of each service's rows."""

QUERY_TYPE_COLUMNS: tuple[str, ...] = (
    "name",
    "service",
    "length_class",
    "task_family",
    "prompt_min_tokens",
    "prompt_max_tokens",
    "request_count",
    "share",
    "mean_prompt_tokens",
    "mean_output_tokens",
    "p50_prompt_tokens",
    "p95_prompt_tokens",
    "p50_output_tokens",
    "p95_output_tokens",
    "source",
)
"""Columns of the query-type table. ``prompt_max_tokens`` is inclusive and empty (<NA>) when unbounded;
``share`` is the fraction of the service's requests; token statistics are per request."""

QUERY_TYPES_FILE = "query_types.csv"
"""Name of the shipped query-type table in ``servegym.traces`` package data."""


def derive_query_types(
    requests_by_service: Mapping[str, pd.DataFrame],
    sources: Mapping[str, str] = AZURE_2023_SOURCES,
    task_families: Mapping[str, str] = TASK_FAMILIES,
) -> pd.DataFrame:
    """Derive the query-type table from per-request traces.

    Args:
        requests_by_service: Per service name (``"code"``, ``"conv"``), a table as returned by
            :func:`~servegym.traces.azure.load_request_trace` (columns ``prompt_tokens`` and
            ``output_tokens``).
        sources: Per service, the citation written to the ``source`` column.
        task_families: Per service, the benchmark task family of its types (default: the Azure services').

    Returns:
        One row per query type with the columns of :data:`QUERY_TYPE_COLUMNS`, services in the order
        given, classes shortest first.

    Raises:
        ValueError: A service is unknown, has no requests or has no ``source``.
    """
    rows = []
    for service, requests in requests_by_service.items():
        if service not in task_families:
            raise ValueError(f"unknown service {service!r}; allowed: {sorted(task_families)}")
        if service not in sources:
            raise ValueError(f"no source given for service {service!r}")
        if requests.empty:
            raise ValueError(f"service {service!r} has no requests")
        prompt = requests["prompt_tokens"].to_numpy(dtype=np.int64)
        output = requests["output_tokens"].to_numpy(dtype=np.int64)
        class_index = np.searchsorted(PROMPT_CLASS_LOWER_TOKENS, prompt, side="right") - 1
        for name_index, members in _merge_small_classes(np.bincount(class_index, minlength=3)):
            mask = np.isin(class_index, members)
            upper = max(members) + 1
            rows.append(
                {
                    "name": f"{service}-{LENGTH_CLASSES[name_index]}",
                    "service": service,
                    "length_class": LENGTH_CLASSES[name_index],
                    "task_family": task_families[service],
                    "prompt_min_tokens": PROMPT_CLASS_LOWER_TOKENS[min(members)],
                    "prompt_max_tokens": (
                        PROMPT_CLASS_LOWER_TOKENS[upper] - 1 if upper < len(LENGTH_CLASSES) else pd.NA
                    ),
                    "request_count": int(mask.sum()),
                    "share": float(mask.sum() / len(prompt)),
                    "mean_prompt_tokens": float(prompt[mask].mean()),
                    "mean_output_tokens": float(output[mask].mean()),
                    "p50_prompt_tokens": float(np.percentile(prompt[mask], 50)),
                    "p95_prompt_tokens": float(np.percentile(prompt[mask], 95)),
                    "p50_output_tokens": float(np.percentile(output[mask], 50)),
                    "p95_output_tokens": float(np.percentile(output[mask], 95)),
                    "source": sources[service],
                }
            )
    table = pd.DataFrame(rows, columns=list(QUERY_TYPE_COLUMNS))
    return table.astype({"prompt_max_tokens": "Int64"})


def _merge_small_classes(counts: np.ndarray) -> list[tuple[int, list[int]]]:
    """Group adjacent length classes so every group holds at least :data:`MIN_CLASS_SHARE`.

    Args:
        counts: Requests per class in :data:`LENGTH_CLASSES` order.

    Returns:
        ``(index of the class whose name the group keeps, member class indices)`` per group, in order.
    """
    total = int(counts.sum())
    groups: list[tuple[int, list[int]]] = [(index, [index]) for index in range(len(counts))]

    def size(group: tuple[int, list[int]]) -> int:
        return int(counts[group[1]].sum())

    while len(groups) > 1:
        smallest = min(range(len(groups)), key=lambda position: size(groups[position]))
        if size(groups[smallest]) >= MIN_CLASS_SHARE * total:
            break
        neighbours = [p for p in (smallest - 1, smallest + 1) if 0 <= p < len(groups)]
        target = max(neighbours, key=lambda position: (size(groups[position]), -position))
        merged = (groups[target][0], sorted(groups[target][1] + groups[smallest][1]))
        groups[target] = merged
        del groups[smallest]
    return groups


def write_query_types(table: pd.DataFrame) -> str:
    """Serialise a query-type table to the CSV text of the shipped file (deterministic)."""
    buffer = io.StringIO()
    table.loc[:, list(QUERY_TYPE_COLUMNS)].to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def load_query_types(path: str | Path | None = None) -> pd.DataFrame:
    """Load a query-type table, by default the one shipped with the package.

    Args:
        path: A CSV written by ``scripts/build_traces.py``; ``None`` reads the shipped
            ``traces/data/query_types.csv``.

    Returns:
        A fresh copy of the table with the columns of :data:`QUERY_TYPE_COLUMNS`.

    Raises:
        TraceFormatError: The file is missing or empty, a column is missing, a number does not parse or
            is negative, a share exceeds 1 or a service's shares do not sum to 1.
    """
    if path is None:
        return _load_shipped_query_types().copy()
    return _parse_query_types(Path(path), _read_text(Path(path)))


@functools.cache
def _load_shipped_query_types() -> pd.DataFrame:
    resource = resources.files("servegym.traces").joinpath("data", QUERY_TYPES_FILE)
    return _parse_query_types(Path(str(resource)), resource.read_text(encoding="utf-8"))


def _parse_query_types(path: Path, text: str) -> pd.DataFrame:
    """Parse and check the query-type CSV text read from ``path``."""
    raw = _read_csv_as_text(path, text)
    _require_columns(path, raw, QUERY_TYPE_COLUMNS)
    table = raw.loc[:, list(QUERY_TYPE_COLUMNS)].copy()
    for column in ("prompt_min_tokens", "request_count"):
        table[column] = _parse_counts(path, raw[column], column)
    open_ended = (raw["prompt_max_tokens"].str.strip() == "").to_numpy()
    prompt_max = _parse_counts(path, raw["prompt_max_tokens"].where(~open_ended, "0"), "prompt_max_tokens")
    table["prompt_max_tokens"] = pd.Series(prompt_max, dtype="Int64").mask(open_ended)
    for column in QUERY_TYPE_COLUMNS[7:-1]:
        table[column] = _parse_non_negative_floats(path, raw[column], column)
    too_large = np.flatnonzero(table["share"].to_numpy() > 1.0)
    if too_large.size:
        row = int(too_large[0])
        raise TraceFormatError(
            f"{path}: data row {row + 1}, field 'share': value {raw['share'].iloc[row]!r} is not in [0, 1]"
        )
    for service, shares in table.groupby("service", sort=False)["share"]:
        if abs(shares.sum() - 1.0) > 1e-9:
            raise TraceFormatError(f"{path}: shares of service {service!r} sum to {shares.sum()}, not 1")
    return table
