"""Named scenarios that build instances: ``azure`` (default), ``paper``, ``random`` and ``toy``.

How SLOs, penalties and budgets are set is documented in docs/scenarios.md; the constants below carry the
reasoning in short.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from servegym import numerics
from servegym.envs.catalog import Catalog, default_catalog, load_catalog_overrides
from servegym.envs.instance import Instance, InstanceError, QueryType, Tier, build_instance
from servegym.envs.toy import toy_instance
from servegym.traces.user_trace import Trace

STORAGE_PRICE_PER_GB_HOUR = 0.10 / 730.0
"""$0.10 per GB-month (standard cloud block storage list price) over 730 hours a month."""
STORAGE_CAPACITY_GB = 1000.0
"""Shared model storage, as in the paper (C^s = 1,000 GB)."""
MAX_UNMET_FRACTION = 0.05
"""ζ: at most 5 % of a type's requests may be dropped."""
UNMET_PENALTY_PER_REQUEST = 0.05
"""φ: $0.05 per dropped request, 85× to 48,000× the GPU cost of serving one (the long ``azure`` types to the short
``paper`` ones; docs/scenarios.md)."""
DELAY_PENALTY_PER_REQUEST_S = 2e-5
"""ρ: $2e-5 per request-second: a 5 s request pays $1e-4, about the GPU cost of serving one request on the
Azure scenario's cost-optimal fleet (the MILP's rents ≈ $60/hour for ≈ 550k requests/hour), so delay matters
without dominating."""
TTFT_ALLOWANCE_S = 1.5
"""Delay SLO rule: Δ_i = 1.5 s + 0.25 ms per prompt token (time to first token) + 50 ms per output token."""
TTFT_PER_PROMPT_TOKEN_S = 0.25e-3
TPOT_TARGET_S = 0.05
BUDGET_FACTOR = 1.25
"""Budget δ of the ``azure`` scenario = 1.25 × the fluid rental estimate (:func:`fluid_rental_per_hour`): its
fleets are tens of GPUs, so integer plans rent close to the fluid estimate (GH: 0.83×) and the budget binds at
demand peaks above the nominal and under stress, not at the nominal demand itself."""
RANDOM_BUDGET_FACTOR = 2.0
"""Random instances have small demand (1,000–25,000 requests/hour per type) and strict ε, so integrality adds
more: GH rents a median 1.4× and a 80th percentile 1.9× the fluid estimate (18 instances, sizes 6–20). A factor 2
keeps most random instances feasible while the budget binds on some."""
PAPER_BUDGET_PER_DAY = 100.0
"""The paper's base budget: $100 over the 24-hour horizon (its "critical budget" scenario uses $72)."""
AZURE_DEMAND_SCALE = 1.0
"""The real Azure 2024 magnitude (peak ~10^5 requests/hour per service): the cost-optimal fleet is tens of GPUs,
large enough for GPU availability to bind and small enough for integrality to matter."""


def delay_slo_s(prompt_tokens: float, output_tokens: float) -> float:
    """Δ_i from the TTFT + TPOT rule above (interactive serving targets as in Splitwise and DistServe)."""
    return TTFT_ALLOWANCE_S + TTFT_PER_PROMPT_TOKEN_S * prompt_tokens + TPOT_TARGET_S * output_tokens


def fluid_rental_per_hour(instance: Instance) -> float:
    """Rental of a fluid plan: each type on its cheapest $/capacity route that meets Δ_i and ε_i on its own.

    Types with no such route use their cheapest allowed route. A scale reference for budgets, not a bound.
    """
    # Summed type by type in index order (not a dot product), so every existing instance keeps its budget to
    # the last bit: random instances up to (20, 20, 24) are pinned by tests/test_scale.py.
    return float(sum(instance.demand_per_hour * cheapest_rental_per_request(instance)))


def cheapest_rental_per_request(instance: Instance) -> np.ndarray:
    """(I,) $ of rental per request of each type on its cheapest route at the design utilisation: the route's
    replica price / (u · μ_{i,c}) over the routes that meet Δ_i and ε_i on their own (any allowed route if none
    does; 0 for a type without an allowed route)."""
    cost = np.zeros(instance.num_query_types)
    for i in range(instance.num_query_types):
        allowed = instance.route_allowed[i]
        if not allowed.any():
            continue
        good = allowed & (instance.error_rate[i] <= instance.error_slo[i])
        routes = good if good.any() else allowed
        per_request = instance.replica_price_per_hour[routes] / (
            instance.design_utilisation * instance.capacity_per_hour[i, routes]
        )
        cost[i] = float(per_request.min())
    return cost


