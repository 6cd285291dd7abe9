"""One home for the settings an environment is built from: the env keyword names, the instance overrides, and
:class:`ScenarioConfig`, the resolved setting that the sweep configuration files (``servegym.experiments``),
training (``servegym.agents``) and scoring share.

A setting is a registered id plus keyword arguments of ``ProvisioningEnv`` (:data:`ENV_KEYWORDS`) plus instance
overrides (:data:`INSTANCE_KEYWORDS`: catalog subset, SLO scales, budget); :func:`scenario_instance` builds the
overridden instance.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from servegym.envs import ENV_IDS
from servegym.envs.instance import Instance
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.scenarios import make_instance
from servegym.errors import ServegymError

NOT_SETTINGS = ("self", "instance", "render_mode")
"""``ProvisioningEnv.__init__`` parameters that are not part of a setting: an instance passed whole (the instance
overrides below build it) and how to render."""
ENV_KEYWORDS: tuple[str, ...] = tuple(
    name for name in inspect.signature(ProvisioningEnv.__init__).parameters if name not in NOT_SETTINGS
)
"""``ProvisioningEnv`` keyword arguments a setting may override, read from its signature (so the environment's
keyword list is written once; :class:`ScenarioConfig` has one field per keyword, which a test checks)."""
INSTANCE_KEYWORDS = (
    "models",
    "gpus",
    "precisions",
    "budget_per_hour",
    "budget_scale",
    "delay_slo_scale",
    "error_slo_scale",
    "max_unmet_fraction",
)
"""Instance overrides of a scenario table (applied in this order: catalog subset, SLOs, budget)."""


class ConfigError(ServegymError, ValueError):
    """A configuration file is unreadable or breaks the schema; the message names file, table, key and range."""


def env_defaults() -> dict[str, Any]:
    """``ProvisioningEnv``'s default value of every keyword of :data:`ENV_KEYWORDS`."""
    parameters = inspect.signature(ProvisioningEnv.__init__).parameters
    return {key: parameters[key].default for key in ENV_KEYWORDS}


