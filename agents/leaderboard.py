"""The leaderboard: a Markdown table of a score summary, and its refresh inside documentation files.

A documentation file holds the table between two marker lines, :data:`BEGIN` and :data:`END`;
:func:`update_markdown` replaces what lies between them and leaves the rest of the file untouched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from servegym.errors import ServegymError
from servegym.io import atomic_write_text, block_markers, marked_block_span

BEGIN, END = block_markers("leaderboard", "scripts/refresh_leaderboard.py")


class LeaderboardError(ServegymError, ValueError):
    """A documentation file lacks the leaderboard markers."""


def _number(value: float, digits: int) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _interval(low: float, high: float) -> str:
    return "—" if math.isnan(low) else f"[{low:.1f}, {high:.1f}]"


def _env_label(row: Any) -> str:
    """A summary row's setting: its env id, with its keywords unless they are the defaults (``{}``)."""
    return row.env_id if row.env_settings == "{}" else f"{row.env_id} {row.env_settings}"


def _oracle_caption(summary: pd.DataFrame, oracle: str) -> str:
    """`` Oracle episodes: <setting> <sources> (≤ g above the proven bound).`` per setting, from the oracle's summary
    rows ('' without)."""
    if "oracle_source" not in summary:
        return ""
    parts = []
    for row in summary[summary["policy"] == oracle].itertuples(index=False):
        if not isinstance(row.oracle_source, str):
            continue
        env = _env_label(row)
        gap = "" if math.isnan(row.oracle_gap_max) else f" (≤ {100 * row.oracle_gap_max:.2f} % above the proven bound)"
        parts.append(f"`{env}` {row.oracle_source}{gap}")
    return f" Oracle episodes: {'; '.join(parts)}." if parts else ""


def _unscored_caption(summary: pd.DataFrame, reference: str) -> str:
    """`` Scores on n of m episodes ...`` for the settings where the oracle is not cheaper than the reference on
    some episodes (their score is undefined), from the reference's summary rows ('' where every episode counts)."""
    if "scored_episodes" not in summary:
        return ""
    parts = []
    for row in summary[summary["policy"] == reference].itertuples(index=False):
        if row.scored_episodes < row.episodes:
            env = _env_label(row)
            parts.append(f"`{env}` on {row.scored_episodes} of its {row.episodes} episodes")
    if not parts:
        return ""
    return (
        f" Scores {'; '.join(parts)}: on the others the oracle costs no less than the reference, so the scale is "
        "undefined (costs and rates include them)."
    )


def played_days(scores: pd.DataFrame, demand: str | None) -> list[str]:
    """What a leaderboard's caption names as played: the demand source given to scoring, else the days of the
    score table in their order."""
    return [demand] if demand else list(dict.fromkeys(scores["day"]))


def format_leaderboard(
    summary: pd.DataFrame, *, reference: str, oracle: str, days: Sequence[str], seeds: Sequence[int]
) -> str:
    """Markdown: one row per policy of a :func:`servegym.agents.scoring.summarise` table, best score first.

    Args:
        summary: The summary table.
        reference: Policy that scores 0 (named in the caption).
        oracle: Policy that scores 100 (named in the caption, with its sources and proven gap per setting).
        days: Days played.
        seeds: Episode seeds.
    """
    lines = [
        f"Normalised score 100 · (C_ref − C) / (C_ref − C_oracle), reference `{reference}` = 0, `{oracle}` = 100; "
        f"days {', '.join(days)}; episode seeds {', '.join(map(str, seeds))}. ± is the standard deviation over "
        "episodes, then over training seeds (runs); 95 % CI a percentile bootstrap of the mean over training seeds."
        + _oracle_caption(summary, oracle)
        + _unscored_caption(summary, reference),
        "",
        "| env | policy | kind | runs | score | ± episodes | ± seeds | 95 % CI | cost $ | SLO viol. | unserved "
        "| GPU-h |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary.itertuples(index=False):
        env = _env_label(row)
        lines.append(
            f"| `{env}` | `{row.policy}` | {row.kind} | {row.runs or '—'} | "
            f"{_number(row.score, 1)} | {_number(row.score_std, 1)} | {_number(row.score_seed_std, 1)} | "
            f"{_interval(row.score_ci_low, row.score_ci_high)} | {_number(row.cost, 0)} | "
            f"{_number(100 * row.slo_violation_rate, 2)} % | {_number(100 * row.unserved_rate, 2)} % | "
            f"{_number(row.gpu_hours, 0)} |"
        )
    return "\n".join(lines) + "\n"


def _marked_text(path: Path) -> tuple[str, int, int]:
    """The file's text and where the text between its two marker lines starts and ends."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LeaderboardError(f"{path}: no such file (a Markdown file with the leaderboard markers)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LeaderboardError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    span = marked_block_span(text, BEGIN, END)
    if span is None:
        raise LeaderboardError(f"{path}: needs the lines {BEGIN!r} and then {END!r} around the leaderboard")
    return text, *span


def check_markdown(path: Path | str) -> Path:
    """``path`` if :func:`update_markdown` can refresh it (so scoring fails before it runs, not after).

    Raises:
        LeaderboardError: The file is missing, unreadable or lacks the markers.
    """
    path = Path(path)
    _marked_text(path)
    return path


def update_markdown(path: Path | str, table: str) -> Path:
    """Replace the text between :data:`BEGIN` and :data:`END` in ``path`` with ``table`` (atomically).

    Raises:
        LeaderboardError: The file is missing or does not contain both markers, in order.
    """
    path = Path(path)
    text, start, end = _marked_text(path)
    return atomic_write_text(path, text[:start] + table + text[end:])
