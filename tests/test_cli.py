"""The servegym command line: scenarios, describe and export, and one grammar across every command."""

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


# One grammar: the parsers walked


def _subparsers(parser):
    """(command path, parser) of every command and sub-command."""
    import argparse

    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((name, sub))
                found += [(f"{name} {inner}", p) for inner, p in _subparsers(sub)]
    return found


def _options(parser):
    """Visible option actions of a parser (no --help, no hidden aliases)."""
    import argparse

    return [
        action
        for action in parser._actions
        if action.option_strings
        and action.help is not argparse.SUPPRESS
        and not isinstance(action, (argparse._HelpAction, argparse._VersionAction))
    ]


def test_cli__every_option_of_every_command_shows_its_default_in_help():
    import argparse

    from servegym.cli import build_parser
    from servegym.cli._common import HelpFormatter

    missing = []
    for command, sub in _subparsers(build_parser()):
        formatter = HelpFormatter(prog=sub.prog)
        for action in _options(sub):
            if action.required or isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                continue
            if "default" not in formatter._get_help_string(action):
                missing.append(f"{command} {action.option_strings[0]}")
        assert "default" in sub.format_help() or not _options(sub)
    assert not missing, missing


def test_cli__one_name_per_option_across_commands():
    from servegym.cli import build_parser

    names: dict[str, set[str]] = {}
    dests: dict[str, set[str]] = {}
    commands: dict[str, set[str]] = {}
    for command, sub in _subparsers(build_parser()):
        for action in _options(sub):
            names.setdefault(action.dest, set()).update(action.option_strings)
            for flag in action.option_strings:
                dests.setdefault(flag, set()).add(action.dest)
                commands.setdefault(flag, set()).add(command)
    assert {dest: flags for dest, flags in names.items() if len(flags) > 1} == {}
    assert {flag: d for flag, d in dests.items() if len(d) > 1} == {}
    assert "--env-id" not in dests and "--timesteps" not in dests  # deprecated spellings are hidden
    assert {"evaluate", "train"} <= commands["--env"] and {"evaluate", "train"} <= commands["--env-kwargs"]
    assert {"evaluate", "score", "train"} <= commands["--seeds"]
    assert {"evaluate", "train", "score"} <= commands["--demand"]
    assert {"export", "evaluate", "train", "score", "report", "trace inspect"} <= commands["--out"]


def test_cli__deprecated_flags_still_work():
    import warnings

    from servegym.cli import build_parser

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate = build_parser().parse_args(["evaluate", "--env-id", "servegym/ProvisioningStress-v3"])
        train = build_parser().parse_args(["train", "--timesteps", "64", "--seed", "3"])
        score = build_parser().parse_args(["score", "--model", "runs/a", "--baselines", "gh-hold,agh-static"])
    assert evaluate.env == "servegym/ProvisioningStress-v3"
    assert train.total_timesteps == 64 and train.seeds == [3]
    assert score.policies == ["gh-hold", "agh-static"]
    assert [str(w.message) for w in caught] == [
        "servegym evaluate: --env-id is deprecated; use --env",
        "servegym train: --timesteps is deprecated; use --total-timesteps",
        "servegym train: --seed is deprecated; use --seeds",
        "servegym score: --baselines is deprecated; use --policies",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--env", "servegym/Provisioning-v3", "--env-id", "servegym/ProvisioningStress-v3"],
        ["evaluate", "--env-id=servegym/ProvisioningStress-v3", "--env=servegym/Provisioning-v3"],
        ["train", "--timesteps", "64", "--total-timesteps", "128"],
        ["train", "--seed", "1", "--seeds", "0,1"],
        ["score", "--model", "runs/a", "--baselines", "gh-hold", "--policies", ""],
    ],
)
def test_cli__a_deprecated_flag_and_its_new_name_together_are_refused(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "both given" in err and "deprecated name" in err and len(err.strip().splitlines()) == 1


def test_cli__version_and_a_top_level_help_with_an_example_per_command(capsys):
    from servegym import __version__
    from servegym.cli import COMMANDS

    with pytest.raises(SystemExit) as excinfo:
        main(["--version"])
    assert excinfo.value.code == 0
    assert capsys.readouterr().out.strip() == f"servegym {__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for module in COMMANDS:
        assert f"  {module.NAME}  " in out and module.EXAMPLE in out
    assert "``" not in out and ":class:" not in out


def test_cli__evaluate_takes_env_kwargs_and_plays_the_ids_own_demand(tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "paper"
    argv = ["evaluate", "--env", "servegym/ProvisioningPaper-v3", "--env-kwargs", '{"horizon_hours": 1}',
            "--policies", "gh-static", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    episodes = pd.read_csv(out / "episodes.csv")
    assert episodes["demand"].str.startswith("synthetic").all()
    assert len(pd.read_csv(out / "periods.csv")) == 12  # 1 h of 5-minute periods


def test_cli__evaluate_refuses_a_keyword_given_by_flag_and_env_kwargs(tmp_path, capsys):
    argv = ["evaluate", "--env-kwargs", '{"scenario": "paper"}', "--scenario", "paper", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "--scenario and --env-kwargs 'scenario' both given" in capsys.readouterr().err


def test_cli__evaluate_warns_when_a_model_plays_another_setting(tmp_path, capsys):
    from servegym.agents.train_config import TrainConfig, save_run_config
    from servegym.cli.evaluate_command import warn_other_setting

    run = tmp_path / "run"
    run.mkdir()
    save_run_config(TrainConfig(out_dir=str(run), env_id="servegym/ProvisioningStress-v3"), {})
    assert (
        warn_other_setting([f"sb3:{run}"], "servegym/ProvisioningStress-v3", {"demand": "azure:2024-05-16-thu"}) == []
    )
    warnings = warn_other_setting([f"sb3:{run}", "gh-static"], "servegym/Provisioning-v3", {})
    assert len(warnings) == 1
    assert (
        "was trained on servegym/ProvisioningStress-v3" in warnings[0]
        and "plays servegym/Provisioning-v3" in warnings[0]
    )
    assert warnings[0] in capsys.readouterr().err


def test_cli__report_takes_partial():
    from servegym.cli import build_parser

    assert build_parser().parse_args(["report", "store", "--partial"]).partial is True
    assert build_parser().parse_args(["report", "store"]).partial is False
