"""What GH precomputes once per instance and mechanism setting; AGH reuses it across starts and repairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servegym.baselines.fleet import inverse_capacity_of
from servegym.baselines.mechanisms import (
    Mechanisms,
    candidate_configurations,
    deployment_groups,
    upgrade_targets,
    usable_routes,
)
from servegym.envs.instance import Instance


@dataclass(frozen=True)
class GreedyContext:
    """Everything GH precomputes once per instance and mechanism setting (AGH reuses it across starts).

    Attributes:
        instance: The problem.
        mechanisms: Which mechanisms are on.
        usable: (I, C) bool routes GH may use (M1, see ``mechanisms.usable_routes``).
        usable_alone: (I, C) bool usable routes that meet the error SLO on their own (e ≤ ε).
        candidates: Per query type, the configurations it may open new replicas of (M1).
        upgrade_target: (C,) configuration at twice the TP degree, or −1 (M3).
        delay_penalty_per_request: (I, C) ρ_i·D_{i,c}, $ per request routed to c.
        inverse_capacity: (I, C) 1/μ_{i,c}, replica-loads per request/hour (0 where c cannot serve i).
    """

    instance: Instance
    mechanisms: Mechanisms
    usable: np.ndarray
    usable_alone: np.ndarray
    candidates: tuple[np.ndarray, ...]
    upgrade_target: np.ndarray
    delay_penalty_per_request: np.ndarray
    inverse_capacity: np.ndarray


def build_context(instance: Instance, mechanisms: Mechanisms) -> GreedyContext:
    """Precompute M1's usable routes and candidates and M3's upgrade targets."""
    usable = usable_routes(instance, mechanisms)
    targets = upgrade_targets(instance) if mechanisms.tp_upgrade else np.full(instance.num_configurations, -1)
    return GreedyContext(
        instance=instance,
        mechanisms=mechanisms,
        usable=usable,
        usable_alone=usable & (instance.error_rate <= instance.error_slo[:, None]),
        candidates=candidate_configurations(instance, mechanisms, usable, deployment_groups(instance)),
        upgrade_target=targets,
        delay_penalty_per_request=instance.delay_penalty_per_request_s[:, None] * instance.delay_s,
        inverse_capacity=inverse_capacity_of(instance),
    )
