"""The fast paths of issue #17 against the plain rules they replace: the env's repair against one-replica-at-a-time
removal, the realiser against the plain ``realise`` it replaced, the demand-free caches against fresh
computations, AGH's warm start."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import servegym.envs  # noqa: F401  (registers the ids)
from servegym.baselines.adaptive import solve_agh
from servegym.baselines.greedy_context import build_context, same_but_demand
from servegym.baselines.mechanisms import ALL_MECHANISMS
from servegym.baselines.policies import make_policy
from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.instance import Instance
from servegym.envs.limits import exceeds, gpus_used, rental_per_hour, spend_per_hour, storage_gb
from servegym.envs.outcome import OVERLOAD_CAP, Outcome, Realiser
from servegym.envs.repair import ActionRepair


def one_at_a_time(instance, replicas: np.ndarray) -> np.ndarray:
    """The repair rule of ``envs/repair.py`` applied literally: one replica (or, for storage, one configuration) at
    a time from the most expensive running configuration that uses the exceeded resource, ties to the lower index."""
    n = replicas.copy()
    price = instance.replica_price_per_hour
    order = np.argsort(-price, kind="stable")
    for g in range(len(instance.gpus)):
        while exceeds(gpus_used(instance, n)[g], instance.gpu_availability[g]):
            c = next(c for c in order if n[c] > 0 and instance.config_gpu[c] == g)
            n[c] -= 1
    while exceeds(storage_gb(instance, n), instance.storage_capacity_gb):
        n[next(c for c in order if n[c] > 0)] = 0
    while exceeds(spend_per_hour(instance, n), instance.budget_per_hour):
        n[next(c for c in order if n[c] > 0)] -= 1
    return n


@pytest.mark.parametrize("storage_price", [None, 0.05])
def test_action_repair__equals_one_replica_at_a_time(storage_price: float | None) -> None:
    env = gym.make(DEFAULT_ENV_ID).unwrapped
    instance = env.instance
    if storage_price is not None:  # storage leaves with a model's last replica: the budget step must see it
        instance = instance.with_changes(storage_price_per_gb_hour=storage_price, storage_capacity_gb=400.0)
    repair = ActionRepair(instance, env.max_replicas)
    rng = np.random.default_rng(0)
    for _ in range(300):
        action = (rng.random(len(env.max_replicas)) < 0.4) * rng.integers(0, env.max_replicas + 1)
        expected = one_at_a_time(instance, action)
        repaired, removed = repair.repair(action.copy())
        np.testing.assert_array_equal(repaired, expected)
        assert removed == int(action.sum() - expected.sum())
        again, removed_again = repair.repair(action.copy())  # the remembered last action
        np.testing.assert_array_equal(again, expected)
        assert removed_again == removed


def plain_realise(
    instance: Instance,
    replicas: np.ndarray,
    routing: np.ndarray,
    unserved: np.ndarray,
    *,
    ready: np.ndarray | None = None,
    slowdown: np.ndarray | float = 1.0,
    error_factor: np.ndarray | float = 1.0,
    error_penalty_per_request: np.ndarray | float = 0.0,
    queueing: bool = True,
    start_fee: float = 0.0,
) -> Outcome:
    """``envs.outcome.realise`` as it was before issue #17 (numpy, one expression per quantity)."""
    rented = np.asarray(replicas, dtype=float)
    n = rented if ready is None else np.asarray(ready, dtype=float)
    slow = np.broadcast_to(np.asarray(slowdown, dtype=float), n.shape)
    mu = instance.capacity_per_hour
    occupancy = np.divide(routing, mu, out=np.zeros_like(routing), where=mu > 0)  # replica-loads (I, C)
    load = slow * occupancy.sum(axis=0)
    # Load on a configuration with no ready capacity is dropped whole (utilisation treated as infinite).
    utilisation = np.divide(load, n, out=np.where(load > 0, np.inf, 0.0), where=n > 0)
    carried = np.where(utilisation > OVERLOAD_CAP, OVERLOAD_CAP / np.maximum(utilisation, 1e-12), 1.0)
    served = routing * carried[None, :]
    dropped = unserved + (routing - served).sum(axis=1)
    utilisation = np.minimum(utilisation, OVERLOAD_CAP)
    delay = slow[None, :] * instance.delay_s
    if queueing:
        requests = served.sum(axis=0)
        slot_s = np.divide(
            3600.0 * slow * (occupancy * carried[None, :]).sum(axis=0),
            requests * n,
            out=np.zeros_like(requests),
            where=(requests > 0) & (n > 0),
        )
        delay = delay + (utilisation / (1.0 - utilisation) * slot_s)[None, :]
    delay = np.where(served > 0, delay, 0.0)

    demand_total = float(routing.sum() + unserved.sum())
    over_delay = (served * (delay > instance.delay_slo_s[:, None])).sum(axis=1)  # (I,)
    served_per_type = served.sum(axis=1)
    realised_error = np.minimum(np.asarray(error_factor, dtype=float) * instance.error_rate, 1.0)
    erroneous = (realised_error * served).sum(axis=1)
    excess_errors = np.maximum(erroneous - instance.error_slo * served_per_type, 0.0)
    delay_share = np.divide(over_delay, served_per_type, out=np.zeros_like(over_delay), where=served_per_type > 0)
    missed = dropped + over_delay + excess_errors * (1.0 - delay_share)
    dt = instance.period_hours
    psi = np.broadcast_to(np.asarray(error_penalty_per_request, dtype=float), excess_errors.shape)
    cost = {
        "rental": dt * rental_per_hour(instance, rented),
        "storage": dt * storage_gb(instance, rented) * instance.storage_price_per_gb_hour,
        "delay_penalty": dt * float((instance.delay_penalty_per_request_s[:, None] * delay * served).sum()),
        "unmet_penalty": dt * float(instance.unmet_penalty_per_request @ dropped),
        "error_penalty": dt * float(psi @ excess_errors),
        "reconfiguration": float(start_fee),
    }
    scale = 1.0 / demand_total if demand_total > 0 else 0.0
    return Outcome(
        served=served,
        unserved=dropped,
        excess_errors=excess_errors,
        delay_s=delay,
        utilisation=utilisation,
        delay_violation_rate=float(over_delay.sum()) * scale,
        error_violation_rate=float(excess_errors.sum()) * scale,
        unserved_rate=float(dropped.sum()) * scale,
        slo_violation_rate=float(missed.sum()) * scale,
        cost=cost,
    )


