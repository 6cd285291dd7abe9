"""The agents' hyperparameter search (issue #14, item 5): the defaults are trial 0 and a point of every space,
draws are deterministic per seed, a killed search resumes to the uninterrupted one's trials, and a real trial
trains with what was drawn."""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from servegym.agents.hyperparameter_search import (
    OBJECTIVE_EVALUATIONS,
    SEARCH_SPACES,
    best_trial,
    chosen_trial,
    default_draw,
    finalists_of,
    hyperparameters_of,
    objective_of,
    rerun_finalists,
    tune_hyperparameters,
)
from servegym.agents.train_config import ALGORITHMS, DEFAULT_HYPERPARAMETERS, TrainConfig
from servegym.errors import UsageError

pytest.importorskip("optuna")


@dataclass(frozen=True)
class _FakeResult:
    validation_timesteps: tuple[int, ...]
    validation_rewards: tuple[float, ...]


class _FakeTrainer:
    """A trainer whose validation rewards are a smooth function of the learning rate (best at 1e-4); it can be told
    to die (as a killed process would) on a given call."""

    def __init__(self, die_on_call: int | None = None) -> None:
        self.calls: list[TrainConfig] = []
        self.die_on_call = die_on_call

    def __call__(self, config: TrainConfig) -> _FakeResult:
        self.calls.append(config)
        if self.die_on_call is not None and len(self.calls) == self.die_on_call:
            raise KeyboardInterrupt("killed")
        score = -((math.log10(config.hyperparameters["learning_rate"]) + 4.0) ** 2)
        return _FakeResult((1, 2, 3, 4), (score - 3.0, score - 2.0, score - 1.0, score))


def _base(tmp_path: Path, algo: str = "ppo") -> TrainConfig:
    return TrainConfig(out_dir=str(tmp_path / "base"), algo=algo, action="scaled", total_timesteps=1024)


@pytest.mark.parametrize("algo", sorted(SEARCH_SPACES))
@pytest.mark.parametrize("action", ["scaled", "headroom"])
def test_the_defaults_are_a_point_of_the_space_and_give_back_the_defaults(algo: str, action: str) -> None:
    assert action in ALGORITHMS[algo]
    defaults = DEFAULT_HYPERPARAMETERS[(algo, action)]
    overrides = hyperparameters_of(default_draw(algo, action), algo, action)
    assert {**defaults, **overrides} == dict(defaults)  # every drawn default equals the default it overrides
    if algo == "recurrent_ppo":
        assert overrides["policy_kwargs"]["lstm_hidden_size"] == defaults["policy_kwargs"]["lstm_hidden_size"]


def test_objective_is_the_mean_of_the_last_evaluations() -> None:
    assert OBJECTIVE_EVALUATIONS == 3
    assert objective_of([-9.0, -1.0, -2.0, -3.0]) == pytest.approx(-2.0)
    assert objective_of([-4.0]) == -4.0
    with pytest.raises(UsageError, match="no validation evaluation"):
        objective_of([])


def test_search_starts_with_the_defaults_and_is_deterministic_per_seed(tmp_path: Path) -> None:
    runs = []
    for folder in ("a", "b"):
        trainer = _FakeTrainer()
        records = tune_hyperparameters(_base(tmp_path), 5, tmp_path / folder, seed=3, train_fn=trainer)
        runs.append([(r.drawn, r.objective) for r in records])
        assert records[0].source == "defaults" and all(r.source == "search" for r in records[1:])
        assert records[0].drawn == default_draw("ppo", "scaled")
        assert [Path(c.out_dir).name for c in trainer.calls] == [f"trial-{i:03d}" for i in range(5)]
        assert records[0].objective == pytest.approx(-((math.log10(3e-4) + 4.0) ** 2) - 1.0)
    assert runs[0] == runs[1]
    other = tune_hyperparameters(_base(tmp_path), 5, tmp_path / "c", seed=4, train_fn=_FakeTrainer())
    assert [r.drawn for r in other][1:] != [d for d, _ in runs[0]][1:]
    assert best_trial(other).objective == max(r.objective for r in other)


def test_finalists_are_the_best_and_the_defaults_and_the_choice_is_the_best_mean(tmp_path: Path) -> None:
    records = tune_hyperparameters(_base(tmp_path), 6, tmp_path / "s", seed=0, train_fn=_FakeTrainer())
    finalists = finalists_of(records, 2)
    ranked = sorted(records, key=lambda r: -r.objective)
    assert [r.number for r in finalists[:2]] == [r.number for r in ranked[:2]]
    assert any(r.number == 0 for r in finalists) and len(finalists) == (2 if ranked[1].number == 0 else 3)
    trainer = _FakeTrainer()
    objectives = rerun_finalists(_base(tmp_path), finalists, [0, 5], tmp_path / "s", train_fn=trainer)
    assert sorted(objectives) == sorted(r.number for r in finalists)
    assert all(sorted(by_seed) == [0, 5] for by_seed in objectives.values())  # seed 0 is the search's own run
    assert [Path(c.out_dir).name for c in trainer.calls] == [f"trial-{r.number:03d}-s5" for r in finalists]
    assert all(c.seed == 5 for c in trainer.calls)
    assert chosen_trial({3: {0: -1.0, 1: -3.0}, 4: {0: -2.5, 1: -1.0}, 5: {0: -1.75, 1: -2.25}}) == 4
    assert chosen_trial({3: {0: -2.0}, 1: {0: -2.0}}) == 1


