"""Shipped oracle references: the file's checks, fingerprints, building a record, and the check against a fresh
solve (docs/benchmark.md, "Reference points")."""

import copy
import json

import gymnasium as gym
import pytest

import servegym.envs  # noqa: F401
from servegym.agents.oracle_references import (
    REFERENCE_RULE,
    ReferenceFileError,
    ReferenceMismatchError,
    ReferenceSet,
    build_reference,
    check_fresh,
    check_replay,
    episode_fingerprint,
    load_references,
    parse_references,
    repolish_reference,
)
from servegym.envs.protocol import PROTOCOL

ENV_ID = "servegym/Provisioning-v3"
DAY = "2024-05-16-thu"
TOY = {"scenario": "toy", "horizon_hours": 2.0, "queueing": False}
TOY_SETTINGS = json.dumps(TOY, sort_keys=True)


@pytest.fixture(scope="module")
def toy_env():
    env = gym.make(ENV_ID, **TOY)
    yield env
    env.close()


@pytest.fixture(scope="module")
def toy_reference(toy_env):
    return build_reference(toy_env, ENV_ID, 0, {"day": DAY}, env_settings=TOY_SETTINGS)


@pytest.fixture()
def payload(toy_reference):
    return ReferenceSet((toy_reference,), REFERENCE_RULE.to_dict(), {"name": "highs", "version": "x"}).to_dict()


def test_shipped_file__parses_and_lists_every_protocol_test_episode_as_solved_or_missing():
    references = load_references()
    assert dict(references.stopping_rule) == REFERENCE_RULE.to_dict()
    assert references.stopping_rule["time_limit_s"] is None, "never a wall-clock limit"
    solved = {(r.env_id, r.day, r.seed) for r in references if r.env_settings == "{}"}
    wanted = {(env_id, options.get("day"), seed) for env_id, p in PROTOCOL.items() for seed, options in p.test}
    assert solved | set(references.missing) == wanted
    assert not solved & set(references.missing)
    for reference in references:
        assert reference.bound <= reference.milp_objective * (1 + 1e-9)
        assert reference.status == "optimal" or reference.gap > REFERENCE_RULE.relative_gap


def test_build_reference__the_toy_oracle_costs_its_proven_optimum_and_equal_episodes_share_a_solve(
    toy_env, toy_reference
):
    # Queueing off: the environment charges exactly the MILP's cost, so the played schedule costs the objective.
    assert toy_reference.status == "optimal" and toy_reference.gap <= REFERENCE_RULE.relative_gap
    assert toy_reference.oracle_cost == pytest.approx(toy_reference.milp_objective, rel=1e-9)
    assert toy_reference.bound <= toy_reference.oracle_cost
    other_seed = build_reference(toy_env, ENV_ID, 1, {"day": DAY}, env_settings=TOY_SETTINGS, known=[toy_reference])
    assert other_seed.fingerprint == toy_reference.fingerprint and other_seed.solve_s == 0.0
    assert other_seed.oracle_cost == pytest.approx(toy_reference.oracle_cost, rel=1e-12)


def test_repolish_reference__reproduces_the_record_and_refuses_an_episode_whose_inputs_changed(toy_env, toy_reference):
    again = repolish_reference(toy_env, toy_reference)
    assert again.oracle_cost == pytest.approx(toy_reference.oracle_cost, rel=1e-12)
    assert again.polish_moves == toy_reference.polish_moves and (again.replicas == toy_reference.replicas).all()
    assert again.oracle_cost <= again.milp_schedule_cost * (1 + 1e-12)
    other = gym.make(ENV_ID, **{**TOY, "reconfiguration_cost": 5.0})
    with pytest.raises(ReferenceMismatchError, match="inputs changed since it was solved"):
        repolish_reference(other, toy_reference)


def test_fingerprint__changes_with_the_day_and_the_instance(toy_env, toy_reference):
    toy_env.reset(seed=0, options={"day": "2024-05-18-sat"})
    assert episode_fingerprint(toy_env.unwrapped) != toy_reference.fingerprint
    other = gym.make(ENV_ID, **{**TOY, "reconfiguration_cost": 5.0})
    other.reset(seed=0, options={"day": DAY})
    assert episode_fingerprint(other.unwrapped) != toy_reference.fingerprint