def _with_budget(instance: Instance, budget_factor: float) -> Instance:
    return instance.with_changes(budget_per_hour=budget_factor * fluid_rental_per_hour(instance))


PAPER_MODELS = ("Llama-3.2-1B", "Llama-3.2-3B", "Llama-3.1-8B", "Llama-3.2-11B-Vision", "Qwen2.5-32B", "Llama-3.1-70B")
PAPER_TIERS = (
    Tier("A6000", "fp16", 0.65),
    Tier("A6000", "int8", 0.65),
    Tier("A6000", "int4", 0.65),
    Tier("RTX4090", "fp16", 0.35),
    Tier("RTX4090", "int8", 0.35),
    Tier("RTX4090", "int4", 0.35),
    Tier("A100-80GB", "fp16", 1.20),
    Tier("A100-80GB", "int8", 1.20),
    Tier("H100-SXM", "fp16", 2.50),
    Tier("H100-SXM", "int8", 2.50),
)
"""The paper's 10 tiers (A6000, RTX 4090, A100, H100 × precisions) at its prices ($0.35–$2.50/GPU-hour)."""
_PAPER_TYPES = (
    # name, task family (label only), λ req/h, prompt tokens, output tokens, base error, ε
    ("Summarization", "instruction", 12000.0, 512.0, 256.0, 0.04, 0.03),
    ("Code_Gen", "code", 25000.0, 256.0, 512.0, 0.025, 0.02),
    ("Translation", "multilingual", 8000.0, 128.0, 128.0, 0.025, 0.02),
    ("Math_Solving", "math", 5000.0, 64.0, 256.0, 0.06, 0.03),
    ("Image_Gen", "reasoning", 2000.0, 32.0, 1024.0, 0.07, 0.05),
    ("Video_Gen", "general", 1000.0, 48.0, 2048.0, 0.09, 0.06),
)
_PAPER_MODEL_CAPABILITY = (0.5, 1.5, 3.0, 2.5, 5.0, 8.0)
"""Predecessor paper's capability divisors (1B, 3B, 8B, 11B-V, "31B", 70B): e = base_error / capability × m_q."""
_PAPER_ERROR_FACTOR = MappingProxyType({"fp16": 1.0, "int8": 1.15, "int4": 1.35})


def paper_instance(catalog: Catalog | None = None, *, budget_per_day: float = PAPER_BUDGET_PER_DAY) -> Instance:
    """The paper's setting: 6 query types, 6 Llama-3.x-class models (1B–70B), 10 tiers, its error model.

    The paper's fleets are small (a few GPUs), so integrality dominates and a budget scaled from the fluid
    estimate would be infeasible; the paper's own $100/day is used instead (``budget_per_day=72`` for its
    critical-budget scenario).
    """
    catalog = catalog or default_catalog()
    query_types = [
        QueryType(
            name,
            family,
            rate,
            prompt,
            output,
            delay_slo_s(prompt, output),
            error_slo,
            MAX_UNMET_FRACTION,
            UNMET_PENALTY_PER_REQUEST,
            DELAY_PENALTY_PER_REQUEST_S,
        )
        for name, family, rate, prompt, output, _, error_slo in _PAPER_TYPES
    ]
    base_error = np.array([row[5] for row in _PAPER_TYPES])
    error_fp16 = np.minimum(base_error[:, None] / np.array(_PAPER_MODEL_CAPABILITY)[None, :], 1.0)
    return build_instance(
        "paper",
        catalog,
        query_types,
        PAPER_MODELS,
        PAPER_TIERS,
        budget_per_hour=budget_per_day / 24.0,
        storage_capacity_gb=STORAGE_CAPACITY_GB,
        storage_price_per_gb_hour=STORAGE_PRICE_PER_GB_HOUR,
        error_rate_fp16=error_fp16,
        error_factor=_PAPER_ERROR_FACTOR,
        description="paper preset: 6 query types, 6 models (1B-70B), 10 GPU tiers, predecessor error model",
    )


