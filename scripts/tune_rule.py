"""Tune the rule (``tuned-rule``) on each setting's tuning episodes, select on its validation episodes, freeze it.

Usage (from the repository root)::

    python scripts/tune_rule.py [--env ID ...] [--trials 60] [--seed 0] [--finalists 5] [--out results/tune_rule]

For every setting it runs the search of ``servegym.baselines.tuned_rule.tune_rule`` on the episodes of
``servegym.envs.protocol`` (Optuna TPE, seeded, one trial after another; a journal in ``--out`` lets a killed run
resume where it stopped; ``--fresh`` discards the journals, as after a change of the world), then plays the
frozen parameters and the untuned ``gh-quantile-hold`` on the validation episodes, prints the table, writes
``--out/tune_rule.json`` (every trial, the choice, the machine and commit) and ``--out/tune_rule.md``, replaces
the table between the ``tune-rule`` markers of docs/benchmark.md and docs/results.md (unless ``--no-docs``), and
rewrites the shipped parameters ``baselines/data/tuned_rules.json`` that ``tuned-rule`` plays.
Test episodes are never played here: they are the leaderboard's.
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
from servegym.baselines.policies import make_policy
from servegym.baselines.tuned_rule import TUNED_RULES_FILE, TunedRulePolicy, mean_episode_cost, tune_rule
from servegym.envs.protocol import PROTOCOL, protocol_for
from servegym.io import atomic_write_json, atomic_write_text, replace_marked_block, run_provenance

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "baselines" / "data" / TUNED_RULES_FILE
DOCS = ("docs/benchmark.md", "docs/results.md")
"""Documents (from the repository root) that show the table between the ``tune-rule`` markers."""
BEGIN, END = "<!-- tune-rule:begin (written by scripts/tune_rule.py) -->", "<!-- tune-rule:end -->"
UNTUNED = "gh-quantile-hold"


def markdown_table(report: dict) -> str:
    """The tuning outcome per setting as a Markdown table (docs/benchmark.md, "The tuned-rule bar")."""
    lines = [
        f"Tuned {report['date'][:10]} at commit {report['commit']}, {report['trials']} trials per setting, sampler "
        f"seed {report['seed']}, {report['finalists']} finalists; costs are $ per episode (mean over the episodes).",
        "",
        f"| setting | tuning $ | validation $ | `{UNTUNED}` validation $ | forecast | quantile | headroom | payback "
        "periods | drift α | chosen trial |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for env_id, entry in report["settings"].items():
        p = entry["parameters"]
        chosen = next(t for t in entry["all_trials"] if t["parameters"] == p and "validation_cost" in t)
        label = f"{chosen['number']}" + (f" (= `{chosen['rule']}`)" if chosen["rule"] != "search" else "")
        lines.append(
            f"| `{env_id}` | {entry['tuning_cost']:,.2f} | {entry['validation_cost']:,.2f} | "
            f"{entry[f'validation_cost_{UNTUNED}']:,.2f} | {p['forecast']} | "
            f"{p['quantile_level']:.3f}{'' if p['forecast'] == 'quantile' else ' (unused)'} | {p['headroom']:.3f} | "
            f"{p['payback_periods']:.1f} | {p['drift_alpha']:.3f} | {label} |"
        )
    return "\n".join(lines) + "\n"


def write_table(report: dict, out: Path, *, update_docs: bool) -> str:
    """Write ``out/tune_rule.md`` and (``update_docs``) the table in :data:`DOCS`; returns the table."""
    table = markdown_table(report)
    atomic_write_text(out / "tune_rule.md", table)
    for doc in DOCS if update_docs else ():
        replace_marked_block(ROOT / doc, BEGIN, END, table)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", action="append", help="setting to tune (repeatable; default: all of the protocol)")
    parser.add_argument("--trials", type=int, default=60, help="trials per setting (default: 60)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler (default: 0)")
    parser.add_argument("--finalists", type=int, default=5, help="cheapest trials replayed on validation (default: 5)")
    parser.add_argument("--out", default="results/tune_rule", help="folder for tune_rule.json and the journals")
    parser.add_argument("--fresh", action="store_true", help="discard the journals of earlier searches (re-tune)")
    parser.add_argument("--table-only", action="store_true", help="rewrite tune_rule.md from tune_rule.json; no tuning")
    parser.add_argument("--no-docs", action="store_true", help="leave the tables of docs/benchmark.md and results.md")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.table_only:
        report = json.loads((out / "tune_rule.json").read_text(encoding="utf-8"))
        print(write_table(report, out, update_docs=not args.no_docs), end="")
        return 0
    settings = args.env or list(PROTOCOL)
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8")) if SHIPPED.exists() else {}
    report: dict = {
        **run_provenance(),
        "trials": args.trials,
        "seed": args.seed,
        "finalists": args.finalists,
        "settings": {},
    }
    print(f"{'setting':34} {'tuning $':>10} {'validation $':>13} {UNTUNED + ' validation $':>30}  parameters")
    for env_id in settings:
        protocol = protocol_for(env_id)
        start = time.perf_counter()
        journal = out / (env_id.replace("/", "_") + f".seed{args.seed}.journal")
        if args.fresh:
            journal.unlink(missing_ok=True)
        result = tune_rule(
            env_id,
            protocol.tuning,
            protocol.validation,
            trials=args.trials,
            seed=args.seed,
            finalists=args.finalists,
            journal=journal,
            on_trial=lambda r: print(f"  trial {r['number']:3d}: ${r['tuning_cost']:,.2f}", file=sys.stderr),
        )
        env = gym.make(env_id)
        untuned = mean_episode_cost(env, make_policy(UNTUNED, env.unwrapped), protocol.validation)
        replay = mean_episode_cost(env, TunedRulePolicy(env.unwrapped, result.parameters), protocol.validation)
        env.close()
        parameters = dataclasses.asdict(result.parameters)
        print(f"{env_id:34} {result.tuning_cost:10,.2f} {result.validation_cost:13,.2f} {untuned:30,.2f}  {parameters}")
        report["settings"][env_id] = {
            "parameters": parameters,
            "tuning_cost": result.tuning_cost,
            "validation_cost": result.validation_cost,
            "validation_cost_replayed": replay,
            f"validation_cost_{UNTUNED}": untuned,
            "tuning_episodes": [list(e) for e in protocol.tuning],
            "validation_episodes": [list(e) for e in protocol.validation],
            "wall_s": time.perf_counter() - start,
            "all_trials": result.trials,
        }
        shipped[env_id] = {
            "parameters": parameters,
            "tuning_cost": result.tuning_cost,
            "validation_cost": result.validation_cost,
            "trials": len(result.trials),
            "seed": args.seed,
            "date": report["date"],
            "commit": report["commit"],
        }
        atomic_write_json(out / "tune_rule.json", report)
        atomic_write_json(SHIPPED, dict(sorted(shipped.items())))
    write_table(report, out, update_docs=not args.no_docs)
    print(f"wrote {out / 'tune_rule.json'}, {out / 'tune_rule.md'} and {SHIPPED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
