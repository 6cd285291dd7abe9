"""Synthetic demand: a diurnal shape times mean-one lognormal noise.

For period t and query type i::

    rate[t, i] = base_rates_per_hour[i] × profile[t mod P (, i)] × exp(sigma · z[t, i] − sigma² / 2)

with z[t, i] independent standard normal draws from the generator passed in, and P the number of periods
in a day. The noise factor has mean exactly 1 (``E[exp(sigma·z)] = exp(sigma²/2)``), so ``sigma`` changes
the volatility but not the expected load; ``sigma = 0`` gives the pure shape. The default shape is the
mean normalised Azure daily profile of the train days
(:func:`~servegym.traces.demand.mean_daily_profile`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from servegym import numerics
from servegym.traces.days import MINUTES_PER_DAY
from servegym.traces.demand import Demand, check_period_minutes, mean_daily_profile


@dataclass(frozen=True, eq=False)
class SyntheticDemand:
    """A validated synthetic-demand specification; :meth:`sample` draws one :class:`Demand`.

    Attributes:
        base_rates_per_hour: (I,) mean arrival rate of each query type, requests/hour; read-only.
        periods: Number of periods T to generate (may exceed one day; the profile repeats daily).
        period_minutes: Period length in minutes; divides 1440.
        sigma: Volatility of the lognormal noise (standard deviation of its log), >= 0.
        diurnal_profile: (P,) or (P, I) multipliers per period of the day (P = 1440 / period_minutes),
            used as given; ``None`` uses the mean Azure profile of the train days (mean 1). Read-only.
        query_types: (I,) names of the query types; default ``type-0``, ``type-1``, ...
    """

    base_rates_per_hour: np.ndarray  # (I,) requests/hour, read-only
    periods: int
    period_minutes: int = 15
    sigma: float = 0.0
    diurnal_profile: np.ndarray | None = None  # (P,) or (P, I) dimensionless, read-only
    query_types: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        period_minutes = check_period_minutes(self.period_minutes)
        base = np.array(self.base_rates_per_hour, dtype=np.float64)
        if base.ndim != 1 or base.size == 0 or not np.all(np.isfinite(base)) or np.any(base < 0):
            raise ValueError(
                "base_rates_per_hour must be a non-empty 1-D array of finite, non-negative requests/hour; "
                f"got shape {base.shape}"
            )
        if not isinstance(self.periods, (int, np.integer)) or isinstance(self.periods, bool) or self.periods < 1:
            raise ValueError(f"periods={self.periods!r} must be a positive integer")
        if not np.isfinite(self.sigma) or self.sigma < 0:
            raise ValueError(f"sigma={self.sigma!r} must be finite and >= 0")
        per_day = MINUTES_PER_DAY // period_minutes
        if self.diurnal_profile is None:
            profile = mean_daily_profile(period_minutes)
        else:
            profile = np.array(self.diurnal_profile, dtype=np.float64)
        if profile.shape not in ((per_day,), (per_day, base.size)):
            raise ValueError(
                f"diurnal_profile has shape {profile.shape}; expected ({per_day},) or ({per_day}, {base.size}) "
                f"for {period_minutes}-minute periods"
            )
        if not np.all(np.isfinite(profile)) or np.any(profile < 0):
            raise ValueError("diurnal_profile must be finite and non-negative")
        names = tuple(f"type-{i}" for i in range(base.size)) if self.query_types is None else self.query_types
        if len(names) != base.size:
            raise ValueError(f"{len(names)} query_types given for {base.size} base rates")
        base.flags.writeable = False
        profile.flags.writeable = False
        object.__setattr__(self, "base_rates_per_hour", base)
        object.__setattr__(self, "periods", int(self.periods))
        object.__setattr__(self, "period_minutes", period_minutes)
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "diurnal_profile", profile)
        object.__setattr__(self, "query_types", tuple(names))

    def mean_rates_per_hour(self) -> np.ndarray:
        """(T, I) expected rates, requests/hour: base × profile, i.e. the sample at ``sigma = 0``."""
        profile = np.asarray(self.diurnal_profile)
        per_day = profile.shape[0]
        shape = profile[np.arange(self.periods) % per_day]
        if shape.ndim == 1:
            shape = shape[:, None]
        return self.base_rates_per_hour[None, :] * shape

    def sample(self, rng: np.random.Generator) -> Demand:
        """Draw one demand path; all randomness comes from ``rng`` (T × I standard normals).

        Raises:
            TypeError: ``rng`` is not a :class:`numpy.random.Generator`.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        mean = self.mean_rates_per_hour()
        z = rng.standard_normal(mean.shape)
        noise = numerics.exp(self.sigma * z - 0.5 * self.sigma**2)
        return Demand(
            rates_per_hour=mean * noise,
            query_types=self.query_types,
            period_minutes=self.period_minutes,
            day=None,
            start_hour_utc=0.0,
        )


def synthetic_demand(
    rng: np.random.Generator,
    base_rates_per_hour: Sequence[float] | np.ndarray,
    periods: int,
    period_minutes: int = 15,
    sigma: float = 0.0,
    diurnal_profile: np.ndarray | None = None,
    query_types: Sequence[str] | None = None,
) -> Demand:
    """Draw synthetic demand: diurnal shape × mean-one lognormal noise (see module docstring).

    Args:
        rng: The only source of randomness.
        base_rates_per_hour: (I,) mean rate per query type, requests/hour.
        periods: Number of periods T, starting at 00:00 UTC.
        period_minutes: Period length in minutes; divides 1440.
        sigma: Lognormal volatility (std of the log of the noise factor), >= 0; 0 gives the pure shape.
        diurnal_profile: (P,) or (P, I) multipliers per period of the day, used as given; ``None`` uses
            :func:`~servegym.traces.demand.mean_daily_profile` (train days, mean 1).
        query_types: (I,) names; default ``type-0``, ``type-1``, ...

    Returns:
        Demand with ``rates_per_hour`` of shape (T, I) and ``day=None``.
    """
    spec = SyntheticDemand(
        base_rates_per_hour=np.asarray(base_rates_per_hour, dtype=np.float64),
        periods=periods,
        period_minutes=period_minutes,
        sigma=sigma,
        diurnal_profile=diurnal_profile,
        query_types=None if query_types is None else tuple(query_types),
    )
    return spec.sample(rng)
