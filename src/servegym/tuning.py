"""Resumable, seeded Optuna searches: what the tuned rule (``servegym.baselines.runner.tuned_rule``) and the agents'
hyperparameter search (``servegym.agents.hyperparameter_search``) share.

A search keeps its trials in an Optuna journal file, so a killed search resumes where it stopped; the journal
records a fingerprint of the search's settings, and a journal of other settings is refused. Each trial's sampler is
a TPE seeded from (search seed, trial index): TPE fits on the history alone, so a resumed search draws what the
uninterrupted one would have drawn. optuna is imported inside the functions (it is an optional extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from servegym.errors import MissingDependencyError, UsageError


def require_optuna(what: str) -> Any:
    """The ``optuna`` module; raises :class:`MissingDependencyError` naming ``what`` needs it."""
    try:
        import optuna
    except ModuleNotFoundError:
        raise MissingDependencyError(
            f"{what} needs optuna: pip install 'servegym[tune]' (or pip install optuna)"
        ) from None
    return optuna


def open_study(journal: Path | str | None, name: str, direction: str, fingerprint: str, *, fresh_hint: str) -> Any:
    """The study ``name`` of ``journal`` (in memory when None), created or resumed.

    Its fingerprint is recorded on creation and checked on resume; trials a killed search left running are marked
    failed (their index is drawn again).

    Raises:
        UsageError: The journal holds a search with another fingerprint (``fresh_hint`` says how to start over).
    """
    optuna = require_optuna("a tuning search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = None
    if journal is not None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True, direction=direction)
    recorded = study.user_attrs.get("fingerprint")
    if recorded is not None and recorded != fingerprint:
        raise UsageError(
            f"journal {journal} holds a search with other settings ({recorded}); resume it with those settings, or "
            f"start a fresh journal ({fresh_hint})"
        )
    study.set_user_attr("fingerprint", fingerprint)
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.RUNNING:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return study


def completed_trials(study: Any) -> list[Any]:
    """The study's completed trials, in the order they finished."""
    from optuna.trial import TrialState

    return [t for t in study.trials if t.state == TrialState.COMPLETE]


def is_waiting(study: Any) -> bool:
    """True when the study holds an enqueued trial not yet asked for (a killed search may leave its next one)."""
    from optuna.trial import TrialState

    return any(t.state == TrialState.WAITING for t in study.trials)


def seed_sampler(study: Any, seed: int, index: int) -> None:
    """Give ``study`` the TPE sampler of trial ``index`` of a search seeded ``seed``."""
    from optuna.samplers import TPESampler

    study.sampler = TPESampler(seed=int(np.random.SeedSequence([seed, index]).generate_state(1)[0]))