AZURE_MODELS = ("Llama-3.2-3B", "Llama-3.1-8B", "Qwen2.5-7B", "Qwen2.5-32B", "Llama-3.1-70B", "Qwen2.5-72B")
"""The ``azure`` scenario's models from the shipped catalog; :func:`azure_models` adds a custom catalog's new ones."""
AZURE_ERROR_SLO = MappingProxyType({"code": 0.14, "general": 0.20})
"""ε per task family, set between the 7–8B-class and the 32B+-class FP16 error rates of quality.csv (HumanEval
error 0.15–0.27 vs 0.11–0.13; MMLU error 0.25–0.31 vs 0.13–0.16): small models alone fail it, so plans mix
them with larger models inside the demand-weighted error budget, and quantisation can tip a model over it."""


def azure_models(catalog: Catalog) -> tuple[str, ...]:
    """:data:`AZURE_MODELS` plus every model of ``catalog`` that the shipped catalog lacks, in catalog order.

    A custom catalog (docs/catalog.md, "Your own catalog") that adds a model row therefore adds that model to
    the ``azure`` scenario; overriding a shipped model's row changes its numbers but not whether it is used.
    """
    shipped = default_catalog().models
    return AZURE_MODELS + tuple(m for m in catalog.models if m not in shipped and m not in AZURE_MODELS)


def azure_instance(
    catalog: Catalog | None = None,
    *,
    demand_scale: float = AZURE_DEMAND_SCALE,
    budget_factor: float = BUDGET_FACTOR,
) -> Instance:
    """Azure-derived query types (service × prompt-length class) on the whole GPU catalog at every precision.

    The models are :func:`azure_models` of the catalog. The nominal demand is the busiest hour of the validation
    day times ``demand_scale``.
    """
    from servegym.traces import VALIDATION_DAY, load_query_types, validation_peak_per_hour

    if not (np.isfinite(demand_scale) and demand_scale >= 0.0):
        raise InstanceError(f"demand_scale={demand_scale!r} must be finite and >= 0")
    instance = _query_type_table_instance(
        "azure",
        load_query_types(),
        demand_scale * validation_peak_per_hour(),
        catalog or default_catalog(),
        f"Azure 2023/2024 traces: peak hour of {VALIDATION_DAY} × {demand_scale}",
    )
    return _with_budget(instance, budget_factor)


def trace_instance(
    trace: Trace, catalog: Catalog | None = None, *, demand_scale: float = 1.0, budget_factor: float = BUDGET_FACTOR
) -> Instance:
    """The ``azure`` scenario on a trace's own query types: what an environment plays a trace with token columns on.

    Same models, tiers, SLO rules and penalties as :func:`azure_instance`; the query types are the trace's
    (service × prompt-length class, token means from its reference window) and each type's nominal λ_i is its
    busiest clock hour in that window × ``demand_scale`` (:meth:`~servegym.traces.user_trace.Trace.peak_per_hour`),
    so the trace plays at its real magnitude, as the Azure days do in ``azure``. The budget is ``budget_factor`` ×
    the larger of the fluid estimate and :func:`smallest_fleet_rental_per_hour`, so a trace of a few hundred
    requests per hour can still afford a whole replica.

    Raises:
        InstanceError: The trace has no derived query types (no token columns), or ``demand_scale`` <= 0.
    """
    if trace.query_types is None:
        raise InstanceError(
            f"{trace.path}: the trace has no token columns, so it brings no query types of its own; play it on a "
            "scenario's query types instead"
        )
    if not (np.isfinite(demand_scale) and demand_scale > 0.0):
        raise InstanceError(f"demand_scale={demand_scale!r} must be finite and > 0")
    scaled = f" × {demand_scale:g}" if demand_scale != 1.0 else ""
    instance = _query_type_table_instance(
        f"trace:{trace.path.name}",
        trace.query_types,
        demand_scale * trace.peak_per_hour(),
        catalog or default_catalog(),
        f"azure scenario on the query types of {trace.path.name} (peak hour of its reference window{scaled})",
    )
    budget = budget_factor * max(fluid_rental_per_hour(instance), smallest_fleet_rental_per_hour(instance))
    return instance.with_changes(budget_per_hour=budget)


def smallest_fleet_rental_per_hour(instance: Instance) -> float:
    """Rental of the cheapest one-replica-per-type cover, $/hour: one replica that may serve every type within
    its error SLO, or, if none can, one such replica per type (each type its cheapest).

    A budget floor for small demand: the fluid estimate (:func:`fluid_rental_per_hour`) prices a fraction of a
    replica when the demand is a few hundred requests per hour, but a plan rents whole replicas.
    """
    good = instance.route_allowed & (instance.error_rate <= instance.error_slo[:, None])
    price = instance.replica_price_per_hour
    serves_all = good.all(axis=0)
    if serves_all.any():
        return float(price[serves_all].min())
    return float(sum(price[row].min() for row in good if row.any()))


