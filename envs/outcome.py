"""What actually happens in a period: ready capacity, realised speed and errors, overload, queueing, graded SLO
outcomes and every cost part (MODEL.md §4 and §6).

The router has already split the demand into routes x_{i,c} and unserved u_i. The world then runs with

- ready capacity: ``ready`` n̂_c replica units (rented replicas minus what cold starts do not yet provide);
- realised service speed: a service-time multiplier s_c ≥ 1 (stress inflation κ_D times latent drift); realised
  utilisation of configuration c is ρ̃_c = s_c · Σ_i x_{i,c}/μ_{i,c} / n̂_c. Load beyond ρ_cap = 0.98 of a pool
  cannot be carried: that share of each route's requests is dropped (counted as unserved);
- queueing (optional, which the paper lacks): a request waits for a batch slot; with Poisson arrivals and
  service-time SCV 1 the Kingman / Pollaczek–Khinchine wait is W_c = ρ̃_c / (1 − ρ̃_c) · τ_c, where
  τ_c = s_c · (replica-seconds per request of the mix on c) / n̂_c is the pool's mean service slot;
- realised delay of route (i, c): d̃_{i,c} = s_c · D_{i,c} + W_c;
- realised error rate of route (i, c): ẽ_{i,c} = min(1, k_{i,c} · e_{i,c}) with an error multiplier k ≥ 1
  (stress inflation κ_E times latent drift), unseen by the router.

Graded SLO outcomes (requests/hour, then shares of the period's demand):

- delay violations D_i: requests served on routes with d̃_{i,c} > Δ_i;
- excess erroneous responses E_i = (Σ_c ẽ_{i,c}·x̃_{i,c} − ε_i·Σ_c x̃_{i,c})⁺: the expected wrong answers beyond
  the error budget, not every request of the type;
- unserved U_i: dropped by the router or by overload.

The SLO-violation rate counts each request once: U_i + D_i + E_i·(1 − D_i/S_i), where S_i is type i's served
requests. Excess errors are spread over the type's served requests, so the share E_i·D_i/S_i of them falls on
requests already counted as delay violations.

Cost parts over the period ($): rental and storage of every rented replica (a starting replica is paid from the
period start), delay penalty ρ_i per request-second of realised delay, unmet penalty φ_i per dropped request,
error penalty ψ_i per excess erroneous response, and the start fee the caller passes (a fixed $ per started
replica, for what start-up time does not capture).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servegym.envs.instance import Instance

OVERLOAD_CAP = 0.98
"""Highest realised utilisation a replica pool carries; the excess load is dropped."""

COST_PARTS = ("rental", "storage", "delay_penalty", "unmet_penalty", "error_penalty", "reconfiguration")
"""Cost parts of a period, $; ``reconfiguration`` is the fixed fee per started replica."""

SLO_RATES = ("delay_violation_rate", "error_violation_rate", "unserved_rate", "slo_violation_rate")
"""Graded SLO outcomes of a period, shares of its demanded requests."""


@dataclass(frozen=True)
class Outcome:
    """Realised results of one period (rates in requests/hour, costs in $ over the period).

    Attributes:
        served: (I, C) requests/hour actually served per route.
        unserved: (I,) requests/hour dropped (by the router or by overload).
        excess_errors: (I,) expected erroneous responses beyond the error budget, responses/hour.
        delay_s: (I, C) realised delay per route, seconds (0 where nothing is served).
        utilisation: (C,) realised utilisation ρ̃ of each configuration's ready capacity (0 where none).
        delay_violation_rate: Share of demanded requests served on routes over their delay SLO.
        error_violation_rate: Excess erroneous responses as a share of demanded requests.
        unserved_rate: Share of demanded requests dropped.
        slo_violation_rate: Share of demanded requests that miss any SLO, each counted once (module docstring).
        cost: Cost parts in $ keyed by :data:`COST_PARTS`.
    """

    served: np.ndarray
    unserved: np.ndarray
    excess_errors: np.ndarray
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

    def rates(self) -> dict[str, float]:
        """The graded SLO outcomes keyed by :data:`SLO_RATES`."""
        return {name: getattr(self, name) for name in SLO_RATES}


def start_cost_per_replica(instance: Instance, startup_s: np.ndarray, fee: float) -> np.ndarray:
    """(C,) $ one started replica costs beyond a ready one: the rental paid while it starts, price × S_c, plus the
    fixed ``fee``. What it costs in capacity shows up in the period's outcome (unmet or delayed requests)."""
    return instance.replica_price_per_hour * np.asarray(startup_s, dtype=float) / 3600.0 + fee


def realise(
    instance: Instance,
    replicas: np.ndarray,
    routing: np.ndarray,
    unserved: np.ndarray,
    *,
    ready: np.ndarray | None = None,
    slowdown: np.ndarray | float = 1.0,
    error_factor: np.ndarray | float = 1.0,
    error_penalty_per_request: np.ndarray | float = 0.0,
    queueing: bool = True,
    start_fee: float = 0.0,
) -> Outcome:
    """Run one period with realised parameters on a routed plan (see the module docstring).

    A one-off :class:`Realiser`; callers that run many periods of one instance keep a ``Realiser``.

    Args:
        instance: Nominal coefficients and the period length Δt.
        replicas: (C,) replicas rented this period (what rental and storage are charged on).
        routing: (I, C) requests/hour the router sent per route.
        unserved: (I,) requests/hour the router dropped.
        ready: (C,) ready capacity n̂ in replica units (default ``replicas``: every replica serves all period).
        slowdown: Service-time multiplier s_c ≥ 0, scalar or (C,) (1 = catalog speed).
        error_factor: Error-rate multiplier k ≥ 0, scalar, (C,) or (I, C) (1 = catalog error).
        error_penalty_per_request: ψ_i, $ per excess erroneous response, scalar or (I,).
        queueing: Add the waiting time for a batch slot.
        start_fee: $ charged this period for started replicas (computed by the caller).
    """
    return Realiser(instance)(
        replicas,
        routing,
        unserved,
        ready=ready,
        slowdown=slowdown,
        error_factor=error_factor,
        error_penalty_per_request=error_penalty_per_request,
        queueing=queueing,
        start_fee=start_fee,
    )


