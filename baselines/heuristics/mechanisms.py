"""The three GH mechanisms of the paper as switchable precomputations (see docs/heuristics.md).

- **M1** TP/PP-aware feasibility selection: :func:`usable_routes` and :func:`candidate_configurations`.
- **M2** cost-per-effective-coverage ranking: a switch read by the construction in ``greedy.py``.
- **M3** TP upgrade: :func:`upgrade_targets` maps each configuration to its (2t, p) sibling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servegym.envs.instance import Instance


@dataclass(frozen=True)
class Mechanisms:
    """Which GH mechanisms are switched on (all by default; the ablation turns one off at a time).

    Attributes:
        tp_pp_selection: M1. On: per (query type, model, tier) keep the cheapest (t, p) configuration the type may
            be routed to (fits memory, meets its delay SLO) and whose error rate leaves its error SLO reachable.
            Off: per (model, tier) take the configuration with the fewest GPUs, whatever the type's delay SLO.
        coverage_ranking: M2. On: rank candidates by added $/hour per request/hour they can actually absorb.
            Off: rank by the raw $/hour they add.
        tp_upgrade: M3. On: raising the TP degree of an active replica (t → 2t) competes with opening a new one.
            Off: only new replicas are opened.
    """

    tp_pp_selection: bool = True
    coverage_ranking: bool = True
    tp_upgrade: bool = True

    @property
    def label(self) -> str:
        """Short name: ``"full"`` or the switched-off mechanisms, e.g. ``"no-M1"``."""
        off = [
            name
            for name, on in (("M1", self.tp_pp_selection), ("M2", self.coverage_ranking), ("M3", self.tp_upgrade))
            if not on
        ]
        return "full" if not off else "no-" + "-".join(off)


ALL_MECHANISMS = Mechanisms()
"""The default: M1, M2 and M3 on."""


def deployment_groups(instance: Instance) -> np.ndarray:
    """(C,) int id of each configuration's deployment group (model, GPU type, precision); TP and PP vary within."""
    keys = [(c.model, c.gpu, c.precision) for c in instance.configurations]
    ids: dict[tuple[str, str, str], int] = {}
    return np.array([ids.setdefault(key, len(ids)) for key in keys], dtype=np.int64)


def usable_routes(instance: Instance, mechanisms: Mechanisms) -> np.ndarray:
    """(I, C) bool: the routes GH may put demand on.

    With M1 these are the allowed routes (μ > 0, fits memory, D ≤ Δ_i) whose error rate leaves ε_i reachable:
    e ≤ ε_i, or some allowed route of the type has e < ε_i to blend with. Without M1 any route with μ > 0,
    delay SLO ignored (evaluate_plan then flags the delay violations).
    """
    if not mechanisms.tp_pp_selection:
        return instance.capacity_per_hour > 0.0
    allowed = instance.route_allowed
    error_slo = instance.error_slo[:, None]
    best_error = np.where(allowed, instance.error_rate, np.inf).min(axis=1, initial=np.inf)[:, None]
    return allowed & ((instance.error_rate <= error_slo) | (best_error < error_slo))


def candidate_configurations(
    instance: Instance, mechanisms: Mechanisms, usable: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Per query type, the configurations GH may open new replicas of: at most one per deployment group.

    Args:
        instance: The problem.
        mechanisms: M1 decides how the (t, p) of each group is chosen.
        usable: (I, C) bool from :func:`usable_routes`.
        groups: (C,) group ids from :func:`deployment_groups`.

    Returns:
        One int array of configuration indices per query type. With M1: per group (and error rate, which within a
        group differs only in hand-made instances) the usable configuration with the cheapest replica ($/hour),
        ties to the higher capacity for the type. Without M1: per group the
        configuration with the fewest GPUs (ties to the lower PP degree), kept where it can serve the type at all.
    """
    price = instance.replica_price_per_hour
    if not mechanisms.tp_pp_selection:
        pipeline = np.array([c.pipeline_parallel for c in instance.configurations])
        order = np.lexsort((pipeline, instance.gpus_per_replica, groups))
        _, first = np.unique(groups[order], return_index=True)
        smallest = order[first]
        return tuple(smallest[usable[i, smallest]] for i in range(instance.num_query_types))
    candidates = []
    for i in range(instance.num_query_types):
        configs = np.flatnonzero(usable[i])
        error = instance.error_rate[i, configs]
        order = np.lexsort((-instance.capacity_per_hour[i, configs], price[configs], error, groups[configs]))
        keys = np.stack([groups[configs[order]], error[order]])
        first = np.flatnonzero(np.r_[True, np.any(keys[:, 1:] != keys[:, :-1], axis=0)][: len(configs)])
        candidates.append(configs[order[first]])
    return tuple(candidates)


def upgrade_targets(instance: Instance) -> np.ndarray:
    """(C,) int: the configuration with the same model, tier and PP at twice the TP degree, or −1.

    An upgrade keeps the model and tier, so the error rates stay the same; targets whose error rates differ
    (possible only in hand-made instances) are not offered.
    """
    index = {
        (c.model, c.gpu, c.precision, c.tensor_parallel, c.pipeline_parallel): k
        for k, c in enumerate(instance.configurations)
    }
    targets = np.array(
        [
            index.get((c.model, c.gpu, c.precision, 2 * c.tensor_parallel, c.pipeline_parallel), -1)
            for c in instance.configurations
        ],
        dtype=np.int64,
    )
    sources = np.flatnonzero(targets >= 0)
    same_error = (instance.error_rate[:, sources] == instance.error_rate[:, targets[sources]]).all(axis=0)
    targets[sources[~same_error]] = -1
    return targets
