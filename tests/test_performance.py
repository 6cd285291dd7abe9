"""The roofline performance model (v2): pinned against published measurements, and each model change on a
hand-computed case."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from catalog_files import copy_catalog, edit

from servegym.envs.calibration import EXCLUDED, TOLERANCE_FACTOR, compare_measurements, load_measurements
from servegym.envs.catalog import CatalogError, default_catalog, load_catalog, load_catalog_overrides
from servegym.envs.performance import PerformanceConstants, Replica, expected_distinct_experts, replica_for
from servegym.envs.scenarios import SCENARIOS, make_instance

COMPARISONS = [c for c in compare_measurements() if c.id not in EXCLUDED]
SCENARIO_CASES = [(name, seed) for name in SCENARIOS for seed in ((0, 1) if name == "random" else (0,))]
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "my-catalog"
C = PerformanceConstants()


def replica(model: str, gpu: str, precision: str = "fp16", tp: int = 1, pp: int = 1) -> Replica:
    return replica_for(default_catalog(), model, gpu, precision, tp, pp)


def test_performance__the_measurement_set_covers_the_issue_11_dimensions():
    rows = load_measurements()
    predicted = {c.id for c in COMPARISONS}
    assert len(predicted) >= 60
    used = rows[rows["id"].isin(predicted)]
    assert used["engine"].nunique() >= 4 and used["gpu"].nunique() >= 6
    assert {"L4", "RTX4090"} <= set(used["gpu"]) and set(used["precision"]) == {"fp16", "int8", "int4"}
    assert {c.metric for c in COMPARISONS} >= {"ttft_ms", "tpot_ms", "output_throughput_tok_s"}
    regimes = pd.Series([r for c in COMPARISONS for r in c.regimes]).value_counts()
    assert regimes["pipeline"] >= 6 and regimes["moe"] >= 6 and regimes["tp-pcie"] > 0 and regimes["tp-nvlink"] > 0
    assert {"single", "offline"} <= set(used["batching"])


def test_performance__each_source_lies_in_one_split():
    rows = load_measurements()
    assert (rows.groupby("source_group")["split"].nunique() == 1).all()
    assert set(rows["split"]) == {"fit", "validation"}


@pytest.mark.parametrize("comparison", COMPARISONS, ids=lambda c: c.id)
def test_performance__prediction_within_its_regime_tolerance_of_measurement(comparison):
    tolerance = TOLERANCE_FACTOR[comparison.phase]
    assert 1 / tolerance <= comparison.ratio <= tolerance, comparison


def test_performance__fp8_kv_cache_doubles_kv_capacity():
    fp8 = replica("Llama-3.1-70B", "H100-SXM", "int8", tp=4)  # the int8 tier stores FP8 KV (quantization.csv)
    fp16_kv = Replica(fp8.model, fp8.gpu, "int8", fp8.weight_bytes_per_param, 4, 1, kv_bytes_per_element=2.0)
    assert fp8.kv_bytes_per_element == 1.0 and fp8.kv_bytes_per_token == 2 * 80 * 8 * 128 * 1
    assert fp8.kv_capacity_tokens == pytest.approx(2.0 * fp16_kv.kv_capacity_tokens)
    assert replica("Llama-3.1-70B", "H100-SXM", "fp16", tp=4).kv_bytes_per_element == 2.0
    assert replica("Llama-3.1-70B", "H100-SXM", "int4", tp=4).kv_bytes_per_element == 2.0


def test_performance__kv_capacity_follows_the_memory_formula():
    r = replica("Llama-3.1-8B", "H100-SXM")
    kv_bytes_per_token = 2 * 32 * 8 * 128 * 2
    memory = 81559 * 2**20  # nvidia-smi memory.total of an H100 80GB HBM3: 85.5e9 bytes, not the datasheet's 80e9
    expected = (memory * 0.9 - 8.03e9 * 2) / kv_bytes_per_token  # FP16: embeddings at 2 bytes like the rest
    assert r.gpu.memory_bytes == pytest.approx(85.52e9, rel=1e-4)
    assert r.kv_bytes_per_token == kv_bytes_per_token
    assert r.kv_capacity_tokens == pytest.approx(expected)


def test_performance__tensorrt_llm_gives_the_kv_cache_a_fraction_of_the_memory_the_weights_leave():
    vllm = replica("Llama-3.1-70B", "H100-SXM", "int8")  # 70B FP8 on one H100: 72.1 GB of weights
    trt = Replica(
        vllm.model, vllm.gpu, "int8", vllm.weight_bytes_per_param, 1, 1, kv_bytes_per_element=1.0, kv_free_fraction=0.95
    )
    free = 81559 * 2**20 - vllm.weight_bytes
    assert free == pytest.approx(12.8e9, rel=0.01)
    assert trt.kv_capacity_tokens == pytest.approx(0.95 * free / (2 * 80 * 8 * 128))  # 74 k FP8 tokens
    assert vllm.kv_capacity_tokens == pytest.approx((0.9 * 81559 * 2**20 - vllm.weight_bytes) / (2 * 80 * 8 * 128))
    with pytest.raises(ValueError, match="kv_free_fraction"):
        Replica(vllm.model, vllm.gpu, "int8", 1.0, 1, 1, kv_free_fraction=0.0)


def test_performance__quantised_checkpoints_keep_embeddings_and_lm_head_at_16_bits():
    r = replica("Llama-3.1-8B", "H100-SXM", "int4")
    embeddings = 2 * 128256 * 4096  # untied input embedding + LM head: 1.0507e9 parameters
    assert r.weight_bytes == pytest.approx((8.03e9 - embeddings) * 0.52 + embeddings * 2.0)  # 4.70 GB, not 4.0
    gguf = Replica(r.model, r.gpu, "int4", 4.90 / 8, 1, 1, quantised_embeddings=True)  # Q4_K_M: file size / params
    assert gguf.weight_bytes == pytest.approx(8.03e9 * 4.90 / 8)


def test_performance__batch_one_decode_is_the_weight_read_plus_layer_overheads_and_all_reduces():
    r = replica("Llama-3.1-70B", "H100-SXM", "fp16", tp=4)
    read_bytes = (70.6e9 - 128256 * 8192) * 2  # every weight but the input embedding (looked up, not read)
    weights_s = read_bytes / (4 * 3350e9 * C.bandwidth_efficiency)
    assert r.decode_step_s(1, 0) == pytest.approx(weights_s + 80 * C.layer_overhead_s + r.allreduce_s(1))


def test_performance__batch_one_mixtral_decode_reads_two_of_eight_experts_plus_shared_weights():
    r = replica("Mixtral-8x7B", "H100-SXM", "fp16", tp=2)
    expert = (46.7e9 - 12.9e9) / (8 - 2)  # 5.633e9 parameters per expert over the 32 layers
    embeddings = 2 * 32000 * 4096
    shared = 46.7e9 - embeddings - 8 * expert  # attention, norms, routers: 1.337e9
    assert expected_distinct_experts(8, 2, 1) == pytest.approx(2.0)
    assert r.layer_weight_bytes_read(1) == pytest.approx((shared + 2 * expert) * 2)  # 25.3 GB of 93 GB
    assert r.layer_weight_bytes_read(1) / 2 + embeddings == pytest.approx(12.9e9)  # = the active parameters
    assert expected_distinct_experts(8, 2, 8) == pytest.approx(8 * (1 - 0.75**8))  # 6.80 experts at batch 8
    assert r.layer_weight_bytes_read(1000) == pytest.approx((46.7e9 - embeddings) * 2)  # large batch: all experts
    dense = replica("Llama-3.1-8B", "H100-SXM")
    assert dense.layer_weight_bytes_read(1) == dense.layer_weight_bytes_read(256)


def test_performance__one_layers_all_reduce_matches_the_cited_measurements():
    nccl = PerformanceConstants(pcie_allreduce_efficiency=1.0)  # nccl-tests conditions: the measured busbw itself
    catalog = default_catalog()
    # NVLink, H100 TP 8, one decode token (8 KB per all-reduce): vLLM custom all-reduce 9.1–10.1 µs at TP 2–8 for
    # the smallest message (sgl-project/sglang#2904), two per layer
    h100 = replica_for(catalog, "Llama-3.1-70B", "H100-SXM", "fp16", 8, 1, nccl)
    per_layer = float(h100.allreduce_s(1)) / 80
    assert per_layer == pytest.approx(2 * (10e-6 + 2 * 7 / 8 * 8192 * 2 / 370e9))
    assert 2 * 9.1e-6 <= per_layer <= 2 * 10.2e-6
    # PCIe, RTX 4090: NCCL 8-byte all-reduce 42.1–42.6 µs on 8 GPUs (NVIDIA/nccl#1530); 4 GPUs with P2P, 256 MiB
    # (16384 tokens of width 8192, BF16): 15.654 ms measured (tinygrad/open-gpu-kernel-modules#36)
    rtx = replica_for(catalog, "Llama-3.1-70B", "RTX4090", "int4", 4, 1, nccl)
    big = float(rtx.allreduce_s(2**28 / (8192 * 2))) / 80 / 2
    assert big == pytest.approx(15.654e-3, rel=0.01)
    rtx8 = replica_for(catalog, "Llama-3.1-70B", "RTX4090", "int4", 8, 1, nccl)
    assert 42.1e-6 <= float(rtx8.allreduce_s(1)) / 160 <= 42.6e-6 + 2 * 7 / 8 * 16384 / 25.8e9
    # engines reach η_PCIe of the nccl-tests bandwidth on PCIe (fitted); NVLink is unchanged by it
    engine = replica("Llama-3.1-70B", "RTX4090", "int4", tp=4)
    ring = float(engine.allreduce_s(16384)) / 160 - 42.3e-6
    assert ring == pytest.approx(1.5 * 2**28 / (25.8e9 * C.pcie_allreduce_efficiency))


def test_performance__w4a16_decode_pays_dequantisation_where_cuda_cores_are_slow_next_to_memory():
    a100, rtx = replica("Llama-3.1-8B", "A100-80GB", "int4"), replica("Llama-3.1-8B", "RTX4090", "int4")
    embeddings = 128256 * 4096
    layer_weights = 8.03e9 - 2 * embeddings
    lm_head_bytes = embeddings * 2
    for r, fp32, bandwidth in ((a100, 19.5e12, 2039e9), (rtx, 82.6e12, 1008e9)):
        read = (layer_weights * 0.52 + lm_head_bytes) / (bandwidth * C.bandwidth_efficiency)
        dequant = C.dequant_flops_per_weight * layer_weights / fp32 + lm_head_bytes / (
            bandwidth * C.bandwidth_efficiency
        )
        assert r.decode_step_s(1, 0) == pytest.approx(max(read, dequant) + 32 * C.layer_overhead_s)
    a100_read = (layer_weights * 0.52 + lm_head_bytes) / (2039e9 * C.bandwidth_efficiency)
    assert a100.decode_step_s(1, 0) > 1.5 * a100_read  # dequantisation-bound on the A100
    rtx_read = (layer_weights * 0.52 + lm_head_bytes) / (1008e9 * C.bandwidth_efficiency)
    assert rtx.decode_step_s(1, 0) == pytest.approx(rtx_read + 32 * C.layer_overhead_s)  # memory-bound on the 4090


def test_performance__time_to_first_token_adds_layer_and_request_overheads_to_the_prefill_roof():
    constants = PerformanceConstants(request_overhead_s=5e-3)
    r = replica_for(default_catalog(), "Llama-3.1-8B", "H100-SXM", "fp16", 1, 1, constants)
    lm_head = 128256 * 4096
    flops = 2 * (8.03e9 - 2 * lm_head) * 2048 + 2 * lm_head + 2 * 32 * 4096 * 2048**2
    compute = flops / (821.2e12 * constants.compute_efficiency)  # the H100's measured achievable BF16 matmul rate
    assert r.prefill_s(2048) == pytest.approx(compute + 32 * constants.layer_overhead_s)
    assert r.ttft_s(2048) == pytest.approx(r.prefill_s(2048) + 5e-3)


def test_performance__compute_roof_runs_at_the_measured_achievable_matmul_share_of_every_tier():
    # L40S: mamf-finder BF16 matmul 252.0 of the 362.05 dense datasheet TFLOP/s, s_g = 0.696; the FP8 tier runs at
    # the same share of its 733 TFLOP/s: 510.2 TFLOP/s, times η_F
    l40s = replica("Llama-3.1-8B", "L40S", "int8")
    assert l40s.gpu.matmul_fraction == pytest.approx(252.0 / 362.05)
    assert l40s.gpu.sustained_tflops("int8") == pytest.approx(510.19, rel=1e-4)
    assert l40s.gpu.sustained_tflops("fp16") == pytest.approx(252.0)
    lm_head = 128256 * 4096
    flops = 2 * (8.03e9 - 2 * lm_head) * 4096 + 2 * lm_head + 2 * 32 * 4096 * 4096**2  # 6.16e13: compute-bound
    compute = flops / (733e12 * 252.0 / 362.05 * C.compute_efficiency)  # 174.9 ms at η_F 0.69 (weight read 21 ms)
    assert l40s.prefill_s(4096) == pytest.approx(compute + 32 * C.layer_overhead_s)
    assert compute == pytest.approx(0.1749, rel=1e-3)
    # without a measurement (user catalogs written before the column) the datasheet peak is used
    assert dataclasses.replace(l40s.gpu, matmul_bf16_tflops=None).sustained_tflops("int8") == 733.0


def test_performance__prefill_flops_count_layers_per_token_the_lm_head_once_and_causal_attention():
    r = replica("Llama-3.1-8B", "H100-SXM")
    lm_head = 128256 * 4096  # 0.525e9 parameters; the untied input embedding has as many and does no FLOPs
    layers = 8.03e9 - 2 * lm_head  # 6.98e9
    # h = 2048: 2.86e13 in the layers, 1.05e9 in the LM head (last position only), 1.10e12 of attention (3.8 %)
    assert r.prefill_flops(2048) == pytest.approx(2 * layers * 2048 + 2 * lm_head + 2 * 32 * 4096 * 2048**2)
    # attention is quadratic: at 8192 tokens it is 15 % of the layers' FLOPs, at 128 tokens 0.2 %
    attention = r.prefill_flops(8192) - 2 * layers * 8192 - 2 * lm_head
    assert attention / (2 * layers * 8192) == pytest.approx(32 * 4096 * 8192 / layers, rel=1e-9)
    assert 0.14 < attention / (2 * layers * 8192) < 0.16


def test_performance__decode_flops_count_each_token_layers_lm_head_and_attention_over_its_context():
    r = replica("Llama-3.1-8B", "H100-SXM")
    lm_head = 128256 * 4096
    per_token = 2 * (8.03e9 - 2 * lm_head) + 2 * lm_head + 4 * 32 * 4096 * 1000  # 1000 resident tokens
    assert r.decode_flops(64, 1000) == pytest.approx(64 * per_token)


def test_performance__a_static_batch_prefills_its_prompts_in_one_pass_with_attention_per_prompt():
    r = replica("Llama-3.1-8B", "H100-SXM")
    compute = 8 * r.prefill_flops(512) / (821.2e12 * C.compute_efficiency)  # not prefill_flops(8 × 512)
    assert r.prefill_s(512, 8) == pytest.approx(compute + 32 * C.layer_overhead_s)


def test_performance__batch_cap_is_a_setting_of_the_replica():
    default = replica("Llama-3.2-3B", "H100-SXM", "int8")
    trtllm = Replica(default.model, default.gpu, "int8", 1.0, 1, 1, kv_bytes_per_element=1.0, batch_cap=1024)
    assert default.max_batch(128.0, 128.0) == C.batch_cap == 256
    assert trtllm.max_batch(128.0, 128.0) == 1024
    assert trtllm.capacity_per_hour(128.0, 128.0) > 1.3 * default.capacity_per_hour(128.0, 128.0)  # 1.39x


def test_performance__user_catalogs_without_the_v2_columns_load_with_the_documented_defaults(tmp_path):
    catalog = load_catalog_overrides(EXAMPLE)  # the example gpus.csv/models.csv predate the v2 columns
    l40s, h100 = catalog.gpus["L40S"], catalog.gpus["H100-SXM"]
    assert (l40s.allreduce_latency_us, l40s.allreduce_busbw_gb_s) == (42.0, pytest.approx(0.80 * 32))
    assert (h100.allreduce_latency_us, h100.allreduce_busbw_gb_s) == (10.0, pytest.approx(0.82 * 450))
    assert l40s.fp32_tflops == pytest.approx(362.05 / 16)
    assert l40s.matmul_bf16_tflops is None and l40s.sustained_tflops("int8") == l40s.eight_bit_dense_tflops
    qwen = catalog.models["Qwen2.5-14B"]
    assert (qwen.vocab_size, qwen.experts, qwen.experts_per_token) == (0, 1, 1)
    data = copy_catalog(tmp_path)
    edit(data / "gpus.csv", 0, "allreduce_busbw_gb_s", "fast")
    with pytest.raises(CatalogError, match=r"gpus.csv: row 1, field 'allreduce_busbw_gb_s'"):
        load_catalog(data)


def test_performance__moe_rows_need_experts_and_fewer_active_parameters(tmp_path):
    data = copy_catalog(tmp_path)
    mixtral = list(pd.read_csv(data / "models.csv")["name"]).index("Mixtral-8x7B")
    edit(data / "models.csv", mixtral, "experts", "")
    with pytest.raises(CatalogError, match=r"models.csv: row \d+, field 'experts'"):
        load_catalog(data)


def test_performance__configurations_that_do_not_fit_memory_are_rejected():
    assert not replica("Llama-3.1-405B", "H100-SXM", "fp16", tp=8).fits  # 810 GB of weights on 640 GB
    assert replica("Llama-3.1-405B", "H200", "fp16", tp=8).fits  # 1128 GB
    assert not replica("Llama-3.1-70B", "RTX4090", "fp16", tp=1).fits
    assert not replica("Llama-3.1-8B", "L4", "fp16", tp=16).fits  # beyond GPUs per node


def test_performance__tensor_parallelism_cuts_latency_pipeline_parallelism_raises_capacity():
    h, f = np.array([1000.0]), np.array([200.0])
    tp1 = replica("Llama-3.1-8B", "A100-80GB")
    tp2 = replica("Llama-3.1-8B", "A100-80GB", tp=2)
    pp2 = replica("Llama-3.1-8B", "A100-80GB", pp=2)
    assert tp2.tpot_s(1, 1100) < tp1.tpot_s(1, 1100)
    assert pp2.tpot_s(1, 1100) > tp1.tpot_s(1, 1100)  # a hop more, no latency gain at batch 1
    assert pp2.capacity_per_hour(h, f)[0] > 1.5 * tp1.capacity_per_hour(h, f)[0]


def test_performance__delay_grows_with_utilisation_and_tokens():
    r = replica("Llama-3.1-8B", "L40S", "int8")
    h, f = np.array([500.0, 500.0, 2000.0]), np.array([100.0, 400.0, 100.0])
    low, high = r.delay_s(h, f, 0.3), r.delay_s(h, f, 0.85)
    assert np.all(high > low)
    assert low[1] > low[0] and low[2] > low[0]


def test_performance__constants_outside_their_range_are_rejected():
    with pytest.raises(ValueError, match="bandwidth_efficiency"):
        PerformanceConstants(bandwidth_efficiency=1.5)
    with pytest.raises(ValueError, match="pipeline_hop_s"):
        PerformanceConstants(pipeline_hop_s=-1.0)
    with pytest.raises(ValueError, match="utilisation"):
        replica("Llama-3.1-8B", "L4").delay_s(100.0, 10.0, 1.0)
    r = replica("Llama-3.1-8B", "L4")
    with pytest.raises(ValueError, match="batch_cap"):
        Replica(r.model, r.gpu, "fp16", 2.0, 1, 1, batch_cap=0)
    with pytest.raises(ValueError, match="memory_reserve_fraction"):
        Replica(r.model, r.gpu, "fp16", 2.0, 1, 1, memory_reserve_fraction=1.0)


def test_performance__a_request_waits_half_the_running_iteration_of_the_others():
    # Llama-3.1-8B on H100-SXM fp16 with 3 other sequences at 595 tokens of context decoding (the QPS-2 Triton rows)
    r = replica("Llama-3.1-8B", "H100-SXM")
    weights = (8.03e9 - 128256 * 4096) * 2 / (3350e9 * 0.88)  # 5.091 ms: memory-bound at 3 sequences
    kv = 3 * 595 * (2 * 32 * 8 * 128 * 2) / (3350e9 * 0.88)  # 0.079 ms
    step = weights + kv + 32 * 81e-6  # 7.76 ms; the row's measured ITL is 8 ms
    assert r.iteration_wait_s(3, 595) == pytest.approx(step / 2) and step == pytest.approx(7.763e-3, rel=1e-3)
    assert r.iteration_wait_s(0, 595) == 0.0  # an idle engine admits at once
    assert r.iteration_wait_s(0.5, 595) == pytest.approx(0.5 * r.decode_step_s(1, 595) / 2)  # busy half the time
    pp = replica("Llama-3.1-8B", "H100-SXM", pp=2)  # a new prompt joins a micro-batch: half its cycle through p stages
    assert pp.iteration_wait_s(6, 595) == pytest.approx(pp.tpot_s(6, 595) / 2)


def test_performance__pipeline_tpot_is_p_stage_times_plus_hops_hand_computed():
    # Llama-3.1-8B on H100-SXM, fp16, t = 1, p = 2: each stage holds 16 of the 32 layers.
    r = replica("Llama-3.1-8B", "H100-SXM", "fp16", tp=1, pp=2)
    micro_batch, context = 32, 1100.0
    bandwidth = 3350e9 * 0.88  # B = BW · η_B, bytes/s
    flops = 821.2e12 * 0.69  # F = s_g · F_bf16 · η_F = measured achievable BF16 matmul rate · η_F, FLOP/s
    weights = (8.03e9 - 128256 * 4096) * 2 / 2 / bandwidth  # half the read weights per stage: 2.5457 ms
    lm_head = 128256 * 4096  # layers, LM head and attention over 1100 tokens per token: 1.5586e10 FLOPs
    per_token = 2 * (8.03e9 - 2 * lm_head) + 2 * lm_head + 4 * 32 * 4096 * context
    compute = per_token * micro_batch / 2 / flops  # 0.440 ms, below the weight read: memory-bound
    kv = micro_batch * context * (2 * 32 * 8 * 128 * 2) / 2 / bandwidth  # half the layers' KV: 0.7825 ms
    overhead = 32 * 81e-6 / 2  # τ_L for the stage's 16 layers: 1.296 ms
    stage = max(weights, compute) + kv + overhead  # no all-reduce at t = 1
    expected = 2 * stage + 200e-6  # p stage-times + (p − 1)·τ_pp = 9.4484 ms
    assert expected == pytest.approx(9.4484e-3, rel=1e-4)
    assert r.stage_step_s(micro_batch, context) == pytest.approx(stage)
    assert r.tpot_s(2 * micro_batch, context) == pytest.approx(expected)  # two micro-batches of 32 in flight
    # the same per-micro-batch load on one GPU: PP adds the hop and saves nothing
    pp1 = replica("Llama-3.1-8B", "H100-SXM", "fp16")
    assert r.tpot_s(2 * micro_batch, context) == pytest.approx(pp1.tpot_s(micro_batch, context) + 200e-6)


def test_performance__batch_cap_bounds_one_micro_batch():
    pp1, pp2 = replica("Llama-3.2-3B", "H100-SXM", "int8"), replica("Llama-3.2-3B", "H100-SXM", "int8", pp=2)
    cap = PerformanceConstants().batch_cap
    assert pp1.max_batch(425.0, 28.0) == cap  # KV holds far more than b_cap sequences of 453 tokens
    assert pp2.max_batch(425.0, 28.0) == 2 * cap
    assert pp2.max_batch(1e5, 1e4) >= 2 * pp1.max_batch(1e5, 1e4)  # KV-limited: the KV cache grows ≥ p-fold


def _counterpart_pp1(config) -> Replica:
    return replica_for(default_catalog(), config.model, config.gpu, config.precision, config.tensor_parallel, 1)


@pytest.mark.parametrize(("scenario", "seed"), SCENARIO_CASES, ids=lambda v: str(v))
def test_pipeline_parallel__never_shortens_delay(scenario, seed):
    instance = make_instance(scenario, seed=seed)
    prompt = np.array([q.mean_prompt_tokens for q in instance.query_types])
    output = np.array([q.mean_output_tokens for q in instance.query_types])
    index = {
        (c.model, c.gpu, c.precision, c.tensor_parallel, c.pipeline_parallel): k
        for k, c in enumerate(instance.configurations)
    }
    compared = 0
    for k, config in enumerate(instance.configurations):
        if config.pipeline_parallel == 1:
            continue
        key = (config.model, config.gpu, config.precision, config.tensor_parallel, 1)
        if key in index:
            delay_1, capacity_1 = instance.delay_s[:, index[key]], instance.capacity_per_hour[:, index[key]]
        else:  # dropped from the instance (serves no type within its SLO): compute it if it fits memory
            if config.model not in default_catalog().models:
                continue
            counterpart = _counterpart_pp1(config)
            if not counterpart.fits:
                continue
            delay_1 = counterpart.delay_s(prompt, output, instance.design_utilisation)
            capacity_1 = counterpart.capacity_per_hour(prompt, output)
        both = (instance.capacity_per_hour[:, k] > 0) & (capacity_1 > 0)
        assert np.all(instance.delay_s[both, k] >= delay_1[both]), (config.name, instance.delay_s[:, k], delay_1)
        compared += int(both.any())
    has_pipeline = any(c.pipeline_parallel > 1 for c in instance.configurations)
    assert compared > 0 or not has_pipeline
