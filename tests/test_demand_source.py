"""Demand sources: week episodes, consecutive named days, horizon limits, determinism, unchanged single days."""

from __future__ import annotations

import hashlib
import math
import pickle

import numpy as np
import pytest

from servegym.envs.demand_source import (
    DEMAND_SOURCES,
    AzureDays,
    AzureDaySource,
    AzureWeek,
    DemandHorizonError,
    DemandSource,
    DemandSourceError,
    EpisodeDemand,
    NoisyDemand,
    SyntheticSource,
    episode_demand,
    parse_demand_source,
    validate_source,
)
from servegym.envs.scenarios import make_instance
from servegym.traces import AZURE_DAYS, TEST_DAYS, TRAIN_DAYS, azure_demand, validation_peak_per_hour

PER_DAY_15 = 96
"""15-minute periods in a day."""

# sha256 of rates_per_hour (float64, C order) and the label, computed with the implementation before demand
# sources became objects (the string-dispatch episode_demand that tiled one day); single-day episodes must keep
# these bits. The four noisy ones were re-taken when the noise's exp moved to libm (servegym.numerics: the same
# bits on every CPU; they are the digests an AVX2 host gave before, an AVX-512 host's np.exp differed in last bits).
# (scenario, source, period_minutes, num_periods, seed, sigma, noise_sigma, label, digest)
PREVIOUS_IMPLEMENTATION = [
    (
        "azure",
        "azure:2024-05-13-mon",
        60,
        24,
        0,
        0.05,
        0.0,
        "azure 2024-05-13-mon",
        "9fe9f7c5dfd24395f5e338dec479f93e44c5809a1ea757909ef12a1dbd432db6",
    ),
    (
        "paper",
        "azure:3",
        60,
        24,
        0,
        0.05,
        0.0,
        "azure 2024-05-15-wed",
        "16570046d17b5a8f0ea91494ed37ca9170c19c78c0b6ddb0f18751709c5cebc6",
    ),
    (
        "azure",
        "azure-train",
        15,
        96,
        0,
        0.05,
        0.0,
        "azure 2024-05-17-fri",
        "cb35189db64b17be03ec5dbd9540bb1bb11f91a30709689b42a4089d89bed5c3",
    ),
    (
        "azure",
        "azure-test",
        5,
        288,
        1,
        0.05,
        0.0,
        "azure 2024-05-16-thu",
        "dc84920444084dd5840b345853e0833423102a6463498d887eb61972e9882cf5",
    ),
    (
        "azure",
        "azure-validation",
        15,
        8,
        0,
        0.05,
        0.0,
        "azure 2024-05-15-wed",
        "08e558f16c047edf9a83f4e08c348feebb2980926dac7dd9d0b1d5b8c2f17272",
    ),
    (
        "azure",
        "azure:2024-05-16-thu",
        15,
        96,
        2,
        0.05,
        0.1,
        "azure 2024-05-16-thu + noise σ=0.1",
        "61a820af1e2cfcedec4ad0e2ee8c1f3c9a217640642a98be12cc2d6505f990f0",
    ),
    (
        "paper",
        "synthetic",
        60,
        24,
        0,
        0.05,
        0.0,
        "synthetic σ=0.05",
        "2f5c881e763d5fe742c7704b4f0313ecb52c9b9e74958edac181df8f2205eb06",
    ),
    (
        "azure",
        "synthetic",
        15,
        96,
        3,
        0.2,
        0.1,
        "synthetic σ=0.2 + noise σ=0.1",
        "c1349c6da517fb68e1ccc814ee1951e8fdfb201faed7cf59a4407ae007c69de9",
    ),
    (
        "toy",
        "synthetic",
        60,
        72,
        4,
        0.1,
        0.0,
        "synthetic σ=0.1",
        "ce464556621e9c9a2adcd388093e003f04d1432371082e9fc058fa8038dd955f",
    ),
    (
        "toy",
        "azure-train",
        60,
        3,
        5,
        0.1,
        0.0,
        "azure 2024-05-15-wed",
        "2ce4be5d00a465abf6523fb757ff3f71c175f46a5329129550418fd5b62c3a76",
    ),
]


@pytest.fixture(scope="module")
def azure():
    return make_instance("azure")


def sample(source: DemandSource, instance, seed: int = 0, *, period_minutes: int = 15, num_periods: int = 96):
    return source.sample(instance, np.random.default_rng(seed), period_minutes=period_minutes, num_periods=num_periods)


