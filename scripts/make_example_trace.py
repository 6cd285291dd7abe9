"""Write the example per-request trace of docs/examples (a made-up service, not Azure data).

Usage (from the repository root)::

    python scripts/make_example_trace.py [--out docs/examples/requests-2days.csv.gz] [--seed 0]

Two days (Monday 2026-11-30 and Tuesday 2026-12-01, UTC) of a business-hours service with two endpoints,
``chat`` and ``summarise``, whose shape is unlike the Azure traces': a night trough at 8 % of the peak, a ramp
from 07:00, a lunch dip at 12:30 and an evening fall from 18:00, with the second day 15 % busier. Arrivals are
a Poisson process whose rate follows that shape (peak 900 and 300 requests/hour); prompt and output tokens
are lognormal (medians: chat 600 and 180 tokens, summarise 3,000 and 150). The file is seeded and
reproducible; it exists to show ``trace:`` on a file of timestamps and tokens (README, docs/traces.md).
"""

from __future__ import annotations

import argparse
import gzip
import io
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from servegym.io import atomic_write_bytes
from servegym.numerics import exp

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "docs" / "examples" / "requests-2days.csv.gz"
FIRST_DAY = pd.Timestamp("2026-11-30")
DAYS = 2
DAY_GROWTH = 1.15
"""Rate of the second day relative to the first."""
ENDPOINTS = {
    # name: (peak requests/hour, median prompt tokens, median output tokens, log-sd prompt, log-sd output)
    "chat": (900.0, 600.0, 180.0, 0.8, 0.7),
    "summarise": (300.0, 3000.0, 150.0, 0.5, 0.4),
}


def business_hours_shape(hours: np.ndarray) -> np.ndarray:
    """Load relative to the peak (0.08–1) at ``hours`` after 00:00 UTC: trough, 07:00 ramp, lunch dip, evening."""
    hour = np.mod(hours, 24.0)
    ramp_up = 1.0 / (1.0 + exp(-(hour - 8.0) * 2.0))
    ramp_down = 1.0 / (1.0 + exp((hour - 18.5) * 1.5))
    lunch = 1.0 - 0.35 * exp(-0.5 * ((hour - 12.5) / 0.5) ** 2)
    return 0.08 + 0.92 * ramp_up * ramp_down * lunch


def make_trace(seed: int) -> pd.DataFrame:
    """The example trace: columns ``timestamp`` (ISO, ms), ``endpoint``, ``prompt_tokens``, ``output_tokens``."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(DAYS * 24 * 60)
    growth = np.where(minutes < 24 * 60, 1.0, DAY_GROWTH)
    frames = []
    for name, (peak, prompt_median, output_median, prompt_sd, output_sd) in ENDPOINTS.items():
        rate_per_minute = peak / 60.0 * business_hours_shape(minutes / 60.0) * growth
        counts = rng.poisson(rate_per_minute)
        start = np.repeat(minutes, counts) + rng.uniform(0.0, 1.0, counts.sum())
        frames.append(
            pd.DataFrame(
                {
                    "minute": start,
                    "endpoint": name,
                    "prompt_tokens": np.maximum(1, rng.lognormal(math.log(prompt_median), prompt_sd, start.size)),
                    "output_tokens": np.maximum(1, rng.lognormal(math.log(output_median), output_sd, start.size)),
                }
            )
        )
    table = pd.concat(frames).sort_values("minute", kind="stable").reset_index(drop=True)
    stamps = FIRST_DAY + pd.to_timedelta(table["minute"], unit="min")
    return pd.DataFrame(
        {
            "timestamp": stamps.dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3],
            "endpoint": table["endpoint"],
            "prompt_tokens": table["prompt_tokens"].round().astype(np.int64),
            "output_tokens": table["output_tokens"].round().astype(np.int64),
        }
    )


def main(argv: list[str] | None = None) -> int:
    """Write the trace (gzip CSV, deterministic bytes) and print its size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)
    table = make_trace(args.seed)
    text = io.StringIO()
    text.write("# Example per-request trace written by scripts/make_example_trace.py (synthetic, not Azure data)\n")
    table.to_csv(text, index=False, lineterminator="\n")
    atomic_write_bytes(args.out, gzip.compress(text.getvalue().encode("utf-8"), mtime=0))
    print(f"wrote {args.out}: {len(table):,} requests, {args.out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
