"""The hardware and model catalog: GPU types, LLMs, quality, quantisation and start-up times, from sourced CSV files.

Every data file lives in ``envs/data/`` and every row carries a ``source`` column. The loader validates
units and ranges and raises :class:`CatalogError` naming the file, row and field on bad input.
:func:`load_catalog_overrides` reads a user's directory with any subset of the same files, validates it with
the same functions, and overrides or extends the shipped rows by name (docs/catalog.md, "Your own catalog").
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from servegym.errors import ServegymError

PRECISIONS: tuple[str, ...] = ("fp16", "int8", "int4")
"""Weight precisions: fp16 = BF16/FP16 weights, int8 = 8-bit weights and activations (FP8 on Ada/Hopper,
INT8 on Ampere), int4 = 4-bit weight-only (W4A16, AWQ/GPTQ) computing in BF16."""

TASK_FAMILIES: tuple[str, ...] = ("general", "code", "math", "instruction", "multilingual", "reasoning")
REQUIRED_TASK_FAMILIES: tuple[str, ...] = ("general", "code", "math")
"""Families every model needs a ``quality.csv`` row for: the ``azure`` and ``random`` scenarios use them."""
CATALOG_FILES: tuple[str, ...] = ("gpus.csv", "models.csv", "quality.csv", "quantization.csv", "startup.csv")
"""The catalog's files, in the order of the docs; a catalog directory holds some or all of them."""


class CatalogError(ServegymError, ValueError):
    """A catalog file is missing, malformed or has a value out of its allowed range."""


@dataclass(frozen=True)
class GpuType:
    """One GPU type as rented from a cloud.

    Attributes:
        name: Catalog key, e.g. ``"H100-SXM"``.
        memory_gb: Device memory in GB (1e9 bytes) as on the datasheet ("80 GB").
        memory_bandwidth_gb_s: Peak HBM/GDDR bandwidth in GB/s.
        bf16_dense_tflops: Dense BF16 tensor throughput in TFLOP/s.
        eight_bit_dense_tflops: Dense 8-bit tensor throughput (FP8 where supported, else INT8) in TFLOP/s.
        gpus_per_node: Largest number of GPUs in one node; bounds the tensor-parallel degree.
        interconnect: ``"nvlink"`` or ``"pcie"``.
        interconnect_gb_s: Per-GPU unidirectional GPU-to-GPU bandwidth in GB/s (nominal link rate).
        price_per_gpu_hour: On-demand list price in $/GPU-hour.
        default_availability: Maximum GPUs of this type rentable at once.
        source: Where the hardware figures come from.
        price_source: Where the price comes from (provider, URL, date).
        allreduce_latency_us: α_g, time of one small-message all-reduce between the GPUs of a node in µs
            (measured; :data:`ALLREDUCE_DEFAULTS` per interconnect when the column is empty).
        allreduce_busbw_gb_s: β_g, achieved all-reduce bus bandwidth (nccl-tests ``busbw``) in GB/s: a ring
            all-reduce of m bytes over t GPUs takes α_g + 2(t − 1)/t · m / β_g.
        fp32_tflops: F_fp32, non-tensor FP32 throughput of the CUDA cores in TFLOP/s (W4A16 dequantisation runs
            there); bf16_dense_tflops / 16 when the column is empty (the A100/H100 ratio, the conservative end).
        memory_mib: Device memory in MiB (2^20 bytes) as ``nvidia-smi`` reports ``memory.total``, the figure the
            engines size their KV cache from; memory_gb·10⁹ / 2²⁰ when the column is empty.
        matmul_bf16_tflops: Measured maximum achievable dense BF16 matmul rate in TFLOP/s (mamf-finder), the
            tensor-core rate the card sustains under its clock and power limits; bf16_dense_tflops when the column
            is empty.
    """

    name: str
    memory_gb: float
    memory_bandwidth_gb_s: float
    bf16_dense_tflops: float
    eight_bit_dense_tflops: float
    gpus_per_node: int
    interconnect: str
    interconnect_gb_s: float
    price_per_gpu_hour: float
    default_availability: int
    source: str
    price_source: str
    allreduce_latency_us: float
    allreduce_busbw_gb_s: float
    fp32_tflops: float
    memory_mib: float
    matmul_bf16_tflops: float | None = None

    @property
    def memory_bytes(self) -> float:
        """M_g: device memory in bytes (``memory_mib`` · 2²⁰)."""
        return self.memory_mib * 2.0**20

    def compute_tflops(self, precision: str) -> float:
        """Usable dense TFLOP/s for a weight precision: 8-bit tiers run W8A8, int4 is weight-only (BF16 math)."""
        return self.eight_bit_dense_tflops if precision == "int8" else self.bf16_dense_tflops

    @property
    def matmul_fraction(self) -> float:
        """s_g = measured achievable BF16 matmul rate / dense BF16 datasheet peak (1 without a measurement)."""
        if self.matmul_bf16_tflops is None:
            return 1.0
        return self.matmul_bf16_tflops / self.bf16_dense_tflops

    def sustained_tflops(self, precision: str) -> float:
        """F_{g,q} = s_g · datasheet dense peak of the tier: the tier runs at the card's sustained tensor clock."""
        return self.matmul_fraction * self.compute_tflops(precision)


