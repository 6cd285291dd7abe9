"""Polishing a replica schedule in the environment: local moves judged by what the environment charges.

The oracle's MILP (``servegym.baselines.milp.oracle``) routes its own traffic: it sees the realised error rates
and sends each request where errors stay within the SLO. The environment's router does not (MODEL.md §6, "What the
router sees": accuracy is not observable online); given the same replicas it fills the cheapest capacity for delay
and keeps only the *nominal* error SLO. Where the latent drift raises a model's errors, the MILP's schedule therefore
rents replicas that the MILP itself uses sparingly and the router fills: on Drift's 2024-05-16-thu seed 2 the MILP
schedule's objective is $2,962 and the environment charges $6,299 for it, $3,481 of it excess-error penalty. The
MILP's bound is unaffected (the router's routing is a feasible point of the MILP), but its schedule is a weak 100
point for the normalised score.

:func:`polish_schedule` improves a schedule by first-improvement local search on the environment's own cost
(variable-neighbourhood descent). A sweep is one pass over the periods in order, accepting in each period the first
move of one neighbourhood that saves more than :data:`MIN_SAVING` dollars; the neighbourhoods, tried in this order
(back to the first after any sweep that moved something), are:

- **single moves**: one configuration's count in one period one lower, zero, or one higher;
- **runs**: one configuration's count one lower or one higher in each of 2, 4, 8 or 16 periods from the period
  (:data:`RUN_PERIODS`; with start-up times and start fees a single period's change pays a restart);
- **swaps**: one replica of a configuration rented in the period for one of another configuration;
- **run swaps**: one replica of a configuration fewer over the whole run of periods it is rented in (from the
  period where that run begins) or over 2 to 16 periods of it, alone or for one replica of another configuration
  over the same periods.

The descent ends when a sweep of every neighbourhood finds nothing, or after ``max_sweeps`` sweeps. Then, with
``model_restarts`` and if the schedule pays any excess-error penalty, for each model the schedule rents it descends
again from the best schedule without any replica of that model, and keeps what is cheaper. (Where drift raises a
model's errors, the router fills every replica of that model it is given, so the cheaper schedule may rent none of
it, far from the MILP's: on Drift's 2024-05-16-thu seed 2 the first descent ends at $4,322 and the restart without
Qwen2.5-7B at about $2,330.)

Candidates are the configurations the schedule being descended rents in some period. A move must pass the rule
book unchanged (``env.repair``: nothing removed). Its cost is what :meth:`ProvisioningEnv.play_period` charges,
replayed from the period changed until the replicas by age are again those of the unchanged schedule (from there
on every period is the same), with the demand, speeds and errors of the episode ``env`` was reset to; each
(period, replicas by age, replicas) is played once. No clock decides anything, so the schedule does not depend on
the machine's speed or load (last-bit floating-point differences between CPUs can still tip a near-tie). Replays
use a private router and tracker; the episode ``env`` was reset to is not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from servegym.envs.cold_start import StartingReplicas
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.routing import Router

POLISH_SWEEPS = 100
"""Most sweeps of :func:`polish_schedule` (each one pass over the periods with one neighbourhood)."""
RUN_PERIODS = (2, 4, 8, 16)
"""Lengths, in periods, of the runs of :func:`_runs`."""
MIN_SAVING = 1e-6
"""Smallest saving, $ over the episode, for which a move is accepted (below it, rounding)."""


@dataclass(frozen=True)
class PolishResult:
    """A polished schedule and what the environment charges for it.

    Attributes:
        replicas: (T, C) int replicas per period and configuration, no dearer than the input when replayed.
        cost_before: The input schedule's episode cost in the environment, $.
        cost_after: The polished schedule's episode cost in the environment, $.
        moves: Moves accepted.
        sweeps: Sweeps run.
    """

    replicas: np.ndarray
    cost_before: float
    cost_after: float
    moves: int
    sweeps: int


_Played = dict[tuple[int, bytes, bytes], tuple[float, StartingReplicas]]
"""Periods played: (period, replicas by age before it, replicas) → (cost $, replicas by age after it)."""


class _Replay:
    """The schedule, the tracker before every period and every period's cost, kept up to date move by move."""

    def __init__(self, env: ProvisioningEnv, replicas: np.ndarray, played: _Played, router: Router) -> None:
        self.env = env
        self.router = router
        self.replicas = replicas.copy()
        periods = replicas.shape[0]
        self.before: list[StartingReplicas] = [env.replicas.fresh()] * (periods + 1)
        self.costs = np.zeros(periods)
        self._played = played
        self._replay_from(0, self.replicas, self.before[0].copy(), commit=True)

    @property
    def cost(self) -> float:
        """The schedule's episode cost, $."""
        return float(self.costs.sum())

    def _play(self, period: int, row: np.ndarray, tracker: StartingReplicas) -> tuple[float, StartingReplicas]:
        """Cost of ``row`` in ``period`` after ``tracker`` and the tracker after it (each case played once)."""
        key = (period, tracker.cohorts.tobytes(), row.tobytes())
        played = self._played.get(key)
        if played is None:
            outcome, _, _ = self.env.play_period(period, row, tracker, self.router)
            played = self._played[key] = (outcome.total_cost, tracker)
        return played

    def _replay_from(
        self, period: int, replicas: np.ndarray, tracker: StartingReplicas, *, commit: bool, changed: int = 1
    ) -> float:
        """Cost of ``replicas`` from ``period`` on, whose first ``changed`` periods differ from the kept schedule,
        until the trackers meet the kept ones again after them; ``commit`` keeps it (and replays to the end)."""
        periods = replicas.shape[0]
        total = 0.0
        for t in range(period, periods):
            cost, tracker = self._play(t, replicas[t], tracker)
            total += cost
            if commit:
                self.costs[t] = cost
            converged = t >= period + changed and np.array_equal(tracker.cohorts, self.before[t + 1].cohorts)
            if commit:
                self.before[t + 1] = tracker
            tracker = tracker.copy()
            if converged and not commit:
                return total - float(self.costs[period : t + 1].sum())
        return total - (0.0 if commit else float(self.costs[period:].sum()))

    def saving(self, period: int, block: np.ndarray) -> float:
        """$ saved over the episode by replacing the replicas of periods ``period``.. with ``block`` (L, C)."""
        trial = self.replicas.copy()
        trial[period : period + block.shape[0]] = block
        return -self._replay_from(period, trial, self.before[period].copy(), commit=False, changed=block.shape[0])

    def accept(self, period: int, block: np.ndarray) -> None:
        """Replace the replicas of periods ``period``.. with ``block`` and update the kept trackers and costs."""
        self.replicas[period : period + block.shape[0]] = block
        self._replay_from(period, self.replicas, self.before[period].copy(), commit=True)