def test_references__round_trip_through_the_file(tmp_path, payload, toy_reference):
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(payload))
    (back,) = load_references(path).episodes
    assert back.key == toy_reference.key and back.oracle_cost == toy_reference.oracle_cost
    assert (back.replicas == toy_reference.replicas).all()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.update(format="other/1"), r"\$\.format"),
        (lambda p: p["episodes"][0].pop("bound"), r"\$\.episodes\[0\]\.bound: missing"),
        (lambda p: p["episodes"][0].update(oracle_cost="12"), r"\$\.episodes\[0\]\.oracle_cost: expected"),
        (lambda p: p["episodes"][0].update(bound=1e9), r"\$\.episodes\[0\]\.bound: .* exceeds milp_objective"),
        (lambda p: p["episodes"][0].update(fingerprint="abc"), r"\$\.episodes\[0\]\.fingerprint"),
        (lambda p: p["episodes"][0].update(status="done"), r"\$\.episodes\[0\]\.status"),
        (lambda p: p["episodes"][0]["schedule"]["replicas"].append([1]), r"\$\.episodes\[0\]\.schedule\.replicas"),
        (lambda p: p["episodes"].append(copy.deepcopy(p["episodes"][0])), r"\$\.episodes\[1\]: the same episode"),
        (lambda p: p["stopping_rule"].pop("node_limit"), r"\$\.stopping_rule\.node_limit: missing"),
        (lambda p: p["stopping_rule"].pop("polish_sweeps"), r"\$\.stopping_rule\.polish_sweeps: missing"),
        (lambda p: p.update(format="servegym-oracle-references/1"), r"\$\.format: expected .*/2"),
        (lambda p: p["episodes"][0]["schedule"].pop("milp_replicas"), r"\$\.episodes\[0\]\.schedule\.milp_replicas"),
        (lambda p: p["episodes"][0]["schedule"]["milp_replicas"].pop(), r"\$\.episodes\[0\]\.schedule\.milp_replicas"),
        (lambda p: p["episodes"][0].pop("milp_schedule_cost"), r"\$\.episodes\[0\]\.milp_schedule_cost: missing"),
        (lambda p: p["episodes"][0].update(milp_schedule_cost=0.0), r"\$\.episodes\[0\]\.oracle_cost: .* exceeds"),
        (lambda p: p["episodes"][0].update(polish_moves=-1), r"\$\.episodes\[0\]\.polish_moves"),
        (lambda p: p.update(missing=[{"env_id": ENV_ID, "seed": 0}]), r"\$\.missing\[0\]\.day: missing"),
    ],
)
def test_references__a_damaged_file_fails_naming_the_file_and_the_field(tmp_path, payload, change, field):
    change(payload)
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ReferenceFileError, match=rf"refs\.json: {field}"):
        load_references(path)


def test_references__unreadable_or_non_json_files_fail_naming_the_file(tmp_path):
    with pytest.raises(ReferenceFileError, match=r"missing\.json: cannot read"):
        load_references(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ReferenceFileError, match=r"bad\.json: not JSON"):
        load_references(tmp_path / "bad.json")


def test_references__a_schedule_for_another_instance_fails_naming_the_field(toy_env, payload):
    payload["episodes"][0]["schedule"]["configurations"][0] = "no-such-config"
    (reference,) = parse_references(payload, "refs.json").episodes
    toy_env.reset(seed=0, options={"day": DAY})
    with pytest.raises(ReferenceFileError, match=r"refs\.json: \$\.episodes\[0\]\.schedule\.configurations"):
        reference.schedule(toy_env.unwrapped)


def test_check_replay_and_check_fresh__accept_within_the_gap_and_name_the_record_outside(payload):
    (reference,) = parse_references(payload, "refs.json").episodes
    check_replay(reference, reference.oracle_cost)
    with pytest.raises(ReferenceMismatchError, match=r"refs\.json: \$\.episodes\[0\]\.oracle_cost"):
        check_replay(reference, reference.oracle_cost * 1.01)
    gap = REFERENCE_RULE.relative_gap
    check_fresh(reference, reference.oracle_cost * (1 + 0.9 * gap), 0.0, gap)
    with pytest.raises(ReferenceMismatchError, match=r"refs\.json: \$\.episodes\[0\]: a fresh oracle solve costs"):
        check_fresh(reference, reference.oracle_cost * (1 + 2 * gap), 0.0, gap)
    with pytest.raises(ReferenceMismatchError, match="outside the shipped reference"):
        check_fresh(reference, reference.bound * (1 - 2 * gap), 0.0, gap)


def test_shipped_short_check_episode__matches_a_fresh_solve_within_its_proven_gap():
    references = load_references()
    shipped = [r for r in references if r.env_settings != "{}"]
    assert shipped, "the file ships a short check episode"
    reference = shipped[0]
    env = gym.make(reference.env_id, **json.loads(reference.env_settings))
    options = {"day": reference.day}
    fresh = build_reference(env, reference.env_id, reference.seed, options, env_settings=reference.env_settings)
    assert fresh.fingerprint == reference.fingerprint
    check_fresh(reference, fresh.oracle_cost, fresh.gap, REFERENCE_RULE.relative_gap)
    assert fresh.bound <= reference.milp_objective * (1 + 1e-9) and reference.bound <= fresh.milp_objective * (1 + 1e-9)


@pytest.mark.slow
def test_shipped_protocol_episode__matches_a_fresh_solve_within_its_proven_gap():
    solved = [r for r in load_references() if r.env_settings == "{}" and r.solve_s > 0]
    reference = min(solved, key=lambda r: r.solve_s)  # the quickest full-day episode
    env = gym.make(reference.env_id)
    options = {"day": reference.day} if reference.day else {}
    fresh = build_reference(env, reference.env_id, reference.seed, options)
    assert fresh.fingerprint == reference.fingerprint
    check_fresh(reference, fresh.oracle_cost, fresh.gap, REFERENCE_RULE.relative_gap)
