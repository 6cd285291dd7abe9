"""Experiment configuration files (TOML): scenario overrides, sweep definitions and training runs.

A file has up to four top-level keys (docs/experiments.md documents every key):

- ``name``: label of the experiment (default: the file's stem); names the default results store.
- ``include``: other TOML files (paths relative to this one) whose ``[scenarios.*]`` tables are added.
- ``[scenarios.NAME]``: a registered environment id plus overrides of its keyword arguments (among them a
  ``catalog`` directory, relative to the file) and of the instance (catalog subset, SLOs, budget).
- ``[sweep]``: policies × scenarios × days × seeds evaluated with the baselines.
- ``[[training]]``: learning runs (one cell per seed), executed by ``servegym.agents.train``.

Every table is validated on load: an unknown key, a wrong type or a value out of range raises
:class:`ConfigError` naming the file, the table, the key and what is allowed.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


from servegym.envs import DEFAULT_ENV_ID, ENV_IDS
from servegym.envs.catalog import (
    PRECISIONS,
    Catalog,
    CatalogError,
    catalog_files_in,
    default_catalog,
    load_catalog_overrides,
)
from servegym.envs.cold_start import INITIAL_FLEETS
from servegym.envs.demand_source import DEMAND_SOURCES, validate_source
from servegym.envs.forecast import FORECASTERS
from servegym.envs.provisioning import DRIFTS, MAX_HORIZON_HOURS, ROUTERS
from servegym.envs.scenarios import SCENARIOS
from servegym.envs.settings import (
    ENV_KEYWORDS,
    INSTANCE_KEYWORDS,
    ConfigError,
    ScenarioConfig,
    env_defaults,
)
from servegym.traces import AZURE_DAYS, TEST_DAYS, TRAIN_DAYS

DAY_ALIASES: Mapping[str, tuple[str, ...]] = {"test": TEST_DAYS, "train": TRAIN_DAYS, "all": AZURE_DAYS}
"""Aliases accepted in ``days`` lists, expanded in place to the Azure days they name."""
SCENARIO_KEYS = ("env_id", *ENV_KEYWORDS, *INSTANCE_KEYWORDS, "days")
"""Keys of a ``[scenarios.NAME]`` table; ``catalog`` is a directory path relative to the file's directory."""
SWEEP_KEYS = ("policies", "scenarios", "seeds", "days")
TRAINING_KEYS = ("name", "scenario", "algorithm", "total_timesteps", "seeds", "hyperparameters")
TOP_LEVEL_KEYS = ("name", "include", "scenarios", "sweep", "training")


def _period_divisors() -> list[int]:
    return [m for m in range(1, 1441) if 1440 % m == 0]


@dataclass(frozen=True)
class SweepSection:
    """The file's ``[sweep]`` table: policies × scenarios × days × seeds.

    Attributes:
        policies: Baseline policy names (``servegym.baselines.runner.policies.BASELINE_POLICIES``).
        scenarios: Scenario table names or registered environment ids.
        seeds: Episode seeds.
        days: Azure day names (aliases expanded); empty: each environment's own demand source.
    """

    policies: tuple[str, ...]
    scenarios: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    days: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingSection:
    """One ``[[training]]`` table of the file: a training run, executed once per seed by
    ``servegym.agents.train.train_from_config``.

    Attributes:
        name: Unique label of the run.
        scenario: Scenario table name or registered environment id to train on.
        algorithm: Learning algorithm name, interpreted by ``servegym.agents.train``.
        total_timesteps: Environment steps per training run.
        seeds: Training seeds (one cell each).
        hyperparameters: Passed through to the trainer as given (JSON-compatible TOML values).
    """

    name: str
    scenario: str
    algorithm: str
    total_timesteps: int
    seeds: tuple[int, ...] = (0,)
    hyperparameters: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ExperimentConfig:
    """A loaded and validated configuration file (plus its includes)."""

    path: Path
    name: str
    scenarios: Mapping[str, ScenarioConfig]
    sweep: SweepSection | None
    training: tuple[TrainingSection, ...]

    def resolve_scenario(self, name: str) -> ScenarioConfig:
        """A scenario table by name, or a registered environment id used as is."""
        if name in self.scenarios:
            return self.scenarios[name]
        return ScenarioConfig.for_env_id(name)


