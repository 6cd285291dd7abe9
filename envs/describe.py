"""Readable tables of an instance: query types, GPUs, and the candidate configurations per query type."""

from __future__ import annotations

import numpy as np
import pandas as pd

from servegym.envs.instance import Instance


def query_type_table(instance: Instance) -> pd.DataFrame:
    """One row per query type: demand, tokens, SLOs and how many configurations meet them."""
    meets_delay = instance.route_allowed
    meets_both = meets_delay & (instance.error_rate <= instance.error_slo[:, None])
    dollars_per_1k = (
        1000.0
        * instance.replica_price_per_hour[None, :]
        / (instance.design_utilisation * np.where(instance.capacity_per_hour > 0, instance.capacity_per_hour, np.nan))
    )
    rows = []
    for i, q in enumerate(instance.query_types):
        best = dollars_per_1k[i][meets_both[i]]
        rows.append(
            {
                "query type": q.name,
                "family": q.task_family,
                "λ req/h": q.arrival_rate_per_hour,
                "prompt tok": q.mean_prompt_tokens,
                "output tok": q.mean_output_tokens,
                "Δ s": q.delay_slo_s,
                "ε": q.error_slo,
                "ζ": q.max_unmet_fraction,
                "configs meeting Δ": int(meets_delay[i].sum()),
                "meeting Δ and ε": int(meets_both[i].sum()),
                "best $/1k req": float(best.min()) if best.size else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def gpu_table(instance: Instance) -> pd.DataFrame:
    """One row per GPU type: price, availability, configurations using it."""
    counts = np.bincount(instance.config_gpu, minlength=len(instance.gpus))
    return pd.DataFrame(
        {
            "GPU": instance.gpus,
            "$/GPU-hour": instance.gpu_price_per_hour,
            "available GPUs": instance.gpu_availability,
            "configurations": counts,
        }
    )


def configuration_table(instance: Instance, query_type: int, top: int | None = None) -> pd.DataFrame:
    """Configurations that may serve a query type (meet Δ), cheapest per request first."""
    i = query_type
    allowed = np.flatnonzero(instance.route_allowed[i])
    mu = instance.capacity_per_hour[i, allowed]
    price = instance.replica_price_per_hour[allowed]
    frame = pd.DataFrame(
        {
            "configuration": [instance.configurations[c].name for c in allowed],
            "GPUs": instance.gpus_per_replica[allowed],
            "$/h": price,
            "μ req/h": mu,
            "D s": instance.delay_s[i, allowed],
            "error": instance.error_rate[i, allowed],
            "meets ε alone": instance.error_rate[i, allowed] <= instance.error_slo[i],
            "$/1k req": 1000.0 * price / (instance.design_utilisation * mu),
        }
    ).sort_values(["$/1k req", "D s"], kind="stable")
    return frame.head(top) if top is not None else frame


def describe_instance(instance: Instance, top: int | None = 5) -> str:
    """The text ``servegym describe`` prints; ``top=None`` lists every configuration of every type."""
    from servegym.envs.scenarios import fluid_rental_per_hour

    lines = [
        f"instance {instance.name}: {instance.description}",
        f"  {instance.num_query_types} query types, {len(instance.models)} models, {len(instance.gpus)} GPU types, "
        f"{instance.num_configurations} configurations that fit memory and meet some delay SLO",
        f"  budget ${instance.budget_per_hour:,.2f}/hour (fluid rental estimate "
        f"${fluid_rental_per_hour(instance):,.2f}/hour); storage {instance.storage_capacity_gb:,.0f} GB at "
        f"${instance.storage_price_per_gb_hour:.2e}/GB-hour; design utilisation ρ_max = {instance.design_utilisation}",
        "",
        "Query types",
        query_type_table(instance).to_string(index=False, float_format=lambda v: f"{v:,.4g}"),
        "",
        "GPU types",
        gpu_table(instance).to_string(index=False, float_format=lambda v: f"{v:,.4g}"),
    ]
    for i, q in enumerate(instance.query_types):
        shown = "all" if top is None else f"cheapest {top}"
        allowed = int(instance.route_allowed[i].sum())
        lines += [
            "",
            f"{q.name}: {shown} of {allowed} configurations meeting Δ = {q.delay_slo_s:.3g} s",
            configuration_table(instance, i, top).to_string(index=False, float_format=lambda v: f"{v:,.4g}"),
        ]
    return "\n".join(lines)
