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
import dataclasses
import datetime
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from servegym import numerics
from servegym.envs.catalog import Catalog
from servegym.envs.instance import Instance
from servegym.errors import ServegymError
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
from servegym.traces.azure import TraceFormatError
from servegym.traces.days import MINUTES_PER_DAY
from servegym.traces.demand import check_period_minutes, mean_daily_profile
from servegym.traces.user_trace import SPLITS as TRACE_SPLITS
from servegym.traces.user_trace import (
    Trace,
    TraceOptions,
    load_trace,
    parse_trace_spec,
    trace_option_items,
    trace_options,
)

DEMAND_SOURCES = ("azure-train", "azure-test", "azure-validation", "azure-week", "synthetic")
"""Named sources; ``azure:<day>`` (a day name or index) picks one Azure day (and the days after it) and
``trace:PATH[?key=value&…]`` plays a trace file (:class:`TraceDemand`)."""
_SPEC_FORMS = f"one of {list(DEMAND_SOURCES)}, 'azure:<day>' or 'trace:PATH'"

SPLITS: dict[str, tuple[str, ...]] = {"train": TRAIN_DAYS, "test": TEST_DAYS, "validation": (VALIDATION_DAY,)}
"""The days each :class:`AzureDays` split draws from."""

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Three-letter weekday names by weekday number (Monday = 0)."""

_MULTI_DAY_SOURCES = "'azure-week', 'azure:<day>' or 'synthetic'"

LEAD_IN_MINUTES = 60
"""Minutes of demand just before an episode that a source reports as its lead-in (``EpisodeDemand.lead_in_per_hour``):
what the service saw before the episode began, observed by the environment at reset."""


def lead_in_periods(period_minutes: int) -> int:
    """Periods of ``period_minutes`` in the lead-in (:data:`LEAD_IN_MINUTES`, at least one period)."""
    return max(LEAD_IN_MINUTES // period_minutes, 1)


class DemandSourceError(ServegymError, ValueError):
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
        start_minute_of_day: Minutes after 00:00 at which period 0 starts (0 for every built-in source; a trace
            covering part of a day starts at its first whole period).
        history_per_hour: (H, I) demand of the source's reference days that are not the episode's own (whole days
            from 00:00, oldest first), requests/hour, read-only; what forecasters fit on before the episode
            (``servegym.envs.forecast``). ``None``: no history (a trace with fewer than two full days, or every
            reference day is played).
        lead_in_per_hour: (L, I) demand of the L periods just before period 0 (oldest first; L =
            :func:`lead_in_periods`), requests/hour, read-only: what the service had seen when the episode began.
            The environment observes it at reset (forecaster and demand history). ``None``: the source has no past
            before the episode (the first day of a trace).
    """

    rates_per_hour: np.ndarray  # (T, I) requests/hour, read-only
    label: str
    weekday: np.ndarray | None = None  # (T,) int64 day of week, Monday = 0, read-only
    day_names: tuple[str, ...] = ()
    start_minute_of_day: int = 0
    history_per_hour: np.ndarray | None = None  # (H, I) requests/hour, read-only
    lead_in_per_hour: np.ndarray | None = None  # (L, I) requests/hour, read-only

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
        if not 0 <= self.start_minute_of_day < MINUTES_PER_DAY:
            raise ValueError(f"EpisodeDemand.start_minute_of_day={self.start_minute_of_day!r} must lie in [0, 1440)")
        if self.history_per_hour is not None:
            history = np.array(self.history_per_hour, dtype=np.float64)
            if history.ndim != 2 or history.shape[1] != rates.shape[1]:
                raise ValueError(
                    f"EpisodeDemand.history_per_hour has shape {history.shape}; expected (H, {rates.shape[1]})"
                )
            history.setflags(write=False)
            object.__setattr__(self, "history_per_hour", history if len(history) else None)
        if self.lead_in_per_hour is not None:
            lead_in = np.array(self.lead_in_per_hour, dtype=np.float64)
            if (
                lead_in.ndim != 2
                or lead_in.shape[1] != rates.shape[1]
                or not np.all(np.isfinite(lead_in) & (lead_in >= 0))
            ):
                raise ValueError(
                    f"EpisodeDemand.lead_in_per_hour must be (L, {rates.shape[1]}) finite rates ≥ 0; got shape "
                    f"{lead_in.shape}"
                )
            lead_in.setflags(write=False)
            object.__setattr__(self, "lead_in_per_hour", lead_in if len(lead_in) else None)
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

    def own_instance(self, catalog: Catalog | None = None) -> Instance | None:
        """An instance on the source's own query types (a trace with token columns), or ``None`` to play the
        environment's scenario instance; ``catalog`` is the environment's catalog."""
        del catalog
        return None

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
    :attr:`sigma` (the paper's synthetic volatility study), so any horizon is fine. The lead-in is the profile's
    last hour without noise (its mean; it draws nothing, so the episode's draws are those of a source without
    one). The calendar is a label only:
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
            history_per_hour=_azure_history(instance, period_minutes, ()),
            lead_in_per_hour=profile[-lead_in_periods(period_minutes) :, None]
            * (instance.demand_per_hour / profile.max()),
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

    def own_instance(self, catalog: Catalog | None = None) -> Instance | None:
        return self.base.own_instance(catalog)

    def check_horizon(self, *, period_minutes: int, num_periods: int) -> None:
        self.base.check_horizon(period_minutes=period_minutes, num_periods=num_periods)

    def sample(
        self, instance: Instance, rng: np.random.Generator, *, period_minutes: int, num_periods: int
    ) -> EpisodeDemand:
        demand = self.base.sample(instance, rng, period_minutes=period_minutes, num_periods=num_periods)
        rates = demand.rates_per_hour
        sigma = self.noise_sigma
        rates = rates * numerics.exp(sigma * rng.standard_normal(rates.shape) - 0.5 * sigma**2)
        return EpisodeDemand(
            rates_per_hour=rates,
            label=f"{demand.label} + noise σ={sigma:g}",
            weekday=demand.weekday,
            day_names=demand.day_names,
            start_minute_of_day=demand.start_minute_of_day,
            history_per_hour=demand.history_per_hour,
            lead_in_per_hour=demand.lead_in_per_hour,
        )


TRACE_SCALES = ("nominal-peak", "absolute")
"""``nominal-peak``: the trace's busiest hour maps to the nominal λ; ``absolute``: the trace's own rates."""
TRACE_TYPE_MODES = ("auto", "total")
"""``auto``: per query type, else per service, else total load (see :class:`TraceDemand`); ``total``: always the
total load shape."""
TRACE_EPISODE_KEYS = ("split", "scale", "types", "start", "rate_scale")
"""Spec keys of :class:`TraceDemand` itself (the others are read options of ``TraceOptions``)."""
TRACE_MAPPINGS = ("per type", "per service", "total load")
"""How a trace drives an instance's query types, most specific first."""


@dataclass(frozen=True)
class TraceDemand(DemandSource):
    """Demand from any trace file, ``trace:PATH[?key=value&…]`` (docs/traces.md "Your own traces").

    The file is read once by :func:`~servegym.traces.user_trace.load_trace` (per-request or per-interval counts,
    detected from the header; ``read`` overrides the detection). An episode plays consecutive periods of the
    trace's timeline, never a tiled copy:

    * ``split="all"`` (default): from the first whole period of day ``start`` (default: of the trace) on, for
      as long as the coverage lasts (multi-day traces give multi-day episodes); deterministic.
    * ``split="train"`` / ``"test"``: one full day drawn with one ``rng.integers`` call from the split's days
      (the last ⌈n/4⌉ full days are test); ``"validation"``: the last train day; horizon at most 24 h.

    How the trace drives the instance's query types (``types="auto"``, the most specific that fits):

    * **per type**: the trace's derived query types (it has token columns) are exactly the instance's types
      (the env builds such an instance from the trace when its scenario is ``azure``; see
      :meth:`own_instance`);
    * **per service**: every instance type is named ``<service>-…`` after a trace service and every trace
      service has a type; each type gets its service's load × its share of the service's nominal λ;
    * **total load**: otherwise (and with ``types="total"``), every type follows the trace's total load.

    Scaling (``scale``): ``nominal-peak`` maps the busiest clock hour of the reference window (the train days,
    or the whole trace with fewer than two full days) of each driving stream to the nominal λ of the type (of
    the service's or all types for the coarser mappings); ``absolute`` plays the trace's real rates, split
    over a service's (or all) types by their nominal λ.

    Attributes:
        path: The trace file.
        split: ``all``, ``train``, ``test`` or ``validation``.
        scale: One of :data:`TRACE_SCALES`.
        types: One of :data:`TRACE_TYPE_MODES`.
        start: First day played by ``split="all"``: a timeline day index (0 = the first timestamp's date) or an
            ISO date; ``None`` starts where the coverage starts.
        rate_scale: Multiplies the trace's own rates (> 0): what-if traffic growth. It scales the rates of
            ``scale="absolute"`` and the nominal λ of the instance built from the trace's own query types (so
            that instance is sized for the scaled traffic); with ``nominal-peak`` on another instance, that
            instance's λ sets the magnitude.
        read: How to read the file (:class:`~servegym.traces.user_trace.TraceOptions`).
    """

    path: str | Path
    split: str = "all"
    scale: str = "nominal-peak"
    types: str = "auto"
    start: int | str | None = None
    rate_scale: float = 1.0
    read: TraceOptions = dataclasses.field(default_factory=TraceOptions)

    def __post_init__(self) -> None:
        if self.scale not in TRACE_SCALES:
            raise DemandSourceError(f"trace option scale={self.scale!r} not one of {list(TRACE_SCALES)}")
        if self.types not in TRACE_TYPE_MODES:
            raise DemandSourceError(f"trace option types={self.types!r} not one of {list(TRACE_TYPE_MODES)}")
        if self.split not in TRACE_SPLITS:
            raise DemandSourceError(f"trace option split={self.split!r} not one of {list(TRACE_SPLITS)}")
        if isinstance(self.rate_scale, str):
            try:
                object.__setattr__(self, "rate_scale", float(self.rate_scale))
            except ValueError:
                raise DemandSourceError(f"trace option rate_scale={self.rate_scale!r} is not a number") from None
        if isinstance(self.rate_scale, bool) or not (math.isfinite(self.rate_scale) and self.rate_scale > 0):
            raise DemandSourceError(f"trace option rate_scale={self.rate_scale!r} must be finite and > 0")
        object.__setattr__(self, "rate_scale", float(self.rate_scale))
        if self.start is not None and self.split != "all":
            raise DemandSourceError(f"trace option start applies to split=all, not split={self.split!r}")
        trace = load_trace(self.path, self.read)
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "trace", trace)
        if self.split != "all":
            trace.split_days(self.split)  # raises when the trace has fewer than two full days
        object.__setattr__(self, "_start_day", self._resolve_start(trace))

    trace: Trace = dataclasses.field(init=False, repr=False, compare=False)
    """The parsed trace."""

    def _resolve_start(self, trace: Trace) -> int | None:
        if self.start is None:
            return None
        start = self.start
        if isinstance(start, str) and not start.lstrip("-").isdigit():
            try:
                date = datetime.date.fromisoformat(start)
            except ValueError:
                raise DemandSourceError(
                    f"trace option start={start!r} must be a day index or an ISO date (YYYY-MM-DD)"
                ) from None
            start = (date - trace.day0).days
        day = int(start)
        first_day, end_day = trace.covered[0] // MINUTES_PER_DAY, -(-trace.covered[1] // MINUTES_PER_DAY)
        if not first_day <= day < end_day:
            raise DemandSourceError(
                f"trace option start={self.start!r}: the trace covers days {first_day}–{end_day - 1} "
                f"({trace.day_name(first_day)} to {trace.day_name(end_day - 1)})"
            )
        return day

    @property
    def label(self) -> str:
        """The spec string, ``trace:PATH?key=value&…`` with every non-default option: it parses back to this
        source."""
        own = [
            (key, str(value))
            for key, value, default in (
                ("split", self.split, "all"),
                ("scale", self.scale, "nominal-peak"),
                ("types", self.types, "auto"),
                ("start", self.start, None),
                ("rate_scale", f"{self.rate_scale:g}", "1"),
            )
            if value != default
        ]
        options = [f"{key}={value}" for key, value in own + trace_option_items(self.read)]
        return f"trace:{self.path}" + ("?" + "&".join(options) if options else "")

    def _first_period(self, period_minutes: int) -> int:
        first, _ = self.trace.playable_periods(period_minutes)
        if self._start_day is None:
            return first
        return max(first, self._start_day * (MINUTES_PER_DAY // period_minutes))

    def max_periods(self, period_minutes: int) -> int | None:
        period_minutes = check_period_minutes(period_minutes)
        if self.split != "all":
            return MINUTES_PER_DAY // period_minutes
        _, end = self.trace.playable_periods(period_minutes)
        return max(end - self._first_period(period_minutes), 0)

    def _horizon_message(self, period_minutes: int, num_periods: int, limit: int) -> str:
        if self.split != "all":
            return (
                f"demand source {self.label!r} plays one full day of its {self.split} split: at most {limit} periods "
                f"of {period_minutes} min (24 h), got num_periods={num_periods}; multi-day episodes use split=all"
            )
        return (
            f"demand source {self.label!r}: the trace covers {self.trace.span_text()}, which holds {limit} whole "
            f"periods of {period_minutes} min ({_hours(limit, period_minutes)}) from where the episode starts; got "
            f"num_periods={num_periods}; shorten horizon_hours to at most {limit * period_minutes / 60:g}"
        )

    def defines_query_types(self) -> bool:
        """Whether the trace brings its own query types (token columns, ``types="auto"``)."""
        return self.types == "auto" and self.trace.kind == "query-types"

    def own_instance(self, catalog: Catalog | None = None) -> Instance | None:
        """The ``azure`` scenario on the trace's own query types (:func:`~servegym.envs.scenarios.trace_instance`)
        when the trace brings them, else ``None``."""
        if not self.defines_query_types():
            return None
        from servegym.envs.scenarios import trace_instance

        return trace_instance(self.trace, catalog, demand_scale=self.rate_scale)

    def mapping(self, instance: Instance) -> tuple[str, np.ndarray, np.ndarray]:
        """How the trace drives ``instance``: one of :data:`TRACE_MAPPINGS`, the (K, G) 0/1 matrix that sums the
        trace's K streams into G driving groups, and the (I, G) 0/1 membership of each query type in a group."""
        trace = self.trace
        names = tuple(q.name for q in instance.query_types)
        if self.types == "auto" and trace.kind == "query-types" and sorted(names) == sorted(trace.streams):
            return "per type", np.eye(len(names))[:, [trace.streams.index(n) for n in names]], np.eye(len(names))
        services = trace.services
        owners = [_service_of(name, services) for name in names]
        if self.types == "auto" and None not in owners and set(owners) == set(services):
            combine = np.array([[float(s == g) for g in services] for s in trace.stream_services])
            return "per service", combine, np.array([[float(o == g) for g in services] for o in owners])
        return "total load", np.ones((len(trace.streams), 1)), np.ones((len(names), 1))

    def sample(
        self, instance: Instance, rng: np.random.Generator, *, period_minutes: int, num_periods: int
    ) -> EpisodeDemand:
        self.check_horizon(period_minutes=period_minutes, num_periods=num_periods)
        trace = self.trace
        per_day = MINUTES_PER_DAY // period_minutes
        if self.split == "all":
            first = self._first_period(period_minutes)
        else:
            days = trace.split_days(self.split)
            first = days[int(rng.integers(len(days)))] * per_day
        rates, mapping = self._rates(instance, period_minutes, first, num_periods)
        days = np.arange(first, first + num_periods) // per_day
        played = list(dict.fromkeys(days.tolist()))
        names = tuple(trace.day_name(d) for d in played)
        span = names[0] if len(names) == 1 else f"{names[0]} to {names[-1]}"
        return EpisodeDemand(
            rates_per_hour=rates,
            label=f"trace {self.path.name} {span} ({mapping})",
            weekday=np.array([trace.weekday(d) for d in days], dtype=np.int64),
            day_names=names,
            start_minute_of_day=(first * period_minutes) % MINUTES_PER_DAY,
            history_per_hour=self._history(instance, period_minutes, set(played)),
            lead_in_per_hour=self._lead_in(instance, period_minutes, first),
        )

    def _lead_in(self, instance: Instance, period_minutes: int, first: int) -> np.ndarray | None:
        """(L, I) rates of the lead-in periods before timeline period ``first``, None when the trace starts later."""
        periods = lead_in_periods(period_minutes)
        if first - periods < self.trace.playable_periods(period_minutes)[0]:
            return None
        return self._rates(instance, period_minutes, first - periods, periods)[0]

    def _rates(self, instance: Instance, period_minutes: int, first: int, num_periods: int) -> tuple[np.ndarray, str]:
        """(num_periods, I) rates of ``instance``'s types in timeline periods ``first`` on, and the mapping used."""
        mapping, combine, member = self.mapping(instance)
        group_rates = self.trace.period_rates(period_minutes, first, num_periods, combine)  # (T, G) requests/hour
        nominal = np.asarray(instance.demand_per_hour, dtype=np.float64)
        if self.scale == "nominal-peak":
            shape = group_rates / np.maximum(self.trace.peak_per_hour(combine), 1e-12)
            return (shape @ member.T) * nominal, mapping
        return self.rate_scale * group_rates @ _shares(member, nominal).T, mapping

    def _history(self, instance: Instance, period_minutes: int, played: set[int]) -> np.ndarray | None:
        """(H, I) the reference window's full days other than ``played`` (timeline day indices), oldest first."""
        trace = self.trace
        first, end = trace.reference_minutes()
        per_day = MINUTES_PER_DAY // period_minutes
        days = [d for d in trace.full_days if first <= d * MINUTES_PER_DAY < end and d not in played]
        if not days:
            return None
        return np.concatenate([self._rates(instance, period_minutes, d * per_day, per_day)[0] for d in days])


def _service_of(type_name: str, services: tuple[str, ...]) -> str | None:
    """The longest trace service ``s`` with ``type_name`` equal to ``s`` or starting with ``s-``, else None."""
    matches = [s for s in services if type_name == s or type_name.startswith(f"{s}-")]
    return max(matches, key=len) if matches else None


def _shares(member: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """(I, G) each type's share of its group's nominal λ (equal shares in a group without nominal demand)."""
    weighted = member * nominal[:, None]
    totals = weighted.sum(axis=0)
    equal = member / np.maximum(member.sum(axis=0), 1.0)
    return np.where(totals > 0, weighted / np.where(totals > 0, totals, 1.0), equal)


def trace_source(spec: str) -> TraceDemand:
    """A :class:`TraceDemand` from ``PATH[?key=value&…]`` (the part after ``trace:``): the keys of
    :class:`TraceDemand` (``split``, ``scale``, ``types``, ``start``) and the read options of
    :data:`~servegym.traces.user_trace.READ_OPTION_KEYS`."""
    path, values = parse_trace_spec(spec)
    if not str(path):
        raise DemandSourceError("demand source 'trace:' needs a file: trace:PATH[?key=value&...]")
    own = {key: values.pop(key) for key in TRACE_EPISODE_KEYS if key in values}
    try:
        read = trace_options(values)
    except TraceFormatError as error:
        raise DemandSourceError(f"demand source 'trace:{spec}': {error}") from None
    return TraceDemand(path, read=read, **own)  # type: ignore[arg-type]


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
        raise DemandSourceError(f"demand source {spec!r} must be a DemandSource or {_SPEC_FORMS}")
    elif spec.startswith("azure:"):
        source = AzureDaySource(spec.split(":", 1)[1])
    elif spec.startswith("trace:"):
        source = trace_source(spec.removeprefix("trace:"))
    elif spec in ("azure-train", "azure-test", "azure-validation"):
        source = AzureDays(spec.removeprefix("azure-"))
    elif spec == "azure-week":
        source = AzureWeek()
    elif spec == "synthetic":
        source = SyntheticSource(sigma)
    else:
        raise DemandSourceError(f"demand source {spec!r} not {_SPEC_FORMS}")
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
    """Consecutive Azure days from ``AZURE_DAYS[first_index]`` on, cut to ``num_periods`` periods, × nominal λ; the
    lead-in is the last hour of the day before (none on the trace's first day)."""
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
        history_per_hour=_azure_history(instance, period_minutes, names),
        lead_in_per_hour=None
        if first_index == 0
        else _azure_shape(AZURE_DAYS[first_index - 1], period_minutes, type_names)[-lead_in_periods(period_minutes) :]
        * instance.demand_per_hour,
    )


def _azure_history(instance: Instance, period_minutes: int, played: tuple[str, ...]) -> np.ndarray | None:
    """(H, I) the Azure train days other than ``played``, in week order, × nominal λ: the forecasters' history."""
    type_names = tuple(q.name for q in instance.query_types)
    days = [day for day in AZURE_DAYS if day in TRAIN_DAYS and day not in played]
    if not days:
        return None
    return np.concatenate([_azure_shape(day, period_minutes, type_names) for day in days]) * instance.demand_per_hour


def azure_histories(instance: Instance, period_minutes: int) -> list[np.ndarray]:
    """Every (H, I) forecaster history an Azure-based source can give ``instance``: the train days other than
    those of an episode of one or more consecutive Azure days (synthetic demand and the test days: all of them),
    distinct, at least two days long (a shorter history is not fitted). ``scripts/fit_forecasters.py`` fits
    these once for the package (:func:`servegym.envs.forecast.shipped_fits`)."""
    count = len(AZURE_DAYS)
    played_sets = {()} | {tuple(AZURE_DAYS[first:end]) for first in range(count) for end in range(first + 1, count + 1)}
    per_day = MINUTES_PER_DAY // period_minutes
    histories: dict[bytes, np.ndarray] = {}
    for played in sorted(played_sets):
        history = _azure_history(instance, period_minutes, played)
        if history is not None and len(history) >= 2 * per_day:
            histories.setdefault(history.tobytes(), history)
    return list(histories.values())


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
