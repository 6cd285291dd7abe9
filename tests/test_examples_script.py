"""scripts/regenerate_examples.py: a manifest beside the files, the results README block, the staleness check."""

import json
import shlex

import pandas as pd
import pytest
from script_modules import load_script

TINY = ["evaluate", "--env-kwargs", '{"horizon_hours": 1}', "--policies", "gh-static,gh-rolling"]


@pytest.fixture
def script(monkeypatch):
    module = load_script("regenerate_examples")
    monkeypatch.setattr(module, "EXAMPLES", {"tiny": TINY})
    return module


def test_regenerate_examples__writes_a_manifest_and_checks_staleness(script, tmp_path, capsys):
    assert script.main(["--out-root", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "tiny" / "manifest.json").read_text())
    assert len(record["commit"].removesuffix("+dirty")) == 40
    assert record["command"] == shlex.join(["servegym", *TINY, "--out", str(tmp_path / "tiny"), "--no-progress"])
    assert set(record["files"]) == {"episodes.csv", "periods.csv", "evaluate.png", "plan.png"}
    assert "| `tiny/` |" in script.readme_block(tmp_path)
    assert script.main(["--out-root", str(tmp_path), "--check"]) == 0
    episodes = pd.read_csv(tmp_path / "tiny" / "episodes.csv")
    episodes.loc[0, "total_cost"] += 1.0
    episodes.to_csv(tmp_path / "tiny" / "episodes.csv", index=False)
    assert script.main(["--out-root", str(tmp_path), "--check"]) == 1
    assert "total_cost" in capsys.readouterr().err


@pytest.mark.slow
def test_regenerate_examples__the_committed_main_job_is_not_stale():
    module = load_script("regenerate_examples")
    assert module.main(["--check", "--only", "evaluate"]) == 0
