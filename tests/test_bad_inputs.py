"""Bad inputs on every surface fail clearly: exit status 2 (or the documented exception), no traceback, and a
message naming the argument, file, row and field or JSON path.

The file is one table per surface, each row ``(argv or callable, expected fragments)`` with an id; add a row with
every new flag, keyword or file format. Covered elsewhere and not repeated here: catalog CSV rows
(test_custom_catalog.py), instance-file JSON paths (test_instance_file.py), trace format detection and row errors
(test_user_trace.py, test_traces.py), TOML keys and value ranges (test_experiments.py).

Surfaces: the command line (``servegym.cli.main``), the environment API (``gymnasium.make`` keywords, ``reset``
options, ``step`` actions), the trace loaders, TOML configuration files, run folders of ``servegym train`` and the
normalisation statistics in them.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import importlib.util
import io
import json
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from servegym.agents.train_config import RunFolderError, TrainConfig, TrainConfigError, load_run_config, save_run_config
from servegym.baselines.milp.model import build_model
from servegym.baselines.milp.solver import solve as milp_solve
from servegym.cli import main
from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.provisioning import EnvKeywordError
from servegym.envs.toy import toy_instance
from servegym.errors import OutputPathError, ServegymError
from servegym.experiments import ConfigError, ResultStore, load_config, write_report
from servegym.experiments.store import StoreError
from servegym.io import write_file_set
from servegym.traces.azure import MAX_COUNT, TraceFormatError, load_minute_trace, load_request_trace
from servegym.traces.user_trace import load_trace

HAS_RL = all(importlib.util.find_spec(name) is not None for name in ("torch", "stable_baselines3", "sb3_contrib"))
HAS_RAY = importlib.util.find_spec("ray") is not None
NEEDS_RL = pytest.mark.skipif(not HAS_RL, reason="needs the rl extra")
NEEDS_RAY = pytest.mark.skipif(not HAS_RAY, reason="needs the ray extra")
WEEK_ENV_ID = DEFAULT_ENV_ID.replace("Provisioning-", "ProvisioningWeek-")
"""The week-long id of the current version."""
TOY = {"scenario": "toy", "demand": "synthetic", "horizon_hours": 1.0}
"""A fast environment: the hand-made toy instance, synthetic demand, four periods."""

TINY_SWEEP = '[scenarios.toy]\nscenario = "toy"\nhorizon_hours = 1.0\n[sweep]\npolicies = ["gh-static"]\n'
TINY_SWEEP += 'scenarios = ["toy"]\n'
REQUESTS = "timestamp,prompt_tokens,output_tokens\n"
MINUTES = "minute," + ",".join(
    f"{s}_{f}" for s in ("code", "conv") for f in ("requests", "context_tokens", "generated_tokens")
)
FILES: dict[str, str | bytes] = {
    "regular.txt": "a regular file, not a folder\n",
    "plain.md": "# notes without leaderboard markers\n",
    "u16.toml": 'name = "x"\n'.encode("utf-16"),
    "empty.toml": "",
    "traversal.toml": 'name = "../../../x"\n' + TINY_SWEEP,
    "absolute.toml": 'name = "/tmp/x"\n' + TINY_SWEEP,
    "nothing.toml": 'name = "nothing"\n',
    "sweep.toml": 'name = "ok"\n' + TINY_SWEEP,
    "mixed.csv": REQUESTS + "2024-01-01T00:00:00Z,10,20\n2024-01-01 00:01:00,10,20\n",
    "huge.csv": REQUESTS + f"2024-01-01T00:00:00,10,20\n2024-01-01T00:01:00,{2**53 + 1},20\n",
    "total.csv": REQUESTS + "".join(f"2024-01-01T00:0{m}:00,{MAX_COUNT},20\n" for m in range(3)),
    "counts.csv": f"minute,requests\n0,1\n1,{10**20}\n",
    "u16.csv": (REQUESTS + "2024-01-01T00:00:00,10,20\n").encode("utf-16"),
    "broken.csv.gz": b"\x1f\x8b not really gzip",
    "instance.json": "[1, 2]\n",
}
"""Files every case may use, written into the case's working directory (the current directory of the test)."""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory holding :data:`FILES`, an empty ``folder`` and an empty results store."""
    for name, content in FILES.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    (tmp_path / "folder").mkdir()
    (tmp_path / "store" / "cells").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*")}


def cli(case_id: str, argv: str | list[str], *fragments: str, rl: bool = False, ray: bool = False) -> Any:
    """A command-line case: ``argv`` (split on spaces when a string) must exit 2 with one line holding
    ``fragments``."""
    marks = [NEEDS_RL] if rl else []
    marks += [NEEDS_RAY] if ray else []
    return pytest.param(argv.split() if isinstance(argv, str) else argv, fragments, id=case_id, marks=marks)


