"""servegym.numerics and the shipped forecaster fits: what an episode's numbers depend on is the same on every CPU.

The cross-CPU check itself (an AVX-512 host against an AVX2 one) is ``test_env_speed_identity`` and the digests of
``test_demand_source``, whose references CI replays on its own CPU; here the pieces: the libm functions agree with
``math`` bit for bit, and every registered id starts its episodes from shipped fits, never from a run-time fit.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib import resources
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from servegym import numerics
from servegym.envs import ENV_IDS, forecast
from servegym.envs.demand_source import azure_histories
from servegym.envs.scenarios import make_instance

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fit_forecasters.py"


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate([rng.normal(0.0, 3.0, 2000), rng.uniform(-700.0, 700.0, 2000)])


def test_exp_log_power__equal_libm_bit_for_bit_and_keep_the_shape(values):
    positive = np.abs(values) + 1e-300
    assert np.array_equal(numerics.exp(values), [math.exp(v) for v in values])
    assert np.array_equal(numerics.log(positive), [math.log(v) for v in positive])
    assert np.array_equal(numerics.power(positive[:50], 0.37), [math.pow(v, 0.37) for v in positive[:50]])
    grid = values[:12].reshape(3, 4)
    assert numerics.exp(grid).shape == (3, 4) and numerics.exp(grid).dtype == np.float64
    assert numerics.power(1.06, np.array([0.0, 1.0, 2.0])).tolist() == [1.0, 1.06, math.pow(1.06, 2.0)]
    assert numerics.exp(0.0).shape == () and float(numerics.log(math.e)) == 1.0
    assert math.isnan(float(numerics.exp(math.nan)))


def test_exp_log__raise_where_numpy_would_return_inf_or_nan():
    with pytest.raises(OverflowError):
        numerics.exp(np.array([1.0, 800.0]))
    with pytest.raises(ValueError):
        numerics.log(np.array([1.0, 0.0]))


def test_shipped_fits__cover_every_history_of_every_builtin_scenario_at_5_15_and_60_minutes():
    shipped = forecast.shipped_fits()
    for scenario in ("azure", "paper", "toy"):
        instance = make_instance(scenario)
        floor = forecast.demand_floor(instance.demand_per_hour)
        for period_minutes in (5, 15, 60):
            periods_per_day = 1440 // period_minutes
            for history in azure_histories(instance, period_minutes):
                keys = forecast.history_columns(forecast.log_demand(history, floor), periods_per_day)
                assert set(keys) <= set(shipped), (scenario, period_minutes)
                for key in keys:
                    assert len(shipped[key][3]) == periods_per_day


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_registered_ids__start_every_episode_from_shipped_fits(env_id, monkeypatch):
    def no_runtime_fit(*args, **kwargs):
        raise AssertionError(f"{env_id} fitted a forecaster at run time")

    monkeypatch.setattr(forecast, "fit_statsmodels", no_runtime_fit)
    forecast._fit_cached.cache_clear()
    env = gym.make(env_id, horizon_hours=1.0).unwrapped
    for seed in range(6):  # the train-day ids draw one of five train days
        env.reset(seed=seed)
    forecast._fit_cached.cache_clear()


def test_shipped_fit__agrees_with_a_fit_made_here_to_the_optimiser_tolerance():
    instance = make_instance("azure")
    history = azure_histories(instance, 60)[0]
    logs = forecast.log_demand(history, forecast.demand_floor(instance.demand_per_hour))
    key, column = next(iter(forecast.history_columns(logs, 24).items()))
    alpha, gamma, level, season = forecast.shipped_fits()[key]
    fresh = forecast.fit_statsmodels(column, 24)
    assert fresh[0] == pytest.approx(alpha, abs=1e-4) and fresh[1] == pytest.approx(gamma, abs=1e-4)
    assert fresh[2] == pytest.approx(level, abs=1e-4)
    np.testing.assert_allclose(fresh[3], season, atol=1e-4)


def test_a_history_not_shipped__is_fitted_at_run_time(monkeypatch):
    calls = []
    monkeypatch.setattr(forecast, "fit_statsmodels", lambda column, m: calls.append(m) or (0.3, 0.1, 0.0, np.zeros(m)))
    forecast._fit_cached.cache_clear()
    rng = np.random.default_rng(0)
    history = np.exp(rng.normal(5.0, 0.3, size=(2 * 24, 2)))
    model = forecast.fit_holt_winters(history, 24, np.full(2, 1.0))
    forecast._fit_cached.cache_clear()
    assert calls == [24, 24] and model.alpha.tolist() == [0.3, 0.3]


@pytest.mark.slow
def test_fit_forecasters_script__reproduces_the_shipped_file_exactly(tmp_path):
    shipped = Path(str(resources.files("servegym.envs.data").joinpath(forecast.SHIPPED_FITS)))
    copy = tmp_path / "fits.json"
    copy.write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run([sys.executable, str(SCRIPT), "--check", "--out", str(copy)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(copy.read_text(encoding="utf-8"))["fits"]) == len(forecast.shipped_fits())
