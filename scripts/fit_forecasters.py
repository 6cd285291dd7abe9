"""Fit the default forecaster on every history the built-in demand sources give; write the fits the package ships.

    python scripts/fit_forecasters.py            # fit and write envs/data/holt_winters_fits.json
    python scripts/fit_forecasters.py --check    # fit and compare with the shipped file, exit 1 on a difference

The ``holt-winters`` forecaster fits one additive Holt-Winters model per distinct mean-removed log-demand column of
an episode's history (``servegym.envs.forecast``). The histories of the Azure-based sources (every scenario; the
train days other than an episode's own, ``azure_histories``) are few and fixed, so they are fitted here once and
shipped: an episode then starts from the same model on every machine. statsmodels' optimiser runs on OpenBLAS,
whose kernels are chosen by CPU type and round differently; this script makes OpenBLAS use its Haswell (AVX2)
kernels, whatever the CPU, by setting ``OPENBLAS_CORETYPE`` before numpy loads, so the file comes out the same
wherever it is regenerated (and equal to what a run-time fit gives on the common AVX2 hosts).
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_CORETYPE"] = "Haswell"  # before numpy, scipy or statsmodels load OpenBLAS

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

from servegym.envs.demand_source import azure_histories
from servegym.envs.forecast import (
    SHIPPED_FITS,
    demand_floor,
    fit_statsmodels,
    history_columns,
    log_demand,
)
from servegym.envs.scenarios import SCENARIOS, make_instance
from servegym.io import atomic_write_text
from servegym.traces.days import MINUTES_PER_DAY

PERIOD_MINUTES = (5, 15, 60)
"""Period lengths fitted: the registered ids' (15 and 5 minutes) and the hourly one of the paper protocol."""
DEFAULT_OUT = Path(str(resources.files("servegym.envs.data").joinpath(SHIPPED_FITS)))


def fit_all() -> dict[str, dict[str, object]]:
    """Every shipped fit by its key, in key order."""
    fits: dict[str, dict[str, object]] = {}
    for scenario in sorted(SCENARIOS):
        instance = make_instance(scenario)
        floor = demand_floor(instance.demand_per_hour)
        for period_minutes in PERIOD_MINUTES:
            periods_per_day = MINUTES_PER_DAY // period_minutes
            for history in azure_histories(instance, period_minutes):
                for key, column in history_columns(log_demand(history, floor), periods_per_day).items():
                    if key in fits:
                        continue
                    alpha, gamma, level, season = fit_statsmodels(column, periods_per_day)
                    fits[key] = {
                        "periods_per_day": periods_per_day,
                        "alpha": alpha,
                        "gamma": gamma,
                        "initial_level": level,
                        "initial_season": season.tolist(),
                    }
        print(f"{scenario}: {len(fits)} fits so far", flush=True)
    return dict(sorted(fits.items()))


ABOUT = (
    "Holt-Winters fits (statsmodels ExponentialSmoothing, additive season, estimated initial state) of the "
    "mean-removed log demand of every Azure-based forecaster history, keyed by servegym.envs.forecast.fit_key; "
    "written by scripts/fit_forecasters.py with OpenBLAS's Haswell kernels."
)


def document(fits: dict[str, dict[str, object]]) -> str:
    """The JSON file: :data:`ABOUT` and the fits, one fit per line."""
    lines = [f"  {json.dumps(key)}: {json.dumps(fit)}" for key, fit in fits.items()]
    return f'{{\n "about": {json.dumps(ABOUT)},\n "fits": {{\n' + ",\n".join(lines) + "\n }\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="file to write (default: the shipped one)")
    args = parser.parse_args(argv)
    text = document(fit_all())
    if args.check:
        shipped = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if shipped != text:
            print(f"{args.out} differs from a fresh fit", file=sys.stderr)
            return 1
        print(f"{args.out} matches a fresh fit")
        return 0
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
