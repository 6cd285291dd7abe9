"""Multi-file outputs appear as a set with a manifest, and ``report`` refuses an incomplete store unless partial."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from servegym.baselines.evaluate import EVALUATION_FILES, evaluate, write_evaluation
from servegym.cli import main
from servegym.errors import OutputPathError
from servegym.experiments import ResultStore, load_config, run_sweep, write_report
from servegym.experiments.report import REPORT_FILES
from servegym.experiments.store import RESULTS_FILE, StoreError
from servegym.io import MANIFEST_FILE, write_file_set

TINY = """
name = "tiny"

[scenarios.toy-1h]
scenario = "toy"
horizon_hours = 1.0

[sweep]
policies = ["gh-static", "random"]
scenarios = ["toy-1h"]
seeds = [0, 1]
"""


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_FILE).read_text())


def test_file_set__replaces_the_previous_set_and_describes_every_file(tmp_path):
    (tmp_path / "mine.txt").write_text("not ours")
    write_file_set(tmp_path, {"a.csv": b"1", "old.png": b"png"}, command="first")
    paths = write_file_set(tmp_path, {"a.csv": b"22", "b.csv": b"333"}, command="second")
    assert paths == [tmp_path / "a.csv", tmp_path / "b.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", MANIFEST_FILE, "mine.txt"]
    manifest = _manifest(tmp_path)
    assert manifest["command"] == "second" and manifest["date"] and "commit" in manifest
    assert manifest["files"] == {
        name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in (("a.csv", b"22"), ("b.csv", b"333"))
    }
    with pytest.raises(OutputPathError, match=r"'\.\./x' must be a plain file name"):
        write_file_set(tmp_path, {"../x": b""}, command="bad")


def test_file_set__an_interrupted_write_leaves_no_file_of_the_previous_set(tmp_path, monkeypatch):
    import servegym.io

    write_file_set(tmp_path, {"episodes.csv": b"old", "evaluate.png": b"old figure"}, command="first")
    written = []

    def killed(path, data):
        if written:
            raise KeyboardInterrupt
        written.append(path)
        return original(path, data)

    original = servegym.io.atomic_write_bytes
    monkeypatch.setattr(servegym.io, "atomic_write_bytes", killed)
    with pytest.raises(KeyboardInterrupt):
        write_file_set(tmp_path, {"episodes.csv": b"new", "evaluate.png": b"new figure"}, command="second")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episodes.csv"]  # no manifest, no old figure
    assert (tmp_path / "episodes.csv").read_bytes() == b"new"


def test_file_set__never_deletes_what_it_did_not_write(tmp_path):
    (tmp_path / "index.html").write_text("<html>")
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"files": {"index.html": {}}}))
    with pytest.raises(OutputPathError, match=r"manifest\.json: not a servegym output manifest"):
        write_file_set(tmp_path, {"a.csv": b"1"}, command="test")
    assert (tmp_path / "index.html").read_text() == "<html>" and not (tmp_path / "a.csv").exists()
    other = tmp_path / "ours"
    write_file_set(other, {"a.csv": b"1", "b.csv": b"2"}, command="test")
    (other / "b.csv").write_text("edited by hand")
    write_file_set(other, {"a.csv": b"3"}, command="test")
    assert (other / "a.csv").read_bytes() == b"3"
    assert (other / "b.csv").read_text() == "edited by hand"  # changed since the manifest: no longer ours


def test_evaluate__writes_its_tables_and_figure_as_a_set(tmp_path):
    result = evaluate(["gh-static"], env_kwargs={"scenario": "toy", "horizon_hours": 1.0}, days=None, progress=False)
    paths = write_evaluation(result, tmp_path, command="servegym evaluate --policies gh-static")
    assert [p.name for p in paths] == list(EVALUATION_FILES)
    assert set(_manifest(tmp_path)["files"]) == set(EVALUATION_FILES)
    assert pd.read_csv(tmp_path / "episodes.csv")["policy"].tolist() == ["gh-static"]


@pytest.fixture
def swept(tmp_path) -> ResultStore:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    store = ResultStore(tmp_path / "store")
    run_sweep(load_config(config), store, workers=1, progress=False)
    return store


def test_report__refuses_a_store_with_missing_or_damaged_cells_naming_them(swept, tmp_path):
    keys = swept.keys()
    swept.discard(keys[0])  # missing
    data = swept.csv_path(keys[1]).read_bytes()
    swept.csv_path(keys[1]).write_bytes(data[:-10])  # damaged
    results = (swept.root / RESULTS_FILE).read_bytes()
    labels = swept.planned()
    with pytest.raises(StoreError) as refused:
        write_report(swept, tmp_path / "report")
    message = str(refused.value)
    assert f"1 missing ({labels[keys[0]]} {keys[0][:12]})" in message
    assert f"1 damaged ({labels[keys[1]]} {keys[1][:12]}: checksum mismatch" in message
    assert "--partial" in message and not (tmp_path / "report").exists()
    paths = write_report(swept, tmp_path / "report", partial=True)
    assert [p.name for p in paths] == list(REPORT_FILES)
    assert pd.read_csv(tmp_path / "report" / "summary.csv")["cells"].sum() == 2
    assert "**Partial report**: 1 missing" in (tmp_path / "report" / "summary.md").read_text()
    assert (swept.root / RESULTS_FILE).read_bytes() == results  # the report never rewrites results.csv


def test_cli__report_refuses_an_incomplete_store_unless_partial(swept, tmp_path, capsys):
    swept.discard(swept.keys()[0])
    assert main(["report", str(swept.root)]) == 2
    assert "is incomplete: 1 missing" in capsys.readouterr().err
    assert main(["report", str(swept.root), "--partial"]) == 0
    assert _manifest(swept.root / "report")["command"].startswith("servegym report")


def test_replace_marked_block__replaces_only_between_the_markers_and_names_them_when_missing(tmp_path):
    from servegym.io import replace_marked_block

    doc = tmp_path / "doc.md"
    begin, end = "<!-- t:begin (written by a script) -->", "<!-- t:end -->"
    doc.write_text(f"intro\n{begin}\nold\ntable\n{end}\noutro\n")
    replace_marked_block(doc, begin, end, "| new |\n")
    assert doc.read_text() == f"intro\n{begin}\n| new |\n{end}\noutro\n"
    doc.write_text(f"{end}\n{begin}\n")  # out of order
    with pytest.raises(OutputPathError, match=r"doc\.md: needs the lines .*t:begin.* and then .*t:end"):
        replace_marked_block(doc, begin, end, "x")
    with pytest.raises(OutputPathError, match="cannot read it"):
        replace_marked_block(tmp_path / "missing.md", begin, end, "x")
