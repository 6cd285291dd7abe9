"""Compare the performance model with the published measurements and optionally re-fit its constants.

    python scripts/calibrate_performance.py                # table of predictions vs measurements (markdown)
    python scripts/calibrate_performance.py --fit          # also grid-search η_F, η_B, NVLink all-reduce latency

Writes JSON (atomically) to --out with every comparison and, with --fit, the grid's best constants.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from datetime import datetime, timezone

import numpy as np

from servegym.envs.calibration import EXCLUDED, TOLERANCE_FACTOR, compare_measurements, load_measurements
from servegym.envs.performance import PerformanceConstants
from servegym.io import atomic_write_json


def log_errors(constants: PerformanceConstants, measurements) -> np.ndarray:
    return np.log([c.ratio for c in compare_measurements(constants, measurements=measurements)])


def fit(measurements) -> tuple[PerformanceConstants, float]:
    """Grid search minimising the RMS log error over the pinned measurements."""
    best, best_rms = PerformanceConstants(), float("inf")
    grid = itertools.product(
        (0.40, 0.45, 0.50, 0.55, 0.60), (0.60, 0.65, 0.70, 0.75, 0.80), (10e-6, 20e-6, 30e-6, 40e-6, 50e-6)
    )
    for compute, bandwidth, allreduce in grid:
        constants = dataclasses.replace(
            PerformanceConstants(),
            compute_efficiency=compute,
            bandwidth_efficiency=bandwidth,
            nvlink_allreduce_latency_s=allreduce,
        )
        rms = float(np.sqrt(np.mean(log_errors(constants, measurements) ** 2)))
        if rms < best_rms:
            best, best_rms = constants, rms
    return best, best_rms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", action="store_true", help="grid-search the efficiency constants")
    parser.add_argument("--out", default="results/calibration.json", help="JSON output path")
    args = parser.parse_args()

    measurements = load_measurements()
    pinned = measurements[~measurements["id"].isin(list(EXCLUDED))]
    constants = PerformanceConstants()
    comparisons = compare_measurements(constants)
    print("| id | measurement | metric | measured | predicted | ratio | pinned |")
    print("|---|---|---|---:|---:|---:|---|")
    for c in comparisons:
        pinned_note = "no: " + EXCLUDED[c.id] if c.id in EXCLUDED else "yes"
        print(
            f"| {c.id} | {c.description} | {c.metric} | {c.measured:,.4g} | {c.predicted:,.4g} | "
            f"{c.ratio:.2f} | {pinned_note} |"
        )
    errors = log_errors(constants, pinned)
    rms, worst = float(np.sqrt(np.mean(errors**2))), float(np.exp(np.abs(errors).max()))
    print(
        f"\n{len(errors)} pinned measurements: RMS log error {rms:.3f} (≈ {100 * (np.exp(rms) - 1):.0f} %), "
        f"worst factor {worst:.2f} (tolerance {TOLERANCE_FACTOR})"
    )
    payload = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "constants": dataclasses.asdict(constants),
        "rms_log_error": rms,
        "worst_factor": worst,
        "comparisons": [
            dataclasses.asdict(c) | {"ratio": c.ratio, "pinned": c.id not in EXCLUDED} for c in comparisons
        ],
    }
    if args.fit:
        best, best_rms = fit(pinned)
        print(f"grid best: {best} with RMS log error {best_rms:.3f}")
        payload["fit"] = {"constants": dataclasses.asdict(best), "rms_log_error": best_rms}
    atomic_write_json(args.out, payload)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
