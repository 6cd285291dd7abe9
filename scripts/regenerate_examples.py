"""Regenerate the committed example results of ``servegym evaluate`` and record the commit that wrote them.

Usage (from the repository root)::

    python scripts/regenerate_examples.py [--only evaluate,week] [--out-root results]
    python scripts/regenerate_examples.py --check [--only evaluate]

Each example of :data:`EXAMPLES` runs ``servegym evaluate`` into ``<out-root>/<name>/``, which writes its files
as a set with ``manifest.json`` (the command, the commit with ``+dirty`` for uncommitted changes, the date,
library versions, each file's SHA-256; ``servegym.io.write_file_set``). With the default ``--out-root`` the block
between the ``examples`` markers of results/README.md is rewritten from the manifests, so it lists which commit
wrote each folder, ``<out-root>/<name>.md`` holds the example's table, and the same table replaces the one
between the ``example-<name>`` markers of README.md and docs/results.md (:data:`DOC_TABLES`).
``--check`` plays the examples into a temporary folder instead and compares their episode tables with the
committed ones (every column but decision times, which vary run to run); it exits 1 and names the cells that
differ when the committed numbers are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from servegym.cli import main as servegym_main
from servegym.io import MANIFEST_FILE, atomic_write_text, block_markers, marked_block_span, replace_marked_block

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "results" / "README.md"
BEGIN, END = block_markers("examples", "scripts/regenerate_examples.py")
EXAMPLES: dict[str, list[str]] = {
    "evaluate": ["evaluate"],
    "week": [
        "evaluate",
        "--env",
        "servegym/ProvisioningWeek-v3",
        "--policies",
        "tuned-rule,tuned-mix,agh-mix,gh-rolling,agh-rolling,gh-hold,agh-hold,gh-robust,gh-adaptive,agh-static,"
        "agh-quantile-hold",
    ],
}
"""Example folder name → ``servegym`` arguments (``--out`` and ``--no-progress`` are added)."""
DOC_TABLES: dict[str, tuple[str, ...]] = {"evaluate": ("README.md", "docs/results.md"), "week": ("docs/results.md",)}
"""Documents (from the repository root) that show an example's table between its ``example-<name>`` markers."""
VARYING_COLUMNS = ("mean_decision_s", "max_decision_s")
"""Episode columns that differ between identical runs (wall-clock decision times, seconds)."""


def run_example(name: str, out_root: Path) -> Path:
    """Play one example into ``out_root/name`` (its ``manifest.json`` records the command, commit and date);
    returns the folder."""
    out = out_root / name
    arguments = [*EXAMPLES[name], "--out", str(out)]
    code = servegym_main([*arguments, "--no-progress"])
    if code != 0:
        raise SystemExit(f"servegym {' '.join(arguments)} exited with status {code}")
    return out


def readme_block(out_root: Path) -> str:
    """The results/README.md rows of every example folder with a manifest."""
    rows = ["| folder | command | commit | date |", "|---|---|---|---|"]
    for name in EXAMPLES:
        path = out_root / name / MANIFEST_FILE
        if not path.is_file():
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        commit = record["commit"] or "unknown"
        commit = commit[:10] + (" + uncommitted changes" if commit.endswith("+dirty") else "")
        rows.append(f"| `{name}/` | `{record['command']}` | {commit} | {record['date']} |")
    return "\n".join(rows)


def doc_markers(name: str) -> tuple[str, str]:
    """The marker lines around an example's table in the documents of :data:`DOC_TABLES`."""
    return block_markers(f"example-{name}", "scripts/regenerate_examples.py")


def update_readme(out_root: Path) -> None:
    """Replace the examples block of results/README.md (append it with its markers when they are missing)."""
    block = readme_block(out_root)
    if marked_block_span(README.read_text(encoding="utf-8"), BEGIN, END) is not None:
        replace_marked_block(README, BEGIN, END, block)
    else:
        atomic_write_text(README, README.read_text(encoding="utf-8").rstrip("\n") + f"\n\n{BEGIN}\n{block}\n{END}\n")


