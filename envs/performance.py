"""Two-phase roofline performance model of one model replica (MODEL.md §2, restated in docs/model.md).

A replica of configuration c = (model j, GPU g, precision q, TP t, PP p) runs on t·p GPUs of type g. Prefill is
compute-bound, a decode step is memory-bound until the compute roof; tensor parallelism adds ring all-reduces
(two per layer). Every method broadcasts over numpy arrays of query-type token counts.

Pipeline parallelism splits the L layers into p stages of L/p layers on t GPUs each. A token of one sequence still
passes through every layer, so its time per output token is p stage-times plus (p − 1) hops τ_pp: PP never shortens
a request's path. It raises throughput because p micro-batches are in flight, one per stage. The engine's batch cap
b_cap (vLLM ``max_num_seqs``, TensorRT-LLM ``max_batch_size``) bounds one forward pass, i.e. one micro-batch, so a
p-stage replica holds up to p·b_cap sequences, as many as its KV cache allows. Engines do this: vLLM's V0 pipeline
parallelism runs p virtual engines, each with its own scheduler (one ``max_num_seqs`` each) and 1/p of the KV blocks
(vllm-project/vllm#4461, restated in the V1 RFC #11945; HabanaAI/vllm-fork#1000: "max_num_seqs acts as a microbatch
for a single virtual_engine"); TensorRT-LLM's inflight batcher sets one micro-batch per PP stage and admits
``max_batch_size × num_micro_batches`` sequences (cpp/tensorrt_llm/batch_manager/trtGptModelInflightBatching.cpp,
``CapacityScheduler(getMaxBatchSize() * mNumMicroBatches, ...)``; NVIDIA/TensorRT-LLM#15740: "the runtime batch
limit is applied to one microbatch"). vLLM's V1 engine instead caps all running sequences at ``max_num_seqs``,
reported as a bug that leaves PP stages under-used (vllm-project/vllm#27462, open); under that cap a PP replica is
only a less loaded one, not a faster one. With the cap per micro-batch, and K_c of a p-stage replica at least p
times that of its p = 1 counterpart, a micro-batch at a given utilisation is at least as large as the counterpart's
batch, so PP never lowers the delay D, while the capacity μ grows by up to p. Prefill: one prompt's T_pre crosses
every stage ((p − 1)·τ_pp more than at p = 1); only prefill throughput uses all t·p GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servegym.envs.catalog import GpuType, ModelSpec

TENSOR_PARALLEL_DEGREES: tuple[int, ...] = (1, 2, 4, 8)
PIPELINE_PARALLEL_DEGREES: tuple[int, ...] = (1, 2, 4)

_ACTIVATION_BYTES = 2.0  # BF16 activations exchanged by tensor-parallel all-reduces
_ALL_REDUCES_PER_LAYER = 2  # Megatron-style TP: one after attention, one after the MLP


@dataclass(frozen=True)
class PerformanceConstants:
    """Efficiency constants of the roofline model; defaults justified in docs/model.md against measurements.

    Attributes:
        compute_efficiency: η_F, achieved fraction of dense peak FLOP/s in prefill and compute-bound decode.
        bandwidth_efficiency: η_B, achieved fraction of peak memory bandwidth in decode.
        nvlink_allreduce_latency_s: Fixed latency of one all-reduce over NVLink, seconds.
        pcie_allreduce_latency_s: Fixed latency of one all-reduce over PCIe, seconds.
        pipeline_hop_s: τ_pp, latency of passing activations between two pipeline stages, seconds.
        memory_reserve_fraction: r_mem, share of GPU memory kept for activations and the runtime.
        min_kv_tokens: A configuration exists only if its KV cache holds at least this many tokens.
        batch_cap: b_cap, the engine's maximum sequences in one forward pass, i.e. per micro-batch (vLLM
            ``max_num_seqs`` per virtual engine, TensorRT-LLM ``max_batch_size``); a replica with p pipeline
            stages holds up to p·b_cap sequences.
    """

    compute_efficiency: float = 0.55
    bandwidth_efficiency: float = 0.70
    nvlink_allreduce_latency_s: float = 40e-6
    pcie_allreduce_latency_s: float = 60e-6
    pipeline_hop_s: float = 200e-6
    memory_reserve_fraction: float = 0.10
    min_kv_tokens: int = 4096
    batch_cap: int = 256

    def __post_init__(self) -> None:
        for name in ("compute_efficiency", "bandwidth_efficiency", "memory_reserve_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"PerformanceConstants.{name} = {value} outside allowed range (0, 1]")
        for name in ("nvlink_allreduce_latency_s", "pcie_allreduce_latency_s", "pipeline_hop_s"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"PerformanceConstants.{name} = {getattr(self, name)} must be ≥ 0")
        if self.min_kv_tokens < 1 or self.batch_cap < 1:
            raise ValueError("PerformanceConstants.min_kv_tokens and batch_cap must be ≥ 1")


@dataclass(frozen=True)
class Replica:
    """One replica of a deployment configuration and its performance.

    Attributes:
        model: The LLM.
        gpu: The GPU type.
        precision: Weight precision (``fp16``, ``int8``, ``int4``).
        weight_bytes_per_param: Bytes per stored parameter at ``precision``.
        tensor_parallel: t, GPUs sharing each layer (within one node).
        pipeline_parallel: p, pipeline stages.
        constants: Efficiency constants.
    """

    model: ModelSpec
    gpu: GpuType
    precision: str
    weight_bytes_per_param: float
    tensor_parallel: int
    pipeline_parallel: int
    constants: PerformanceConstants = PerformanceConstants()

    @property
    def gpus(self) -> int:
        """G_c = t·p GPUs per replica."""
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def weight_bytes(self) -> float:
        """W: bytes of all weights."""
        return self.model.total_params_b * 1e9 * self.weight_bytes_per_param

    @property
    def _flops_per_s(self) -> float:
        """Achieved FLOP/s of one GPU at this precision."""
        return self.gpu.compute_tflops(self.precision) * 1e12 * self.constants.compute_efficiency

    @property
    def _bytes_per_s(self) -> float:
        """Achieved memory bytes/s of one GPU."""
        return self.gpu.memory_bandwidth_gb_s * 1e9 * self.constants.bandwidth_efficiency

    @property
    def kv_capacity_tokens(self) -> float:
        """K_c: tokens of KV cache the replica holds after weights and the runtime reserve."""
        usable = self.gpus * self.gpu.memory_gb * 1e9 * (1.0 - self.constants.memory_reserve_fraction)
        return (usable - self.weight_bytes) / self.model.kv_bytes_per_token

    @property
    def fits(self) -> bool:
        """Whether the configuration is valid: TP within a node, precision supported, weights and KV fit."""
        return (
            self.tensor_parallel <= self.gpu.gpus_per_node
            and self.precision in self.model.precisions
            and self.kv_capacity_tokens >= self.constants.min_kv_tokens
        )

    def _allreduce_s(self, tokens: np.ndarray | float) -> np.ndarray | float:
        """Time of the TP all-reduces of one forward pass over ``tokens`` tokens (ring algorithm)."""
        t = self.tensor_parallel
        if t == 1:
            return 0.0 * np.asarray(tokens, dtype=float)
        latency = (
            self.constants.nvlink_allreduce_latency_s
            if self.gpu.interconnect == "nvlink"
            else self.constants.pcie_allreduce_latency_s
        )
        message_bytes = np.asarray(tokens, dtype=float) * self.model.hidden_size * _ACTIVATION_BYTES
        ring = 2.0 * (t - 1) / t * message_bytes / (self.gpu.interconnect_gb_s * 1e9)
        return self.model.layers * _ALL_REDUCES_PER_LAYER * (latency + ring)

    def prefill_s(self, prompt_tokens: np.ndarray | float) -> np.ndarray | float:
        """T_pre: latency of prefilling one prompt (compute roof, at least one weight read) plus comm and hops."""
        h = np.asarray(prompt_tokens, dtype=float)
        t, p = self.tensor_parallel, self.pipeline_parallel
        compute = 2.0 * self.model.active_params_b * 1e9 * h / (t * self._flops_per_s)
        weight_read = self.weight_bytes / (t * self._bytes_per_s)
        return np.maximum(compute, weight_read) + (p - 1) * self.constants.pipeline_hop_s + self._allreduce_s(h)

    def decode_step_s(self, batch: np.ndarray | float, context_tokens: np.ndarray | float) -> np.ndarray | float:
        """T_step(b): one decode step of ``batch`` sequences of mean resident context through all layers."""
        b = np.asarray(batch, dtype=float)
        t = self.tensor_parallel
        weights = self.weight_bytes / (t * self._bytes_per_s)
        compute = 2.0 * self.model.active_params_b * 1e9 * b / (t * self._flops_per_s)
        kv_read = b * np.asarray(context_tokens, dtype=float) * self.model.kv_bytes_per_token / (t * self._bytes_per_s)
        return np.maximum(weights, compute) + kv_read + self._allreduce_s(b)

    def stage_step_s(self, micro_batch: np.ndarray | float, context_tokens: np.ndarray | float) -> np.ndarray | float:
        """One pipeline stage's decode step for a micro-batch: L/p layers, so W/p weights, κ/p KV bytes per token
        and L/p layers of all-reduces; every term of :meth:`decode_step_s` scales by 1/p (equal to it at p = 1)."""
        return self.decode_step_s(micro_batch, context_tokens) / self.pipeline_parallel

    def tpot_s(self, batch: np.ndarray | float, context_tokens: np.ndarray | float) -> np.ndarray | float:
        """Time per output token with ``batch`` sequences in flight on the replica, split into p micro-batches.

        A token of a micro-batch of m = max(batch/p, 1) sequences crosses all p stages: p stage-times plus (p − 1)
        hops, i.e. T_step(m) + (p − 1)·τ_pp. The p micro-batches in flight give ``batch`` tokens per TPOT.
        """
        p = self.pipeline_parallel
        micro_batch = np.maximum(np.asarray(batch, dtype=float) / p, 1.0)
        return p * self.stage_step_s(micro_batch, context_tokens) + (p - 1) * self.constants.pipeline_hop_s

    def max_batch(self, prompt_tokens: np.ndarray | float, output_tokens: np.ndarray | float) -> np.ndarray:
        """b_max = min(p·b_cap, ⌊K_c / (h + f)⌋), at least 0: sequences in flight on the replica.

        b_cap bounds one micro-batch (see the module docstring), and p micro-batches are in flight.
        """
        per_request = np.asarray(prompt_tokens, dtype=float) + np.asarray(output_tokens, dtype=float)
        cap = self.pipeline_parallel * self.constants.batch_cap
        return np.clip(np.floor(self.kv_capacity_tokens / per_request), 0.0, cap)

    @staticmethod
    def _mean_context(prompt_tokens: np.ndarray | float, output_tokens: np.ndarray | float) -> np.ndarray:
        """c̄ ≈ h + f/2: mean resident context of a sequence over its decode."""
        return np.asarray(prompt_tokens, dtype=float) + 0.5 * np.asarray(output_tokens, dtype=float)

    def _prefill_busy_s(self, prompt_tokens: np.ndarray | float) -> np.ndarray:
        """Replica-seconds of prefill work per request: all t·p GPUs busy, pipelined across requests."""
        h = np.asarray(prompt_tokens, dtype=float)
        return 2.0 * self.model.active_params_b * 1e9 * h / (self.gpus * self._flops_per_s)

    def capacity_per_hour(self, prompt_tokens: np.ndarray | float, output_tokens: np.ndarray | float) -> np.ndarray:
        """μ: requests/hour one replica sustains serving only this type at b_max (0 where b_max < 1)."""
        f = np.asarray(output_tokens, dtype=float)
        batch = self.max_batch(prompt_tokens, output_tokens)
        safe_batch = np.maximum(batch, 1.0)
        decode_busy = f * self.tpot_s(safe_batch, self._mean_context(prompt_tokens, f)) / safe_batch
        seconds_per_request = self._prefill_busy_s(prompt_tokens) + decode_busy
        return np.where(batch >= 1.0, 3600.0 / seconds_per_request, 0.0)

    def delay_s(
        self,
        prompt_tokens: np.ndarray | float,
        output_tokens: np.ndarray | float,
        utilisation: float,
    ) -> np.ndarray:
        """D: end-to-end service delay of one request at a replica utilisation (e.g. the design ρ_max).

        Decode runs with utilisation·b_max sequences in flight and is slowed by the share of replica time that
        the other requests' prefills take (chunked prefill interleaves them with decode steps).
        """
        if not 0.0 <= utilisation < 1.0:
            raise ValueError(f"utilisation {utilisation} outside allowed range [0, 1)")
        f = np.asarray(output_tokens, dtype=float)
        batch = np.maximum(utilisation * self.max_batch(prompt_tokens, f), 1.0)
        tpot = self.tpot_s(batch, self._mean_context(prompt_tokens, f))
        capacity = self.capacity_per_hour(prompt_tokens, f)
        prefill_share = utilisation * self._prefill_busy_s(prompt_tokens) * capacity / 3600.0
        delay = self.prefill_s(prompt_tokens) + f * tpot / (1.0 - prefill_share)
        return np.where(capacity > 0.0, delay, np.inf)
