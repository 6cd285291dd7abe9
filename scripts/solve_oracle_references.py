"""Solve the oracle on every protocol test episode and ship the results as the normalised score's 100 point.

Usage (from the repository root)::

    python scripts/solve_oracle_references.py [--env ID ...] [--out agents/data/oracle_references.json] [--fresh]
                                        [--repolish] [--table-only] [--no-docs]

For every test episode of ``servegym.envs.protocol.PROTOCOL`` (the settings ``servegym score`` plays, at the id's
default keywords) it solves the perfect-foresight oracle under ``servegym.agents.oracle_references.REFERENCE_RULE``
(a proven relative gap, backed by a node limit per solve; single-threaded HiGHS, seed 0; no wall-clock limit),
polishes the MILP's schedule in the environment (``servegym.baselines.milp.schedule_polish``), plays the polished
schedule in the environment for its cost, and writes the record into ``--out`` (default: the shipped
file) atomically after every episode, with the run's provenance. A killed run resumes: episodes already in the
file under the same rule and with the same episode fingerprint are kept (``--fresh`` solves them all again).
Seeds of a setting without randomness share one solve (equal fingerprints). Episodes not solved yet are listed
under ``missing``; ``servegym score`` solves those fresh. ``--env`` picks settings and their order (repeatable;
default: every setting of the protocol). The file also ships :data:`SHORT_CHECKS`, short episodes whose fresh
solve takes seconds: the default test suite re-solves them and checks the file against the fresh solve.
``--repolish`` solves nothing: it polishes the MILP schedule of every record of the file again under the current
rule and replays it (for a change of the polish or of what the environment charges that leaves every episode's
fingerprint as it was; a record whose fingerprint changed stops the run); it checkpoints after every episode, and a
killed ``--repolish`` run started again resumes where it stopped. After every episode it also replaces the
table between the ``oracle-references`` markers of docs/benchmark.md
(unless ``--no-docs``; ``--table-only`` rewrites the table from the file without solving).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym

import servegym.envs  # noqa: F401  (registers the ids)
from servegym.agents.oracle_references import (
    REFERENCE_RULE,
    REFERENCES_FILE,
    OracleReference,
    ReferenceSet,
    build_reference,
    episode_fingerprint,
    load_references,
    replay_reference,
    repolish_reference,
)
from servegym.envs.protocol import PROTOCOL, protocol_for
from servegym.io import atomic_write_json, block_markers, package_versions, replace_marked_block, run_provenance

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "agents" / "data" / REFERENCES_FILE
SETTINGS = "{}"
"""Env keywords of every protocol record: the id's defaults."""
SHORT_CHECKS = (("servegym/Provisioning-v3", '{"horizon_hours": 2.0}', 0, {"day": "2024-05-16-thu"}),)
"""(env id, env keywords as JSON, seed, reset options) of the short episodes shipped for the default test suite's
check against a fresh solve (the first test day's first two hours)."""

DOC = ROOT / "docs" / "benchmark.md"
BEGIN, END = block_markers("oracle-references", "scripts/solve_oracle_references.py")

Key = tuple[str, str, str | None, int]


