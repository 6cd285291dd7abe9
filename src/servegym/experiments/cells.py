"""Cells, the unit of work of a sweep: one evaluation episode or one training run, keyed by its configuration.

A cell's key is the SHA-256 of the canonical JSON of its full configuration (every resolved environment keyword,
every instance override, the policy or training settings, seed, day and the servegym version), so a cell is
recomputed exactly when something that could change its result changes. :func:`run_cell` is the one worker
function of every backend: it depends on nothing but the cell, so all backends produce the same records.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from servegym import __version__
from servegym.baselines.runner.episodes import EPISODE_COLUMNS, run_episode
from servegym.baselines.runner.policies import make_policy
from servegym.experiments.experiment_config import ExperimentConfig, ScenarioConfig, TrainingSection

RESULT_COLUMNS = ("cell", "scenario", "env_id", "demand_source", *EPISODE_COLUMNS, "wall_s")
"""Columns of an evaluation cell's record (and of the merged ``results.csv``); ``wall_s`` is the cell's time."""
TIMING_COLUMNS = ("mean_decision_s", "max_decision_s", "wall_s")
"""Columns measured with the wall clock: they differ between runs, every other column is reproducible."""
TRAINING_MODULE = "servegym.agents.train"


def _scenario_dict(scenario: ScenarioConfig) -> dict[str, Any]:
    """The scenario's settings without ``days``: which days a sweep plays changes its cells, not their results."""
    return {key: value for key, value in scenario.to_dict().items() if key != "days"}


def canonical_json(payload: Any) -> str:
    """Sorted keys, no whitespace, no NaN: equal configurations give equal strings."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)


def cell_key(config: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of a cell configuration."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EvaluationCell:
    """One baseline policy played for one episode (scenario, seed and, optionally, an Azure day)."""

    scenario: ScenarioConfig
    policy: str
    seed: int
    day: str | None

    kind: ClassVar[str] = "evaluate"

    def config(self) -> dict[str, Any]:
        """The full configuration the key is computed from."""
        return {
            "kind": self.kind,
            "servegym_version": __version__,
            "scenario": _scenario_dict(self.scenario),
            "policy": self.policy,
            "seed": self.seed,
            "day": self.day,
        }

    @property
    def key(self) -> str:
        return cell_key(self.config())

    @property
    def label(self) -> str:
        return f"{self.scenario.name}/{self.policy}/{self.day or self.scenario.demand}/s{self.seed}"


@dataclass(frozen=True)
class TrainingCell:
    """One training run with one seed."""

    run: TrainingSection
    scenario: ScenarioConfig
    seed: int

    kind: ClassVar[str] = "train"

    def config(self) -> dict[str, Any]:
        """The full configuration: the key is computed from it and the trainer receives it."""
        return {
            "kind": self.kind,
            "servegym_version": __version__,
            "name": self.run.name,
            "algorithm": self.run.algorithm,
            "total_timesteps": self.run.total_timesteps,
            "hyperparameters": dict(self.run.hyperparameters),
            "scenario": _scenario_dict(self.scenario),
            "seed": self.seed,
        }

    @property
    def key(self) -> str:
        return cell_key(self.config())

    @property
    def label(self) -> str:
        return f"train {self.run.name}/s{self.seed}"


Cell = EvaluationCell | TrainingCell


def plan_cells(config: ExperimentConfig) -> list[Cell]:
    """Every cell of the sweep (scenario × policy × day × seed) followed by every training cell (run × seed)."""
    cells: list[Cell] = []
    if config.sweep is not None:
        for name in config.sweep.scenarios:
            scenario = config.resolve_scenario(name)
            days = scenario.days if scenario.days is not None else config.sweep.days
            for policy in config.sweep.policies:
                for day in days or (None,):
                    cells += [EvaluationCell(scenario, policy, seed, day) for seed in config.sweep.seeds]
    for run in config.training:
        scenario = config.resolve_scenario(run.scenario)
        cells += [TrainingCell(run, scenario, seed) for seed in run.seeds]
    return cells


def _evaluate(cell: EvaluationCell) -> dict[str, Any]:
    env = cell.scenario.make_env()
    try:
        policy = make_policy(cell.policy, env.unwrapped, seed=cell.seed)
        record, _ = run_episode(env, policy, cell.seed, {"day": cell.day} if cell.day else {})
    finally:
        env.close()
    return {
        "cell": cell.key,
        "scenario": cell.scenario.name,
        "env_id": cell.scenario.env_id,
        "demand_source": f"azure:{cell.day}" if cell.day else cell.scenario.demand,
        "policy": cell.policy,
        "episode": f"{cell.day}/s{cell.seed}" if cell.day else f"s{cell.seed}",
        "seed": cell.seed,
        **record,
    }


def _train(cell: TrainingCell, work_dir: Path) -> dict[str, Any]:
    try:
        from servegym.agents.train import train_from_config
    except ImportError as error:
        raise RuntimeError(f"training cells need {TRAINING_MODULE} (install the rl extra): {error}") from error
    work_dir.mkdir(parents=True, exist_ok=True)
    metrics = train_from_config(cell.config(), work_dir)
    scalars = {
        key: value if isinstance(value, str | int | float | bool) else canonical_json(value)
        for key, value in metrics.items()
    }
    return {
        "cell": cell.key,
        "name": cell.run.name,
        "algorithm": cell.run.algorithm,
        "scenario": cell.scenario.name,
        "seed": cell.seed,
        **scalars,
    }


def run_cell(cell: Cell, work_dir: Path) -> list[dict[str, Any]]:
    """Compute one cell; returns its records (one row), ``wall_s`` included.

    Args:
        cell: The cell.
        work_dir: Folder for a training cell's artefacts (models, logs); evaluation cells write nothing.
    """
    start = time.perf_counter()
    record = _evaluate(cell) if isinstance(cell, EvaluationCell) else _train(cell, work_dir)
    return [{**record, "wall_s": time.perf_counter() - start}]
