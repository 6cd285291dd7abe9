"""The single evaluation loop: policies × episodes → one row per (policy, episode), plus per-period records.

:func:`write_evaluation` writes a result's files (:data:`EVALUATION_FILES`) as one set with a ``manifest.json``
(:func:`servegym.io.write_file_set`), so a killed ``servegym evaluate`` never leaves its new tables beside an
earlier run's figure.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import servegym.envs  # noqa: F401  (registers the environment ids)
from servegym.baselines.policies import Policy, make_policy
from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.demand_source import DemandSource
from servegym.envs.outcome import COST_PARTS, SLO_RATES
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.wrappers import EpisodeTotals
from servegym.errors import UsageError
from servegym.io import write_file_set

EPISODE_COLUMNS = (
    "policy",
    "episode",
    "demand",
    "seed",
    "total_cost",
    *COST_PARTS,
    *SLO_RATES,
    "gpu_hours",
    "started_replicas",
    "mean_decision_s",
    "max_decision_s",
    "fallbacks",
)
"""Columns of :attr:`EvaluationResult.episodes`: costs in $ over the episode, rates request-weighted."""
EVALUATION_FILES = ("episodes.csv", "periods.csv", "evaluate.png", "plan.png")
"""What :func:`write_evaluation` writes (with ``manifest.json``)."""


@dataclass(frozen=True)
class EvaluationResult:
    """``episodes``: one row per (policy, episode); ``periods``: one row per (policy, episode, period)."""

    episodes: pd.DataFrame
    periods: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        """Mean over episodes per policy, cheapest first."""
        numeric = [c for c in EPISODE_COLUMNS if c not in ("policy", "episode", "demand", "seed")]
        return self.episodes.groupby("policy")[numeric].mean().sort_values("total_cost")


PolicySpec = str | Callable[[ProvisioningEnv], Policy]


def _episodes(
    days: Sequence[str] | None, seeds: Sequence[int], demand_label: str | None
) -> list[tuple[str, int, dict[str, Any]]]:
    if days:
        return [(f"{day}/s{seed}", seed, {"day": day}) for day in days for seed in seeds]
    prefix = f"{demand_label}/" if demand_label else ""
    return [(f"{prefix}s{seed}", seed, {}) for seed in seeds]


def run_episode(env: gym.Env, policy: Policy, seed: int, options: dict[str, Any]) -> tuple[dict, list[dict]]:
    """Play one episode; returns the episode record and the per-period records."""
    unwrapped: ProvisioningEnv = env.unwrapped  # type: ignore[assignment]
    obs, info = env.reset(seed=seed, options=options or None)
    policy.reset(seed)
    totals = EpisodeTotals(unwrapped.instance.period_hours)
    decisions, periods = [], []
    done = False
    while not done:
        start = time.perf_counter()
        action = policy.act(obs, info)
        decisions.append(time.perf_counter() - start)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        demand = totals.add(info)
        periods.append(
            {
                "period": info["period"] - 1,
                "total_cost": info["total_cost"],
                **info["cost"],
                "demand_per_hour": demand,
                **{f"gpus[{g}]": float(v) for g, v in zip(unwrapped.instance.gpus, info["gpus"], strict=True)},
                "starting_replicas": int(np.sum(info["starting_replicas"])),
                **{key: info[key] for key in SLO_RATES},
            }
        )
    record = {
        "demand": info["demand_label"],
        **totals.totals(),
        "mean_decision_s": float(np.mean(decisions)),
        "max_decision_s": float(np.max(decisions)),
        "fallbacks": int(policy.fallbacks),
    }
    return record, periods


def evaluate(
    policies: Sequence[PolicySpec] | Mapping[str, PolicySpec],
    env_id: str = DEFAULT_ENV_ID,
    *,
    days: Sequence[str] | None = None,
    seeds: Sequence[int] = (0,),
    env_kwargs: Mapping[str, Any] | None = None,
    demand: str | DemandSource | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Play every policy on the same episodes and tabulate costs, SLO outcomes, GPU-hours and decision time.

    Args:
        policies: Baseline names (see ``servegym.baselines.policies.BASELINE_POLICIES``) or factories that build
            a policy for an environment; a mapping gives them display names.
        env_id: Registered environment id.
        days: Azure days (names) to play; None plays the environment's own demand source once per seed.
        seeds: Episode seeds (demand noise, day draws, randomised planners).
        env_kwargs: Extra keyword arguments for ``gymnasium.make``.
        demand: Demand source of every episode (a spec such as ``trace:PATH`` or a ``DemandSource``), given to
            ``gymnasium.make`` so that a trace with its own query types builds the instance; excludes ``days``.
            Episodes are labelled ``<source>/s<seed>``.
        progress: Show a progress bar.

    Raises:
        ValueError: ``days`` and ``demand`` both given, or ``demand`` also in ``env_kwargs``.
    """
    named = dict(policies) if isinstance(policies, Mapping) else {_spec_name(p): p for p in policies}
    kwargs = dict(env_kwargs or {})
    if demand is not None:
        if days:
            raise ValueError("evaluate: pass days or demand, not both (day D is demand 'azure:D')")
        if "demand" in kwargs:
            raise ValueError("evaluate: demand given both as an argument and in env_kwargs; pass one")
        kwargs["demand"] = demand
    env = gym.make(env_id, **kwargs)
    source = env.unwrapped.demand_source if demand is not None else None
    episodes = _episodes(days, seeds, source.label if source is not None else None)
    rows, period_rows = [], []
    bar = tqdm(total=len(named) * len(episodes), disable=not progress, desc="evaluate", unit="episode")
    for name, spec in named.items():
        policy = make_policy(spec, env.unwrapped) if isinstance(spec, str) else spec(env.unwrapped)
        _check_policy(name, policy)
        for label, seed, options in episodes:
            record, periods = run_episode(env, policy, seed, options)
            rows.append({"policy": name, "episode": label, "seed": seed, **record})
            period_rows += [{"policy": name, "episode": label, **p} for p in periods]
            bar.update()
    bar.close()
    env.close()
    return EvaluationResult(
        episodes=pd.DataFrame(rows, columns=list(EPISODE_COLUMNS)),
        periods=pd.DataFrame(period_rows),
    )