def markdown_table(references: ReferenceSet) -> str:
    """The shipped records and the missing episodes as Markdown (docs/benchmark.md, "Reference points")."""
    rule, provenance = references.stopping_rule, references.header.get("provenance", {})
    polished = references.header.get("polish_provenance", provenance)
    lines = [
        f"`{Path(references.path).name}`: {len(references.episodes)} episodes solved "
        f"{str(provenance.get('date', ''))[:10]} at commit {provenance.get('commit', 'unknown')} (polished "
        f"{str(polished.get('date', ''))[:10]} at commit {polished.get('commit', 'unknown')}), "
        f"{references.solver.get('name')} {references.solver.get('version')} single-threaded, seed 0; stopping rule: "
        f"proven gap {100 * rule['relative_gap']:.1f} % or {rule['node_limit']:,} nodes per solve, no time limit; "
        f"then a polish in the environment of at most {rule['polish_sweeps']} sweeps per descent. "
        "Costs in $ per episode; the oracle cost is the polished schedule played in the environment (queueing "
        "delay included), the MILP schedule's cost the MILP's own schedule played there, the objective, bound and "
        "gap are the MILP's; solve seconds on that machine, for information.",
        "",
        "| setting | env keywords | episode | oracle cost $ | MILP schedule's cost $ | polish moves "
        "| MILP objective $ | bound $ | gap | status | solve s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in references:
        episode = f"{r.day or 'synthetic'}/s{r.seed}"
        solve = f"{r.solve_s:,.0f}" if r.solve_s else "— (same episode data as another seed)"
        lines.append(
            f"| `{r.env_id}` | `{r.env_settings}` | {episode} | {r.oracle_cost:,.2f} | {r.milp_schedule_cost:,.2f} | "
            f"{r.polish_moves} | {r.milp_objective:,.2f} | "
            f"{r.bound:,.2f} | {100 * r.gap:.2f} % | {r.status} | {solve} |"
        )
    if references.missing:
        missing = ", ".join(f"`{e}` {d or 'synthetic'}/s{s}" for e, d, s in references.missing)
        lines += ["", f"Not solved yet (scored with a fresh solve under the same rule, with a notice): {missing}."]
    return "\n".join(lines) + "\n"


def protocol_episodes(env_ids: list[str]) -> list[tuple[str, str, int, dict]]:
    """(env id, env keywords, seed, reset options) of every test episode of ``env_ids``, in protocol order."""
    return [
        (env_id, SETTINGS, seed, dict(options)) for env_id in env_ids for seed, options in protocol_for(env_id).test
    ]


def milp_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a stopping rule that decides the MILP's schedule (everything but the polish)."""
    return {name: value for name, value in dict(rule).items() if name != "polish_sweeps"}


def still_valid(reference: OracleReference) -> bool:
    """Whether a record of an earlier run fits the episode as the package builds it now (same fingerprint)."""
    env = gym.make(reference.env_id, **json.loads(reference.env_settings))
    env.reset(seed=reference.seed, options=reference.reset_options)
    valid = episode_fingerprint(env.unwrapped) == reference.fingerprint
    env.close()
    return valid


def write(
    out: Path,
    records: dict[Key, OracleReference],
    wanted: list[Key],
    provenance: dict,
    polish_provenance: dict | None = None,
) -> ReferenceSet:
    """The file: records in protocol order, the episodes still missing, the header (``provenance`` of the solves,
    ``polish_provenance`` of the polish when a ``--repolish`` run made it; the same run otherwise)."""
    references = ReferenceSet(
        episodes=tuple(records[key] for key in wanted if key in records),
        stopping_rule=REFERENCE_RULE.to_dict(),
        solver={
            "name": REFERENCE_RULE.solver,
            "version": package_versions(("highspy",))["highspy"],
            "threads": 1,
            "seed": 0,
        },
        missing=tuple((key[0], key[2], key[3]) for key in wanted if key not in records and key[1] == SETTINGS),
        header={
            "servegym_version": package_versions(("servegym",))["servegym"],
            "provenance": provenance,
            "polish_provenance": polish_provenance or provenance,
        },
    )
    atomic_write_json(out, references.to_dict())
    return load_references(out)


def progress_path(out: Path) -> Path:
    """The ``--repolish`` run's progress file beside ``out``: the episodes it has polished so far."""
    return out.with_name(out.name + ".repolish-progress.json")


def repolish(
    args: argparse.Namespace, records: dict[Key, OracleReference], wanted: list[Key], solved: dict, provenance: dict
) -> int:
    """``--repolish``: every record's MILP schedule polished again and replayed, written after each episode; the
    file keeps the provenance of the solves (``solved``) and records this run's as the polish's.

    The run checkpoints: after every episode, next to the file (``progress_path``), the episodes polished so far and
    the run's provenance. A run killed part-way resumes there when started again with ``--repolish`` under the same
    rule (the records it wrote are kept and its provenance stays the polish's); the progress file is removed once
    every record is polished. Delete it to polish everything again.
    """
    progress_file = progress_path(args.out)
    done: set[Key] = set()
    if progress_file.exists():
        try:
            progress = json.loads(progress_file.read_text())
            if progress["stopping_rule"] == REFERENCE_RULE.to_dict():
                done = {(str(k[0]), str(k[1]), k[2], int(k[3])) for k in progress["done"]} & set(records)
                provenance = dict(progress["provenance"])
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            print(f"{progress_file}: unreadable ({error!r}); polishing every record again", file=sys.stderr)
            done = set()
        if done:
            print(
                f"resuming the --repolish run of {provenance.get('date', '?')} (commit "
                f"{provenance.get('commit', '?')}): {len(done)} episodes already polished",
                file=sys.stderr,
            )
    print(f"{'setting':38} {'episode':22} {'MILP schedule $':>15} {'oracle $':>10} {'moves':>6}")
    polished: dict[tuple[str, str], OracleReference] = {  # (env id, fingerprint) → its polished record
        (key[0], records[key].fingerprint): records[key] for key in wanted if key in done
    }
    for key in [key for key in wanted if key in records and key not in done]:
        start = time.perf_counter()
        env = gym.make(key[0], **json.loads(key[1]))
        earlier = records[key]
        same = polished.get((key[0], earlier.fingerprint))
        if same is None:
            reference = polished[(key[0], earlier.fingerprint)] = repolish_reference(env, earlier)
        else:  # an equal episode (another seed of a setting without randomness): its schedule, played here
            reference = replay_reference(env, replace(same, env_settings=key[1], day=key[2], seed=key[3]))
        records[key] = reference
        env.close()
        written = write(args.out, records, wanted, solved, provenance)
        done.add(key)
        atomic_write_json(
            progress_file,
            {
                "stopping_rule": REFERENCE_RULE.to_dict(),
                "provenance": provenance,
                "done": [list(k) for k in wanted if k in done],
            },
        )
        if not args.no_docs:
            replace_marked_block(DOC, BEGIN, END, markdown_table(written))
        episode = f"{key[2] or 'synthetic'}/s{key[3]}" + ("" if key[1] == SETTINGS else f" {key[1]}")
        print(
            f"{key[0]:38} {episode:22} {reference.milp_schedule_cost:15,.2f} {reference.oracle_cost:10,.2f} "
            f"{reference.polish_moves:6d}  [{time.perf_counter() - start:.0f} s]",
            flush=True,
        )
    write(args.out, records, wanted, solved, provenance)
    progress_file.unlink(missing_ok=True)
    print(f"wrote {args.out}: {len(records)} episodes re-polished")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", action="append", help="setting to solve (repeatable; default: all of the protocol)")
    parser.add_argument("--out", type=Path, default=SHIPPED, help=f"references file (default: {SHIPPED})")
    parser.add_argument("--fresh", action="store_true", help="solve every episode again (ignore the file's records)")
    parser.add_argument(
        "--repolish", action="store_true", help="polish every record's MILP schedule again and replay; no solving"
    )
    parser.add_argument("--table-only", action="store_true", help="rewrite the docs table from the file; no solving")
    parser.add_argument("--no-docs", action="store_true", help="leave the table of docs/benchmark.md alone")
    args = parser.parse_args(argv)
    if args.table_only:
        table = markdown_table(load_references(args.out))
        replace_marked_block(DOC, BEGIN, END, table)
        print(table, end="")
        return 0
    env_ids = args.env or list(PROTOCOL)
    episodes = [*SHORT_CHECKS, *protocol_episodes(list(PROTOCOL))]
    wanted: list[Key] = [(env_id, kwargs, options.get("day"), seed) for env_id, kwargs, seed, options in episodes]
    records: dict[Key, OracleReference] = {}
    if args.out.exists() and not args.fresh:
        earlier = load_references(args.out)
        same_milp = milp_rule(earlier.stopping_rule) == milp_rule(REFERENCE_RULE.to_dict())
        if args.repolish and same_milp:  # every record is polished again; a changed fingerprint stops the run
            records = {r.key: r for r in earlier if r.key in wanted}
        elif dict(earlier.stopping_rule) == REFERENCE_RULE.to_dict():
            records = {r.key: r for r in earlier if r.key in wanted and still_valid(r)}
        else:
            print(f"{args.out}: solved under another stopping rule; solving every episode again", file=sys.stderr)
    provenance = run_provenance()
    if args.repolish and not records:
        parser.error(f"--repolish needs {args.out} with records solved under the current MILP rule (and not --fresh)")
    if args.repolish:
        return repolish(args, records, wanted, dict(earlier.header.get("provenance", {})), provenance)
    print(f"{'setting':38} {'episode':22} {'oracle $':>10} {'bound $':>10} {'gap':>7} {'status':9} {'solve s':>8}")
    todo = [*SHORT_CHECKS, *protocol_episodes(env_ids)]  # in the order of --env
    for env_id, kwargs, seed, options in todo:
        key = (env_id, kwargs, options.get("day"), seed)
        if key in records:
            continue
        env = gym.make(env_id, **json.loads(kwargs))
        start = time.perf_counter()
        known = [r for r in records.values() if r.env_settings == kwargs]
        reference = build_reference(env, env_id, seed, options, env_settings=kwargs, known=known)
        env.close()
        records[key] = reference
        written = write(args.out, records, wanted, provenance)
        if not args.no_docs:
            replace_marked_block(DOC, BEGIN, END, markdown_table(written))
        episode = f"{options.get('day') or 'synthetic'}/s{seed}" + ("" if kwargs == SETTINGS else f" {kwargs}")
        print(
            f"{env_id:38} {episode:22} {reference.oracle_cost:10,.2f} {reference.bound:10,.2f} "
            f"{100 * reference.gap:6.2f}% {reference.status:9} {reference.solve_s:8.0f}"
            f"{'' if reference.solve_s else ' (schedule of an equal episode)'}  [{time.perf_counter() - start:.0f} s]",
            flush=True,
        )
    written = write(args.out, records, wanted, provenance)
    if not args.no_docs:
        replace_marked_block(DOC, BEGIN, END, markdown_table(written))
    missing = [key for key in wanted if key not in records and key[1] == SETTINGS]
    print(f"wrote {args.out}: {len(records)} episodes, {len(missing)} missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
