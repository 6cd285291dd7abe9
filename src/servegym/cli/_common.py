"""What several commands share: the parser class and help format, argument types, the flags with one meaning
everywhere (``--env``, ``--env-kwargs``, ``--demand``, ``--seeds``, ``--catalog``, scenario selection), and
deprecated aliases of renamed flags."""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from servegym.envs import DEFAULT_ENV_ID, ENV_IDS
from servegym.envs.instance import Instance, InstanceError
from servegym.errors import UsageError

DEMAND_HELP = (
    "demand source: azure-train, azure-test, azure-validation, azure-week, azure:<day>, synthetic, or "
    "trace:PATH[?key=value&...] for your own trace file (docs/traces.md, 'Your own traces'; "
    "servegym trace inspect PATH shows what it gives)"
)
SB3_POLICY_PREFIX = "sb3:"
"""Prefix of a trained model's run folder in ``--policies`` (``sb3:RUN_DIR[@best]``)."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, ``PROG: error: MESSAGE (see PROG --help)``, status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (examples keep their lines); every option's help ends with its default.

    A default is appended as ``(default: VALUE)``, lists comma-joined, unless the help already says ``default``;
    flags (``store_true``) and options whose default is None say nothing here, so their help text states what
    happens without them.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or "default" in text
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
        ):
            return text
        shown = ",".join(str(v) for v in default) if isinstance(default, (list, tuple)) else str(default)
        if isinstance(default, dict):
            shown = json.dumps(default)
        return f"{text} (default: {shown.replace('%', '%%') or 'none'})"


ALIASES_USED = "deprecated_aliases_used"
"""Namespace attribute listing the (old flag, new flag) pairs a command line used (:func:`check_aliases`)."""


def check_aliases(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Refuse a command line that gives a deprecated flag and its new name both (argparse would keep the later).

    Raises:
        UsageError: Naming both flags.
    """
    for old, new in getattr(args, ALIASES_USED, []):
        if any(token == new or token.startswith(new + "=") for token in argv):
            raise UsageError(f"{old} and {new} both given; {old} is the deprecated name of {new}, pass one")


class DeprecatedAlias(argparse.Action):
    """An old flag name that still works: sets ``target`` (the new option's dest) and issues a
    ``DeprecationWarning`` (shown with ``python -W default``; stderr stays one line per error)."""

    def __init__(self, option_strings: list[str], dest: str, *, target: str, new_flag: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)
        self.target = target
        self.new_flag = new_flag

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        message = f"{parser.prog}: {option_string} is deprecated; use {self.new_flag}"
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        setattr(namespace, self.target, values)
        used = getattr(namespace, ALIASES_USED, [])
        setattr(namespace, ALIASES_USED, [*used, (option_string, self.new_flag)])


def add_alias(parser: argparse.ArgumentParser, old_flag: str, new_flag: str, target: str, **kwargs: Any) -> None:
    """Accept ``old_flag`` (hidden from help) as ``new_flag`` (dest ``target``); ``kwargs`` as the new option's
    ``type`` and ``choices``, so bad values fail naming the flag the user typed."""
    parser.add_argument(old_flag, action=DeprecatedAlias, target=target, new_flag=new_flag, **kwargs)


def int_at_least(low: int, words: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``, described as ``words`` in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {words}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {words}, got {value}")
        return value

    return parse


non_negative_int = int_at_least(0, "an integer >= 0")
positive_int = int_at_least(1, "a positive integer")


def csv_list(text: str) -> list[str]:
    """Comma-separated words, blanks dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def seeds(text: str) -> list[int]:
    """Comma-separated episode seeds: at least one integer >= 0."""
    parts = csv_list(text)
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0 (e.g. 0,1,2), got {text!r}")
    values = []
    for part in parts:
        try:
            seed = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not an integer; expected comma-separated integers >= 0 (e.g. 0,1,2)"
            ) from None
        if seed < 0:
            raise argparse.ArgumentTypeError(f"seed {seed} is negative; seeds are integers >= 0")
        values.append(seed)
    return values


def json_object(text: str) -> dict:
    """A JSON object (``--env-kwargs``, ``--hyperparameters``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"horizon_hours\": 24}}', got {text!r}")
    return value


def period_minutes(text: str) -> int:
    """A period length in minutes that divides the day (1440)."""
    minutes = positive_int(text)
    if 1440 % minutes:
        divisors = ", ".join(str(m) for m in range(1, 1441) if 1440 % m == 0)
        raise argparse.ArgumentTypeError(f"{minutes} does not divide 1440 minutes; allowed: {divisors}")
    return minutes


def days(text: str) -> list[str]:
    """Azure days: ``test``, ``train``, ``all`` or day names, comma-separated."""
    from servegym.traces import AZURE_DAYS, TEST_DAYS, TRAIN_DAYS

    named = {"test": list(TEST_DAYS), "train": list(TRAIN_DAYS), "all": list(AZURE_DAYS)}
    chosen: list[str] = []
    for part in csv_list(text):
        if part in named:
            chosen += named[part]
        elif part in AZURE_DAYS:
            chosen.append(part)
        else:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not an Azure day; use test, train, all or names from {list(AZURE_DAYS)}"
            )
    return chosen


