"""Benchmark environment throughput: env steps per second under fixed policies, single process and vectorised.

Usage (from the repository root)::

    python scripts/bench_env.py [--steps 2000] [--out results/bench_env.json]

The floor (issue #17): the unwrapped env's step time against the routing LP alone on the same action sequence
(the env's own ``Router.route`` calls, recorded during a run and replayed on a fresh ``Router``), for the constant
and the random policy, in ``--rounds`` interleaved rounds (median of the rounds, and their ratio; and, for reading
them, the same LP calls timed inside the steps, where the rest of the step has evicted the solver's caches); and the
``gh-rolling`` and ``agh-rolling`` policies' decision time per period inside the default env (median over one
episode's periods, ``policy.act``, which runs the planner, and the planner call alone, wall and CPU time).

Settings: the unwrapped ``ProvisioningEnv``; ``gymnasium.make`` (with its default wrappers: passive env checker,
order enforcing); gymnasium ``SyncVectorEnv`` and ``AsyncVectorEnv`` and SB3 ``SubprocVecEnv`` with 2 envs each;
and the learning wrappers ``DeltaAction`` and ``HeadroomAction`` (one AGH or GH plan per step). Policies: a
constant mid-size action (half of every candidate's maximum; the coupled-limit repair trims it) and the uniform
random masked policy (the mask is static, so it is read once). Episodes auto-reset (same step). Each row warms
up, then times ``--steps`` env steps (``--headroom-steps`` for HeadroomAction, whose planner dominates).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from servegym.agents.action_wrappers import HeadroomAction
from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.routing import Router
from servegym.envs.wrappers import DeltaAction
from servegym.io import atomic_write_json, block_markers, machine_info, replace_marked_block, source_commit

WARMUP_STEPS = 50
"""Env steps run before the clock starts (LP warm start, imports, worker start-up)."""
HEADROOM_WARMUP_STEPS = 2
"""Warm-up of the HeadroomAction rows (each step runs a planner: tens to hundreds of milliseconds)."""
NUM_ENVS = 2
SUBPROCESS_SETTINGS = ("AsyncVectorEnv", "SB3 SubprocVecEnv")
"""Settings whose envs step in worker processes: this process's CPU time does not measure them."""
"""Sub-environments of the vectorised settings."""

FLOOR_ROUNDS = 5
"""Interleaved (step, LP) timing rounds of the floor measurement."""
PLANNER_POLICIES = ("gh-rolling", "agh-rolling", "agh-rolling-full")
"""Planner policies timed per period inside the default env; ``agh-rolling`` re-plans with ``AGH_REPLANNING``,
``agh-rolling-full`` with the full AGH search (warm-started from the previous plan)."""

Sampler = Callable[[np.random.Generator], np.ndarray]


def masked_sampler(mask: np.ndarray, nvec: np.ndarray) -> Sampler:
    """Uniform sampler over the counts a static flat ``mask`` allows, one per ``MultiDiscrete`` dimension."""
    starts = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    allowed = [np.flatnonzero(mask[s : s + n]) for s, n in zip(starts, nvec, strict=True)]
    counts = np.array([max(a.size, 1) for a in allowed])
    table = np.zeros((len(nvec), int(counts.max())), dtype=np.int64)
    for c, a in enumerate(allowed):
        table[c, : a.size] = a
    rows = np.arange(len(nvec))

    def sample(rng: np.random.Generator) -> np.ndarray:
        return table[rows, (rng.random(len(nvec)) * counts).astype(np.int64)]

    return sample


def policy_samplers(env: gym.Env) -> dict[str, Sampler]:
    """The benchmark's policies for an env whose action space is ``MultiDiscrete`` with ``action_masks()``."""
    nvec = env.action_space.nvec
    constant = (nvec - 1) // 2
    return {
        "constant-mid": lambda rng: constant.copy(),
        "random-masked": masked_sampler(env.get_wrapper_attr("action_masks")(), nvec),
    }


