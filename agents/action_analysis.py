"""What learned agents do, period by period, against the rules they are scored beside (issue #14, item 8).

:func:`record_setting` plays a setting's agents (run folders), a no-learning control and the rules on the
setting's test episodes through the one evaluation loop (``servegym.baselines.runner.episodes.evaluate``), and
records every decision: the replica counts of each configuration and, for agents acting through
``HeadroomAction`` or ``ScaledPlanAction``, what the action meant (multipliers per query type, the keep margin or
payback horizon, the mix level; ``SB3Policy.decision_record``).

The controls are the mix rule of ``servegym.baselines.runner.mix_rule``, the agents' own ``scaled`` action space
played with one constant action (:func:`controls_for`): ``<planner>-mix`` at every multiplier 1 and keep margin 0
(the same reference mixes, mix levels, cold-start rules and repair as the agents', with nothing learned), and
``tuned-mix``, its constant action tuned per setting on the tuning and validation episodes. An agent's saving over
a rule therefore splits into what the action space gives (rule − control) and what training adds (control − agent).

:func:`fleet`, :func:`policy_table`, :func:`paired_differences`, :func:`decision_table` and :func:`mix_levels`
turn a record into the tables of ``scripts/analyse_agent_actions.py``: cost parts and fleet per policy
(GPU-hours and rental by GPU type and by model, $ per GPU-hour, replica starts), paired differences of the agents
against each rule and control, and the agents' decisions (mean multiplier per query type and per 6-hour block of
the day, how often a bound binds, keep margin, mix levels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from servegym.agents.train_config import TrainConfig, resolved_env_kwargs
from servegym.baselines.runner.episodes import PolicySpec, evaluate
from servegym.baselines.runner.mix_rule import TUNED_MIX
from servegym.baselines.runner.policies import Policy, make_policy
from servegym.envs.instance import Instance
from servegym.envs.outcome import COST_PARTS
from servegym.envs.provisioning import ProvisioningEnv
from servegym.errors import UsageError

DEFAULT_RULES = ("agh-quantile-hold", "tuned-rule", "agh-static", "gh-adaptive")
"""Rules the agents are compared with by default: the cheapest rule on the default setting, the tuned-rule bar,
the score's reference (the cheapest rule on Volatile) and the cheapest on Drift."""
BLOCK_HOURS = 6.0
"""Width of the time-of-day blocks the agents' decisions are averaged over, hours."""
BOUND_TOLERANCE = 1e-4
"""A multiplier within this of a bound of its range counts as at the bound."""


def controls_for(configs: Sequence[TrainConfig]) -> list[str]:
    """The mix-rule baselines that play the ``scaled`` runs' action space with a constant action: ``<planner>-mix``
    for each mix planner of the runs and, when AGH's mixes are among them, ``tuned-mix`` (tuned with AGH's);
    none without ``scaled`` runs."""
    planners = sorted({config.headroom_planner for config in configs if config.action == "scaled"})
    return [f"{planner}-mix" for planner in planners] + ([TUNED_MIX] if "agh" in planners else [])


class RecordingPolicy:
    """Plays ``policy`` and keeps, per episode, each period's replica counts and ``decision_record()`` (if any)."""

    def __init__(self, policy: Policy) -> None:
        self.inner = policy
        self.name = policy.name
        self.episodes: list[list[dict[str, Any]]] = []

    @property
    def fallbacks(self) -> int:
        """The played policy's fallbacks."""
        return int(self.inner.fallbacks)

    def reset(self, seed: int | None = None) -> None:
        """Reset the played policy and start a new episode's record."""
        self.inner.reset(seed)
        self.episodes.append([])

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """The played policy's replicas, recorded with its decision."""
        replicas = np.asarray(self.inner.act(obs, info), dtype=np.int64)
        decision = getattr(self.inner, "decision_record", dict)()
        self.episodes[-1].append({"period": int(info["period"]), "replicas": replicas.copy(), **decision})
        return replicas


@dataclass(frozen=True)
class AgentRun:
    """A run folder and its configuration."""

    path: Path
    config: TrainConfig


@dataclass(frozen=True)
class SettingRecord:
    """A setting's record: ``episodes`` (one row per policy and episode, the evaluation loop's columns plus
    ``label``, ``kind`` and ``training_seed``), ``periods`` (the evaluation loop's per-period rows: costs,
    demand, GPUs per type), ``decisions`` (one row per policy, episode and period:
    ``replicas`` (C,) and the decision entries), the setting's ``instance`` and the multiplier range of each
    label that acts by multipliers."""

    env_id: str
    instance: Instance
    episodes: pd.DataFrame
    periods: pd.DataFrame
    decisions: pd.DataFrame
    multiplier_bounds: dict[str, tuple[float, float]]