def _size(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be three integers I,J,K (e.g. 6,6,10), got {text!r}") from None
    if len(size) != 3:
        raise argparse.ArgumentTypeError(f"--size must be three integers I,J,K (e.g. 6,6,10), got {text!r}")
    return size  # type: ignore[return-value]


def known_policies() -> list[str]:
    """Baseline policy names and ``oracle``."""
    from servegym.baselines.policies import BASELINE_POLICIES

    return [*BASELINE_POLICIES, "oracle"]


def policy_names(text: str, *, trained: bool, allow_empty: bool) -> list[str]:
    """Comma-separated policy names: baselines, ``oracle`` and, if ``trained``, ``sb3:RUN_DIR[@best]``."""
    names = csv_list(text)
    known = known_policies()
    choices = ", ".join(known) + (f" or {SB3_POLICY_PREFIX}RUN_DIR[@best]" if trained else "")
    if not names and not allow_empty:
        raise argparse.ArgumentTypeError(f"no policy given in {text!r}; choose from {choices}")
    for name in names:
        model = trained and name.startswith(SB3_POLICY_PREFIX) and len(name) > len(SB3_POLICY_PREFIX)
        if name not in known and not model:
            raise argparse.ArgumentTypeError(f"unknown policy {name!r}; choose from {choices}")
    return names


def add_env_argument(parser: argparse.ArgumentParser, help_text: str = "registered environment id") -> None:
    """``--env ID`` (and the deprecated ``--env-id``)."""
    parser.add_argument(
        "--env", choices=list(ENV_IDS), default=DEFAULT_ENV_ID, metavar="ID", help=f"{help_text}: {', '.join(ENV_IDS)}"
    )
    add_alias(parser, "--env-id", "--env", "env", choices=list(ENV_IDS))


def add_env_kwargs_argument(parser: argparse.ArgumentParser) -> None:
    """``--env-kwargs JSON``: keywords of ``gymnasium.make``."""
    parser.add_argument(
        "--env-kwargs",
        type=json_object,
        default={},
        metavar="JSON",
        help="JSON object of gymnasium.make keywords, e.g. '{\"horizon_hours\": 2}'",
    )


def add_catalog_argument(parser: argparse.ArgumentParser) -> None:
    """``--catalog DIR``."""
    parser.add_argument(
        "--catalog",
        metavar="DIR",
        help="directory of catalog CSVs (gpus, models, quality, quantization, startup) whose rows override or "
        "extend the shipped ones by name (docs/catalog.md); default: the shipped catalog only",
    )


def add_scenario_arguments(
    parser: argparse.ArgumentParser, *, instance_file: bool = True, seed_help: str = "seed for --scenario random"
) -> None:
    """``--scenario``, ``--size``, ``--seed`` (described by ``seed_help``), ``--catalog`` and (``instance_file``)
    ``--instance``."""
    from servegym.envs.scenarios import DEFAULT_SCENARIO, SCENARIOS

    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help=f"named scenario (default: {DEFAULT_SCENARIO})")
    parser.add_argument(
        "--size",
        type=_size,
        metavar="I,J,K",
        help="sizes for --scenario random (max 40,40,40; over 24 tiers adds spot and 2nd-cloud offers); "
        "default: the random scenario's own",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help=seed_help)
    add_catalog_argument(parser)
    if instance_file:
        parser.add_argument(
            "--instance",
            metavar="FILE.json",
            help="instance file in the exported schema (docs/instance-schema.md) instead of a scenario "
            "(default: build the scenario)",
        )


def selected_instance(args: argparse.Namespace) -> Instance:
    """The instance the scenario arguments (or ``--instance``) describe."""
    from servegym.envs.scenarios import DEFAULT_SCENARIO, make_instance

    instance_file = getattr(args, "instance", None)
    if instance_file is not None:
        given = [
            flag
            for flag, value in (("--scenario", args.scenario), ("--size", args.size), ("--catalog", args.catalog))
            if value is not None
        ]
        if given:
            raise InstanceError(
                f"--instance {instance_file} fixes every coefficient; drop {', '.join(given)} (they build a scenario)"
            )
        from servegym.envs.export import load_instance

        return load_instance(instance_file)
    return make_instance(args.scenario or DEFAULT_SCENARIO, seed=args.seed, size=args.size, catalog=args.catalog)


def no_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``."""
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
