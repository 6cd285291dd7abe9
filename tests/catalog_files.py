"""Helpers of the catalog-file tests: a copy of the shipped data directory and single-cell edits of its CSVs."""

import shutil
from importlib import resources
from pathlib import Path

import pandas as pd

DATA = Path(str(resources.files("servegym.envs") / "data"))
"""The shipped catalog directory."""
CATALOG_FILES = ("gpus.csv", "models.csv", "quality.csv", "quantization.csv", "startup.csv")
"""Every file ``load_catalog`` reads."""


def copy_catalog(directory: Path) -> Path:
    """Copy the shipped catalog files into ``directory``; returns it."""
    for name in CATALOG_FILES:
        shutil.copy(DATA / name, directory / name)
    return directory


def edit(path: Path, row: int, column: str, value: str) -> None:
    """Set one cell (0-based data row) of a catalog CSV, keeping every other cell as text."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)