class Realiser:
    """:func:`realise` for one instance, with the instance's coefficients laid out once (the env calls it every
    step; the arrays are tiny, so the per-call numpy overhead is what costs)."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        mu = instance.capacity_per_hour
        self._mu = np.where(mu > 0, mu, 1.0)  # (I, C) requests/hour, 1 where c cannot serve i
        self._serves = (mu > 0).astype(float)  # (I, C) 1 on routes with capacity, else 0
        self._delay_s = instance.delay_s
        self._delay_slo_s = instance.delay_slo_s[:, None]  # (I, 1) s
        self._delay_penalty = instance.delay_penalty_per_request_s[:, None]  # (I, 1) $ per request-second
        self._error_rate = instance.error_rate
        self._error_slo = instance.error_slo
        self._unmet_penalty = instance.unmet_penalty_per_request
        self._price = instance.replica_price_per_hour
        self._config_model = instance.config_model
        self._model_storage_gb = instance.model_storage_gb
        self._num_models = len(instance.models)

    def __call__(
        self,
        replicas: np.ndarray,
        routing: np.ndarray,
        unserved: np.ndarray,
        *,
        ready: np.ndarray | None = None,
        slowdown: np.ndarray | float = 1.0,
        error_factor: np.ndarray | float = 1.0,
        error_penalty_per_request: np.ndarray | float = 0.0,
        queueing: bool = True,
        start_fee: float = 0.0,
    ) -> Outcome:
        """As :func:`realise` on this instance."""
        instance = self.instance
        rented = np.asarray(replicas, dtype=float)
        n = rented if ready is None else np.asarray(ready, dtype=float)
        slow = np.asarray(slowdown, dtype=float)
        if slow.shape != n.shape:
            slow = np.broadcast_to(slow, n.shape)
        occupancy = routing / self._mu  # replica-loads (I, C); × 1 on routes with capacity is exact, × 0 zeroes
        occupancy *= self._serves
        occupancy_per_config = occupancy.sum(axis=0)
        load = slow * occupancy_per_config
        # Load on a configuration with no ready capacity is dropped whole (utilisation treated as infinite).
        utilisation = np.divide(load, n, out=np.where(load > 0, np.inf, 0.0), where=n > 0)
        overloaded = utilisation > OVERLOAD_CAP
        if overloaded.any():
            carried = np.where(overloaded, OVERLOAD_CAP / np.maximum(utilisation, 1e-12), 1.0)
            served = routing * carried
            dropped = unserved + (routing - served).sum(axis=1)
            utilisation = np.minimum(utilisation, OVERLOAD_CAP)
            occupancy_per_config = (occupancy * carried).sum(axis=0)
        else:  # everything routed is carried (× 1 is exact)
            served = routing.copy()
            dropped = unserved + 0.0
        delay = slow * self._delay_s
        requests = served.sum(axis=0)
        if queueing:
            slot_s = np.divide(
                3600.0 * slow * occupancy_per_config,
                requests * n,
                out=np.zeros_like(requests),
                where=(requests > 0) & (n > 0),
            )
            delay = delay + utilisation / (1.0 - utilisation) * slot_s
        delay = np.where(served > 0, delay, 0.0)

        demand_total = float(routing.sum() + unserved.sum())
        over_delay = (served * (delay > self._delay_slo_s)).sum(axis=1)  # (I,)
        served_per_type = served.sum(axis=1)
        realised_error = np.minimum(np.asarray(error_factor, dtype=float) * self._error_rate, 1.0)
        erroneous = (realised_error * served).sum(axis=1)
        excess_errors = np.maximum(erroneous - self._error_slo * served_per_type, 0.0)
        delay_share = np.divide(over_delay, served_per_type, out=np.zeros_like(over_delay), where=served_per_type > 0)
        missed = dropped + over_delay + excess_errors * (1.0 - delay_share)
        dt = instance.period_hours
        psi = np.asarray(error_penalty_per_request, dtype=float)
        if psi.shape != excess_errors.shape:
            psi = np.broadcast_to(psi, excess_errors.shape)
        stored = np.zeros(self._num_models, dtype=bool)
        stored[self._config_model[rented > 0]] = True
        cost = {
            "rental": dt * float(rented @ self._price),
            "storage": dt * float(self._model_storage_gb[stored].sum()) * instance.storage_price_per_gb_hour,
            "delay_penalty": dt * float((self._delay_penalty * delay * served).sum()),
            "unmet_penalty": dt * float(self._unmet_penalty @ dropped),
            "error_penalty": dt * float(psi @ excess_errors),
            "reconfiguration": float(start_fee),
        }
        scale = 1.0 / demand_total if demand_total > 0 else 0.0
        return Outcome(
            served=served,
            unserved=dropped,
            excess_errors=excess_errors,
            delay_s=delay,
            utilisation=utilisation,
            delay_violation_rate=float(over_delay.sum()) * scale,
            error_violation_rate=float(excess_errors.sum()) * scale,
            unserved_rate=float(dropped.sum()) * scale,
            slo_violation_rate=float(missed.sum()) * scale,
            cost=cost,
        )
