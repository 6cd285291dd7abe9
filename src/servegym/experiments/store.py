"""The results store: one CSV and one JSON per finished cell, merged into ``results.csv``.

Layout of a store folder::

    STORE/cells/<key>.csv     the cell's records (atomic write)
    STORE/cells/<key>.json    its configuration, row count, columns and the SHA-256 of the CSV (written second)
    STORE/work/<key>/         artefacts of training cells (models, logs)
    STORE/plans/<hash>.json   the cells each sweep run on the store planned (key and label), so that a report can
                              name the cells that are still missing
    STORE/results.csv         every finished evaluation cell, merged (atomic write)
    STORE/training.csv        every finished training cell, merged (only when there are any)

A cell is finished only if both files exist, the JSON names the key its configuration hashes to, the CSV's
checksum matches and the CSV parses to the recorded rows and columns. Anything else (a file truncated or
edited after the fact, a CSV without its JSON) is corrupt: :meth:`ResultStore.merge` skips it and a sweep
re-runs it.

:meth:`ResultStore.merge` never shrinks ``results.csv`` silently: when the merge holds fewer rows than the file it
replaces (cells damaged or deleted since), it warns, naming both counts and the damaged cells.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd

from servegym.errors import ServegymError
from servegym.experiments.cells import RESULT_COLUMNS, cell_key
from servegym.io import atomic_write_bytes, atomic_write_json, atomic_write_text

CELLS_DIR = "cells"
WORK_DIR = "work"
PLANS_DIR = "plans"
PLAN_FORMAT = "servegym-plan-1"
"""Value of the ``format`` key of a plan file."""
RESULTS_FILE = "results.csv"
TRAINING_FILE = "training.csv"
SORT_COLUMNS = ("scenario", "policy", "demand_source", "seed")


class StoreError(ServegymError, ValueError):
    """A results store is missing or holds nothing to report; the message names its folder."""


class CellState(str, Enum):
    """What the store holds for a cell key."""

    FINISHED = "finished"
    MISSING = "missing"
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class CellCheck:
    """The state of one cell in the store; ``reason`` says why a cell is corrupt."""

    key: str
    state: CellState
    reason: str = ""


@dataclass(frozen=True)
class StoreStatus:
    """Every cell the store's sweeps planned or holds: finished keys, missing cells (key → label) and damaged
    cells (their checks)."""

    finished: tuple[str, ...]
    missing: Mapping[str, str]
    corrupt: tuple[CellCheck, ...]
    labels: Mapping[str, str]

    @property
    def complete(self) -> bool:
        """No planned cell is missing and no cell is damaged."""
        return not self.missing and not self.corrupt

    def describe(self, limit: int = 5) -> str:
        """The missing and damaged cells, at most ``limit`` of each by label and key prefix, e.g. ``2 missing
        (toy/gh-static/s1 3f2a…); 1 damaged (… checksum mismatch: …)``."""
        parts = []
        if self.missing:
            names = [f"{label} {key[:12]}" for key, label in list(self.missing.items())[:limit]]
            more = f" and {len(self.missing) - limit} more" if len(self.missing) > limit else ""
            parts.append(f"{len(self.missing)} missing ({', '.join(names)}{more})")
        if self.corrupt:
            names = [f"{self.labels.get(c.key, '?')} {c.key[:12]}: {c.reason}" for c in self.corrupt[:limit]]
            more = f" and {len(self.corrupt) - limit} more" if len(self.corrupt) > limit else ""
            parts.append(f"{len(self.corrupt)} damaged ({'; '.join(names)}{more})")
        return "; ".join(parts)


@dataclass(frozen=True)
class MergeReport:
    """What :meth:`ResultStore.merge` wrote: the merged files, the finished cells and the corrupt ones skipped."""

    results_path: Path
    training_path: Path | None
    finished: int
    corrupt: tuple[CellCheck, ...]


class ResultStore:
    """A folder of per-cell result files keyed by configuration hash (layout in the module docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / CELLS_DIR

    def csv_path(self, key: str) -> Path:
        return self.cells_dir / f"{key}.csv"

    def meta_path(self, key: str) -> Path:
        return self.cells_dir / f"{key}.json"

    def work_dir(self, key: str) -> Path:
        """Folder for a training cell's artefacts."""
        return self.root / WORK_DIR / key

    def write(self, key: str, config: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> None:
        """Store a finished cell: the CSV first, then the JSON that vouches for it (both atomic)."""
        if cell_key(config) != key:
            raise ValueError(f"cell key {key} does not match its configuration (hash {cell_key(config)})")
        frame = pd.DataFrame(list(records))
        data = frame.to_csv(index=False).encode("utf-8")
        atomic_write_bytes(self.csv_path(key), data)
        atomic_write_json(
            self.meta_path(key),
            {
                "key": key,
                "kind": config["kind"],
                "config": config,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "rows": len(frame),
                "columns": list(frame.columns),
            },
        )

    def _load(self, key: str) -> tuple[CellCheck, pd.DataFrame | None, str]:
        """Check a cell; returns the check, its records if finished, and its kind."""
        csv, meta = self.csv_path(key), self.meta_path(key)
        if not csv.exists() and not meta.exists():
            return CellCheck(key, CellState.MISSING), None, ""
        if not (csv.exists() and meta.exists()):
            present, absent = (csv, meta) if csv.exists() else (meta, csv)
            return CellCheck(key, CellState.CORRUPT, f"partial cell: {present.name} without {absent.name}"), None, ""
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            expected = (info["key"], info["kind"], info["sha256"], info["bytes"], info["rows"], info["columns"])
            config_key = cell_key(info["config"])
        except (ValueError, KeyError, TypeError) as error:
            return CellCheck(key, CellState.CORRUPT, f"unreadable {meta.name}: {error!r}"), None, ""
        recorded_key, kind, checksum, size, rows, columns = expected
        if recorded_key != key or config_key != key:
            return CellCheck(key, CellState.CORRUPT, f"{meta.name} does not describe cell {key}"), None, ""
        data = csv.read_bytes()
        if len(data) != size or hashlib.sha256(data).hexdigest() != checksum:
            reason = f"checksum mismatch: {csv.name} has {len(data)} bytes, {size} expected"
            return CellCheck(key, CellState.CORRUPT, reason), None, ""
        try:
            frame = pd.read_csv(io.BytesIO(data))
        except (ValueError, pd.errors.ParserError) as error:
            return CellCheck(key, CellState.CORRUPT, f"unparsable {csv.name}: {error}"), None, ""
        if len(frame) != rows or list(frame.columns) != columns:
            return CellCheck(key, CellState.CORRUPT, f"{csv.name} does not hold the recorded rows/columns"), None, ""
        return CellCheck(key, CellState.FINISHED), frame, kind

    def check(self, key: str) -> CellCheck:
        """Whether a cell is finished, missing or corrupt (reads and verifies both files)."""
        return self._load(key)[0]

    def discard(self, key: str) -> None:
        """Delete a cell's files (used before re-running a corrupt cell)."""
        self.csv_path(key).unlink(missing_ok=True)
        self.meta_path(key).unlink(missing_ok=True)

    def keys(self) -> list[str]:
        """Keys of every cell with at least one file in the store (temporary files of writes excluded)."""
        if not self.cells_dir.is_dir():
            return []
        names = {p.stem for p in self.cells_dir.iterdir() if p.suffix in (".csv", ".json") and p.name[0] != "."}
        return sorted(names)

    def _plan_path(self, name: str) -> Path:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        return self.root / PLANS_DIR / f"{digest}.json"

    def record_plan(self, name: str, cells: Sequence[tuple[str, str]]) -> Path:
        """Record the cells a sweep named ``name`` plans on this store, as (key, label) pairs (atomic write; a later
        plan of the same sweep replaces it)."""
        payload = {"format": PLAN_FORMAT, "sweep": name, "cells": [{"key": k, "label": label} for k, label in cells]}
        return atomic_write_json(self._plan_path(name), payload)

    def planned(self) -> dict[str, str]:
        """Key → label of every cell a sweep recorded with :meth:`record_plan`.

        Raises:
            StoreError: A plan file is not a plan (the message names it).
        """
        planned: dict[str, str] = {}
        folder = self.root / PLANS_DIR
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
                if payload["format"] != PLAN_FORMAT:
                    raise ValueError(f"$.format {payload['format']!r}, expected {PLAN_FORMAT!r}")
                planned.update({str(cell["key"]): str(cell["label"]) for cell in payload["cells"]})
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise StoreError(f"{path}: not a sweep plan ({error}); delete it and re-run servegym sweep") from None
        return planned

    def status(self) -> StoreStatus:
        """Which planned or present cells are finished, missing or damaged (reads and verifies every cell)."""
        labels = self.planned()
        keys = sorted(set(labels) | set(self.keys()))
        checks = [self.check(key) for key in keys]
        return StoreStatus(
            finished=tuple(c.key for c in checks if c.state == CellState.FINISHED),
            missing={c.key: labels[c.key] for c in checks if c.state == CellState.MISSING},
            corrupt=tuple(c for c in checks if c.state == CellState.CORRUPT),
            labels=labels,
        )

    def _collect(self) -> tuple[dict[str, list[pd.DataFrame]], list[CellCheck]]:
        """The records of every finished cell by kind, and the checks of the corrupt ones."""
        frames: dict[str, list[pd.DataFrame]] = {"evaluate": [], "train": []}
        corrupt: list[CellCheck] = []
        for key in self.keys():
            check, frame, kind = self._load(key)
            if frame is None:
                corrupt.append(check)
            else:
                frames.setdefault(kind, []).append(frame)
        return frames, corrupt

    @staticmethod
    def _evaluation_results(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
        if not frames:
            return pd.DataFrame(columns=list(RESULT_COLUMNS))
        results = pd.concat(frames, ignore_index=True)
        return results.sort_values(list(SORT_COLUMNS), kind="stable", ignore_index=True)

    def merge(self) -> MergeReport:
        """Merge every finished cell into ``results.csv`` (and ``training.csv``); corrupt cells are skipped.

        Warns (``UserWarning``) when the new ``results.csv`` holds fewer rows than the one it replaces.
        """
        frames, corrupt = self._collect()
        results = self._evaluation_results(frames["evaluate"])
        path = self.root / RESULTS_FILE
        before = _csv_rows(path)
        if before is not None and len(results) < before:
            damaged = ", ".join(f"{c.key[:12]} ({c.reason})" for c in corrupt) or "none damaged; cells were deleted"
            warnings.warn(
                f"{path}: rewritten with {len(results)} rows, {before} before; damaged cells: {damaged}", stacklevel=2
            )
        results_path = atomic_write_text(path, results.to_csv(index=False))
        training_path = None
        if frames["train"]:
            training = pd.concat(frames["train"], ignore_index=True).sort_values(["name", "seed"], kind="stable")
            training_path = atomic_write_text(self.root / TRAINING_FILE, training.to_csv(index=False))
        finished = sum(len(f) for f in frames.values())
        return MergeReport(results_path, training_path, finished, tuple(corrupt))

    def results(self) -> pd.DataFrame:
        """The finished evaluation cells' records, merged in memory (``results.csv`` is not rewritten)."""
        frames, _ = self._collect()
        return self._evaluation_results(frames["evaluate"])


def _csv_rows(path: Path) -> int | None:
    """Data rows of a CSV file (None when it is absent or unreadable)."""
    try:
        return len(pd.read_csv(path))
    except (OSError, ValueError, pd.errors.ParserError):
        return None
