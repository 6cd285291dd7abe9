"""What actually happens in a period: realised parameters, overload, queueing, SLO outcomes and cost.

The router plans with nominal coefficients; the world then runs with realised ones (MODEL.md §4):

- service is slower by the delay inflation κ_D and errors are higher by the error inflation κ_E (stress tests);
- realised utilisation of configuration c is ρ̃_c = κ_D · Σ_i x_{i,c}/μ_{i,c} / n_c. Load beyond ρ_cap = 0.98 of a
  replica pool cannot be carried: that share of each route's requests is dropped (counted as unserved);
- queueing (optional, which the paper lacks): a request waits for a batch slot; with Poisson arrivals and
  service-time SCV 1 the Kingman / Pollaczek–Khinchine wait is W_c = ρ̃_c / (1 − ρ̃_c) · τ_c, where
  τ_c = κ_D · (replica-seconds per request of the mix on c) / n_c is the pool's mean service slot;
- realised delay of route (i, c) is d̃_{i,c} = κ_D · D_{i,c} + W_c; its requests violate the delay SLO when
  d̃_{i,c} > Δ_i; a query type violates the error SLO when κ_E times its demand-weighted error exceeds ε_i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servegym.envs.evaluation import rental_per_hour, storage_gb
from servegym.envs.instance import Instance

OVERLOAD_CAP = 0.98
"""Highest realised utilisation a replica pool carries; the excess load is dropped."""

COST_PARTS = ("rental", "storage", "delay_penalty", "unmet_penalty", "reconfiguration")


@dataclass(frozen=True)
class Outcome:
    """Realised results of one period (rates in requests/hour, costs in $ over the period).

    Attributes:
        served: (I, C) requests/hour actually served per route.
        unserved: (I,) requests/hour dropped (by the router or by overload).
        delay_s: (I, C) realised delay per route, seconds.
        utilisation: (C,) realised utilisation ρ̃ of each configuration's replicas (0 where none).
        delay_violation_rate: Share of demanded requests served on routes over their delay SLO.
        error_violation_rate: Share of demanded requests of types whose realised error exceeds ε_i.
        unserved_rate: Share of demanded requests dropped.
        slo_violation_rate: Share of demanded requests that miss any SLO: dropped, served over the delay SLO, or
            of a type over its error SLO (each request counted once; the paper's SLO-violation rate).
        cost: Cost parts in $ keyed by :data:`COST_PARTS` (reconfiguration is set by the caller).
    """

    served: np.ndarray
    unserved: np.ndarray
    delay_s: np.ndarray
    utilisation: np.ndarray
    delay_violation_rate: float
    error_violation_rate: float
    unserved_rate: float
    slo_violation_rate: float
    cost: dict[str, float]

    @property
    def total_cost(self) -> float:
        return float(sum(self.cost.values()))


def realise(
    instance: Instance,
    replicas: np.ndarray,
    routing: np.ndarray,
    unserved: np.ndarray,
    *,
    delay_inflation: float = 1.0,
    error_inflation: float = 1.0,
    queueing: bool = True,
    reconfiguration_cost: float = 0.0,
) -> Outcome:
    """Run one period with realised parameters on a routed plan (see the module docstring).

    Args:
        instance: Nominal coefficients and the period length Δt.
        replicas: (C,) replicas running this period.
        routing: (I, C) requests/hour the router sent per route.
        unserved: (I,) requests/hour the router dropped.
        delay_inflation: κ_D ≥ 1 multiplies service delay (and so replica occupancy).
        error_inflation: κ_E ≥ 1 multiplies error rates.
        queueing: Add the waiting time for a batch slot.
        reconfiguration_cost: $ charged this period for starting replicas (computed by the caller).
    """
    n = np.asarray(replicas, dtype=float)
    mu = instance.capacity_per_hour
    occupancy = np.divide(routing, mu, out=np.zeros_like(routing), where=mu > 0)  # replica-loads (I, C)
    load = occupancy.sum(axis=0)
    utilisation = np.divide(delay_inflation * load, n, out=np.zeros_like(load), where=n > 0)
    carried = np.where(utilisation > OVERLOAD_CAP, OVERLOAD_CAP / np.maximum(utilisation, 1e-12), 1.0)
    served = routing * carried[None, :]
    dropped = unserved + (routing - served).sum(axis=1)
    utilisation = np.minimum(utilisation, OVERLOAD_CAP)
    delay = delay_inflation * instance.delay_s
    if queueing:
        requests = served.sum(axis=0)
        slot_s = np.divide(
            3600.0 * delay_inflation * (occupancy * carried[None, :]).sum(axis=0),
            requests * np.maximum(n, 1.0),
            out=np.zeros_like(requests),
            where=requests > 0,
        )
        delay = delay + (utilisation / (1.0 - utilisation) * slot_s)[None, :]
    delay = np.where(served > 0, delay, 0.0)

    demand_total = float(routing.sum() + unserved.sum())
    over_delay = served * (delay > instance.delay_slo_s[:, None])
    served_per_type = served.sum(axis=1)
    error = error_inflation * np.divide(
        (instance.error_rate * served).sum(axis=1),
        served_per_type,
        out=np.zeros_like(served_per_type),
        where=served_per_type > 0,
    )
    type_over_error = error > instance.error_slo * (1.0 + 1e-9)
    over_error = served_per_type * type_over_error
    missed = served * ((delay > instance.delay_slo_s[:, None]) | type_over_error[:, None])
    dt = instance.period_hours
    cost = {
        "rental": dt * rental_per_hour(instance, n),
        "storage": dt * storage_gb(instance, n) * instance.storage_price_per_gb_hour,
        "delay_penalty": dt * float((instance.delay_penalty_per_request_s[:, None] * delay * served).sum()),
        "unmet_penalty": dt * float(instance.unmet_penalty_per_request @ dropped),
        "reconfiguration": float(reconfiguration_cost),
    }
    scale = 1.0 / demand_total if demand_total > 0 else 0.0
    return Outcome(
        served=served,
        unserved=dropped,
        delay_s=delay,
        utilisation=utilisation,
        delay_violation_rate=float(over_delay.sum()) * scale,
        error_violation_rate=float(over_error.sum()) * scale,
        unserved_rate=float(dropped.sum()) * scale,
        slo_violation_rate=float(missed.sum() + dropped.sum()) * scale,
        cost=cost,
    )
