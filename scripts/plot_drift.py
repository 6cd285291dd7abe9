"""Draw sample paths of the latent drift process (envs/drift.py) for docs/drift.md.

Usage (from the repository root)::

    python scripts/plot_drift.py [--seeds 0 1 2] [--gpus 4] [--models 4] [--period-minutes 15] [--out docs/drift.png]

One 24-hour day at 15-minute periods for each seed (columns): the service-time slowdown of a few GPU types (top
row) and the error-rate factor of a few models (bottom row) under ``DEFAULT_DRIFT``, with the catalog (factor 1)
and the stationary 90 % quantile that robust planners use as their margin (``margin_quantile``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from servegym.envs.drift import DEFAULT_DRIFT, margin_quantile, sample_drift

MARGIN_QUANTILE = 0.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--gpus", type=int, default=4, help="GPU types drawn per panel")
    parser.add_argument("--models", type=int, default=4, help="models drawn per panel")
    parser.add_argument("--period-minutes", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("docs/drift.png"))
    args = parser.parse_args()

    num_periods = 24 * 60 // args.period_minutes
    hours = np.arange(num_periods + 1) * args.period_minutes / 60.0  # period boundaries
    rows = (
        ("slowdown", DEFAULT_DRIFT.speed, args.gpus, "GPU type", "service-time slowdown (×)\n>1: slower than catalog"),
        (
            "error_factor",
            DEFAULT_DRIFT.error,
            args.models,
            "model",
            "error-rate factor (×)\n>1: more errors than catalog",
        ),
    )
    fig, axes = plt.subplots(2, len(args.seeds), figsize=(4.6 * len(args.seeds), 7.4), sharex=True, sharey="row")
    axes = np.atleast_2d(axes).reshape(2, len(args.seeds))
    colours = plt.get_cmap("tab10").colors
    for col, seed in enumerate(args.seeds):
        drift = sample_drift(
            DEFAULT_DRIFT,
            np.random.default_rng(seed),
            num_periods=num_periods,
            period_minutes=args.period_minutes,
            num_gpus=args.gpus,
            num_models=args.models,
        )
        for row, (attribute, process, count, noun, ylabel) in enumerate(rows):
            ax = axes[row, col]
            values = getattr(drift, attribute)
            for k in range(count):
                # One value per period: draw it as a step over the period, closing at its end.
                ax.stairs(
                    values[:, k], hours, baseline=None, color=colours[k % 10], linewidth=1.6, label=f"{noun} {k + 1}"
                )
            ax.axhline(1.0, color="black", linestyle="--", linewidth=1.0, label="catalog (factor 1)")
            margin = margin_quantile(process, MARGIN_QUANTILE)
            ax.axhline(
                margin,
                color="grey",
                linestyle=":",
                linewidth=1.6,
                label=f"stationary {MARGIN_QUANTILE:.0%} quantile ({margin:.3f})",
            )
            ax.set_title(f"seed {seed}: {'GPU speed' if row == 0 else 'model error'}")
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel(ylabel)
            if row == 1:
                ax.set_xlabel(f"hour of the episode (h; {args.period_minutes}-min periods)")
                ax.set_xticks(np.arange(0, 25, 6))
            if col == len(args.seeds) - 1:
                ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    fig.suptitle(
        "Latent drift (DEFAULT_DRIFT), sample paths over one 24-h episode\n"
        "per-episode level + slow mean-reverting noise + rare step changes (jumps); "
        "realised speed = catalog / slowdown, realised error = catalog × factor",
        fontsize=11,
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=130, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
