"""The latent drift process: determinism, exact no-drift, shapes, stationary statistics, margins, validation."""

import dataclasses
import itertools
import math
import time

import numpy as np
import pytest

from servegym.envs.drift import (
    DEFAULT_DRIFT,
    FACTOR_CEILING,
    FACTOR_FLOOR,
    NO_DRIFT,
    NO_PROCESS,
    DriftProcess,
    DriftSettings,
    margin_quantile,
    realised_error_rate,
    sample_drift,
)

WEEK = {"num_periods": 672, "period_minutes": 15}

FAST_STEPPY = DriftProcess(
    level_log_mean=-0.05,
    level_log_sd=0.08,
    noise_log_sd=0.06,
    reversion_hours=0.25,
    steps_per_day=3.0,
    step_log_mean=0.15,
    step_log_sd=0.08,
    step_duration_hours=2.0,
)
"""A process far from the defaults: fast reversion (many AR(1) blocks at 5-min periods) and frequent steps."""


def _draw(settings, seed, **shape):
    kwargs = {**WEEK, "num_gpus": 8, "num_models": 10, **shape}
    return sample_drift(settings, np.random.default_rng(seed), **kwargs)


def _many(process, *, episodes, num_periods, period_minutes, factors, seed=1234):
    """Stack the speed family of many independent episodes of ``process``."""
    settings = DriftSettings(speed=process, error=NO_PROCESS)
    rng = np.random.default_rng(seed)
    draws = [
        sample_drift(
            settings, rng, num_periods=num_periods, period_minutes=period_minutes, num_gpus=factors, num_models=0
        ).speed
        for _ in range(episodes)
    ]
    return draws


def test_sample_drift__same_seed_gives_identical_arrays_and_other_seeds_differ():
    a, b, c = _draw(DEFAULT_DRIFT, 7), _draw(DEFAULT_DRIFT, 7), _draw(DEFAULT_DRIFT, 8)
    assert np.array_equal(a.slowdown, b.slowdown) and np.array_equal(a.error_factor, b.error_factor)
    for part in ("level", "noise", "steps", "active_steps", "step_onsets"):
        assert np.array_equal(getattr(a.speed, part), getattr(b.speed, part))
        assert np.array_equal(getattr(a.error, part), getattr(b.error, part))
    assert not np.array_equal(a.slowdown, c.slowdown)
    assert not np.array_equal(a.error_factor, c.error_factor)


def test_sample_drift__no_drift_is_exactly_one():
    for seed in range(5):
        drift = _draw(NO_DRIFT, seed)
        assert np.all(drift.slowdown == 1.0) and np.all(drift.error_factor == 1.0)
        assert drift.slowdown.dtype == np.float64 and drift.error_factor.dtype == np.float64
    assert NO_DRIFT.is_null and not DEFAULT_DRIFT.is_null


def test_sample_drift__shapes_and_read_only():
    drift = _draw(DEFAULT_DRIFT, 0, num_periods=96, num_gpus=3, num_models=5)
    assert drift.slowdown.shape == (96, 3) and drift.error_factor.shape == (96, 5)
    assert drift.num_periods == 96 and drift.period_minutes == 15
    assert drift.speed.level.shape == (3,) and drift.error.step_onsets.shape == (5,)
    assert drift.speed.active_steps.shape == (96, 3)
    with pytest.raises(ValueError):
        drift.slowdown[0, 0] = 2.0
    empty = _draw(DEFAULT_DRIFT, 0, num_periods=1, num_gpus=0, num_models=0)
    assert empty.slowdown.shape == (1, 0) and empty.error_factor.shape == (1, 0)


def test_sample_drift__factors_are_finite_and_within_floor_and_ceiling():
    extreme_slow = DriftProcess(0.5, 0.5, 0.5, 0.1, 48.0, 1.0, 0.5, 1000.0)
    extreme_fast = DriftProcess(-0.5, 0.5, 0.5, 0.1, 48.0, -1.0, 0.5, 1000.0)
    for settings in (DEFAULT_DRIFT, DriftSettings(speed=extreme_slow, error=extreme_fast)):
        for seed in range(3):
            drift = _draw(settings, seed)
            for factor in (drift.slowdown, drift.error_factor):
                assert np.all(np.isfinite(factor))
                assert factor.min() >= FACTOR_FLOOR and factor.max() <= FACTOR_CEILING
    drift = _draw(DriftSettings(speed=extreme_slow, error=extreme_fast), 0)
    assert drift.slowdown.max() == FACTOR_CEILING and drift.error_factor.min() == FACTOR_FLOOR


