"""The bounded candidate set of configurations the environment's action space ranges over.

The full catalog has hundreds to thousands of configurations; an RL action space over all of them is
intractable. Per query type i the environment keeps two kinds of candidates, each as the cheapest configuration
of one of the cheapest distinct (model, GPU type) pairs (distinct pairs keep the set heterogeneous instead of
filling it with TP/PP variants of one deployment):

- *quality* candidates meet the delay SLO Δ_i and the error SLO ε_i on their own, ranked by the rental of serving
  i's nominal demand alone with whole replicas, ⌈λ_i / (ρ_max·μ_{i,c})⌉ · price_c (so a huge replica is not
  preferred for a small type just because it is cheap per request);
- *cheap* candidates meet Δ_i but not ε_i; they are only useful mixed with better models inside the error budget,
  so they are ranked by the $/request of the cheapest error-feasible blend with i's first quality candidate q:
  a share s = (ε_i − e_q) / (e_c − e_q) on c and 1 − s on q.

The union, taken round-robin over query types (quality picks first) without duplicates, is cut at
``max_candidates``.
"""

from __future__ import annotations

import numpy as np

from servegym.envs.instance import Instance


def select_candidates(
    instance: Instance, *, per_type_quality: int = 2, per_type_cheap: int = 4, max_candidates: int = 32
) -> list[int]:
    """Configuration indices forming the candidate set, as described in the module docstring."""
    if min(per_type_quality, per_type_cheap) < 0 or max_candidates < 1:
        raise ValueError("select_candidates: counts must be ≥ 0 and max_candidates ≥ 1")
    mu = np.where(instance.capacity_per_hour > 0, instance.capacity_per_hour, np.nan)
    price = instance.replica_price_per_hour[None, :]
    per_request = price / (instance.design_utilisation * mu)
    whole_replicas = np.maximum(np.ceil(instance.demand_per_hour[:, None] / (instance.design_utilisation * mu)), 1.0)
    quality_rounds: list[list[int]] = []
    cheap_rounds: list[list[int]] = []
    for i in range(instance.num_query_types):
        allowed = instance.route_allowed[i]
        error = instance.error_rate[i]
        good = allowed & (error <= instance.error_slo[i])
        quality = _cheapest_pairs(instance, whole_replicas[i] * price[0], good, per_type_quality)
        quality_rounds.append(quality)
        if not quality:
            cheap_rounds.append([])
            continue
        partner = quality[0]
        share = (instance.error_slo[i] - error[partner]) / np.maximum(error - error[partner], 1e-12)
        blended = share * per_request[i] + (1.0 - share) * per_request[i, partner]
        cheap_rounds.append(_cheapest_pairs(instance, blended, allowed & ~good, per_type_cheap))
    chosen: list[int] = []
    for rounds in (quality_rounds, cheap_rounds):
        for rank in range(max(len(r) for r in rounds)):
            for picks in rounds:
                if rank < len(picks) and picks[rank] not in chosen:
                    chosen.append(picks[rank])
    return chosen[:max_candidates]


def _cheapest_pairs(instance: Instance, cost: np.ndarray, mask: np.ndarray, count: int) -> list[int]:
    """The cheapest configuration of each of the ``count`` cheapest distinct (model, GPU type) pairs in ``mask``."""
    indices = np.flatnonzero(mask & np.isfinite(cost))
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