def masked_sampler_dynamic(env: DeltaAction) -> Sampler:
    """Uniform sampler over the moves ``env.action_masks()`` allows now (the delta mask changes every step)."""
    nvec = env.action_space.nvec
    size = int(nvec[0])

    def sample(rng: np.random.Generator) -> np.ndarray:
        allowed = env.action_masks().reshape(len(nvec), size)
        weights = rng.random(allowed.shape) * allowed
        return weights.argmax(axis=1)

    return sample


def timed(run: Callable[[int], None], steps: int, warmup_steps: int) -> tuple[float, float]:
    """(wall, CPU of this process) seconds of ``run(steps)`` after ``run(warmup_steps)``.

    The CPU time counts only this process, so it measures the in-process settings even on a busy machine.
    """
    run(warmup_steps)
    wall, cpu = time.perf_counter(), time.process_time()
    run(steps)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_single(env: gym.Env, sample: Sampler, steps: int, warmup_steps: int = WARMUP_STEPS) -> tuple[float, float]:
    """(wall, CPU) seconds for ``steps`` steps of one env after ``warmup_steps``; resets at episode end."""
    rng = np.random.default_rng(0)
    env.reset(seed=0)

    def run(count: int) -> None:
        for _ in range(count):
            _, _, terminated, truncated, _ = env.step(sample(rng))
            if terminated or truncated:
                env.reset()

    return timed(run, steps, warmup_steps)


