"""Tune the mix rule (``tuned-mix``) on each setting's tuning episodes, select on its validation episodes, freeze it.

Usage (from the repository root)::

    python scripts/tune_mix_rule.py [--env ID ...] [--finalists 3] [--out results/tune_mix] [--no-docs]

For every setting of ``servegym.envs.protocol`` (or each ``--env``) it runs ``tune_mix_rule`` of
``servegym.baselines.runner.mix_rule``: the constant action of the ``scaled`` action space with AGH's mixes (one
multiplier for every query type on the grid ``TUNING_MULTIPLIERS``, a keep margin on ``TUNING_KEEP_MARGINS``),
every grid point on the tuning episodes, the ``--finalists`` cheapest replayed on the validation episodes, the
cheapest there frozen, beside the untuned ``agh-mix`` (multiplier 1, keep margin 0) on the validation episodes.
It prints the table, writes ``--out/tune_mix.json`` (every grid point, the choice, machine, commit and date) and
``--out/tune_mix.md``, replaces the table between the ``tune-mix`` markers of docs/benchmark.md (unless
``--no-docs``), and rewrites the shipped parameters ``baselines/data/mix_rules.json`` that ``tuned-mix`` plays.
Test episodes are never played here. Each setting's entry is written as soon as it is tuned, so a killed run keeps
the settings it finished.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import gymnasium as gym

import servegym.envs  # noqa: F401  (registers the ids)
from servegym.baselines.runner.mix_rule import (
    MIX_RULES_FILE,
    TUNING_KEEP_MARGINS,
    TUNING_MULTIPLIERS,
    MixRuleParameters,
    MixRulePolicy,
    tune_mix_rule,
)
from servegym.baselines.runner.tuned_rule import mean_episode_cost
from servegym.envs.protocol import PROTOCOL, protocol_for
from servegym.errors import ServegymError
from servegym.io import atomic_write_json, atomic_write_text, block_markers, replace_marked_block, run_provenance

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "baselines" / "data" / MIX_RULES_FILE
DOCS = ("docs/benchmark.md",)
"""Documents (from the repository root) that show the table between the ``tune-mix`` markers."""
BEGIN, END = block_markers("tune-mix", "scripts/tune_mix_rule.py")
UNTUNED = "agh-mix"


def markdown_table(report: dict) -> str:
    """The tuning outcome per setting as a Markdown table."""
    lines = [
        f"Tuned {report['date'][:10]} at commit {report['commit']}: grid multiplier {report['multipliers']} × keep "
        f"margin {report['keep_margins']}, {report['finalists']} finalists; costs are $ per episode (mean over the "
        "episodes).",
        "",
        f"| setting | multiplier | keep margin | tuning $ | validation $ | `{UNTUNED}` validation $ |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for env_id, entry in report["settings"].items():
        p = entry["parameters"]
        lines.append(
            f"| `{env_id}` | {p['multiplier']:g} | {p['keep_margin']:g} | {entry['tuning_cost']:,.2f} | "
            f"{entry['validation_cost']:,.2f} | {entry[f'validation_cost_{UNTUNED}']:,.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", action="append", help="setting to tune (repeatable; default: all of the protocol)")
    parser.add_argument("--finalists", type=int, default=3, help="cheapest grid points replayed on validation")
    parser.add_argument("--out", default="results/tune_mix", help="folder for tune_mix.json and tune_mix.md")
    parser.add_argument("--no-docs", action="store_true", help="leave the table of docs/benchmark.md")
    args = parser.parse_args(argv)
    settings = args.env or list(PROTOCOL)
    unknown = [env_id for env_id in settings if env_id not in PROTOCOL]
    if unknown:
        parser.error(f"--env {unknown}: no benchmark protocol; settings with one: {sorted(PROTOCOL)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8")) if SHIPPED.exists() else {}
    report: dict = {
        **run_provenance(),
        "multipliers": list(TUNING_MULTIPLIERS),
        "keep_margins": list(TUNING_KEEP_MARGINS),
        "finalists": args.finalists,
        "settings": {},
    }
    print(f"{'setting':38} {'tuning $':>10} {'validation $':>13} {UNTUNED + ' validation $':>22}  parameters")
    for env_id in settings:
        start = time.perf_counter()
        try:
            result = tune_mix_rule(env_id, finalists=args.finalists)
        except ServegymError as error:
            print(f"tune_mix_rule: {env_id}: {error}", file=sys.stderr)
            return 2
        protocol = protocol_for(env_id)
        env = gym.make(env_id)
        untuned = mean_episode_cost(env, MixRulePolicy(env.unwrapped, MixRuleParameters()), protocol.validation)
        env.close()
        parameters = dataclasses.asdict(result.parameters)
        print(f"{env_id:38} {result.tuning_cost:10,.2f} {result.validation_cost:13,.2f} {untuned:22,.2f}  {parameters}")
        report["settings"][env_id] = {
            "parameters": parameters,
            "tuning_cost": result.tuning_cost,
            "validation_cost": result.validation_cost,
            f"validation_cost_{UNTUNED}": untuned,
            "tuning_episodes": [list(e) for e in protocol.tuning],
            "validation_episodes": [list(e) for e in protocol.validation],
            "wall_s": time.perf_counter() - start,
            "candidates": list(result.candidates),
        }
        shipped[env_id] = {
            "parameters": parameters,
            "tuning_cost": result.tuning_cost,
            "validation_cost": result.validation_cost,
            "multipliers": list(TUNING_MULTIPLIERS),
            "keep_margins": list(TUNING_KEEP_MARGINS),
            "finalists": args.finalists,
            "date": report["date"],
            "commit": report["commit"],
        }
        atomic_write_json(out / "tune_mix.json", report)
        atomic_write_json(SHIPPED, dict(sorted(shipped.items())))
    table = markdown_table(report)
    atomic_write_text(out / "tune_mix.md", table)
    for doc in () if args.no_docs else DOCS:
        replace_marked_block(ROOT / doc, BEGIN, END, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
