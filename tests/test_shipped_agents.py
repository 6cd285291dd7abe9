"""Shipping agents with their leaderboard and verifying it (servegym.agents.shipped_agents, servegym leaderboard)."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.rl
pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

from servegym.agents.scoring import SCORE_COLUMNS  # noqa: E402
from servegym.agents.shipped_agents import (  # noqa: E402
    LeaderboardFolderError,
    Mismatch,
    compare_scores,
    read_leaderboard,
    ship,
    shipped_leaderboard_dir,
    verify_leaderboard,
)
from servegym.agents.train import train  # noqa: E402
from servegym.agents.train_config import TrainConfig  # noqa: E402
from servegym.cli import main  # noqa: E402

DAY = "2024-05-16-thu"
AGENT_NAMES = ["ppo-delta-Provisioning-v3-s0", "ppo-delta-Provisioning-v3-s1"]  # <label>-<env name>-s<seed>
SETTINGS = {"days": [DAY], "seeds": [0], "reference": "gh-static", "oracle": "gh-rolling", "baselines": []}


@pytest.fixture(scope="module")
def leaderboard(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ship")
    runs = []
    for seed in (0, 1):
        config = TrainConfig(
            out_dir=str(root / f"run-{seed}"),
            algo="ppo",
            action="delta",
            total_timesteps=32,
            seed=seed,
            n_envs=1,
            env_kwargs={"horizon_hours": 2.0},
            hyperparameters={"n_steps": 32, "batch_size": 32, "n_epochs": 1},
            eval_freq=32,
            checkpoint_freq=32,
        )
        train(config)
        runs.append(config.out_dir)
    ship(runs, root / "leaderboard", **SETTINGS)
    return root / "leaderboard"


def test_ship__writes_trimmed_agents_scores_table_settings_and_manifests(leaderboard):
    assert sorted(p.name for p in (leaderboard / "agents").iterdir()) == AGENT_NAMES
    for agent in (leaderboard / "agents").iterdir():
        assert sorted(p.name for p in agent.iterdir()) == [
            "config.json",
            "manifest.json",
            "model.zip",
            "vecnormalize.json",
        ]
    scores, settings, agents = read_leaderboard(leaderboard)
    assert tuple(scores.columns) == SCORE_COLUMNS and len(agents) == 2
    assert {k: settings[k] for k in SETTINGS} == SETTINGS and settings["demand"] is None
    assert set(scores.loc[scores["kind"] == "agent", "run_dir"]) == {f"agents/{name}" for name in AGENT_NAMES}
    assert (leaderboard / "leaderboard.md").read_text().startswith("Normalised score")


def test_verify__reproduces_every_shipped_number(leaderboard):
    fresh, mismatches = verify_leaderboard(leaderboard)
    assert mismatches == [] and len(fresh) == 4  # two agents, the reference and the oracle on one episode


def test_cli_leaderboard__prints_the_table_and_verifies(leaderboard, tmp_path, capsys):
    assert main(["leaderboard", "--folder", str(leaderboard)]) == 0
    assert "`ppo-delta`" in capsys.readouterr().out
    out = tmp_path / "fresh"
    argv = ["leaderboard", "--folder", str(leaderboard), "--verify", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert "every number as shipped" in capsys.readouterr().out
    assert len(pd.read_csv(out / "scores.csv")) == 4


def test_compare_scores__names_each_differing_number_and_each_missing_row(leaderboard):
    shipped, _, _ = read_leaderboard(leaderboard)
    fresh = shipped.copy()
    agent = fresh.index[fresh["kind"] == "agent"][0]
    fresh.loc[agent, "total_cost"] *= 1 + 1e-6
    fresh.loc[agent, "normalised_score"] = math.nan
    fresh = fresh.drop(index=fresh.index[fresh["kind"] == "oracle"])
    mismatches = compare_scores(shipped, fresh)
    columns = sorted(m.column for m in mismatches)
    assert columns == ["normalised_score", "row", "total_cost"]
    assert all(isinstance(m, Mismatch) and m.day == DAY and m.seed == 0 for m in mismatches)
    assert "total_cost shipped" in str(next(m for m in mismatches if m.column == "total_cost"))
    assert compare_scores(shipped, shipped) == []


def _copy(leaderboard: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(leaderboard, tmp_path / "copy"))


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda f: (f / "scores.csv").write_text("policy\nx\n"), "scores.csv: its SHA-256 differs"),
        (lambda f: (f / "agents" / AGENT_NAMES[1] / "model.zip").write_bytes(b"PK"), "model.zip: its SHA-256"),
        (lambda f: (f / "agents" / AGENT_NAMES[0] / "config.json").unlink(), "config.json: missing"),
        (lambda f: (f / "manifest.json").write_text("[1]"), "manifest.json: not a servegym output manifest"),
        (lambda f: (f / "settings.json").unlink(), "settings.json: missing"),
    ],
    ids=["scores-edited", "model-damaged", "agent-config-missing", "manifest-not-a-manifest", "settings-missing"],
)
def test_read_leaderboard__a_damaged_folder_fails_naming_the_file(leaderboard, tmp_path, damage, fragment):
    copy = _copy(leaderboard, tmp_path)
    damage(copy)
    with pytest.raises(LeaderboardFolderError, match=fragment.replace(".", r"\.")):
        read_leaderboard(copy)


def test_cli_leaderboard__a_missing_folder_is_a_one_line_user_error(tmp_path, capsys):
    assert main(["leaderboard", "--folder", str(tmp_path / "nowhere")]) == 2
    assert "no such leaderboard folder" in capsys.readouterr().err


def test_cli_leaderboard__a_changed_number_fails_verification(leaderboard, tmp_path, capsys):
    copy = _copy(leaderboard, tmp_path)
    scores = pd.read_csv(copy / "scores.csv")
    scores.loc[scores["kind"] == "reference", "total_cost"] += 1.0
    text = scores.to_csv(index=False)
    (copy / "scores.csv").write_text(text)
    manifest = json.loads((copy / "manifest.json").read_text())
    import hashlib

    manifest["files"]["scores.csv"]["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["leaderboard", "--folder", str(copy), "--verify", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "differs: gh-static on 2024-05-16-thu seed 0: total_cost" in err and "numbers differ" in err


def test_shipped_leaderboard__every_shipped_agent_reproduces_every_number(capsys):
    """``servegym leaderboard --verify`` on the package's own leaderboard (30 agents, 3 settings: 122 s on an idle
    2-core machine)."""
    folder = shipped_leaderboard_dir()
    _, settings, agents = read_leaderboard(folder)
    assert len(agents) >= 3 and settings["oracle"] == "oracle"
    assert main(["leaderboard", "--verify", "--no-progress"]) == 0, capsys.readouterr().err
    assert f"{len(agents)} agents" in capsys.readouterr().out