def _query_type_table_instance(
    name: str, types: pd.DataFrame, nominal_per_hour: np.ndarray, catalog: Catalog, description: str
) -> Instance:
    """The ``azure`` scenario's instance (unlimited budget) on a query-type table (columns of
    :data:`~servegym.traces.query_types.QUERY_TYPE_COLUMNS`) with nominal demand ``nominal_per_hour`` (I,)."""
    query_types = [
        QueryType(
            row.name,
            row.task_family,
            float(nominal_per_hour[k]),
            float(row.mean_prompt_tokens),
            float(row.mean_output_tokens),
            delay_slo_s(row.mean_prompt_tokens, row.mean_output_tokens),
            AZURE_ERROR_SLO[row.task_family],
            MAX_UNMET_FRACTION,
            UNMET_PENALTY_PER_REQUEST,
            DELAY_PENALTY_PER_REQUEST_S,
        )
        for k, row in enumerate(types.itertuples(index=False))
    ]
    tiers = [Tier(gpu, precision) for gpu in catalog.gpus for precision in ("fp16", "int8", "int4")]
    models = azure_models(catalog)
    extra = models[len(AZURE_MODELS) :]
    return build_instance(
        name,
        catalog,
        query_types,
        models,
        tiers,
        budget_per_hour=np.inf,
        storage_capacity_gb=STORAGE_CAPACITY_GB,
        storage_price_per_gb_hour=STORAGE_PRICE_PER_GB_HOUR,
        description=description + (f"; extra models {', '.join(extra)}" if extra else ""),
    )


MAX_RANDOM_SIZE = (40, 40, 40)
"""Largest random (I, J, K). Up to K = 24 the tiers are the shipped catalog's (GPU, precision) pairs; beyond, the
catalog is extended with generated GPU offers (:data:`GPU_OFFERS`), so K may reach 3 × 3 × 8 = 72 tiers on the
shipped catalog; 40 is the largest size benchmarked (docs/milp.md, "Scale")."""
RANDOM_PRECISIONS = ("fp16", "int8", "int4")
"""Weight precisions of random tiers: every GPU type at each of them."""


@dataclass(frozen=True)
class GpuOffer:
    """A generated way of renting a catalog GPU: the same hardware at another price, in a separate pool.

    Attributes:
        name: Suffix of the generated GPU type, e.g. ``"spot"`` gives ``"H100-SXM~spot"``.
        price_low: Lowest price factor on the catalog's on-demand $/GPU-hour.
        price_high: Highest price factor; each generated type draws its factor uniformly in [low, high].
        availability_share: Its availability as a share of the catalog GPU's (at least one node's GPUs).
        description: What the offer stands for and why its range.
    """

    name: str
    price_low: float
    price_high: float
    availability_share: float
    description: str


GPU_OFFERS = (
    GpuOffer(
        "spot",
        0.35,
        0.65,
        0.5,
        "spot/preemptible capacity: modelling choice of 35-65 % of the on-demand price and half the pool; "
        "preemption itself is not modelled (the single-period problem has no interruptions)",
    ),
    GpuOffer(
        "cloud-b",
        0.8,
        1.6,
        1.0,
        "the same GPU on-demand at a second provider: modelling choice of 0.8-1.6x the catalog price (list prices "
        "of one GPU model differ across clouds by up to about 2x), a pool as large as the catalog's",
    ),
)
"""Generated GPU offers that extend the catalog when a random instance asks for more tiers than it has."""
_OFFER_STREAM = 1
"""Second word of the seed of the offers' own generator (``default_rng([seed, 1])``): drawing the offers leaves
the instance's main random stream, and so every instance with K ≤ 24, unchanged."""


