"""Replicas that are still starting (MODEL.md §6, "Start-up time"): which share of the rented replicas serves.

A replica of configuration c started for period t is rented from the start of t but serves only once ready,
S_c seconds later (``Instance.startup_s``, from the catalog's start-up constants). In the period of age a ≥ 0
after its start (a = 0: the period it was started for) it is ready for the share

    F_{a,c} = clip(a + 1 − S_c/Δt, 0, 1)

of the period: (1 − S_c/Δt)⁺ in its first period, nothing while S_c is not yet over, whole periods after that.
Its capacity in that period is F_{a,c} replica units (the router routes over it, the world serves with it).

Replicas of one configuration are tracked in cohorts by age. When the target count rises, the difference starts
(age 0); when it falls, the youngest replicas stop first, as Kubernetes' ReplicaSet controller deletes pods that
are not ready before ready ones: cancelling a replica that is still loading loses nothing that serves. Stopped
replicas stop costing at the period boundary.

**The fleet an episode begins with** (``initial_fleet``). An episode is one day of a service that runs around the
clock, so by default (``"warm"``, env v3) the replicas of the first target are already serving when the episode
begins: they were started in the period before it, are ready for the whole of period 0, and were neither started
nor charged a start fee inside the episode. ``"empty"`` (env v2) begins with no replicas: every replica of the
first target starts cold in period 0.
"""

from __future__ import annotations

import math

import numpy as np

INITIAL_FLEETS = ("warm", "empty")
"""What an episode begins with: the first target already serving (``warm``), or no replicas (``empty``)."""


class StartingReplicas:
    """Cohorts of rented replicas by age, for one episode.

    Args:
        startup_s: (C,) S_c, seconds from start to ready of one replica of each configuration.
        period_s: Δt, seconds per period.
        initial_fleet: ``warm`` (the first target is ready at once and counts no starts) or ``empty`` (the first
            target starts cold); see the module docstring.
    """

    def __init__(self, startup_s: np.ndarray, period_s: float, initial_fleet: str = "warm") -> None:
        startup = np.asarray(startup_s, dtype=float)
        if startup.ndim != 1 or not np.all(np.isfinite(startup) & (startup >= 0.0)):
            raise ValueError("StartingReplicas: startup_s must be a 1-D array of finite seconds ≥ 0")
        if not period_s > 0.0:
            raise ValueError(f"StartingReplicas: period_s {period_s} must be > 0 seconds")
        if initial_fleet not in INITIAL_FLEETS:
            raise ValueError(f"StartingReplicas: initial_fleet {initial_fleet!r} not one of {list(INITIAL_FLEETS)}")
        self.initial_fleet = initial_fleet
        self.startup_s = startup
        self.period_s = float(period_s)
        periods = startup / period_s  # S_c / Δt
        # Ages 0..K-1 may still be starting; age K (the last row) holds every replica that is ready all period.
        self.num_ages = max(math.ceil(float(periods.max(initial=0.0)) - 1e-12), 0) + 1
        ages = np.arange(self.num_ages)[:, None]
        self.ready_share = np.clip(ages + 1.0 - periods[None, :], 0.0, 1.0)  # (K+1, C) F_{a,c}
        self.ready_share[-1] = 1.0
        self.ready_share.setflags(write=False)
        self._starting_at_age = self.ready_share < 1.0  # (K+1, C): not ready when a period of that age begins
        # A replica of age a is still starting at the next period's start iff F_{a+1,c} < 1.
        next_share = np.vstack([self.ready_share[1:], np.ones((1, len(startup)))])
        self._pending_after = next_share < 1.0
        self.cohorts = np.zeros((self.num_ages, len(startup)), dtype=np.int64)
        self._begun = False

    def reset(self) -> None:
        """No replicas; the next :meth:`advance` is the episode's first."""
        self.cohorts[:] = 0
        self._begun = False

    def fresh(self) -> StartingReplicas:
        """A new tracker with the same start-up times, period and initial fleet, and no replicas."""
        return StartingReplicas(self.startup_s, self.period_s, self.initial_fleet)

    def copy(self) -> StartingReplicas:
        """A tracker in the same state: the same cohorts, and the same answer to whether the episode has begun."""
        twin = self.fresh()
        twin.cohorts[:] = self.cohorts
        twin._begun = self._begun
        return twin

    @property
    def next_target_serves_at_once(self) -> bool:
        """True before an episode's first :meth:`advance` with a ``warm`` initial fleet: its target serves at once."""
        return not self._begun and self.initial_fleet == "warm"

    @property
    def rented(self) -> np.ndarray:
        """(C,) replicas rented now."""
        return self.cohorts.sum(axis=0)

    def advance(self, target: np.ndarray) -> np.ndarray:
        """Move to the next period with ``target`` (C,) rented replicas; returns (C,) replicas started.

        Every cohort ages by one period; then replicas start (age 0) or stop, youngest first. The episode's first
        call with a ``warm`` initial fleet puts the whole target in the ready cohort and starts nothing.
        """
        cohorts = self.cohorts
        target = np.asarray(target, dtype=np.int64)
        if not self._begun:
            self._begun = True
            if self.initial_fleet == "warm":
                cohorts[:] = 0
                cohorts[-1] = target
                return np.zeros_like(target)
        if self.num_ages == 1:  # every replica is ready at once: one cohort
            started = np.maximum(target - cohorts[0], 0)
            cohorts[0] = target
            return started
        cohorts[-1] += cohorts[-2]
        if self.num_ages > 2:
            cohorts[1:-1] = cohorts[:-2].copy()
        rented = cohorts[1:].sum(axis=0) if self.num_ages > 2 else cohorts[1].copy()  # age 0 is filled below
        change = target - rented
        started = np.maximum(change, 0)
        cohorts[0] = started
        if change.min() < 0:
            to_stop = started - change  # (C,) max(rented − target, 0); none where replicas start
            for age in range(1, self.num_ages):
                stop = np.minimum(to_stop, cohorts[age])
                cohorts[age] -= stop
                to_stop -= stop
                if not to_stop.any():
                    break
        return started

    def ready(self) -> np.ndarray:
        """(C,) capacity this period in replica units, Σ_a F_{a,c}·(replicas of age a)."""
        return (self.ready_share * self.cohorts).sum(axis=0)

    def starting(self) -> np.ndarray:
        """(C,) replicas that were not ready when this period began."""
        return (self.cohorts * self._starting_at_age).sum(axis=0)

    def pending(self) -> np.ndarray:
        """(C,) replicas that will still be starting when the next period begins (if kept)."""
        return (self.cohorts * self._pending_after).sum(axis=0)
