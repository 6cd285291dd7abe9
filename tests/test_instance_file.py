"""Instance files (``--instance FILE.json``): export → load round trips and one JSON-path message per bad value."""

import copy
import dataclasses
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from servegym.cli import main
from servegym.envs import export
from servegym.envs.export import instance_from_dict, instance_to_dict, load_instance
from servegym.envs.instance import Instance, InstanceError, QueryType
from servegym.envs.scenarios import make_instance
from servegym.envs.toy import toy_instance
from servegym.io import atomic_write_json


def _write(path: Path, instance: Instance) -> Path:
    """The file ``servegym export`` writes for the instance."""
    return atomic_write_json(path, instance_to_dict(instance))


def _assert_identical(loaded: Instance, original: Instance) -> None:
    """Every field equal; arrays also of the same dtype and shape."""
    for field in dataclasses.fields(Instance):
        got, want = getattr(loaded, field.name), getattr(original, field.name)
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype and got.shape == want.shape, field.name
            np.testing.assert_array_equal(got, want, err_msg=field.name)
        else:
            assert got == want, field.name


@pytest.fixture(scope="module")
def toy_payload() -> dict[str, Any]:
    """The toy instance as parsed from its exported file (exported once per module)."""
    return json.loads(json.dumps(instance_to_dict(toy_instance()), allow_nan=False))


@pytest.fixture
def toy_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "toy.json", toy_instance())


@pytest.mark.parametrize("scenario", ["azure", "paper", "toy", "random"])
def test_instance_file__export_then_load_gives_the_identical_instance(tmp_path, scenario):
    instance = make_instance(scenario)
    loaded = load_instance(_write(tmp_path / f"{scenario}.json", instance))
    _assert_identical(loaded, instance)
    np.testing.assert_array_equal(loaded.route_allowed, instance.route_allowed)
    assert instance_to_dict(loaded) == json.loads((tmp_path / f"{scenario}.json").read_text())


def test_instance_file__unlimited_budget_is_written_as_null_and_read_back_as_infinity(tmp_path):
    instance = toy_instance().with_changes(budget_per_hour=math.inf)
    path = _write(tmp_path / "unlimited.json", instance)
    assert json.loads(path.read_text())["budget_per_hour"] is None
    _assert_identical(load_instance(path), instance)


def test_instance_file__numpy_scalars_in_records_are_written_as_plain_json(tmp_path):
    toy = toy_instance()
    query_type = dataclasses.replace(toy.query_types[0], mean_prompt_tokens=np.int64(100), error_slo=np.float32(0.25))
    instance = toy.with_changes(query_types=(query_type, *toy.query_types[1:]))
    _assert_identical(load_instance(_write(tmp_path / "numpy.json", instance)), instance)


def test_instance_file__optional_keys_may_be_left_out(toy_payload):
    payload = copy.deepcopy(toy_payload)
    for key in ("description", "startup_s", "derived"):
        del payload[key]
    for entry in payload["configurations"]:
        del entry["name"], entry["tier"]
    loaded = instance_from_dict(payload)
    _assert_identical(loaded, toy_instance().with_changes(description=""))


def test_instance_file__a_partial_derived_block_within_tolerance_is_accepted(toy_payload):
    payload = copy.deepcopy(toy_payload)
    del payload["derived"]["route_allowed"]
    payload["derived"]["replica_price_per_hour"][1] *= 1.0 + 1e-12
    _assert_identical(instance_from_dict(payload), toy_instance())


def test_instance_file__a_utf8_byte_order_mark_is_accepted(tmp_path, toy_file):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + toy_file.read_bytes())
    _assert_identical(load_instance(path), toy_instance())


def test_instance_file__loaded_instance_drives_the_environment(toy_file):
    env = gym.make("servegym/Provisioning-v3", instance=load_instance(toy_file))
    env.reset(seed=0)
    _, reward, *_ = env.step(env.action_space.sample())
    assert np.isfinite(reward)
    assert env.unwrapped.instance.name == "toy/candidates"