def _with_gpu_offers(catalog: Catalog, seed: int) -> Catalog:
    """``catalog`` plus one generated GPU type per catalog GPU and offer of :data:`GPU_OFFERS`, seeded by ``seed``.

    Each generated type copies the catalog GPU's hardware and start-up constants; its price is the catalog price ×
    a factor drawn uniformly in the offer's range, its availability the offer's share of the catalog's (at least
    one node). Types are drawn in (offer, sorted GPU name) order from ``default_rng([seed, _OFFER_STREAM])``.
    """
    rng = np.random.default_rng([seed, _OFFER_STREAM])
    gpus = dict(catalog.gpus)
    startup = dict(catalog.startup)
    for offer in GPU_OFFERS:
        for name in sorted(catalog.gpus):
            base = catalog.gpus[name]
            factor = float(rng.uniform(offer.price_low, offer.price_high))
            generated = f"{name}~{offer.name}"
            gpus[generated] = dataclasses.replace(
                base,
                name=generated,
                price_per_gpu_hour=base.price_per_gpu_hour * factor,
                default_availability=max(
                    base.gpus_per_node, round(base.default_availability * offer.availability_share)
                ),
                price_source=f"generated {offer.name} offer of {name} (seed {seed}): catalog price x {factor:.3f}; "
                + offer.description,
            )
            if name in catalog.startup:
                startup[generated] = dataclasses.replace(catalog.startup[name], gpu=generated)
    return dataclasses.replace(catalog, gpus=MappingProxyType(gpus), startup=MappingProxyType(startup))


def _random_models(catalog: Catalog, count: int, rng: np.random.Generator) -> tuple[Catalog, list[str]]:
    """``count`` models: catalog models first (random order), then jittered variants of them."""
    names = list(rng.permutation(sorted(catalog.models)))
    if count <= len(names):
        return catalog, names[:count]
    models = dict(catalog.models)
    accuracy = dict(catalog.accuracy)
    chosen = list(names)
    while len(chosen) < count:
        base = catalog.models[names[int(rng.integers(len(names)))]]
        scale = float(rng.uniform(0.7, 1.4))
        variant = dataclasses.replace(
            base,
            name=f"{base.name}~v{len(chosen)}",
            total_params_b=base.total_params_b * scale,
            active_params_b=base.active_params_b * scale,
            source=f"random variant of {base.name} (parameters × {scale:.2f})",
        )
        models[variant.name] = variant
        for (model, family), value in catalog.accuracy.items():
            if model == base.name:
                accuracy[(variant.name, family)] = float(np.clip(value + rng.normal(0.0, 0.02), 0.01, 0.99))
        chosen.append(variant.name)
    return dataclasses.replace(catalog, models=MappingProxyType(models), accuracy=MappingProxyType(accuracy)), chosen


def random_instance(
    size: Sequence[int] = (6, 6, 10),
    seed: int = 0,
    catalog: Catalog | None = None,
    *,
    budget_factor: float = RANDOM_BUDGET_FACTOR,
) -> Instance:
    """A random instance with I query types, J models and K tiers, reproducible from ``seed``.

    Query types draw prompt/output lengths log-uniformly (64–4096 / 16–1024 tokens), λ uniformly in
    1,000–25,000 requests/hour, a family among general/code/math, Δ from the SLO rule × U(1, 2), and ε between
    the best and the median FP16 error of the chosen models. Tiers are distinct (GPU, precision) pairs with GPU
    prices jittered ±20 % as in the paper; models beyond the catalog are jittered variants of catalog models.
    When K exceeds the catalog's (GPU, precision) pairs (24 on the shipped catalog), the GPU types are extended
    with generated offers (:data:`GPU_OFFERS`: spot and a second cloud, seeded by ``seed``); up to there the
    instance is the one earlier versions built, bit for bit.
    """
    if len(size) != 3 or not all(isinstance(s, (int, np.integer)) for s in size):
        raise InstanceError(f"size must be three integers (I, J, K), got {size!r}")
    num_types, num_models, num_tiers = (int(s) for s in size)
    limits = MAX_RANDOM_SIZE
    for label, value, limit in zip(("I", "J", "K"), (num_types, num_models, num_tiers), limits, strict=True):
        if not 1 <= value <= limit:
            raise InstanceError(f"random size {label} = {value} outside allowed range [1, {limit}]")
    rng = np.random.default_rng(seed)
    catalog = catalog or default_catalog()
    catalog, model_names = _random_models(catalog, num_models, rng)
    generated = num_tiers > len(RANDOM_PRECISIONS) * len(catalog.gpus)
    if generated:
        catalog = _with_gpu_offers(catalog, seed)
    all_tiers = [(g, q) for g in sorted(catalog.gpus) for q in RANDOM_PRECISIONS]
    if num_tiers > len(all_tiers):
        raise InstanceError(
            f"random size K = {num_tiers} exceeds the {len(all_tiers)} tiers of the catalog with its generated offers"
        )
    picked = rng.choice(len(all_tiers), size=num_tiers, replace=False)
    jitter = {g: float(rng.uniform(0.8, 1.2)) for g in sorted(catalog.gpus)}
    tiers = [
        Tier(
            all_tiers[k][0], all_tiers[k][1], catalog.gpus[all_tiers[k][0]].price_per_gpu_hour * jitter[all_tiers[k][0]]
        )
        for k in sorted(picked)
    ]
    families = ("general", "code", "math")
    query_types = []
    for i in range(num_types):
        family = families[int(rng.integers(len(families)))]
        prompt = float(np.round(numerics.exp(rng.uniform(numerics.log(64), numerics.log(4096)))))
        output = float(np.round(numerics.exp(rng.uniform(numerics.log(16), numerics.log(1024)))))
        errors = np.array([catalog.error_rate(m, family, "fp16") for m in model_names])
        best, median = float(errors.min()), float(np.median(errors))
        query_types.append(
            QueryType(
                f"q{i}-{family}",
                family,
                float(np.round(rng.uniform(1000.0, 25000.0))),
                prompt,
                output,
                delay_slo_s(prompt, output) * float(rng.uniform(1.0, 2.0)),
                best + float(rng.uniform(0.3, 0.8)) * max(median - best, 0.01),
                MAX_UNMET_FRACTION,
                UNMET_PENALTY_PER_REQUEST,
                DELAY_PENALTY_PER_REQUEST_S,
            )
        )
    instance = build_instance(
        f"random-{num_types}x{num_models}x{num_tiers}-s{seed}",
        catalog,
        query_types,
        model_names,
        tiers,
        budget_per_hour=np.inf,
        storage_capacity_gb=STORAGE_CAPACITY_GB,
        storage_price_per_gb_hour=STORAGE_PRICE_PER_GB_HOUR,
        description=f"random instance (I, J, K) = {tuple(size)}, seed {seed}"
        + (f"; GPU offers {', '.join(o.name for o in GPU_OFFERS)} generated" if generated else ""),
    )
    return _with_budget(instance, budget_factor)