CLI_CASES = [
    cli("no-command", [], "the following arguments are required: COMMAND"),
    cli("unknown-command", "frobnicate", "invalid choice: 'frobnicate'"),
    cli("describe-top-negative", "describe --top -1", "argument --top", "-1"),
    cli("describe-top-text", "describe --top many", "argument --top", "'many'"),
    cli("describe-seed-negative", "describe --scenario random --seed -3", "argument --seed", "-3"),
    cli("describe-size-two", "describe --scenario random --size 1,2", "--size must be three integers"),
    cli("describe-size-on-paper", "describe --scenario paper --size 2,2,2", "--size applies to the random scenario"),
    cli("describe-scenario-unknown", "describe --scenario mars", "argument --scenario", "'mars'"),
    cli("describe-catalog-missing", "describe --catalog nosuch", "nosuch"),
    cli("describe-catalog-file", "describe --catalog regular.txt", "regular.txt"),
    cli("describe-instance-missing", "describe --instance nosuch.json", "nosuch.json", "no such instance file"),
    cli("describe-instance-folder", "describe --instance folder", "folder"),
    cli("describe-instance-text", "describe --instance regular.txt", "regular.txt", "not valid JSON"),
    cli("describe-instance-list", "describe --instance instance.json", "instance.json", "$"),
    cli("describe-instance-and-catalog", "describe --instance instance.json --catalog folder", "drop --catalog"),
    cli("export-out-missing", "export --scenario toy", "the following arguments are required: --out"),
    cli("export-out-folder", "export --scenario toy --out folder", "--out folder is a folder"),
    cli("export-out-folder-slash", "export --scenario toy --out folder/", "--out folder is a folder"),
    cli("export-out-under-file", "export --scenario toy --out regular.txt/x.json", "regular.txt is a file"),
    cli("export-out-deep-under-file", "export --scenario toy --out regular.txt/a/b.json", "regular.txt is a file"),
    cli("export-out-empty", ["export", "--scenario", "toy", "--out", ""], "--out is empty"),
    cli("export-out-blank", ["export", "--scenario", "toy", "--out", "  "], "--out is empty"),
    cli("solve-method-unknown", "solve --method simplex", "argument --method", "'simplex'"),
    cli("solve-time-limit-text", "solve --time-limit soon", "argument --time-limit", "'soon'"),
    cli("solve-solver-unknown", "solve --scenario toy --method milp --solver GUROBI", "solver 'GUROBI'", "HIGHS"),
    cli("solve-time-limit-zero", "solve --scenario toy --method milp --time-limit 0", "time_limit"),
    cli("solve-mps-under-file", "solve --scenario toy --method milp --export-mps regular.txt/m.mps", "--export-mps"),
    cli(
        "solve-mps-folder", "solve --scenario toy --method milp --export-mps folder", "--export-mps folder is a folder"
    ),
    cli("solve-mps-empty", ["solve", "--scenario", "toy", "--method", "milp", "--export-mps", ""], "--export-mps"),
    cli("evaluate-seeds-negative", "evaluate --seeds=-1", "argument --seeds", "-1"),
    cli("evaluate-seeds-text", "evaluate --seeds a", "argument --seeds", "'a'"),
    cli("evaluate-seeds-empty", ["evaluate", "--seeds", ""], "argument --seeds"),
    cli("evaluate-seeds-float", "evaluate --seeds 0,1.5", "argument --seeds", "'1.5'"),
    cli("evaluate-env-id-unknown", "evaluate --env-id nosuch/Env-v0", "argument --env-id", "nosuch/Env-v0"),
    cli("evaluate-policies-empty", ["evaluate", "--policies", ""], "argument --policies", "no policy given"),
    cli("evaluate-policies-commas", "evaluate --policies ,,", "argument --policies", "no policy given"),
    cli("evaluate-policies-unknown", "evaluate --policies gh-rolling,nosuch", "argument --policies", "'nosuch'"),
    cli("evaluate-policies-bare-sb3", "evaluate --policies sb3:", "argument --policies", "'sb3:'"),
    cli("evaluate-policies-sb3-missing", "evaluate --policies sb3:nosuch", "nosuch/config.json", rl=True),
    cli("evaluate-period-zero", "evaluate --period-minutes 0", "argument --period-minutes", "0"),
    cli("evaluate-period-seven", "evaluate --period-minutes 7", "argument --period-minutes", "7 does not divide 1440"),
    cli("evaluate-period-text", "evaluate --period-minutes quarter", "argument --period-minutes", "'quarter'"),
    cli("evaluate-days-unknown", "evaluate --days monday", "argument --days", "'monday'"),
    cli("evaluate-scenario-unknown", "evaluate --scenario mars", "argument --scenario", "'mars'"),
    cli("evaluate-demand-and-days", "evaluate --demand synthetic --days test", "--demand and --days both given"),
    cli("evaluate-demand-unknown", "evaluate --demand weather --scenario toy", "weather"),
    cli("evaluate-demand-bad-day", "evaluate --demand azure:2024-13-01 --scenario toy", "2024-13-01"),
    cli("evaluate-demand-trace-missing", "evaluate --demand trace:nosuch.csv --scenario toy", "nosuch.csv"),
    cli("evaluate-demand-trace-mixed-tz", "evaluate --demand trace:mixed.csv", "mixed.csv", "UTC offset"),
    cli(
        "evaluate-week-on-one-day",
        f"evaluate --env-id {WEEK_ENV_ID} --demand azure:2024-05-16-thu",
        "demand source 'azure:2024-05-16-thu'",
        "periods",
    ),
    cli("evaluate-out-file", "evaluate --out regular.txt", "--out regular.txt is a file"),
    cli("evaluate-out-under-file", "evaluate --out regular.txt/eval", "regular.txt is a file"),
    cli("evaluate-out-empty", ["evaluate", "--out", ""], "--out is empty"),
    cli("evaluate-catalog-missing", "evaluate --catalog nosuch --policies gh-static", "nosuch"),
    cli("evaluate-instance-missing", "evaluate --instance nosuch.json", "nosuch.json"),
    cli("evaluate-instance-and-catalog", "evaluate --instance instance.json --catalog folder", "drop --scenario"),
    cli("train-algo-unknown", "train --algo dqn", "argument --algo", "'dqn'"),
    cli("train-action-unsupported", "train --algo sac --action native --out run", "action 'native'", rl=True),
    cli("train-timesteps-zero", "train --timesteps 0", "argument --timesteps", "0"),
    cli("train-n-envs-zero", "train --n-envs 0", "argument --n-envs"),
    cli("train-seed-negative", "train --seeds -1", "argument --seeds", "-1"),
    cli("train-seed-alias-negative", "train --seed -1", "argument --seed", "-1"),
    cli("train-seeds-without-placeholder", "train --seeds 0,1 --out runs/x", "--out", "{seed}", rl=True),
    cli("train-torch-threads-zero", "train --torch-threads 0", "argument --torch-threads"),
    cli("train-eval-freq-text", "train --eval-freq often", "argument --eval-freq", "'often'"),
    cli("train-env-kwargs-not-json", "train --env-kwargs {horizon", "argument --env-kwargs", "expected a JSON object"),
    cli("train-env-kwargs-list", "train --env-kwargs [1]", "argument --env-kwargs", "expected a JSON object"),
    cli("train-hyperparameters-list", "train --hyperparameters [1]", "argument --hyperparameters"),
    cli(
        "train-env-kwargs-period",
        ["train", "--out", "run", "--env-kwargs", '{"period_minutes": 7}'],
        "env_kwargs",
        "period_minutes 7",
        rl=True,
    ),
    cli(
        "train-env-kwargs-unknown",
        ["train", "--out", "run", "--env-kwargs", '{"nosuch": 1}'],
        "env_kwargs",
        "'nosuch'",
        "allowed",
        rl=True,
    ),
    cli(
        "train-env-kwargs-horizon-huge",
        ["train", "--out", "run", "--env-kwargs", '{"horizon_hours": 1e9}'],
        "horizon_hours",
        rl=True,
    ),
    cli(
        "train-env-kwargs-horizon-text",
        ["train", "--out", "run", "--env-kwargs", '{"horizon_hours": "24"}'],
        'env_kwargs.horizon_hours = "24" must be a number',
        rl=True,
    ),
    cli(
        "train-env-kwargs-candidates-float",
        ["train", "--out", "run", "--env-kwargs", '{"max_candidates": 8.5}'],
        "env_kwargs.max_candidates = 8.5 must be an integer",
        rl=True,
    ),
    cli(
        "train-env-kwargs-queueing-text",
        ["train", "--out", "run", "--env-kwargs", '{"queueing": "false"}'],
        'env_kwargs.queueing = "false" must be true or false',
        rl=True,
    ),
    cli(
        "train-env-kwargs-instance",
        ["train", "--out", "run", "--env-kwargs", '{"instance": 1}'],
        "'instance' is not JSON",
        rl=True,
    ),
    cli(
        "train-hyperparameters-unknown",
        ["train", "--out", "run", "--hyperparameters", '{"nosuch": 1}'],
        "hyperparameters",
        "'nosuch'",
        "allowed",
        rl=True,
    ),
    cli(
        "train-hyperparameters-reserved",
        ["train", "--out", "run", "--hyperparameters", '{"seed": 1}'],
        "hyperparameters ['seed'] are set by the trainer",
        rl=True,
    ),
    cli(
        "train-hyperparameters-n-steps-zero",
        ["train", "--out", "run", "--hyperparameters", '{"n_steps": 0}'],
        "hyperparameters.n_steps = 0",
        rl=True,
    ),
    cli(
        "train-hyperparameters-gamma",
        ["train", "--out", "run", "--hyperparameters", '{"gamma": 1.5}'],
        "hyperparameters.gamma = 1.5",
        rl=True,
    ),
    cli(
        "train-hyperparameters-rejected-value",
        ["train", "--out", "run", "--hyperparameters", '{"clip_range": "wide"}'],
        "hyperparameters",
        "clip_range",
        rl=True,
    ),
    cli("train-demand-unknown", "train --out run --demand weather", "weather", rl=True),
    cli(
        "train-demand-twice",
        ["train", "--out", "run", "--demand", "synthetic", "--env-kwargs", '{"demand": "synthetic"}'],
        "--demand and --env-kwargs 'demand' both given",
        rl=True,
    ),
    cli("train-catalog-missing", "train --out run --catalog nosuch", "nosuch", rl=True),
    cli("train-headroom-bounds", "train --out run --headroom-low 2 --headroom-high 1", "headroom_low", rl=True),
    cli("train-headroom-nan", "train --out run --headroom-low nan", "headroom_low", rl=True),
    cli("train-slo-price-negative", "train --out run --slo-price -0.5", "slo_price_per_request", "[0, inf)", rl=True),
    cli("train-slo-price-text", "train --out run --slo-price cheap", "argument --slo-price", "'cheap'", rl=True),
    cli("train-payback-negative", "train --out run --headroom-max-payback -1", "headroom_max_payback", rl=True),
    cli("train-resume-nothing", "train --out run --resume", "no checkpoint to resume from", rl=True),
    cli("train-out-file", "train --out regular.txt", "--out regular.txt is a file", rl=True),
    cli("train-out-under-file", "train --out regular.txt/run", "regular.txt is a file", rl=True),
    cli("train-out-empty", ["train", "--out", ""], "--out is empty", rl=True),
    cli("score-model-missing", "score", "the following arguments are required: --model"),
    cli("score-model-not-a-run", "score --model folder", "folder/config.json", "no such file", rl=True),
    cli("score-seeds-negative", "score --model folder --seeds 0,-2", "argument --seeds", "-2"),
    cli("score-reference-unknown", "score --model folder --reference best", "argument --reference", "'best'"),
    cli("score-oracle-unknown", "score --model folder --oracle god", "argument --oracle", "'god'"),
    cli("score-oracle-two", "score --model folder --oracle gh-static,agh-static", "argument --oracle"),
    cli("score-baselines-unknown", "score --model folder --baselines gh-static,x", "argument --baselines", "'x'"),
    cli("score-which-unknown", "score --model folder --which worst", "argument --which", "'worst'"),
    cli("score-days-unknown", "score --model folder --days friday", "argument --days", "'friday'"),
    cli("score-demand-and-days", "score --model folder --demand synthetic --days test", "both given", rl=True),
    cli("score-update-no-markers", "score --model folder --update plain.md", "plain.md", "leaderboard", rl=True),
    cli("score-update-missing", "score --model folder --update nosuch.md", "nosuch.md", "no such file", rl=True),
    cli("score-out-file", "score --model folder --out regular.txt", "--out regular.txt is a file", rl=True),
    cli("sweep-config-missing", "sweep nosuch.toml", "nosuch.toml", "no such configuration file"),
    cli("sweep-config-folder", "sweep folder", "folder", "cannot read the configuration file"),
    cli("sweep-config-utf16", "sweep u16.toml", "u16.toml", "not UTF-8"),
    cli("sweep-name-traversal", "sweep traversal.toml", "name = '../../../x'", "single folder name"),
    cli("sweep-name-absolute", "sweep absolute.toml", "name = '/tmp/x'", "single folder name"),
    cli("sweep-nothing-to-run", "sweep nothing.toml --store out", "nothing.toml", "nothing to run"),
    cli("sweep-backend-unknown", "sweep sweep.toml --backend slurm", "argument --backend", "'slurm'"),
    cli("sweep-address-local", "sweep sweep.toml --store out --address auto", "--address applies to the ray backend"),
    cli("sweep-address-malformed", "sweep sweep.toml --store out --backend ray --address nowhere", "'nowhere'"),
    cli(
        "sweep-address-port-range",
        "sweep sweep.toml --store out --backend ray --address 127.0.0.1:99999",
        "'127.0.0.1:99999'",
    ),
    cli(
        "sweep-address-refused",
        "sweep sweep.toml --store out --backend ray --address 127.0.0.1:1 --no-progress",
        "--address 127.0.0.1:1",
        "no Ray cluster answers",
        ray=True,
    ),
    cli("sweep-workers-zero", "sweep sweep.toml --workers 0", "argument --workers"),
    cli("sweep-max-cells-zero", "sweep sweep.toml --max-cells 0", "argument --max-cells"),
    cli("sweep-store-file", "sweep sweep.toml --store regular.txt", "--store regular.txt is a file"),
    cli("sweep-store-under-file", "sweep sweep.toml --store regular.txt/store", "regular.txt is a file"),
    cli("report-store-missing", "report nosuch", "no results store at nosuch"),
    cli("report-store-file", "report regular.txt", "regular.txt"),
    cli("report-store-empty", "report store", "store", "holds no cells"),
    cli("report-out-file", "report store --out regular.txt", "--out regular.txt is a file"),
    cli("trace-subcommand-missing", "trace", "SUBCOMMAND"),
    cli("trace-mixed-time-zones", "trace inspect mixed.csv", "mixed.csv", "line 3", "timestamp", "UTC offset"),
    cli("trace-token-count-huge", "trace inspect huge.csv", "huge.csv", "line 3", "prompt_tokens", "2**53"),
    cli("trace-token-total-huge", "trace inspect total.csv", "total.csv", "prompt_tokens", "column sums to"),
    cli("trace-count-huge", "trace inspect counts.csv", "counts.csv", "line 3", "requests", "largest count"),
    cli("trace-utf16", "trace inspect u16.csv", "u16.csv", "UTF-8"),
    cli("trace-gzip-broken", "trace inspect broken.csv.gz", "broken.csv.gz"),
    cli("trace-episode-option", "trace inspect mixed.csv?split=test", "options ['split'] choose episodes"),
    cli("trace-option-unknown", "trace inspect mixed.csv?colour=red", "colour"),
    cli("trace-option-malformed", "trace inspect mixed.csv?format", "'format'", "key=value"),
    cli("trace-time-unit-unknown", "trace inspect mixed.csv?time_unit=weeks", "time_unit='weeks'"),
    cli("trace-period-zero", "trace inspect mixed.csv --period-minutes 0", "argument --period-minutes"),
    cli("trace-out-folder", "trace inspect mixed.csv --out folder", "--out folder is a folder"),
    cli("trace-out-under-file", "trace inspect mixed.csv --out regular.txt/t.png", "regular.txt is a file"),
]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and standard error of ``servegym ARGV`` (argparse errors exit through SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("argv", "fragments"), CLI_CASES)
def test_bad_inputs__cli_exits_2_with_one_line_naming_the_input_and_writes_nothing(workdir, capsys, argv, fragments):
    before = _files(workdir)
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("servegym") and ": error: " in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    assert _files(workdir) == before  # nothing written, not even a run folder's config.json