def time_vector(env: Any, sample: Sampler, steps: int, *, sb3: bool) -> tuple[float, float]:
    """(wall, CPU) seconds for ``steps`` env steps (``steps / NUM_ENVS`` vector steps) after the warm-up."""
    rng = np.random.default_rng(0)
    if sb3:
        env.seed(0)
        env.reset()
    else:
        env.reset(seed=0)

    def run(count: int) -> None:
        for _ in range(max(count // NUM_ENVS, 1)):
            env.step(np.stack([sample(rng) for _ in range(NUM_ENVS)]))

    return timed(run, steps, WARMUP_STEPS)


def action_sequence(sample: Sampler, steps: int) -> list[np.ndarray]:
    """``steps`` actions of ``sample`` from a generator seeded 0."""
    rng = np.random.default_rng(0)
    return [sample(rng) for _ in range(steps)]


def time_steps(env: ProvisioningEnv, actions: list[np.ndarray]) -> float:
    """Seconds spent inside ``env.step`` over ``actions`` (episodes from seed 0, resets not counted)."""
    env.reset(seed=0)
    total = 0.0
    for action in actions:
        start = time.perf_counter()
        _, _, terminated, _, _ = env.step(action)
        total += time.perf_counter() - start
        if terminated:
            env.reset()
    return total


def record_routes(env: ProvisioningEnv, actions: list[np.ndarray]) -> list[tuple[Any, ...] | None]:
    """The env's ``Router.route`` inputs over ``actions`` (the same episodes as :func:`time_steps`); None marks a
    reset (which forgets the LP's warm start)."""
    calls: list[tuple[Any, ...] | None] = []
    router = env.router
    original = router.route

    def capture(replicas: np.ndarray, demand: np.ndarray | None = None, **kwargs: Any) -> Any:
        calls.append((np.array(replicas), None if demand is None else np.array(demand), kwargs))
        return original(replicas, demand, **kwargs)

    router.route = capture  # type: ignore[method-assign]
    try:
        env.reset(seed=0)
        for action in actions:
            _, _, terminated, _, _ = env.step(action)
            if terminated:
                calls.append(None)
                env.reset()
    finally:
        del router.route
    return calls


def time_routes_in_steps(env: ProvisioningEnv, actions: list[np.ndarray]) -> float:
    """Seconds of the env's own ``Router.route`` calls inside ``env.step`` over ``actions`` (a separate pass from
    :func:`time_steps`: the LP as the step runs it, its caches shared with the rest of the step)."""
    router = env.router
    original = router.route
    total = 0.0

    def timed_route(*args: Any, **kwargs: Any) -> Any:
        nonlocal total
        start = time.perf_counter()
        result = original(*args, **kwargs)
        total += time.perf_counter() - start
        return result

    router.route = timed_route  # type: ignore[method-assign]
    try:
        time_steps(env, actions)
    finally:
        del router.route
    return total


def time_routes(env: ProvisioningEnv, calls: list[tuple[Any, ...] | None]) -> float:
    """Seconds of the routing LP alone: ``calls`` replayed on a fresh ``Router`` of the env's instance."""
    router = Router(env.instance)
    total = 0.0
    for call in calls:
        if call is None:
            router.reset()
            continue
        replicas, demand, kwargs = call
        start = time.perf_counter()
        router.route(replicas, demand, **kwargs)
        total += time.perf_counter() - start
    return total


def floor_benchmarks(env_id: str, steps: int, rounds: int) -> list[dict[str, Any]]:
    """Per policy: median ms per step and of the LP alone over ``rounds`` interleaved rounds, and their ratio; and,
    for reading them, the LP's ms inside the step (``routing_lp_in_step_ms``, one more pass: the same LP calls run
    between the step's other work, which evicts the solver's cached code and data)."""
    env: ProvisioningEnv = gym.make(env_id).unwrapped  # type: ignore[assignment]
    records = []
    print(
        f"{'floor':14s} {'step ms':>9s} {'LP ms':>9s} {'ratio':>6s} {'LP in step ms':>14s}  "
        f"(median of {rounds} rounds, {steps} steps)"
    )
    for policy, sample in policy_samplers(env).items():
        actions = action_sequence(sample, steps)
        calls = record_routes(env, actions)
        time_steps(env, actions[:WARMUP_STEPS])
        step_s, route_s = [], []
        for _ in range(rounds):
            step_s.append(time_steps(env, actions))
            route_s.append(time_routes(env, calls))
        step_ms = 1e3 * float(np.median(step_s)) / steps
        route_ms = 1e3 * float(np.median(route_s)) / steps
        ratio = float(np.median(np.array(step_s) / np.array(route_s)))
        in_step_ms = 1e3 * time_routes_in_steps(env, actions) / steps
        records.append(
            {
                "policy": policy,
                "steps": steps,
                "rounds": rounds,
                "step_ms": round(step_ms, 4),
                "routing_lp_ms": round(route_ms, 4),
                "ratio": round(ratio, 3),
                "routing_lp_in_step_ms": round(in_step_ms, 4),
            }
        )
        print(f"{policy:14s} {step_ms:9.4f} {route_ms:9.4f} {ratio:6.2f} {in_step_ms:14.4f}")
    return records


def planner_benchmarks(env_id: str) -> list[dict[str, Any]]:
    """Per planner policy: median ms per period of ``act`` and of the planner call, over one episode (seed 0)."""
    import servegym.baselines.runner.policies as policies

    records = []
    original = policies.run_planner
    for name in PLANNER_POLICIES:
        env: ProvisioningEnv = gym.make(env_id).unwrapped  # type: ignore[assignment]
        if name == "agh-rolling-full":
            policy = policies.PlannerPolicy(env, "agh", "rolling", 0, agh_settings={})
        else:
            policy = policies.make_policy(name, env, seed=0)
        planner_s: list[float] = []
        planner_cpu_s: list[float] = []

        def timed_planner(
            *args: Any, planner_s: list[float] = planner_s, planner_cpu_s: list[float] = planner_cpu_s, **kwargs: Any
        ) -> Any:
            start, cpu = time.perf_counter(), time.process_time()
            result = original(*args, **kwargs)
            planner_s.append(time.perf_counter() - start)
            planner_cpu_s.append(time.process_time() - cpu)
            return result

        policies.run_planner = timed_planner
        try:
            policy.reset(0)
            obs, info = env.reset(seed=0)
            act_s = []
            terminated = False
            while not terminated:
                start = time.perf_counter()
                action = policy.act(obs, info)
                act_s.append(time.perf_counter() - start)
                obs, _, terminated, _, info = env.step(action)
        finally:
            policies.run_planner = original
        record = {
            "policy": name,
            "periods": len(act_s),
            "act_median_ms": round(1e3 * float(np.median(act_s)), 3),
            "planner_median_ms": round(1e3 * float(np.median(planner_s)), 3),
            "planner_cpu_median_ms": round(1e3 * float(np.median(planner_cpu_s)), 3),
            "planner_calls": len(planner_s),
        }
        records.append(record)
        print(
            f"{name:18s} act median {record['act_median_ms']:8.3f} ms, planner median "
            f"{record['planner_median_ms']:8.3f} ms (CPU {record['planner_cpu_median_ms']:.3f} ms; "
            f"{len(planner_s)} calls, {len(act_s)} periods)"
        )
    return records


def run_benchmarks(env_id: str, steps: int, headroom_steps: int) -> list[dict[str, Any]]:
    """Time every (setting, policy) pair; returns one record per pair with env steps/s."""
    from stable_baselines3.common.vec_env import SubprocVecEnv

    make = functools.partial(gym.make, f"servegym.envs:{env_id}")
    probe = make()
    samplers = policy_samplers(probe)
    probe.close()
    records = []

    def record(setting: str, policy: str, num_envs: int, count: int, seconds: tuple[float, float]) -> None:
        wall, cpu = seconds
        in_process = setting not in SUBPROCESS_SETTINGS
        records.append(
            {
                "setting": setting,
                "policy": policy,
                "num_envs": num_envs,
                "steps": count,
                "seconds": round(wall, 4),
                "steps_per_s": round(count / wall, 1),
                "cpu_steps_per_s": round(count / cpu, 1) if in_process else None,
            }
        )
        cpu_rate = f"{count / cpu:10.1f}" if in_process else f"{'-':>10s}"
        print(f"{setting:26s} {policy:14s} {num_envs:4d} {count:6d} {wall:8.2f} {count / wall:10.1f} {cpu_rate}")

    print(
        f"{'setting':26s} {'policy':14s} {'envs':>4s} {'steps':>6s} {'seconds':>8s} {'steps/s':>10s} {'CPU st/s':>10s}"
    )
    for policy, sample in samplers.items():
        record("unwrapped", policy, 1, steps, time_single(make().unwrapped, sample, steps))
        record("gymnasium.make", policy, 1, steps, time_single(make(), sample, steps))
        for name, vector_class in (("SyncVectorEnv", SyncVectorEnv), ("AsyncVectorEnv", AsyncVectorEnv)):
            vector = vector_class([make] * NUM_ENVS, autoreset_mode=AutoresetMode.SAME_STEP)
            record(name, policy, NUM_ENVS, steps, time_vector(vector, sample, steps, sb3=False))
            vector.close()
        subproc = SubprocVecEnv([make] * NUM_ENVS)
        record("SB3 SubprocVecEnv", policy, NUM_ENVS, steps, time_vector(subproc, sample, steps, sb3=True))
        subproc.close()

    delta = DeltaAction(make())
    delta_sample = masked_sampler_dynamic(delta)
    record("DeltaAction", "random-masked", 1, steps, time_single(delta, delta_sample, steps))
    for planner in ("agh", "gh"):
        headroom = HeadroomAction(make(), planner=planner)
        ones = np.ones(headroom.action_space.shape, dtype=np.float32)
        seconds = time_single(headroom, lambda rng, ones=ones: ones, headroom_steps, warmup_steps=HEADROOM_WARMUP_STEPS)
        record(f"HeadroomAction ({planner})", "multiplier-1", 1, headroom_steps, seconds)
    return records


RESULTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"
DOC_BLOCK = block_markers("bench-env-floor", "scripts/bench_env.py")
"""The floor table of docs/results.md ("Environment speed") this script rewrites (unless ``--no-docs``)."""
FLOOR_ROWS = (
    ("env step, ms", "step_ms", 3),
    ("the routing LP alone on the same action sequence, ms", "routing_lp_ms", 3),
    ("the same LP calls inside the step, ms", "routing_lp_in_step_ms", 3),
    ("step ÷ LP (target ≤ 1.5)", "ratio", 2),
)
"""Rows of the docs table: label, key of a floor record, decimals."""


def floor_table(floor: list[dict[str, Any]]) -> str:
    """The floor measurements as docs/results.md shows them: one column for constant, one for random actions."""
    by_policy = {row["policy"]: row for row in floor}
    constant, random_actions = by_policy["constant-mid"], by_policy["random-masked"]
    lines = ["| measure | constant action | random masked actions |", "|---|---:|---:|"]
    for label, key, digits in FLOOR_ROWS:
        lines.append(f"| {label} | {constant[key]:.{digits}f} | {random_actions[key]:.{digits}f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmarks, print the table and write the JSON; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", "--env-id", dest="env_id", default=DEFAULT_ENV_ID, help="registered environment id")
    parser.add_argument("--steps", type=int, default=2000, help="timed env steps per row (default 2000)")
    parser.add_argument(
        "--headroom-steps", type=int, default=100, help="timed env steps for HeadroomAction rows (default 100)"
    )
    parser.add_argument("--rounds", type=int, default=FLOOR_ROUNDS, help=f"floor rounds (default {FLOOR_ROUNDS})")
    parser.add_argument("--floor-only", action="store_true", help="only the floor and planner measurements")
    parser.add_argument("--out", default="results/bench_env.json", help="JSON output (default results/bench_env.json)")
    parser.add_argument("--no-docs", action="store_true", help="leave the table of docs/results.md as it is")
    parser.add_argument(
        "--table-only", action="store_true", help="rewrite the docs table from the --out JSON; measure nothing"
    )
    args = parser.parse_args(argv)
    if args.table_only:
        replace_marked_block(RESULTS_DOC, *DOC_BLOCK, floor_table(json.loads(Path(args.out).read_text())["floor"]))
        print(f"rewrote the floor table of {RESULTS_DOC} from {args.out}")
        return 0
    if args.steps < max(NUM_ENVS, WARMUP_STEPS) or args.headroom_steps < 1 or args.rounds < 1:
        parser.error(f"--steps must be ≥ {max(NUM_ENVS, WARMUP_STEPS)}, --headroom-steps and --rounds ≥ 1")
    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()
    floor = floor_benchmarks(args.env_id, args.steps, args.rounds)
    planners = planner_benchmarks(args.env_id)
    records = [] if args.floor_only else run_benchmarks(args.env_id, args.steps, args.headroom_steps)
    probe: ProvisioningEnv = gym.make(args.env_id).unwrapped  # type: ignore[assignment]
    payload = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        "env_id": args.env_id,
        "candidates": probe.instance.num_configurations,
        "query_types": probe.instance.num_query_types,
        "commit": source_commit() or "unknown",
        "warmup_steps": WARMUP_STEPS,
        "machine": machine_info(("gymnasium", "highspy", "stable-baselines3", "sb3-contrib")),
        "load_average_at_start": [round(value, 2) for value in load_before],
        "floor": floor,
        "planners_in_env": planners,
        "results": records,
    }
    atomic_write_json(args.out, payload)
    if not args.no_docs:
        replace_marked_block(RESULTS_DOC, *DOC_BLOCK, floor_table(floor))
    print(f"load average at start {load_before}, at end {os.getloadavg()}; commit {payload['commit']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
