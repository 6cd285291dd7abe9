"""What GH precomputes once per instance and mechanism setting; AGH reuses it across starts and repairs.

None of it depends on the demand, and a re-planning policy calls GH or AGH every period on the same instance with
new demand (``Instance.with_demand``, which keeps the other fields' read-only arrays): :class:`DemandFreeCache`
keeps such values for the instances that differ only in demand, so they are computed once per episode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from servegym.baselines.heuristics.fleet import Openings, inverse_capacity_of, openings_of
from servegym.baselines.heuristics.mechanisms import (
    Mechanisms,
    candidate_configurations,
    deployment_groups,
    upgrade_targets,
    usable_routes,
)
from servegym.envs.instance import Instance

T = TypeVar("T")

_DEMAND_FIELDS = frozenset({"demand_per_hour"})
_OTHER_FIELDS = tuple(f.name for f in dataclasses.fields(Instance) if f.name not in _DEMAND_FIELDS)


def same_but_demand(a: Instance, b: Instance) -> bool:
    """Whether ``a`` and ``b`` hold the same values in every field but the demand.

    Arrays count as the same only when they are the same object (instance arrays are read-only, so the same object
    holds the same values); other fields compare by value.
    """
    for name in _OTHER_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if x is not y and (isinstance(x, np.ndarray) or isinstance(y, np.ndarray) or x != y):
            return False
    return True


class DemandFreeCache(Generic[T]):
    """Values computed from the demand-independent fields of an instance (and a key), for the last ``size`` ones.

    Args:
        size: Entries kept, least recently used dropped first.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: list[tuple[Instance, Hashable, T]] = []

    def get(self, instance: Instance, key: Hashable, compute: Callable[[], T]) -> T:
        """The value stored for an instance equal to ``instance`` but for its demand, and ``key``; else ``compute()``,
        stored."""
        for position, (stored, stored_key, value) in enumerate(self._entries):
            if stored_key == key and same_but_demand(stored, instance):
                self._entries.append(self._entries.pop(position))
                return value
        value = compute()
        self._entries.append((instance, key, value))
        if len(self._entries) > self.size:
            self._entries.pop(0)
        return value


@dataclass(frozen=True)
class CandidateTable:
    """A query type's new-replica candidates (M1) with what GH's phase 2 reads of them, gathered once.

    Attributes:
        openings: Costs and resources of a new replica of each candidate (``openings.configs`` the candidates).
        room_per_replica: (K,) ρ_max·μ_{i,c}, requests/hour a new replica can take.
    """

    openings: Openings
    room_per_replica: np.ndarray

    def subset(self, keep: np.ndarray) -> CandidateTable:
        """The table of the candidates selected by ``keep`` ((K,) bool), in order."""
        return CandidateTable(self.openings.subset(keep), self.room_per_replica[keep])


@dataclass(frozen=True)
class CoverageTable:
    """A query type's candidates that meet its error SLO on their own, with what GH's phase 1 reads of them.

    Attributes:
        openings: Costs and resources of a new replica of each (``openings.configs`` the K configurations).
        usable_alone: (I, K) bool which types each serves within their SLOs on its own.
        capacity: (I, K) μ_{i,c} clipped to ≥ 1e-300, requests/hour per replica-load.
        delay_penalty_per_request: (K,) ρ_i·D_{i,c} of the type, $ per request.
    """

    openings: Openings
    usable_alone: np.ndarray
    capacity: np.ndarray
    delay_penalty_per_request: np.ndarray

    def subset(self, keep: np.ndarray) -> CoverageTable:
        """The table of the configurations selected by ``keep`` ((K,) bool), in order."""
        return CoverageTable(
            self.openings.subset(keep),
            self.usable_alone[:, keep],
            self.capacity[:, keep],
            self.delay_penalty_per_request[keep],
        )