def test_instance_file__query_type_ranges_agree_with_the_dataclass():
    """The loader restates QueryType's ranges to name JSON paths; both must accept and reject the same values."""
    base = toy_instance().query_types[0]
    for name, spec in export._QUERY_TYPE.fields.items():
        if not isinstance(spec, export._Number):
            continue
        for bound, step in ((spec.low, -1.0), (spec.high, 1.0)):
            dataclasses.replace(base, **{name: bound})  # the end itself is allowed by both
            outside = bound + step * max(1e-9, abs(bound) * 1e-6)
            assert not spec.admits(outside), name
            with pytest.raises(InstanceError, match=name):
                dataclasses.replace(base, **{name: outside})
    assert export._QUERY_TYPE.fields.keys() == {f.name for f in dataclasses.fields(QueryType)}


def _set(*keys: Any, value: Any) -> Callable[[Any], None]:
    """A mutation setting payload[keys[0]][keys[1]]... to ``value``."""

    def mutate(payload: Any) -> None:
        for key in keys[:-1]:
            payload = payload[key]
        payload[keys[-1]] = value

    return mutate


def _delete(*keys: Any) -> Callable[[Any], None]:
    """A mutation deleting payload[keys[0]][keys[1]]...."""

    def mutate(payload: Any) -> None:
        for key in keys[:-1]:
            payload = payload[key]
        del payload[keys[-1]]

    return mutate


def _duplicate_configuration(payload: dict[str, Any]) -> None:
    payload["configurations"][2] |= {"precision": "fp16", "name": "m-small@cheap/fp16/tp1pp1", "tier": "cheap/fp16"}


def _duplicate_key(payload: dict[str, Any]) -> str:
    return json.dumps(payload)[:-1] + ', "name": "other"}'


MISSING = object()
"""A mutation returning this leaves no file at all."""