@pytest.mark.parametrize(
    ("scenario", "source", "period_minutes", "num_periods", "seed", "sigma", "noise_sigma", "label", "digest"),
    PREVIOUS_IMPLEMENTATION,
)
def test_episode_demand__single_day_rates_are_bit_identical_to_the_previous_implementation(
    scenario, source, period_minutes, num_periods, seed, sigma, noise_sigma, label, digest
):
    demand = episode_demand(
        make_instance(scenario),
        source,
        np.random.default_rng(seed),
        period_minutes=period_minutes,
        num_periods=num_periods,
        sigma=sigma,
        noise_sigma=noise_sigma,
    )
    rates = demand.rates_per_hour
    assert rates.dtype == np.float64 and rates.shape == (num_periods, make_instance(scenario).num_query_types)
    assert demand.label == label
    assert hashlib.sha256(np.ascontiguousarray(rates).tobytes()).hexdigest() == digest


@pytest.mark.parametrize("scenario", ["azure", "paper"])
def test_azure_day__rates_are_the_trace_normalised_by_the_validation_peak_times_nominal(scenario):
    instance = make_instance(scenario)
    day = azure_demand("2024-05-14-tue", period_minutes=15)
    peak = validation_peak_per_hour()
    columns = [
        day.rates_per_hour[:, day.query_types.index(q.name)] / peak[day.query_types.index(q.name)]
        if q.name in day.query_types
        else day.rates_per_hour.sum(axis=1) / peak.sum()
        for q in instance.query_types
    ]
    expected = np.stack(columns, axis=1) * instance.demand_per_hour
    np.testing.assert_array_equal(sample(AzureDaySource("2024-05-14-tue"), instance).rates_per_hour, expected)


def test_azure_week__at_15_min_plays_the_seven_days_in_order_with_their_weekdays(azure):
    week = sample(AzureWeek(), azure, num_periods=7 * PER_DAY_15)
    assert week.rates_per_hour.shape == (672, azure.num_query_types)
    assert week.day_names == AZURE_DAYS
    for k, name in enumerate(AZURE_DAYS):
        day = sample(AzureDaySource(name), azure)
        np.testing.assert_array_equal(week.rates_per_hour[k * PER_DAY_15 : (k + 1) * PER_DAY_15], day.rates_per_hour)
    daily = week.rates_per_hour.reshape(7, PER_DAY_15, -1)
    assert len({day.tobytes() for day in daily}) == 7  # seven distinct days, no tiled copy
    np.testing.assert_array_equal(week.weekday, np.repeat([6, 0, 1, 2, 3, 4, 5], PER_DAY_15))  # Sun..Sat, Mon = 0
    assert week.label == "azure 2024-05-12-sun to 2024-05-18-sat"


def test_azure_day__48_h_from_friday_plays_friday_then_saturday(azure):
    demand = sample(AzureDaySource("2024-05-17-fri"), azure, num_periods=2 * PER_DAY_15)
    assert demand.day_names == ("2024-05-17-fri", "2024-05-18-sat")
    np.testing.assert_array_equal(demand.rates_per_hour[:PER_DAY_15], sample(AzureDaySource(5), azure).rates_per_hour)
    np.testing.assert_array_equal(
        demand.rates_per_hour[PER_DAY_15:], sample(AzureDaySource("2024-05-18-sat"), azure).rates_per_hour
    )
    np.testing.assert_array_equal(demand.weekday, np.repeat([4, 5], PER_DAY_15))


def test_azure_day__a_part_day_beyond_the_first_ends_mid_day(azure):
    demand = sample(AzureDaySource("2024-05-13-mon"), azure, period_minutes=60, num_periods=30)
    assert demand.day_names == ("2024-05-13-mon", "2024-05-14-tue")
    np.testing.assert_array_equal(
        demand.rates_per_hour[24:], sample(AzureDaySource(2), azure, period_minutes=60, num_periods=6).rates_per_hour
    )


def test_azure_day__72_h_from_friday_is_an_error_saying_how_many_periods_are_left(azure):
    source = AzureDaySource("2024-05-17-fri")
    assert source.max_periods(15) == 192
    with pytest.raises(DemandHorizonError, match=r"192 periods of 15 min \(2 days\) are left, got num_periods=288"):
        sample(source, azure, num_periods=3 * PER_DAY_15)
    with pytest.raises(DemandHorizonError, match="2024-05-18-sat"):
        source.check_horizon(period_minutes=15, num_periods=193)


@pytest.mark.parametrize("spec", ["azure-train", "azure-test", "azure-validation"])
def test_azure_days__a_horizon_beyond_24_h_is_an_error_naming_azure_week(azure, spec):
    source = parse_demand_source(spec, sigma=0.05, noise_sigma=0.0)
    assert source.max_periods(15) == PER_DAY_15
    with pytest.raises(DemandHorizonError, match="'azure-week'") as error:
        sample(source, azure, num_periods=2 * PER_DAY_15)
    assert isinstance(error.value, ValueError) and f"demand source {spec!r}" in str(error.value)
    with pytest.raises(DemandHorizonError, match="'azure-week'"):
        episode_demand(azure, spec, np.random.default_rng(0), period_minutes=15, num_periods=2 * PER_DAY_15)


