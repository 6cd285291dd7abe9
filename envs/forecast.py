"""Next-period demand forecasts with an error distribution, as online policies see them (observation and ``info``).

Every forecaster gives, for the period about to be decided, a point forecast per query type and its quantiles at
:data:`QUANTILE_LEVELS`. The quantiles come from the forecaster's own one-step errors in log space (the empirical
quantiles of log(actual / forecast), an online split-conformal rule): the last :data:`ERROR_WINDOW_DAYS` days of
errors, starting with its in-sample errors on the history before the episode and updated every period with the
error it just made.

Forecasters (``forecaster`` keyword of the env):

- ``holt-winters`` (default): exponential smoothing of log demand with an additive daily season (Holt-Winters),
  one model per query type, fitted by statsmodels' ``ExponentialSmoothing`` on the demand **history** of the
  episode (the reference days of its source that are not the episode's own: for Azure sources the train days,
  for a trace its train days; ``EpisodeDemand.history_per_hour``); level and season are then updated every
  period by the model's own recursion with the fitted smoothing weights. The fits of the histories the
  Azure-based sources give ship with the package (:func:`shipped_fits`), so those episodes start from the same
  model on every CPU; other histories (a trace's) are fitted at reset. With less than two days of history the
  season is the history's mean day (one day) or flat (none), with smoothing weights α = 0.5, γ = 0, and the
  quantiles start from the episode's own errors only.
- ``seasonal-naive``: the demand of the same period one day earlier (history, then the episode itself); with no
  such day, the last observation.
- ``profile-naive`` (the v1 default) and ``ewma``: the last observation (or its EWMA, α = 0.5) moved along the
  **mean Azure daily profile** of the train days, whatever the demand source; kept for comparison.

The season is one day (1,440 / period minutes periods) for every forecaster: the daily cycle is what load traces
share; a weekly pattern enters through the level. An episode starts with :meth:`Forecaster.begin_episode`: the
fit on the history, then the lead-in observed (``EpisodeDemand.lead_in_per_hour``, the hour before period 0, as
a running service has seen it). Forecasts use only the history, the lead-in and the periods already observed:
the forecast for period t does not depend on the demand of t or later.
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from servegym import numerics
from servegym.traces.days import MINUTES_PER_DAY
from servegym.traces.demand import mean_daily_profile

if TYPE_CHECKING:
    from servegym.envs.demand_source import EpisodeDemand

FORECASTERS = ("holt-winters", "seasonal-naive", "profile-naive", "ewma")
DEFAULT_FORECASTER = "holt-winters"
QUANTILE_LEVELS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
"""Levels of the forecast quantiles in the observation and ``info`` (``forecast_quantiles_per_hour``)."""
ERROR_WINDOW_DAYS = 2
"""Days of one-step errors the quantiles are estimated from."""
DEMAND_FLOOR = 0.02
"""Demand below this fraction of a type's nominal λ (its busiest hour) is floored before taking logs: a period
with a handful of requests, or none, says little about the rate, and its log would swing the level and season."""
FALLBACK_ALPHA = 0.5
"""Level smoothing weight when there is too little history to fit one (fewer than two days)."""
EWMA_ALPHA = 0.5
"""Level smoothing weight of the ``ewma`` forecaster."""


@dataclass(frozen=True)
class SmoothingModel:
    """Per-type additive Holt-Winters state of log demand: x̂_{t+1} = level + season[(t+1) mod m].

    Attributes:
        alpha: (I,) level smoothing weights in [0, 1].
        gamma: (I,) season smoothing weights in [0, 1].
        level: (I,) log-demand level after the history.
        season: (m, I) additive season by period of the day (period 0 starts at 00:00).
        residuals: (R, I) in-sample one-step log errors on the history, oldest first.
    """

    alpha: np.ndarray
    gamma: np.ndarray
    level: np.ndarray
    season: np.ndarray
    residuals: np.ndarray


def demand_floor(nominal_per_hour: np.ndarray) -> np.ndarray:
    """(I,) the demand floor, requests/hour: :data:`DEMAND_FLOOR` × each type's nominal λ."""
    return DEMAND_FLOOR * np.maximum(np.asarray(nominal_per_hour, dtype=np.float64), 1e-6)