def test_a_killed_search_resumes_to_the_uninterrupted_trials(tmp_path: Path) -> None:
    whole = tune_hyperparameters(_base(tmp_path), 5, tmp_path / "whole", seed=0, train_fn=_FakeTrainer())
    with pytest.raises(KeyboardInterrupt):
        tune_hyperparameters(_base(tmp_path), 5, tmp_path / "killed", seed=0, train_fn=_FakeTrainer(die_on_call=3))
    resumed_trainer = _FakeTrainer()
    resumed = tune_hyperparameters(_base(tmp_path), 5, tmp_path / "killed", seed=0, train_fn=resumed_trainer)
    assert [(r.drawn, r.objective) for r in resumed] == [(r.drawn, r.objective) for r in whole]
    assert [Path(c.out_dir).name for c in resumed_trainer.calls] == ["trial-002", "trial-003", "trial-004"]


def test_a_journal_of_another_search_is_refused(tmp_path: Path) -> None:
    tune_hyperparameters(_base(tmp_path), 1, tmp_path / "s", seed=0, train_fn=_FakeTrainer())
    with pytest.raises(UsageError, match="other settings"):
        tune_hyperparameters(_base(tmp_path), 2, tmp_path / "s", seed=1, train_fn=_FakeTrainer())


def test_bad_arguments_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="trials = 0"):
        tune_hyperparameters(_base(tmp_path), 0, tmp_path / "s", train_fn=_FakeTrainer())
    native = TrainConfig(out_dir=str(tmp_path / "n"), algo="maskable_ppo", action="native")
    with pytest.raises(UsageError, match="no hyperparameter search space for algo 'maskable_ppo'"):
        tune_hyperparameters(native, 1, tmp_path / "n", train_fn=_FakeTrainer())


def test_a_real_trial_trains_with_what_was_drawn(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    base = TrainConfig(
        out_dir=str(tmp_path / "base"),
        algo="ppo",
        action="scaled",
        total_timesteps=1024,
        n_envs=2,
        vec_env="dummy",
        eval_freq=256,
        checkpoint_freq=1024,
        env_kwargs={"horizon_hours": 2.0},
    )
    records = tune_hyperparameters(base, 2, tmp_path / "search", seed=0)
    for record in records:
        saved = json.loads((tmp_path / "search" / "trials" / f"trial-{record.number:03d}" / "config.json").read_text())
        resolved = saved["hyperparameters_resolved"]
        assert {key: resolved[key] for key in record.hyperparameters} == record.hyperparameters
        assert len(record.validation_rewards) >= 1 and math.isfinite(record.objective)


def _script() -> Any:
    path = Path(__file__).resolve().parents[1] / "scripts" / "tune_hyperparameters.py"
    spec = importlib.util.spec_from_file_location("tune_hyperparameters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_names_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _script()
    with pytest.raises(SystemExit):
        script.main(["--finalist-seeds", "1,x"])
    assert "'x' is not an integer; expected comma-separated integers >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--finalist-seeds", "1,-2"])
    assert "seed -2 is negative" in capsys.readouterr().err
    assert script.seed_list("") == [] and script.seed_list("2,0") == [2, 0]
    assert script.main(["--algo", "maskable_ppo", "--action", "native", "--work", str(tmp_path / "w")]) == 2
    assert "no hyperparameter search space for algo 'maskable_ppo'" in capsys.readouterr().err
    assert script.main(["--algo", "sac", "--action", "native", "--work", str(tmp_path / "w")]) == 2
    assert "action 'native' not supported by sac" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_script_writes_the_report_and_the_train_command(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    script = _script()
    args = ["--trials", "2", "--timesteps", "512", "--eval-freq", "256", "--n-envs", "2", "--headroom-planner", "gh"]
    args += [
        "--finalists",
        "1",
        "--finalist-seeds",
        "1",
        "--work",
        str(tmp_path / "w"),
        "--out",
        str(tmp_path / "o"),
        "--no-docs",
    ]
    assert script.main(args) == 0
    report = json.loads((tmp_path / "o" / "tune.json").read_text())
    assert [t["number"] for t in report["all_trials"]] == [0, 1]
    assert report["finalist_seeds"] == [0, 1] and "0" in report["finalists"]
    chosen = report["best"]["number"]
    assert report["best"]["hyperparameters"] == report["all_trials"][chosen]["hyperparameters"]
    assert f"--hyperparameters '{json.dumps(report['best']['hyperparameters'])}'" in report["train_command"]
    assert "Finalists trained again" in (tmp_path / "o" / "tune.md").read_text()