def test_bad_inputs__a_rejected_training_run_leaves_the_folder_free_for_the_corrected_run(workdir, capsys):
    pytest.importorskip("stable_baselines3")
    argv = ["train", "--out", "run", "--timesteps", "8", "--n-envs", "1", "--no-progress", "--eval-freq", "8"]
    argv += ["--checkpoint-freq", "8", "--algo", "ppo", "--action", "delta"]
    hyperparameters = ["--hyperparameters", '{"n_steps": 8, "batch_size": 8}']
    assert run_cli([*argv, "--env-kwargs", '{"period_minutes": 7, "horizon_hours": 2}'], capsys)[0] == 2
    assert not (workdir / "run").exists()
    assert main([*argv, *hyperparameters, "--env-kwargs", '{"period_minutes": 15, "horizon_hours": 2}']) == 0
    assert load_run_config(workdir / "run").env_kwargs == {"period_minutes": 15, "horizon_hours": 2}


@functools.cache
def _toy_env() -> Any:
    return gym.make(DEFAULT_ENV_ID, **TOY).unwrapped


def _reset_toy_env() -> Any:
    env = _toy_env()
    env.reset(seed=0)
    return env


def make(**kwargs: Any) -> Callable[[Path], Any]:
    """``gymnasium.make`` of the default id with ``kwargs`` (gymnasium's own warnings about them silenced)."""

    def call(_: Path) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gym.make(DEFAULT_ENV_ID, **kwargs)

    return call