@dataclass(frozen=True)
class ModelSpec:
    """One open LLM.

    Attributes:
        name: Catalog key, e.g. ``"Llama-3.1-8B"``.
        total_params_b: All parameters in billions (what must sit in memory).
        active_params_b: Parameters used per token in billions (equals total for dense models).
        layers: Transformer layers.
        hidden_size: Model width (activation elements per token exchanged by tensor-parallel all-reduces).
        kv_heads: Key/value heads (grouped-query attention).
        head_dim: Dimension of one attention head.
        precisions: Weight precisions with published checkpoints or engine support.
        source: Where the architecture figures come from.
        vocab_size: V, vocabulary size; the LM head has V·H parameters (0: unknown, no embedding split).
        tied_embeddings: Whether the input embedding shares the LM head's matrix.
        experts: E, routed experts per MoE layer (1 for a dense model).
        experts_per_token: k, experts each token is routed to (1 for a dense model).
    """

    name: str
    total_params_b: float
    active_params_b: float
    layers: int
    hidden_size: int
    kv_heads: int
    head_dim: int
    precisions: tuple[str, ...]
    source: str
    vocab_size: int = 0
    tied_embeddings: bool = False
    experts: int = 1
    experts_per_token: int = 1

    @property
    def kv_elements_per_token(self) -> float:
        """KV-cache elements per token: keys and values, every layer (bytes = elements × bytes per element)."""
        return 2.0 * self.layers * self.kv_heads * self.head_dim

    @property
    def lm_head_params_b(self) -> float:
        """Parameters of the LM head in billions (V·H), 0 when the vocabulary size is not given."""
        return self.vocab_size * self.hidden_size / 1e9

    @property
    def embedding_params_b(self) -> float:
        """Parameters of the input embedding and LM head in billions (one matrix when tied)."""
        return self.lm_head_params_b * (1.0 if self.tied_embeddings else 2.0)

    @property
    def expert_params_b(self) -> float:
        """Parameters of one routed expert over all layers in billions: (N − N^a)/(E − k); 0 for dense."""
        if self.experts <= self.experts_per_token:
            return 0.0
        return (self.total_params_b - self.active_params_b) / (self.experts - self.experts_per_token)


@dataclass(frozen=True)
class Quantisation:
    """How a weight precision changes memory, compute and quality.

    Attributes:
        precision: One of :data:`PRECISIONS`.
        weight_bytes_per_param: Bytes per quantised parameter of the stored weights, scales included; the
            embeddings and LM head stay at 2 bytes (ModelSpec.embedding_params_b).
        error_factor: Multiplier m_q ≥ 1 on the FP16 error rate.
        source: Published study the factor comes from.
        kv_bytes_per_element: Bytes per KV-cache element the engines use at this tier (2 = FP16, 1 = FP8).
    """

    precision: str
    weight_bytes_per_param: float
    error_factor: float
    source: str
    kv_bytes_per_element: float = 2.0


