"""Regenerate the processed Azure demand data shipped in ``traces/data/`` from the raw traces.

Usage (from the repository root)::

    python scripts/build_traces.py [--raw-dir ../shared/traces/azure] [--out-dir traces/data]

The raw folder must hold ``AzureLLMInferenceTrace_code.csv``, ``AzureLLMInferenceTrace_conv.csv`` and
``azure2024-llm-minutes.csv`` (Microsoft Azure Public Dataset, CC-BY 4.0). Writes ``query_types.csv``
and ``azure2024_minutes_by_day.csv.gz``; ``PROVENANCE.md`` beside them is maintained by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from servegym.traces.azure import TraceFormatError
from servegym.traces.build import build_processed_data

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the files, print what was written; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--raw-dir",
        type=Path,
        default=REPO_ROOT.parent / "shared" / "traces" / "azure",
        help="folder with the raw Azure trace CSVs (default: ../shared/traces/azure from the repo root)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=REPO_ROOT / "traces" / "data",
        help="folder to write the processed files to (default: traces/data)",
    )
    args = parser.parse_args(argv)
    try:
        written = build_processed_data(args.raw_dir, args.out_dir)
    except TraceFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