@dataclass(frozen=True)
class GreedyContext:
    """Everything GH precomputes once per instance and mechanism setting (AGH reuses it across starts).

    Attributes:
        instance: The problem.
        mechanisms: Which mechanisms are on.
        usable: (I, C) bool routes GH may use (M1, see ``mechanisms.usable_routes``).
        usable_alone: (I, C) bool usable routes that meet the error SLO on their own (e ≤ ε).
        candidates: Per query type, the configurations it may open new replicas of (M1).
        candidate_tables: Per query type, :class:`CandidateTable` of its candidates.
        coverage_tables: Per query type, :class:`CoverageTable` of its candidates that meet its error SLO alone.
        upgrade_target: (C,) configuration at twice the TP degree, or −1 (M3).
        upgradable: (I, C) bool configurations with an upgrade target the type may be routed to (M3).
        delay_penalty_per_request: (I, C) ρ_i·D_{i,c}, $ per request routed to c.
        inverse_capacity: (I, C) 1/μ_{i,c}, replica-loads per request/hour (0 where c cannot serve i).
        error_excess: (I, C) e_{i,c} − ε_i, the error-budget slack a request routed to c spends (negative: builds).
    """

    instance: Instance
    mechanisms: Mechanisms
    usable: np.ndarray
    usable_alone: np.ndarray
    candidates: tuple[np.ndarray, ...]
    candidate_tables: tuple[CandidateTable, ...]
    coverage_tables: tuple[CoverageTable, ...]
    upgrade_target: np.ndarray
    upgradable: np.ndarray
    delay_penalty_per_request: np.ndarray
    inverse_capacity: np.ndarray
    error_excess: np.ndarray


_CONTEXTS: DemandFreeCache[GreedyContext] = DemandFreeCache(8)
"""Contexts of the last instances planned for (one per re-planning policy and instance variant)."""


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _read_only_openings(openings: Openings) -> Openings:
    """``openings`` with every array made read-only (the context is shared across plans)."""
    for field in dataclasses.fields(openings):
        _read_only(getattr(openings, field.name))
    return openings


def _candidate_table(instance: Instance, query_type: int, configs: np.ndarray, openings: Openings) -> CandidateTable:
    """The :class:`CandidateTable` of ``query_type``'s candidates ``configs``, gathered from ``openings`` (all C)."""
    room = instance.design_utilisation * instance.capacity_per_hour[query_type, configs]
    return CandidateTable(openings=_read_only_openings(openings.subset(configs)), room_per_replica=_read_only(room))


def _coverage_table(
    instance: Instance,
    query_type: int,
    configs: np.ndarray,
    openings: Openings,
    usable_alone: np.ndarray,
    delay_penalty: np.ndarray,
) -> CoverageTable:
    """The :class:`CoverageTable` of those of ``query_type``'s candidates ``configs`` that meet its error SLO alone
    (``usable_alone`` (I, C), ``delay_penalty`` (I, C) $ per request, ``openings`` of all C configurations)."""
    alone = configs[usable_alone[query_type, configs]]
    return CoverageTable(
        openings=_read_only_openings(openings.subset(alone)),
        usable_alone=_read_only(usable_alone[:, alone]),
        capacity=_read_only(instance.capacity_per_hour[:, alone].clip(min=1e-300)),
        delay_penalty_per_request=_read_only(delay_penalty[query_type, alone]),
    )


def _compute_context(instance: Instance, mechanisms: Mechanisms) -> GreedyContext:
    usable = usable_routes(instance, mechanisms)
    usable_alone = usable & (instance.error_rate <= instance.error_slo[:, None])
    targets = upgrade_targets(instance) if mechanisms.tp_upgrade else np.full(instance.num_configurations, -1)
    delay_penalty = instance.delay_penalty_per_request_s[:, None] * instance.delay_s
    openings = openings_of(instance, np.arange(instance.num_configurations))
    candidates = tuple(
        _read_only(c) for c in candidate_configurations(instance, mechanisms, usable, deployment_groups(instance))
    )
    return GreedyContext(
        instance=instance,
        mechanisms=mechanisms,
        usable=_read_only(usable),
        usable_alone=_read_only(usable_alone),
        candidates=candidates,
        candidate_tables=tuple(
            _candidate_table(instance, i, configs, openings) for i, configs in enumerate(candidates)
        ),
        coverage_tables=tuple(
            _coverage_table(instance, i, configs, openings, usable_alone, delay_penalty)
            for i, configs in enumerate(candidates)
        ),
        upgrade_target=_read_only(targets),
        upgradable=_read_only((targets >= 0) & usable[:, targets]),
        delay_penalty_per_request=_read_only(delay_penalty),
        inverse_capacity=_read_only(inverse_capacity_of(instance)),
        error_excess=_read_only(instance.error_rate - instance.error_slo[:, None]),
    )


def build_context(instance: Instance, mechanisms: Mechanisms) -> GreedyContext:
    """Precompute M1's usable routes and candidates and M3's upgrade targets (demand-independent: reused from
    :data:`_CONTEXTS` for an instance that differs from a recent one only in its demand)."""
    context = _CONTEXTS.get(instance, mechanisms, lambda: _compute_context(instance, mechanisms))
    return context if context.instance is instance else dataclasses.replace(context, instance=instance)
