"""Next-period demand forecasters that online policies see through the observation and ``info``.

``profile-naive`` (default): the last observed demand moved along the mean Azure daily profile,
forecast_{t+1} = observed_t · profile_{t+1} / profile_t; before any observation, the nominal demand scaled by
profile_0 / max(profile). ``ewma``: exponentially weighted moving average of observed demand (α = 0.5) moved
along the profile the same way, which smooths noise at the cost of lag.
"""

from __future__ import annotations

import numpy as np

from servegym.traces.demand import mean_daily_profile

FORECASTERS = ("profile-naive", "ewma")


class Forecaster:
    """Forecast demand (I,) requests/hour for the next period from the demand observed so far."""

    def __init__(self, kind: str, nominal_per_hour: np.ndarray, period_minutes: int, alpha: float = 0.5) -> None:
        if kind not in FORECASTERS:
            raise ValueError(f"forecaster {kind!r} not one of {list(FORECASTERS)}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"forecaster alpha {alpha} outside allowed range (0, 1]")
        self.kind = kind
        self.alpha = alpha if kind == "ewma" else 1.0
        self.nominal = np.asarray(nominal_per_hour, dtype=float)
        self.profile = mean_daily_profile(period_minutes)
        self._level: np.ndarray | None = None

    def reset(self) -> None:
        self._level = None

    def observe(self, demand_per_hour: np.ndarray, period_index: int) -> None:
        """Record the realised demand of period ``period_index``, de-seasonalised by the profile."""
        deseasonalised = np.asarray(demand_per_hour, dtype=float) / self.profile[period_index % len(self.profile)]
        if self._level is None:
            self._level = deseasonalised
        else:
            self._level = self.alpha * deseasonalised + (1.0 - self.alpha) * self._level

    def forecast(self, period_index: int) -> np.ndarray:
        """Forecast for period ``period_index`` (requests/hour per type)."""
        season = self.profile[period_index % len(self.profile)]
        if self._level is None:
            return self.nominal * season / self.profile.max()
        return self._level * season
