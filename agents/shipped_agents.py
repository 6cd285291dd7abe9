"""Trained agents shipped with the package (as RL Zoo ships its agents), and the check that their leaderboard holds.

A leaderboard folder (the package's own is :func:`shipped_leaderboard_dir`) holds:

- ``agents/<name>/``: one trimmed run folder per agent, ``config.json``, ``model.zip`` (the model the leaderboard
  scored) and ``vecnormalize.json`` (when the run normalised), with the ``manifest.json`` of
  :func:`servegym.io.write_file_set` (size and SHA-256 of each file); ``<name>`` is
  ``<label>-<env name>-s<training seed>`` (the env id without its namespace, as in the default run folder);
- ``scores.csv``: the :func:`servegym.agents.scoring.score` table, one row per (policy, episode), with ``run_dir``
  relative to the folder (``agents/<name>``);
- ``leaderboard.md``: the table :func:`servegym.agents.leaderboard.format_leaderboard` makes of it;
- ``settings.json``: what :func:`servegym.agents.scoring.score` was called with (:data:`SCORE_SETTINGS`);
- ``manifest.json``: command, commit, date, library versions and the SHA-256 of the three files above.

:func:`ship` writes such a folder from run folders of ``servegym train``; :func:`verify_leaderboard` plays the
agents again on the same episodes with the same settings and lists every number that differs from ``scores.csv``
(``servegym leaderboard --verify``).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from servegym.agents.leaderboard import format_leaderboard, played_days
from servegym.agents.scoring import (
    DEFAULT_BASELINES,
    DEFAULT_REFERENCE,
    ORACLE,
    SCORE_COLUMNS,
    score,
    summarise,
)
from servegym.agents.train_config import TrainConfig
from servegym.errors import FileSetError, ServegymError
from servegym.io import check_file_set, check_output_folder, write_file_set

AGENTS_DIR = "agents"
SCORES_FILE = "scores.csv"
TABLE_FILE = "leaderboard.md"
SETTINGS_FILE = "settings.json"
RUN_FILES = ("config.json", "model.zip", "vecnormalize.json")
"""What a shipped agent keeps of its run folder (``vecnormalize.json`` only when the run normalised)."""
SCORE_SETTINGS = ("days", "demand", "seeds", "reference", "oracle", "baselines")
"""Keys of ``settings.json``: the arguments of :func:`servegym.agents.scoring.score` the table was made with."""
KEY_COLUMNS = ("policy", "kind", "run_dir", "env_id", "env_settings", "day", "seed")
"""The columns that identify a row of ``scores.csv`` (one policy on one episode)."""
COMPARED_TEXT_COLUMNS = ("reference", "oracle", "oracle_source")
"""Columns :func:`verify_leaderboard` compares as text: which policies scored 0 and 100, and where the oracle's
cost came from (``shipped`` references, ``fresh`` solves)."""
COMPARED_COLUMNS = tuple(
    column for column in SCORE_COLUMNS if column not in (*KEY_COLUMNS, "training_seed", *COMPARED_TEXT_COLUMNS)
)
"""The numbers :func:`verify_leaderboard` compares: costs ($), rates, GPU-hours, the normalised score and the
oracle's proven gap."""
RELATIVE_TOLERANCE = 1e-9
"""Two numbers agree when they differ by at most this share of the larger (plus :data:`ABSOLUTE_TOLERANCE`): the
episodes are deterministic, so only floating-point summation order may move them."""
ABSOLUTE_TOLERANCE = 1e-9


class LeaderboardFolderError(ServegymError, ValueError):
    """A leaderboard folder is missing, incomplete or damaged (the message names the file and what is wrong)."""


@dataclass(frozen=True)
class Mismatch:
    """One number of ``scores.csv`` that a fresh scoring does not reproduce."""

    policy: str
    run_dir: str
    day: str
    seed: int
    column: str
    shipped: float | str
    fresh: float | str

    def __str__(self) -> str:
        where = f"{self.policy}" + (f" [{self.run_dir}]" if self.run_dir else "")
        return f"{where} on {self.day} seed {self.seed}: {self.column} shipped {self.shipped!r}, fresh {self.fresh!r}"


def shipped_leaderboard_dir() -> Path:
    """The leaderboard folder inside the installed package (``servegym/agents/data/leaderboard``)."""
    return Path(str(resources.files("servegym.agents") / "data" / "leaderboard"))


def _check_files(folder: Path, required: Sequence[str]) -> None:
    try:
        check_file_set(folder, required)
    except FileSetError as error:
        raise LeaderboardFolderError(str(error)) from None


