"""Experiment configs, the results store, sweeps on the local and Ray backends, reports."""

import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pandas as pd
import pytest
from sweep_configs import TINY

from servegym.cli import main
from servegym.envs.settings import scenario_instance
from servegym.experiments import (
    CellState,
    ConfigError,
    ResultStore,
    ScenarioConfig,
    load_config,
    plan_cells,
    run_cell,
    run_sweep,
    write_report,
)
from servegym.experiments.cells import TIMING_COLUMNS, TrainingCell
from servegym.experiments.report import REPORT_FILES
from servegym.traces import TEST_DAYS

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    return str(error.value).replace(str(path), "FILE")


def mtimes(store: ResultStore) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in store.cells_dir.iterdir()}


@pytest.mark.parametrize("name", ["sweep-small.toml", "sweep-paper-stress.toml", "scenarios-stress.toml"])
def test_config__shipped_configs_load(name):
    config = load_config(REPO / "configs" / name)
    assert config.scenarios or config.sweep


def test_config__sweep_expands_days_and_cells(tmp_path):
    text = TINY.replace("seeds = [0, 1]", 'seeds = [0, 1]\ndays = ["test", "2024-05-12-sun"]')
    config = load_config(write(tmp_path, text))
    assert config.sweep.days == (*TEST_DAYS, "2024-05-12-sun")
    cells = plan_cells(config)
    assert len(cells) == 2 * 3 * 2
    assert len({cell.key for cell in cells}) == len(cells)


def test_config__unknown_key_names_the_key_table_and_allowed_keys(tmp_path):
    message = config_error(tmp_path, TINY.replace("policies =", "polices ="))
    assert message == "FILE: [sweep] unknown key 'polices'; allowed keys: policies, scenarios, seeds, days"
    message = config_error(tmp_path, TINY.replace('scenario = "toy"', 'scenario = "toy"\nbudget = 3'))
    assert message.startswith("FILE: [scenarios.toy-1h] unknown key 'budget'; allowed keys: env_id, scenario, demand")
    message = config_error(tmp_path, "nmae = 'x'\n")
    assert message == "FILE: unknown key 'nmae'; allowed keys: name, include, scenarios, sweep, training"


def test_config__bad_policy_names_the_allowed_policies(tmp_path):
    message = config_error(tmp_path, TINY.replace('"gh-static"', '"gh-statc"'))
    assert message.startswith("FILE: [sweep] policies: 'gh-statc' not allowed; allowed values: gh-rolling, agh-rolling")
    assert message.endswith("milp-adaptive, tuned-rule, gh-mix, agh-mix, tuned-mix, random")


def test_config__bad_day_names_the_allowed_days(tmp_path):
    message = config_error(tmp_path, TINY.replace("seeds = [0, 1]", 'days = ["monday"]'))
    assert message == (
        "FILE: [sweep] days: 'monday' is not an Azure day; allowed values: test, train, all, 2024-05-12-sun, "
        "2024-05-13-mon, 2024-05-14-tue, 2024-05-15-wed, 2024-05-16-thu, 2024-05-17-fri, 2024-05-18-sat"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("delay_inflation = 0.5", "FILE: [scenarios.toy-1h] delay_inflation = 0.5 outside allowed range [1, inf)"),
        ("sigma = -0.1", "FILE: [scenarios.toy-1h] sigma = -0.1 outside allowed range [0, inf)"),
        ("max_unmet_fraction = 2", "FILE: [scenarios.toy-1h] max_unmet_fraction = 2 outside allowed range [0, 1]"),
        ("budget_scale = 0", "FILE: [scenarios.toy-1h] budget_scale = 0 outside allowed range (0, inf)"),
        ("sigma = 'high'", "FILE: [scenarios.toy-1h] sigma = 'high' must be a number"),
        ("max_candidates = 2.5", "FILE: [scenarios.toy-1h] max_candidates = 2.5 must be an integer"),
        (
            "forecaster = 'arima'",
            "FILE: [scenarios.toy-1h] forecaster = 'arima' not allowed; allowed values: holt-winters, seasonal-naive, "
            "profile-naive, ewma",
        ),
        ("models = ['GPT-5']", "FILE: [scenarios.toy-1h] models: 'GPT-5' not allowed; allowed values: Llama-3.2-1B"),
        ("period_minutes = 7", "FILE: [scenarios.toy-1h] period_minutes = 7 must divide 1440; allowed values: 1, 2, 3"),
        (
            "horizon_hours = 0.1",
            "FILE: [scenarios.toy-1h] horizon_hours = 0.1 must be a positive multiple of the period (15 minutes)",
        ),
    ],
)
def test_config__bad_value_names_key_value_and_range(tmp_path, line, expected):
    text = TINY.replace("horizon_hours = 1.0", line if line.startswith("horizon") else f"horizon_hours = 1.0\n{line}")
    assert config_error(tmp_path, text).startswith(expected)


