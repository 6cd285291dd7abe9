"""Hyperparameter search for the learned agents (issue #14, item 5): Optuna TPE over a documented space, each trial a
short training run judged on the validation day, the defaults as trial 0, resumable, deterministic per seed.

One trial is one :func:`servegym.agents.train.train` run of the base :class:`TrainConfig` with the trial's
hyperparameters (the other settings: env, action, step budget, training seed, vectorisation, stay the base's),
in ``OUT/trials/trial-NNN``. Its objective is the mean validation reward of the run's last
:data:`OBJECTIVE_EVALUATIONS` evaluations (deterministic policy on the validation day, every ``eval_freq`` steps):
the leaderboard ships each run's final model, and the mean of the last evaluations judges where a run ends rather
than its luckiest evaluation. One training seed's objective is a noisy sample, so the best few trials and the
defaults (:func:`finalists_of`) are trained again at other training seeds (:func:`rerun_finalists`) and the choice
is the finalist of highest mean objective (:func:`chosen_trial`). Test days are never played here.

The spaces (:data:`SEARCH_SPACES`) take their ranges from rl-zoo3's samplers (``rl_zoo3.hyperparams_opt``:
``sample_ppo_params``, ``sample_sac_params``), narrowed so that a few dozen short trials can cover them: roll-outs of
1–4 k steps over 8 envs, as the defaults' 2 k, instead of up to 32 k; network widths 64–256; and every default value
is in its space, so trial 0 (the defaults, enqueued) is a point of the search. Each trial's sampler is a TPE seeded
from (seed, trial index), so a killed search resumed from its journal (``OUT/journal.log``, Optuna's journal storage)
draws what the uninterrupted one would have drawn, and a trial killed mid-run resumes its own run folder from its
latest checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from servegym.agents.train_config import DEFAULT_HYPERPARAMETERS, TrainConfig
from servegym.errors import UsageError
from servegym.tuning import completed_trials, is_waiting, open_study, require_optuna, seed_sampler

OBJECTIVE_EVALUATIONS = 3
"""Validation evaluations at the end of a trial's run whose mean reward is its objective."""
NET_ARCHS: Mapping[str, list[int]] = {"64x64": [64, 64], "128x128": [128, 128], "256x256": [256, 256]}
"""Hidden layers (actor and critic each) by the name the search draws."""

Space = Mapping[str, tuple[str, Any]]
"""Hyperparameter → (``log`` with (low, high), ``uniform`` with (low, high), or ``choice`` with a list of values)."""

_PPO_SPACE: Space = {
    "learning_rate": ("log", (3e-5, 1e-3)),
    "n_steps": ("choice", [128, 192, 256, 512]),
    "batch_size": ("choice", [64, 128, 256, 512]),
    "n_epochs": ("choice", [3, 5, 10]),
    "gamma": ("choice", [0.95, 0.98, 0.99, 0.995]),
    "gae_lambda": ("choice", [0.9, 0.95, 0.98]),
    "clip_range": ("choice", [0.1, 0.2, 0.3]),
    "ent_coef": ("choice", [0.0, 1e-4, 1e-3]),
    "policy_kwargs.log_std_init": ("uniform", (-2.0, 0.0)),
    "policy_kwargs.net_arch": ("choice", list(NET_ARCHS)),
}
_SAC_SPACE: Space = {
    "learning_rate": ("log", (3e-5, 1e-3)),
    "batch_size": ("choice", [64, 128, 256, 512]),
    "gamma": ("choice", [0.95, 0.98, 0.99, 0.995]),
    "tau": ("choice", [0.002, 0.005, 0.01, 0.02]),
    "train_freq": ("choice", [1, 2, 4, 8]),
    "policy_kwargs.net_arch": ("choice", list(NET_ARCHS)),
}
SEARCH_SPACES: Mapping[str, Space] = {"ppo": _PPO_SPACE, "recurrent_ppo": _PPO_SPACE, "sac": _SAC_SPACE}
"""Algorithm → its space; ``policy_kwargs.K`` entries go into ``policy_kwargs`` (merged with the defaults', so
recurrent PPO keeps its LSTM width). Only Box-action algorithms: the ``scaled`` and ``headroom`` actions."""


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial.

    Attributes:
        number: Index of the trial in the search (0 = the defaults).
        source: ``defaults`` or ``search``.
        drawn: The values drawn, under the names of the space.
        hyperparameters: The overrides the run trained with (``TrainConfig.hyperparameters``).
        validation_timesteps: Step count of each validation evaluation.
        validation_rewards: Mean reward of each evaluation.
        objective: Mean of the last :data:`OBJECTIVE_EVALUATIONS` rewards.
        wall_s: Seconds the run took in the session that finished it.
    """

    number: int
    source: str
    drawn: dict[str, Any]
    hyperparameters: dict[str, Any]
    validation_timesteps: list[int]
    validation_rewards: list[float]
    objective: float
    wall_s: float


def search_space(algo: str) -> Space:
    """The space of ``algo``; raises :class:`UsageError` naming the algorithms that have one."""
    if algo not in SEARCH_SPACES:
        raise UsageError(f"no hyperparameter search space for algo {algo!r}; allowed: {sorted(SEARCH_SPACES)}")
    return SEARCH_SPACES[algo]


def objective_of(rewards: list[float] | tuple[float, ...]) -> float:
    """Mean of the last :data:`OBJECTIVE_EVALUATIONS` validation rewards (all of them when fewer)."""
    if not rewards:
        raise UsageError("a trial's run made no validation evaluation: raise total_timesteps above eval_freq")
    return float(np.mean(rewards[-OBJECTIVE_EVALUATIONS:]))


def hyperparameters_of(drawn: Mapping[str, Any], algo: str, action: str) -> dict[str, Any]:
    """The ``TrainConfig.hyperparameters`` of values ``drawn`` (space names): ``policy_kwargs.K`` entries merged into
    the defaults' ``policy_kwargs``, net-architecture names resolved by :data:`NET_ARCHS`."""
    overrides: dict[str, Any] = {}
    policy_kwargs = dict(DEFAULT_HYPERPARAMETERS[(algo, action)].get("policy_kwargs", {}))
    for name, value in drawn.items():
        if name.startswith("policy_kwargs."):
            key = name.removeprefix("policy_kwargs.")
            policy_kwargs[key] = list(NET_ARCHS[value]) if key == "net_arch" else value
        else:
            overrides[name] = value
    if any(name.startswith("policy_kwargs.") for name in drawn):
        overrides["policy_kwargs"] = policy_kwargs
    return overrides