def log_demand(demand_per_hour: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """log of the demand floored at ``floor`` (by :func:`servegym.numerics.log`: the same bits on every CPU)."""
    return numerics.log(np.maximum(demand_per_hour, floor))


def fit_holt_winters(history_per_hour: np.ndarray | None, periods_per_day: int, floor: np.ndarray) -> SmoothingModel:
    """Fit the ``holt-winters`` model on a (H, I) history (H a whole number of days from 00:00; None or empty: no
    history), demand floored at ``floor`` (I,) requests/hour. Cached on the history's and the floor's bytes."""
    floor = np.ascontiguousarray(floor, dtype=np.float64)
    if history_per_hour is None or len(history_per_hour) == 0:
        return _flat_model(len(floor), periods_per_day)
    history = np.ascontiguousarray(history_per_hour, dtype=np.float64)
    key = hashlib.sha256(history.tobytes() + floor.tobytes()).hexdigest()
    return _fit_cached(key, history.shape, periods_per_day, history.tobytes(), floor.tobytes())


def _flat_model(num_types: int, periods_per_day: int) -> SmoothingModel:
    return SmoothingModel(
        alpha=np.full(num_types, FALLBACK_ALPHA),
        gamma=np.zeros(num_types),
        level=np.full(num_types, np.nan),  # set by the first observation
        season=np.zeros((periods_per_day, num_types)),
        residuals=np.zeros((0, num_types)),
    )


@functools.lru_cache(maxsize=32)
def _fit_cached(key: str, shape: tuple[int, int], periods_per_day: int, data: bytes, floor: bytes) -> SmoothingModel:
    del key  # cache key only
    history = np.frombuffer(data, dtype=np.float64).reshape(shape)
    logs = log_demand(history, np.frombuffer(floor, dtype=np.float64))
    days = shape[0] // periods_per_day
    num_types = shape[1]
    if days < 2:
        season = logs[: days * periods_per_day].reshape(days, periods_per_day, num_types).mean(axis=0)
        season -= season.mean(axis=0)
        alpha, gamma = np.full(num_types, FALLBACK_ALPHA), np.zeros(num_types)
        level = logs[0] - season[0]
    else:
        alpha, gamma, level, season = _fit_types(logs, periods_per_day)
    model = SmoothingModel(alpha=alpha, gamma=gamma, level=level, season=season, residuals=np.zeros((0, num_types)))
    residuals = np.empty_like(logs)
    state = _State.start(model)
    for t in range(len(logs)):
        residuals[t] = logs[t] - state.predict(t % periods_per_day)
        state.update(logs[t], t % periods_per_day)
    if days < 2:  # the season is that very day: its in-sample errors would understate the spread
        residuals = residuals[:0]
    return SmoothingModel(alpha=alpha, gamma=gamma, level=state.level, season=state.season, residuals=residuals)


ColumnFit = tuple[float, float, float, np.ndarray]
"""One type's fitted Holt-Winters parameters: α, γ, the initial level and the (m,) initial season, of its
mean-removed log demand (see :func:`history_columns`)."""
SHIPPED_FITS = "holt_winters_fits.json"
"""Fits of every history a built-in demand source gives, in ``servegym.envs.data`` (``scripts/fit_forecasters.py``)."""


def history_columns(logs: np.ndarray, periods_per_day: int) -> dict[str, np.ndarray]:
    """The distinct mean-removed columns of the (H, I) log-demand history ``logs``, by :func:`fit_key`. Types that
    share a service's shape differ by a constant in log space, so they share one column and one fit."""
    columns: dict[str, np.ndarray] = {}
    for key, _, shifted in _type_columns(logs, periods_per_day):
        columns.setdefault(key, shifted)
    return columns


def _type_columns(logs: np.ndarray, periods_per_day: int) -> list[tuple[str, float, np.ndarray]]:
    """Per type (column of ``logs``): its :func:`fit_key`, its mean log demand and its mean-removed column."""
    columns = []
    for i in range(logs.shape[1]):
        mean = logs[:, i].mean()
        shifted = logs[:, i] - mean
        columns.append((fit_key(shifted, periods_per_day), mean, shifted))
    return columns


def fit_key(shifted_log_demand: np.ndarray, periods_per_day: int) -> str:
    """SHA-256 of a mean-removed log-demand history rounded to 1e-9 and the season length: the key of its fit."""
    rounded = np.round(np.ascontiguousarray(shifted_log_demand, dtype=np.float64), 9)
    return hashlib.sha256(rounded.tobytes() + f"|{periods_per_day}".encode()).hexdigest()


@functools.cache
def shipped_fits() -> dict[str, ColumnFit]:
    """The fits shipped with the package, by :func:`fit_key`.

    They make the default forecaster the same on every machine: statsmodels' optimiser (L-BFGS-B) runs on
    OpenBLAS, whose kernels are chosen by CPU type and round differently, so a fit made at run time can differ in
    the seventh digit between CPUs, and that is enough to flip a planner's choice somewhere in an episode. A
    history that is not in the file (a user's trace) is fitted at run time."""
    with resources.files("servegym.envs.data").joinpath(SHIPPED_FITS).open("r", encoding="utf-8") as handle:
        fits = json.load(handle)["fits"]
    return {
        key: (fit["alpha"], fit["gamma"], fit["initial_level"], np.array(fit["initial_season"], dtype=np.float64))
        for key, fit in fits.items()
    }


def fit_statsmodels(shifted_log_demand: np.ndarray, periods_per_day: int) -> ColumnFit:
    """Fit additive Holt-Winters (no trend, season ``periods_per_day``, estimated initial state) by statsmodels."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of the optimiser
        result = ExponentialSmoothing(
            shifted_log_demand,
            trend=None,
            seasonal="add",
            seasonal_periods=periods_per_day,
            initialization_method="estimated",
        ).fit()
    params = result.params
    return (
        float(np.clip(params["smoothing_level"], 0.0, 1.0)),
        float(np.clip(params["smoothing_seasonal"], 0.0, 1.0)),
        float(params["initial_level"]),
        np.asarray(params["initial_seasons"], dtype=np.float64),
    )


def _fit_types(logs: np.ndarray, periods_per_day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fitted α, γ, the initial level and the initial season (m, I) of each column of ``logs``: the shipped fit
    of its mean-removed column where there is one, else statsmodels' (made once per distinct column)."""
    num_types = logs.shape[1]
    alpha, gamma = np.empty(num_types), np.empty(num_types)
    level, season = np.empty(num_types), np.empty((periods_per_day, num_types))
    shipped = shipped_fits()
    fitted: dict[str, ColumnFit] = {}
    for i, (key, mean, shifted) in enumerate(_type_columns(logs, periods_per_day)):
        if key not in fitted:
            fitted[key] = shipped[key] if key in shipped else fit_statsmodels(shifted, periods_per_day)
        a, g, initial_level, initial_season = fitted[key]
        alpha[i], gamma[i], level[i] = a, g, initial_level + mean
        season[:, i] = initial_season
    return alpha, gamma, level, season


@dataclass
class _State:
    """Mutable Holt-Winters state: level (I,) and season (m, I); ``level_known`` is False while some type's level
    is NaN (no history: set by the first observation)."""

    alpha: np.ndarray
    gamma: np.ndarray
    level: np.ndarray
    season: np.ndarray
    level_known: bool = field(init=False)
    keep_level: np.ndarray = field(init=False, repr=False)  # (I,) 1 − α, the previous level's weight
    keep_season: np.ndarray = field(init=False, repr=False)  # (I,) 1 − γ, the previous season's weight

    def __post_init__(self) -> None:
        self.level_known = not np.isnan(self.level).any()
        self.keep_level = 1.0 - self.alpha
        self.keep_season = 1.0 - self.gamma

    @classmethod
    def start(cls, model: SmoothingModel) -> _State:
        return cls(model.alpha, model.gamma, model.level.copy(), model.season.copy())

    def predict(self, slot: int) -> np.ndarray:
        return self.level + self.season[slot]

    def update(self, log_demand: np.ndarray, slot: int) -> None:
        if not self.level_known:
            self.level = np.where(np.isnan(self.level), log_demand - self.season[slot], self.level)
            self.level_known = not np.isnan(self.level).any()
            return
        season = self.season
        previous = self.level
        self.level = self.alpha * (log_demand - season[slot]) + self.keep_level * previous
        season[slot] = self.gamma * (log_demand - self.level) + self.keep_season * season[slot]


class _ErrorWindow:
    """The last ``size`` one-step log errors (a ring buffer, one row per type) and their empirical quantiles."""

    def __init__(self, size: int, num_types: int) -> None:
        self.values = np.zeros((num_types, size))  # (I, size): each type's errors contiguous, for the sort
        self.count = 0
        self._next = 0
        self._size = size
        self._interpolation: tuple[int, tuple[float, ...], np.ndarray, np.ndarray, np.ndarray] | None = None
        """(count, levels, order statistics [below, above], 1 − weight, weight) of the last :meth:`quantiles`."""

    def append(self, error: np.ndarray) -> None:
        self.values[:, self._next] = error
        self._next = (self._next + 1) % self._size
        self.count = min(self.count + 1, self._size)

    def extend(self, errors: np.ndarray) -> None:
        for error in errors[-self._size :]:
            self.append(error)

    def quantiles(self, levels: tuple[float, ...]) -> np.ndarray:
        """(len(levels), I) quantiles of the errors held, by numpy's default ("linear") rule, i.e.
        ``np.quantile(errors, levels, axis=0)``, from one sort (a tenth of its time at this size); the
        interpolation between order statistics is laid out once per count of errors held."""
        count = self.count
        if self._interpolation is None or self._interpolation[:2] != (count, levels):
            position = np.asarray(levels) * (count - 1)
            below = np.floor(position).astype(np.int64)
            above = np.minimum(below + 1, count - 1)
            weight = position - below
            self._interpolation = (count, levels, np.concatenate([below, above]), 1.0 - weight, weight)
        _, _, statistics, below_weight, above_weight = self._interpolation
        picked = np.sort(self.values[:, :count], axis=1)[:, statistics]  # (I, 2Q): below, then above
        num_levels = len(levels)
        return (picked[:, :num_levels] * below_weight + picked[:, num_levels:] * above_weight).T


class Forecaster:
    """Forecast demand (I,) requests/hour and its quantiles for the next period from what has been observed.

    Args:
        kind: One of :data:`FORECASTERS`.
        nominal_per_hour: (I,) nominal demand λ (the forecast before anything is known, for the profile methods).
        period_minutes: Period length, minutes (divides 1440).
    """

    def __init__(self, kind: str, nominal_per_hour: np.ndarray, period_minutes: int) -> None:
        if kind not in FORECASTERS:
            raise ValueError(f"forecaster {kind!r} not one of {list(FORECASTERS)}")
        self.kind = kind
        self.nominal = np.asarray(nominal_per_hour, dtype=float)
        self.periods_per_day = MINUTES_PER_DAY // period_minutes
        self.window = ERROR_WINDOW_DAYS * self.periods_per_day
        self.profile = mean_daily_profile(period_minutes) if kind in ("profile-naive", "ewma") else None
        self._floor = demand_floor(self.nominal)
        self.reset(None)

    def reset(self, history_per_hour: np.ndarray | None) -> None:
        """Start an episode: fit on the (H, I) history of earlier days (None: none), forget the episode so far."""
        num_types = len(self.nominal)
        history = None if history_per_hour is None or len(history_per_hour) == 0 else np.asarray(history_per_hour)
        self._errors = _ErrorWindow(self.window, num_types)
        self._forecast_point: tuple[int, np.ndarray] | None = None
        """(slot, point) of the last :meth:`forecast`, reused by :meth:`observe` of that slot (no update between)."""
        self._last: np.ndarray | None = None
        self._recent: dict[int, np.ndarray] = {}
        self._level: np.ndarray | None = None
        self._state: _State | None = None
        if self.kind == "holt-winters":
            model = fit_holt_winters(history, self.periods_per_day, self._floor)
            self._state = _State.start(model)
            self._errors.extend(model.residuals)
        elif self.kind == "seasonal-naive" and history is not None:
            last_day = history[-self.periods_per_day :]
            self._recent = {slot: last_day[slot] for slot in range(len(last_day))}
            if len(history) > self.periods_per_day:  # in-sample errors of the naive rule on the history
                shifted = numerics.log(
                    self._safe(history[self.periods_per_day :]) / self._safe(history[: -self.periods_per_day])
                )
                self._errors.extend(shifted)

    def begin_episode(self, demand: EpisodeDemand) -> None:
        """:meth:`reset` on the episode's history, then :meth:`observe` its lead-in (the periods just before period 0,
        ``EpisodeDemand.lead_in_per_hour``), as a service that has been running sees them."""
        self.reset(demand.history_per_hour)
        lead_in = demand.lead_in_per_hour
        if lead_in is not None:
            first = demand.start_minute_of_day * self.periods_per_day // MINUTES_PER_DAY - len(lead_in)
            for k, rates in enumerate(lead_in):
                self.observe(rates, first + k)

    def _safe(self, demand: np.ndarray) -> np.ndarray:
        return np.maximum(demand, self._floor)

    def point(self, period_of_day: int) -> np.ndarray:
        """Point forecast for the period that starts ``period_of_day`` periods after 00:00 (any day), req/hour."""
        slot = period_of_day % self.periods_per_day
        if self.kind == "holt-winters":
            assert self._state is not None
            if not self._state.level_known:
                return np.where(np.isnan(self._state.level), self.nominal, numerics.exp(self._state.predict(slot)))
            return numerics.exp(self._state.predict(slot))
        if self.kind == "seasonal-naive":
            if slot in self._recent:
                return self._recent[slot]
            return self.nominal if self._last is None else self._last
        assert self.profile is not None
        season = self.profile[slot]
        if self._level is None:
            return self.nominal * season / self.profile.max()
        return self._level * season

    def observe(self, demand_per_hour: np.ndarray, period_of_day: int) -> None:
        """Record the realised demand of the period ``period_of_day`` (its forecast's error enters the quantiles)."""
        demand = np.asarray(demand_per_hour, dtype=float)
        slot = period_of_day % self.periods_per_day
        cached = self._forecast_point
        point = cached[1] if cached is not None and cached[0] == slot else self.point(slot)
        self._forecast_point = None
        safe_demand = self._safe(demand)
        self._errors.append(numerics.log(safe_demand / self._safe(point)))
        self._last = demand
        if self.kind == "holt-winters":
            assert self._state is not None
            self._state.update(numerics.log(safe_demand), slot)
        elif self.kind == "seasonal-naive":
            self._recent[slot] = demand
        else:
            assert self.profile is not None
            deseasonalised = demand / self.profile[slot]
            alpha = EWMA_ALPHA if self.kind == "ewma" else 1.0
            self._level = deseasonalised if self._level is None else alpha * deseasonalised + (1 - alpha) * self._level

    def forecast(self, period_of_day: int) -> tuple[np.ndarray, np.ndarray]:
        """The point forecast (I,) and its quantiles (Q, I) at :data:`QUANTILE_LEVELS`, requests/hour: the point
        forecast × exp(empirical quantiles of the log errors), the point forecast itself while no error has been
        seen."""
        point = self.point(period_of_day)
        self._forecast_point = (period_of_day % self.periods_per_day, point.copy())  # the caller may change point
        if self._errors.count == 0:
            return point, np.broadcast_to(point, (len(QUANTILE_LEVELS), len(point))).copy()
        return point, point[None, :] * numerics.exp(self._errors.quantiles(QUANTILE_LEVELS))


def newsvendor_level(underage_cost: np.ndarray, overage_cost: np.ndarray) -> np.ndarray:
    """(I,) the cost-minimal quantile τ* = c_u / (c_u + c_o) of a newsvendor with underage cost c_u and overage
    cost c_o per unit (both $ per request), clipped to the levels the quantiles can estimate
    ([min, max] of :data:`QUANTILE_LEVELS`)."""
    under = np.asarray(underage_cost, dtype=float)
    over = np.asarray(overage_cost, dtype=float)
    level = np.divide(under, under + over, out=np.full_like(under, 0.5), where=(under + over) > 0)
    return np.clip(level, QUANTILE_LEVELS[0], QUANTILE_LEVELS[-1])


def quantile_at(quantiles: np.ndarray, level: np.ndarray) -> np.ndarray:
    """(I,) demand at per-type levels ``level`` (I,), linearly interpolated between the rows of a (Q, I) quantile
    array at :data:`QUANTILE_LEVELS`."""
    grid = np.asarray(QUANTILE_LEVELS)
    return np.array([np.interp(level[i], grid, quantiles[:, i]) for i in range(quantiles.shape[1])])