def test_azure_week__beyond_seven_days_is_an_error_and_unbounded_synthetic_is_not(azure):
    assert AzureWeek().max_periods(60) == 168
    with pytest.raises(DemandHorizonError, match="at most 168 periods of 60 min"):
        AzureWeek().check_horizon(period_minutes=60, num_periods=169)
    assert SyntheticSource(0.1).max_periods(15) is None
    assert sample(SyntheticSource(0.1), azure, num_periods=10 * PER_DAY_15).num_periods == 960


def test_azure_days__train_draws_are_deterministic_per_seed_and_stay_on_train_days(azure):
    source = AzureDays("train")
    drawn = set()
    for seed in range(12):
        first, second = sample(source, azure, seed), sample(source, azure, seed)
        np.testing.assert_array_equal(first.rates_per_hour, second.rates_per_hour)
        assert first.day_names == second.day_names
        drawn.update(first.day_names)
    assert drawn <= set(TRAIN_DAYS) and len(drawn) > 1 and not drawn & set(TEST_DAYS)


def test_synthetic__deterministic_per_seed_fresh_noise_each_day_and_weekday_from_monday(azure):
    source = SyntheticSource(0.2)
    first, second = (sample(source, azure, 4, num_periods=2 * PER_DAY_15) for _ in range(2))
    np.testing.assert_array_equal(first.rates_per_hour, second.rates_per_hour)
    assert not np.array_equal(first.rates_per_hour[:PER_DAY_15], first.rates_per_hour[PER_DAY_15:])
    other = sample(source, azure, 5, num_periods=2 * PER_DAY_15)
    assert not np.array_equal(first.rates_per_hour, other.rates_per_hour)
    np.testing.assert_array_equal(first.weekday, np.repeat([0, 1], PER_DAY_15))
    assert first.day_names == ("synthetic day 1 (mon)", "synthetic day 2 (tue)")
    sunday = sample(SyntheticSource(0.2, start_weekday=6), azure, 4, num_periods=2 * PER_DAY_15)
    np.testing.assert_array_equal(sunday.weekday, np.repeat([6, 0], PER_DAY_15))
    np.testing.assert_array_equal(sunday.rates_per_hour, first.rates_per_hour)  # the calendar is a label only


def test_noisy_demand__multiplies_the_base_by_mean_one_noise_drawn_after_it(azure):
    base = AzureWeek()
    noisy = sample(NoisyDemand(base, 0.1), azure, 3, num_periods=2 * PER_DAY_15)
    clean = sample(base, azure, num_periods=2 * PER_DAY_15)
    z = np.random.default_rng(3).standard_normal(clean.rates_per_hour.shape)
    noise = np.array([math.exp(v) for v in (0.1 * z - 0.5 * 0.1**2).ravel()]).reshape(z.shape)  # libm, as the env
    np.testing.assert_array_equal(noisy.rates_per_hour, clean.rates_per_hour * noise)
    np.testing.assert_array_equal(noisy.weekday, clean.weekday)
    assert noisy.label == f"{clean.label} + noise σ=0.1" and NoisyDemand(base, 0.1).max_periods(15) == 672


def test_parse_demand_source__maps_every_spec_and_passes_objects_through():
    parse = parse_demand_source
    assert parse("azure-train", sigma=0.05, noise_sigma=0.0) == AzureDays("train")
    assert parse("azure-test", sigma=0.05, noise_sigma=0.0) == AzureDays("test")
    assert parse("azure-validation", sigma=0.05, noise_sigma=0.0) == AzureDays("validation")
    assert parse("azure-week", sigma=0.05, noise_sigma=0.0) == AzureWeek()
    assert parse("synthetic", sigma=0.3, noise_sigma=0.0) == SyntheticSource(0.3)
    assert parse("azure:4", sigma=0.05, noise_sigma=0.0) == AzureDaySource("2024-05-16-thu")
    assert parse("azure:2024-05-16-thu", sigma=0.05, noise_sigma=0.0).label == "azure:2024-05-16-thu"
    assert parse("azure-week", sigma=0.05, noise_sigma=0.2) == NoisyDemand(AzureWeek(), 0.2)
    source = AzureDaySource("2024-05-17-fri")
    assert parse(source, sigma=0.7, noise_sigma=0.0) is source
    assert parse(source, sigma=0.7, noise_sigma=0.1) == NoisyDemand(source, 0.1)
    assert {parse(spec, sigma=0.0, noise_sigma=0.0).label for spec in DEMAND_SOURCES} == set(DEMAND_SOURCES)
    assert pickle.loads(pickle.dumps(NoisyDemand(source, 0.1))) == NoisyDemand(source, 0.1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("azure-someday", r"demand source 'azure-someday' not one of \['azure-train', .*'azure-week'"),
        ("azure:7", r"demand source 'azure:7': unknown day; valid days: \['2024-05-12-sun'"),
        ("azure:monday", "unknown day; valid days"),
        (3, "must be a DemandSource or one of"),
    ],
)
def test_parse_demand_source__unknown_specs_are_value_errors_listing_the_allowed_ones(spec, message):
    with pytest.raises(DemandSourceError, match=message) as error:
        parse_demand_source(spec, sigma=0.05, noise_sigma=0.0)
    assert isinstance(error.value, ValueError)
    with pytest.raises(ValueError, match=message):
        validate_source(spec)


