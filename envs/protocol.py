"""The benchmark protocol: which episodes of each registered setting are for tuning, validation and test.

One table (:data:`PROTOCOL`) that the tuned rule (``servegym.baselines.tuned_rule``), training and scoring share,
documented in docs/benchmark.md. An episode is a ``(seed, reset options)`` pair played with
``env.reset(seed=seed, options=options)``.

- Settings on Azure demand (the default, Stress, StressSevere, Drift) split by day, chronologically as the
  traces do (``servegym.traces.days``): tuning and training on the train days other than the validation day,
  the validation day (2024-05-15, Wednesday) to select, the test days (2024-05-16 Thursday, 2024-05-18 Saturday)
  to report. Drift draws its latent drift from the episode seed, so its tuning and validation play two seeds
  per day.
- Settings on synthetic demand (Paper, Volatile) have no days: their splits are disjoint ranges of episode
  seeds (tuning 1000–1003, validation 2000–2001, test 0–2).
- The Week setting is evaluation only (its one episode is the seven Azure days).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servegym.envs import ENV_IDS
from servegym.errors import UsageError
from servegym.traces import TEST_DAYS, TRAIN_DAYS, VALIDATION_DAY

Episode = tuple[int, dict[str, Any]]
"""(reset seed, reset options), e.g. ``(0, {"day": "2024-05-13-mon"})``."""
TEST_SEEDS = (0, 1, 2)
"""Episode seeds of every test day (demand noise, drift, randomised planners)."""
TUNING_DAYS = tuple(day for day in TRAIN_DAYS if day != VALIDATION_DAY)
"""Train days other than the validation day: what tuning and training see."""


@dataclass(frozen=True)
class SettingProtocol:
    """The episode splits of one registered setting.

    Attributes:
        env_id: Registered environment id.
        tuning: Episodes that tuning (and training) may use.
        validation: Episodes that select among tuned or trained candidates.
        test: Episodes that are reported; never used to choose anything.
    """

    env_id: str
    tuning: tuple[Episode, ...]
    validation: tuple[Episode, ...]
    test: tuple[Episode, ...]


def _by_day(env_id: str, seeds: tuple[int, ...]) -> SettingProtocol:
    return SettingProtocol(
        env_id=env_id,
        tuning=tuple((seed, {"day": day}) for day in TUNING_DAYS for seed in seeds),
        validation=tuple((seed, {"day": VALIDATION_DAY}) for seed in seeds),
        test=tuple((seed, {"day": day}) for day in TEST_DAYS for seed in TEST_SEEDS),
    )


def _by_seed(env_id: str) -> SettingProtocol:
    return SettingProtocol(
        env_id=env_id,
        tuning=tuple((seed, {}) for seed in range(1000, 1004)),
        validation=tuple((seed, {}) for seed in range(2000, 2002)),
        test=tuple((seed, {}) for seed in TEST_SEEDS),
    )


def _protocol() -> dict[str, SettingProtocol]:
    table = {}
    for env_id, kwargs in ENV_IDS.items():
        if kwargs.get("demand") == "synthetic":
            table[env_id] = _by_seed(env_id)
        elif kwargs.get("demand") is None:
            table[env_id] = _by_day(env_id, (0, 1) if "drift" in kwargs else (0,))
    return table


PROTOCOL: dict[str, SettingProtocol] = _protocol()
"""The splits of every registered setting that is tuned, trained or scored (all but the Week setting)."""


def protocol_for(env_id: str) -> SettingProtocol:
    """The splits of ``env_id``.

    Raises:
        UsageError: ``env_id`` has no protocol (unregistered, or evaluation only).
    """
    if env_id not in PROTOCOL:
        raise UsageError(f"no benchmark protocol for {env_id!r}; settings with one: {sorted(PROTOCOL)}")
    return PROTOCOL[env_id]


__all__ = ["PROTOCOL", "TEST_SEEDS", "TUNING_DAYS", "Episode", "SettingProtocol", "protocol_for"]
