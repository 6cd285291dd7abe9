"""The bounded candidate set of configurations the environment's action space ranges over.

The full catalog has hundreds to thousands of configurations; an RL action space over all of them is
intractable. Per query type, the environment keeps the cheapest configuration (by $ per request at ρ_max) of
each of the ``per_type_quality`` cheapest distinct (model, GPU type) pairs that meet its delay SLO Δ_i and its
error SLO ε_i on their own, and likewise of the ``per_type_cheap`` cheapest pairs that meet Δ_i only (cheap
capacity that can be mixed with better models inside the error budget). Distinct pairs keep the set
heterogeneous instead of filling it with TP/PP variants of one deployment. The union, taken round-robin over
query types (quality picks first) without duplicates, is cut at ``max_candidates``.
"""

from __future__ import annotations

import numpy as np

from servegym.envs.instance import Instance


def select_candidates(
    instance: Instance, *, per_type_quality: int = 3, per_type_cheap: int = 2, max_candidates: int = 24
) -> list[int]:
    """Configuration indices forming the candidate set, as described in the module docstring."""
    if min(per_type_quality, per_type_cheap) < 0 or max_candidates < 1:
        raise ValueError("select_candidates: counts must be ≥ 0 and max_candidates ≥ 1")
    mu = np.where(instance.capacity_per_hour > 0, instance.capacity_per_hour, np.nan)
    dollars_per_request = instance.replica_price_per_hour[None, :] / (instance.design_utilisation * mu)
    quality_rounds: list[list[int]] = []
    cheap_rounds: list[list[int]] = []
    for i in range(instance.num_query_types):
        allowed = instance.route_allowed[i]
        good = allowed & (instance.error_rate[i] <= instance.error_slo[i])
        quality_rounds.append(_cheapest_pairs(instance, dollars_per_request[i], good, per_type_quality))
        cheap_rounds.append(_cheapest_pairs(instance, dollars_per_request[i], allowed & ~good, per_type_cheap))
    chosen: list[int] = []
    # Round-robin over query types so that a cut at max_candidates keeps every type covered.
    for rounds in (quality_rounds, cheap_rounds):
        for rank in range(max(len(r) for r in rounds)):
            for picks in rounds:
                if rank < len(picks) and picks[rank] not in chosen:
                    chosen.append(picks[rank])
    return chosen[:max_candidates]


def _cheapest_pairs(instance: Instance, cost: np.ndarray, mask: np.ndarray, count: int) -> list[int]:
    """The cheapest configuration of each of the ``count`` cheapest distinct (model, GPU type) pairs in ``mask``."""
    indices = np.flatnonzero(mask)
    picks: list[int] = []
    pairs: set[tuple[int, int]] = set()
    for c in indices[np.argsort(cost[indices], kind="stable")]:
        pair = (int(instance.config_model[c]), int(instance.config_gpu[c]))
        if pair not in pairs:
            pairs.add(pair)
            picks.append(int(c))
            if len(picks) == count:
                break
    return picks