def test_config__structural_errors_are_clear(tmp_path):
    assert config_error(tmp_path, "[sweep\n").startswith("FILE: invalid TOML: ")
    assert config_error(tmp_path, TINY.replace('policies = ["gh-static", "random"]', "")) == (
        "FILE: [sweep] missing required key 'policies'"
    )
    assert config_error(tmp_path, TINY.replace('scenarios = ["toy-1h"]', 'scenarios = ["toy"]')).startswith(
        "FILE: [sweep] scenarios: 'toy' is neither a [scenarios.*] table (defined: toy-1h) nor an environment id"
    )
    assert config_error(tmp_path, TINY.replace("seeds = [0, 1]", "seeds = 3")) == (
        "FILE: [sweep] seeds = 3 must be a non-empty list of integers"
    )
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.toml")


def test_config__include_adds_scenarios_from_another_file(tmp_path):
    write(tmp_path, '[scenarios.stress]\nenv_id = "servegym/ProvisioningStressSevere-v3"\n', "scenarios.toml")
    config = load_config(write(tmp_path, 'include = ["scenarios.toml"]\n' + TINY))
    assert set(config.scenarios) == {"stress", "toy-1h"}
    assert config.scenarios["stress"].delay_inflation == 1.5


def test_config__training_section_is_validated(tmp_path):
    training = """
[[training]]
name = "ppo-toy"
scenario = "toy-1h"
algorithm = "maskable-ppo"
total_timesteps = 1000
seeds = [0, 1, 2]
hyperparameters = { learning_rate = 0.0003, net_arch = [64, 64] }
"""
    config = load_config(write(tmp_path, TINY + training))
    (run,) = config.training
    assert run.seeds == (0, 1, 2) and dict(run.hyperparameters)["net_arch"] == [64, 64]
    cells = [cell for cell in plan_cells(config) if isinstance(cell, TrainingCell)]
    assert len(cells) == 3 and cells[0].config()["scenario"]["horizon_hours"] == 1.0
    message = config_error(tmp_path, TINY + training.replace("1000", "0"))
    assert message == "FILE: [training.0] total_timesteps = 0 outside allowed range [1, inf)"
    message = config_error(tmp_path, TINY + training.replace("seeds", "epochs = 3\nseeds"))
    assert message == (
        "FILE: [training.0] unknown key 'epochs'; allowed keys: "
        "name, scenario, algorithm, total_timesteps, seeds, hyperparameters"
    )
    message = config_error(tmp_path, TINY + training.replace('"toy-1h"', '"toy-2h"'))
    assert message.startswith("FILE: [training.0] scenario: 'toy-2h' is neither a [scenarios.*] table")


def test_cells__training_cell_without_the_agents_trainer_fails_clearly(tmp_path, monkeypatch):
    text = TINY + '[[training]]\nname = "a"\nscenario = "toy-1h"\nalgorithm = "ppo"\ntotal_timesteps = 10\n'
    cell = next(c for c in plan_cells(load_config(write(tmp_path, text))) if isinstance(c, TrainingCell))
    monkeypatch.setitem(sys.modules, "servegym.agents.train", None)
    with pytest.raises(RuntimeError, match=r"training cells need servegym\.agents\.train \(install the rl extra\)"):
        run_cell(cell, tmp_path)


