"""scripts/solve_oracle_references.py --repolish: a killed run resumes where it stopped."""

import dataclasses
import json

import pytest
from script_modules import load_script

from servegym.agents.oracle_references import load_references
from servegym.io import atomic_write_json


@pytest.fixture(scope="module")
def script():
    return load_script("solve_oracle_references")


class Killed(Exception):
    """Stands for the run being killed part-way."""


def test_repolish__a_killed_run_resumes_with_the_episodes_left_and_removes_its_progress_file(
    script, tmp_path, monkeypatch
):
    shipped = load_references(script.SHIPPED)
    kept = tuple(shipped)[:2]  # the short check and the first protocol episode
    out = tmp_path / "references.json"
    atomic_write_json(out, dataclasses.replace(shipped, episodes=kept).to_dict())
    polished: list[tuple] = []
    kill_at = [2]

    def fake_repolish(env, reference):  # the real polish takes a minute per protocol episode
        if len(polished) + 1 == kill_at[0]:
            raise Killed
        polished.append(reference.key)
        return dataclasses.replace(reference, polish_moves=reference.polish_moves + 1)

    monkeypatch.setattr(script, "repolish_reference", fake_repolish)
    with pytest.raises(Killed):
        script.main(["--repolish", "--out", str(out), "--no-docs"])
    progress = script.progress_path(out)
    assert progress.exists() and polished == [kept[0].key]
    assert load_references(out).find(*kept[0].key).polish_moves == kept[0].polish_moves + 1

    kill_at[0] = 0
    assert script.main(["--repolish", "--out", str(out), "--no-docs"]) == 0
    assert polished == [kept[0].key, kept[1].key]  # the first is not polished again
    assert not progress.exists()
    again = load_references(out)
    assert [r.polish_moves for r in again] == [r.polish_moves + 1 for r in kept]


def _progress_content(case: str) -> bytes:
    from servegym.agents.oracle_references import REFERENCE_RULE

    rule = REFERENCE_RULE.to_dict()
    payloads = {
        "lacks-done": {"stopping_rule": rule, "provenance": {}},
        "short-key": {"stopping_rule": rule, "done": [[1]], "provenance": {}},
        "done-not-a-list": {"stopping_rule": rule, "done": 7, "provenance": {}},
        "other-rule": {"stopping_rule": {**rule, "node_limit": -1}, "done": [], "provenance": {}},
    }
    if case == "not-json":
        return b"{not json"
    if case == "not-utf8":
        return b"\xff\xfe{"
    return json.dumps(payloads[case]).encode()


@pytest.mark.parametrize("case", ["not-json", "not-utf8", "lacks-done", "short-key", "done-not-a-list", "other-rule"])
def test_repolish__an_unreadable_or_stale_progress_file_is_ignored_and_every_record_polished_again(
    script, tmp_path, monkeypatch, capsys, case
):
    shipped = load_references(script.SHIPPED)
    kept = tuple(shipped)[:2]
    out = tmp_path / "references.json"
    atomic_write_json(out, dataclasses.replace(shipped, episodes=kept).to_dict())
    progress = script.progress_path(out)
    progress.write_bytes(_progress_content(case))
    polished: list[tuple] = []

    def fake_repolish(env, reference):
        polished.append(reference.key)
        return reference

    monkeypatch.setattr(script, "repolish_reference", fake_repolish)
    assert script.main(["--repolish", "--out", str(out), "--no-docs"]) == 0
    assert polished == [r.key for r in kept]  # nothing taken as done
    assert not progress.exists()
    named = f"{progress}: unreadable" in capsys.readouterr().err
    assert named == (case != "other-rule")  # a file of another stopping rule is stale, not unreadable