@dataclass(frozen=True)
class StartupConstants:
    """How long a replica on one GPU type takes from start to ready (MODEL.md §6, docs/catalog.md "Start-up time").

    S_c = provisioning_s + engine_start_s + W / (G_c · load_bandwidth_gb_s), see :mod:`servegym.envs.startup`.

    Attributes:
        gpu: GPU type name (a key of ``gpus.csv``).
        provisioning_s: s_prov(g), seconds from requesting a node of this GPU type to its GPUs being usable.
        engine_start_s: s_engine, seconds of engine start (process, compile cache, KV profiling, CUDA graphs,
            warm-up), weight loading excluded.
        load_bandwidth_gb_s: β_load, GB/s (1e9 bytes) at which each GPU of a replica loads its weight shard.
        source: Where each number comes from, modelling choices marked.
    """

    gpu: str
    provisioning_s: float
    engine_start_s: float
    load_bandwidth_gb_s: float
    source: str


@dataclass(frozen=True)
class Catalog:
    """Everything the instance builder may choose from, keyed by name."""

    gpus: Mapping[str, GpuType]
    models: Mapping[str, ModelSpec]
    quantisation: Mapping[str, Quantisation]
    accuracy: Mapping[tuple[str, str], float] = field(repr=False)
    """(model, task family) → benchmark accuracy in [0, 1] at FP16."""
    startup: Mapping[str, StartupConstants] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    """GPU type → start-up constants; empty means no start-up time given (instances then have S_c = 0)."""

    def error_rate(self, model: str, task_family: str, precision: str) -> float:
        """Error rate e = (1 − accuracy) · m_q of a model on a task family at a precision."""
        key = (model, task_family)
        if key not in self.accuracy:
            raise CatalogError(f"quality.csv: no accuracy for model {model!r} on task family {task_family!r}")
        return (1.0 - self.accuracy[key]) * self.quantisation[precision].error_factor

    @property
    def bytes_per_param(self) -> Mapping[str, float]:
        """Precision → bytes per quantised weight."""
        return MappingProxyType({q.precision: q.weight_bytes_per_param for q in self.quantisation.values()})

    @property
    def kv_bytes_per_element(self) -> Mapping[str, float]:
        """Precision → bytes per KV-cache element at that tier."""
        return MappingProxyType({q.precision: q.kv_bytes_per_element for q in self.quantisation.values()})


def _data_path(name: str) -> Path:
    return Path(str(resources.files("servegym.envs") / "data" / name))