POLICY_MEMBERS = ("name", "fallbacks", "reset", "act")
"""What the evaluation loop reads of a policy (``servegym.baselines.policies.Policy``)."""


def _check_policy(name: str, policy: object) -> None:
    missing = [member for member in POLICY_MEMBERS if not hasattr(policy, member)]
    if missing:
        raise UsageError(
            f"policy {name!r} ({type(policy).__name__}) lacks {missing}; a policy offers name, fallbacks (int), "
            "reset(seed) and act(obs, info) (servegym.baselines.policies.Policy)"
        )


def _spec_name(spec: PolicySpec) -> str:
    return spec if isinstance(spec, str) else getattr(spec, "__name__", repr(spec))


def write_evaluation(result: EvaluationResult, out_dir: Path | str, *, command: str) -> list[Path]:
    """Write ``episodes.csv``, ``periods.csv`` and the figures ``evaluate.png`` (``plot_evaluation``, every
    policy's cost) and ``plan.png`` (``plot_plan``, the cheapest re-planning policy's GPUs against demand) of the
    first episode into ``out_dir`` as one set with a ``manifest.json`` recording ``command``; returns the paths.

    Raises:
        OutputPathError: ``out_dir`` cannot be a folder.
    """
    from servegym.baselines.plots import episode_clock, plot_evaluation, plot_plan

    clock = episode_clock(result.episodes, result.periods)
    with tempfile.TemporaryDirectory(prefix="servegym-evaluate-") as scratch:
        evaluate_png = plot_evaluation(result.periods, Path(scratch) / "evaluate.png", clock=clock).read_bytes()
        plan_png = plot_plan(result.periods, Path(scratch) / "plan.png", clock=clock).read_bytes()
    contents = {
        "episodes.csv": result.episodes.to_csv(index=False).encode("utf-8"),
        "periods.csv": result.periods.to_csv(index=False).encode("utf-8"),
        "evaluate.png": evaluate_png,
        "plan.png": plan_png,
    }
    return write_file_set(out_dir, {name: contents[name] for name in EVALUATION_FILES}, command=command)