# The toy instance: I = 2 query types (A, B), J = 2 models, G = 2 GPUs (cheap, fast), C = 3 configurations
# (m-small@cheap/fp16/tp1pp1, m-big@fast/fp16/tp2pp1, m-small@cheap/int4/tp1pp1).
# Each case: a mutation of the parsed file (in place, or returning the file's new content) and the message that
# must follow "FILE: " (its beginning).
BAD_FILES = [
    pytest.param(
        _set("gpu_price_per_hour", 1, value=-1.5),
        "$.gpu_price_per_hour[1]: value -1.5 must be finite and >= 0",
        id="negative-price",
    ),
    pytest.param(
        _set("capacity_per_hour", 1, 2, value=math.nan),
        "$.capacity_per_hour[1][2]: value NaN must be finite and >= 0",
        id="nan-capacity",
    ),
    pytest.param(
        _set("delay_s", 0, 1, value=math.inf),
        "$.delay_s[0][1]: value Infinity must be finite and >= 0",
        id="infinite-delay",
    ),
    pytest.param(
        _set("error_rate", 0, 2, value=1.5), "$.error_rate[0][2]: value 1.5 must be in [0, 1]", id="error-rate-above-1"
    ),
    pytest.param(
        _set("demand_per_hour", 0, value=-1),
        "$.demand_per_hour[0]: value -1 must be finite and >= 0",
        id="negative-demand",
    ),
    pytest.param(
        _set("model_storage_gb", 1, value=-16.0),
        "$.model_storage_gb[1]: value -16.0 must be finite and >= 0",
        id="negative-storage",
    ),
    pytest.param(
        _set("startup_s", 0, value=-5.0), "$.startup_s[0]: value -5.0 must be finite and >= 0", id="negative-startup"
    ),
    pytest.param(
        _set("storage_price_per_gb_hour", value=-0.1),
        "$.storage_price_per_gb_hour: value -0.1 must be finite and >= 0",
        id="negative-storage-price",
    ),
    pytest.param(
        _set("storage_capacity_gb", value=math.nan),
        "$.storage_capacity_gb: value NaN must be finite and >= 0",
        id="nan-storage-capacity",
    ),
    pytest.param(
        _set("budget_per_hour", value=-1),
        "$.budget_per_hour: value -1 must be finite and >= 0, or null for unlimited",
        id="negative-budget",
    ),
    pytest.param(
        _set("budget_per_hour", value=math.inf),
        "$.budget_per_hour: value Infinity must be finite and >= 0, or null for unlimited",
        id="infinity-budget",
    ),
    pytest.param(
        _set("gpu_availability", 0, value=2.5),
        "$.gpu_availability[0]: value 2.5 must be an integer >= 0",
        id="fractional-availability",
    ),
    pytest.param(
        _set("gpu_availability", 1, value=-1),
        "$.gpu_availability[1]: value -1 must be an integer >= 0",
        id="negative-availability",
    ),
    pytest.param(
        _set("gpu_availability", 0, value=10**20),
        "$.gpu_availability[0]: value 100000000000000000000 is too large",
        id="huge-integer",
    ),
    pytest.param(
        _set("configurations", 1, "tensor_parallel", value=0),
        "$.configurations[1].tensor_parallel: value 0 must be an integer >= 1",
        id="zero-tp",
    ),
    pytest.param(
        _set("configurations", 0, "precision", value="fp8"),
        '$.configurations[0].precision: value "fp8" must be one of "fp16", "int8", "int4"',
        id="unknown-precision",
    ),
    pytest.param(
        _set("config_gpu", 1, value=0),
        '$.config_gpu[1]: value 0 contradicts $.configurations[1].gpu = "fast", which is $.gpus[1]',
        id="config-gpu-contradicts",
    ),
    pytest.param(
        _set("config_model", 2, value=1),
        '$.config_model[2]: value 1 contradicts $.configurations[2].model = "m-small", which is $.models[0]',
        id="config-model-contradicts",
    ),
    pytest.param(
        _set("gpus_per_replica", 1, value=4),
        "$.gpus_per_replica[1]: value 4 must equal tensor_parallel × pipeline_parallel = 2 × 1 = 2 "
        "of $.configurations[1]",
        id="gpus-per-replica-not-tp-pp",
    ),
    pytest.param(
        _set("configurations", 1, "model", value="m-huge"),
        '$.configurations[1].model: value "m-huge" is not in $.models',
        id="unknown-model",
    ),
    pytest.param(
        _set("configurations", 0, "gpu", value="tpu"),
        '$.configurations[0].gpu: value "tpu" is not in $.gpus',
        id="unknown-gpu",
    ),
    pytest.param(
        _set("configurations", 1, "name", value="big"),
        '$.configurations[1].name: value "big" disagrees with "m-big@fast/fp16/tp2pp1"',
        id="configuration-name-disagrees",
    ),
    pytest.param(
        _set("configurations", 2, "tier", value="cheap/fp16"),
        '$.configurations[2].tier: value "cheap/fp16" disagrees with "cheap/int4"',
        id="configuration-tier-disagrees",
    ),
    pytest.param(
        _duplicate_configuration,
        '$.configurations[2]: configuration "m-small@cheap/fp16/tp1pp1" duplicates $.configurations[0]',
        id="duplicate-configuration",
    ),
    pytest.param(
        _set("query_types", 1, "name", value="A"),
        '$.query_types[1].name: value "A" duplicates $.query_types[0]',
        id="duplicate-query-type",
    ),
    pytest.param(
        _set("models", 1, value="m-small"), '$.models[1]: value "m-small" duplicates $.models[0]', id="duplicate-model"
    ),
    pytest.param(
        _set("query_types", 0, "mean_prompt_tokens", value=0),
        "$.query_types[0].mean_prompt_tokens: value 0 must be in [1, 1000000]",
        id="zero-prompt-tokens",
    ),
    pytest.param(
        _set("query_types", 1, "max_unmet_fraction", value=1.2),
        "$.query_types[1].max_unmet_fraction: value 1.2 must be in [0, 1]",
        id="unmet-fraction-above-1",
    ),
    pytest.param(
        _set("query_types", 0, "task_family", value="poetry"),
        '$.query_types[0].task_family: value "poetry" must be one of "general"',
        id="unknown-task-family",
    ),
    pytest.param(_set("name", value=""), '$.name: value "" must be a non-empty string', id="empty-name"),
    pytest.param(
        _delete("capacity_per_hour", 1),
        "$.capacity_per_hour: has 1 entry, expected I = 2 (the length of $.query_types); "
        "the shape must be (I, C) = (2, 3)",
        id="missing-row",
    ),
    pytest.param(
        _delete("delay_s", 1, 0),
        "$.delay_s[1]: has 2 entries, expected C = 3 (the length of $.configurations)",
        id="ragged-row",
    ),
    pytest.param(
        _set("gpu_price_per_hour", value=1.0),
        "$.gpu_price_per_hour: must be a list (shape (G,) = (2,)), not a number",
        id="number-for-array",
    ),
    pytest.param(
        _set("models", value="m-small"),
        "$.models: must be a non-empty list (J >= 1), not a string",
        id="string-for-list",
    ),
    pytest.param(
        _set("query_types", value=[]),
        "$.query_types: must be a non-empty list (I >= 1), not an empty list",
        id="no-query-types",
    ),
    pytest.param(
        _delete("design_utilisation"),
        '$: missing key(s) "design_utilisation"; allowed keys: "schema_version"',
        id="missing-key",
    ),
    pytest.param(
        _set("budget", value=5), '$: unknown key(s) "budget"; allowed keys: "schema_version"', id="unknown-key"
    ),
    pytest.param(
        _set("query_types", 0, "weight", value=1),
        '$.query_types[0]: unknown key(s) "weight"; allowed keys: "name"',
        id="unknown-query-type-key",
    ),
    pytest.param(
        _delete("configurations", 0, "precision"),
        '$.configurations[0]: missing key(s) "precision"',
        id="missing-configuration-key",
    ),
    pytest.param(_duplicate_key, '$: key(s) "name" given more than once', id="duplicate-json-key"),
    pytest.param(
        _set("gpu_price_per_hour", 0, value="1.0"),
        '$.gpu_price_per_hour[0]: value "1.0" must be a number, not a string',
        id="string-for-number",
    ),
    pytest.param(
        _set("query_types", 0, "error_slo", value=True),
        "$.query_types[0].error_slo: value true must be a number, not a boolean",
        id="boolean-for-number",
    ),
    pytest.param(
        _set("gpus_per_replica", 0, value=True),
        "$.gpus_per_replica[0]: value true must be an integer >= 1, not a boolean",
        id="boolean-for-integer",
    ),
    pytest.param(
        _set("derived", "max_replicas", 1, value=3),
        "$.derived.max_replicas[1]: value 3 differs from the recomputed 2; "
        'derived values are recomputed: remove the "derived" block or make it agree',
        id="derived-max-replicas",
    ),
    pytest.param(
        _set("derived", "replica_price_per_hour", 1, value=3.000003),
        "$.derived.replica_price_per_hour[1]: value 3.000003 differs from the recomputed 3.0",
        id="derived-price",
    ),
    pytest.param(
        _set("derived", "route_allowed", 1, 2, value=1),
        "$.derived.route_allowed[1][2]: value 1 differs from the recomputed 0",
        id="derived-route-allowed",
    ),
    pytest.param(_set("derived", "total", value=1), '$.derived: unknown key(s) "total"', id="derived-unknown-key"),
    pytest.param(
        _set("schema_version", value=2),
        "$.schema_version: value 2 is not supported (this loader reads schema_version 1)",
        id="schema-version-2",
    ),
    pytest.param(
        _set("schema_version", value=True), "$.schema_version: value true is not supported", id="schema-version-boolean"
    ),
    pytest.param(
        _set("design_utilisation", value=0),
        "$.design_utilisation: value 0 must be in (0, 1)",
        id="design-utilisation-0",
    ),
    pytest.param(
        _set("design_utilisation", value=1.0),
        "$.design_utilisation: value 1.0 must be in (0, 1)",
        id="design-utilisation-1",
    ),
    pytest.param(
        _set("period_hours", value=-1), "$.period_hours: value -1 must be finite and > 0", id="negative-period"
    ),
    pytest.param(lambda payload: [payload], "$: must be an object, not a list", id="top-level-list"),
    pytest.param(lambda payload: "", "the file is empty; expected a JSON object", id="empty-file"),
    pytest.param(lambda payload: " \n", "the file is empty; expected a JSON object", id="blank-file"),
    pytest.param(
        lambda payload: "{not json",
        "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2",
        id="not-json",
    ),
    pytest.param(lambda payload: b'{"name": "\xff"}', "not UTF-8 text (invalid byte at offset 10)", id="not-utf8"),
    pytest.param(lambda payload: MISSING, "no such instance file", id="missing-file"),
    pytest.param(lambda payload: "[" * 100_000, "not valid JSON: nested too deeply", id="nested-too-deeply"),
]