def reset(**options: Any) -> Callable[[Path], Any]:
    return lambda _: _toy_env().reset(seed=0, options=options)


def step(action: Any) -> Callable[[Path], Any]:
    return lambda _: _reset_toy_env().step(action)


def step_filled(value: Any) -> Callable[[Path], Any]:
    """Step with every replica count set to ``value``."""

    def call(_: Path) -> Any:
        env = _reset_toy_env()
        return env.step(np.full(env.action_space.shape, value))

    return call


def api(case_id: str, call: Callable[[Path], Any], error: type[BaseException], *fragments: str, rl: bool = False):
    """An API case: ``call(working directory)`` must raise ``error`` with a message holding ``fragments``."""
    return pytest.param(call, error, fragments, id=case_id, marks=[NEEDS_RL] if rl else [])


def _write(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def write(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
        return path

    return write


def trace(name: str, content: str | bytes, loader: Callable[[Path], Any] = load_trace) -> Callable[[Path], Any]:
    """Load ``content`` written as ``name`` with ``loader``."""
    return lambda directory: loader(_write(name, content)(directory))


def config(text: str | bytes) -> Callable[[Path], Any]:
    """Load ``text`` as the TOML configuration file ``config.toml``."""
    return lambda directory: load_config(_write("config.toml", text)(directory))


ENV_CASES = [
    api("env-scenario-unknown", make(scenario="mars"), ValueError, "mars"),
    api("env-demand-unknown", make(demand="weather"), ValueError, "weather"),
    api("env-demand-bad-day", make(demand="azure:2024-13-01"), ValueError, "2024-13-01"),
    api("env-demand-trace-missing", make(demand="trace:nosuch.csv"), ValueError, "nosuch.csv"),
    api("env-demand-number", make(demand=3), ValueError, "3"),
    api("env-period-seven", make(period_minutes=7), ValueError, "period_minutes", "7"),
    api("env-period-zero", make(period_minutes=0), ValueError, "period_minutes"),
    api("env-period-text", make(period_minutes="15"), ValueError, "period_minutes", "'15'"),
    api("env-period-bool", make(period_minutes=True), ValueError, "period_minutes"),
    api("env-period-float", make(period_minutes=15.0), ValueError, "period_minutes"),
    api("env-horizon-zero", make(horizon_hours=0.0), ValueError, "horizon_hours"),
    api("env-horizon-negative", make(horizon_hours=-24.0), ValueError, "horizon_hours"),
    api("env-horizon-huge", make(horizon_hours=1e9), ValueError, "horizon_hours", "1000000000"),
    api("env-horizon-nan", make(horizon_hours=float("nan")), ValueError, "horizon_hours"),
    api("env-horizon-inf", make(horizon_hours=float("inf")), ValueError, "horizon_hours"),
    api("env-horizon-text", make(horizon_hours="24"), EnvKeywordError, "horizon_hours '24' must be a number"),
    api("env-horizon-none", make(horizon_hours=None), EnvKeywordError, "horizon_hours None must be a number"),
    api("env-sigma-none", make(sigma=None), EnvKeywordError, "sigma None must be a number"),
    api("env-noise-sigma-list", make(noise_sigma=[0.1]), EnvKeywordError, "noise_sigma [0.1] must be a number"),
    api("env-delay-inflation-text", make(delay_inflation="1.2"), EnvKeywordError, "delay_inflation '1.2'"),
    api("env-error-inflation-bool", make(error_inflation=True), EnvKeywordError, "error_inflation True"),
    api("env-error-penalty-text", make(error_penalty_factor="2"), EnvKeywordError, "error_penalty_factor '2'"),
    api("env-period-keyword-error", make(period_minutes=7), EnvKeywordError, "period_minutes 7 must divide 1440"),
    api("env-queueing-keyword-error", make(queueing="false"), EnvKeywordError, "queueing 'false'", "True or False"),
    api("env-drift-keyword-error", make(drift="sideways"), EnvKeywordError, "drift 'sideways' not one of"),
    api("env-horizon-off-grid", make(horizon_hours=0.1), ValueError, "horizon_hours", "multiple of the period"),
    api("env-sigma-negative", make(sigma=-0.1), ValueError, "sigma"),
    api("env-sigma-nan", make(sigma=float("nan")), ValueError, "sigma"),
    api("env-noise-negative", make(noise_sigma=-1.0), ValueError, "noise_sigma"),
    api("env-reconfiguration-negative", make(reconfiguration_cost=-5.0), ValueError, "reconfiguration_cost"),
    api("env-reconfiguration-v0-option", make(reconfiguration_cost="load-time"), ValueError, "reconfiguration_cost"),
    api("env-reconfiguration-inf", make(reconfiguration_cost=float("inf")), ValueError, "reconfiguration_cost"),
    api("env-cold-start-text", make(cold_start="yes"), ValueError, "cold_start", "'yes'"),
    api("env-cold-start-int", make(cold_start=1), ValueError, "cold_start"),
    api("env-queueing-text", make(queueing="false"), ValueError, "queueing", "'false'"),
    api("env-queueing-none", make(queueing=None), ValueError, "queueing"),
    api("env-router-unknown", make(router="random"), ValueError, "router", "'random'"),
    api("env-delay-inflation-low", make(delay_inflation=0.5), ValueError, "delay_inflation"),
    api("env-error-inflation-nan", make(error_inflation=float("nan")), ValueError, "error_inflation"),
    api("env-drift-unknown", make(drift="storm"), ValueError, "drift", "'storm'"),
    api("env-drift-number", make(drift=3), ValueError, "drift"),
    api("env-error-penalty-negative", make(error_penalty_factor=-1.0), ValueError, "error_penalty_factor"),
    api("env-forecaster-unknown", make(forecaster="arima"), ValueError, "forecaster", "'arima'"),
    api("env-max-candidates-zero", make(max_candidates=0), ValueError, "max_candidates"),
    api("env-catalog-missing", make(catalog="nosuch-catalog"), ValueError, "nosuch-catalog"),
    api("env-catalog-file", make(catalog="regular.txt"), ValueError, "regular.txt"),
    api("env-render-mode", make(render_mode="video"), ValueError, "render_mode", "'video'"),
    api("env-keyword-unknown", make(colour="red"), TypeError, "colour"),
    api("reset-option-unknown", reset(weather="rain"), ValueError, "reset options ['weather']", "allowed"),
    api("reset-day-and-demand", reset(day="2024-05-16-thu", demand="synthetic"), ValueError, "'day' and 'demand'"),
    api("reset-day-unknown", reset(day="someday"), ValueError, "someday"),
    api("reset-demand-unknown", reset(demand="weather"), ValueError, "weather"),
    api("step-before-reset", lambda _: gym.make(DEFAULT_ENV_ID, **TOY).unwrapped.step(0), RuntimeError, "reset()"),
    api("step-shape", step(np.zeros(999, dtype=np.int64)), ValueError, "action has shape (999,)"),
    api("step-scalar", step(1), ValueError, "action has shape ()"),
    api("step-negative", step_filled(-1), ValueError, "action[0] = -1", "outside allowed integers"),
    api("step-too-many", step_filled(10**6), ValueError, "action[0] = 1000000", "outside"),
    api("step-fraction", step_filled(0.5), ValueError, "action[0] = 0.5"),
    api("step-nan", step_filled(np.nan), ValueError, "finite"),
    api("step-text", step_filled("1"), ValueError, "finite numbers"),
]

TRACE_CASES = [
    api(
        "trace-mixed-time-zones",
        trace("mixed.csv", FILES["mixed.csv"]),
        TraceFormatError,
        "mixed.csv",
        "line 3",
        "'timestamp'",
        "has no UTC offset but line 2",
    ),
    api(
        "trace-mixed-time-zones-offset-later",
        trace("later.csv", REQUESTS + "2024-01-01 00:00:00,1,2\n2024-01-01 00:01:00+02:00,1,2\n"),
        TraceFormatError,
        "line 3",
        "has a UTC offset but line 2",
    ),
    api(
        "azure-requests-mixed-time-zones",
        trace(
            "azure.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,1,2\n2023-11-16 18:17:04Z,1,2\n",
            load_request_trace,
        ),
        TraceFormatError,
        "azure.csv",
        "data row 2",
        "'TIMESTAMP'",
        "UTC offset",
    ),
    api("trace-token-above-2-53", trace("huge.csv", FILES["huge.csv"]), TraceFormatError, "line 3", "2**53 - 1"),
    api("trace-token-column-total", trace("total.csv", FILES["total.csv"]), TraceFormatError, "column sums to"),
    api(
        "azure-requests-token-above-2-53",
        trace(
            "azure.csv", f"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,1,{2**60}\n", load_request_trace
        ),
        TraceFormatError,
        "data row 1",
        "'GeneratedTokens'",
        "largest count read exactly",
    ),
    api(
        "azure-minutes-sum-overflows",
        trace("minutes.csv", MINUTES + f"\n0,{MAX_COUNT},1,1,1,1,1\n1,{MAX_COUNT},1,1,1,1,1\n", load_minute_trace),
        TraceFormatError,
        "minutes.csv",
        "'code_requests'",
        "overflow int64",
    ),
    api("trace-count-above-bound", trace("counts.csv", FILES["counts.csv"]), TraceFormatError, "largest count"),
    api(
        "trace-count-total-above-bound",
        trace("sum.csv", f"minute,requests\n0,{MAX_COUNT}\n1,{MAX_COUNT}\n"),
        TraceFormatError,
        "'requests'",
        "column sums to",
    ),
    api("trace-utf16", trace("u16.csv", FILES["u16.csv"]), TraceFormatError, "u16.csv", "UTF-8"),
    api("trace-gzip-broken", trace("broken.csv.gz", FILES["broken.csv.gz"]), TraceFormatError, "broken.csv.gz"),
    api(
        "trace-gzip-utf16",
        trace("u16.csv.gz", gzip.compress("timestamp\n2024-01-01\n".encode("utf-16"))),
        TraceFormatError,
        "UTF-8",
    ),
    api("trace-folder", lambda directory: load_trace(directory), TraceFormatError, "file not found"),
]

CONFIG_CASES = [
    api("toml-utf16", config(FILES["u16.toml"]), ConfigError, "config.toml", "not UTF-8"),
    api("toml-utf8-invalid-byte", config(b'name = "\xff"\n'), ConfigError, "not UTF-8", "offset 8"),
    api("toml-folder", lambda directory: load_config(directory), ConfigError, "cannot read the configuration file"),
    api("toml-name-parent", config('name = ".."\n'), ConfigError, "name = '..'", "single folder name"),
    api("toml-name-dot", config('name = "."\n'), ConfigError, "name = '.'"),
    api("toml-name-traversal", config('name = "../../../x"\n'), ConfigError, "name = '../../../x'"),
    api("toml-name-absolute", config('name = "/etc/x"\n'), ConfigError, "name = '/etc/x'"),
    api("toml-name-nested", config('name = "a/b"\n'), ConfigError, "name = 'a/b'"),
    api("toml-name-backslash", config('name = "a\\\\b"\n'), ConfigError, "single folder name"),
    api("toml-name-drive", config('name = "C:x"\n'), ConfigError, "name = 'C:x'"),
    api("toml-name-spaces", config('name = " x "\n'), ConfigError, "surrounding spaces"),
    api("toml-name-empty", config('name = ""\n'), ConfigError, "name = ''", "non-empty"),
    api("toml-name-number", config("name = 3\n"), ConfigError, "name = 3"),
    api("toml-include-missing", config('include = ["nosuch.toml"]\n'), ConfigError, "nosuch.toml"),
    api("toml-include-not-list", config('include = "other.toml"\n'), ConfigError, "include"),
    api("toml-include-itself", config('include = ["config.toml"]\n'), ConfigError, "include cycle"),
    api("toml-scenarios-not-table", config("scenarios = 3\n"), ConfigError, "scenarios must be a table"),
    api("toml-training-not-array", config("[training]\nname = 'x'\n"), ConfigError, "[[training]]"),
    api(
        "toml-scenario-named-like-an-id",
        config(f'[scenarios."{DEFAULT_ENV_ID}"]\nscenario = "toy"\n'),
        ConfigError,
        "is an environment id",
    ),
    api("toml-env-id-unknown", config('[scenarios.a]\nenv_id = "x/Y-v0"\n'), ConfigError, "env_id = 'x/Y-v0'"),
    api(
        "toml-horizon-huge",
        config("[scenarios.a]\nhorizon_hours = 1e9\n"),
        ConfigError,
        "horizon_hours = 1000000000.0 outside allowed range (0, 168]",
    ),
    api("toml-queueing-text", config('[scenarios.a]\nqueueing = "false"\n'), ConfigError, "queueing = 'false'"),
    api("toml-cold-start-int", config("[scenarios.a]\ncold_start = 1\n"), ConfigError, "cold_start = 1"),
    api("toml-router-unknown", config('[scenarios.a]\nrouter = "x"\n'), ConfigError, "router = 'x'", "realised"),
    api("toml-drift-unknown", config('[scenarios.a]\ndrift = "storm"\n'), ConfigError, "drift = 'storm'"),
    api("toml-demand-unknown", config('[scenarios.a]\ndemand = "weather"\n'), ConfigError, "demand = 'weather'"),
    api(
        "toml-budget-both",
        config("[scenarios.a]\nbudget_per_hour = 3\nbudget_scale = 2\n"),
        ConfigError,
        "budget_per_hour and budget_scale",
    ),
    api("toml-gpus-unknown", config('[scenarios.a]\ngpus = ["TPU"]\n'), ConfigError, "gpus: 'TPU'"),
    api("toml-precisions-unknown", config('[scenarios.a]\nprecisions = ["fp8"]\n'), ConfigError, "'fp8'"),
    api("toml-models-empty", config("[scenarios.a]\nmodels = []\n"), ConfigError, "models must not be empty"),
    api("toml-delay-scale-zero", config("[scenarios.a]\ndelay_slo_scale = 0\n"), ConfigError, "delay_slo_scale = 0"),
    api("toml-sweep-seed-negative", config(TINY_SWEEP + "seeds = [-1]\n"), ConfigError, "seeds: -1"),
    api("toml-sweep-seed-repeated", config(TINY_SWEEP + "seeds = [1, 1]\n"), ConfigError, "has duplicates"),
    api("toml-sweep-days-string", config(TINY_SWEEP + 'days = "test"\n'), ConfigError, "days = 'test'"),
    api(
        "toml-training-hyperparameters-not-table",
        config(
            TINY_SWEEP + '[[training]]\nname = "t"\nscenario = "toy"\nalgorithm = "ppo"\ntotal_timesteps = 8\n'
            "hyperparameters = 3\n"
        ),
        ConfigError,
        "hyperparameters = 3 must be a table",
    ),
    api(
        "toml-training-hyperparameter-nan",
        config(
            TINY_SWEEP + '[[training]]\nname = "t"\nscenario = "toy"\nalgorithm = "ppo"\ntotal_timesteps = 8\n'
            "hyperparameters = { gamma = nan }\n"
        ),
        ConfigError,
        "hyperparameters.gamma = nan must be finite",
    ),
    api(
        "toml-training-names-repeated",
        config(TINY_SWEEP + 2 * '[[training]]\nname = "t"\nscenario = "toy"\nalgorithm = "ppo"\ntotal_timesteps = 8\n'),
        ConfigError,
        "names must be unique",
    ),
]


def _run_folder(directory: Path, *, model: bool = True, **train: Any) -> Path:
    """A run folder: ``config.json`` of a toy run with ``train`` overriding saved settings, and a placeholder
    ``model.zip``."""
    run = directory / "run"
    config = TrainConfig(out_dir=str(run), env_kwargs=TOY, norm_obs=False, norm_reward=False)
    save_run_config(config, {})
    if train:
        path = run / "config.json"
        payload = json.loads(path.read_text())
        payload["train"].update(train)
        payload["train"] = {key: value for key, value in payload["train"].items() if value is not DELETE}
        path.write_text(json.dumps(payload))
    if model:
        (run / "model.zip").write_bytes(_model_zip())
    return run


def _model_zip(members: tuple[str, ...] = ("data", "policy.pth")) -> bytes:
    """An intact zip with the members an SB3 model zip must hold (placeholder content: nothing loads it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in members:
            archive.writestr(name, "{}" * 64)
    return buffer.getvalue()


def _crc_broken_zip() -> bytes:
    """A model zip whose ``data`` member's stored bytes were altered (its CRC check fails)."""
    data = bytearray(_model_zip(members=("data", "policy.pth")))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("data")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 2] ^= 0xFF
    return bytes(data)


DELETE = object()
"""A ``_run_folder`` override that removes the setting from ``config.json``."""


def run_config(**train: Any) -> Callable[[Path], Any]:
    """Load the run folder whose saved settings are changed by ``train``."""
    return lambda directory: load_run_config(_run_folder(directory, **train))


def check_folder(which: str = "final", **changes: Any) -> Callable[[Path], Any]:
    """Check a run folder (``adapter.check_run_folder``) after ``changes`` (file name → bytes, or None: delete)."""

    def call(directory: Path) -> Any:
        from servegym.agents.adapter import check_run_folder

        run = _run_folder(directory, norm_obs=True)
        for name, content in changes.items():
            path = run / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if content == b"SHAPE":  # statistics of another environment: 3 demand entries
                state = _normalizer_state()
                state["obs_rms"]["demand"]["mean"] = [0.0, 0.0, 0.0]
                content = json.dumps(state).encode()
            path.unlink(missing_ok=True) if content is None else path.write_bytes(content)
        return check_run_folder(run, which)

    return call


def check_folder_path(name: str) -> Callable[[Path], Any]:
    """Check ``name`` (relative to the working directory) as a run folder."""

    def call(directory: Path) -> Any:
        from servegym.agents.adapter import check_run_folder

        return check_run_folder(directory / name)

    return call


def _normalizer_state() -> dict[str, Any]:
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from servegym.agents.checkpoints import normalizer_state

    venv = DummyVecEnv([lambda: gym.make(DEFAULT_ENV_ID, **TOY)])
    return normalizer_state(VecNormalize(venv, norm_obs_keys=["demand", "forecast"]))


def normalizer(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], Any]:
    """Rebuild a ``VecNormalize`` from a valid ``vecnormalize.json`` after ``change(state)``."""

    def call(directory: Path) -> Any:
        from stable_baselines3.common.vec_env import DummyVecEnv

        from servegym.agents.checkpoints import VECNORMALIZE_FILE, load_normalizer

        state = _normalizer_state()
        change(state)
        (directory / VECNORMALIZE_FILE).write_text(json.dumps(state))
        return load_normalizer(directory, DummyVecEnv([lambda: gym.make(DEFAULT_ENV_ID, **TOY)]))

    return call


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set the value at dotted ``path`` of the state (``value`` DELETE removes the key)."""

    def change(state: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            state = state[key]
        if value is DELETE:
            del state[last]
        else:
            state[last] = value

    return change


def checkpoint_state(text: str) -> Callable[[Path], Any]:
    """Find the latest checkpoint of a run folder whose ``state.json`` holds ``text``."""

    def call(directory: Path) -> Any:
        from servegym.agents.checkpoints import latest_checkpoint

        folder = directory / "checkpoints" / "step_000000000008"
        folder.mkdir(parents=True)
        (folder / "state.json").write_text(text)
        return latest_checkpoint(directory)

    return call


def damaged_checkpoint(name: str) -> Callable[[Path], Any]:
    """The only checkpoint of a run folder, whose ``name`` is shorter than ``state.json`` records (or absent)."""

    def call(directory: Path) -> Any:
        from servegym.agents.checkpoints import CHECKPOINT_FORMAT, latest_checkpoint

        folder = directory / "checkpoints" / "step_000000000008"
        folder.mkdir(parents=True)
        (folder / "model.zip").write_bytes(b"PK")
        intact = {"bytes": 2, "sha256": hashlib.sha256(b"PK").hexdigest()}
        files = {"model.zip": intact if name != "model.zip" else {"bytes": 5, "sha256": "0" * 64}}
        files[name] = files.get(name, {"bytes": 5, "sha256": "0" * 64})
        state = {"format": CHECKPOINT_FORMAT, "num_timesteps": 8, "files": files}
        (folder / "state.json").write_text(json.dumps(state))
        return latest_checkpoint(directory)

    return call


def bad_rng(key: str, value: Any) -> Callable[[Path], Any]:
    """Restore a model's random states from a valid ``$.rng`` with ``key`` set to ``value``."""

    def call(directory: Path) -> Any:
        from servegym.agents.checkpoints import restore_rng, rng_state
        from servegym.agents.train import algorithm_class

        model = algorithm_class("ppo")("MultiInputPolicy", gym.make(DEFAULT_ENV_ID, **TOY), n_steps=8, batch_size=8)
        state = rng_state(model)
        state[key] = value
        return restore_rng(model, state, directory / "state.json")

    return call


