"""Mutable bookkeeping of a plan under construction: replicas, routing, loads and the shared resources they use.

The greedy construction adds replicas and routes demand step by step; :class:`Fleet` keeps the running totals
(replica-loads, error slack, spend, GPUs, storage) so that each step checks its limits in O(candidates) instead
of re-evaluating the plan. The limits themselves (what the budget covers, the tolerance) are those of
``servegym.envs.limits``. This is incremental bookkeeping only: the final plan is always judged by
``evaluate_plan`` (through ``finish``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from servegym.envs import limits
from servegym.envs.evaluation import Plan
from servegym.envs.instance import Instance

LIMIT_NAMES: tuple[str, ...] = ("budget", "availability", "storage", "max_replicas")
"""The shared limits a new replica can hit, in the order :meth:`Fleet.blocking_limits` reports them."""


def inverse_capacity_of(instance: Instance) -> np.ndarray:
    """(I, C) 1/μ_{i,c} in replica-loads per request/hour (0 where c cannot serve i)."""
    capacity = instance.capacity_per_hour
    return np.divide(1.0, capacity, out=np.zeros_like(capacity), where=capacity > 0)


@dataclass(frozen=True)
class Openings:
    """What a new replica of each of a fixed set of configurations costs and uses, gathered once (demand-free).

    Attributes:
        configs: (K,) configuration indices.
        price_per_hour: (K,) rental of one replica, $/hour.
        models: (K,) model of each configuration.
        storage_price_per_hour: (K,) storage of the model's weights, $/hour (added when the model is new).
        storage_gb: (K,) the model's weights, GB.
        gpu_types: (K,) GPU type of each configuration.
        gpus: (K,) GPUs per replica.
        gpu_ceiling: (K,) ``limits.ceiling`` of the GPU type's availability, GPUs.
        replica_ceiling: (K,) ``limits.ceiling`` of the configuration's replica limit.
    """

    configs: np.ndarray
    price_per_hour: np.ndarray
    models: np.ndarray
    storage_price_per_hour: np.ndarray
    storage_gb: np.ndarray
    gpu_types: np.ndarray
    gpus: np.ndarray
    gpu_ceiling: np.ndarray
    replica_ceiling: np.ndarray

    def subset(self, keep: np.ndarray) -> Openings:
        """The openings of the configurations selected by ``keep`` ((K,) bool or indices), in order."""
        return Openings(**{field.name: getattr(self, field.name)[keep] for field in fields(self)})


def openings_of(instance: Instance, configs: np.ndarray) -> Openings:
    """The :class:`Openings` of ``configs`` (K,) on ``instance`` (values as :class:`Fleet` computes them)."""
    models = instance.config_model[configs]
    gpu_types = instance.config_gpu[configs]
    return Openings(
        configs=configs,
        price_per_hour=instance.replica_price_per_hour[configs],
        models=models,
        storage_price_per_hour=(instance.model_storage_gb * instance.storage_price_per_gb_hour)[models],
        storage_gb=instance.model_storage_gb[models],
        gpu_types=gpu_types,
        gpus=instance.gpus_per_replica[configs],
        gpu_ceiling=limits.ceiling(instance.gpu_availability)[gpu_types],
        replica_ceiling=limits.ceiling(instance.max_replicas)[configs],
    )


class Fleet:
    """Replicas and routing of a plan being built, with running totals of every shared resource.

    Attributes:
        replicas: (C,) int replicas n per configuration.
        load: (C,) replica-loads Σ_i x_{i,c}/μ_{i,c} (a replica holds at most ρ_max).
        routing: (I, C) requests/hour routed (x).
        dropped: (I,) requests/hour deliberately left unserved (u).
        error_slack: (I,) Σ_c (ε_i − e_{i,c})·x_{i,c}, error-weighted requests/hour; the error SLO holds iff ≥ 0.
        spend_per_hour: Rental plus storage, $/hour, what the budget limits (``limits.spend_per_hour``, kept running).
        gpus_used: (G,) GPUs rented per GPU type.
        model_replicas: (J,) replicas per model (a model's weights are stored iff > 0).
        storage_gb: Weights stored, GB.
    """

    def __init__(self, instance: Instance, inverse_capacity: np.ndarray | None = None) -> None:
        """Start empty. ``inverse_capacity`` (I, C) is :func:`inverse_capacity_of` ``instance`` when the caller
        has it already (AGH builds hundreds of fleets per instance)."""
        self.instance = instance
        num_types, num_configs = instance.num_query_types, instance.num_configurations
        self.replicas = np.zeros(num_configs, dtype=np.int64)
        self.load = np.zeros(num_configs)
        self.routing = np.zeros((num_types, num_configs))
        self.dropped = np.zeros(num_types)
        self.error_slack = np.zeros(num_types)
        self.spend_per_hour = 0.0
        self.gpus_used = np.zeros(len(instance.gpus), dtype=np.int64)
        self.model_replicas = np.zeros(len(instance.models), dtype=np.int64)
        self.storage_gb = 0.0
        self._inverse_capacity = inverse_capacity if inverse_capacity is not None else inverse_capacity_of(instance)
        self._storage_price_per_hour = instance.model_storage_gb * instance.storage_price_per_gb_hour
        # The largest totals within each limit (limits.ceiling), so the screens below compare without recomputing.
        self._budget_ceiling = limits.ceiling(instance.budget_per_hour)
        self._gpu_ceiling = limits.ceiling(instance.gpu_availability)
        self._storage_ceiling = limits.ceiling(instance.storage_capacity_gb)
        self._replica_ceiling = limits.ceiling(instance.max_replicas)

    @classmethod
    def from_plan(cls, instance: Instance, plan: Plan, inverse_capacity: np.ndarray | None = None) -> Fleet:
        """The bookkeeping of an existing plan; its unserved demand counts as deliberately dropped.

        ``inverse_capacity`` as in :class:`Fleet`. Loads and error slack are summed over the configurations that
        carry traffic only (a plan routes over a few of thousands).
        """
        fleet = cls(instance, inverse_capacity)
        fleet.replicas = np.round(plan.replicas).astype(np.int64)
        fleet.routing = np.array(plan.routing, dtype=float)
        fleet.dropped = np.array(plan.unserved, dtype=float)
        used = np.flatnonzero(fleet.routing.any(axis=0))
        routed = fleet.routing[:, used]
        fleet.load[used] = (routed * fleet._inverse_capacity[:, used]).sum(axis=0)
        fleet.error_slack = ((instance.error_slo[:, None] - instance.error_rate[:, used]) * routed).sum(axis=1)
        fleet.model_replicas = np.bincount(
            instance.config_model, weights=fleet.replicas, minlength=len(instance.models)
        )
        fleet.model_replicas = fleet.model_replicas.astype(np.int64)
        fleet.storage_gb = limits.storage_gb(instance, fleet.replicas)
        fleet.spend_per_hour = limits.spend_per_hour(instance, fleet.replicas)
        fleet.gpus_used = limits.gpus_used(instance, fleet.replicas).astype(np.int64)
        return fleet

    def release_configuration(self, config: int) -> None:
        """Remove every replica of ``config`` and unroute its traffic (the types' demand becomes residual)."""
        for query_type in np.flatnonzero(self.routing[:, config] > 0.0):
            self.assign(int(query_type), config, -float(self.routing[query_type, config]))
        self.routing[:, config] = 0.0
        self.load[config] = 0.0
        while self.replicas[config] > 0:
            self.remove_replica(config)

    def release_query_type(self, query_type: int) -> None:
        """Unroute all traffic of ``query_type`` and forget its drops (its whole demand becomes residual)."""
        for config in np.flatnonzero(self.routing[query_type] > 0.0):
            self.assign(query_type, int(config), -float(self.routing[query_type, config]))
        self.routing[query_type] = 0.0
        self.error_slack[query_type] = 0.0
        self.dropped[query_type] = 0.0

    def opening_cost_per_hour(self, configs: np.ndarray) -> np.ndarray:
        """$/hour added by one more replica of each of ``configs``: rental, plus storage if the model is new."""
        models = self.instance.config_model[configs]
        storage = np.where(self.model_replicas[models] == 0, self._storage_price_per_hour[models], 0.0)
        return self.instance.replica_price_per_hour[configs] + storage

    def screen_openings(self, openings: Openings) -> tuple[np.ndarray, np.ndarray]:
        """((K,) $/hour added, (K,) bool blocked) of one more replica of each of ``openings``' configurations.

        The same values as :meth:`opening_cost_per_hour` and :meth:`blocked` with the opening cost and the
        configurations' GPUs, from gathers made once per instance.
        """
        new_model = self.model_replicas[openings.models] == 0
        cost = openings.price_per_hour + np.where(new_model, openings.storage_price_per_hour, 0.0)
        blocked = self.spend_per_hour + cost > self._budget_ceiling
        blocked |= self.gpus_used[openings.gpu_types] + openings.gpus > openings.gpu_ceiling
        blocked |= self.storage_gb + new_model * openings.storage_gb > self._storage_ceiling
        blocked |= self.replicas[openings.configs] + 1 > openings.replica_ceiling
        return cost, blocked

    def blocked(self, configs: np.ndarray, extra_cost_per_hour: np.ndarray, extra_gpus: np.ndarray) -> np.ndarray:
        """(K,) bool: the change breaks some limit (see :meth:`blocking_limits`)."""
        return self.blocking_limits(configs, extra_cost_per_hour, extra_gpus, combined=True)[0]

    def blocking_limits(
        self, configs: np.ndarray, extra_cost_per_hour: np.ndarray, extra_gpus: np.ndarray, *, combined: bool = False
    ) -> np.ndarray:
        """(len(LIMIT_NAMES), K) bool: which limits adding one replica of each of ``configs`` would break
        (``limits.exceeds`` on the totals after the change, against the precomputed ``limits.ceiling``).

        Args:
            configs: (K,) configurations gaining a replica.
            extra_cost_per_hour: (K,) $/hour the change adds (may differ from the opening cost for upgrades).
            extra_gpus: (K,) GPUs of the configuration's type the change adds.
            combined: Return a single row, the OR of all limits.
        """
        instance = self.instance
        models = instance.config_model[configs]
        gpu_types = instance.config_gpu[configs]
        storage_after = self.storage_gb + (self.model_replicas[models] == 0) * instance.model_storage_gb[models]
        broken = (
            self.spend_per_hour + extra_cost_per_hour > self._budget_ceiling,
            self.gpus_used[gpu_types] + extra_gpus > self._gpu_ceiling[gpu_types],
            storage_after > self._storage_ceiling,
            self.replicas[configs] + 1 > self._replica_ceiling[configs],
        )
        if combined:
            return (broken[0] | broken[1] | broken[2] | broken[3])[None, :]
        return np.stack(broken)

    def add_replica(self, config: int) -> None:
        """Rent one more replica of ``config`` (storing its model's weights if new)."""
        instance = self.instance
        model = instance.config_model[config]
        if self.model_replicas[model] == 0:
            self.storage_gb += float(instance.model_storage_gb[model])
            self.spend_per_hour += float(self._storage_price_per_hour[model])
        self.model_replicas[model] += 1
        self.replicas[config] += 1
        self.spend_per_hour += float(instance.replica_price_per_hour[config])
        self.gpus_used[instance.config_gpu[config]] += instance.gpus_per_replica[config]

    def remove_replica(self, config: int) -> None:
        """Release one replica of ``config`` (and the model's weights if it was the last); loads are unchanged."""
        instance = self.instance
        model = instance.config_model[config]
        self.model_replicas[model] -= 1
        if self.model_replicas[model] == 0:
            self.storage_gb -= float(instance.model_storage_gb[model])
            self.spend_per_hour -= float(self._storage_price_per_hour[model])
        self.replicas[config] -= 1
        self.spend_per_hour -= float(instance.replica_price_per_hour[config])
        self.gpus_used[instance.config_gpu[config]] -= instance.gpus_per_replica[config]

    def assign(self, query_type: int, config: int, amount_per_hour: float) -> None:
        """Route ``amount_per_hour`` requests/hour of ``query_type`` to ``config``."""
        self.routing[query_type, config] += amount_per_hour
        self.load[config] += amount_per_hour * self._inverse_capacity[query_type, config]
        excess = self.instance.error_rate[query_type, config] - self.instance.error_slo[query_type]
        self.error_slack[query_type] -= excess * amount_per_hour

    def move_share(self, source: int, target: int, fraction: float) -> None:
        """Move ``fraction`` of every type's traffic on ``source`` to ``target`` (same error rates assumed)."""
        share = self.routing[:, source] * fraction
        self.routing[:, source] -= share
        self.routing[:, target] += share
        self.load[source] *= 1.0 - fraction
        self.load[target] += float(share @ self._inverse_capacity[:, target])

    def moved_load(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(K,) replica-loads one replica's share of each source's traffic takes on the matching target."""
        share = self.routing[:, sources] / self.replicas[sources]
        return (share * self._inverse_capacity[:, targets]).sum(axis=0)

    def trim_idle_replicas(self) -> None:
        """Release replicas beyond the ⌈load/ρ_max⌉ each configuration needs."""
        needed = np.ceil(self.load / self.instance.design_utilisation - 1e-9).astype(np.int64)
        for config in np.flatnonzero(self.replicas > needed):
            for _ in range(self.replicas[config] - needed[config]):
                self.remove_replica(int(config))

    def plan(self) -> Plan:
        """The plan built so far; everything not routed counts as unserved."""
        served = self.routing.sum(axis=1)
        unserved = np.maximum(self.instance.demand_per_hour - served, 0.0)
        return Plan(replicas=self.replicas.copy(), routing=self.routing.copy(), unserved=unserved)