@pytest.mark.parametrize(("mutate", "expected"), BAD_FILES)
def test_instance_file__bad_value_is_named_by_file_and_json_path(tmp_path, toy_payload, mutate, expected):
    payload = copy.deepcopy(toy_payload)
    content = mutate(payload)
    content = payload if content is None else content
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif content is not MISSING:
        path.write_text(json.dumps(content, allow_nan=True), encoding="utf-8")
    with pytest.raises(InstanceError) as excinfo:
        load_instance(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message


def test_instance_file__a_directory_is_not_an_instance_file(tmp_path):
    with pytest.raises(InstanceError, match="^" + re.escape(f"{tmp_path}: cannot read the instance file: ")):
        load_instance(tmp_path)


def test_instance_file__json_errors_give_line_and_column(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('{\n  "name": "toy",\n  "models": [1, 2\n}\n', encoding="utf-8")
    with pytest.raises(InstanceError, match=r"cut\.json: not valid JSON: .* at line 4, column 1$"):
        load_instance(path)


def test_instance_file__every_problem_is_listed_one_per_line_up_to_the_cap(toy_payload):
    payload = copy.deepcopy(toy_payload)
    payload["capacity_per_hour"] = [[-1.0] * 3] * 2
    payload["delay_s"] = [[-1.0] * 3] * 2
    with pytest.raises(InstanceError) as excinfo:
        instance_from_dict(payload, source="my.json")
    lines = str(excinfo.value).splitlines()
    assert len(lines) == export.MAX_REPORTED_PROBLEMS + 1
    assert lines[0] == "my.json: $.capacity_per_hour[0][0]: value -1.0 must be finite and >= 0"
    assert lines[-1] == "my.json: ... and 2 more problem(s)"


def test_instance_file__cli_export_then_describe_solve_and_export_the_file(tmp_path, capsys):
    path = tmp_path / "paper.json"
    assert main(["export", "--scenario", "paper", "--out", str(path)]) == 0
    assert main(["describe", "--instance", str(path), "--top", "1"]) == 0
    assert "Query types" in capsys.readouterr().out
    assert main(["solve", "--instance", str(path), "--method", "gh"]) == 0
    assert capsys.readouterr().out.startswith("gh on paper: status feasible")
    again = tmp_path / "again.json"
    assert main(["export", "--instance", str(path), "--out", str(again)]) == 0
    assert again.read_text() == path.read_text()


@pytest.mark.parametrize("command", [["describe"], ["solve", "--method", "gh"]])
def test_instance_file__cli_reports_a_bad_file_in_one_line(tmp_path, capsys, toy_payload, command):
    payload = copy.deepcopy(toy_payload)
    payload["gpu_price_per_hour"][0] = -1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(payload), encoding="utf-8")
    assert main([*command, "--instance", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"servegym {command[0]}: error: {bad}: $.gpu_price_per_hour[0]: value -1 must be finite and >= 0\n"
    )
    assert captured.out == ""


def test_instance_file__cli_refuses_an_instance_file_with_a_scenario(capsys, toy_file):
    assert main(["describe", "--instance", str(toy_file), "--scenario", "paper"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--instance" in err and "drop --scenario" in err


def test_cli_evaluate_plays_an_instance_file(tmp_path, capsys):
    instance_file = tmp_path / "toy.json"
    assert main(["export", "--scenario", "toy", "--out", str(instance_file)]) == 0
    out = tmp_path / "eval"
    argv = ["evaluate", "--instance", str(instance_file), "--policies", "gh-static", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert "gh-static" in capsys.readouterr().out and (out / "episodes.csv").is_file()
    assert main([*argv[:3], "--scenario", "paper", *argv[3:]]) == 2
    assert "fixes every coefficient" in capsys.readouterr().err