def test_sample_drift__takes_two_draws_from_the_caller_whatever_the_settings_and_shapes():
    """Switching drift on or off, or resizing the fleet, never shifts the caller's other random streams."""
    follow_ups = []
    for settings, gpus, models in ((NO_DRIFT, 8, 10), (DEFAULT_DRIFT, 8, 10), (DEFAULT_DRIFT, 2, 40)):
        rng = np.random.default_rng(99)
        sample_drift(settings, rng, **WEEK, num_gpus=gpus, num_models=models)
        follow_ups.append(rng.random(4))
    assert all(np.array_equal(follow_ups[0], other) for other in follow_ups[1:])


def test_sample_drift__each_family_ignores_the_other_familys_size():
    assert np.array_equal(
        _draw(DEFAULT_DRIFT, 3, num_models=2).slowdown, _draw(DEFAULT_DRIFT, 3, num_models=30).slowdown
    )
    assert np.array_equal(
        _draw(DEFAULT_DRIFT, 3, num_gpus=1).error_factor, _draw(DEFAULT_DRIFT, 3, num_gpus=9).error_factor
    )


def test_sample_drift__factor_is_exp_of_its_parts():
    drift = _draw(DEFAULT_DRIFT, 11)
    for family in (drift.speed, drift.error):
        expected = np.exp(family.level[None, :] + family.noise + family.steps)
        assert np.allclose(family.factor, np.clip(expected, FACTOR_FLOOR, FACTOR_CEILING), rtol=1e-15, atol=0.0)
        assert np.all((family.active_steps == 0) == (family.steps == 0.0))


@pytest.mark.parametrize(
    ("process", "period_minutes", "episodes"),
    [(DEFAULT_DRIFT.speed, 15, 150), (DEFAULT_DRIFT.error, 15, 150), (FAST_STEPPY, 5, 60)],
    ids=["default-speed", "default-error", "fast-steppy-5min"],
)
def test_sample_drift__stationary_statistics_match_the_parameters(process, period_minutes, episodes):
    """Over 60-150 episodes × 40 factors × 7 days: every statistic within the band stated next to it.

    The bands are 3-10x the deviations seen over three seeds (largest seen: onset rate 1.4 %, level sd 1.8 %,
    step-size sd 1.9 %, quantile 0.003 in log).
    """
    num_periods = 7 * 24 * 60 // period_minutes
    draws = _many(process, episodes=episodes, num_periods=num_periods, period_minutes=period_minutes, factors=40)
    level = np.concatenate([d.level for d in draws])
    noise = np.stack([d.noise for d in draws])  # (E, T, F)
    active = np.stack([d.active_steps for d in draws])
    steps = np.stack([d.steps for d in draws])
    log_factor = np.log(np.stack([d.factor for d in draws]))
    onsets = np.concatenate([d.step_onsets for d in draws])
    days = num_periods * period_minutes / 1440.0

    # Level: 2,400-6,000 draws; mean within 0.005, sd within 5 %.
    assert abs(level.mean() - process.level_log_mean) < 0.005
    assert abs(level.std() / process.level_log_sd - 1.0) < 0.05
    # OU noise: stationary sd within 5 %, lag-one autocorrelation within 0.02 of exp(-Δt/τ).
    assert abs(noise.std() / process.noise_log_sd - 1.0) < 0.05
    lag1 = np.mean(noise[:, 1:] * noise[:, :-1]) / np.mean(noise**2)
    assert abs(lag1 - math.exp(-(period_minutes / 60.0) / process.reversion_hours)) < 0.02
    # Steps: onsets per factor-day within 3 % of steps_per_day; mean number active within 5 % of
    # steps_per_day · duration / 24; the share of periods with a step within 5 % of 1 - exp(-m); sizes of single
    # active steps: mean within 0.01 and sd within 10 %.
    assert abs(onsets.mean() / days / process.steps_per_day - 1.0) < 0.03
    m = process.mean_active_steps
    assert abs(active.mean() / m - 1.0) < 0.05
    assert abs((active > 0).mean() / -math.expm1(-m) - 1.0) < 0.05
    single = steps[active == 1]
    assert abs(single.mean() - process.step_log_mean) < 0.01
    assert abs(single.std() / process.step_log_sd - 1.0) < 0.10
    # The whole marginal: sd within 5 % of the closed form, 10/50/90 % quantiles within 0.01 in log of margin_quantile.
    assert abs(log_factor.std() / process.stationary_log_sd() - 1.0) < 0.05
    for q in (0.1, 0.5, 0.9):
        assert abs(np.quantile(log_factor, q) - math.log(margin_quantile(process, q))) < 0.01


