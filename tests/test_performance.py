"""The roofline performance model: pinned against published measurements, and its structural properties."""

import numpy as np
import pytest

from servegym.envs.calibration import EXCLUDED, TOLERANCE_FACTOR, compare_measurements
from servegym.envs.catalog import default_catalog
from servegym.envs.performance import PerformanceConstants, Replica
from servegym.envs.scenarios import SCENARIOS, make_instance

COMPARISONS = [c for c in compare_measurements() if c.id not in EXCLUDED]
SCENARIO_CASES = [(name, seed) for name in SCENARIOS for seed in ((0, 1) if name == "random" else (0,))]


def replica(model: str, gpu: str, precision: str = "fp16", tp: int = 1, pp: int = 1) -> Replica:
    catalog = default_catalog()
    return Replica(catalog.models[model], catalog.gpus[gpu], precision, catalog.bytes_per_param[precision], tp, pp)


def test_performance__at_least_five_measurements_are_pinned():
    assert len(COMPARISONS) >= 5
    assert {c.metric for c in COMPARISONS} >= {"ttft_ms", "tpot_ms", "output_throughput_tok_s"}


@pytest.mark.parametrize("comparison", COMPARISONS, ids=lambda c: c.id)
def test_performance__prediction_within_stated_tolerance_of_measurement(comparison):
    assert 1 / TOLERANCE_FACTOR <= comparison.ratio <= TOLERANCE_FACTOR, comparison


def test_performance__kv_capacity_follows_the_memory_formula():
    r = replica("Llama-3.1-8B", "H100-SXM")
    kv_bytes_per_token = 2 * 32 * 8 * 128 * 2
    expected = (80e9 * 0.9 - 8.03e9 * 2) / kv_bytes_per_token
    assert r.model.kv_bytes_per_token == kv_bytes_per_token
    assert r.kv_capacity_tokens == pytest.approx(expected)


def test_performance__batch_one_decode_is_the_weight_read_at_achieved_bandwidth():
    r = replica("Llama-3.1-70B", "H100-SXM", "fp16", tp=4)
    weights_s = 70.6e9 * 2 / (4 * 3350e9 * PerformanceConstants().bandwidth_efficiency)
    assert r.decode_step_s(1, 0) == pytest.approx(weights_s + r._allreduce_s(1))


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


def test_performance__pipeline_tpot_is_p_stage_times_plus_hops_hand_computed():
    # Llama-3.1-8B on H100-SXM, fp16, t = 1, p = 2: each stage holds 16 of the 32 layers.
    r = replica("Llama-3.1-8B", "H100-SXM", "fp16", tp=1, pp=2)
    micro_batch, context = 32, 1100.0
    bandwidth = 3350e9 * 0.70  # B = BW · η_B, bytes/s
    flops = 989.4e12 * 0.55  # F = F_bf16 · η_F, FLOP/s
    weights = 8.03e9 * 2 / 2 / bandwidth  # half the FP16 weights per stage: 3.4243 ms
    compute = 2 * 8.03e9 * micro_batch / 2 / flops  # 0.472 ms, below the weight read: memory-bound
    kv = micro_batch * context * (2 * 32 * 8 * 128 * 2) / 2 / bandwidth  # half the layers' KV: 0.9837 ms
    stage = max(weights, compute) + kv  # no all-reduce at t = 1
    expected = 2 * stage + 200e-6  # p stage-times + (p − 1)·τ_pp = 9.0161 ms
    assert expected == pytest.approx(9.0161e-3, rel=1e-4)
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
    catalog = default_catalog()
    return Replica(
        catalog.models[config.model],
        catalog.gpus[config.gpu],
        config.precision,
        catalog.bytes_per_param[config.precision],
        config.tensor_parallel,
        1,
    )


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