def damaged_evaluations() -> Callable[[Path], Any]:
    def call(directory: Path) -> Any:
        from stable_baselines3.common.callbacks import EvalCallback

        from servegym.agents.checkpoints import EVALUATIONS_FILE, restore_evaluations

        (directory / EVALUATIONS_FILE).write_bytes(b"PK\x03\x04 truncated")
        callback = EvalCallback(gym.make(DEFAULT_ENV_ID, **TOY))
        return restore_evaluations(callback, directory, up_to=64)

    return call


def incomplete_store() -> Callable[[Path], Any]:
    """Report a store whose plan names a cell it lacks and that holds a cell CSV without its JSON."""

    def call(directory: Path) -> Any:
        store = ResultStore(directory / "store")
        store.record_plan("toy", [("a" * 64, "toy/gh-static/s0"), ("b" * 64, "toy/gh-static/s1")])
        store.csv_path("b" * 64).write_text("cell\n")
        return write_report(store, directory / "report")

    return call


def damaged_plan() -> Callable[[Path], Any]:
    def call(directory: Path) -> Any:
        store = ResultStore(directory / "store")
        store.csv_path("b" * 64).write_text("cell\n")
        (store.root / "plans").mkdir()
        (store.root / "plans" / "x.json").write_text('{"format": "servegym-plan-1", "cells": 3}')
        return write_report(store, directory / "report")

    return call