def default_draw(algo: str, action: str) -> dict[str, Any]:
    """The defaults (``DEFAULT_HYPERPARAMETERS``) under the names of the space, for trial 0.

    Raises:
        UsageError: A default is outside its space (the space must contain the defaults).
    """
    defaults = DEFAULT_HYPERPARAMETERS[(algo, action)]
    arch_names = {tuple(v): k for k, v in NET_ARCHS.items()}
    drawn: dict[str, Any] = {}
    for name, (kind, domain) in search_space(algo).items():
        if name.startswith("policy_kwargs."):
            value = defaults["policy_kwargs"][name.removeprefix("policy_kwargs.")]
            if name.endswith("net_arch"):
                value = arch_names.get(tuple(value), value)
        else:
            value = defaults[name]
        inside = value in domain if kind == "choice" else domain[0] <= value <= domain[1]
        if not inside:
            raise UsageError(f"default {name} = {value!r} of ({algo}, {action}) is outside its search space {domain}")
        drawn[name] = value
    return drawn


def _suggest(trial: Any, space: Space) -> dict[str, Any]:
    drawn: dict[str, Any] = {}
    for name, (kind, domain) in space.items():
        if kind == "choice":
            drawn[name] = trial.suggest_categorical(name, list(domain))
        else:
            drawn[name] = trial.suggest_float(name, domain[0], domain[1], log=kind == "log")
    return drawn


def _fingerprint(base: TrainConfig, seed: int) -> str:
    """What a journal's trials depend on: the base run's settings but its folder, the space and the sampler seed."""
    settings = {k: v for k, v in base.to_dict().items() if k != "out_dir"}
    space = {name: [kind, list(domain)] for name, (kind, domain) in search_space(base.algo).items()}
    return json.dumps({"base": settings, "space": space, "seed": seed, "objective": OBJECTIVE_EVALUATIONS})


