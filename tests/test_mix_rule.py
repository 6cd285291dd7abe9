"""The mix rule (servegym.baselines.runner.mix_rule): hand counts on the toy, the same replicas as the ``scaled``
action space at a constant action, the shipped tuned parameters, and the tuning search."""

import json
from importlib import resources

import gymnasium as gym
import numpy as np
import pytest

from servegym.agents.action_wrappers import ScaledPlanAction
from servegym.baselines.runner.episodes import run_episode
from servegym.baselines.runner.mix_rule import (
    MIX_LEVELS,
    MIX_RULES_FILE,
    TUNED_MIX,
    TUNING_KEEP_MARGINS,
    TUNING_MULTIPLIERS,
    MixProvisioner,
    MixRuleParameters,
    MixRulePolicy,
    shipped_mix_parameters,
    tune_mix_rule,
)
from servegym.baselines.runner.policies import BASELINE_POLICIES, MIX_POLICIES, make_policy
from servegym.envs import DEFAULT_ENV_ID
from servegym.envs.protocol import PROTOCOL, protocol_for
from servegym.envs.provisioning import ProvisioningEnv
from servegym.envs.toy import toy_instance
from servegym.errors import UsageError

SHORT = {"horizon_hours": 2.0}


def toy_base() -> ProvisioningEnv:
    return ProvisioningEnv(instance=toy_instance(), demand="synthetic", period_minutes=60, horizon_hours=3)


def test_mix_provisioner__replica_counts_and_keep_margin_by_hand_on_the_toy():
    env = toy_base()
    _, info = env.reset(seed=0)
    mix = MixProvisioner(env, (1.0,), "gh")
    names = env.instance.configuration_names
    big = [name.startswith("m-big") for name in names].index(True)

    def only_big(count: int) -> list[int]:
        return [count if c == big else 0 for c in range(len(names))]

    # envs/toy.py: GH's peak plan is one big replica (μ 250 req/h per type, design utilisation 0.8: 200 req/h).
    assert mix.replicas(np.array([160.0, 40.0]), None, info).tolist() == only_big(1)  # 200 / 200 = 1
    assert mix.replicas(np.array([240.0, 40.0]), None, info).tolist() == only_big(2)  # 280 / 200 = 1.4 → 2
    running = {**info, "replicas": np.array(only_big(3))}
    assert mix.replicas(np.array([240.0, 40.0]), 0.2, running).tolist() == only_big(2)  # ⌈1.4 · 1.2⌉ = 2 < 3
    assert mix.replicas(np.array([240.0, 40.0]), 0.5, running).tolist() == only_big(3)  # ⌈1.4 · 1.5⌉ = 3: keep
    assert mix.mix_index(np.array([1.0, 1.0])) == 0
    with pytest.raises(ValueError, match=r"rule: mix_levels = \(1.0, 0.5\) must increase"):
        MixProvisioner(env, (1.0, 0.5), owner="rule")
    with pytest.raises(ValueError, match="mix_planner 'milp' not one of"):
        MixProvisioner(env, planner="milp")


@pytest.mark.parametrize(("multiplier", "keep_margin"), [(1.0, 0.0), (1.25, 0.25)])  # exact in float32
def test_mix_rule__plays_the_same_replicas_as_the_scaled_space_at_a_constant_action(multiplier, keep_margin):
    env = gym.make(DEFAULT_ENV_ID, **SHORT)
    rule = MixRulePolicy(env.unwrapped, MixRuleParameters(multiplier, keep_margin, "agh"))
    ruled, _ = run_episode(env, rule, seed=0, options={})
    wrapped = ScaledPlanAction(gym.make(DEFAULT_ENV_ID, **SHORT), low=0.8, high=1.3, mix_planner="agh")
    action = np.array([multiplier] * wrapped.unwrapped.instance.num_query_types + [keep_margin], np.float32)
    wrapped.reset(seed=0)
    total, done = 0.0, False
    while not done:
        _, _, terminated, truncated, info = wrapped.step(action)
        total += info["total_cost"]
        done = terminated or truncated
    assert ruled["total_cost"] == pytest.approx(total, rel=1e-12)
    assert tuple(rule.mix.mix_levels) == MIX_LEVELS
    record = rule.decision_record()
    assert record["multiplier[0]"] == multiplier and record["keep_margin"] == keep_margin
    assert record["mix_level"] in MIX_LEVELS