RUN_FOLDER_CASES = [
    api("run-config-missing", lambda directory: load_run_config(directory), RunFolderError, "config.json", "no such"),
    api(
        "run-config-not-json",
        lambda directory: load_run_config(_write("config.json", "{train:")(directory).parent),
        RunFolderError,
        "config.json",
        "cannot read it as JSON",
    ),
    api(
        "run-config-list",
        lambda directory: load_run_config(_write("config.json", "[]")(directory).parent),
        RunFolderError,
        "$.train must be an object",
    ),
    api(
        "run-config-utf16",
        lambda directory: load_run_config(_write("config.json", "{}".encode("utf-16"))(directory).parent),
        RunFolderError,
        "cannot read it as JSON",
    ),
    api("run-config-lacks-seed", run_config(seed=DELETE), RunFolderError, "$.train lacks ['seed']"),
    api("run-config-lacks-env-kwargs", run_config(env_kwargs=DELETE), RunFolderError, "lacks ['env_kwargs']"),
    api("run-config-lacks-payback", run_config(headroom_max_payback_periods=DELETE), RunFolderError, "headroom_max"),
    api("run-config-unknown-key", run_config(colour="red"), RunFolderError, "unknown training settings ['colour']"),
    api("run-config-seed-negative", run_config(seed=-1), RunFolderError, "$.train: seed = -1"),
    api("run-config-algo-unknown", run_config(algo="dqn"), RunFolderError, "$.train: algo 'dqn'"),
    api("run-config-env-id-unknown", run_config(env_id="x/Y-v0"), RunFolderError, "env_id 'x/Y-v0'"),
    api("run-config-env-kwargs-list", run_config(env_kwargs=[]), RunFolderError, "env_kwargs = [] must be a JSON"),
    api("run-config-norm-obs-text", run_config(norm_obs="yes"), RunFolderError, "norm_obs = 'yes' must be true"),
    api("run-config-name-number", run_config(name=3), RunFolderError, "name = 3 must be a string"),
    api("run-config-headroom-text", run_config(headroom_low="low"), RunFolderError, "headroom_low = 'low'"),
    api("run-config-slo-price-inf", run_config(slo_price_per_request=1e400), RunFolderError, "slo_price_per_request"),
    api("run-config-slo-price-text", run_config(slo_price_per_request="x"), RunFolderError, "slo_price_per_request"),
    api("run-config-n-envs-zero", run_config(n_envs=0), RunFolderError, "n_envs = 0"),
    api("run-config-hyperparameter-range", run_config(hyperparameters={"n_steps": -1}), RunFolderError, "n_steps"),
    api("run-folder-which-unknown", check_folder("worst"), ValueError, "model 'worst'", rl=True),
    api("run-folder-model-missing", check_folder(**{"model.zip": None}), RunFolderError, "no final model", rl=True),
    api("run-folder-best-missing", check_folder("best"), RunFolderError, "no best model", rl=True),
    api(
        "run-folder-pickled-normaliser",
        check_folder(**{"vecnormalize.pkl": b"not read"}),
        RunFolderError,
        "vecnormalize.pkl",
        "convert_pickled_normalizers",
        rl=True,
    ),
    api("run-folder-normaliser-missing", check_folder(), RunFolderError, "vecnormalize.json: missing", rl=True),
    api("run-folder-absent", check_folder_path("nosuch"), RunFolderError, "nosuch: no such run folder", rl=True),
    api("run-folder-a-file", check_folder_path("regular.txt"), RunFolderError, "regular.txt: no such run", rl=True),
    api(
        "run-folder-model-empty",
        check_folder(**{"model.zip": b""}),
        RunFolderError,
        "model.zip: not a readable model zip",
        rl=True,
    ),
    api(
        "run-folder-model-truncated",
        check_folder(**{"model.zip": _model_zip()[:-40]}),
        RunFolderError,
        "model.zip: not a readable model zip, truncated or damaged",
        rl=True,
    ),
    api(
        "run-folder-model-crc",
        check_folder(**{"model.zip": _crc_broken_zip()}),
        RunFolderError,
        "model.zip: damaged, member 'data' fails its CRC check",
        rl=True,
    ),
    api(
        "run-folder-model-not-sb3",
        check_folder(**{"model.zip": _model_zip(members=("weights.bin",))}),
        RunFolderError,
        "model.zip: not an SB3 model zip, it lacks ['data', 'policy.pth']",
        rl=True,
    ),
    api(
        "run-folder-best-model-truncated",
        check_folder("best", **{"best/model.zip": _model_zip()[:100]}),
        RunFolderError,
        "best/model.zip: not a readable model zip",
        rl=True,
    ),
    api(
        "run-folder-normaliser-other-env",
        check_folder(**{"model.zip": _model_zip(), "vecnormalize.json": b"SHAPE"}),
        RunFolderError,
        "vecnormalize.json: $.obs_rms.demand.mean: has shape (3,)",
        rl=True,
    ),
    api(
        "run-folder-normaliser-not-json",
        check_folder(**{"vecnormalize.json": b"{"}),
        RunFolderError,
        "vecnormalize.json",
        "cannot read it as JSON",
        rl=True,
    ),
    api("normaliser-format", normalizer(_set("format", "pickle")), RunFolderError, "$.format", rl=True),
    api("normaliser-key-missing", normalizer(_set("gamma", DELETE)), RunFolderError, "$: lacks ['gamma']", rl=True),
    api("normaliser-flag-text", normalizer(_set("norm_obs", "yes")), RunFolderError, "$.norm_obs", rl=True),
    api(
        "normaliser-obs-key-unknown",
        normalizer(_set("norm_obs_keys", ["x"])),
        RunFolderError,
        "$.norm_obs_keys",
        rl=True,
    ),
    api("normaliser-clip-text", normalizer(_set("clip_obs", "10")), RunFolderError, "$.clip_obs", rl=True),
    api("normaliser-epsilon-zero", normalizer(_set("epsilon", 0)), RunFolderError, "$.epsilon", "> 0", rl=True),
    api(
        "normaliser-mean-shape",
        normalizer(_set("obs_rms.demand.mean", [0.0])),
        RunFolderError,
        "$.obs_rms.demand.mean: has shape (1,)",
        rl=True,
    ),
    api(
        "normaliser-var-negative",
        normalizer(lambda state: state["obs_rms"]["forecast"]["var"].__setitem__(0, -1.0)),
        RunFolderError,
        "$.obs_rms.forecast.var",
        ">= 0",
        rl=True,
    ),
    api("normaliser-mean-text", normalizer(_set("ret_rms.mean", "zero")), RunFolderError, "$.ret_rms.mean", rl=True),
    api("normaliser-count-zero", normalizer(_set("ret_rms.count", 0)), RunFolderError, "$.ret_rms.count", rl=True),
    api(
        "normaliser-obs-rms-extra",
        normalizer(_set("obs_rms.slo", {})),
        RunFolderError,
        "$.obs_rms: has unknown keys ['slo']",
        rl=True,
    ),
    api("checkpoint-state-not-json", checkpoint_state("{"), RunFolderError, "state.json", rl=True),
    api("checkpoint-state-negative", checkpoint_state('{"num_timesteps": -8}'), RunFolderError, "-8", rl=True),
    api("checkpoint-state-text", checkpoint_state('{"num_timesteps": "8"}'), RunFolderError, "'8'", rl=True),
    api(
        "train-config-env-kwargs-mapping",
        lambda _: TrainConfig(out_dir="x", env_kwargs=[("horizon_hours", 2)]),  # type: ignore[arg-type]
        TrainConfigError,
        "env_kwargs",
    ),
    api(
        "train-config-instance-overrides-keys",
        lambda _: dataclasses.replace(TrainConfig(out_dir="x"), instance_overrides={1: 2}),
        TrainConfigError,
        "instance_overrides",
    ),
    api(
        "checkpoint-model-damaged",
        damaged_checkpoint("model.zip"),
        RunFolderError,
        "step_000000000008/model.zip: damaged (2 bytes, 5 recorded in state.json",
        rl=True,
    ),
    api(
        "checkpoint-file-listed-missing",
        damaged_checkpoint("vecnormalize.json"),
        RunFolderError,
        "vecnormalize.json: missing (listed in state.json)",
        rl=True,
    ),
    api("checkpoint-rng-torch", bad_rng("torch", "not base64!"), RunFolderError, "$.rng.torch", rl=True),
    api("checkpoint-rng-numpy", bad_rng("numpy", {"key": [1]}), RunFolderError, "$.rng.numpy", rl=True),
    api("checkpoint-rng-python", bad_rng("python", []), RunFolderError, "$.rng.python", rl=True),
    api("checkpoint-rng-keys", bad_rng("cuda", 1), RunFolderError, "$.rng: has unknown keys ['cuda']", rl=True),
    api("evaluations-npz-damaged", damaged_evaluations(), RunFolderError, "evaluations.npz: cannot read", rl=True),
    api(
        "report-store-incomplete",
        incomplete_store(),
        StoreError,
        "1 missing (toy/gh-static/s0 ",
        "1 damaged",
        "--partial",
    ),
    api("report-plan-damaged", damaged_plan(), StoreError, "plans/", "not a sweep plan"),
    api(
        "file-set-name-with-folder",
        lambda directory: write_file_set(directory / "out", {"sub/a.csv": b""}, command="x"),
        OutputPathError,
        "'sub/a.csv' must be a plain file name",
    ),
    api(
        "file-set-manifest-name",
        lambda d: write_file_set(d, {"manifest.json": b""}, command="x"),
        OutputPathError,
        "manifest.json",
    ),
    api("milp-solver-unknown", lambda _: milp_solve(toy_instance(), solver="GUROBI"), ServegymError, "solver 'GUROBI'"),
    api("milp-time-limit-zero", lambda _: milp_solve(toy_instance(), time_limit_s=0.0), ServegymError, "time"),
    api("milp-relax-unknown", lambda _: build_model(toy_instance(), "SCIP", relax=("x",)), ServegymError, "['x']"),
]