def test_cells__a_training_cell_calls_the_trainer_and_is_merged_into_training_csv(tmp_path, monkeypatch):
    text = TINY + '[[training]]\nname = "a"\nscenario = "toy-1h"\nalgorithm = "ppo"\ntotal_timesteps = 10\n'
    cell = next(c for c in plan_cells(load_config(write(tmp_path, text))) if isinstance(c, TrainingCell))
    calls = []

    def train_from_config(config, out_dir):
        calls.append((config, out_dir))
        return {"mean_reward": -1.5, "curve": [1, 2]}

    trainer = types.SimpleNamespace(train_from_config=train_from_config)
    monkeypatch.setitem(sys.modules, "servegym.agents.train", trainer)
    store = ResultStore(tmp_path / "store")
    store.write(cell.key, cell.config(), run_cell(cell, store.work_dir(cell.key)))
    ((config, out_dir),) = calls
    assert config == cell.config() and out_dir.is_dir()
    training = pd.read_csv(store.merge().training_path)
    assert training.loc[0, "mean_reward"] == -1.5 and training.loc[0, "curve"] == "[1,2]"


def test_scenario__overrides_change_the_instance(tmp_path):
    text = """
[scenarios.paper-small]
env_id = "servegym/ProvisioningPaper-v3"
models = ["Llama-3.1-8B", "Qwen2.5-32B"]
gpus = ["A100-80GB", "H100-SXM"]
budget_scale = 2.0
delay_slo_scale = 0.9
error_slo_scale = 1.5
max_unmet_fraction = 0.0
"""
    config = load_config(write(tmp_path, text)).scenarios["paper-small"]
    from servegym.envs.scenarios import make_instance

    base, instance = make_instance("paper"), scenario_instance(config)
    assert {c.model for c in instance.configurations} == {"Llama-3.1-8B", "Qwen2.5-32B"}
    assert {c.gpu for c in instance.configurations} == {"A100-80GB", "H100-SXM"}
    assert instance.budget_per_hour == pytest.approx(2.0 * base.budget_per_hour)
    assert instance.delay_slo_s == pytest.approx(0.9 * base.delay_slo_s)
    assert instance.error_slo == pytest.approx(1.5 * base.error_slo)
    assert not instance.max_unmet_fraction.any()
    assert ScenarioConfig.from_dict(config.to_dict()) == config
    env = config.make_env()
    assert env.unwrapped.instance.budget_per_hour == pytest.approx(instance.budget_per_hour)
    assert env.unwrapped.period_minutes == 5


def test_sweep__a_catalog_subset_the_scenario_lacks_fails_before_any_cell(tmp_path):
    text = TINY.replace('scenario = "toy"', 'scenario = "paper"\nmodels = ["Qwen2.5-7B"]')
    config = load_config(write(tmp_path, text))
    store = ResultStore(tmp_path / "store")
    with pytest.raises(ConfigError) as error:
        run_sweep(config, store, workers=1, progress=False)
    assert str(error.value).startswith(
        f"{config.path}: [scenarios.toy-1h] models: ['Qwen2.5-7B'] not in scenario 'paper'; allowed: ['Llama-3.2-1B'"
    )
    assert not store.keys()


def test_sweep__a_cell_limit_then_a_rerun_computes_each_cell_once(tmp_path):
    config = load_config(write(tmp_path, TINY))
    store = ResultStore(tmp_path / "store")
    first = run_sweep(config, store, workers=1, max_cells=3, progress=False)
    assert (first.executed, first.already_finished, first.not_started) == (3, 0, 1)
    assert first.merge.finished == 3
    before = mtimes(store)
    second = run_sweep(config, store, workers=2, progress=False)
    assert (second.executed, second.already_finished, second.not_started) == (1, 3, 0)
    after = mtimes(store)
    assert all(after[name] == stamp for name, stamp in before.items())
    assert len(after) == 8
    assert all(store.check(key).state == CellState.FINISHED for key in second.keys)
    third = run_sweep(config, store, workers=1, progress=False)
    assert (third.executed, third.already_finished) == (0, 4)
    assert len(pd.read_csv(third.merge.results_path)) == 4