Moves = Callable[[np.ndarray, int, np.ndarray], Iterator[np.ndarray]]
"""A neighbourhood: (schedule (T, C), period t, candidate configurations) → blocks of replicas from t on."""


def _allowed(env: ProvisioningEnv, block: np.ndarray) -> bool:
    """True when every row of ``block`` is within the action space and the rule book removes nothing from it."""
    if block.min() < 0 or (block > env.max_replicas).any():
        return False
    return all(env.repair.repair(row.copy())[1] == 0 for row in block)


def _single_moves(schedule: np.ndarray, period: int, configurations: np.ndarray) -> Iterator[np.ndarray]:
    """One configuration's count in the period one lower, zero, or one higher."""
    row = schedule[period]
    for c in configurations:
        for count in (row[c] - 1, 0, row[c] + 1):
            if count != row[c] and count >= 0 and not (count == 0 and row[c] == 1):
                trial = row.copy()
                trial[c] = count
                yield trial[None, :]


def _runs(schedule: np.ndarray, period: int, configurations: np.ndarray) -> Iterator[np.ndarray]:
    """One configuration's count one lower, or one higher, in each of :data:`RUN_PERIODS` periods from ``period``
    (a start moved or cancelled together with the replicas it brings, which single moves would pay a restart for)."""
    for length in RUN_PERIODS:
        if period + length > schedule.shape[0]:
            return
        for c in configurations:
            for change in (-1, 1):
                block = schedule[period : period + length].copy()
                block[:, c] += change
                yield block


def _swaps(schedule: np.ndarray, period: int, configurations: np.ndarray) -> Iterator[np.ndarray]:
    """One replica of a configuration rented in the period for one of another candidate."""
    row = schedule[period]
    for c in configurations[row[configurations] > 0]:
        for other in configurations:
            if other != c:
                trial = row.copy()
                trial[c] -= 1
                trial[other] += 1
                yield trial[None, :]