def record_setting(
    runs: Sequence[AgentRun],
    rules: Sequence[str] = DEFAULT_RULES,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    days: Sequence[str] | None = None,
    progress: bool = False,
) -> SettingRecord:
    """Play ``runs`` (one env setting), their controls (:func:`controls_for`) and ``rules`` on the setting's test
    episodes, recording every decision.

    Args:
        runs: Run folders of one env id and env settings (``servegym.agents.scoring`` groups them alike).
        rules: Baseline policy names.
        seeds: Episode seeds.
        days: Azure days; None: the setting's protocol test episodes (``scoring.protocol_test_days``).
        progress: Show a progress bar.

    Raises:
        UsageError: No run, or runs of different env ids or env settings.
    """
    from servegym.agents.adapter import SB3Policy
    from servegym.agents.scoring import env_settings, protocol_test_days

    if not runs:
        raise UsageError("record_setting: give at least one run folder")
    first = runs[0].config
    settings = {(run.config.env_id, env_settings(run.config)) for run in runs}
    if len(settings) > 1:
        raise UsageError(f"record_setting: runs of one env setting only, got {sorted(settings)}")
    recorders: dict[str, RecordingPolicy] = {}
    instances: list[Instance] = []

    def recorded(name: str, build: Any) -> PolicySpec:
        def factory(env: ProvisioningEnv) -> RecordingPolicy:
            instances.append(env.instance)
            recorders[name] = RecordingPolicy(build(env))
            return recorders[name]

        return factory

    policies: dict[str, PolicySpec] = {}
    kinds: dict[str, tuple[str, str, int | None]] = {}  # name -> (label, kind, training seed)
    bounds: dict[str, tuple[float, float]] = {}
    for run in runs:
        key = f"{run.config.label} [{run.path}]"
        policies[key] = recorded(key, lambda env, run=run: SB3Policy(env, run.path, name=run.config.label))
        kinds[key] = (run.config.label, "agent", run.config.seed)
        if run.config.action in ("scaled", "headroom"):
            bounds[run.config.label] = (run.config.headroom_low, run.config.headroom_high)
    for control in controls_for([run.config for run in runs]):
        policies[control] = recorded(control, lambda env, control=control: make_policy(control, env))
        kinds[control] = (control, "control", None)
    for rule in (rule for rule in rules if rule not in policies):
        policies[rule] = recorded(rule, lambda env, rule=rule: make_policy(rule, env))
        kinds[rule] = (rule, "rule", None)
    result = evaluate(
        policies,
        first.env_id,
        days=protocol_test_days(first, days),
        seeds=list(seeds),
        env_kwargs=resolved_env_kwargs(first),
        progress=progress,
    )
    episodes = result.episodes.copy()
    episodes["label"] = [kinds[p][0] for p in episodes["policy"]]
    episodes["kind"] = [kinds[p][1] for p in episodes["policy"]]
    episodes["training_seed"] = pd.array([kinds[p][2] for p in episodes["policy"]], dtype="Int64")
    rows = []
    for name, recorder in recorders.items():
        labels = episodes.loc[episodes["policy"] == name, "episode"].tolist()
        for label, periods in zip(labels, recorder.episodes, strict=True):
            rows += [{"policy": name, "episode": label, **period} for period in periods]
    return SettingRecord(first.env_id, instances[0], episodes, result.periods, pd.DataFrame(rows), bounds)


def hour_of_day(periods: pd.Series | np.ndarray, period_hours: float) -> np.ndarray:
    """Start of each period in hours after 00:00 of its day (episodes start at 00:00)."""
    return np.mod(np.asarray(periods, dtype=float) * period_hours, 24.0)


def fleet(record: SettingRecord) -> pd.DataFrame:
    """Per policy and episode, from the recorded replicas: GPU-hours and rental ($) by GPU type, GPU-hours by
    model, and ``rental_recorded`` (their rental total, which equals the episode's ``rental`` unless the env
    repaired a decision)."""
    inst = record.instance
    gpu_hours_per_replica = np.asarray(inst.gpus_per_replica, dtype=float) * inst.period_hours
    rows = []
    for (policy, episode), group in record.decisions.groupby(["policy", "episode"], sort=False):
        replica_periods = np.sum(np.stack(group["replicas"].to_numpy()), axis=0)
        gpu_hours = replica_periods * gpu_hours_per_replica
        by_gpu = np.bincount(inst.config_gpu, weights=gpu_hours, minlength=len(inst.gpus))
        by_model = np.bincount(inst.config_model, weights=gpu_hours, minlength=len(inst.models))
        rental = by_gpu * inst.gpu_price_per_hour
        rows.append(
            {
                "policy": policy,
                "episode": episode,
                **{f"gpu_hours[{gpu}]": float(v) for gpu, v in zip(inst.gpus, by_gpu, strict=True)},
                **{f"rental[{gpu}]": float(v) for gpu, v in zip(inst.gpus, rental, strict=True)},
                **{f"model_gpu_hours[{model}]": float(v) for model, v in zip(inst.models, by_model, strict=True)},
                "rental_recorded": float(np.sum(rental)),
            }
        )
    return pd.DataFrame(rows)


