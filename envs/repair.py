"""The action masks and the coupled-limit repair of the environment, on the rule book's limits (``limits.py``).

Per-dimension masks (sb3-contrib's ``MultiDiscrete`` masks) cannot express limits that several configurations
share, so the masks only forbid counts that break a limit *on their own*, and a documented repair enforces the
shared ones. Both use the rule book: the budget is rental + storage per hour (``limits.spend_per_hour``), GPU
availability per GPU type, storage capacity for the stored models' weights, each with the rule book's tolerance.

Repair rule: while a limit is exceeded, remove one replica from the most expensive running configuration that
uses the exceeded resource (ties to the lower index), in this order:

1. availability, GPU type by GPU type (only configurations on that type use it);
2. storage: while the stored weights exceed the capacity, empty the most expensive running configuration;
3. budget: remove one replica at a time from the most expensive running configuration until rental + storage
   fit (a model's storage leaves with its last replica).

The most expensive configuration stays the most expensive until it is empty, so each step empties
configurations in price order and stops part-way through one; :class:`ActionRepair` computes that end state
directly (in integers for GPUs, and for the budget with the exact spend of the rule book, so rounding cannot make
it differ from one-at-a-time removal).
"""

from __future__ import annotations

import math

import numpy as np

from servegym.envs.instance import Instance
from servegym.envs.limits import exceeds, gpus_used, spend_per_hour, storage_gb, within_limits


class ActionRepair:
    """Masks and repair for one instance and the action space's largest counts.

    Args:
        instance: The candidate instance the actions range over.
        max_replicas: (C,) largest count of each action dimension.
    """

    def __init__(self, instance: Instance, max_replicas: np.ndarray) -> None:
        self.instance = instance
        self.max_replicas = np.asarray(max_replicas, dtype=np.int64)
        num_configs = instance.num_configurations
        price = instance.replica_price_per_hour
        self._price_order = np.argsort(-price, kind="stable")
        self._gpu_order = np.lexsort((np.arange(num_configs), -price, instance.config_gpu))
        gpu_of_position = instance.config_gpu[self._gpu_order]
        self._gpu_group_start = np.searchsorted(gpu_of_position, gpu_of_position)
        self.mask = self._static_mask()
        self._last: tuple[bytes, np.ndarray, int] | None = None  # (action bytes, repaired, removed) of the last call

    def _static_mask(self) -> np.ndarray:
        """Flat bool mask: count k of candidate c allowed iff k replicas of c alone fit every limit."""
        inst = self.instance
        blocks = []
        for c in range(inst.num_configurations):
            allowed = np.zeros(self.max_replicas[c] + 1, dtype=bool)
            alone = np.zeros(inst.num_configurations, dtype=np.int64)
            for k in range(self.max_replicas[c] + 1):
                alone[c] = k
                if not self.fits(alone):
                    break  # every limit grows with k, so larger counts fail too
                allowed[k] = True
            blocks.append(allowed)
        mask = np.concatenate(blocks)
        mask.setflags(write=False)
        return mask

    def fits(self, replicas: np.ndarray) -> bool:
        """Whether ``replicas`` (C,) keep every limit of the rule book (``limits.within_limits``)."""
        return within_limits(self.instance, replicas)

    def repair(self, replicas: np.ndarray) -> tuple[np.ndarray, int]:
        """Apply the rule of the module docstring to ``replicas`` (C,) int64 in place; returns (replicas, removed).

        The last action and its repair are remembered: an agent that repeats its action is not repaired again.
        """
        key = replicas.tobytes()
        if self._last is not None and self._last[0] == key:
            replicas[:] = self._last[1]
            return replicas, self._last[2]
        before = int(replicas.sum())
        self._repair_availability(replicas)
        self._repair_storage(replicas)
        self._repair_budget(replicas)
        removed = before - int(replicas.sum())
        self._last = (key, replicas.copy(), removed)
        return replicas, removed

    def _repair_availability(self, replicas: np.ndarray) -> None:
        inst = self.instance
        order = self._gpu_order
        gpus = inst.gpus_per_replica[order]
        running = replicas[order]
        used = running * gpus  # GPUs per position of the grouped order
        excess = (gpus_used(inst, replicas) - inst.gpu_availability)[inst.config_gpu[order]]  # whole GPUs
        before = np.cumsum(used) - used  # GPUs of the positions before, from the start of the order
        still_over = excess - (before - before[self._gpu_group_start])
        remove = np.clip(-(-still_over // gpus), 0, running).astype(np.int64)
        replicas[order] -= remove

    def _repair_storage(self, replicas: np.ndarray) -> None:
        inst = self.instance
        for c in self._price_order:
            if not exceeds(storage_gb(inst, replicas), inst.storage_capacity_gb):
                return
            replicas[c] = 0

    def _repair_budget(self, replicas: np.ndarray) -> None:
        inst = self.instance
        budget = inst.budget_per_hour
        if not exceeds(spend_per_hour(inst, replicas), budget):
            return
        # One-at-a-time removal empties configurations in price order and stops at the first position k where
        # emptying the prefix order[: k + 1] fits; the exact spend falls with k, so k is found by bisection.
        order = self._price_order
        low, high = 0, len(order) - 1  # the first fitting prefix end lies in [low, high] (the empty plan fits)
        while low < high:
            middle = (low + high) // 2
            trial = replicas.copy()
            trial[order[: middle + 1]] = 0
            if exceeds(spend_per_hour(inst, trial), budget):
                low = middle + 1
            else:
                high = middle
        replicas[order[:low]] = 0
        c = order[low]
        running = int(replicas[c])
        excess = spend_per_hour(inst, replicas) - budget
        # Fewest removals from c whose spend fits: estimate from the rental alone, then confirm with the exact
        # spend (storage leaves with the model's last replica), one replica at a time around the estimate.
        keep = max(running - math.ceil(excess / inst.replica_price_per_hour[c]), 0)
        replicas[c] = keep
        while keep > 0 and exceeds(spend_per_hour(inst, replicas), budget):
            keep -= 1
            replicas[c] = keep
        while keep < running:
            replicas[c] = keep + 1
            if exceeds(spend_per_hour(inst, replicas), budget):
                replicas[c] = keep
                break
            keep += 1
