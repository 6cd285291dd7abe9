"""The rule book of the shared limits of MODEL.md §3: budget, GPU availability, storage, replica and unmet caps.

One module prices every limit and holds the one tolerance; ``evaluate_plan``, the planners' screens, the MILP's
budget row and the environment's masks and repair all call it, so "within the budget" means the same everywhere:

- the **budget** δ limits rental plus storage, :func:`spend_per_hour` = Σ_c n_c·G_c·π_g + Σ_j s_j·B_j·p^s ($/hour);
- **availability** A_g limits the GPUs rented per GPU type, Σ_{c on g} n_c·G_c (:func:`gpus_used`);
- **storage** C^s limits the GB of stored weights, Σ_j s_j·B_j, with s_j = 1 iff model j has a replica;
- **max replicas** n_max_c limits the replicas of each configuration;
- the **unmet cap** ζ_i·λ_i limits the requests/hour of type i left unserved.

A value breaks its limit iff :func:`exceeds`: value > limit + :func:`tolerance` (limit), a relative tolerance that
absorbs solver and floating-point noise; :func:`ceiling` is that largest value within, for vectorised screens that
compare many values with one limit. An infinite limit never binds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servegym.envs.instance import Instance

FEASIBILITY_TOLERANCE = 1e-6
"""Relative tolerance of every constraint check (solvers return values within ~1e-9 of their bounds)."""


_SCALARS = (float, int, np.floating, np.integer)


def tolerance(limit: float | np.ndarray) -> float | np.ndarray:
    """FEASIBILITY_TOLERANCE·max(1, |limit|), in the limit's unit (a float for a scalar limit, else an array)."""
    if not isinstance(limit, _SCALARS):
        limit = np.asarray(limit)
        if limit.ndim:
            return FEASIBILITY_TOLERANCE * np.maximum(1.0, np.abs(limit))
    return FEASIBILITY_TOLERANCE * max(1.0, abs(float(limit)))


def ceiling(limit: float | np.ndarray) -> float | np.ndarray:
    """limit + tolerance(limit): the largest value still within the limit (screens precompute it once)."""
    if not isinstance(limit, _SCALARS):
        limit = np.asarray(limit)
    return limit + tolerance(limit)


def exceeds(value: float | np.ndarray, limit: float | np.ndarray) -> bool | np.ndarray:
    """value > limit + tolerance(limit), i.e. value > ceiling(limit): the value breaks its limit (elementwise)."""
    if isinstance(value, _SCALARS) and isinstance(limit, _SCALARS):
        return bool(value > ceiling(limit))
    over = np.asarray(value) > ceiling(limit)
    return bool(over) if over.ndim == 0 else over


def rental_per_hour(instance: Instance, replicas: np.ndarray) -> float:
    """Σ_c n_c·G_c·π_g, $/hour."""
    return float(np.asarray(replicas) @ instance.replica_price_per_hour)


def stored_models(instance: Instance, replicas: np.ndarray) -> np.ndarray:
    """(J,) bool, s_j: a model's weights are stored iff it has a replica."""
    stored = np.zeros(len(instance.models), dtype=bool)
    stored[instance.config_model[np.asarray(replicas) > 0]] = True
    return stored


def storage_gb(instance: Instance, replicas: np.ndarray) -> float:
    """Σ_j s_j·B_j, GB of stored weights."""
    return float(instance.model_storage_gb[stored_models(instance, replicas)].sum())


def spend_per_hour(instance: Instance, replicas: np.ndarray) -> float:
    """Rental plus storage, $/hour: what the budget δ limits."""
    return rental_per_hour(instance, replicas) + storage_gb(instance, replicas) * instance.storage_price_per_gb_hour


def gpus_used(instance: Instance, replicas: np.ndarray) -> np.ndarray:
    """(G,) GPUs rented per GPU type, Σ_{c on g} n_c·G_c (float, whole numbers)."""
    weights = np.asarray(replicas) * instance.gpus_per_replica
    return np.bincount(instance.config_gpu, weights=weights, minlength=len(instance.gpus))


@dataclass(frozen=True)
class Usage:
    """What a replica vector uses of the shared limits, each total computed once.

    Attributes:
        rental_per_hour: Σ_c n_c·G_c·π_g, $/hour.
        storage_gb: Σ_j s_j·B_j, GB of stored weights.
        spend_per_hour: rental + storage, $/hour (what the budget limits; equals :func:`spend_per_hour`).
        gpus: (G,) GPUs rented per GPU type.
    """

    rental_per_hour: float
    storage_gb: float
    spend_per_hour: float
    gpus: np.ndarray