def test_realiser__equals_the_plain_realise_bit_for_bit_with_and_without_overload() -> None:
    env = gym.make(DEFAULT_ENV_ID).unwrapped
    instance = env.instance
    realiser = Realiser(instance)
    rng = np.random.default_rng(1)
    for trial in range(50):
        replicas = rng.integers(0, 3, instance.num_configurations)
        routing = np.where(instance.route_allowed, rng.random(instance.capacity_per_hour.shape), 0.0)
        routing *= instance.capacity_per_hour * (0.2 if trial % 2 else 2.0)  # even trials overload
        unserved = rng.random(instance.num_query_types)
        kwargs = {
            "ready": replicas * rng.random(instance.num_configurations),
            "slowdown": 1.0 + 0.2 * rng.random(instance.num_configurations),
            "error_factor": 1.0 + rng.random(instance.num_configurations),
            "error_penalty_per_request": 0.5,
            "queueing": bool(trial % 3),
            "start_fee": 2.0,
        }
        fast = realiser(replicas, routing, unserved, **kwargs)
        plain = plain_realise(instance, replicas, routing, unserved, **kwargs)
        for name in ("served", "unserved", "excess_errors", "delay_s", "utilisation"):
            np.testing.assert_array_equal(getattr(fast, name), getattr(plain, name))
        assert fast.cost == plain.cost and fast.rates() == plain.rates()


def test_build_context__reused_only_for_a_change_of_demand() -> None:
    env = gym.make(DEFAULT_ENV_ID).unwrapped
    base = env.instance
    other_demand = base.with_demand(base.demand_per_hour * 0.5)
    other_budget = base.with_changes(budget_per_hour=base.budget_per_hour * 0.5)
    assert same_but_demand(base, other_demand) and not same_but_demand(base, other_budget)
    first, second = build_context(base, ALL_MECHANISMS), build_context(other_demand, ALL_MECHANISMS)
    assert second.instance is other_demand and second.candidates is first.candidates
    assert build_context(other_budget, ALL_MECHANISMS).candidates is not first.candidates


def test_solve_agh__warm_start_never_ends_above_it_and_is_deterministic() -> None:
    env = gym.make(DEFAULT_ENV_ID).unwrapped
    previous = solve_agh(env.instance, seed=0)
    instance = env.instance.with_demand(env.instance.demand_per_hour * 0.8)
    settings = {"max_orders": 1, "random_starts": 0, "search_starts": 1, "max_solves": 30, "max_repairs": 0}
    warm = solve_agh(instance, seed=0, warm_start=previous.plan.replicas, **settings)
    cold = solve_agh(instance, seed=0, **settings)
    assert warm.feasible and cold.feasible
    routed_previous = solve_agh(instance, seed=0, warm_start=previous.plan.replicas, **{**settings, "max_solves": 0})
    assert warm.evaluation.cost.total <= routed_previous.evaluation.cost.total + 1e-9
    again = solve_agh(instance, seed=0, warm_start=previous.plan.replicas, **settings)
    np.testing.assert_array_equal(again.plan.replicas, warm.plan.replicas)


def test_agh_rolling__same_actions_in_two_episodes_of_one_seed() -> None:
    env = gym.make(DEFAULT_ENV_ID, horizon_hours=2.0).unwrapped
    policy = make_policy("agh-rolling", env, seed=0)
    episodes = []
    for _ in range(2):
        policy.reset(0)
        obs, info = env.reset(seed=0)
        actions = []
        for _ in range(env.num_periods):
            action = policy.act(obs, info)
            actions.append(action)
            obs, _, _, _, info = env.step(action)
        episodes.append(np.stack(actions))
    np.testing.assert_array_equal(episodes[0], episodes[1])
