"""Arithmetic that gives the same bits on every x86-64 CPU, for everything an episode's numbers depend on.

The env, its demand and its planners are meant to be a fixed benchmark: the same seed gives the same episode, the
same plans and the same dollars on any machine. Two things that vary by CPU broke that (20 reference mismatches
between an AVX-512 and an AVX2 host in CI, and leaderboard days $32 apart once a difference in the seventh digit of
a forecast flipped a planner's choice):

- **float64 exp, log and power** go to numpy's own AVX-512 kernels where the CPU has AVX-512 and to the C
  library (glibc's libm) elsewhere. Both are accurate to about an ulp; they differ in the last bit for about one
  exp in twenty. :func:`exp`, :func:`log` and :func:`power` always go through libm (``math``), which is what
  numpy does on CPUs without AVX-512, so their results are those of an AVX2 host everywhere.
- **an optimiser's path**: statsmodels fits the default forecaster with L-BFGS-B, which runs on OpenBLAS, whose
  kernels (and so the order of their additions) are chosen by CPU type; the fit moves in the seventh digit. The
  fits of every built-in history therefore ship with the package (``servegym.envs.forecast.shipped_fits``).

What is left to the CPU is the last bit or two of the sums OpenBLAS forms (dot products of costs and loads). The
reference tests allow them (relative 1e-9); they could tip a planner's choice between two plans equal to the last
bit, and ``servegym leaderboard --verify`` is what checks that they do not on the shipped episodes.

glibc's libm picks an FMA build of ``exp``/``log``/``pow`` at load time; every x86-64 CPU of the last decade
(Intel from Haswell, AMD from Zen) has FMA, so they all run the same code. These functions are for small
arrays (an episode's demand, a period's forecast): a call costs about 1 µs for 6 elements and 4 µs for 48.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def _libm(function: Callable[[float], float], x: np.ndarray | float) -> np.ndarray:
    """``function`` (a one-argument ``math`` function) elementwise over float64 ``x``."""
    values = np.asarray(x, dtype=np.float64)
    return np.fromiter(map(function, values.ravel().tolist()), np.float64, count=values.size).reshape(values.shape)


def exp(x: np.ndarray | float) -> np.ndarray:
    """e**x elementwise (float64 array of ``x``'s shape) by libm; raises ``OverflowError`` above about 709."""
    return _libm(math.exp, x)


def log(x: np.ndarray | float) -> np.ndarray:
    """Natural log elementwise (float64 array of ``x``'s shape) by libm; raises ``ValueError`` for ``x`` <= 0."""
    return _libm(math.log, x)


def power(base: np.ndarray | float, exponent: np.ndarray | float) -> np.ndarray:
    """base**exponent elementwise (broadcast, float64) by libm; raises ``OverflowError`` on overflow and
    ``ValueError`` for a negative base with a fractional exponent."""
    bases, exponents = np.broadcast_arrays(np.asarray(base, dtype=np.float64), np.asarray(exponent, dtype=np.float64))
    pairs = map(math.pow, bases.ravel().tolist(), exponents.ravel().tolist())
    return np.fromiter(pairs, np.float64, count=bases.size).reshape(bases.shape)