@pytest.mark.parametrize(("call", "error", "fragments"), ENV_CASES + TRACE_CASES + CONFIG_CASES + RUN_FOLDER_CASES)
def test_bad_inputs__api_raises_the_documented_error_naming_the_input(workdir, call, error, fragments):
    with pytest.raises(error) as raised:
        call(workdir)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message


def test_bad_inputs__the_table_has_at_least_150_cases():
    assert len(CLI_CASES + ENV_CASES + TRACE_CASES + CONFIG_CASES + RUN_FOLDER_CASES) >= 150


def test_bad_inputs__an_internal_error_keeps_its_traceback_and_a_user_error_does_not(monkeypatch, capsys):
    import servegym.cli

    def broken(args: Any) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(servegym.cli.scenarios_command, "run", broken)
    with pytest.raises(KeyError, match="a bug"):  # not caught: Python prints the traceback and exits 1
        main(["scenarios"])

    def refused(args: Any) -> int:
        raise ConfigError("settings.toml: [sweep] seeds = 3 must be a list")

    monkeypatch.setattr(servegym.cli.scenarios_command, "run", refused)
    assert main(["scenarios"]) == 2
    assert capsys.readouterr().err == "servegym scenarios: error: settings.toml: [sweep] seeds = 3 must be a list\n"