def _agent_name(config: TrainConfig) -> str:
    env_name = config.env_id.rsplit("/", 1)[-1]
    return f"{config.label}-{env_name}-s{config.seed}".replace("/", "-")


def ship(
    run_dirs: Sequence[Path | str],
    out_dir: Path | str,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    days: Sequence[str] | None = None,
    demand: str | None = None,
    which: str = "final",
    reference: str = DEFAULT_REFERENCE,
    oracle: str = ORACLE,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    command: str = "servegym.agents.shipped_agents.ship",
    progress: bool = False,
) -> pd.DataFrame:
    """Copy the runs' ``which`` models into ``out_dir/agents/``, score them there and write the leaderboard files.

    The copies, not the original runs, are scored, so the shipped table is the table of the shipped files.

    Args:
        run_dirs: Run folders of ``servegym train``; each agent's name is ``<label>-<env name>-s<training seed>``.
        out_dir: The leaderboard folder to write (its other files are left alone; its agents are replaced).
        seeds, days, demand, reference, oracle, baselines, progress: As :func:`servegym.agents.scoring.score`.
        which: ``final`` or ``best`` model of each run.
        command: The command recorded in the manifests.

    Returns:
        The score table, as written to ``scores.csv``.

    Raises:
        LeaderboardFolderError: Two runs share a name (same label, env id and training seed).
        RunFolderError, ScoreError: As :func:`servegym.agents.scoring.score`.
    """
    from servegym.agents.adapter import check_run_folder

    out = check_output_folder(out_dir, "leaderboard folder")
    sources: dict[str, tuple[Path, Path]] = {}
    for run_dir in run_dirs:
        config, model_folder, _ = check_run_folder(run_dir, which)
        name = _agent_name(config)
        if name in sources:
            raise LeaderboardFolderError(f"{run_dir} and {sources[name][0]} are both agent {name!r}; rename one")
        sources[name] = (Path(run_dir), model_folder)
    agents_root = out / AGENTS_DIR
    if agents_root.exists():
        shutil.rmtree(agents_root)
    for name, (run_dir, model_folder) in sources.items():
        files = {"config.json": (run_dir / "config.json").read_bytes()}
        for file in RUN_FILES[1:]:
            if (model_folder / file).is_file():
                files[file] = (model_folder / file).read_bytes()
        write_file_set(agents_root / name, files, command=command)
    shipped = [agents_root / name for name in sources]
    settings = {
        "days": list(days) if days is not None else None,
        "demand": demand,
        "seeds": list(seeds),
        "reference": reference,
        "oracle": oracle,
        "baselines": list(baselines),
    }
    scores = _relative_run_dirs(_score(shipped, settings, progress), out)
    table = _table(scores, settings)
    files = {
        SCORES_FILE: scores.to_csv(index=False).encode("utf-8"),
        TABLE_FILE: table.encode("utf-8"),
        SETTINGS_FILE: (json.dumps(settings, indent=2) + "\n").encode("utf-8"),
    }
    write_file_set(out, files, command=command)
    return scores


def _score(run_dirs: Sequence[Path], settings: Mapping[str, Any], progress: bool) -> pd.DataFrame:
    return score(
        run_dirs,
        days=settings["days"],
        demand=settings["demand"],
        seeds=settings["seeds"],
        reference=settings["reference"],
        oracle=settings["oracle"],
        baselines=settings["baselines"],
        progress=progress,
    )


def _relative_run_dirs(scores: pd.DataFrame, folder: Path) -> pd.DataFrame:
    scores = scores.copy()
    scores["run_dir"] = [
        Path(path).resolve().relative_to(folder.resolve()).as_posix() if isinstance(path, str) and path else ""
        for path in scores["run_dir"]
    ]
    return scores


def _table(scores: pd.DataFrame, settings: Mapping[str, Any]) -> str:
    return format_leaderboard(
        summarise(scores),
        reference=settings["reference"],
        oracle=settings["oracle"],
        days=played_days(scores, settings["demand"]),
        seeds=settings["seeds"],
    )


