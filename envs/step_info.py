"""The typed ``info`` dict of the provisioning environment: every key present from ``reset`` on.

Gymnasium wants ``info`` to be a ``dict``; :class:`StepInfo` is a ``TypedDict``, so it is one, and type checkers
and readers know every key. At ``reset`` the outcome keys describe "no period yet": zero costs and rates, zero
demand, no replicas.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from servegym.envs.outcome import COST_PARTS, SLO_RATES, Outcome


class StepInfo(TypedDict):
    """What ``reset`` and ``step`` return as ``info`` (per-hour rates, $ over the period).

    Keys:
        period: Index of the next period to play (0 after reset).
        demand_label: Origin of the episode's demand (e.g. ``"azure 2024-05-16-thu"``).
        weekday: Day of week of the next period, Monday = 0.
        forecast_per_hour: (I,) forecast of the next period's demand, requests/hour.
        forecast_quantiles_per_hour: (Q, I) its quantiles at ``servegym.envs.forecast.QUANTILE_LEVELS``,
            requests/hour.
        demand_per_hour: (I,) realised demand of the period just played (zeros at reset), requests/hour.
        replicas: (C,) replicas rented in the period just played (after the repair).
        ready_replicas: (C,) capacity that served in it, replica units (cold starts serve part of a period).
        starting_replicas: (C,) replicas that were not ready when it began.
        pending_replicas: (C,) replicas that will still be starting when the next period begins.
        started_replicas: Replicas started for the period just played.
        repaired_replicas: Replicas the coupled-limit repair removed from the action.
        action_mask: Flat bool mask, ``action_masks()``.
        served_per_hour: (I, C) requests/hour served per route (what the router sent and the world carried).
        excess_errors_per_hour: (I,) expected erroneous responses beyond each type's error budget, per hour (an
            SLO outcome a serving team measures, e.g. by sampled evaluation; the error rates themselves are not
            observable online).
        utilisation: (C,) realised utilisation of each configuration's ready capacity.
        gpus: (G,) GPUs rented per GPU type.
        cost: $ per cost part of :data:`~servegym.envs.outcome.COST_PARTS`.
        total_cost: Sum of ``cost``, $.
        delay_violation_rate, error_violation_rate, unserved_rate, slo_violation_rate: Graded SLO outcomes.
        reward_scale: $ that one unit of reward stands for.
    """

    period: int
    demand_label: str
    weekday: int
    forecast_per_hour: np.ndarray
    forecast_quantiles_per_hour: np.ndarray
    demand_per_hour: np.ndarray
    replicas: np.ndarray
    ready_replicas: np.ndarray
    starting_replicas: np.ndarray
    pending_replicas: np.ndarray
    started_replicas: int
    repaired_replicas: int
    action_mask: np.ndarray
    served_per_hour: np.ndarray
    excess_errors_per_hour: np.ndarray
    utilisation: np.ndarray
    gpus: np.ndarray
    cost: dict[str, float]
    total_cost: float
    delay_violation_rate: float
    error_violation_rate: float
    unserved_rate: float
    slo_violation_rate: float
    reward_scale: float


def outcome_fields(outcome: Outcome | None, num_types: int, num_configs: int) -> dict[str, object]:
    """The keys of :class:`StepInfo` that come from a period's outcome (zeros when there is none yet)."""
    if outcome is None:
        return {
            "served_per_hour": np.zeros((num_types, num_configs)),
            "excess_errors_per_hour": np.zeros(num_types),
            "utilisation": np.zeros(num_configs),
            "cost": dict.fromkeys(COST_PARTS, 0.0),
            "total_cost": 0.0,
            **dict.fromkeys(SLO_RATES, 0.0),
        }
    return {
        "served_per_hour": outcome.served,
        "excess_errors_per_hour": outcome.excess_errors,
        "utilisation": outcome.utilisation,
        "cost": dict(outcome.cost),
        "total_cost": outcome.total_cost,
        **outcome.rates(),
    }
