"""Markdown tables for reports and benchmark scripts."""

from __future__ import annotations

import pandas as pd


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (floats with 4 significant digits, NaN as an en dash)."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "–" if value != value else f"{value:,.4g}"
        return str(value)

    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
