"""Learning wrappers: DeltaAction moves and masks, HeadroomAction plans, checkers, vectorised and pickled envs."""

import functools
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import servegym.envs  # noqa: F401  (registers the ids)
from servegym.agents.action_wrappers import HeadroomAction
from servegym.baselines.runner.policies import AGH_REPLANNING, PlannerPolicy, make_policy
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.wrappers import DeltaAction, SLOPricedReward

ENV_ID = "servegym/Provisioning-v3"
REMOVE, KEEP, ADD = 0, 1, 2


def short_env(hours: float = 1.0) -> gym.Env:
    return gym.make(ENV_ID, horizon_hours=hours)


def moves(env: DeltaAction, **per_candidate: int) -> np.ndarray:
    action = np.full(env.action_space.shape, KEEP, dtype=np.int64)
    for index, move in per_candidate.items():
        action[int(index.removeprefix("c"))] = move
    return action


def test_wrappers__delta_action_adds_and_removes_one_replica():
    env = DeltaAction(short_env())
    env.reset(seed=0)
    _, _, _, _, info = env.step(moves(env, c0=ADD, c1=ADD))
    assert info["replicas"][:2].tolist() == [1, 1] and info["replicas"][2:].sum() == 0
    _, _, _, _, info = env.step(moves(env, c0=ADD, c1=REMOVE))
    assert info["replicas"][:2].tolist() == [2, 0]
    _, _, _, _, info = env.step(moves(env, c0=KEEP))
    assert info["replicas"][:2].tolist() == [2, 0]


def test_wrappers__delta_action_clips_at_zero_and_at_the_maximum():
    env = DeltaAction(short_env())
    env.reset(seed=0)
    base: ProvisioningEnv = env.unwrapped
    np.testing.assert_array_equal(env.target(np.full(env.action_space.shape, REMOVE)), 0)
    c = int(np.argmin(base.max_replicas))
    base.replicas.cohorts[-1, c] = base.max_replicas[c]  # running and ready
    assert env.target(moves(env, **{f"c{c}": ADD}))[c] == base.max_replicas[c]


def test_wrappers__delta_action_masks_follow_the_running_replicas_and_the_base_mask():
    env = DeltaAction(short_env())
    obs, _ = env.reset(seed=0)
    base: ProvisioningEnv = env.unwrapped
    mask = env.action_masks().reshape(-1, 3)
    assert not mask[:, REMOVE].any() and mask[:, KEEP].all()
    np.testing.assert_array_equal(obs["action_mask"], env.action_masks().astype(np.float32))
    assert gym.make(ENV_ID).get_wrapper_attr("action_masks")().size == base.action_masks().size
    assert env.get_wrapper_attr("action_masks")().size == 3 * base.action_space.shape[0]
    # A count the base mask forbids on its own (budget or availability) cannot be reached by +1.
    nvec, base_mask = base.action_space.nvec, base.action_masks()
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    c, k = next((c, k) for c in range(len(nvec)) for k in range(1, nvec[c]) if not base_mask[offsets[c] + k])
    base.replicas.cohorts[:] = 0
    base.replicas.cohorts[-1, c] = k - 1
    mask = env.action_masks().reshape(-1, 3)
    assert mask[c, REMOVE] == (k > 1) and not mask[c, ADD]


def test_wrappers__delta_action_rejects_bad_moves():
    env = DeltaAction(short_env())
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action\[1\] = 3 outside allowed integers \[0, 2\]"):
        env.step(moves(env, c1=3))
    with pytest.raises(ValueError, match="whole numbers"):
        env.step(np.full(env.action_space.shape, np.nan))


def test_wrappers__headroom_action_emits_valid_replica_counts():
    env = HeadroomAction(short_env(), planner="gh")
    env.reset(seed=0)
    base: ProvisioningEnv = env.unwrapped
    for multiplier in (0.8, 1.3, 2.0):
        replicas = env.replicas(np.full(env.action_space.shape, multiplier, dtype=np.float32))
        assert base.action_space.contains(replicas)
        _, _, _, _, info = env.step(np.full(env.action_space.shape, multiplier, dtype=np.float32))
        assert {"cost", "forecast_per_hour", "replicas", "action_mask", "demand_per_hour"} <= info.keys()


def test_wrappers__headroom_multiplier_one_reproduces_light_agh_rolling_first_action():
    env = HeadroomAction(short_env(), seed=0)
    obs, info = env.reset(seed=5)
    policy = PlannerPolicy(env.unwrapped, "agh", "rolling", 0, agh_settings=AGH_REPLANNING)
    policy.reset(5)
    expected = policy.act(obs, info)
    np.testing.assert_array_equal(env.replicas(np.ones(env.action_space.shape, dtype=np.float32)), expected)


