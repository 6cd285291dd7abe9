"""Two-phase roofline performance model of one model replica (MODEL.md §2, restated in docs/model.md), version 2.

A replica of configuration c = (model j, GPU g, precision q, TP t, PP p) runs on t·p GPUs of type g. Prefill is
compute-bound, a decode step is memory-bound until the compute roof; tensor parallelism adds ring all-reduces
(two per layer) priced with the GPU's measured all-reduce latency α_g and bus bandwidth β_g (gpus.csv). Version 2
also prices: the KV cache at the tier's element size (FP8 KV at the int8 tier), the embeddings and LM head kept
at 16 bits in quantised checkpoints, the dequantisation cost of W4A16 kernels on the CUDA cores,
a fixed kernel-launch overhead per layer and forward pass, a per-request overhead in the time to first token and
the wait for the engine's running iteration, the device memory as ``nvidia-smi`` reports it and the engine's rule
for sizing the KV cache from it, the FLOPs of causal attention (quadratic in the prompt) and of the LM head only
where logits are computed (the last prompt position, every decoded token; the input embedding is a lookup),
the expected number of distinct experts a batch routes to in an MoE layer, and the engine's batch cap per
replica. Every method broadcasts over numpy arrays of query-type token counts.

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

from servegym import numerics
from servegym.envs.catalog import Catalog, GpuType, ModelSpec

TENSOR_PARALLEL_DEGREES: tuple[int, ...] = (1, 2, 4, 8)
PIPELINE_PARALLEL_DEGREES: tuple[int, ...] = (1, 2, 4)

_ACTIVATION_BYTES = 2.0  # BF16 activations exchanged by tensor-parallel all-reduces
_ALL_REDUCES_PER_LAYER = 2  # Megatron-style TP: one after attention, one after the MLP
_EMBEDDING_BYTES = 2.0  # embeddings and LM head stay BF16 in FP8/AWQ/GPTQ checkpoints


@dataclass(frozen=True)
class PerformanceConstants:
    """Physical constants of the roofline model; fitted ones in docs/model.md (scripts/calibrate_performance.py).

    Attributes:
        compute_efficiency: η_F, achieved fraction of dense peak FLOP/s in prefill and compute-bound decode.
        bandwidth_efficiency: η_B, achieved fraction of peak memory bandwidth in decode.
        dequant_flops_per_weight: c_dq, CUDA-core operations a W4A16 kernel spends per 4-bit weight it
            dequantises (unpack, zero point, scale, convert); a pass costs c_dq·N_read / F_fp32 on the CUDA cores.
        pcie_allreduce_efficiency: η_PCIe, fraction of the nccl-tests bus bandwidth β_g that the engines'
            all-reduces reach on PCIe GPUs (NVLink all-reduces use β_g as measured).
        layer_overhead_s: τ_L, fixed time per layer per forward pass (kernel launches, norms, small ops), seconds.
        request_overhead_s: τ_req, fixed time to first token beyond the prefill pass (scheduling, first
            sampling, detokenisation and transport), seconds.
        pipeline_hop_s: τ_pp, latency of passing activations between two pipeline stages, seconds.
        memory_reserve_fraction: r_mem, share of GPU memory kept for activations and the runtime.
        min_kv_tokens: A configuration exists only if its KV cache holds at least this many tokens.
        batch_cap: b_cap, the default engine's maximum sequences in one forward pass, i.e. per micro-batch (vLLM
            ``max_num_seqs`` per virtual engine); a replica with p pipeline stages holds up to p·b_cap
            sequences. A replica may set its own cap (:attr:`Replica.batch_cap`).
    """

    compute_efficiency: float = 0.69
    bandwidth_efficiency: float = 0.88
    dequant_flops_per_weight: float = 20.0
    pcie_allreduce_efficiency: float = 0.68
    layer_overhead_s: float = 81e-6
    request_overhead_s: float = 6.4e-3
    pipeline_hop_s: float = 200e-6
    memory_reserve_fraction: float = 0.10
    min_kv_tokens: int = 4096
    batch_cap: int = 256

    def __post_init__(self) -> None:
        for name in (
            "compute_efficiency",
            "bandwidth_efficiency",
            "pcie_allreduce_efficiency",
            "memory_reserve_fraction",
        ):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"PerformanceConstants.{name} = {value} outside allowed range (0, 1]")
        for name in ("dequant_flops_per_weight", "layer_overhead_s", "request_overhead_s", "pipeline_hop_s"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"PerformanceConstants.{name} = {getattr(self, name)} must be ≥ 0")
        if self.min_kv_tokens < 1 or self.batch_cap < 1:
            raise ValueError("PerformanceConstants.min_kv_tokens and batch_cap must be ≥ 1")


def expected_distinct_experts(experts: int, per_token: int, tokens: np.ndarray | float) -> np.ndarray | float:
    """E·(1 − (1 − k/E)^b): expected distinct experts of one MoE layer that b tokens route to (uniform routing)."""
    b = np.maximum(np.asarray(tokens, dtype=float), 1.0)
    return experts * (1.0 - numerics.power(1.0 - per_token / experts, b))


@dataclass(frozen=True)
class Replica:
    """One replica of a deployment configuration and its performance.

    Attributes:
        model: The LLM.
        gpu: The GPU type.
        precision: Weight precision (``fp16``, ``int8``, ``int4``).
        weight_bytes_per_param: Bytes per stored quantised parameter at ``precision`` (scales included).
        tensor_parallel: t, GPUs sharing each layer (within one node).
        pipeline_parallel: p, pipeline stages.
        constants: Physical constants.
        kv_bytes_per_element: Bytes per KV-cache element (2 = FP16, 1 = FP8).
        batch_cap: The engine's sequences per micro-batch; None = ``constants.batch_cap``.
        memory_reserve_fraction: The engine's share of GPU memory not given to weights or KV cache; None =
            ``constants.memory_reserve_fraction``.
        quantised_embeddings: Whether the embeddings and LM head are stored at ``weight_bytes_per_param`` too
            (GGUF files) rather than at 2 bytes (FP8/AWQ/GPTQ checkpoints).
        kv_free_fraction: For engines that size the KV cache as a fraction of the memory left after the weights
            (TensorRT-LLM ``kv_cache_free_gpu_mem_fraction``): that fraction f, so K_c = f·(G_c·M_g − W)/κ;
            None = the vLLM rule K_c = ((1 − r_mem)·G_c·M_g − W)/κ.
    """

    model: ModelSpec
    gpu: GpuType
    precision: str
    weight_bytes_per_param: float
    tensor_parallel: int
    pipeline_parallel: int
    constants: PerformanceConstants = PerformanceConstants()
    kv_bytes_per_element: float = 2.0
    batch_cap: int | None = None
    quantised_embeddings: bool = False
    memory_reserve_fraction: float | None = None
    kv_free_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.batch_cap is not None and self.batch_cap < 1:
            raise ValueError(f"Replica.batch_cap = {self.batch_cap} must be ≥ 1")
        reserve = self.memory_reserve_fraction
        if reserve is not None and not 0.0 <= reserve < 1.0:
            raise ValueError(f"Replica.memory_reserve_fraction = {reserve} outside allowed range [0, 1)")
        if self.kv_free_fraction is not None and not 0.0 < self.kv_free_fraction <= 1.0:
            raise ValueError(f"Replica.kv_free_fraction = {self.kv_free_fraction} outside allowed range (0, 1]")
        if self.kv_bytes_per_element <= 0.0:
            raise ValueError(f"Replica.kv_bytes_per_element = {self.kv_bytes_per_element} must be > 0")

    @property
    def gpus(self) -> int:
        """G_c = t·p GPUs per replica."""
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def _embedding_bytes_per_param(self) -> float:
        """Bytes per parameter of the embeddings and LM head."""
        return self.weight_bytes_per_param if self.quantised_embeddings else _EMBEDDING_BYTES

    @property
    def _body_params(self) -> float:
        """Parameters of the transformer layers (all but embeddings and LM head)."""
        return (self.model.total_params_b - self.model.embedding_params_b) * 1e9

    @property
    def weight_bytes(self) -> float:
        """W: bytes of all stored weights (layers at the precision, embeddings and LM head at theirs)."""
        embeddings = self.model.embedding_params_b * 1e9 * self._embedding_bytes_per_param
        return self._body_params * self.weight_bytes_per_param + embeddings

    @property
    def kv_bytes_per_token(self) -> float:
        """κ: KV-cache bytes per token at this replica's KV element size."""
        return self.model.kv_elements_per_token * self.kv_bytes_per_element

    @property
    def _layer_flops_per_token(self) -> float:
        """2·(N^a − N_emb): FLOPs of one token through the transformer layers' weights (matrix multiplies).

        The input embedding is a lookup (no FLOPs); the LM head is counted per token whose logits are computed
        (:attr:`_lm_head_flops`). With no vocabulary size in the catalog N_emb = 0 and all of N^a is counted.
        """
        return 2.0 * (self.model.active_params_b - self.model.embedding_params_b) * 1e9

    @property
    def _lm_head_flops(self) -> float:
        """2·V·H: FLOPs of the LM head for one token's logits."""
        return 2.0 * self.model.lm_head_params_b * 1e9

    def prefill_flops(self, prompt_tokens: np.ndarray | float) -> np.ndarray | float:
        """FLOPs of one prompt's prefill: 2·(N^a − N_emb)·h + 2·V·H + 2·L·H_q·h².

        The layers' weights multiply every prompt token; the LM head runs for the last position only (the engines
        compute prompt logits only on request: TensorRT-LLM ``return_context_logits`` / ``gather_context_logits``
        default False, vLLM ``SamplingParams.prompt_logprobs`` default None, llama.cpp ``logits_all`` default
        false, "computes all logits, not just the last one" when set); causal self-attention adds, per layer, the
        h·(h + 1)/2 ≈ h²/2 query-key pairs at 2·H_q FLOPs in QKᵀ and 2·H_q in AV each, so 2·L·H_q·h² (Hoffmann et
        al. 2022, arXiv 2203.15556, appendix F, count 4·h²·H_q per layer without the causal mask; FlashAttention's
        causal kernels skip the masked half). H_q, the query width (attention heads × head dimension), equals the model
        width H in every catalog model (tests/test_catalog_data.py).
        """
        h = np.asarray(prompt_tokens, dtype=float)
        attention = 2.0 * self.model.layers * self.model.hidden_size * h * h
        return self._layer_flops_per_token * h + self._lm_head_flops + attention

    def decode_flops(self, batch: np.ndarray | float, context_tokens: np.ndarray | float) -> np.ndarray | float:
        """FLOPs of one decode step of ``batch`` sequences: each token's layers and LM head, 2·(N^a − N_emb) + 2·V·H,
        and its attention over the c resident tokens, QKᵀ and AV at 2·c·H_q FLOPs each per layer: 4·L·H_q·c."""
        b = np.asarray(batch, dtype=float)
        attention = 4.0 * self.model.layers * self.model.hidden_size * np.asarray(context_tokens, dtype=float)
        return b * (self._layer_flops_per_token + self._lm_head_flops + attention)

    @property
    def _flops_per_s(self) -> float:
        """Achieved FLOP/s of one GPU at this precision: η_F · s_g · datasheet peak, with s_g the GPU's measured
        achievable share of its BF16 peak (gpus.csv ``matmul_bf16_tflops``), applied to every tier."""
        return self.gpu.sustained_tflops(self.precision) * 1e12 * self.constants.compute_efficiency

    @property
    def _bytes_per_s(self) -> float:
        """Achieved memory bytes/s of one GPU."""
        return self.gpu.memory_bandwidth_gb_s * 1e9 * self.constants.bandwidth_efficiency

    @property
    def kv_capacity_tokens(self) -> float:
        """K_c: tokens of KV cache the replica holds after weights and the runtime reserve.

        M_g is the memory ``nvidia-smi`` reports (gpus.csv ``memory_mib``), from which the engines size the cache:
        vLLM gives weights and KV cache (1 − r_mem) of it, TensorRT-LLM gives the KV cache a fraction f of what
        the weights leave (:attr:`kv_free_fraction`).
        """
        memory = self.gpus * self.gpu.memory_bytes
        if self.kv_free_fraction is not None:
            return self.kv_free_fraction * (memory - self.weight_bytes) / self.kv_bytes_per_token
        reserve = self.memory_reserve_fraction
        reserve = self.constants.memory_reserve_fraction if reserve is None else reserve
        return (memory * (1.0 - reserve) - self.weight_bytes) / self.kv_bytes_per_token

    @property
    def fits(self) -> bool:
        """Whether the configuration is valid: TP within a node, precision supported, weights and KV fit."""
        return (
            self.tensor_parallel <= self.gpu.gpus_per_node
            and self.precision in self.model.precisions
            and self.kv_capacity_tokens >= self.constants.min_kv_tokens
        )

    def layer_weight_bytes_read(self, tokens: np.ndarray | float) -> np.ndarray | float:
        """Bytes of transformer-layer weights one forward pass over ``tokens`` tokens reads (all GPUs together).

        Dense layers are read once per pass. An MoE layer reads its shared weights and the experts the tokens
        route to: E·(1 − (1 − k/E)^b) distinct experts in expectation (k of E at b = 1, all E for large b).
        """
        model = self.model
        expert = model.expert_params_b * 1e9
        shared = self._body_params - model.experts * expert
        routed = expert * expected_distinct_experts(model.experts, model.experts_per_token, tokens)
        return (shared + routed) * self.weight_bytes_per_param

    def _weight_read_s(self, tokens: np.ndarray | float) -> np.ndarray | float:
        """Time one GPU of the TP group spends on its share of the weights in one forward pass.

        The layers' weights and the LM head stream at η_B (the input embedding is only looked up, not read).
        W4A16 kernels also dequantise every 4-bit weight they read on the CUDA cores, overlapped with the
        stream: the pass takes the longer of the read and c_dq·N_read / F_fp32.
        """
        layer_bytes = self.layer_weight_bytes_read(tokens)
        lm_head = self.model.lm_head_params_b * 1e9 * self._embedding_bytes_per_param
        read = (layer_bytes + lm_head) / self._bytes_per_s
        if self.precision == "int4":
            weights = layer_bytes / self.weight_bytes_per_param
            dequant = self.constants.dequant_flops_per_weight * weights / (self.gpu.fp32_tflops * 1e12)
            read = np.maximum(read, dequant + lm_head / self._bytes_per_s)
        return read / self.tensor_parallel

    def allreduce_s(self, tokens: np.ndarray | float) -> np.ndarray | float:
        """Time of the TP all-reduces of one forward pass over ``tokens`` tokens.

        Two per layer, each α_g + 2(t − 1)/t · m / β_g for a message of m = tokens·H·2 bytes (ring algorithm at
        the measured bus bandwidth β_g, nccl-tests' ``busbw`` convention, times η_PCIe on PCIe); 0 at t = 1.
        """
        t = self.tensor_parallel
        if t == 1:
            return 0.0 * np.asarray(tokens, dtype=float)
        message_bytes = np.asarray(tokens, dtype=float) * self.model.hidden_size * _ACTIVATION_BYTES
        busbw = self.gpu.allreduce_busbw_gb_s * 1e9
        if self.gpu.interconnect == "pcie":
            busbw *= self.constants.pcie_allreduce_efficiency
        ring = 2.0 * (t - 1) / t * message_bytes / busbw
        return self.model.layers * _ALL_REDUCES_PER_LAYER * (self.gpu.allreduce_latency_us * 1e-6 + ring)

    @property
    def _pass_overhead_s(self) -> float:
        """L·τ_L: fixed per-layer time of one forward pass through all layers."""
        return self.model.layers * self.constants.layer_overhead_s

    def prefill_s(self, prompt_tokens: np.ndarray | float, prompts: float = 1.0) -> np.ndarray | float:
        """T_pre: one prefill pass over ``prompts`` prompts of ``prompt_tokens`` tokens each (compute roof of
        :meth:`prefill_flops` per prompt, at least one weight read), all-reduces, layer overheads and pipeline
        hops, seconds."""
        h = np.asarray(prompt_tokens, dtype=float)
        t, p = self.tensor_parallel, self.pipeline_parallel
        compute = prompts * self.prefill_flops(h) / (t * self._flops_per_s)
        roof = np.maximum(compute, self._weight_read_s(prompts * h))
        overheads = self._pass_overhead_s + (p - 1) * self.constants.pipeline_hop_s
        return roof + self.allreduce_s(prompts * h) + overheads

    def ttft_s(self, prompt_tokens: np.ndarray | float) -> np.ndarray | float:
        """Time to first token of one request on an idle replica: T_pre + τ_req, seconds."""
        return self.prefill_s(prompt_tokens) + self.constants.request_overhead_s

    def iteration_wait_s(self, others: np.ndarray | float, context_tokens: np.ndarray | float) -> np.ndarray | float:
        """Mean wait of an arriving request for the engine's running iteration: min(n, 1) · TPOT(n) / 2.

        Continuous-batching engines admit a request only between iterations (iteration-level scheduling, Orca,
        OSDI '22; vLLM and TensorRT-LLM in-flight batching do the same). With n ≥ 1 other sequences decoding, the
        engine is always inside an iteration, and a request arriving at a random time waits for the rest of it:
        on average half of it (the mean residual of a fixed period). With p pipeline stages the request joins one
        micro-batch, whose scheduler runs once per pass of that micro-batch through all stages (vLLM's virtual
        engines, vllm-project/vllm#4461), so the iteration is the micro-batch's cycle, :meth:`tpot_s` (one decode
        step at p = 1). Below one sequence in flight the wait is scaled by n, the chance that an iteration runs.
        """
        n = np.asarray(others, dtype=float)
        return 0.5 * np.clip(n, 0.0, 1.0) * self.tpot_s(np.maximum(n, 1.0), context_tokens)

    def decode_step_s(self, batch: np.ndarray | float, context_tokens: np.ndarray | float) -> np.ndarray | float:
        """T_step(b): one decode step of ``batch`` sequences of mean resident context through all layers."""
        b = np.asarray(batch, dtype=float)
        t = self.tensor_parallel
        compute = self.decode_flops(b, context_tokens) / (t * self._flops_per_s)
        kv_read = b * np.asarray(context_tokens, dtype=float) * self.kv_bytes_per_token / (t * self._bytes_per_s)
        roof = np.maximum(self._weight_read_s(b), compute)
        return roof + kv_read + self.allreduce_s(b) + self._pass_overhead_s

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
        cap = self.pipeline_parallel * (self.constants.batch_cap if self.batch_cap is None else self.batch_cap)
        return np.clip(np.floor(self.kv_capacity_tokens / per_request), 0.0, cap)

    @staticmethod
    def _mean_context(prompt_tokens: np.ndarray | float, output_tokens: np.ndarray | float) -> np.ndarray:
        """c̄ ≈ h + f/2: mean resident context of a sequence over its decode."""
        return np.asarray(prompt_tokens, dtype=float) + 0.5 * np.asarray(output_tokens, dtype=float)

    def prefill_busy_s(self, prompt_tokens: np.ndarray | float) -> np.ndarray:
        """Replica-seconds of prefill work per request: the compute and all-reduces of the prompt, each stage
        doing 1/p of the layers, pipelined across requests."""
        h = np.asarray(prompt_tokens, dtype=float)
        compute = self.prefill_flops(h) / (self.tensor_parallel * self._flops_per_s)
        return (compute + self.allreduce_s(h)) / self.pipeline_parallel

    def capacity_per_hour(self, prompt_tokens: np.ndarray | float, output_tokens: np.ndarray | float) -> np.ndarray:
        """μ: requests/hour one replica sustains serving only this type at b_max (0 where b_max < 1)."""
        f = np.asarray(output_tokens, dtype=float)
        batch = self.max_batch(prompt_tokens, output_tokens)
        safe_batch = np.maximum(batch, 1.0)
        decode_busy = f * self.tpot_s(safe_batch, self._mean_context(prompt_tokens, f)) / safe_batch
        seconds_per_request = self.prefill_busy_s(prompt_tokens) + decode_busy
        return np.where(batch >= 1.0, 3600.0 / seconds_per_request, 0.0)

    def delay_s(
        self,
        prompt_tokens: np.ndarray | float,
        output_tokens: np.ndarray | float,
        utilisation: float,
    ) -> np.ndarray:
        """D: end-to-end service delay of one request at a replica utilisation (e.g. the design ρ_max).

        Decode runs with utilisation·b_max sequences in flight and is slowed by the share of replica time that
        the other requests' prefills take (chunked prefill interleaves them with decode steps); the first token
        also waits for the iteration those sequences are running (:meth:`iteration_wait_s`).
        """
        if not 0.0 <= utilisation < 1.0:
            raise ValueError(f"utilisation {utilisation} outside allowed range [0, 1)")
        f = np.asarray(output_tokens, dtype=float)
        context = self._mean_context(prompt_tokens, f)
        in_flight = utilisation * self.max_batch(prompt_tokens, f)
        tpot = self.tpot_s(np.maximum(in_flight, 1.0), context)
        capacity = self.capacity_per_hour(prompt_tokens, f)
        prefill_share = utilisation * self.prefill_busy_s(prompt_tokens) * capacity / 3600.0
        ttft = self.ttft_s(prompt_tokens) + self.iteration_wait_s(in_flight, context)
        delay = ttft + f * tpot / (1.0 - prefill_share)
        return np.where(capacity > 0.0, delay, np.inf)


def replica_for(
    catalog: Catalog,
    model: str,
    gpu: str,
    precision: str,
    tensor_parallel: int,
    pipeline_parallel: int,
    constants: PerformanceConstants | None = None,
) -> Replica:
    """The replica of a catalog configuration: weight and KV element sizes from the catalog's precision tier."""
    return Replica(
        catalog.models[model],
        catalog.gpus[gpu],
        precision,
        catalog.bytes_per_param[precision],
        tensor_parallel,
        pipeline_parallel,
        constants or PerformanceConstants(),
        kv_bytes_per_element=catalog.kv_bytes_per_element[precision],
    )
