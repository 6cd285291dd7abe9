"""SB3 callback that sends the episodes' cost parts and SLO rates to TensorBoard (and any SB3 logger).

Every registered id's ``info`` carries the episode totals at its last step
(``servegym.envs.wrappers.EPISODE_INFO_KEYS``); :class:`EpisodeMetricsCallback` collects them from the training
envs' ``infos`` and, at the end of each rollout, records their mean over the episodes finished since the last
record as ``servegym/<key>`` scalars (``servegym/episode_total_cost``, ``servegym/episode_slo_violation_rate``,
…). RL Zoo takes it from a hyperparameter file: ``callback: servegym.agents.callbacks.EpisodeMetricsCallback``.

stable-baselines3 is imported here, so import this module only where the rl extra is installed.
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from servegym.envs.wrappers import EPISODE_INFO_KEYS

METRIC_PREFIX = "servegym/"
"""TensorBoard tag prefix of the episode metrics."""


class EpisodeMetricsCallback(BaseCallback):
    """Record the mean of :data:`~servegym.envs.wrappers.EPISODE_INFO_KEYS` over finished training episodes.

    Costs are $ per episode, rates shares of the episode's demanded requests, GPU-hours per episode. A rollout in
    which no episode ended records nothing (the curves have one point per rollout with finished episodes).

    Args:
        verbose: SB3 verbosity (unused beyond the base class).
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._finished: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if done and EPISODE_INFO_KEYS[0] in info:
                self._finished.append({key: float(info[key]) for key in EPISODE_INFO_KEYS})
        return True

    def _on_rollout_end(self) -> None:
        if not self._finished:
            return
        for key in EPISODE_INFO_KEYS:
            self.logger.record(METRIC_PREFIX + key, float(np.mean([episode[key] for episode in self._finished])))
        self._finished = []