def tune_hyperparameters(
    base: TrainConfig,
    trials: int,
    out_dir: Path | str,
    *,
    seed: int = 0,
    train_fn: Callable[[TrainConfig], Any] | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> list[TrialRecord]:
    """Search ``trials`` hyperparameter sets for ``base`` (see the module docstring); returns every trial, in order.

    Args:
        base: The run every trial trains (its ``out_dir`` and ``hyperparameters`` are replaced per trial).
        trials: Number of trials, the defaults included.
        out_dir: Folder of the journal and of the trials' run folders.
        seed: Sampler seed.
        train_fn: The trainer (default :func:`servegym.agents.train.train`), called with each trial's config and
            returning an object with ``validation_timesteps`` and ``validation_rewards``.
        on_trial: Called with each finished trial's record (progress output).

    Raises:
        UsageError: ``trials`` < 1, no space for ``base.algo``, or ``out_dir`` holds a journal of another search.
        MissingDependencyError: optuna is not installed.
    """
    require_optuna("the hyperparameter search")
    if trials < 1:
        raise UsageError(f"tune_hyperparameters: trials = {trials} must be ≥ 1")
    space = search_space(base.algo)
    if train_fn is None:
        from servegym.agents.train import train as train_fn
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(
        out / "journal.log",
        "hyperparameters",
        "maximize",
        _fingerprint(base, seed),
        fresh_hint="--fresh or another --work",
    )

    def record_of(index: int, t: Any) -> TrialRecord:
        return TrialRecord(number=index, **json.loads(t.user_attrs["record"]))

    for index in range(len(completed_trials(study)), trials):
        if index == 0 and not is_waiting(study):
            study.enqueue_trial(default_draw(base.algo, base.action), user_attrs={"source": "defaults"})
        seed_sampler(study, seed, index)
        trial = study.ask()
        drawn = _suggest(trial, space)
        hyperparameters = {**base.hyperparameters, **hyperparameters_of(drawn, base.algo, base.action)}
        run_dir = out / "trials" / f"trial-{index:03d}"
        config = dataclasses.replace(base, out_dir=str(run_dir), hyperparameters=hyperparameters)
        timesteps, rewards, wall_s = _run(config, train_fn)
        record = {
            "source": trial.user_attrs.get("source", "search"),
            "drawn": drawn,
            "hyperparameters": hyperparameters,
            "validation_timesteps": timesteps,
            "validation_rewards": rewards,
            "objective": objective_of(rewards),
            "wall_s": wall_s,
        }
        trial.set_user_attr("record", json.dumps(record))
        study.tell(trial, record["objective"])
        if on_trial is not None:
            on_trial(record_of(index, trial))
    return [record_of(index, t) for index, t in enumerate(completed_trials(study)[:trials])]


def _run(config: TrainConfig, train_fn: Callable[[TrainConfig], Any]) -> tuple[list[int], list[float], float]:
    """(validation timesteps, rewards, wall s) of ``config``'s run: read from its folder's ``result.json`` when
    the folder holds that run finished, else trained (a folder of another run is discarded first: it is the
    search's own scratch, and its journal or report is the record)."""
    run_dir = Path(config.out_dir)
    saved, result_file = run_dir / "config.json", run_dir / "result.json"
    same = saved.is_file() and json.loads(saved.read_text()).get("train") == config.to_dict()
    if same and result_file.is_file():
        result = json.loads(result_file.read_text())
        return result["validation_timesteps"], result["validation_rewards"], 0.0
    if saved.is_file() and not same:
        shutil.rmtree(run_dir)
    started = time.perf_counter()
    result = train_fn(config)
    rewards = [float(r) for r in result.validation_rewards]
    return [int(s) for s in result.validation_timesteps], rewards, round(time.perf_counter() - started, 1)


def best_trial(records: list[TrialRecord]) -> TrialRecord:
    """The trial with the highest objective (the earliest of equals)."""
    return max(records, key=lambda r: (r.objective, -r.number))


def finalists_of(records: list[TrialRecord], count: int) -> list[TrialRecord]:
    """The ``count`` trials of highest objective, and the defaults (trial 0) among them whatever their rank."""
    ranked = sorted(records, key=lambda r: (-r.objective, r.number))[:count]
    return ranked if any(r.number == 0 for r in ranked) else [*ranked, records[0]]


def rerun_finalists(
    base: TrainConfig,
    finalists: list[TrialRecord],
    train_seeds: list[int],
    out_dir: Path | str,
    *,
    train_fn: Callable[[TrainConfig], Any] | None = None,
    on_run: Callable[[int, int, float], None] | None = None,
) -> dict[int, dict[int, float]]:
    """Train each finalist's hyperparameters again at ``train_seeds`` (the search trained them at ``base.seed``
    only; one training seed's objective is a noisy sample) in ``OUT/finalists/trial-NNN-sS``; returns
    trial number → {training seed → objective}, the search's own seed included. A finished run is read back, so
    a killed re-run resumes; ``on_run(number, seed, objective)`` is called after each run."""
    if train_fn is None:
        from servegym.agents.train import train as train_fn
    objectives: dict[int, dict[int, float]] = {}
    for record in finalists:
        objectives[record.number] = {base.seed: record.objective}
        for seed in train_seeds:
            if seed == base.seed:
                continue
            run_dir = Path(out_dir) / "finalists" / f"trial-{record.number:03d}-s{seed}"
            config = dataclasses.replace(base, out_dir=str(run_dir), seed=seed, hyperparameters=record.hyperparameters)
            _, rewards, _ = _run(config, train_fn)
            objectives[record.number][seed] = objective_of(rewards)
            if on_run is not None:
                on_run(record.number, seed, objectives[record.number][seed])
    return objectives


def chosen_trial(objectives: Mapping[int, Mapping[int, float]]) -> int:
    """The finalist with the highest mean objective over its training seeds (the lower number of equals)."""
    return max(objectives, key=lambda n: (float(np.mean(list(objectives[n].values()))), -n))
