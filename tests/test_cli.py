"""The servegym command line: scenarios, describe and export."""

import json

import pytest

from servegym.cli import main


def test_cli__scenarios_lists_every_scenario(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in ("azure", "paper", "random", "toy"):
        assert name in out


@pytest.mark.parametrize("scenario", ["paper", "azure"])
def test_cli__describe_prints_query_types_gpus_and_configurations(capsys, scenario):
    assert main(["describe", "--scenario", scenario, "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "Query types" in out and "GPU types" in out and "μ req/h" in out and "configurations meeting Δ" in out


def test_cli__export_writes_the_documented_json(tmp_path, capsys):
    path = tmp_path / "random.json"
    assert main(["export", "--scenario", "random", "--size", "3,3,4", "--seed", "2", "--out", str(path)]) == 0
    payload = json.loads(path.read_text())
    assert payload["schema_version"] == 1
    assert len(payload["query_types"]) == 3
    assert len(payload["capacity_per_hour"]) == 3
    assert len(payload["capacity_per_hour"][0]) == len(payload["configurations"])


def test_cli__bad_size_is_a_clear_usage_error(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["describe", "--scenario", "random", "--size", "3,x"])
    assert excinfo.value.code == 2
    assert "--size must be three integers I,J,K" in capsys.readouterr().err


def test_cli__out_of_range_size_is_reported_without_a_traceback(capsys):
    assert main(["describe", "--scenario", "random", "--size", "41,3,3"]) == 2
    assert "random size I = 41 outside allowed range" in capsys.readouterr().err