@dataclass(frozen=True)
class Scenario:
    """A named instance builder."""

    name: str
    description: str
    build: Callable[..., Instance]


SCENARIOS: MappingProxyType[str, Scenario] = MappingProxyType(
    {
        "azure": Scenario("azure", "Azure-derived query types on the full GPU catalog", azure_instance),
        "paper": Scenario("paper", "the paper's 6 query types, 6 models, 10 GPU tiers", paper_instance),
        "random": Scenario("random", "random (I, J, K) instance from --size and --seed", random_instance),
        "toy": Scenario("toy", "2 query types, 3 configurations, optimum known by hand", toy_instance),
    }
)
DEFAULT_SCENARIO = "azure"


def make_instance(
    name: str = DEFAULT_SCENARIO,
    *,
    seed: int = 0,
    size: Sequence[int] | None = None,
    catalog: Catalog | str | Path | None = None,
) -> Instance:
    """Build a scenario's instance; ``seed`` and ``size`` apply to ``random`` only.

    Args:
        name: A key of :data:`SCENARIOS`.
        seed: Seed of the ``random`` scenario.
        size: (I, J, K) of the ``random`` scenario (default (6, 6, 10)).
        catalog: The catalog to build from: a ``Catalog``, a directory whose CSVs override or extend the shipped
            rows by name (:func:`~servegym.envs.catalog.load_catalog_overrides`), or None for the shipped one.
            ``toy`` has hand-set coefficients and takes none; ``paper`` keeps its own tier prices and error model
            and takes GPU and model specifications, availability and start-up constants from the catalog.

    Raises:
        InstanceError: Unknown scenario, ``size`` for a scenario other than ``random``, or a catalog for ``toy``.
        CatalogError: The catalog directory or one of its files is invalid.
    """
    if name not in SCENARIOS:
        raise InstanceError(f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)}")
    if size is not None and name != "random":
        raise InstanceError(f"--size applies to the random scenario only, not {name!r}")
    if name == "toy":
        if catalog is not None:
            raise InstanceError(
                "the toy scenario has hand-set coefficients and takes no catalog; use azure, paper or random"
            )
        return toy_instance()
    resolved = load_catalog_overrides(catalog) if isinstance(catalog, (str, Path)) else catalog
    if name == "random":
        return random_instance(size if size is not None else (6, 6, 10), seed, resolved)
    return SCENARIOS[name].build(resolved)
