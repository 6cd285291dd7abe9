"""servegym.experiments: configuration files, sweeps on a process pool or Ray, the results store, reports.

- :func:`load_config` reads and validates a TOML file (scenario overrides, ``[sweep]``, ``[[training]]``);
- :func:`plan_cells` lists its cells, :func:`run_cell` computes one (the worker of every backend);
- :class:`ResultStore` keeps one checksummed CSV per finished cell and merges them into ``results.csv``;
- :func:`run_sweep` runs the unfinished cells on the ``local`` or ``ray`` backend;
- :func:`write_report` renders figures and tables from a store.

docs/experiments.md documents the file format, the store and the commands ``servegym sweep`` and ``report``.
"""

from servegym.experiments.cells import EvaluationCell, TrainingCell, cell_key, plan_cells, run_cell
from servegym.experiments.experiment_config import ConfigError, ExperimentConfig, ScenarioConfig, load_config
from servegym.experiments.report import summarise, write_report
from servegym.experiments.store import CellState, ResultStore
from servegym.experiments.sweep import SweepOutcome, run_sweep

__all__ = [
    "CellState",
    "ConfigError",
    "EvaluationCell",
    "ExperimentConfig",
    "ResultStore",
    "ScenarioConfig",
    "SweepOutcome",
    "TrainingCell",
    "cell_key",
    "load_config",
    "plan_cells",
    "run_cell",
    "run_sweep",
    "summarise",
    "write_report",
]
