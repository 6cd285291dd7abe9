"""Dominated configurations: ones another configuration of the same model and GPU type beats on every count.

Configuration b dominates a when both run the same model on the same GPU type (so they share the storage and the
availability pool) and b is no worse anywhere: replica price and GPUs per replica ≤ a's, and for every query type
a may serve (``route_allowed``) capacity μ ≥, service delay D ≤ (so b may serve it too) and error rate e ≤ a's.
Replacing every replica of a by one of b, with the same routing, then keeps every constraint of MODEL.md §3
(loads, error averages, rental, GPUs and the replica limit only fall) and costs no more, so some optimal plan uses
no dominated configuration. Ties are broken by index (the lower one stays), which makes "dominates" a strict
partial order: every dominated configuration has an undominated dominator.

On random (20, 20, 20) instances about a third of the configurations are dominated, almost all INT4 ones beaten by
INT8 on the same GPUs: INT4 is weight-only (BF16 arithmetic), so it has a higher error and seldom more throughput.
"""

from __future__ import annotations

import numpy as np

from servegym.envs.evaluation import Plan
from servegym.envs.instance import Instance


def dominators(instance: Instance) -> np.ndarray:
    """(C,) index of an undominated configuration that dominates each one (itself when undominated).

    Compared within each (model, GPU type) group, at most 3 precisions × 12 (TP, PP) pairs, vectorised per group.
    """
    capacity = np.where(instance.route_allowed, instance.capacity_per_hour, 0.0)
    delay = np.where(instance.route_allowed, instance.delay_s, np.inf)
    error = instance.error_rate
    price = instance.replica_price_per_hour
    gpus = instance.gpus_per_replica
    group = instance.config_model * len(instance.gpus) + instance.config_gpu
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1], True])
    result = np.arange(instance.num_configurations)
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        members = order[start:stop]  # ascending index within the group (stable sort)
        if len(members) < 2:
            continue
        # no_worse[b, a]: b is at least as good as a in every respect; better[b, a]: strictly somewhere. Only the
        # types a may serve matter (b serves them too: D_b ≤ D_a ≤ Δ_i and μ_b ≥ μ_a > 0).
        serves = instance.route_allowed[:, members][:, None, :]  # (I, 1, A) type i is allowed on a
        mu, d, e = capacity[:, members], delay[:, members], error[:, members]
        ge_mu, lt_mu = mu[:, :, None] >= mu[:, None, :], mu[:, :, None] > mu[:, None, :]
        le_d, lt_d = d[:, :, None] <= d[:, None, :], d[:, :, None] < d[:, None, :]
        le_e, lt_e = e[:, :, None] <= e[:, None, :], e[:, :, None] < e[:, None, :]
        cheaper_or_equal = (price[members][:, None] <= price[members][None, :]) & (
            gpus[members][:, None] <= gpus[members][None, :]
        )
        no_worse = cheaper_or_equal & (~serves | (ge_mu & le_d & le_e)).all(axis=0)
        better = (
            (price[members][:, None] < price[members][None, :])
            | (gpus[members][:, None] < gpus[members][None, :])
            | (serves & (lt_mu | lt_d | lt_e)).any(axis=0)
        )
        earlier = np.arange(len(members))[:, None] < np.arange(len(members))[None, :]
        dominates = no_worse & (better | earlier)
        np.fill_diagonal(dominates, False)
        undominated = ~dominates.any(axis=0)
        # Each dominated member goes to its first undominated dominator (one exists: the order is strict).
        by_undominated = dominates & undominated[:, None]
        dominated = np.flatnonzero(~undominated)
        result[members[dominated]] = members[np.argmax(by_undominated[:, dominated], axis=0)]
    return result


def undominated(instance: Instance) -> np.ndarray:
    """(C,) bool: configurations no other configuration dominates (see the module docstring)."""
    return dominators(instance) == np.arange(instance.num_configurations)


def to_undominated(instance: Instance, plan: Plan, dominator: np.ndarray) -> Plan:
    """``plan`` with every replica and all traffic of a dominated configuration moved to its dominator.

    Feasible and no more costly whenever ``plan`` is (module docstring); ``dominator`` is :func:`dominators`.
    """
    replicas = np.bincount(dominator, weights=plan.replicas, minlength=instance.num_configurations)
    routing = np.zeros_like(plan.routing)
    np.add.at(routing.T, dominator, np.asarray(plan.routing).T)
    return Plan(replicas=np.round(replicas).astype(np.int64), routing=routing, unserved=np.array(plan.unserved))
