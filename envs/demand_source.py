"""Demand sources: objects that draw the demand of one episode (Jumanji's generators, handed to the env).

A :class:`DemandSource` turns the problem instance, the episode's RNG and the horizon into an
:class:`EpisodeDemand`. Demand of query type i in period t is λ_i · shape_{t,i}, where λ_i is the instance's
nominal demand (the busiest hour of the validation day for the ``azure`` scenario) and the shape comes from the
source:

==========================  ==================  ============================================================
source                      spec string         plays
==========================  ==================  ============================================================
:class:`AzureDays`          ``azure-train``,    one Azure day drawn from the split with ``rng`` (validation:
                            ``azure-test``,     always Wednesday); horizon at most 24 h
                            ``azure-validation``
:class:`AzureDaySource`           ``azure:<day>``     that day (name or index 0–6); longer horizons play the
                                                consecutive days after it, up to Saturday 2024-05-18
:class:`AzureWeek`          ``azure-week``      the trace week, Sunday 2024-05-12 to Saturday 2024-05-18
:class:`SyntheticSource`    ``synthetic``       the mean Azure daily profile of the train days × fresh
                                                mean-one lognormal noise of volatility σ; any horizon
:class:`NoisyDemand`        (``noise_sigma``)   another source × mean-one lognormal noise of volatility
                                                ``noise_sigma`` (extra realised noise on top)
==========================  ==================  ============================================================

For an Azure day the shape is the day's rate of the matching Azure query type divided by that type's peak
hourly rate on the validation day (so the ``azure`` scenario replays the real trace at its real magnitude);
query types with no Azure counterpart (``paper``, ``random``) follow the day's total load, normalised the same
way. A multi-day episode plays whole consecutive days of the trace week, never a tiled copy of one day
(MODEL.md §6). Multi-day Azure episodes are for evaluation only: the week contains the test days (Thursday and
Saturday), so the train/test/validation sources draw a single day and reject a longer horizon.

Every episode carries the weekday of each period (Monday = 0, as :meth:`datetime.date.weekday`): for Azure days
the weekday of the day played, for synthetic demand a calendar starting on ``start_weekday`` (Monday unless
told otherwise; the synthetic shape itself is the same every day).

:func:`parse_demand_source` turns the spec strings (:data:`DEMAND_SOURCES` and ``azure:<day>``) into sources and
passes source objects through; :func:`episode_demand` (parse, then sample) is the string-based entry point kept
for the environment.
"""

from __future__ import annotations

import abc
import functools
import math
from dataclasses import dataclass

import numpy as np

from servegym.envs.instance import Instance
from servegym.traces import (
    AZURE_DAYS,
    TEST_DAYS,
    TRAIN_DAYS,
    VALIDATION_DAY,
    azure_day,
    azure_demand,
    synthetic_demand,
    validation_peak_per_hour,
)
from servegym.traces.days import MINUTES_PER_DAY
from servegym.traces.demand import check_period_minutes, mean_daily_profile

DEMAND_SOURCES = ("azure-train", "azure-test", "azure-validation", "azure-week", "synthetic")
"""Named sources; ``azure:<day>`` (a day name or index) picks one Azure day (and the days after it)."""

