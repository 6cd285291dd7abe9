"""Numbers and markdown tables for the command line, reports and benchmark scripts."""

from __future__ import annotations

import math

import pandas as pd

ZERO_BELOW = 1e-9
"""Magnitudes below this print as 0: float noise of a zero (a rate of 1.6e-16, a penalty of 1e-13 $)."""


def format_number(value: float) -> str:
    """Four significant digits with thousands separators; NaN as an en dash; |value| < :data:`ZERO_BELOW` as 0."""
    if math.isnan(value):
        return "–"
    if abs(value) < ZERO_BELOW:
        return "0"
    return f"{value:,.4g}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (floats as :func:`format_number` writes them)."""

    def cell(value: object) -> str:
        return format_number(value) if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