@dataclass(frozen=True)
class ScenarioConfig:
    """One environment setting: a registered id, its keyword arguments resolved, and instance overrides.

    Env keyword fields hold the effective values (the override, else the id's registered value, else the
    ``ProvisioningEnv`` default), so two configs that build the same environment compare equal.

    Attributes:
        name: Table name (``[scenarios.NAME]``) or the environment id when used directly.
        env_id: Registered environment id the setting starts from.
        catalog: Absolute path of a catalog directory whose CSVs override or extend the shipped catalog by name
            (docs/catalog.md, "Your own catalog"); None: the shipped catalog.
        catalog_sha256: SHA-256 of that directory's catalog files (names and bytes) when the configuration was
            loaded, so that editing a catalog file changes the keys of the cells that use it.
        models: Keep only configurations of these models (None: all of the scenario's).
        gpus: Keep only configurations on these GPU types (None: all).
        precisions: Keep only configurations at these weight precisions (None: all).
        budget_per_hour: Replace the budget δ, $/hour (None: the scenario's).
        budget_scale: Multiply the scenario's budget δ (None: unchanged).
        delay_slo_scale: Multiply every query type's delay SLO Δ_i.
        error_slo_scale: Multiply every query type's error SLO ε_i (capped at 1).
        max_unmet_fraction: Replace every query type's unmet cap ζ_i (None: unchanged).
        days: Azure days this scenario is played on, overriding the sweep's list (None: the sweep's;
            empty: the environment's own demand source, once per seed).
    """

    name: str
    env_id: str
    scenario: str
    demand: str
    period_minutes: int
    horizon_hours: float
    sigma: float
    noise_sigma: float
    reconfiguration_cost: float
    cold_start: bool
    initial_fleet: str
    router: str
    delay_inflation: float
    error_inflation: float
    drift: str
    error_penalty_factor: float
    queueing: bool
    forecaster: str
    max_candidates: int
    catalog: str | None = None
    catalog_sha256: str | None = None
    models: tuple[str, ...] | None = None
    gpus: tuple[str, ...] | None = None
    precisions: tuple[str, ...] | None = None
    budget_per_hour: float | None = None
    budget_scale: float | None = None
    delay_slo_scale: float = 1.0
    error_slo_scale: float = 1.0
    max_unmet_fraction: float | None = None
    days: tuple[str, ...] | None = None

    @classmethod
    def for_env_id(cls, env_id: str) -> ScenarioConfig:
        """A registered environment id used as is."""
        return cls(name=env_id, env_id=env_id, **{**env_defaults(), **ENV_IDS[env_id]})

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``ProvisioningEnv`` (without the instance)."""
        return {key: getattr(self, key) for key in ENV_KEYWORDS}

    @property
    def overrides_instance(self) -> bool:
        """True when the instance differs from the named scenario's."""
        return (
            any(getattr(self, key) is not None for key in ("models", "gpus", "precisions", "max_unmet_fraction"))
            or any(getattr(self, key) is not None for key in ("budget_per_hour", "budget_scale"))
            or self.delay_slo_scale != 1.0
            or self.error_slo_scale != 1.0
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (tuples as lists); :meth:`from_dict` inverts it."""
        return {
            f.name: list(value) if isinstance(value := getattr(self, f.name), tuple) else value
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> ScenarioConfig:
        """Rebuild from :meth:`to_dict` output (e.g. inside a training job)."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in payload.items()})

    def make_env(self) -> gym.Env:
        """``gymnasium.make`` of the id with these keyword arguments and, if overridden, the instance.

        An overridden instance is already built from the catalog, so ``catalog`` is then not passed on.
        """
        kwargs = self.env_kwargs()
        if self.overrides_instance:
            kwargs["instance"] = scenario_instance(self)
            del kwargs["catalog"]
        return gym.make(self.env_id, **kwargs)


@functools.lru_cache(maxsize=8)
def _base_instance(scenario: str, catalog: str | None) -> Instance:
    return make_instance(scenario, catalog=catalog)


@functools.lru_cache(maxsize=16)
def scenario_instance(config: ScenarioConfig) -> Instance:
    """The scenario's instance with the catalog subset, SLO and budget overrides applied (cached per process).

    Raises:
        ConfigError: A subset names models or GPUs the scenario does not have, or leaves no configuration.
    """
    base = _base_instance(config.scenario, config.catalog)
    where = f"[scenarios.{config.name}]"
    for key, present in (("models", base.models), ("gpus", base.gpus)):
        missing = sorted(set(getattr(config, key) or ()) - set(present))
        if missing:
            raise ConfigError(f"{where} {key}: {missing} not in scenario {config.scenario!r}; allowed: {list(present)}")
    keep = [
        c
        for c, conf in enumerate(base.configurations)
        if (config.models is None or conf.model in config.models)
        and (config.gpus is None or conf.gpu in config.gpus)
        and (config.precisions is None or conf.precision in config.precisions)
    ]
    if not keep:
        raise ConfigError(f"{where} models/gpus/precisions leave no configuration of scenario {config.scenario!r}")
    instance = base.restrict(keep, name=f"{base.name}/{config.name}") if len(keep) < base.num_configurations else base
    query_types = tuple(
        dataclasses.replace(
            q,
            delay_slo_s=q.delay_slo_s * config.delay_slo_scale,
            error_slo=min(q.error_slo * config.error_slo_scale, 1.0),
            max_unmet_fraction=q.max_unmet_fraction if config.max_unmet_fraction is None else config.max_unmet_fraction,
        )
        for q in instance.query_types
    )
    budget = instance.budget_per_hour
    if config.budget_per_hour is not None:
        budget = config.budget_per_hour
    elif config.budget_scale is not None:
        budget = budget * config.budget_scale
    return instance.with_changes(name=f"{base.name}/{config.name}", query_types=query_types, budget_per_hour=budget)
