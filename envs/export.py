"""Instance ↔ JSON: every coefficient, in the schema documented in docs/instance-schema.md."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from servegym.envs.instance import Configuration, Instance, QueryType

SCHEMA_VERSION = 1

_ARRAY_FIELDS = (
    "config_model",
    "config_gpu",
    "gpus_per_replica",
    "gpu_price_per_hour",
    "gpu_availability",
    "capacity_per_hour",
    "delay_s",
    "error_rate",
    "demand_per_hour",
    "model_storage_gb",
)


def instance_to_dict(instance: Instance) -> dict[str, Any]:
    """A JSON-ready dict with every field and derived coefficient of the instance."""
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": instance.name,
        "description": instance.description,
        "query_types": [dataclasses.asdict(q) for q in instance.query_types],
        "models": list(instance.models),
        "gpus": list(instance.gpus),
        "configurations": [dataclasses.asdict(c) | {"name": c.name, "tier": c.tier} for c in instance.configurations],
        "storage_price_per_gb_hour": instance.storage_price_per_gb_hour,
        "storage_capacity_gb": instance.storage_capacity_gb,
        "budget_per_hour": instance.budget_per_hour,
        "design_utilisation": instance.design_utilisation,
        "period_hours": instance.period_hours,
    }
    for name in _ARRAY_FIELDS:
        payload[name] = np.asarray(getattr(instance, name)).tolist()
    payload["startup_s"] = np.asarray(instance.startup_s).tolist()
    payload["derived"] = {
        "replica_price_per_hour": instance.replica_price_per_hour.tolist(),
        "max_replicas": instance.max_replicas.tolist(),
        "route_allowed": instance.route_allowed.astype(int).tolist(),
    }
    return payload


def instance_from_dict(payload: dict[str, Any]) -> Instance:
    """Rebuild an instance from :func:`instance_to_dict` output (derived values are recomputed).

    ``startup_s`` is optional: a file written before it existed loads with S_c = 0 for every configuration.
    """
    version = payload.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"instance JSON schema_version {version!r} not supported (expected {SCHEMA_VERSION})")
    configuration_fields = {f.name for f in dataclasses.fields(Configuration)}
    return Instance(
        name=payload["name"],
        description=payload.get("description", ""),
        query_types=tuple(QueryType(**q) for q in payload["query_types"]),
        models=tuple(payload["models"]),
        gpus=tuple(payload["gpus"]),
        configurations=tuple(
            Configuration(**{k: v for k, v in c.items() if k in configuration_fields})
            for c in payload["configurations"]
        ),
        storage_price_per_gb_hour=payload["storage_price_per_gb_hour"],
        storage_capacity_gb=payload["storage_capacity_gb"],
        budget_per_hour=payload["budget_per_hour"],
        design_utilisation=payload["design_utilisation"],
        period_hours=payload["period_hours"],
        startup_s=np.asarray(payload["startup_s"], dtype=float) if "startup_s" in payload else None,
        **{name: np.asarray(payload[name]) for name in _ARRAY_FIELDS},
    )