def _run_swaps(schedule: np.ndarray, period: int, configurations: np.ndarray) -> Iterator[np.ndarray]:
    """One replica of a configuration fewer over a run of periods from ``period``, alone or for one replica of another
    candidate over the same run: replacing a configuration that the router fills badly (a model whose realised
    errors drifted up) for many periods at once, with no restart in between. Runs: the whole run of the periods it
    is rented in, if that begins at ``period``, then the :data:`RUN_PERIODS` lengths within it."""
    for c in configurations:
        column = schedule[:, c]
        if column[period] == 0:
            continue
        idle = np.flatnonzero(column[period:] == 0)
        end = period + (int(idle[0]) if idle.size else column.size - period)
        whole = (end,) if period == 0 or column[period - 1] == 0 else ()
        for stop in (*whole, *(period + length for length in RUN_PERIODS if period + length < end)):
            for other in (None, *configurations):
                if other != c:
                    block = schedule[period:stop].copy()
                    block[:, c] -= 1
                    if other is not None:
                        block[:, other] += 1
                    yield block


NEIGHBOURHOODS: tuple[Moves, ...] = (_single_moves, _runs, _swaps, _run_swaps)
"""Tried in this order: a sweep uses the first that the previous sweep has not found empty since the last move."""


def _sweep(replay: _Replay, configurations: np.ndarray, moves: Moves) -> int:
    """One pass over the periods with the first improving move of ``moves`` in each; returns the moves accepted."""
    env = replay.env
    accepted = 0
    for t in range(replay.replicas.shape[0]):
        for block in moves(replay.replicas, t, configurations):
            if _allowed(env, block) and replay.saving(t, block) > MIN_SAVING:
                replay.accept(t, block)
                accepted += 1
                break
    return accepted


def _error_penalty(env: ProvisioningEnv, replicas: np.ndarray, router: Router) -> float:
    """What the environment charges for excess errors over the episode with ``replicas`` (T, C), $."""
    tracker = env.replicas.fresh()
    return sum(env.play_period(t, row, tracker, router)[0].cost["error_penalty"] for t, row in enumerate(replicas))


def _descend(replay: _Replay, max_sweeps: int) -> tuple[int, int]:
    """Sweeps of :data:`NEIGHBOURHOODS` until none improves or ``max_sweeps`` ran; returns (moves, sweeps)."""
    configurations = np.flatnonzero(replay.replicas.max(axis=0) > 0)
    moves = sweeps = level = 0
    while sweeps < max_sweeps and level < len(NEIGHBOURHOODS):
        sweeps += 1
        accepted = _sweep(replay, configurations, NEIGHBOURHOODS[level])
        moves += accepted
        level = 0 if accepted else level + 1
    return moves, sweeps


def polish_schedule(
    env: ProvisioningEnv, replicas: np.ndarray, *, max_sweeps: int = POLISH_SWEEPS, model_restarts: bool = True
) -> PolishResult:
    """Local search on the environment's cost from ``replicas`` (T, C), for the episode ``env`` was reset to.

    Args:
        env: The unwrapped environment, reset to the episode (its demand, speeds and errors are read, its state is
            not changed).
        replicas: (T, C) int replicas per period, each row within the action space and the rule book.
        max_sweeps: Most sweeps (≥ 0) of each descent; 0 only replays.
        model_restarts: After the first descent, if its schedule pays for excess errors, for each model it rents (in
            model order) descend again from the best schedule without any of that model's replicas, and keep the
            result if cheaper.

    Returns:
        The polished schedule and its cost before and after, $ over the episode.
    """
    if max_sweeps < 0:
        raise ValueError(f"max_sweeps = {max_sweeps} must be ≥ 0")
    played: _Played = {}
    router = Router(env.instance)
    best = _Replay(env, np.asarray(replicas, dtype=np.int64), played, router)
    cost_before = best.cost
    moves, sweeps = _descend(best, max_sweeps)
    config_model = env.instance.config_model
    rented = np.flatnonzero(best.replicas.max(axis=0) > 0)
    restart = model_restarts and max_sweeps > 0 and _error_penalty(env, best.replicas, router) > MIN_SAVING
    for model in np.unique(config_model[rented]) if restart else ():
        dropped = config_model == model
        start = best.replicas.copy()
        start[:, dropped] = 0
        if not start.any():
            continue
        trial = _Replay(env, start, played, router)
        trial_moves, trial_sweeps = _descend(trial, max_sweeps)
        sweeps += trial_sweeps
        if trial.cost < best.cost - MIN_SAVING:
            best, moves = trial, moves + 1 + trial_moves
    return PolishResult(best.replicas, cost_before, best.cost, moves, sweeps)
