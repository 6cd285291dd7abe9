"""The tuned rule and the benchmark protocol: splits that never overlap, a deterministic search, shipped parameters
that load and play, and clear errors for bad parameters."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import gymnasium as gym
import numpy as np
import pytest

import servegym.envs  # noqa: F401
from servegym.baselines.runner.policies import BASELINE_POLICIES, make_policy
from servegym.baselines.runner.tuned_rule import (
    REFERENCE_ENV_ID,
    SEARCH_SPACE,
    TUNED_RULES_FILE,
    UNTUNED_RULES,
    RuleParameters,
    TunedRulePolicy,
    mean_episode_cost,
    shipped_parameters,
    tune_rule,
)
from servegym.envs import ENV_IDS
from servegym.envs.protocol import PROTOCOL, TUNING_DAYS, protocol_for
from servegym.errors import UsageError
from servegym.traces import TEST_DAYS, VALIDATION_DAY

SHORT = {"horizon_hours": 2.0, "period_minutes": 60}


def _key(episode: tuple[int, dict]) -> str:
    return json.dumps(episode, sort_keys=True)


@pytest.mark.parametrize("env_id", sorted(PROTOCOL))
def test_protocol__splits_are_disjoint_and_test_days_are_never_tuned_on(env_id):
    protocol = protocol_for(env_id)
    tuning, validation, test = (
        {_key(e) for e in split} for split in (protocol.tuning, protocol.validation, protocol.test)
    )
    assert tuning and validation and test
    assert not (tuning & validation) and not (tuning & test) and not (validation & test)
    tuned_days = {options.get("day") for _, options in (*protocol.tuning, *protocol.validation)}
    assert not tuned_days & set(TEST_DAYS)


def test_protocol__covers_every_setting_but_the_week_and_names_the_splits():
    assert set(PROTOCOL) == {env_id for env_id, kwargs in ENV_IDS.items() if "horizon_hours" not in kwargs}
    default = protocol_for(REFERENCE_ENV_ID)
    assert [options["day"] for _, options in default.tuning] == list(TUNING_DAYS)
    assert VALIDATION_DAY not in TUNING_DAYS
    with pytest.raises(UsageError, match="no benchmark protocol for 'servegym/ProvisioningWeek-v3'"):
        protocol_for("servegym/ProvisioningWeek-v3")


def test_tune_rule__is_deterministic_per_seed_and_picks_the_cheapest_finalist_on_validation():
    tuning = [(0, {"day": "2024-05-13-mon"})]
    validation = [(0, {"day": VALIDATION_DAY})]
    trials = len(UNTUNED_RULES) + 2
    runs = [
        tune_rule(REFERENCE_ENV_ID, tuning, validation, trials=trials, seed=7, finalists=2, env_kwargs=SHORT)
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    other = tune_rule(REFERENCE_ENV_ID, tuning, validation, trials=trials, seed=8, finalists=2, env_kwargs=SHORT)
    assert [t["parameters"] for t in other.trials] != [t["parameters"] for t in runs[0].trials]
    result = runs[0]
    assert [t["rule"] for t in result.trials] == [*UNTUNED_RULES, "search", "search"]
    finalists = [t for t in result.trials if "validation_cost" in t]
    assert len(finalists) == 2
    assert result.validation_cost == min(t["validation_cost"] for t in finalists)
    env = gym.make(REFERENCE_ENV_ID, **SHORT)
    replayed = mean_episode_cost(env, TunedRulePolicy(env.unwrapped, result.parameters), validation)
    assert replayed == pytest.approx(result.validation_cost, rel=1e-12)


def test_tune_rule__resumes_from_its_journal_to_the_uninterrupted_search(tmp_path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    tuning = [(0, {"day": "2024-05-13-mon"})]
    validation = [(0, {"day": VALIDATION_DAY})]
    trials = len(UNTUNED_RULES) + 2
    args = (REFERENCE_ENV_ID, tuning, validation)
    whole = tune_rule(*args, trials=trials, seed=3, env_kwargs=SHORT)
    journal = tmp_path / "search.journal"
    tune_rule(*args, trials=len(UNTUNED_RULES) + 1, seed=3, env_kwargs=SHORT, journal=journal)
    study = optuna.load_study(
        study_name=f"tuned-rule {REFERENCE_ENV_ID}", storage=JournalStorage(JournalFileBackend(str(journal)))
    )
    study.ask()  # a trial killed mid-way: left RUNNING in the journal
    seen: list[int] = []
    resumed = tune_rule(
        *args, trials=trials, seed=3, env_kwargs=SHORT, journal=journal, on_trial=lambda r: seen.append(r["number"])
    )
    assert seen == [trials - 1]  # only the missing trial ran
    assert resumed == whole
    shorter = tune_rule(*args, trials=3, seed=3, env_kwargs=SHORT, journal=journal)
    assert [t["number"] for t in shorter.trials] == [0, 1, 2]
    with pytest.raises(UsageError, match=r"holds a search with other settings"):
        tune_rule(*args, trials=trials, seed=4, env_kwargs=SHORT, journal=journal)


def test_tuned_rule__shipped_parameters_cover_the_tuned_settings_and_play():
    rules = json.loads(resources.files("servegym.baselines").joinpath("data", TUNED_RULES_FILE).read_text())
    assert REFERENCE_ENV_ID in rules
    for env_id, entry in rules.items():
        assert env_id in PROTOCOL
        parameters, tuned_on = shipped_parameters(env_id)
        assert tuned_on == env_id
        assert dataclasses.asdict(parameters) == entry["parameters"]
    assert "tuned-rule" in BASELINE_POLICIES
    env = gym.make(REFERENCE_ENV_ID, **SHORT)
    policy = make_policy("tuned-rule", env.unwrapped)
    assert policy.name == "tuned-rule"
    obs, info = env.reset(seed=0, options={"day": VALIDATION_DAY})
    policy.reset(0)
    action = policy.act(obs, info)
    assert env.action_space.contains(np.asarray(action))


def test_tuned_rule__unknown_setting_plays_the_reference_parameters_with_a_warning():
    with pytest.warns(UserWarning, match="no parameters tuned for 'servegym/Nope-v0'"):
        _, tuned_on = shipped_parameters("servegym/Nope-v0")
    assert tuned_on == REFERENCE_ENV_ID


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quantile_level": 1.5}, r"quantile_level = 1\.5 outside allowed range \[0\.5, 0\.99\]"),
        ({"headroom": float("nan")}, r"headroom = nan outside allowed range"),
        ({"payback_periods": -1}, r"payback_periods = -1 outside allowed range \[0\.0, 16\.0\]"),
        ({"drift_alpha": 0.01}, r"drift_alpha = 0\.01 must be 0 \(off\) or in \[0\.02, 0\.5\]"),
        ({"planner": "lp"}, r"planner = 'lp' not one of \['gh', 'agh', 'milp'\]"),
        ({"headroom": "1"}, r"headroom = '1' outside allowed range"),
    ],
)
def test_rule_parameters__bad_values_name_the_parameter_and_its_range(changes, message):
    with pytest.raises(UsageError, match=message):
        RuleParameters(**changes)


def test_rule_parameters__from_mapping_names_the_json_path_and_unknown_keys():
    with pytest.raises(UsageError, match=r"rules\.json: \$\['x'\]: unknown tuned-rule parameters \['level'\]"):
        RuleParameters.from_mapping({"level": 0.9}, "rules.json: $['x']")
    with pytest.raises(UsageError, match=r"rules\.json: \$\['x'\]: tuned rule: headroom = 2"):
        RuleParameters.from_mapping({"headroom": 2}, "rules.json: $['x']")
    with pytest.raises(UsageError, match="expected an object"):
        RuleParameters.from_mapping([0.9], "rules.json: $['x']")


def test_search_space__contains_the_untuned_defaults():
    defaults = RuleParameters()
    for name, (low, high) in SEARCH_SPACE.items():
        assert low <= getattr(defaults, name) <= high
