"""Score trained models on the held-out Azure test days against a reference policy and the oracle.

For every run folder, :func:`score` plays the model, the reference policy (default ``agh-static``), rolling AGH
and the oracle on each test day × episode seed with :func:`servegym.baselines.runner.episodes.evaluate`, on the env id
and keywords the model was trained with. Each episode row gets the normalised score

    100 · (C_ref − C_policy) / (C_ref − C_oracle)

with the costs of the reference and the oracle *on the same episode*: 0 is the reference, 100 the oracle,
negative is worse than the reference. Where the oracle is not cheaper than the reference (until its schedule was
polished in the environment, Drift's 2024-05-16-thu/s2, where the environment's error-blind router filled the MILP's
schedule badly) the scale is undefined: the episode's score is NaN, and the summaries' scores are means over the
other episodes (``scored_episodes``), their costs over all. :func:`summarise` aggregates over episodes
and over training seeds (runs that share a label).

The oracle is the perfect-foresight MILP of ``servegym.baselines.milp.oracle``, machine-independent: an episode with a
shipped reference (``servegym.agents.oracle_references``, solved to a proven gap under a deterministic work
limit) replays the shipped schedule, and the replay must cost what the file records; any other episode is solved
fresh under the same stopping rule, with an :class:`OracleNotice`. ``recompute_oracle`` solves every episode
fresh and checks the fresh cost against the shipped reference within the proven gaps. Every row names the
reference, the oracle, the oracle's source (``shipped``, ``fresh``, ``recomputed`` or ``baseline`` for another
policy as the 100 point) and how far it may lie above the MILP's proven lower bound (``oracle_gap``). Without the
oracle module scoring stops with an error naming it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from servegym.agents.train_config import TrainConfig, resolved_env_kwargs
from servegym.baselines.runner.episodes import PolicySpec, evaluate
from servegym.baselines.runner.policies import Policy
from servegym.envs.outcome import COST_PARTS
from servegym.envs.protocol import PROTOCOL
from servegym.errors import MissingDependencyError, ServegymError
from servegym.traces import TEST_DAYS

if TYPE_CHECKING:  # the oracle's modules load only when the oracle is used (_require_oracle)
    from servegym.agents.oracle_references import EpisodeOracle, ReferenceOraclePolicy, ReferenceSet

ORACLE = "oracle"
ORACLE_MODULE = "servegym.baselines.milp.oracle"
DEFAULT_REFERENCE = "agh-static"
DEFAULT_BASELINES = (
    "tuned-rule",
    "tuned-mix",
    "agh-mix",
    "agh-quantile-hold",
    "gh-adaptive",
    "agh-rolling",
    "gh-rolling",
    "agh-hold",
    "gh-hold",
)
"""Baselines scored beside the agents by default: the tuned rule, the mix rule (the ``scaled`` action space at a
constant action, tuned and untuned: what an agent on that space gains over them is what it learned), the cheapest
untuned rules of the test episodes (the default re-planner ``agh-quantile-hold``; ``gh-adaptive`` under drift,
docs/benchmark.md), re-planning every period, and with switching hysteresis."""
SCORE_COLUMNS = (
    "policy",
    "kind",
    "run_dir",
    "training_seed",
    "env_id",
    "env_settings",
    "day",
    "seed",
    "total_cost",
    *COST_PARTS,
    "delay_violation_rate",
    "error_violation_rate",
    "unserved_rate",
    "slo_violation_rate",
    "gpu_hours",
    "normalised_score",
    "reference",
    "oracle",
    "oracle_source",
    "oracle_gap",
)
"""Columns of :func:`score`: one row per (policy, episode); ``kind`` is ``agent``, ``reference``, ``baseline`` or
``oracle``; ``run_dir`` and ``training_seed`` are empty for non-agents; ``env_settings`` is the JSON of the env
keywords and instance overrides the models were trained with (``{}`` for the id's defaults); costs in $ over the
episode; ``reference`` and ``oracle`` name the policies scoring 0 and 100, ``oracle_source`` where the episode's
oracle came from (``shipped``, ``fresh``, ``recomputed``, or ``baseline`` when another policy scores 100) and
``oracle_gap`` how far the oracle played may lie above the cheapest schedule the environment can run,
(oracle cost − the MILP's proven lower bound) / oracle cost (NaN for a baseline)."""
SUMMARY_COLUMNS = (
    "policy",
    "kind",
    "env_id",
    "env_settings",
    "runs",
    "episodes",
    "scored_episodes",
    "score",
    "score_std",
    "score_seed_std",
    "score_ci_low",
    "score_ci_high",
    "score_iqm",
    "cost",
    "cost_std",
    "slo_violation_rate",
    "delay_violation_rate",
    "unserved_rate",
    "gpu_hours",
    "reference",
    "oracle",
    "oracle_source",
    "oracle_gap_max",
)
"""Columns of :func:`summarise`: ``score`` the mean normalised score and ``cost`` the mean total cost ($ per
episode) over episodes, ``*_std`` their standard deviation over episodes; for agents, ``score_seed_std`` is the
standard deviation of the per-run mean scores over training seeds (NaN with fewer than two runs),
``score_ci_low`` / ``score_ci_high`` a 95 % percentile bootstrap interval of their mean (two or more runs; scipy,
:data:`BOOTSTRAP_RESAMPLES` resamples, seeded) and ``score_iqm`` their interquartile mean (five or more runs, as
rliable reports it); the violation rates are request-weighted means over episodes; ``reference`` and ``oracle``
name the 0 and 100 policies, ``oracle_source`` the oracle sources of the episodes with their counts (e.g.
``shipped×6`` or ``shipped×4+fresh×2``) and ``oracle_gap_max`` the largest ``oracle_gap`` among them."""
BOOTSTRAP_RESAMPLES = 10_000
"""Resamples of the bootstrap interval over training seeds."""
BOOTSTRAP_SEED = 0
"""Seed of the bootstrap resampling (the interval is reproducible)."""


def seed_statistics(per_run: np.ndarray) -> tuple[float, float, float]:
    """(95 % bootstrap interval low, high, interquartile mean) of per-run mean scores; NaN where too few runs
    (interval: < 2, IQM: < 5)."""
    from scipy import stats

    values = np.asarray(per_run, dtype=float)
    low = high = iqm = math.nan
    if len(values) >= 2:
        if np.ptp(values) == 0.0:
            low = high = float(values[0])
        else:
            interval = stats.bootstrap(
                (values,),
                np.mean,
                n_resamples=BOOTSTRAP_RESAMPLES,
                confidence_level=0.95,
                method="percentile",
                random_state=np.random.default_rng(BOOTSTRAP_SEED),
            ).confidence_interval
            low, high = float(interval.low), float(interval.high)
    if len(values) >= 5:
        iqm = float(stats.trim_mean(values, 0.25))
    return low, high, iqm


class ScoreError(ServegymError, ValueError):
    """Scoring cannot produce a normalised score (e.g. the reference costs as much as the oracle)."""


class OracleNotice(UserWarning):
    """An episode's oracle is solved fresh (no shipped reference fits it): minutes per episode."""


def normalised_score(c_ref: float, c_agent: float, c_oracle: float) -> float:
    """``100 · (c_ref − c_agent) / (c_ref − c_oracle)``: 0 at the reference's cost, 100 at the oracle's; NaN where
    the oracle is not cheaper than the reference (``c_oracle ≥ c_ref``), where the scale is undefined or inverted
    (an oracle dearer than static AGH, as Drift's unpolished oracle once was, would rank a policy 20 times the
    reference's cost far above the oracle). Summaries leave such episodes out of the score and
    keep them in the costs.

    Raises:
        ScoreError: A cost is not finite.
    """
    if not all(np.isfinite(c) for c in (c_ref, c_agent, c_oracle)):
        raise ScoreError(f"costs must be finite, got c_ref={c_ref}, c_agent={c_agent}, c_oracle={c_oracle}")
    if c_oracle >= c_ref:
        return math.nan
    # Ratio first, so that the oracle scores exactly 100; + 0.0 turns the reference's −0.0 into 0.0.
    return 100.0 * ((c_ref - c_agent) / (c_ref - c_oracle)) + 0.0


def _require_oracle(oracle: str) -> None:
    if oracle == ORACLE and importlib.util.find_spec(ORACLE_MODULE) is None:
        raise MissingDependencyError(
            f"scoring needs the oracle policy from {ORACLE_MODULE} (make_policy('oracle', env)), which is not "
            "installed; pass another --oracle policy to score against it instead"
        )


def env_settings(config: TrainConfig) -> str:
    """Canonical JSON of a run's env keywords and instance overrides (``{}`` for the env id's defaults)."""
    return json.dumps({**config.env_kwargs, **config.instance_overrides}, sort_keys=True)


def _group_key(config: TrainConfig) -> str:
    """Runs with equal env id, keywords and instance overrides are played on the same episodes."""
    return json.dumps([config.env_id, config.env_kwargs, config.instance_overrides], sort_keys=True)


def score(
    model_paths: Sequence[Path | str],
    days: Sequence[str] | None = None,
    reference: str = DEFAULT_REFERENCE,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    demand: str | None = None,
    oracle: str = ORACLE,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    which: str = "final",
    progress: bool = False,
    recompute_oracle: bool = False,
    references: ReferenceSet | None = None,
) -> pd.DataFrame:
    """Play models and baselines on the test days and score them against ``reference`` and ``oracle``.

    Args:
        model_paths: Run folders written by ``servegym train``. Runs trained on different env settings are
            scored separately, each with its own reference and oracle episodes.
        days: Azure days to play; None: the test episodes of the setting's protocol (``servegym.envs.protocol``:
            the held-out Azure days, or the setting's own synthetic demand); ignored when ``demand`` is given.
        demand: A demand source spec (e.g. ``trace:PATH?split=test``) to play instead of Azure days; the runs'
            query types must match the instance it gives (``types=total`` drives them by the trace's total load).
        reference: Baseline policy name that scores 0.
        seeds: Episode seeds (demand noise, randomised planners).
        oracle: Policy that scores 100: the perfect-foresight oracle by default; another baseline name makes
            the score relative to that policy instead.
        baselines: Further baseline policies to play and score.
        which: ``final`` or ``best`` model of each run.
        progress: Show a progress bar.
        recompute_oracle: Solve the oracle of every episode fresh (under the shipped stopping rule) and check it
            against the shipped reference where there is one.
        references: Oracle references to use; None: the shipped file (``load_references()``). Only read when
            ``oracle == "oracle"``.

    Returns:
        One row per (policy, episode) with :data:`SCORE_COLUMNS`.

    Raises:
        MissingDependencyError: ``oracle == "oracle"`` and ``servegym.baselines.milp.oracle`` is missing (a
            ``ModuleNotFoundError``).
        ScoreError: No run folder given, or the oracle costs no less than the reference on every episode of a
            setting (the score is undefined; an episode where it does gets a NaN score).
        ReferenceFileError: The references file is damaged (the message names the file and the field).
        ReferenceMismatchError: A shipped schedule replays to another cost than recorded, or (with
            ``recompute_oracle``) a fresh oracle cost lies outside the shipped reference's proven gap.
        RunFolderError: A run folder is incomplete or holds a pickled normaliser; every folder is checked before
            any episode is played.
    """
    from servegym.agents.adapter import check_run_folder, sb3_policy_factory

    _require_oracle(oracle)
    if not model_paths:
        raise ScoreError("score: give at least one run folder")
    if oracle == ORACLE and references is None:
        from servegym.agents.oracle_references import load_references

        references = load_references()
    groups: dict[str, list[tuple[Path, TrainConfig]]] = {}
    for path in model_paths:
        config, _, _ = check_run_folder(path, which)
        groups.setdefault(_group_key(config), []).append((Path(path), config))
    tables = []
    for runs in groups.values():
        config = runs[0][1]
        others = {name: "baseline" for name in baselines if name not in (reference, oracle)}
        kinds = {reference: "reference", oracle: "oracle", **others}
        policies: dict[str, PolicySpec] = {name: name for name in kinds}
        test_days = None if demand is not None else protocol_test_days(config, days)
        oracles: list[ReferenceOraclePolicy] = []
        if oracle == ORACLE:
            policies[oracle] = _oracle_factory(
                config, references, test_days, seeds, demand=demand, recompute=recompute_oracle, built=oracles
            )
        agents = {}
        for path, run in runs:
            key = f"{run.label} [{path}]"
            policies[key] = sb3_policy_factory(path, which=which, name=run.label)
            agents[key] = (run.label, str(path), run.seed)
        env_kwargs = resolved_env_kwargs(config)
        if demand is not None:
            env_kwargs.pop("demand", None)
        result = evaluate(
            policies,
            config.env_id,
            days=test_days,
            seeds=list(seeds),
            env_kwargs=env_kwargs,
            demand=demand,
            progress=progress,
        )
        episodes = result.episodes.copy()
        episodes["day"] = episodes["episode"].str.rsplit("/", n=1).str[0]
        episodes["kind"] = [kinds.get(p, "agent") for p in episodes["policy"]]
        episodes["run_dir"] = [agents[p][1] if p in agents else "" for p in episodes["policy"]]
        episodes["training_seed"] = [agents[p][2] if p in agents else pd.NA for p in episodes["policy"]]
        episodes["policy"] = [agents[p][0] if p in agents else p for p in episodes["policy"]]
        episodes["env_id"] = config.env_id
        episodes["env_settings"] = env_settings(config)
        sources = _oracle_sources(episodes, oracle, oracles[0].records if oracles else None, recompute_oracle)
        episodes["reference"] = reference
        episodes["oracle"] = oracle
        episodes["oracle_source"] = [sources[e][0] for e in episodes["episode"]]
        episodes["oracle_gap"] = [sources[e][1] for e in episodes["episode"]]
        by_episode = episodes.set_index(["policy", "episode"])["total_cost"]
        episodes["normalised_score"] = [
            normalised_score(by_episode[(reference, e)], cost, by_episode[(oracle, e)])
            for e, cost in zip(episodes["episode"], episodes["total_cost"], strict=True)
        ]
        if episodes["normalised_score"].isna().all():
            raise ScoreError(
                f"normalised score undefined on every episode of {config.env_id}: the oracle {oracle!r} costs no "
                f"less than the reference {reference!r} on each; choose another reference or oracle policy"
            )
        tables.append(episodes)
    table = pd.concat(tables, ignore_index=True)
    table["training_seed"] = table["training_seed"].astype("Int64")
    return table[list(SCORE_COLUMNS)]


def _oracle_factory(
    config: TrainConfig,
    references: ReferenceSet | None,
    days: Sequence[str] | None,
    seeds: Sequence[int],
    *,
    demand: str | None,
    recompute: bool,
    built: list[ReferenceOraclePolicy],
) -> PolicySpec:
    """The oracle of one group of runs: shipped references of its setting, a notice for every episode without one.

    The policy it builds is appended to ``built`` (evaluation builds it once per group)."""
    from servegym.agents.oracle_references import REFERENCE_RULE, ReferenceOraclePolicy

    settings = env_settings(config)
    shipped = [r for r in references or () if r.env_id == config.env_id and r.env_settings == settings]
    episodes = [(day, seed) for day in (days or [None]) for seed in seeds]
    label = f"{config.env_id} {settings}"
    if demand is not None:
        missing = [f"demand {demand}"]
    else:
        found = {(r.day, r.seed) for r in shipped}
        missing = [f"{day or 'own demand'}/s{seed}" for day, seed in episodes if (day, seed) not in found]
    if missing and not recompute:
        where = (references.path if references is not None else "") or "no references file"
        warnings.warn(
            f"score: no shipped oracle reference ({where}) for {label}: {', '.join(missing)}; solving the oracle "
            f"fresh there (proven gap {REFERENCE_RULE.relative_gap:.1%} or {REFERENCE_RULE.node_limit:,} nodes per "
            "solve; minutes per episode)",
            OracleNotice,
            stacklevel=3,
        )

    def make(env: object) -> Policy:
        policy = ReferenceOraclePolicy(env, shipped, recompute=recompute)  # type: ignore[arg-type]
        built.append(policy)
        return policy

    make.__name__ = ORACLE
    return make


def _oracle_sources(
    episodes: pd.DataFrame, oracle: str, records: list[EpisodeOracle] | None, recompute: bool
) -> dict[str, tuple[str, float]]:
    """Episode label → (oracle source, gap of the played oracle to the proven bound), after checking every shipped
    replay and recomputed solve.

    Raises:
        ReferenceMismatchError: see :func:`score`.
    """
    from servegym.agents.oracle_references import REFERENCE_RULE, check_fresh, check_replay

    rows = episodes[episodes["policy"] == oracle]
    if records is None:
        return {label: ("baseline", math.nan) for label in rows["episode"]}
    sources = {}
    for label, cost, record in zip(rows["episode"], rows["total_cost"], records, strict=True):
        if record.source == "shipped":
            check_replay(record.reference, float(cost))
        elif record.source == "recomputed" and recompute:
            check_fresh(record.reference, float(cost), record.gap, REFERENCE_RULE.relative_gap)
        sources[label] = (record.source, record.played_gap(float(cost)))
    return sources


def protocol_test_days(config: TrainConfig, days: Sequence[str] | None) -> list[str] | None:
    """``days``, or the test days of the run's setting (None for a setting without days: its own demand, e.g.
    synthetic, or a run trained on its own ``demand`` keyword)."""
    if days is not None:
        return list(days)
    if "demand" in config.env_kwargs:
        return None
    protocol = PROTOCOL.get(config.env_id)
    if protocol is None:
        return list(TEST_DAYS)
    test_days = [options["day"] for _, options in protocol.test if "day" in options]
    return list(dict.fromkeys(test_days)) or None


def oracle_source_label(sources: pd.Series) -> str:
    """The oracle sources of some episodes with their counts, e.g. ``shipped×4+fresh×2``."""
    counts = sources.value_counts(sort=False)
    return "+".join(f"{source}×{count}" for source, count in counts.items())


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """Means and spreads per (policy, env id, env settings) of a :func:`score` table, best score first."""
    rows = []
    for (policy, env_id, settings), group in scores.groupby(["policy", "env_id", "env_settings"], sort=False):
        per_run = group.groupby("run_dir")["normalised_score"].mean()
        is_agent = group["kind"].iloc[0] == "agent"
        ci_low, ci_high, iqm = seed_statistics(per_run.to_numpy()) if is_agent else (math.nan,) * 3
        rows.append(
            {
                "policy": policy,
                "kind": group["kind"].iloc[0],
                "env_id": env_id,
                "env_settings": settings,
                "runs": int(group["run_dir"].nunique()) if is_agent else 0,
                "episodes": len(group),
                "scored_episodes": int(group["normalised_score"].notna().sum()),
                "score": group["normalised_score"].mean(),
                "score_std": group["normalised_score"].std(ddof=0),
                "score_seed_std": per_run.std(ddof=1) if is_agent and len(per_run) > 1 else math.nan,
                "score_ci_low": ci_low,
                "score_ci_high": ci_high,
                "score_iqm": iqm,
                "cost": group["total_cost"].mean(),
                "cost_std": group["total_cost"].std(ddof=0),
                "slo_violation_rate": group["slo_violation_rate"].mean(),
                "delay_violation_rate": group["delay_violation_rate"].mean(),
                "unserved_rate": group["unserved_rate"].mean(),
                "gpu_hours": group["gpu_hours"].mean(),
                "reference": group["reference"].iloc[0],
                "oracle": group["oracle"].iloc[0],
                "oracle_source": oracle_source_label(group["oracle_source"]),
                "oracle_gap_max": group["oracle_gap"].max(),
            }
        )
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    order = ["env_id", "env_settings", "score"]
    return summary.sort_values(order, ascending=[True, True, False], ignore_index=True)