def policy_table(record: SettingRecord) -> pd.DataFrame:
    """One row per label (agents averaged over training seeds and episodes, the others over episodes): day cost
    and its parts ($), GPU-hours, rental per GPU-hour ($), replica starts and SLO-violation rate, and the fleet
    columns of :func:`fleet`."""
    joined = record.episodes.merge(fleet(record), on=["policy", "episode"], validate="one_to_one")
    numeric = [
        "total_cost",
        *COST_PARTS,
        "gpu_hours",
        "started_replicas",
        "slo_violation_rate",
        *[c for c in joined.columns if c.startswith(("gpu_hours[", "rental[", "model_gpu_hours["))],
    ]
    table = joined.groupby(["label", "kind"], sort=False)[numeric].mean().reset_index()
    table.insert(table.columns.get_loc("gpu_hours") + 1, "rental_per_gpu_hour", table["rental"] / table["gpu_hours"])
    return table.sort_values("total_cost", ignore_index=True)


def paired_differences(record: SettingRecord) -> pd.DataFrame:
    """Each agent label against each rule and the control, paired by episode: the agent's mean over training
    seeds minus the other's cost, per cost part and in total, $ per episode, averaged over episodes; with the
    number of episodes where the agent is cheaper."""
    columns = ["total_cost", *COST_PARTS]
    per_episode = record.episodes.groupby(["label", "kind", "episode"], sort=False)[columns].mean().reset_index()
    agents = per_episode.loc[per_episode["kind"] == "agent", "label"].unique()
    others = per_episode.loc[per_episode["kind"] != "agent", "label"].unique()
    rows = []
    for agent in agents:
        mine = per_episode[per_episode["label"] == agent].set_index("episode")[columns]
        for other in others:
            theirs = per_episode[per_episode["label"] == other].set_index("episode")[columns].loc[mine.index]
            difference = mine - theirs
            rows.append(
                {
                    "agent": agent,
                    "versus": other,
                    "episodes": len(difference),
                    "agent_cheaper": int(np.sum(difference["total_cost"] < 0.0)),
                    **{f"diff_{c}": float(difference[c].mean()) for c in columns},
                }
            )
    return pd.DataFrame(rows)


def decision_table(record: SettingRecord) -> pd.DataFrame:
    """Per label that acts by multipliers (agents and the control) and query type: the mean multiplier over all
    periods and per :data:`BLOCK_HOURS` block of the day, the spread of its per-period values (standard
    deviation), the share of periods at the range's lower and upper bound; type ``keep_margin`` and
    ``payback_periods`` rows give those dimensions' means (no bound shares)."""
    decisions = record.decisions.merge(
        record.episodes[["policy", "episode", "label"]], on=["policy", "episode"], validate="many_to_one"
    )
    hours = hour_of_day(decisions["period"], record.instance.period_hours)
    blocks = np.floor(hours / BLOCK_HOURS).astype(int)
    rows = []
    for label, (low, high) in record.multiplier_bounds.items():
        mine = decisions["label"] == label
        for column in [c for c in decisions.columns if c.startswith("multiplier[")] + [
            "keep_margin",
            "payback_periods",
        ]:
            if column not in decisions.columns or decisions.loc[mine, column].isna().all():
                continue
            values = decisions.loc[mine, column].to_numpy(dtype=float)
            row: dict[str, Any] = {
                "label": label,
                "entry": column,
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
            }
            for block in range(round(24.0 / BLOCK_HOURS)):
                in_block = blocks[mine.to_numpy()] == block
                start = block * BLOCK_HOURS
                key = f"mean {start:02.0f}-{start + BLOCK_HOURS:02.0f} h"
                row[key] = float(np.mean(values[in_block])) if np.any(in_block) else float("nan")
            if column.startswith("multiplier["):
                row["at_low"] = float(np.mean(values <= low + BOUND_TOLERANCE))
                row["at_high"] = float(np.mean(values >= high - BOUND_TOLERANCE))
            rows.append(row)
    return pd.DataFrame(rows)


def mix_levels(record: SettingRecord) -> pd.DataFrame:
    """Share of periods each ``scaled`` label (agents and the control) provisions with each mix level ℓ."""
    if "mix_level" not in record.decisions.columns:
        return pd.DataFrame(columns=["label", "mix_level", "share"])
    decisions = record.decisions.merge(
        record.episodes[["policy", "episode", "label"]], on=["policy", "episode"], validate="many_to_one"
    ).dropna(subset=["mix_level"])
    shares = decisions.groupby("label", sort=False)["mix_level"].value_counts(normalize=True)
    return shares.rename("share").reset_index().sort_values(["label", "mix_level"], ignore_index=True)
