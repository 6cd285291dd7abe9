"""scripts/bench_forecast.py --replanning: which policies the full AGH search replaces."""

import gymnasium as gym
import pytest
from script_modules import load_script

import servegym.envs  # noqa: F401  (registers the ids)
from servegym.baselines.runner.policies import AGH_REPLANNING, PlannerPolicy


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_forecast")


def test_policy_spec__light_plays_every_registered_policy_as_named(bench):
    for name in ("agh-static", "agh-rolling", "agh-quantile-hold", "gh-hold"):
        assert bench._policy_spec(name, "light") == name


def test_policy_spec__full_replaces_only_the_agh_replanners(bench):
    assert bench._policy_spec("agh-static", "full") == "agh-static"  # plans once, with the full search already
    assert bench._policy_spec("gh-quantile-hold", "full") == "gh-quantile-hold"
    env = gym.make("servegym/Provisioning-v3", horizon_hours=1.0).unwrapped
    policy = bench._policy_spec("agh-quantile-hold", "full")(env)
    assert isinstance(policy, PlannerPolicy) and policy.mode == "quantile-hold"
    assert policy._agh_settings == {} != dict(AGH_REPLANNING)  # the full search, not the in-env settings
