"""Env outputs and in-env planner actions are the same as a recorded reference (issue #17: the speed work on the
step path and the planners must not change what the env returns or what GH and AGH decide).

Every registered id is played for a short horizon with a constant and a uniformly random masked action, two
episodes (seeds 0 and 1, each on a new env: that a reused env plays the same is ``test_env``'s business); every
observation key, the reward, ``terminated`` and every ``info`` key is compared step by step with
``tests/data/env_reference.npz``, re-recorded for env v3 (performance model v2, warm initial fleet, the lead-in
observed at reset: the env's outputs changed on purpose), from the code of the v3 change; the speed work before it
was checked against the recording of commit 1049171 (and full AGH's relocations against a re-recording of its plans
alone, #17). The ``gh-rolling`` policy is played on the default id and its actions compared too, and full AGH
(``solve_agh``'s defaults, what ``servegym solve`` runs) is run on the instance of every period of that episode and
its plans compared (``agh-rolling`` itself re-plans with lighter settings since #17: its actions changed on purpose).

Floats are compared to 1e-9 relative (and 1e-12 absolute): reordered sums may move the last bits, nothing else
may move. The reference holds on every x86-64 CPU: it was re-taken (same code) when exp/log moved to libm and the
forecaster's fits were shipped (``servegym.numerics``, docs/benchmark.md "The same numbers on every CPU"); before,
an AVX2 host failed 20 of these cases on a reference taken on an AVX-512 host. Its numbers are the AVX2 host's.
Integers, booleans and strings are compared exactly.

Re-record (only when the env's outputs are meant to change, and say so in the commit)::

    .venv/bin/python tests/test_env_speed_identity.py --record
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from servegym.baselines.heuristics.adaptive import solve_agh
from servegym.baselines.runner.policies import AGH_IN_ENV, make_policy
from servegym.envs import DEFAULT_ENV_ID, ENV_IDS

REFERENCE = Path(__file__).parent / "data" / "env_reference.npz"
HORIZON_HOURS = 2.0
"""Episode length of the comparison, hours (8 periods at 15 minutes, 24 at 5)."""
EPISODES = 2
"""Episodes played per (id, policy), seeds 0, 1, …"""
PLANNER_POLICIES = ("gh-rolling",)
"""Planner policies whose actions are recorded on the default id."""
AGH_PERIODS = "agh-plans"
"""The case of full AGH's plans on the forecast instances of the ``gh-rolling`` episode."""
RTOL, ATOL = 1e-9, 1e-12


def _flatten(prefix: str, value: Any, out: dict[str, np.ndarray]) -> None:
    """Store ``value`` (array, number, string or dict of those) under ``prefix`` keys of ``out``."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out)
    else:
        out[prefix] = np.asarray(value)


def _action_fn(env: gym.Env, kind: str) -> Any:
    """``kind``'s action chooser: (rng, obs, info) → action."""
    nvec = env.action_space.nvec
    if kind == "constant":
        constant = (nvec - 1) // 2
        return lambda rng, obs, info: constant.copy()
    if kind == "random":
        mask = env.unwrapped.action_masks()
        starts = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        allowed = [np.flatnonzero(mask[s : s + n]) for s, n in zip(starts, nvec, strict=True)]
        return lambda rng, obs, info: np.array([rng.choice(a) if a.size else 0 for a in allowed], dtype=np.int64)
    policy = make_policy(kind, env.unwrapped, seed=0)
    policy.reset(0)
    return lambda rng, obs, info: policy.act(obs, info)


def play(env_id: str, kind: str) -> dict[str, np.ndarray]:
    """Every output of ``EPISODES`` episodes of ``env_id`` under the ``kind`` actions, one array per key stacked
    over episodes and steps (reset outputs apart)."""
    rng = np.random.default_rng(0)
    rows: dict[str, list[np.ndarray]] = {}

    def add(values: dict[str, np.ndarray]) -> None:
        for key, value in values.items():
            rows.setdefault(f"{env_id}|{kind}|{key}", []).append(value)

    for episode in range(EPISODES):
        env = gym.make(env_id, horizon_hours=HORIZON_HOURS).unwrapped
        act = _action_fn(env, kind)
        obs, info = env.reset(seed=episode)
        flat: dict[str, np.ndarray] = {}
        _flatten("reset|obs", obs, flat)
        _flatten("reset|info", info, flat)
        add(flat)
        for _ in range(env.num_periods):
            action = act(rng, obs, info)
            obs, reward, terminated, truncated, info = env.step(action)
            flat = {
                "action": np.asarray(action),
                "reward": np.asarray(reward),
                "done": np.array([terminated, truncated]),
            }
            _flatten("obs", obs, flat)
            _flatten("info", info, flat)
            add(flat)
    return {key: np.stack(values) for key, values in rows.items()}


def agh_plans() -> dict[str, np.ndarray]:
    """Full AGH's replicas and cost on the default id's instance with each period's forecast of a ``gh-rolling``
    episode (seed 0), stacked by period; without the priced swaps, which came after the reference was recorded and
    change period 7's plan on purpose ($14.135 → $13.946), as AGH inside the environment runs (``AGH_IN_ENV``)."""
    env = gym.make(DEFAULT_ENV_ID, horizon_hours=HORIZON_HOURS).unwrapped
    act = _action_fn(env, "gh-rolling")
    obs, info = env.reset(seed=0)
    replicas, costs = [], []
    for _ in range(env.num_periods):
        result = solve_agh(env.instance.with_demand(np.asarray(info["forecast_per_hour"])), seed=0, **AGH_IN_ENV)
        replicas.append(np.asarray(result.plan.replicas))
        costs.append(result.evaluation.cost.total)
        obs, _, _, _, info = env.step(act(None, obs, info))
    prefix = f"{DEFAULT_ENV_ID}|{AGH_PERIODS}|"
    return {f"{prefix}replicas": np.stack(replicas), f"{prefix}cost": np.array(costs)}


def cases() -> list[tuple[str, str]]:
    """(env id, action kind) pairs of the reference."""
    pairs = [(env_id, kind) for env_id in sorted(ENV_IDS) for kind in ("constant", "random")]
    return pairs + [(DEFAULT_ENV_ID, policy) for policy in (*PLANNER_POLICIES, AGH_PERIODS)]


def record() -> None:
    """Play every case and write the reference."""
    out: dict[str, np.ndarray] = {}
    for env_id, kind in cases():
        out.update(agh_plans() if kind == AGH_PERIODS else play(env_id, kind))
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE, **out)
    print(f"wrote {REFERENCE} ({len(out)} arrays)")


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize(("env_id", "kind"), cases())
def test_env_outputs__identical_to_reference(reference: dict[str, np.ndarray], env_id: str, kind: str) -> None:
    played = agh_plans() if kind == AGH_PERIODS else play(env_id, kind)
    expected = {key: value for key, value in reference.items() if key.startswith(f"{env_id}|{kind}|")}
    assert sorted(played) == sorted(expected)
    for key, value in played.items():
        want = expected[key]
        assert value.shape == want.shape, key
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(value, want, rtol=RTOL, atol=ATOL, err_msg=key)
        else:
            assert value.dtype.kind == want.dtype.kind, key
            np.testing.assert_array_equal(value, want, err_msg=key)


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(f"usage: {sys.argv[0]} --record")
    record()