def read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a catalog CSV, checking that it exists, is non-empty, has the columns and a source on every row."""
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#")
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise CatalogError(f"{path}: cannot be parsed as CSV ({exc})") from None
    if frame.empty:
        raise CatalogError(f"{path}: no data rows")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CatalogError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")
    for row_number, value in enumerate(frame["source"], start=1):
        if not value.strip():
            raise CatalogError(f"{path}: row {row_number}, field 'source': empty (every row must be sourced)")
    return frame


def optional_cell(frame: pd.DataFrame, column: str, row: int) -> str:
    """``frame[column][row]`` stripped, or ``""`` when the column is absent (an optional column)."""
    return frame[column].iloc[row].strip() if column in frame.columns else ""


def number(
    frame: pd.DataFrame,
    path: Path,
    row: int,
    column: str,
    low: float,
    high: float,
    *,
    optional: bool = False,
) -> float | None:
    """Parse ``frame[column][row]`` as a float in [low, high]; the error names file, 1-based row and field."""
    raw = optional_cell(frame, column, row) if optional else frame[column].iloc[row].strip()
    if not raw:
        if optional:
            return None
        raise CatalogError(f"{path}: row {row + 1}, field {column!r}: empty, expected a number in [{low}, {high}]")
    try:
        value = float(raw)
    except ValueError:
        raise CatalogError(
            f"{path}: row {row + 1}, field {column!r}: {raw!r} is not a number (allowed [{low}, {high}])"
        ) from None
    if not low <= value <= high:
        raise CatalogError(f"{path}: row {row + 1}, field {column!r}: {value} outside allowed range [{low}, {high}]")
    return value


_GPU_COLUMNS = (
    "name",
    "memory_gb",
    "memory_bandwidth_gb_s",
    "bf16_dense_tflops",
    "fp8_dense_tflops",
    "int8_dense_tops",
    "gpus_per_node",
    "interconnect",
    "interconnect_gb_s",
    "price_per_gpu_hour",
    "default_availability",
    "source",
    "price_source",
)
ALLREDUCE_DEFAULTS: Mapping[str, tuple[float, float]] = MappingProxyType({"nvlink": (10.0, 0.82), "pcie": (42.0, 0.80)})
"""Interconnect → (α in µs, β as a fraction of ``interconnect_gb_s``) for gpus.csv rows without all-reduce
columns: NVLink from H100 (vLLM custom all-reduce 9.1–10.1 µs at TP 2–8, sgl-project/sglang#2904; ring busbw
≈ 370 of 450 GB/s, NVIDIA/nccl-tests#212), PCIe from RTX 4090 (NCCL 8-byte all-reduce 42.1–42.6 µs on 8 GPUs,
NVIDIA/nccl#1530; busbw 25.7–26.0 of 32 GB/s on 4 GPUs, tinygrad/open-gpu-kernel-modules#36)."""


def load_gpus(path: Path) -> dict[str, GpuType]:
    """Load and validate ``gpus.csv``."""
    frame = read_table(path, _GPU_COLUMNS)
    gpus: dict[str, GpuType] = {}
    for row in range(len(frame)):
        name = frame["name"].iloc[row].strip()
        if not name or name in gpus:
            raise CatalogError(f"{path}: row {row + 1}, field 'name': empty or duplicate {name!r}")
        interconnect = frame["interconnect"].iloc[row].strip()
        if interconnect not in ("nvlink", "pcie"):
            raise CatalogError(
                f"{path}: row {row + 1}, field 'interconnect': {interconnect!r} not one of ['nvlink', 'pcie']"
            )
        bf16 = number(frame, path, row, "bf16_dense_tflops", 10.0, 5000.0)
        fp8 = number(frame, path, row, "fp8_dense_tflops", 10.0, 10000.0, optional=True)
        int8 = number(frame, path, row, "int8_dense_tops", 10.0, 10000.0, optional=True)
        eight_bit = fp8 if fp8 is not None else int8
        link_gb_s = number(frame, path, row, "interconnect_gb_s", 1.0, 2000.0)
        default_latency, default_fraction = ALLREDUCE_DEFAULTS[interconnect]
        latency = number(frame, path, row, "allreduce_latency_us", 0.1, 1000.0, optional=True)
        busbw = number(frame, path, row, "allreduce_busbw_gb_s", 0.1, 2000.0, optional=True)
        fp32 = number(frame, path, row, "fp32_tflops", 1.0, 1000.0, optional=True)
        matmul = number(frame, path, row, "matmul_bf16_tflops", 1.0, 5000.0, optional=True)
        memory_gb = number(frame, path, row, "memory_gb", 8.0, 300.0)
        datasheet_mib = memory_gb * 1e9 / 2**20
        # nvidia-smi totals lie within a few % of the datasheet figure (ECC takes 1/16 on GDDR cards)
        mib_range = (round(0.8 * datasheet_mib), round(1.2 * datasheet_mib))
        memory_mib = number(frame, path, row, "memory_mib", *mib_range, optional=True)
        gpus[name] = GpuType(
            name=name,
            memory_gb=memory_gb,
            memory_bandwidth_gb_s=number(frame, path, row, "memory_bandwidth_gb_s", 100.0, 10000.0),
            bf16_dense_tflops=bf16,
            eight_bit_dense_tflops=eight_bit if eight_bit is not None else bf16,
            gpus_per_node=int(number(frame, path, row, "gpus_per_node", 1, 16)),
            interconnect=interconnect,
            interconnect_gb_s=link_gb_s,
            price_per_gpu_hour=number(frame, path, row, "price_per_gpu_hour", 0.05, 20.0),
            default_availability=int(number(frame, path, row, "default_availability", 1, 10000)),
            source=frame["source"].iloc[row],
            price_source=frame["price_source"].iloc[row],
            allreduce_latency_us=latency if latency is not None else default_latency,
            allreduce_busbw_gb_s=busbw if busbw is not None else default_fraction * link_gb_s,
            fp32_tflops=fp32 if fp32 is not None else bf16 / 16.0,
            memory_mib=memory_mib if memory_mib is not None else datasheet_mib,
            matmul_bf16_tflops=matmul,
        )
    return gpus


_MODEL_COLUMNS = (
    "name",
    "total_params_b",
    "active_params_b",
    "layers",
    "hidden_size",
    "attention_heads",
    "kv_heads",
    "head_dim",
    "precisions",
    "source",
)


def load_models(path: Path) -> dict[str, ModelSpec]:
    """Load and validate ``models.csv``."""
    frame = read_table(path, _MODEL_COLUMNS)
    models: dict[str, ModelSpec] = {}
    for row in range(len(frame)):
        name = frame["name"].iloc[row].strip()
        if not name or name in models:
            raise CatalogError(f"{path}: row {row + 1}, field 'name': empty or duplicate {name!r}")
        total = number(frame, path, row, "total_params_b", 0.1, 2000.0)
        active = number(frame, path, row, "active_params_b", 0.1, total)
        heads = int(number(frame, path, row, "attention_heads", 1, 1024))
        kv_heads = int(number(frame, path, row, "kv_heads", 1, heads))
        if heads % kv_heads:
            raise CatalogError(
                f"{path}: row {row + 1}, field 'kv_heads': {kv_heads} does not divide attention_heads {heads}"
            )
        precisions = tuple(p.strip() for p in frame["precisions"].iloc[row].split(";") if p.strip())
        bad = [p for p in precisions if p not in PRECISIONS]
        if bad or not precisions:
            raise CatalogError(
                f"{path}: row {row + 1}, field 'precisions': {bad or 'empty'} not in allowed {list(PRECISIONS)}"
            )
        tied = optional_cell(frame, "tie_word_embeddings", row).lower()
        if tied not in ("", "true", "false"):
            raise CatalogError(f"{path}: row {row + 1}, field 'tie_word_embeddings': {tied!r} not 'true' or 'false'")
        experts = int(number(frame, path, row, "experts", 1, 1024, optional=True) or 1)
        if (experts > 1) != (total > active):
            raise CatalogError(
                f"{path}: row {row + 1}, field 'experts': {experts} experts but total_params_b {total} vs "
                f"active_params_b {active} (an MoE model has experts > 1 and fewer active than total parameters)"
            )
        per_token = int(number(frame, path, row, "experts_per_token", 1, experts, optional=True) or 1)
        models[name] = ModelSpec(
            name=name,
            total_params_b=total,
            active_params_b=active,
            layers=int(number(frame, path, row, "layers", 1, 512)),
            hidden_size=int(number(frame, path, row, "hidden_size", 256, 65536)),
            kv_heads=kv_heads,
            head_dim=int(number(frame, path, row, "head_dim", 16, 1024)),
            precisions=precisions,
            source=frame["source"].iloc[row],
            vocab_size=int(number(frame, path, row, "vocab_size", 1000, 1e7, optional=True) or 0),
            tied_embeddings=tied == "true",
            experts=experts,
            experts_per_token=per_token,
        )
    return models


def _quantisation_rows(path: Path) -> dict[str, Quantisation]:
    """The rows of a ``quantization.csv``, each validated; no completeness check."""
    frame = read_table(path, ("precision", "weight_bytes_per_param", "error_factor", "source"))
    table: dict[str, Quantisation] = {}
    for row in range(len(frame)):
        precision = frame["precision"].iloc[row].strip()
        if precision not in PRECISIONS:
            raise CatalogError(f"{path}: row {row + 1}, field 'precision': {precision!r} not in {list(PRECISIONS)}")
        table[precision] = Quantisation(
            precision=precision,
            weight_bytes_per_param=number(frame, path, row, "weight_bytes_per_param", 0.25, 4.0),
            error_factor=number(frame, path, row, "error_factor", 1.0, 5.0),
            source=frame["source"].iloc[row],
            kv_bytes_per_element=number(frame, path, row, "kv_cache_bytes_per_element", 0.5, 4.0, optional=True) or 2.0,
        )
    return table


def load_quantisation(path: Path) -> dict[str, Quantisation]:
    """Load and validate ``quantization.csv``: one row per precision in :data:`PRECISIONS`."""
    table = _quantisation_rows(path)
    missing = [p for p in PRECISIONS if p not in table]
    if missing:
        raise CatalogError(f"{path}: no row for precision(s) {missing}")
    return table


def _accuracy_rows(path: Path, models: Mapping[str, ModelSpec]) -> dict[tuple[str, str], float]:
    """The rows of a ``quality.csv``, each validated against ``models``; no completeness check."""
    frame = read_table(path, ("model", "task_family", "benchmark", "accuracy", "source"))
    accuracy: dict[tuple[str, str], float] = {}
    for row in range(len(frame)):
        model = frame["model"].iloc[row].strip()
        family = frame["task_family"].iloc[row].strip()
        if model not in models:
            raise CatalogError(f"{path}: row {row + 1}, field 'model': {model!r} is not in models.csv")
        if family not in TASK_FAMILIES:
            raise CatalogError(f"{path}: row {row + 1}, field 'task_family': {family!r} not in {list(TASK_FAMILIES)}")
        accuracy[(model, family)] = number(frame, path, row, "accuracy", 0.0, 1.0)
    return accuracy


def _check_required_families(
    path: Path, models: Mapping[str, ModelSpec], accuracy: Mapping[tuple[str, str], float]
) -> None:
    """Every model has an accuracy for each of :data:`REQUIRED_TASK_FAMILIES`; ``path`` is the file that should."""
    for model in models:
        for family in REQUIRED_TASK_FAMILIES:
            if (model, family) not in accuracy:
                raise CatalogError(f"{path}: model {model!r} has no accuracy for required family {family!r}")


def load_accuracy(path: Path, models: Mapping[str, ModelSpec]) -> dict[tuple[str, str], float]:
    """Load and validate ``quality.csv`` (long format: model, task_family, accuracy)."""
    accuracy = _accuracy_rows(path, models)
    _check_required_families(path, models, accuracy)
    return accuracy


_STARTUP_RANGES: dict[str, tuple[float, float]] = {
    "provisioning_s": (0.0, 3600.0),
    "engine_start_s": (0.0, 1800.0),
    "load_bandwidth_gb_s": (0.05, 100.0),
}
"""Allowed range of each start-up constant (seconds, seconds, GB/s)."""


def _startup_rows(path: Path, gpus: Mapping[str, GpuType]) -> dict[str, StartupConstants]:
    """The rows of a ``startup.csv``, each validated against ``gpus``; no completeness check."""
    frame = read_table(path, ("gpu", *_STARTUP_RANGES, "source"))
    table: dict[str, StartupConstants] = {}
    for row in range(len(frame)):
        gpu = frame["gpu"].iloc[row].strip()
        if not gpu or gpu in table:
            raise CatalogError(f"{path}: row {row + 1}, field 'gpu': empty or duplicate {gpu!r}")
        if gpu not in gpus:
            raise CatalogError(f"{path}: row {row + 1}, field 'gpu': {gpu!r} is not in gpus.csv")
        values = {name: number(frame, path, row, name, low, high) for name, (low, high) in _STARTUP_RANGES.items()}
        table[gpu] = StartupConstants(gpu=gpu, source=frame["source"].iloc[row], **values)
    return table


def _check_startup_complete(path: Path, gpus: Mapping[str, GpuType], startup: Mapping[str, StartupConstants]) -> None:
    """Every GPU type has start-up constants; ``path`` is the file that should hold the missing rows."""
    missing = [g for g in gpus if g not in startup]
    if missing:
        raise CatalogError(f"{path}: no row for GPU type(s) {missing} of gpus.csv")


def load_startup(path: Path, gpus: Mapping[str, GpuType]) -> dict[str, StartupConstants]:
    """Load and validate ``startup.csv``: one row per GPU type of ``gpus.csv``, no others."""
    table = _startup_rows(path, gpus)
    _check_startup_complete(path, gpus, table)
    return table


def load_catalog(data_dir: Path | None = None) -> Catalog:
    """Load the catalog from ``data_dir`` (default: the files shipped in the package).

    ``startup.csv`` is required in the shipped data. A ``data_dir`` without it (a copy made before the file
    existed) loads with no start-up constants, so instances built from that catalog have S_c = 0.
    """
    locate = (lambda name: data_dir / name) if data_dir is not None else _data_path
    models = load_models(locate("models.csv"))
    gpus = load_gpus(locate("gpus.csv"))
    startup_path = locate("startup.csv")
    startup = load_startup(startup_path, gpus) if data_dir is None or startup_path.exists() else {}
    return Catalog(
        gpus=MappingProxyType(gpus),
        models=MappingProxyType(models),
        quantisation=MappingProxyType(load_quantisation(locate("quantization.csv"))),
        accuracy=MappingProxyType(load_accuracy(locate("quality.csv"), models)),
        startup=MappingProxyType(startup),
    )


@functools.cache
def default_catalog() -> Catalog:
    """The shipped catalog, loaded once."""
    return load_catalog()


def catalog_files_in(directory: str | Path) -> tuple[Path, ...]:
    """The catalog CSVs of a user's catalog directory (any subset of :data:`CATALOG_FILES`), in that order.

    Raises:
        CatalogError: The directory does not exist, holds a ``*.csv`` whose name is not a catalog file (a typo
            such as ``gpu.csv`` would otherwise be ignored silently), or holds no catalog file. Other files
            (``README.md``, notes) are allowed.
    """
    if not str(directory).strip():
        raise CatalogError("catalog directory: empty path")
    directory = Path(directory)
    if not directory.exists():
        raise CatalogError(f"{directory}: catalog directory not found")
    if not directory.is_dir():
        raise CatalogError(f"{directory}: not a directory (a catalog is a directory of CSV files)")
    csvs = sorted(p.name for p in directory.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    unknown = [name for name in csvs if name not in CATALOG_FILES]
    if unknown:
        raise CatalogError(
            f"{directory}: unknown catalog file(s) {unknown}; allowed names: {list(CATALOG_FILES)} "
            "(other files such as README.md are ignored)"
        )
    present = tuple(directory / name for name in CATALOG_FILES if name in csvs)
    if not present:
        raise CatalogError(f"{directory}: no catalog files; give one or more of {list(CATALOG_FILES)}")
    return present


def load_catalog_overrides(directory: str | Path, base: Catalog | None = None) -> Catalog:
    """The ``base`` catalog (default: the shipped one) with a directory's rows overriding or extending it by name.

    The directory holds any subset of :data:`CATALOG_FILES`. A row replaces the base row with the same key (GPU
    name in ``gpus.csv``, model name in ``models.csv``, (model, task family) in ``quality.csv``, precision in
    ``quantization.csv``, GPU in ``startup.csv``) and is added otherwise. Rows are full rows: each file needs the
    columns the shipped loader reads, and every row is validated by the same functions, with the same ranges,
    the required ``source`` and the same messages (file, row, field) as the shipped files. After the merge the
    catalog must be consistent: quality rows name known models, every model has the required task families
    (:data:`REQUIRED_TASK_FAMILIES`), and, if the merged catalog has start-up constants at all, every GPU type
    has a start-up row.

    Raises:
        CatalogError: A file or the merged catalog breaks a rule; the message names the file that breaks it
            or should hold the missing row.
    """
    present = {path.name: path for path in catalog_files_in(directory)}
    directory = Path(directory)
    base = base if base is not None else default_catalog()
    gpus = dict(base.gpus)
    if "gpus.csv" in present:
        gpus.update(load_gpus(present["gpus.csv"]))
    models = dict(base.models)
    if "models.csv" in present:
        models.update(load_models(present["models.csv"]))
    quantisation = dict(base.quantisation)
    if "quantization.csv" in present:
        quantisation.update(_quantisation_rows(present["quantization.csv"]))
    accuracy = dict(base.accuracy)
    if "quality.csv" in present:
        accuracy.update(_accuracy_rows(present["quality.csv"], models))
    _check_required_families(directory / "quality.csv", models, accuracy)
    startup = dict(base.startup)
    if "startup.csv" in present:
        startup.update(_startup_rows(present["startup.csv"], gpus))
    if startup:
        _check_startup_complete(directory / "startup.csv", gpus, startup)
    return Catalog(
        gpus=MappingProxyType(gpus),
        models=MappingProxyType(models),
        quantisation=MappingProxyType(quantisation),
        accuracy=MappingProxyType(accuracy),
        startup=MappingProxyType(startup),
    )