def test_sweep__killed_midway_resumes_without_recomputing_finished_cells(tmp_path):
    text = TINY.replace("horizon_hours = 1.0", "horizon_hours = 6.0").replace(
        '["gh-static", "random"]', '["gh-rolling"]'
    )
    path = write(tmp_path, text.replace("seeds = [0, 1]", f"seeds = {list(range(8))}"))
    store = ResultStore(tmp_path / "store")
    command = [sys.executable, "-m", "servegym", "sweep", str(path), "--workers", "1", "--store", str(store.root)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60.0
        while len(list(store.cells_dir.glob("*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finished = {p.stem for p in store.cells_dir.glob("*.json")}
    assert 2 <= len(finished) < 8
    before = mtimes(store)
    outcome = run_sweep(load_config(path), store, workers=2, progress=False)
    assert outcome.already_finished == len(finished)
    assert outcome.executed == 8 - len(finished)
    after = mtimes(store)
    assert all(after[f"{key}.csv"] == before[f"{key}.csv"] for key in finished)
    assert outcome.merge.finished == 8 and not outcome.merge.corrupt


def test_store__a_truncated_cell_is_detected_rerun_and_never_merged(tmp_path):
    config = load_config(write(tmp_path, TINY))
    store = ResultStore(tmp_path / "store")
    outcome = run_sweep(config, store, workers=1, progress=False)
    truncated, orphan = outcome.keys[0], outcome.keys[1]
    data = store.csv_path(truncated).read_bytes()
    store.csv_path(truncated).write_bytes(data[: len(data) // 2])
    store.meta_path(orphan).unlink()
    check = store.check(truncated)
    assert check.state == CellState.CORRUPT and check.reason.startswith("checksum mismatch")
    assert store.check(orphan).reason == f"partial cell: {orphan}.csv without {orphan}.json"
    with pytest.warns(UserWarning, match=r"results\.csv: rewritten with 2 rows, 4 before; damaged cells: "):
        merge = store.merge()
    assert {c.key for c in merge.corrupt} == {truncated, orphan}
    merged = pd.read_csv(merge.results_path)
    assert len(merged) == 2 and not merged["cell"].isin([truncated, orphan]).any()
    rerun = run_sweep(config, store, workers=1, progress=False)
    assert {c.key for c in rerun.rerun_corrupt} == {truncated, orphan}
    assert (rerun.executed, rerun.already_finished) == (2, 2)
    assert store.check(truncated).state == CellState.FINISHED
    pd.testing.assert_frame_equal(
        pd.read_csv(rerun.merge.results_path).drop(columns=list(TIMING_COLUMNS)),
        pd.read_csv(outcome.merge.results_path).drop(columns=list(TIMING_COLUMNS)),
    )


@pytest.mark.ray
def test_sweep__local_and_ray_backends_give_identical_records(tmp_path):
    ray = pytest.importorskip("ray")
    config = load_config(write(tmp_path, TINY))
    local = run_sweep(config, ResultStore(tmp_path / "local"), workers=2, progress=False)
    remote = run_sweep(config, ResultStore(tmp_path / "ray"), backend="ray", workers=2, progress=False)
    assert not ray.is_initialized()  # the sweep started a local cluster and shut it down
    assert remote.executed == local.executed == 4
    pd.testing.assert_frame_equal(
        pd.read_csv(local.merge.results_path).drop(columns=list(TIMING_COLUMNS)),
        pd.read_csv(remote.merge.results_path).drop(columns=list(TIMING_COLUMNS)),
    )


def test_report__writes_the_standard_figures_and_tables(tmp_path):
    config = load_config(write(tmp_path, TINY))
    store = ResultStore(tmp_path / "store")
    run_sweep(config, store, workers=1, progress=False)
    paths = write_report(store, tmp_path / "report")
    assert [p.name for p in paths] == list(REPORT_FILES)
    assert all(p.stat().st_size > 0 for p in paths)
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert set(summary["policy"]) == {"gh-static", "random"} and set(summary["cells"]) == {2}
    assert "| scenario | policy | cells | cost_mean | cost_std |" in (tmp_path / "report" / "summary.md").read_text()


def test_cli__sweep_then_report(tmp_path, capsys):
    path = write(tmp_path, TINY)
    store = tmp_path / "store"
    assert main(["sweep", str(path), "--workers", "1", "--store", str(store), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "4 cells: 0 already finished, 4 run" in out and "gh-static" in out
    assert main(["report", str(store), "--out", str(tmp_path / "figures")]) == 0
    assert (tmp_path / "figures" / "cost_by_policy.png").exists()
    assert main(["sweep", str(write(tmp_path, TINY.replace("policies", "polices"), "bad.toml"))]) == 2
    assert "servegym sweep: error: " in capsys.readouterr().err
    assert main(["sweep", str(path), "--address", "auto"]) == 2