SPLITS: dict[str, tuple[str, ...]] = {"train": TRAIN_DAYS, "test": TEST_DAYS, "validation": (VALIDATION_DAY,)}
"""The days each :class:`AzureDays` split draws from."""

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Three-letter weekday names by weekday number (Monday = 0)."""

_MULTI_DAY_SOURCES = "'azure-week', 'azure:<day>' or 'synthetic'"


class DemandSourceError(ValueError):
    """An unknown demand source or an invalid source argument; the message names it and the allowed values."""


class DemandHorizonError(DemandSourceError):
    """A horizon longer than the source can fill; the message says how many periods it can."""


@dataclass(frozen=True, eq=False)
class EpisodeDemand:
    """Demand of one episode.

    Attributes:
        rates_per_hour: (T, I) arrival rate of each query type in each period, requests/hour; read-only float64.
        label: Where the demand comes from, e.g. ``"azure 2024-05-16-thu"``.
        weekday: (T,) day of week of each period, Monday = 0 … Sunday = 6; read-only int64. Defaults to Monday
            for every period (the synthetic convention) when built by hand without a calendar.
        day_names: The day each day of the episode plays, in order (Azure day names such as
            ``"2024-05-17-fri"``, or synthetic labels); defaults to ``(label,)``.
    """

    rates_per_hour: np.ndarray  # (T, I) requests/hour, read-only
    label: str
    weekday: np.ndarray | None = None  # (T,) int64 day of week, Monday = 0, read-only
    day_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        rates = np.array(self.rates_per_hour, dtype=np.float64)
        if rates.ndim != 2 or rates.shape[0] == 0:
            raise ValueError(f"EpisodeDemand.rates_per_hour has shape {rates.shape}; expected (T >= 1, I)")
        periods = rates.shape[0]
        weekday = np.zeros(periods, dtype=np.int64) if self.weekday is None else np.array(self.weekday)
        if weekday.shape != (periods,) or not np.issubdtype(weekday.dtype, np.integer):
            raise ValueError(
                f"EpisodeDemand.weekday must be ({periods},) integers; got {weekday.dtype} of shape {weekday.shape}"
            )
        if np.any((weekday < 0) | (weekday > 6)):
            raise ValueError("EpisodeDemand.weekday must lie in 0–6 (Monday = 0 … Sunday = 6)")
        rates.setflags(write=False)
        weekday = weekday.astype(np.int64)
        weekday.setflags(write=False)
        object.__setattr__(self, "rates_per_hour", rates)
        object.__setattr__(self, "weekday", weekday)
        object.__setattr__(self, "day_names", tuple(self.day_names) or (self.label,))

    @property
    def num_periods(self) -> int:
        """Number of periods T."""
        return int(self.rates_per_hour.shape[0])


class DemandSource(abc.ABC):
    """Draws the demand of one episode; all randomness comes from the ``rng`` passed to :meth:`sample`.

    The role of Jumanji's ``Generator``. Subclasses provide :attr:`label`, :meth:`max_periods` and :meth:`sample`;
    :meth:`check_horizon` lets the environment reject a horizon the source cannot fill when it is built rather
    than at the first reset (subclasses may override ``_horizon_message`` to say what to use instead).
    """

    label: str
    """Short name of the source (an attribute or a property): the spec string for the built-in ones, e.g.
    ``"azure-week"``, or ``"azure-week + noise σ=0.1"`` for :class:`NoisyDemand`."""

    @abc.abstractmethod
    def max_periods(self, period_minutes: int) -> int | None:
        """Longest horizon the source can fill, in periods of ``period_minutes``; ``None`` if unbounded."""

    @abc.abstractmethod
    def sample(
        self, instance: Instance, rng: np.random.Generator, *, period_minutes: int, num_periods: int
    ) -> EpisodeDemand:
        """Draw one episode of ``num_periods`` periods of ``period_minutes`` for ``instance``'s query types.

        Raises:
            DemandHorizonError: ``num_periods`` exceeds :meth:`max_periods`.
        """

    def check_horizon(self, *, period_minutes: int, num_periods: int) -> None:
        """Raise unless the source can fill ``num_periods`` periods of ``period_minutes``.

        Raises:
            ValueError: ``period_minutes`` does not divide 1440.
            DemandSourceError: ``num_periods`` is not a positive integer.
            DemandHorizonError: ``num_periods`` exceeds :meth:`max_periods`; the message says how many it can.
        """
        period_minutes = check_period_minutes(period_minutes)
        if not isinstance(num_periods, (int, np.integer)) or isinstance(num_periods, bool) or num_periods < 1:
            raise DemandSourceError(f"num_periods={num_periods!r} must be a positive integer")
        limit = self.max_periods(period_minutes)
        if limit is not None and num_periods > limit:
            raise DemandHorizonError(self._horizon_message(period_minutes, num_periods, limit))

    def _horizon_message(self, period_minutes: int, num_periods: int, limit: int) -> str:
        return (
            f"demand source {self.label!r} fills at most {limit} periods of {period_minutes} min "
            f"({_hours(limit, period_minutes)}); got num_periods={num_periods}"
        )


@dataclass(frozen=True)
class AzureDays(DemandSource):
    """One Azure day drawn from a split: ``azure-train``, ``azure-test`` or ``azure-validation``.

    The day is drawn uniformly from the split's days with one ``rng.integers`` call (the validation split has one
    day and draws nothing). The horizon is at most one day: a week contains the test days, so multi-day episodes
    are for evaluation (:class:`AzureWeek`, :class:`AzureDaySource`) and training draws single train days.

    Attributes:
        split: ``"train"``, ``"test"`` or ``"validation"`` (see :data:`SPLITS`).
    """

    split: str

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise DemandSourceError(f"AzureDays split={self.split!r} not one of {list(SPLITS)}")

    @property
    def label(self) -> str:
        return f"azure-{self.split}"

    def max_periods(self, period_minutes: int) -> int | None:
        return MINUTES_PER_DAY // check_period_minutes(period_minutes)

    def _horizon_message(self, period_minutes: int, num_periods: int, limit: int) -> str:
        return (
            f"demand source {self.label!r} plays one Azure day: at most {limit} periods of {period_minutes} min "
            f"(24 h), got num_periods={num_periods}; horizons beyond 24 h need one of {_MULTI_DAY_SOURCES} "
            "(the week contains the test days, so multi-day Azure episodes are for evaluation and training draws "
            "single train days)"
        )

    def sample(
        self, instance: Instance, rng: np.random.Generator, *, period_minutes: int, num_periods: int
    ) -> EpisodeDemand:
        self.check_horizon(period_minutes=period_minutes, num_periods=num_periods)
        days = SPLITS[self.split]
        day = days[0] if len(days) == 1 else days[int(rng.integers(len(days)))]
        return _azure_episode(instance, AZURE_DAYS.index(day), period_minutes, num_periods)


@dataclass(frozen=True)
class AzureDaySource(DemandSource):
    """A named Azure day, ``azure:<day>``; horizons beyond 24 h play the days after it in the trace week.

    The trace week runs Sunday 2024-05-12 to Saturday 2024-05-18 (:data:`~servegym.traces.AZURE_DAYS`), so a
    horizon starting on day index k can last at most 7 − k days. Deterministic: draws nothing from ``rng``.

    Attributes:
        day: Day name (e.g. ``"2024-05-17-fri"``) or index 0–6; a digit string is read as an index. Stored as
            the day name.
    """

    day: int | str

    def __post_init__(self) -> None:
        day = self.day
        if isinstance(day, str) and day.isdigit():
            day = int(day)
        try:
            name = azure_day(day).name
        except ValueError:
            raise DemandSourceError(
                f"demand source 'azure:{self.day}': unknown day; valid days: {list(AZURE_DAYS)} "
                f"or 0–{len(AZURE_DAYS) - 1}"
            ) from None
        object.__setattr__(self, "day", name)

    @property
    def label(self) -> str:
        return f"azure:{self.day}"

    @property
    def first_index(self) -> int:
        """Position of :attr:`day` in the trace week (0 = Sunday 2024-05-12)."""
        return AZURE_DAYS.index(self.day)

    def max_periods(self, period_minutes: int) -> int | None:
        return (len(AZURE_DAYS) - self.first_index) * (MINUTES_PER_DAY // check_period_minutes(period_minutes))

    def _horizon_message(self, period_minutes: int, num_periods: int, limit: int) -> str:
        return (
            f"demand source {self.label!r} plays {self.day} and the days after it up to {AZURE_DAYS[-1]}, the last "
            f"day of the trace week: {limit} periods of {period_minutes} min ({_hours(limit, period_minutes)}) are "
            f"left, got num_periods={num_periods}; start on an earlier day ('azure-week' starts on {AZURE_DAYS[0]}) "
            "or shorten the horizon"
        )

    def sample(
        self, instance: Instance, rng: np.random.Generator, *, period_minutes: int, num_periods: int
    ) -> EpisodeDemand:
        self.check_horizon(period_minutes=period_minutes, num_periods=num_periods)
        return _azure_episode(instance, self.first_index, period_minutes, num_periods)


@dataclass(frozen=True)
class AzureWeek(DemandSource):
    """The trace week, ``azure-week``: the seven consecutive days Sunday 2024-05-12 to Saturday 2024-05-18.

    Horizon up to seven days; the episode's ``weekday`` shows the day of week of each period. Contains the test
    days, so it is an evaluation source. Deterministic: draws nothing from ``rng``.
    """

    @property
    def label(self) -> str:
        return "azure-week"

    def max_periods(self, period_minutes: int) -> int | None:
        return len(AZURE_DAYS) * (MINUTES_PER_DAY // check_period_minutes(period_minutes))

    def _horizon_message(self, period_minutes: int, num_periods: int, limit: int) -> str:
        return (
            f"demand source 'azure-week' plays the trace week {AZURE_DAYS[0]} to {AZURE_DAYS[-1]}: at most {limit} "
            f"periods of {period_minutes} min (7 days), got num_periods={num_periods}; for longer horizons use "
            "'synthetic'"
        )

    def sample(
        self, instance: Instance, rng: np.random.Generator, *, period_minutes: int, num_periods: int
    ) -> EpisodeDemand:
        self.check_horizon(period_minutes=period_minutes, num_periods=num_periods)
        return _azure_episode(instance, 0, period_minutes, num_periods)


@dataclass(frozen=True)
class SyntheticSource(DemandSource):
    """Synthetic demand, ``synthetic``: the mean Azure daily profile × fresh mean-one lognormal noise.

    The profile is :func:`~servegym.traces.demand.mean_daily_profile` (train days only) scaled to peak 1, times
    the instance's nominal λ, repeated every day; every period of every day gets its own noise of volatility
    :attr:`sigma` (the paper's synthetic volatility study), so any horizon is fine. The calendar is a label only:
    day k of the episode has weekday ``(start_weekday + k) mod 7`` and is named ``synthetic day <k+1> (<wd>)``.

    Attributes:
        sigma: Lognormal volatility (standard deviation of the log of the noise factor), >= 0.
        start_weekday: Weekday of the first day, Monday = 0 (the default) … Sunday = 6.
    """

    sigma: float = 0.05
    start_weekday: int = 0

    def __post_init__(self) -> None:
        _check_volatility("sigma", self.sigma)
        if not isinstance(self.start_weekday, (int, np.integer)) or not 0 <= self.start_weekday <= 6:
            raise DemandSourceError(f"start_weekday={self.start_weekday!r} must be an integer in 0–6 (Monday = 0)")
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "start_weekday", int(self.start_weekday))

    @property
    def label(self) -> str:
        return "synthetic"

    def max_periods(self, period_minutes: int) -> int | None:
        check_period_minutes(period_minutes)
        return None

    def sample(
        self, instance: Instance, rng: np.random.Generator, *, period_minutes: int, num_periods: int
    ) -> EpisodeDemand:
        self.check_horizon(period_minutes=period_minutes, num_periods=num_periods)
        profile = mean_daily_profile(period_minutes)
        demand = synthetic_demand(
            rng,
            instance.demand_per_hour / profile.max(),
            num_periods,
            period_minutes,
            sigma=self.sigma,
            diurnal_profile=profile,
        )
        per_day = MINUTES_PER_DAY // period_minutes
        days = np.arange(num_periods) // per_day
        weekdays = (self.start_weekday + np.arange(days[-1] + 1)) % 7
        return EpisodeDemand(
            rates_per_hour=demand.rates_per_hour,
            label=f"synthetic σ={self.sigma:g}",
            weekday=weekdays[days],
            day_names=tuple(f"synthetic day {k + 1} ({WEEKDAY_NAMES[wd]})" for k, wd in enumerate(weekdays)),
        )


@dataclass(frozen=True)
class NoisyDemand(DemandSource):
    """Another source's demand × mean-one lognormal noise, independent per period and query type.

    ``rate · exp(noise_sigma · z − noise_sigma² / 2)`` with z standard normal, drawn from ``rng`` after the base
    source's own draws; the label gains ``+ noise σ=<noise_sigma>``. This is the environment's ``noise_sigma``.

    Attributes:
        base: The source whose demand gets the noise.
        noise_sigma: Lognormal volatility of the extra noise, >= 0 (0 leaves the base demand unchanged).
    """

    base: DemandSource
    noise_sigma: float

    def __post_init__(self) -> None:
        if not isinstance(self.base, DemandSource):
            raise DemandSourceError(f"NoisyDemand base={self.base!r} is not a DemandSource")
        _check_volatility("noise_sigma", self.noise_sigma)
        object.__setattr__(self, "noise_sigma", float(self.noise_sigma))

    @property
    def label(self) -> str:
        return f"{self.base.label} + noise σ={self.noise_sigma:g}"

    def max_periods(self, period_minutes: int) -> int | None:
        return self.base.max_periods(period_minutes)

    def check_horizon(self, *, period_minutes: int, num_periods: int) -> None:
        self.base.check_horizon(period_minutes=period_minutes, num_periods=num_periods)

    def sample(
        self, instance: Instance, rng: np.random.Generator, *, period_minutes: int, num_periods: int
    ) -> EpisodeDemand:
        demand = self.base.sample(instance, rng, period_minutes=period_minutes, num_periods=num_periods)
        rates = demand.rates_per_hour
        sigma = self.noise_sigma
        rates = rates * np.exp(sigma * rng.standard_normal(rates.shape) - 0.5 * sigma**2)
        return EpisodeDemand(
            rates_per_hour=rates,
            label=f"{demand.label} + noise σ={sigma:g}",
            weekday=demand.weekday,
            day_names=demand.day_names,
        )


def parse_demand_source(spec: str | DemandSource, *, sigma: float, noise_sigma: float) -> DemandSource:
    """Turn a spec string into a :class:`DemandSource`; source objects pass through.

    Args:
        spec: One of :data:`DEMAND_SOURCES`, ``azure:<day>`` (a day name or index 0–6), or a source object.
        sigma: Volatility of ``synthetic`` (ignored by the other strings and by objects), >= 0.
        noise_sigma: Extra realised noise, >= 0; when > 0 the source (string or object) is wrapped in
            :class:`NoisyDemand`, so an object is returned unchanged only when ``noise_sigma == 0``.

    Raises:
        DemandSourceError: Unknown spec or day, or a negative/non-finite ``sigma``/``noise_sigma``; the message
            names the argument and lists the allowed values.
    """
    _check_volatility("sigma", sigma)
    _check_volatility("noise_sigma", noise_sigma)
    source: DemandSource
    if isinstance(spec, DemandSource):
        source = spec
    elif not isinstance(spec, str):
        raise DemandSourceError(
            f"demand source {spec!r} must be a DemandSource or one of {list(DEMAND_SOURCES)} or 'azure:<day>'"
        )
    elif spec.startswith("azure:"):
        source = AzureDaySource(spec.split(":", 1)[1])
    elif spec in ("azure-train", "azure-test", "azure-validation"):
        source = AzureDays(spec.removeprefix("azure-"))
    elif spec == "azure-week":
        source = AzureWeek()
    elif spec == "synthetic":
        source = SyntheticSource(sigma)
    else:
        raise DemandSourceError(f"demand source {spec!r} not one of {list(DEMAND_SOURCES)} or 'azure:<day>'")
    return NoisyDemand(source, noise_sigma) if noise_sigma > 0.0 else source


def validate_source(source: str | DemandSource) -> None:
    """Raise :class:`DemandSourceError` (a ValueError) naming the allowed sources when ``source`` is not one."""
    parse_demand_source(source, sigma=0.0, noise_sigma=0.0)


def episode_demand(
    instance: Instance,
    source: str | DemandSource,
    rng: np.random.Generator,
    *,
    period_minutes: int,
    num_periods: int,
    sigma: float = 0.05,
    noise_sigma: float = 0.0,
) -> EpisodeDemand:
    """Draw the demand of one episode: :func:`parse_demand_source`, then :meth:`DemandSource.sample`.

    Raises:
        DemandSourceError: Unknown source or invalid ``sigma``/``noise_sigma``.
        DemandHorizonError: The source cannot fill ``num_periods`` periods.
    """
    parsed = parse_demand_source(source, sigma=sigma, noise_sigma=noise_sigma)
    return parsed.sample(instance, rng, period_minutes=period_minutes, num_periods=num_periods)


def _check_volatility(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise DemandSourceError(f"{name}={value!r} must be a finite number >= 0")
    if not (math.isfinite(value) and value >= 0.0):
        raise DemandSourceError(f"{name}={value!r} must be finite and >= 0")


def _hours(periods: int, period_minutes: int) -> str:
    hours = periods * period_minutes / 60.0
    return f"{hours / 24:g} days" if hours >= 24 and hours % 24 == 0 else f"{hours:g} h"


def _azure_episode(instance: Instance, first_index: int, period_minutes: int, num_periods: int) -> EpisodeDemand:
    """Consecutive Azure days from ``AZURE_DAYS[first_index]`` on, cut to ``num_periods`` periods, × nominal λ."""
    per_day = MINUTES_PER_DAY // period_minutes
    names = AZURE_DAYS[first_index : first_index + -(-num_periods // per_day)]
    type_names = tuple(q.name for q in instance.query_types)
    shapes = [_azure_shape(name, period_minutes, type_names) for name in names]
    shape = shapes[0] if len(shapes) == 1 else np.concatenate(shapes, axis=0)
    weekday = np.repeat([azure_day(name).conv_date.weekday() for name in names], per_day)
    label = f"azure {names[0]}" if len(names) == 1 else f"azure {names[0]} to {names[-1]}"
    return EpisodeDemand(
        rates_per_hour=shape[:num_periods] * instance.demand_per_hour,
        label=label,
        weekday=weekday[:num_periods],
        day_names=names,
    )


@functools.lru_cache(maxsize=64)
def _azure_shape(day: str, period_minutes: int, type_names: tuple[str, ...]) -> np.ndarray:
    """(T, I) shape of one Azure day, each type normalised by its validation-day peak hourly rate."""
    day_rates = azure_demand(day, period_minutes=period_minutes)
    peak = validation_peak_per_hour()
    shape = day_rates.rates_per_hour / peak
    total = day_rates.rates_per_hour.sum(axis=1) / peak.sum()
    columns = [
        shape[:, day_rates.query_types.index(name)] if name in day_rates.query_types else total for name in type_names
    ]
    result = np.stack(columns, axis=1)
    result.setflags(write=False)
    return result