def stale_cells(committed: Path, fresh: Path) -> list[str]:
    """``policy/episode column: committed → fresh`` for every episode cell that differs (relative 1e-9)."""
    keys = ["policy", "episode"]
    old = pd.read_csv(committed / "episodes.csv").drop(columns=list(VARYING_COLUMNS)).set_index(keys).sort_index()
    new = pd.read_csv(fresh / "episodes.csv").drop(columns=list(VARYING_COLUMNS)).set_index(keys).sort_index()
    if list(old.index) != list(new.index) or list(old.columns) != list(new.columns):
        return [
            f"rows or columns differ: {list(old.index)} {list(old.columns)} vs {list(new.index)} {list(new.columns)}"
        ]
    differences = []
    for column in old.columns:
        for key in old.index:
            a, b = old.at[key, column], new.at[key, column]
            same = a == b if isinstance(a, str) or isinstance(b, str) else abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1)
            if not same:
                differences.append(f"{'/'.join(key)} {column}: {a} → {b}")
    return differences


TABLE_COLUMNS = (
    ("total $", "total_cost", "{:,.0f}"),
    ("rental $", "rental", "{:,.0f}"),
    ("delay penalty $", "delay_penalty", "{:,.0f}"),
    ("unmet penalty $", "unmet_penalty", "{:,.0f}"),
    ("error penalty $", "error_penalty", "{:,.0f}"),
    ("SLO violations", "slo_violation_rate", "percent"),
    ("GPU-hours", "gpu_hours", "{:,.0f}"),
    ("replicas started", "started_replicas", "{:,.0f}"),
    ("decision s", "mean_decision_s", "{:.2g}"),
)
"""Columns of the Markdown table of an example: header, episodes.csv column, format (``percent``: a rate as %)."""


def markdown_table(folder: Path) -> str:
    """The example's policies by mean total cost over its episodes, as the Markdown table of README and
    docs/results.md (written to ``<folder>.md`` beside the folder)."""
    episodes = pd.read_csv(folder / "episodes.csv")
    means = episodes.groupby("policy")[[column for _, column, _ in TABLE_COLUMNS]].mean()
    lines = [
        "| policy | " + " | ".join(header for header, _, _ in TABLE_COLUMNS) + " |",
        "|---|" + "---:|" * len(TABLE_COLUMNS),
    ]
    for policy, row in means.sort_values("total_cost").iterrows():
        cells = [
            f"{100.0 * row[column]:.1f} %"
            if fmt == "percent"
            else fmt.format(0.0 if abs(row[column]) < 1e-9 else row[column])
            for _, column, fmt in TABLE_COLUMNS
        ]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Regenerate (or ``--check``) the examples; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(EXAMPLES), help="comma-separated example names")
    parser.add_argument("--out-root", default="results", help="folder holding the example folders")
    parser.add_argument("--check", action="store_true", help="compare fresh runs with the committed files")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(EXAMPLES))
    if unknown:
        parser.error(f"--only: unknown examples {unknown}; choose from {list(EXAMPLES)}")
    out_root = Path(args.out_root)
    if not args.check:
        for name in names:
            folder = run_example(name, out_root)
            atomic_write_text(out_root / f"{name}.md", markdown_table(folder))
            print(f"wrote {folder} and {out_root / f'{name}.md'}")
        if out_root.resolve() == README.parent.resolve():
            update_readme(out_root)
            print(f"updated {README}")
            for name in names:
                begin, end = doc_markers(name)
                for doc in DOC_TABLES.get(name, ()):
                    print(f"updated {replace_marked_block(ROOT / doc, begin, end, markdown_table(out_root / name))}")
        return 0
    stale = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            stale += [f"{name}: {cell}" for cell in stale_cells(out_root / name, run_example(name, Path(scratch)))]
    for cell in stale:
        print(cell, file=sys.stderr)
    print(f"{len(stale)} stale cells in {', '.join(names)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