class _Table:
    """Validation helpers bound to one table of one file, so every message names both."""

    def __init__(self, path: Path, section: str, table: Any) -> None:
        self.path, self.section = path, section
        if not isinstance(table, dict):
            raise self.error(f"must be a table, got {type(table).__name__}")
        self.table: dict[str, Any] = table

    def error(self, message: str) -> ConfigError:
        where = f" [{self.section}]" if self.section else ""
        return ConfigError(f"{self.path}:{where} {message}")

    def check_keys(self, allowed: Sequence[str], required: Sequence[str] = ()) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.error(f"unknown key {key!r}; allowed keys: {', '.join(allowed)}")
        for key in required:
            if key not in self.table:
                raise self.error(f"missing required key {key!r}")

    def string(self, key: str, choices: Sequence[str] | None = None) -> str:
        value = self.table[key]
        if not isinstance(value, str) or not value:
            raise self.error(f"{key} = {value!r} must be a non-empty string")
        if choices is not None and value not in choices:
            raise self.error(f"{key} = {value!r} not allowed; allowed values: {', '.join(choices)}")
        return value

    def number(self, key: str, low: float, high: float = math.inf, *, low_open: bool = False) -> float:
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"{key} = {value!r} must be a number")
        above = value > low if low_open else value >= low
        if not (math.isfinite(value) and above and value <= high):
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if math.isinf(high) else ']'}"
            raise self.error(f"{key} = {value!r} outside allowed range {interval}")
        return float(value)

    def integer(self, key: str, low: int) -> int:
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{key} = {value!r} must be an integer")
        if value < low:
            raise self.error(f"{key} = {value!r} outside allowed range [{low}, inf)")
        return value

    def boolean(self, key: str) -> bool:
        value = self.table[key]
        if not isinstance(value, bool):
            raise self.error(f"{key} = {value!r} must be true or false")
        return value

    def strings(self, key: str, choices: Sequence[str] | None = None, *, allow_empty: bool = False) -> tuple[str, ...]:
        values = self.table[key]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.error(f"{key} = {values!r} must be a list of strings")
        if not values and not allow_empty:
            raise self.error(f"{key} must not be empty")
        if len(set(values)) != len(values):
            raise self.error(f"{key} = {values!r} has duplicates")
        for value in values:
            if choices is not None and value not in choices:
                raise self.error(f"{key}: {value!r} not allowed; allowed values: {', '.join(choices)}")
        return tuple(values)

    def integers(self, key: str) -> tuple[int, ...]:
        values = self.table[key]
        integers = isinstance(values, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        if not integers or not values:
            raise self.error(f"{key} = {values!r} must be a non-empty list of integers")
        if len(set(values)) != len(values):
            raise self.error(f"{key} = {values!r} has duplicates")
        if min(values) < 0:
            raise self.error(f"{key}: {min(values)} outside allowed range [0, inf)")
        return tuple(values)

    def days(self, key: str) -> tuple[str, ...]:
        values = self.table[key]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.error(f"{key} = {values!r} must be a list of strings")
        days: list[str] = []
        for value in values:
            if value in DAY_ALIASES:
                days += DAY_ALIASES[value]
            elif value in AZURE_DAYS:
                days.append(value)
            else:
                allowed = [*DAY_ALIASES, *AZURE_DAYS]
                raise self.error(f"{key}: {value!r} is not an Azure day; allowed values: {', '.join(allowed)}")
        return tuple(dict.fromkeys(days))


def _catalog_sha256(directory: Path) -> str:
    """SHA-256 over the names, sizes and bytes of a catalog directory's catalog files."""
    digest = hashlib.sha256()
    for file in catalog_files_in(directory):
        data = file.read_bytes()
        digest.update(f"{file.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _catalog(section: _Table) -> tuple[Path, Catalog]:
    """The table's ``catalog`` directory (relative to the file's directory) and the catalog it gives."""
    value = section.string("catalog")
    directory = (section.path.parent / value).resolve()
    if not directory.is_dir():
        raise section.error(
            f"catalog = {value!r}: no such directory {directory} (the path is relative to the file's directory)"
        )
    try:
        return directory, load_catalog_overrides(directory)
    except CatalogError as error:
        raise section.error(f"catalog = {value!r}: {error}") from None


def _scenario(path: Path, name: str, table: Any) -> ScenarioConfig:
    section = _Table(path, f"scenarios.{name}", table)
    section.check_keys(SCENARIO_KEYS)
    values: dict[str, Any] = {}
    env_id = section.string("env_id", list(ENV_IDS)) if "env_id" in table else DEFAULT_ENV_ID
    get = table.__contains__
    if get("scenario"):
        values["scenario"] = section.string("scenario", sorted(SCENARIOS))
    if get("demand"):
        demand = section.string("demand")
        if demand.startswith("trace:") and not Path(demand.removeprefix("trace:")).is_absolute():
            demand = f"trace:{path.parent / demand.removeprefix('trace:')}"  # relative to the config file
        try:
            validate_source(demand)
        except ValueError as error:
            if demand.startswith("trace:"):
                raise section.error(f"demand = {section.table['demand']!r}: {error}") from None
            allowed = [*DEMAND_SOURCES, *(f"azure:{day}" for day in AZURE_DAYS), "trace:PATH"]
            raise section.error(f"demand = {demand!r} not allowed; allowed values: {', '.join(allowed)}") from None
        values["demand"] = demand
    if get("period_minutes"):
        period = section.integer("period_minutes", 1)
        if 1440 % period:
            allowed = ", ".join(str(m) for m in _period_divisors())
            raise section.error(f"period_minutes = {period} must divide 1440; allowed values: {allowed}")
        values["period_minutes"] = period
    if get("horizon_hours"):
        values["horizon_hours"] = section.number("horizon_hours", 0.0, MAX_HORIZON_HOURS, low_open=True)
    for key in ("sigma", "noise_sigma"):
        if get(key):
            values[key] = section.number(key, 0.0)
    if get("reconfiguration_cost"):
        values["reconfiguration_cost"] = section.number("reconfiguration_cost", 0.0)
    for key in ("delay_inflation", "error_inflation"):
        if get(key):
            values[key] = section.number(key, 1.0)
    if get("error_penalty_factor"):
        values["error_penalty_factor"] = section.number("error_penalty_factor", 0.0)
    for key in ("queueing", "cold_start"):
        if get(key):
            values[key] = section.boolean(key)
    if get("initial_fleet"):
        values["initial_fleet"] = section.string("initial_fleet", list(INITIAL_FLEETS))
    if get("router"):
        values["router"] = section.string("router", list(ROUTERS))
    if get("drift"):
        values["drift"] = section.string("drift", list(DRIFTS))
    if get("forecaster"):
        values["forecaster"] = section.string("forecaster", FORECASTERS)
    if get("max_candidates"):
        values["max_candidates"] = section.integer("max_candidates", 1)
    catalog = default_catalog()
    if get("catalog"):
        directory, catalog = _catalog(section)
        values["catalog"], values["catalog_sha256"] = str(directory), _catalog_sha256(directory)
    if get("models"):
        values["models"] = section.strings("models", list(catalog.models))
    if get("gpus"):
        values["gpus"] = section.strings("gpus", list(catalog.gpus))
    if get("precisions"):
        values["precisions"] = section.strings("precisions", list(PRECISIONS))
    if get("budget_per_hour") and get("budget_scale"):
        raise section.error("budget_per_hour and budget_scale are exclusive; give one")
    if get("budget_per_hour"):
        values["budget_per_hour"] = section.number("budget_per_hour", 0.0, low_open=True)
    if get("budget_scale"):
        values["budget_scale"] = section.number("budget_scale", 0.0, low_open=True)
    for key in ("delay_slo_scale", "error_slo_scale"):
        if get(key):
            values[key] = section.number(key, 0.0, low_open=True)
    if get("max_unmet_fraction"):
        values["max_unmet_fraction"] = section.number("max_unmet_fraction", 0.0, 1.0)
    if get("days"):
        values["days"] = section.days("days")
    if str(values.get("demand", "")).startswith("trace:") and values.get("days") != ():
        raise section.error(
            "demand = 'trace:…' plays the trace's own days; set days = [] in this table (Azure days would replace it)"
        )
    config = ScenarioConfig(name=name, env_id=env_id, **{**env_defaults(), **ENV_IDS[env_id], **values})
    if config.catalog is not None and config.scenario == "toy":
        raise section.error("catalog does not apply to scenario 'toy' (its coefficients are set by hand)")
    periods = config.horizon_hours * 60.0 / config.period_minutes
    if abs(periods - round(periods)) > 1e-9 or round(periods) < 1:
        raise section.error(
            f"horizon_hours = {config.horizon_hours:g} must be a positive multiple of the period "
            f"({config.period_minutes} minutes)"
        )
    return config


def _sweep(path: Path, table: Any, scenarios: Mapping[str, ScenarioConfig]) -> SweepSection:
    from servegym.baselines.runner.policies import BASELINE_POLICIES

    section = _Table(path, "sweep", table)
    section.check_keys(SWEEP_KEYS, required=("policies", "scenarios"))
    names = section.strings("scenarios")
    for name in names:
        _check_scenario_reference(section, "scenarios", name, scenarios)
    return SweepSection(
        policies=section.strings("policies", BASELINE_POLICIES),
        scenarios=names,
        seeds=section.integers("seeds") if "seeds" in table else (0,),
        days=section.days("days") if "days" in table else (),
    )


def _check_scenario_reference(section: _Table, key: str, name: str, scenarios: Mapping[str, ScenarioConfig]) -> None:
    if name not in scenarios and name not in ENV_IDS:
        raise section.error(
            f"{key}: {name!r} is neither a [scenarios.*] table (defined: {', '.join(scenarios) or 'none'}) "
            f"nor an environment id (allowed: {', '.join(ENV_IDS)})"
        )


def _json_value(section: _Table, key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_value(section, f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(section, key, v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise section.error(f"{key} = {value!r} must be finite")
    if not isinstance(value, str | int | float | bool):
        raise section.error(f"{key} = {value!r} must be a string, number, boolean, list or table")
    return value


def _training(path: Path, index: int, table: Any, scenarios: Mapping[str, ScenarioConfig]) -> TrainingSection:
    section = _Table(path, f"training.{index}", table)
    section.check_keys(TRAINING_KEYS, required=("name", "scenario", "algorithm", "total_timesteps"))
    scenario = section.string("scenario")
    _check_scenario_reference(section, "scenario", scenario, scenarios)
    hyperparameters = table.get("hyperparameters", {})
    if not isinstance(hyperparameters, dict):
        raise section.error(f"hyperparameters = {hyperparameters!r} must be a table")
    return TrainingSection(
        name=section.string("name"),
        scenario=scenario,
        algorithm=section.string("algorithm"),
        total_timesteps=section.integer("total_timesteps", 1),
        seeds=section.integers("seeds") if "seeds" in table else (0,),
        hyperparameters=tuple(
            sorted((k, _json_value(section, f"hyperparameters.{k}", v)) for k, v in hyperparameters.items())
        ),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (invalid byte at offset {error.start}); TOML files are UTF-8, save it as such"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file: {error.strerror or error}") from None


def _load_scenarios(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, ScenarioConfig]]:
    """The file's top-level table and every scenario it defines or includes (names unique across files)."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: include cycle through {[str(p) for p in seen]}")
    document = _read_toml(path)
    top = _Table(path, "", document)
    top.check_keys(TOP_LEVEL_KEYS)
    scenarios: dict[str, ScenarioConfig] = {}
    origin: dict[str, Path] = {}
    includes = top.strings("include", allow_empty=True) if "include" in document else ()
    for include in includes:
        _, included = _load_scenarios(path.parent / include, (*seen, path.resolve()))
        for name, scenario in included.items():
            if name in scenarios:
                raise ConfigError(f"{path}: scenario {name!r} defined in both {origin[name]} and {include}")
            scenarios[name], origin[name] = scenario, path.parent / include
    tables = document.get("scenarios", {})
    if not isinstance(tables, dict):
        raise top.error(f"scenarios must be a table of [scenarios.NAME] tables, got {type(tables).__name__}")
    for name, table in tables.items():
        if name in scenarios:
            raise ConfigError(f"{path}: scenario {name!r} already defined in {origin[name]}")
        if name in ENV_IDS:
            raise ConfigError(f"{path}: scenario name {name!r} is an environment id; choose another name")
        scenarios[name] = _scenario(path, name, table)
    return document, scenarios


def _store_name(top: _Table, name: str) -> str:
    """The experiment's name, which names its default results store ``results/sweeps/<name>``: one folder name."""
    if name in (".", "..") or name != name.strip() or any(character in name for character in "/\\:\0"):
        raise top.error(
            f"name = {name!r} must be a single folder name (no '/', '\\', ':', '..' or surrounding spaces): it "
            "names the results store results/sweeps/<name>"
        )
    return name


def load_config(path: Path | str) -> ExperimentConfig:
    """Read and validate a configuration file and the scenario files it includes.

    Raises:
        ConfigError: The file is missing, is not TOML or breaks the schema (the message says where and why).
    """
    path = Path(path)
    document, scenarios = _load_scenarios(path, ())
    top = _Table(path, "", document)
    name = _store_name(top, top.string("name") if "name" in document else path.stem)
    sweep = _sweep(path, document["sweep"], scenarios) if "sweep" in document else None
    runs = document.get("training", [])
    if not isinstance(runs, list):
        raise top.error("training must be an array of tables ([[training]])")
    training = tuple(_training(path, k, table, scenarios) for k, table in enumerate(runs))
    names = [run.name for run in training]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: [[training]] names must be unique; repeated: {duplicates}")
    return ExperimentConfig(path=path, name=name, scenarios=scenarios, sweep=sweep, training=training)
