"""The roofline performance model: pinned against published measurements, and its structural properties."""

import numpy as np
import pytest

from servegym.envs.calibration import EXCLUDED, TOLERANCE_FACTOR, compare_measurements
from servegym.envs.catalog import default_catalog
from servegym.envs.performance import PerformanceConstants, Replica

COMPARISONS = [c for c in compare_measurements() if c.id not in EXCLUDED]


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