def usage(instance: Instance, replicas: np.ndarray) -> Usage:
    """The :class:`Usage` of ``replicas`` (C,)."""
    rental = rental_per_hour(instance, replicas)
    stored = storage_gb(instance, replicas)
    return Usage(rental, stored, rental + stored * instance.storage_price_per_gb_hour, gpus_used(instance, replicas))


@dataclass(frozen=True)
class LimitExcess:
    """How far a plan is over each limit: value − limit where :func:`exceeds` holds, exactly 0 elsewhere.

    An overshoot within the tolerance counts as within and is 0, so ``excess > 0`` and :meth:`within` are the same
    rule as :func:`exceeds` (and as ``evaluate_plan``'s violations).
    """

    budget_per_hour: float  # $/hour of spend (rental + storage) over the budget δ
    availability_gpus: np.ndarray  # (G,) GPUs rented over A_g, per GPU type
    storage_gb: float  # GB of stored weights over C^s
    max_replicas: np.ndarray  # (C,) replicas over n_max_c, per configuration
    unmet_cap: np.ndarray  # (I,) requests/hour unserved over ζ_i·λ_i (zeros when no unserved demand is given)

    def within(self) -> bool:
        """True iff no limit is exceeded beyond its tolerance."""
        return not (
            self.budget_per_hour > 0.0
            or self.storage_gb > 0.0
            or np.any(self.availability_gpus > 0.0)
            or np.any(self.max_replicas > 0.0)
            or np.any(self.unmet_cap > 0.0)
        )


def _excess(value: float | np.ndarray, limit: float | np.ndarray) -> float | np.ndarray:
    """value − limit where it :func:`exceeds` the limit, else 0 (a float for scalars)."""
    if isinstance(value, _SCALARS) and isinstance(limit, _SCALARS):
        return float(value) - float(limit) if exceeds(value, limit) else 0.0
    over = exceeds(value, limit)
    return np.subtract(value, limit, out=np.zeros(np.shape(over)), where=over)


def limit_excess(
    instance: Instance,
    replicas: np.ndarray,
    unserved: np.ndarray | None = None,
    demand_per_hour: np.ndarray | None = None,
    *,
    used: Usage | None = None,
) -> LimitExcess:
    """Every limit's excess for ``replicas`` (C,) and, when given, ``unserved`` (I,) requests/hour.

    Args:
        instance: The limits δ, A_g, C^s, n_max and ζ.
        replicas: (C,) replica counts n.
        unserved: (I,) requests/hour dropped (u); None leaves the unmet cap at zeros.
        demand_per_hour: (I,) demand λ the unmet cap ζ_i·λ_i scales with; None for ``instance.demand_per_hour``.
        used: ``usage(instance, replicas)`` when the caller has it already (``evaluate_plan`` reports the totals
            too); None computes it.
    """
    n = np.asarray(replicas)
    used = usage(instance, n) if used is None else used
    if unserved is None:
        unmet = np.zeros(instance.num_query_types)
    else:
        demand = instance.demand_per_hour if demand_per_hour is None else np.asarray(demand_per_hour, dtype=float)
        unmet = _excess(np.asarray(unserved, dtype=float), instance.max_unmet_fraction * demand)
    return LimitExcess(
        budget_per_hour=_excess(used.spend_per_hour, instance.budget_per_hour),
        availability_gpus=_excess(used.gpus, instance.gpu_availability),
        storage_gb=_excess(used.storage_gb, instance.storage_capacity_gb),
        max_replicas=_excess(n, instance.max_replicas),
        unmet_cap=unmet,
    )


def within_limits(instance: Instance, replicas: np.ndarray) -> bool:
    """True iff ``replicas`` keep the budget, availability, storage and replica limits (the unmet cap aside)."""
    return limit_excess(instance, replicas).within()


def budget_room_per_hour(instance: Instance, spend_per_hour: float) -> float:
    """δ − spend + tolerance(δ), $/hour: what a change may still add to ``spend_per_hour`` and keep the budget.

    Vectorised screens compare added $/hour with this room (``added ≤ room``) instead of re-typing the tolerance.
    """
    budget = instance.budget_per_hour
    return budget - spend_per_hour + tolerance(budget)