def test_mix_rule__parameters_are_checked_and_named_in_errors():
    with pytest.raises(UsageError, match=r"multiplier = 0\.0 must be > 0"):
        MixRuleParameters(0.0)
    with pytest.raises(UsageError, match=r"keep_margin = -0\.1 must be ≥ 0"):
        MixRuleParameters(1.0, -0.1)
    with pytest.raises(UsageError, match="planner 'milp' not one of"):
        MixRuleParameters(planner="milp")
    where = "mix_rules.json: $['x'].parameters"
    with pytest.raises(UsageError, match=r"\$\['x'\].parameters: unknown parameters \['headroom'\]"):
        MixRuleParameters.from_mapping({"headroom": 1.0}, where)
    with pytest.raises(UsageError, match=r"\$\['x'\].parameters: could not convert"):
        MixRuleParameters.from_mapping({"multiplier": "lots"}, where)
    with pytest.raises(UsageError, match=r"\$\['x'\].parameters: mix rule: keep_margin = -1.0"):
        MixRuleParameters.from_mapping({"keep_margin": -1}, where)
    with pytest.raises(UsageError, match="expected an object"):
        MixRuleParameters.from_mapping([1.0], where)
    rule = MixRulePolicy(toy_base(), MixRuleParameters(planner="gh"))
    with pytest.raises(UsageError, match="built with gh's mixes, asked for agh's"):
        rule.choose(MixRuleParameters(planner="agh"))


def test_mix_rule__baseline_names_and_the_shipped_tuned_parameters():
    assert set(MIX_POLICIES) <= set(BASELINE_POLICIES)
    env = gym.make(DEFAULT_ENV_ID, **SHORT)
    assert make_policy("agh-mix", env.unwrapped).parameters == MixRuleParameters(1.0, 0.0, "agh")
    assert make_policy("gh-mix", env.unwrapped).parameters.planner == "gh"
    tuned = make_policy(TUNED_MIX, env.unwrapped)
    assert tuned.name == TUNED_MIX and tuned.parameters == shipped_mix_parameters(DEFAULT_ENV_ID)[0]
    shipped = json.loads(resources.files("servegym.baselines").joinpath("data", MIX_RULES_FILE).read_text())
    assert set(shipped) == set(PROTOCOL)  # every setting of the protocol has its own
    for entry in shipped.values():
        parameters = MixRuleParameters.from_mapping(entry["parameters"], "shipped")
        assert parameters.planner == "agh" and parameters.multiplier in TUNING_MULTIPLIERS
        assert parameters.keep_margin in TUNING_KEEP_MARGINS
    week = gym.make("servegym/ProvisioningWeek-v3")
    with pytest.warns(UserWarning, match="no parameters tuned for 'servegym/ProvisioningWeek-v3'"):
        assert make_policy(TUNED_MIX, week.unwrapped).parameters == shipped_mix_parameters(DEFAULT_ENV_ID)[0]


def test_tune_mix_rule__picks_among_the_tuning_finalists_on_validation_and_never_plays_test(monkeypatch):
    from servegym.baselines.runner import mix_rule

    protocol = protocol_for(DEFAULT_ENV_ID)
    played = []
    real = mix_rule.mean_episode_cost

    def spy(env, policy, episodes):
        played.extend(episodes)
        return real(env, policy, episodes)

    monkeypatch.setattr(mix_rule, "mean_episode_cost", spy)
    one = tune_mix_rule(DEFAULT_ENV_ID, multipliers=(1.0,), keep_margins=(0.0, 0.5), finalists=1, planner="gh")
    tuning = {c["keep_margin"]: c["tuning_cost"] for c in one.candidates}
    assert one.parameters.keep_margin == min(tuning, key=tuning.get) and one.tuning_cost == min(tuning.values())
    assert [("validation_cost" in c) for c in one.candidates].count(True) == 1
    assert not set(map(repr, played)) & set(map(repr, protocol.test))
    both = tune_mix_rule(DEFAULT_ENV_ID, multipliers=(1.0,), keep_margins=(0.0, 0.5), finalists=2, planner="gh")
    validation = {c["keep_margin"]: c["validation_cost"] for c in both.candidates}
    assert both.parameters.keep_margin == min(validation, key=validation.get)
    assert both.candidates[0]["tuning_cost"] == one.candidates[0]["tuning_cost"]  # deterministic
    env = gym.make(DEFAULT_ENV_ID)
    replay = real(env, MixRulePolicy(env.unwrapped, both.parameters), protocol.validation)
    assert both.validation_cost == pytest.approx(replay, rel=1e-12)
    with pytest.raises(UsageError, match=r"multiplier = -1\.0 must be > 0"):
        tune_mix_rule(DEFAULT_ENV_ID, multipliers=(-1.0,), keep_margins=(0.0,))
    with pytest.raises(UsageError, match="finalists = 0"):
        tune_mix_rule(DEFAULT_ENV_ID, finalists=0)
    with pytest.raises(UsageError, match="no benchmark protocol for 'servegym/ProvisioningWeek-v3'"):
        tune_mix_rule("servegym/ProvisioningWeek-v3")
