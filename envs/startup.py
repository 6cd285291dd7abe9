"""Start-up time S_c of one replica (MODEL.md §6): node provisioning, engine start and weight loading.

A replica of configuration c = (model j, GPU g, precision q, TP t, PP p) is ready

    S_c = s_prov(g) + s_engine(g) + W_{j,q} / (G_c · β_load(g))   seconds

after it is started: s_prov the node provisioning time of GPU type g, s_engine the engine start (process, compile
cache, KV-cache profiling, CUDA graphs, warm-up), W_{j,q} the GB of weights of model j at precision q, G_c = t·p
the GPUs of the replica, each loading its W/G_c shard in parallel at β_load GB/s. The constants are catalog data
(``envs/data/startup.csv``, :class:`~servegym.envs.catalog.StartupConstants`); docs/catalog.md gives their sources.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from servegym.envs.catalog import Catalog, CatalogError, StartupConstants

if TYPE_CHECKING:
    from servegym.envs.instance import Configuration


def startup_time_s(constants: StartupConstants, weight_gb: float, gpus_per_replica: int) -> float:
    """S_c, seconds from starting one replica to it being ready to serve.

    Args:
        constants: Start-up constants of the replica's GPU type.
        weight_gb: W, GB (1e9 bytes) of weights the replica holds across all its GPUs.
        gpus_per_replica: G_c = t·p; the GPUs load their shards in parallel.

    Returns:
        provisioning_s + engine_start_s + weight_gb / (gpus_per_replica · load_bandwidth_gb_s), in seconds.
    """
    if not (math.isfinite(weight_gb) and weight_gb >= 0.0):
        raise ValueError(f"startup_time_s: weight_gb {weight_gb} must be finite and ≥ 0 GB")
    if gpus_per_replica < 1:
        raise ValueError(f"startup_time_s: gpus_per_replica {gpus_per_replica} must be ≥ 1")
    load_s = weight_gb / (gpus_per_replica * constants.load_bandwidth_gb_s)
    return constants.provisioning_s + constants.engine_start_s + load_s


def precision_weight_gb(fp16_weight_gb: float, precision: str, catalog: Catalog) -> float:
    """GB of weights at ``precision``: the FP16 checkpoint's B_j · bytes_per_param[q] / bytes_per_param[fp16]."""
    bytes_per_param = catalog.bytes_per_param
    return fp16_weight_gb * bytes_per_param[precision] / bytes_per_param["fp16"]


def configuration_startup_s(
    catalog: Catalog,
    configurations: Sequence[Configuration],
    fp16_weight_gb: Sequence[float] | np.ndarray,
    gpus_per_replica: Sequence[int] | np.ndarray,
) -> np.ndarray:
    """(C,) S_c of each configuration, seconds.

    Args:
        catalog: Source of the start-up constants (``catalog.startup``) and bytes per parameter.
        configurations: The C configurations (their ``gpu`` and ``precision`` are read).
        fp16_weight_gb: (C,) GB of the FP16 checkpoint of each configuration's model.
        gpus_per_replica: (C,) G_c of each configuration.

    Returns:
        S_c per configuration; all zeros when the catalog has no start-up constants (a data directory without
        ``startup.csv``), meaning "no start-up time given".
    """
    weights = np.asarray(fp16_weight_gb, dtype=float)
    gpus = np.asarray(gpus_per_replica, dtype=np.int64)
    if weights.shape != (len(configurations),) or gpus.shape != (len(configurations),):
        raise ValueError(
            f"configuration_startup_s: fp16_weight_gb {weights.shape} and gpus_per_replica {gpus.shape} "
            f"must both have shape ({len(configurations)},)"
        )
    if not catalog.startup:
        return np.zeros(len(configurations))
    startup = np.empty(len(configurations))
    for c, config in enumerate(configurations):
        constants = catalog.startup.get(config.gpu)
        if constants is None:
            raise CatalogError(f"startup.csv: no start-up constants for GPU type {config.gpu!r} of {config.name}")
        weight_gb = precision_weight_gb(float(weights[c]), config.precision, catalog)
        startup[c] = startup_time_s(constants, weight_gb, int(gpus[c]))
    return startup
