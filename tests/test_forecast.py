"""Forecasters with error quantiles, the episode history they fit on, and the newsvendor planning level."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import servegym.envs  # noqa: F401  (registers the environment ids)
from servegym.baselines.runner.policies import make_policy, newsvendor_levels
from servegym.envs.demand_source import parse_demand_source
from servegym.envs.forecast import (
    FORECASTERS,
    QUANTILE_LEVELS,
    Forecaster,
    _ErrorWindow,
    newsvendor_level,
    quantile_at,
)
from servegym.envs.scenarios import make_instance
from servegym.envs.toy import toy_instance
from servegym.traces import TRAIN_DAYS

PER_DAY = 96


def _series(rng: np.random.Generator, days: int, sigma: float) -> np.ndarray:
    """(days·96, 2) a daily cycle × lognormal noise of volatility ``sigma``, requests/hour."""
    t = np.arange(days * PER_DAY)
    cycle = 1000.0 * (1.3 + np.sin(2 * np.pi * t / PER_DAY))[:, None] * np.array([1.0, 0.4])
    return cycle * np.exp(sigma * rng.standard_normal(cycle.shape))


def _run(kind: str, history: np.ndarray | None, episode: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    model = Forecaster(kind, np.array([2300.0, 920.0]), 15)
    model.reset(history)
    points, quantiles = [], []
    for t, demand in enumerate(episode):
        point, levels = model.forecast(t)
        points.append(point)
        quantiles.append(levels)
        model.observe(demand, t)
    return np.array(points), np.array(quantiles)


@pytest.mark.parametrize("kind", FORECASTERS)
def test_forecasts_use_only_the_past(kind: str) -> None:
    rng = np.random.default_rng(0)
    history = _series(rng, 3, 0.05)
    episode = _series(rng, 1, 0.05)
    other = episode.copy()
    other[40:] *= 3.0  # the future differs from period 40 on
    points, quantiles = _run(kind, history, episode)
    points_other, quantiles_other = _run(kind, history, other)
    np.testing.assert_array_equal(points[:41], points_other[:41])
    np.testing.assert_array_equal(quantiles[:41], quantiles_other[:41])
    assert not np.array_equal(quantiles[41:], quantiles_other[41:])  # the errors seen from then on differ
    again, _ = _run(kind, history, episode)
    np.testing.assert_array_equal(points, again)  # deterministic


@pytest.mark.parametrize("kind", FORECASTERS)
def test_quantiles_are_monotone_in_the_level(kind: str) -> None:
    rng = np.random.default_rng(1)
    _, quantiles = _run(kind, _series(rng, 3, 0.1), _series(rng, 1, 0.1))
    assert (np.diff(quantiles, axis=1) >= 0).all()


def test_holt_winters_covers_90_percent_of_a_series_with_known_noise() -> None:
    """On a daily cycle × lognormal noise σ = 0.1 the [q0.05, q0.95] interval covers 85–95 % of 5 days."""
    rng = np.random.default_rng(2)
    history = _series(rng, 5, 0.1)
    episode = _series(rng, 5, 0.1)
    _, quantiles = _run("holt-winters", history, episode)
    low, high = QUANTILE_LEVELS.index(0.05), QUANTILE_LEVELS.index(0.95)
    covered = (episode >= quantiles[:, low]) & (episode <= quantiles[:, high])
    assert 0.85 <= covered.mean() <= 0.95, covered.mean()


def test_holt_winters_learns_a_daily_shape_the_azure_profile_does_not_have() -> None:
    rng = np.random.default_rng(3)
    history = np.roll(_series(rng, 4, 0.03), 40, axis=0)  # peak moved 10 hours
    episode = np.roll(_series(rng, 1, 0.03), 40, axis=0)
    errors = {}
    for kind in ("holt-winters", "profile-naive"):
        points, _ = _run(kind, history, episode)
        errors[kind] = np.abs(points - episode).sum() / episode.sum()
    assert errors["holt-winters"] < 0.7 * errors["profile-naive"], errors


def test_error_window_quantiles_equal_numpy() -> None:
    window = _ErrorWindow(10, 3)
    values = np.random.default_rng(4).standard_normal((14, 3))
    window.extend(values)
    np.testing.assert_allclose(window.quantiles(QUANTILE_LEVELS), np.quantile(values[-10:], QUANTILE_LEVELS, axis=0))


def test_newsvendor_level_on_hand_computed_cases() -> None:
    np.testing.assert_allclose(newsvendor_level(np.array([0.05, 1.0]), np.array([0.01, 1.0])), [0.05 / 0.06, 0.5])
    assert newsvendor_level(np.array([1.0]), np.array([1e-6]))[0] == QUANTILE_LEVELS[-1]  # clipped to 0.99
    # toy: φ = $1 per dropped request; cheapest rental per request $1 / (0.8 · 100 req/h) = $0.0125 for both types
    np.testing.assert_allclose(newsvendor_levels(toy_instance()), [1.0 / 1.0125] * 2)


def test_quantile_at_interpolates_between_levels() -> None:
    quantiles = np.array([[float(level), 10 * level] for level in QUANTILE_LEVELS])
    np.testing.assert_allclose(quantile_at(quantiles, np.array([0.3, 0.97])), [0.3, 9.7])


def test_episode_history_never_holds_the_episode_itself() -> None:
    instance = make_instance("azure")
    rng = np.random.default_rng(0)
    source = parse_demand_source("azure:2024-05-13-mon", sigma=0, noise_sigma=0)
    monday = source.sample(instance, rng, period_minutes=15, num_periods=96)
    assert monday.history_per_hour.shape == ((len(TRAIN_DAYS) - 1) * 96, 6)
    played = monday.rates_per_hour
    assert not any(np.allclose(played, monday.history_per_hour[k * 96 : (k + 1) * 96]) for k in range(4))
    test_day = parse_demand_source("azure:2024-05-16-thu", sigma=0, noise_sigma=0)
    assert test_day.sample(instance, rng, period_minutes=15, num_periods=96).history_per_hour.shape[0] == 5 * 96


def test_env_observation_carries_the_forecast_quantiles() -> None:
    env = gym.make("servegym/Provisioning-v3", horizon_hours=2.0)
    obs, info = env.reset(seed=0)
    num_types = env.unwrapped.instance.num_query_types
    assert obs["forecast_quantiles"].shape == (len(QUANTILE_LEVELS) * num_types,)
    assert env.observation_space.contains(obs)
    quantiles = info["forecast_quantiles_per_hour"]
    assert quantiles.shape == (len(QUANTILE_LEVELS), num_types) and (np.diff(quantiles, axis=0) >= 0).all()
    obs, *_, info = env.step(env.action_space.sample())
    np.testing.assert_allclose(
        obs["forecast_quantiles"].reshape(len(QUANTILE_LEVELS), -1),
        np.clip(info["forecast_quantiles_per_hour"] / env.unwrapped.instance.demand_per_hour, 0, 10),
        rtol=1e-6,
    )


def test_quantile_policy_plans_at_least_the_median_forecast() -> None:
    env = gym.make("servegym/Provisioning-v3", horizon_hours=2.0)
    policy = make_policy("gh-quantile", env.unwrapped)
    obs, info = env.reset(seed=0)
    policy.reset(0)
    target = policy._target_demand(info)
    median = info["forecast_quantiles_per_hour"][QUANTILE_LEVELS.index(0.5)]
    assert (target >= median).all() and (policy.levels >= 0.95).all()
    env.step(policy.act(obs, info))