def test_margin_quantile__monotone_and_one_without_drift():
    grid = np.linspace(0.01, 0.99, 99)
    for process in (DEFAULT_DRIFT.speed, DEFAULT_DRIFT.error, FAST_STEPPY):
        values = [margin_quantile(process, float(q)) for q in grid]
        assert all(b > a for a, b in itertools.pairwise(values))
    for q in (0.001, 0.5, 0.9, 0.999):
        assert margin_quantile(NO_DRIFT.speed, q) == 1.0 and margin_quantile(NO_DRIFT.error, q) == 1.0


def test_margin_quantile__point_masses_are_exact():
    """Fixed-size steps without noise: P(k=0) = e^-0.5 = 0.607, P(k ≤ 1) = 0.910 (m = 1/day · 12 h / 24 h)."""
    process = DriftProcess(0.0, 0.0, 0.0, 1.0, 1.0, 0.1, 0.0, 12.0)
    assert margin_quantile(process, 0.5) == 1.0
    assert margin_quantile(process, 0.9) == pytest.approx(math.exp(0.1), abs=1e-15)
    assert margin_quantile(process, 0.95) == pytest.approx(math.exp(0.2), abs=1e-15)


def test_margin_quantile__default_margins_are_moderate():
    """The Drift env's margins: a few % to ~20 % (docs/drift.md)."""
    assert 1.05 < margin_quantile(DEFAULT_DRIFT.speed, 0.9) < 1.15
    assert 1.05 < margin_quantile(DEFAULT_DRIFT.error, 0.9) < 1.35


@pytest.mark.parametrize("quantile", [0.0, 1.0, -0.1, 1.5, float("nan"), True])
def test_margin_quantile__rejects_quantiles_outside_the_open_unit_interval(quantile):
    with pytest.raises(ValueError, match="quantile"):
        margin_quantile(DEFAULT_DRIFT.speed, quantile)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("level_log_mean", 0.6),
        ("level_log_mean", float("nan")),
        ("level_log_sd", -0.01),
        ("noise_log_sd", 0.51),
        ("noise_log_sd", float("inf")),
        ("reversion_hours", 0.0),
        ("reversion_hours", 0.05),
        ("steps_per_day", -1.0),
        ("steps_per_day", 49.0),
        ("step_log_mean", 1.5),
        ("step_log_sd", -0.1),
        ("step_duration_hours", 0.0),
        ("step_duration_hours", "4"),
        ("step_duration_hours", None),
    ],
)
def test_drift_process__invalid_parameters_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"DriftProcess\.{field}"):
        dataclasses.replace(DEFAULT_DRIFT.speed, **{field: value})


def test_drift_settings_and_sample_drift__reject_bad_arguments():
    with pytest.raises(ValueError, match=r"DriftSettings\.error"):
        DriftSettings(speed=DEFAULT_DRIFT.speed, error=0.1)
    rng = np.random.default_rng(0)
    for bad in ({"num_periods": 0}, {"period_minutes": 0}, {"num_gpus": -1}, {"num_models": 2.5}):
        name = next(iter(bad))
        kwargs = {**WEEK, "num_gpus": 2, "num_models": 2, **bad}
        with pytest.raises(ValueError, match=name):
            sample_drift(DEFAULT_DRIFT, rng, **kwargs)
    with pytest.raises(ValueError, match="rng"):
        sample_drift(DEFAULT_DRIFT, 0, **WEEK, num_gpus=2, num_models=2)


def test_realised_error_rate__multiplies_and_clips_at_one():
    assert np.allclose(realised_error_rate(np.array([0.1, 0.6]), 2.0), [0.2, 1.0])


def test_sample_drift__is_fast():
    """Requirement: < 5 ms for T = 672, G = 8, J = 10 (best of 5 rounds of 20 calls; measured ~1 ms)."""
    rng = np.random.default_rng(0)
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            sample_drift(DEFAULT_DRIFT, rng, **WEEK, num_gpus=8, num_models=10)
        best = min(best, (time.perf_counter() - start) / 20)
    assert best < 5e-3