@pytest.mark.parametrize(("name", "value"), [("sigma", -0.1), ("noise_sigma", float("nan"))])
def test_parse_demand_source__negative_or_non_finite_volatility_names_the_argument(name, value):
    kwargs = {"sigma": 0.05, "noise_sigma": 0.0, name: value}
    with pytest.raises(DemandSourceError, match=f"{name}=.* must be finite and >= 0"):
        parse_demand_source("synthetic", **kwargs)


def test_validate_source__accepts_every_named_source_and_day():
    for spec in (*DEMAND_SOURCES, *(f"azure:{day}" for day in AZURE_DAYS), "azure:0", "azure:6", AzureWeek()):
        validate_source(spec)


def test_episode_demand__arrays_are_read_only_and_defaults_fill_the_calendar(azure):
    demand = sample(AzureWeek(), azure, num_periods=30)
    assert not demand.rates_per_hour.flags.writeable and not demand.weekday.flags.writeable
    with pytest.raises(ValueError):
        demand.weekday[0] = 1
    hand_built = EpisodeDemand(np.ones((3, 2)), "toy")
    np.testing.assert_array_equal(hand_built.weekday, [0, 0, 0])
    assert hand_built.day_names == ("toy",) and hand_built.num_periods == 3
    with pytest.raises(ValueError, match="weekday"):
        EpisodeDemand(np.ones((3, 2)), "toy", weekday=np.array([0, 7, 1]))


def test_lead_in__an_azure_day_brings_the_last_hour_of_the_day_before():
    instance = make_instance("azure")
    rng = np.random.default_rng(0)
    for period_minutes, periods in ((15, 4), (5, 12), (60, 1)):
        per_day = 1440 // period_minutes
        thursday = AzureDaySource("2024-05-16-thu").sample(
            instance, rng, period_minutes=period_minutes, num_periods=per_day
        )
        wednesday = AzureDaySource("2024-05-15-wed").sample(
            instance, rng, period_minutes=period_minutes, num_periods=per_day
        )
        assert thursday.lead_in_per_hour.shape == (periods, instance.num_query_types)
        np.testing.assert_array_equal(thursday.lead_in_per_hour, wednesday.rates_per_hour[-periods:])
    week = AzureWeek().sample(instance, rng, period_minutes=15, num_periods=PER_DAY_15)
    assert week.lead_in_per_hour is None  # the trace's first day has no day before it


def test_lead_in__synthetic_is_the_profile_mean_and_draws_nothing():
    from servegym.traces.demand import mean_daily_profile
    from servegym.traces.synthetic import synthetic_demand

    instance = make_instance("azure")
    rng, same = np.random.default_rng(3), np.random.default_rng(3)
    episode = SyntheticSource(sigma=0.1).sample(instance, rng, period_minutes=15, num_periods=8)
    profile = mean_daily_profile(15)
    direct = synthetic_demand(same, instance.demand_per_hour / profile.max(), 8, 15, sigma=0.1, diurnal_profile=profile)
    np.testing.assert_array_equal(episode.rates_per_hour, direct.rates_per_hour)
    assert rng.random() == same.random()  # the lead-in drew nothing
    np.testing.assert_allclose(
        episode.lead_in_per_hour, profile[-4:, None] * instance.demand_per_hour / profile.max(), rtol=1e-12
    )


def test_lead_in__rejects_a_malformed_array():
    with pytest.raises(ValueError, match=r"lead_in_per_hour must be \(L, 2\) finite rates ≥ 0"):
        EpisodeDemand(np.ones((3, 2)), "x", lead_in_per_hour=np.ones((2, 3)))
    with pytest.raises(ValueError, match="lead_in_per_hour"):
        EpisodeDemand(np.ones((3, 2)), "x", lead_in_per_hour=np.array([[1.0, -1.0]]))