def read_leaderboard(folder: Path | str) -> tuple[pd.DataFrame, dict[str, Any], list[Path]]:
    """The shipped score table, its settings and its agents' folders, after checking every file's SHA-256.

    Raises:
        LeaderboardFolderError: The folder, a file or an agent is missing, a file differs from its manifest,
            ``settings.json`` lacks a key of :data:`SCORE_SETTINGS`, or ``scores.csv`` lacks a column of
            :data:`servegym.agents.scoring.SCORE_COLUMNS` or names an agent folder that is not there.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LeaderboardFolderError(f"{folder}: no such leaderboard folder (one written by scripts/ship_agents.py)")
    _check_files(folder, (SCORES_FILE, TABLE_FILE, SETTINGS_FILE))
    settings_path = folder / SETTINGS_FILE
    try:
        settings = json.loads(settings_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LeaderboardFolderError(f"{settings_path}: not JSON ({error})") from None
    missing = [key for key in SCORE_SETTINGS if not isinstance(settings, dict) or key not in settings]
    if missing:
        raise LeaderboardFolderError(f"{settings_path}: lacks {missing}")
    scores_path = folder / SCORES_FILE
    try:
        scores = pd.read_csv(scores_path, dtype={"run_dir": str, "day": str, "env_settings": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise LeaderboardFolderError(f"{scores_path}: not a score table ({error})") from None
    missing_columns = [column for column in SCORE_COLUMNS if column not in scores.columns]
    if missing_columns:
        raise LeaderboardFolderError(f"{scores_path}: lacks the columns {missing_columns}")
    scores["run_dir"] = scores["run_dir"].fillna("")
    agent_dirs = []
    for run_dir in dict.fromkeys(scores.loc[scores["kind"] == "agent", "run_dir"]):
        path = folder / run_dir
        if not path.is_dir():
            raise LeaderboardFolderError(f"{scores_path}: names agent {run_dir!r}, but {path} is not there")
        _check_files(path, RUN_FILES[:2])
        agent_dirs.append(path)
    if not agent_dirs:
        raise LeaderboardFolderError(f"{scores_path}: no agent rows (kind 'agent')")
    return scores, settings, agent_dirs


def _agree(shipped: float, fresh: float) -> bool:
    if math.isnan(shipped) or math.isnan(fresh):
        return math.isnan(shipped) and math.isnan(fresh)
    return abs(shipped - fresh) <= ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * max(abs(shipped), abs(fresh))


def compare_scores(shipped: pd.DataFrame, fresh: pd.DataFrame) -> list[Mismatch]:
    """Every number of ``shipped`` that ``fresh`` does not reproduce, and every row one of them lacks.

    Rows are matched on :data:`KEY_COLUMNS`; a row present in only one table is reported with NaN on the
    other side, in column ``row``.
    """
    keys = list(KEY_COLUMNS)

    def indexed(table: pd.DataFrame) -> pd.DataFrame:
        table = table.copy()
        table["seed"] = table["seed"].astype(int)
        table["run_dir"] = table["run_dir"].fillna("").astype(str)
        return table.set_index(keys)

    left, right = indexed(shipped), indexed(fresh)
    mismatches = []
    for key in left.index.union(right.index):
        policy, _, run_dir, _, _, day, seed = key
        if key not in left.index or key not in right.index:
            shipped_value, fresh_value = (1.0, math.nan) if key in left.index else (math.nan, 1.0)
            mismatches.append(Mismatch(policy, run_dir, day, int(seed), "row", shipped_value, fresh_value))
            continue
        for column in COMPARED_TEXT_COLUMNS:
            a, b = str(left.at[key, column]), str(right.at[key, column])
            if a != b:
                mismatches.append(Mismatch(policy, run_dir, day, int(seed), column, a, b))
        for column in COMPARED_COLUMNS:
            a, b = float(left.at[key, column]), float(right.at[key, column])
            if not _agree(a, b):
                mismatches.append(Mismatch(policy, run_dir, day, int(seed), column, a, b))
    return mismatches


def verify_leaderboard(folder: Path | str, *, progress: bool = False) -> tuple[pd.DataFrame, list[Mismatch]]:
    """Score the folder's agents again with its settings and compare every number with ``scores.csv``.

    Returns:
        The fresh score table (``run_dir`` relative to the folder) and the mismatches (empty: verified).

    Raises:
        LeaderboardFolderError: As :func:`read_leaderboard`.
    """
    folder = Path(folder)
    shipped, settings, agent_dirs = read_leaderboard(folder)
    fresh = _relative_run_dirs(_score(agent_dirs, settings, progress), folder)
    return fresh, compare_scores(shipped, fresh)


def leaderboard_table(folder: Path | str) -> str:
    """The folder's ``leaderboard.md`` (after :func:`read_leaderboard`'s checks)."""
    read_leaderboard(folder)
    return (Path(folder) / TABLE_FILE).read_text(encoding="utf-8")
