"""Per-episode demand for the environment: Azure days (train/test/validation or one named day) or synthetic.

Demand of query type i in period t is λ_i · shape_{t,i}, where λ_i is the instance's nominal demand (the busiest
hour of the validation day for the ``azure`` scenario) and the shape is

- for an Azure day: the day's rate of the matching Azure query type divided by that type's peak hourly rate on
  the validation day (so the ``azure`` scenario replays the real trace at its real magnitude); query types with
  no Azure counterpart (``paper``, ``random``) follow the day's total load, normalised the same way;
- for ``synthetic``: the mean Azure daily profile of the train days scaled to peak 1, times mean-one lognormal
  noise of volatility σ (the paper's synthetic volatility study).

Optionally realised demand gets extra mean-one lognormal noise of volatility ``noise_sigma`` on top of a trace.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from servegym.envs.instance import Instance
from servegym.traces import (
    AZURE_DAYS,
    TEST_DAYS,
    TRAIN_DAYS,
    VALIDATION_DAY,
    azure_demand,
    synthetic_demand,
    validation_peak_per_hour,
)
from servegym.traces.demand import mean_daily_profile

DEMAND_SOURCES = ("azure-train", "azure-test", "azure-validation", "synthetic")
"""Named sources; ``azure:<day>`` (a day name or index) picks one Azure day."""


@dataclass(frozen=True)
class EpisodeDemand:
    """Demand of one episode: ``rates_per_hour`` (T, I) requests/hour and a label naming its origin."""

    rates_per_hour: np.ndarray
    label: str


def validate_source(source: str) -> None:
    """Raise ValueError naming the allowed sources when ``source`` is not one of them."""
    if source in DEMAND_SOURCES:
        return
    if source.startswith("azure:"):
        day = source.split(":", 1)[1]
        names = list(AZURE_DAYS)
        if day in names or (day.isdigit() and int(day) < len(names)):
            return
        raise ValueError(f"demand source {source!r}: unknown day; valid days: {names} or 0–{len(names) - 1}")
    raise ValueError(f"demand source {source!r} not one of {list(DEMAND_SOURCES)} or 'azure:<day>'")


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


def _day_name(day: int | str) -> str:
    return AZURE_DAYS[int(day)] if str(day).isdigit() else str(day)


def episode_demand(
    instance: Instance,
    source: str,
    rng: np.random.Generator,
    *,
    period_minutes: int,
    num_periods: int,
    sigma: float = 0.05,
    noise_sigma: float = 0.0,
) -> EpisodeDemand:
    """Draw the demand of one episode (the day is drawn from ``rng`` for the train/test sources)."""
    validate_source(source)
    nominal = instance.demand_per_hour
    periods_per_day = 1440 // period_minutes
    if source == "synthetic":
        profile = mean_daily_profile(period_minutes)
        demand = synthetic_demand(
            rng, nominal / profile.max(), num_periods, period_minutes, sigma=sigma, diurnal_profile=profile
        )
        rates, label = np.array(demand.rates_per_hour), f"synthetic σ={sigma:g}"
    else:
        if source == "azure-train":
            day = TRAIN_DAYS[int(rng.integers(len(TRAIN_DAYS)))]
        elif source == "azure-test":
            day = TEST_DAYS[int(rng.integers(len(TEST_DAYS)))]
        elif source == "azure-validation":
            day = VALIDATION_DAY
        else:
            day = source.split(":", 1)[1]
        name = _day_name(day)
        names = tuple(q.name for q in instance.query_types)
        shape = _azure_shape(name, period_minutes, names)
        repeats = -(-num_periods // periods_per_day)
        rates, label = (np.tile(shape, (repeats, 1))[:num_periods] * nominal), f"azure {name}"
    if noise_sigma > 0.0:
        rates = rates * np.exp(noise_sigma * rng.standard_normal(rates.shape) - 0.5 * noise_sigma**2)
        label += f" + noise σ={noise_sigma:g}"
    return EpisodeDemand(rates_per_hour=rates, label=label)