def test_wrappers__headroom_action_rejects_bad_multipliers():
    env = HeadroomAction(short_env(), planner="gh")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.ones(env.action_space.shape, dtype=np.float32))
    env.reset(seed=0)
    action = np.ones(env.action_space.shape, dtype=np.float32)
    action[2] = np.nan
    with pytest.raises(ValueError, match=r"action\[2\] = nan outside allowed range \[0\.8, 2\.0\]"):
        env.step(action)
    action[2] = 1.0
    action[4] = 2.5
    with pytest.raises(ValueError, match=r"action\[4\] = 2\.5 outside allowed range \[0\.8, 2\.0\]"):
        env.step(action)
    with pytest.raises(ValueError, match="expected"):
        env.step(np.ones(3))
    with pytest.raises(ValueError, match="0 < low ≤ high"):
        HeadroomAction(short_env(), low=2.0, high=1.0)


def test_wrappers__slo_price_charges_each_missed_request_and_leaves_the_rest_alone():
    base, priced = short_env(), SLOPricedReward(short_env(), 0.002)
    observation, _ = base.reset(seed=3)
    priced_observation, _ = priced.reset(seed=3)
    action = base.unwrapped.action_space.sample()
    action[:] = 1
    missed_total = 0.0
    for _ in range(4):
        observation, reward, _, _, info = base.step(action)
        priced_observation, priced_reward, _, _, priced_info = priced.step(action)
        assert all(np.array_equal(observation[k], priced_observation[k]) for k in observation)
        assert info["cost"] == priced_info["cost"] and info["total_cost"] == priced_info["total_cost"]
        requests = np.sum(info["demand_per_hour"]) * base.unwrapped.instance.period_hours
        missed = info["slo_violation_rate"] * requests
        missed_total += missed
        assert priced_reward == pytest.approx(reward - 0.002 * missed / info["reward_scale"], rel=1e-12)
    assert missed_total > 0.0  # one replica per candidate misses some requests: the price is exercised
    free = SLOPricedReward(short_env(), 0)
    free.reset(seed=3)
    base.reset(seed=3)
    assert free.step(action)[1] == base.step(action)[1]


@pytest.mark.parametrize("price", [-0.1, float("nan"), float("inf"), True, "1"])
def test_wrappers__slo_price_rejects_what_is_not_a_finite_price(price):
    with pytest.raises(ValueError, match="price_per_request"):
        SLOPricedReward(short_env(), price)


@pytest.mark.parametrize(
    "wrap", [DeltaAction, functools.partial(HeadroomAction, planner="gh")], ids=["delta", "headroom"]
)
def test_wrappers__pass_the_gymnasium_checker(wrap):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version")
        warnings.filterwarnings("ignore", message=".*symmetric and normalized space")
        check_env(wrap(short_env()), skip_render_check=True)


def test_wrappers__env_pickles_and_runs_in_sb3_subproc_vec_env():
    sb3_vec_env = pytest.importorskip("stable_baselines3.common.vec_env")
    env = DeltaAction(short_env())
    env.reset(seed=0)
    clone = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(clone.action_masks(), env.action_masks())
    make = functools.partial(gym.make, f"servegym.envs:{ENV_ID}", horizon_hours=1.0)
    vector = sb3_vec_env.SubprocVecEnv([make, make], start_method="fork")  # forkserver would re-import torch: ~10 s
    try:
        vector.seed(0)
        vector.reset()
        nvec = vector.action_space.nvec
        for _ in range(5):
            _, rewards, _, infos = vector.step(np.stack([(nvec - 1) // 4] * 2))
            assert rewards.shape == (2,) and all("cost" in info for info in infos)
        masks = np.stack(vector.env_method("action_masks"))
        assert masks.shape == (2, int(nvec.sum()))
    finally:
        vector.close()


def test_wrappers__headroom_patience_dimension_reproduces_the_hold_baseline():
    env = HeadroomAction(short_env(2.0), planner="gh", max_payback_periods=12.0)
    assert env.action_space.shape == (env.unwrapped.instance.num_query_types + 1,)
    assert env.action_space.high[-1] == 12.0 and env.action_space.low[-1] == 0.0
    policy = make_policy("gh-hold", env.unwrapped)
    obs, info = env.reset(seed=0)
    policy.reset(0)
    action = np.ones(env.action_space.shape, dtype=np.float32)
    action[-1] = 4.0  # HOLD_PAYBACK_PERIODS
    while True:
        chosen = env.replicas(action)  # then step the base env, as the SB3 adapter does
        np.testing.assert_array_equal(chosen, policy.act(obs, info))
        obs, _, terminated, truncated, info = env.env.step(chosen)
        env.observe(obs, info)
        if terminated or truncated:
            break
    assert env.holds == policy.holds > 0


def test_wrappers__headroom_patience_out_of_range_names_the_dimension():
    env = HeadroomAction(short_env(), planner="gh", max_payback_periods=8.0)
    env.reset(seed=0)
    action = np.ones(env.action_space.shape, dtype=np.float32)
    action[-1] = 9.0
    with pytest.raises(ValueError, match=r"action\[6\] = 9\.0 outside allowed range \[0\.0, 8\.0\] \(payback horizon"):
        env.step(action)
    with pytest.raises(ValueError, match=r"max_payback_periods = -1"):
        HeadroomAction(short_env(), max_payback_periods=-1.0)
