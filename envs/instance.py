"""The problem instance: query types, candidate deployment configurations and every coefficient of MODEL.md §3.

An :class:`Instance` is frozen and its arrays are read-only; :func:`build_instance` enumerates every configuration
(model, GPU, precision, TP, PP) that fits memory, precomputes capacity μ, delay D and error e per (query type,
configuration) with the performance model and the start-up time S_c per configuration (``envs/startup.py``, MODEL.md
§6), and keeps only configurations that can serve at least one query type within its delay SLO.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from servegym.envs.catalog import PRECISIONS, TASK_FAMILIES, Catalog, CatalogError
from servegym.envs.performance import (
    PIPELINE_PARALLEL_DEGREES,
    TENSOR_PARALLEL_DEGREES,
    PerformanceConstants,
    Replica,
)
from servegym.envs.startup import configuration_startup_s
from servegym.errors import ServegymError


class InstanceError(ServegymError, ValueError):
    """An instance cannot be built from the given parameters."""


@dataclass(frozen=True)
class QueryType:
    """One class of requests with its SLOs and penalties.

    Attributes:
        name: Label, e.g. ``"conv-medium"``.
        task_family: Quality family the error rates come from (see ``catalog.TASK_FAMILIES``).
        arrival_rate_per_hour: λ_i, nominal requests/hour.
        mean_prompt_tokens: h_i, mean prompt (context) tokens.
        mean_output_tokens: f_i, mean generated tokens.
        delay_slo_s: Δ_i, end-to-end delay bound per request, seconds.
        error_slo: ε_i, bound on the demand-weighted average error rate.
        max_unmet_fraction: ζ_i, largest share of the demand that may go unserved.
        unmet_penalty_per_request: φ_i, $ per unserved request.
        delay_penalty_per_request_s: ρ_i, $ per request-second of delay.
    """

    name: str
    task_family: str
    arrival_rate_per_hour: float
    mean_prompt_tokens: float
    mean_output_tokens: float
    delay_slo_s: float
    error_slo: float
    max_unmet_fraction: float
    unmet_penalty_per_request: float
    delay_penalty_per_request_s: float

    def __post_init__(self) -> None:
        checks = {
            "arrival_rate_per_hour": (0.0, 1e9),
            "mean_prompt_tokens": (1.0, 1e6),
            "mean_output_tokens": (1.0, 1e6),
            "delay_slo_s": (1e-3, 1e5),
            "error_slo": (0.0, 1.0),
            "max_unmet_fraction": (0.0, 1.0),
            "unmet_penalty_per_request": (0.0, 1e6),
            "delay_penalty_per_request_s": (0.0, 1e6),
        }
        for name, (low, high) in checks.items():
            value = getattr(self, name)
            if not (np.isfinite(value) and low <= value <= high):
                raise InstanceError(f"query type {self.name!r}: {name} = {value} outside allowed range [{low}, {high}]")
        if self.task_family not in TASK_FAMILIES:
            raise InstanceError(
                f"query type {self.name!r}: task_family {self.task_family!r} not in {list(TASK_FAMILIES)}"
            )


@dataclass(frozen=True)
class Configuration:
    """A deployment configuration c = (model j, GPU g, precision q, TP t, PP p); one replica uses t·p GPUs."""

    model: str
    gpu: str
    precision: str
    tensor_parallel: int
    pipeline_parallel: int

    @property
    def tier(self) -> str:
        """Tier k = (GPU type, precision), e.g. ``"H100-SXM/int8"``."""
        return f"{self.gpu}/{self.precision}"

    @property
    def name(self) -> str:
        """Readable unique label, e.g. ``"Llama-3.1-8B@H100-SXM/fp16/tp2pp1"``."""
        return f"{self.model}@{self.tier}/tp{self.tensor_parallel}pp{self.pipeline_parallel}"


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array)  # own copy, so freezing never touches a caller's array
    array.setflags(write=False)
    return array


def _mutable_base(array: np.ndarray) -> bool:
    """Whether a read-only ``array`` is a view of memory someone can still write through (a writeable base)."""
    base = array.base
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return True
        base = base.base
    return base is not None  # a buffer of another object (bytes are immutable, but most buffers are not)


@dataclass(frozen=True)
class Instance:
    """One single-period problem (MODEL.md §3). Arrays are read-only; use :meth:`with_demand` for new demand.

    Index sets: I query types, J models, G GPU types, C configurations. ``startup_s`` (MODEL.md §6) defaults to
    None, meaning "no start-up time given", and is then replaced by zeros.
    """

    name: str
    query_types: tuple[QueryType, ...]
    models: tuple[str, ...]
    gpus: tuple[str, ...]
    configurations: tuple[Configuration, ...]
    config_model: np.ndarray  # (C,) int index into models
    config_gpu: np.ndarray  # (C,) int index into gpus
    gpus_per_replica: np.ndarray  # (C,) int G_c = t·p
    gpu_price_per_hour: np.ndarray  # (G,) $/GPU-hour π_g
    gpu_availability: np.ndarray  # (G,) int A_g, GPUs rentable at once
    capacity_per_hour: np.ndarray  # (I, C) μ, requests/hour of one replica serving only type i; 0 = cannot
    delay_s: np.ndarray  # (I, C) D, service delay at the design utilisation, seconds
    error_rate: np.ndarray  # (I, C) e, error rate in [0, 1]
    demand_per_hour: np.ndarray  # (I,) λ, requests/hour
    model_storage_gb: np.ndarray  # (J,) B_j, GB of the stored FP16 checkpoint (quantised ones derive from it)
    storage_price_per_gb_hour: float  # p^s, $/GB-hour
    storage_capacity_gb: float  # C^s, GB
    budget_per_hour: float  # δ, $/hour for rental + storage
    design_utilisation: float  # ρ_max, highest planned replica utilisation
    startup_s: np.ndarray | None = None  # (C,) S_c, seconds from start to ready of one replica
    period_hours: float = 1.0  # Δt, length of the period the cost is charged over, hours
    description: str = ""

    def __post_init__(self) -> None:
        if self.startup_s is None:
            object.__setattr__(self, "startup_s", np.zeros(len(self.configurations)))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and (value.flags.writeable or _mutable_base(value)):
                object.__setattr__(self, f.name, _frozen(value))
        num_types, num_configs = len(self.query_types), len(self.configurations)
        expected = {
            "config_model": (num_configs,),
            "config_gpu": (num_configs,),
            "gpus_per_replica": (num_configs,),
            "gpu_price_per_hour": (len(self.gpus),),
            "gpu_availability": (len(self.gpus),),
            "capacity_per_hour": (num_types, num_configs),
            "delay_s": (num_types, num_configs),
            "error_rate": (num_types, num_configs),
            "demand_per_hour": (num_types,),
            "model_storage_gb": (len(self.models),),
            "startup_s": (num_configs,),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise InstanceError(f"Instance.{name} has shape {getattr(self, name).shape}, expected {shape}")
        if np.any(~np.isfinite(self.demand_per_hour)) or np.any(self.demand_per_hour < 0):
            raise InstanceError("Instance.demand_per_hour must be finite and ≥ 0 requests/hour")
        if np.any(~np.isfinite(self.startup_s)) or np.any(self.startup_s < 0):
            raise InstanceError("Instance.startup_s must be finite and ≥ 0 seconds")
        if not 0.0 < self.design_utilisation < 1.0:
            raise InstanceError(f"design_utilisation {self.design_utilisation} outside allowed range (0, 1)")
        if self.period_hours <= 0.0:
            raise InstanceError(f"period_hours {self.period_hours} must be > 0")

    @functools.cached_property
    def query_type_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.query_types)

    @functools.cached_property
    def configuration_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.configurations)

    @functools.cached_property
    def delay_slo_s(self) -> np.ndarray:
        return _frozen(np.array([q.delay_slo_s for q in self.query_types]))

    @functools.cached_property
    def error_slo(self) -> np.ndarray:
        return _frozen(np.array([q.error_slo for q in self.query_types]))

    @functools.cached_property
    def max_unmet_fraction(self) -> np.ndarray:
        return _frozen(np.array([q.max_unmet_fraction for q in self.query_types]))

    @functools.cached_property
    def unmet_penalty_per_request(self) -> np.ndarray:
        return _frozen(np.array([q.unmet_penalty_per_request for q in self.query_types]))

    @functools.cached_property
    def delay_penalty_per_request_s(self) -> np.ndarray:
        return _frozen(np.array([q.delay_penalty_per_request_s for q in self.query_types]))

    @functools.cached_property
    def replica_price_per_hour(self) -> np.ndarray:
        """G_c · π_g, $/hour of one replica."""
        return _frozen(self.gpus_per_replica * self.gpu_price_per_hour[self.config_gpu])

    @functools.cached_property
    def max_replicas(self) -> np.ndarray:
        """n_max per configuration: replicas that fit in the GPU type's availability alone."""
        return _frozen(self.gpu_availability[self.config_gpu] // self.gpus_per_replica)

    @functools.cached_property
    def route_allowed(self) -> np.ndarray:
        """(I, C) bool: type i may be routed to c (c can serve it and D_{i,c} ≤ Δ_i)."""
        return _frozen((self.capacity_per_hour > 0.0) & (self.delay_s <= self.delay_slo_s[:, None]))

    @property
    def num_query_types(self) -> int:
        return len(self.query_types)

    @property
    def num_configurations(self) -> int:
        return len(self.configurations)

    def digest(self) -> str:
        """SHA-256 (hex) of every field: each array's name, dtype, shape and bytes, each other field's ``repr``
        (exact for floats). Two instances with the same digest pose the same problem."""
        digest = hashlib.sha256()
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                digest.update(f"{field.name}:{value.dtype}:{value.shape}".encode())
                digest.update(np.ascontiguousarray(value).tobytes())
            else:
                digest.update(f"{field.name}:{value!r}".encode())
        return digest.hexdigest()

    def with_demand(self, demand_per_hour: np.ndarray, period_hours: float | None = None) -> Instance:
        """A copy with new demand λ (requests/hour) and optionally a new period length Δt (hours)."""
        demand = np.asarray(demand_per_hour, dtype=float)
        if demand.shape != (self.num_query_types,):
            raise InstanceError(f"demand has shape {demand.shape}, expected ({self.num_query_types},)")
        changes: dict[str, object] = {"demand_per_hour": demand}
        if period_hours is not None:
            changes["period_hours"] = float(period_hours)
        return dataclasses.replace(self, **changes)

    def restrict(self, configurations: Sequence[int], name: str | None = None) -> Instance:
        """A copy keeping only the given configuration indices (in that order); models and GPUs stay."""
        keep = np.asarray(configurations, dtype=np.int64)
        if keep.ndim != 1 or keep.size == 0 or len(set(keep.tolist())) != keep.size:
            raise InstanceError("restrict: configurations must be a non-empty list of distinct indices")
        if keep.min() < 0 or keep.max() >= self.num_configurations:
            raise InstanceError(f"restrict: configuration index outside [0, {self.num_configurations})")
        return dataclasses.replace(
            self,
            name=name or self.name,
            configurations=tuple(self.configurations[c] for c in keep),
            config_model=self.config_model[keep],
            config_gpu=self.config_gpu[keep],
            gpus_per_replica=self.gpus_per_replica[keep],
            capacity_per_hour=self.capacity_per_hour[:, keep],
            delay_s=self.delay_s[:, keep],
            error_rate=self.error_rate[:, keep],
            startup_s=self.startup_s[keep],
        )

    def with_changes(self, **changes: object) -> Instance:
        """A copy with fields replaced (e.g. ``budget_per_hour``), re-validated."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Tier:
    """A GPU type with a weight precision, optionally with an overridden price ($/GPU-hour)."""

    gpu: str
    precision: str
    price_per_gpu_hour: float | None = None


def build_instance(
    name: str,
    catalog: Catalog,
    query_types: Sequence[QueryType],
    model_names: Sequence[str],
    tiers: Sequence[Tier],
    *,
    budget_per_hour: float,
    storage_capacity_gb: float,
    storage_price_per_gb_hour: float,
    error_rate_fp16: np.ndarray | None = None,
    error_factor: Mapping[str, float] | None = None,
    gpu_availability: Mapping[str, int] | None = None,
    design_utilisation: float = 0.85,
    constants: PerformanceConstants | None = None,
    description: str = "",
) -> Instance:
    """Enumerate configurations and precompute every coefficient, S_c from ``catalog.startup`` included.

    Args:
        name: Instance label.
        catalog: Where models and GPUs come from.
        query_types: The I query types.
        model_names: The J candidate models (catalog keys).
        tiers: The candidate (GPU, precision) tiers.
        budget_per_hour: δ, $/hour for rental plus storage.
        storage_capacity_gb: C^s, GB.
        storage_price_per_gb_hour: p^s, $/GB-hour.
        error_rate_fp16: (I, J) FP16 error rates; default from the catalog's quality table by task family.
        error_factor: Precision → multiplier m_q; default the catalog's quantisation table.
        gpu_availability: GPU type → max GPUs; default the catalog's.
        design_utilisation: ρ_max.
        constants: Performance-model constants.
        description: Free text shown by ``servegym describe``.
    """
    constants = constants or PerformanceConstants()
    for model in model_names:
        if model not in catalog.models:
            raise InstanceError(f"model {model!r} not in the catalog; known: {sorted(catalog.models)}")
    if len(set(model_names)) != len(model_names):
        raise InstanceError(f"duplicate model names in {list(model_names)}")
    for tier in tiers:
        if tier.gpu not in catalog.gpus:
            raise InstanceError(f"GPU {tier.gpu!r} not in the catalog; known: {sorted(catalog.gpus)}")
        if tier.precision not in PRECISIONS:
            raise InstanceError(f"tier {tier.gpu}: precision {tier.precision!r} not in {list(PRECISIONS)}")
    if not query_types:
        raise InstanceError("an instance needs at least one query type")
    gpu_names = tuple(dict.fromkeys(t.gpu for t in tiers))
    prices: dict[str, float] = {}
    for tier in tiers:
        price = tier.price_per_gpu_hour
        if price is None:  # a tier priced 0 keeps its 0
            price = catalog.gpus[tier.gpu].price_per_gpu_hour
        if prices.setdefault(tier.gpu, price) != price:
            raise InstanceError(f"GPU {tier.gpu!r} has two prices across tiers ({prices[tier.gpu]} and {price})")
    availability = {g: catalog.gpus[g].default_availability for g in gpu_names}
    availability.update({g: a for g, a in (gpu_availability or {}).items() if g in availability})
    factors = (
        dict(error_factor) if error_factor is not None else {q: v.error_factor for q, v in catalog.quantisation.items()}
    )
    if error_rate_fp16 is None:
        error_rate_fp16 = np.array(
            [[catalog.error_rate(m, q.task_family, "fp16") for m in model_names] for q in query_types]
        )
    error_rate_fp16 = np.asarray(error_rate_fp16, dtype=float)
    if error_rate_fp16.shape != (len(query_types), len(model_names)):
        raise InstanceError(
            f"error_rate_fp16 has shape {error_rate_fp16.shape}, expected ({len(query_types)}, {len(model_names)})"
        )

    prompt = np.array([q.mean_prompt_tokens for q in query_types])
    output = np.array([q.mean_output_tokens for q in query_types])
    delay_slo = np.array([q.delay_slo_s for q in query_types])
    configurations: list[Configuration] = []
    columns: dict[str, list] = {"model": [], "gpu": [], "gpus": [], "mu": [], "delay": [], "error": []}
    for j, model_name in enumerate(model_names):
        model = catalog.models[model_name]
        for tier in tiers:
            gpu = catalog.gpus[tier.gpu]
            for tp in TENSOR_PARALLEL_DEGREES:
                for pp in PIPELINE_PARALLEL_DEGREES:
                    replica = Replica(
                        model,
                        gpu,
                        tier.precision,
                        catalog.bytes_per_param[tier.precision],
                        tp,
                        pp,
                        constants,
                        kv_bytes_per_element=catalog.kv_bytes_per_element[tier.precision],
                    )
                    if not replica.fits or replica.gpus > availability[tier.gpu]:
                        continue
                    mu = replica.capacity_per_hour(prompt, output)
                    delay = replica.delay_s(prompt, output, design_utilisation)
                    if not np.any((mu > 0) & (delay <= delay_slo)):
                        continue  # serves no query type within its delay SLO: never useful
                    configurations.append(Configuration(model_name, tier.gpu, tier.precision, tp, pp))
                    columns["model"].append(j)
                    columns["gpu"].append(gpu_names.index(tier.gpu))
                    columns["gpus"].append(replica.gpus)
                    columns["mu"].append(mu)
                    columns["delay"].append(np.where(np.isfinite(delay), delay, 1e9))
                    columns["error"].append(np.minimum(error_rate_fp16[:, j] * factors[tier.precision], 1.0))
    if not configurations:
        raise InstanceError(f"instance {name!r}: no configuration fits memory and meets any delay SLO")
    # B_j: the stored FP16 checkpoint, 2 bytes per parameter; quantised weights derive from it (MODEL.md §6).
    model_storage_gb = np.array([catalog.models[m].total_params_b * 2.0 for m in model_names])
    config_model = np.array(columns["model"], dtype=np.int64)
    gpus_per_replica = np.array(columns["gpus"], dtype=np.int64)
    try:
        startup_s = configuration_startup_s(catalog, configurations, model_storage_gb[config_model], gpus_per_replica)
    except CatalogError as exc:
        raise InstanceError(f"instance {name!r}: {exc}") from None
    return Instance(
        name=name,
        query_types=tuple(query_types),
        models=tuple(model_names),
        gpus=gpu_names,
        configurations=tuple(configurations),
        config_model=config_model,
        config_gpu=np.array(columns["gpu"], dtype=np.int64),
        gpus_per_replica=gpus_per_replica,
        gpu_price_per_hour=np.array([prices[g] for g in gpu_names]),
        gpu_availability=np.array([availability[g] for g in gpu_names], dtype=np.int64),
        capacity_per_hour=np.array(columns["mu"]).T,
        delay_s=np.array(columns["delay"]).T,
        error_rate=np.array(columns["error"]).T,
        demand_per_hour=np.array([q.arrival_rate_per_hour for q in query_types]),
        model_storage_gb=model_storage_gb,
        storage_price_per_gb_hour=storage_price_per_gb_hour,
        storage_capacity_gb=storage_capacity_gb,
        budget_per_hour=budget_per_hour,
        design_utilisation=design_utilisation,
        startup_s=startup_s,
        description=description,
    )
