"""A tiny hand-checkable instance for tests and documentation (Jumanji's ``ToyGenerator`` idea).

Two query types and three configurations with round numbers, so optimal plans can be worked out by hand:

=========  =====  =====  ==========================  =====================================
config     GPUs   $/h    μ (req/h) for A, B          D (s) for A, B;  e for A, B
=========  =====  =====  ==========================  =====================================
small      1      1.0    100, 100                    2, 2;  0.15, 0.15
big        2      3.0    250, 250                    1, 1;  0.05, 0.05
slow       1      1.0    100, 100                    2, 20 (B not allowed: Δ_B = 10 s); 0.05, 0.05
=========  =====  =====  ==========================  =====================================

Query types: A with λ = 160 req/h, ε = 0.10; B with λ = 40 req/h, ε = 0.20. Δ = 10 s, ζ = 0.1, ρ_max = 0.8,
φ = $1/request, ρ = $0.01 per request-second, budget $10/hour, 2 GPU types (``cheap`` for small and slow,
``fast`` for big) with 4 GPUs each.

Worked by hand (all per hour): 200 requests need 200/0.8 = 250 replica-capacity, so rental is at least $3 (three
small/slow replicas or one big one). One big replica carries everything at D = 1 s: rental $3 + delay penalty
200·1·0.01 = $2, total **$5/hour, n = (0, 1, 0)**, the unique optimum (three cheap replicas also rent for $3 but
pay 200·2·0.01 = $4 of delay penalty).

Both instances here start replicas instantly: ``startup_s`` is explicitly 0 s for every configuration (MODEL.md §6
start-up times would only blur the hand-checked numbers; catalog instances get S_c from ``envs/data/startup.csv``).
"""

from __future__ import annotations

import numpy as np

from servegym.envs.instance import Configuration, Instance, QueryType


def toy_instance() -> Instance:
    """The instance in the module docstring."""
    query_types = (
        QueryType("A", "general", 160.0, 100.0, 10.0, 10.0, 0.10, 0.1, 1.0, 0.01),
        QueryType("B", "code", 40.0, 100.0, 10.0, 10.0, 0.20, 0.1, 1.0, 0.01),
    )
    configurations = (
        Configuration("m-small", "cheap", "fp16", 1, 1),
        Configuration("m-big", "fast", "fp16", 2, 1),
        Configuration("m-small", "cheap", "int4", 1, 1),
    )
    return Instance(
        name="toy",
        query_types=query_types,
        models=("m-small", "m-big"),
        gpus=("cheap", "fast"),
        configurations=configurations,
        config_model=np.array([0, 1, 0]),
        config_gpu=np.array([0, 1, 0]),
        gpus_per_replica=np.array([1, 2, 1]),
        gpu_price_per_hour=np.array([1.0, 1.5]),
        gpu_availability=np.array([4, 4]),
        capacity_per_hour=np.array([[100.0, 250.0, 100.0], [100.0, 250.0, 100.0]]),
        delay_s=np.array([[2.0, 1.0, 2.0], [2.0, 1.0, 20.0]]),
        error_rate=np.array([[0.15, 0.05, 0.05], [0.15, 0.05, 0.05]]),
        demand_per_hour=np.array([160.0, 40.0]),
        model_storage_gb=np.array([2.0, 16.0]),
        storage_price_per_gb_hour=0.0,
        storage_capacity_gb=100.0,
        budget_per_hour=10.0,
        design_utilisation=0.8,
        startup_s=np.zeros(3),  # S_c = 0 s: replicas are ready at once (module docstring)
        description="hand-checkable toy instance (envs/toy.py)",
    )


def tiny_random_instance(seed: int, num_types: int = 2, num_configs: int = 4, max_gpus: int = 4) -> Instance:
    """A small random instance built from arrays (no catalog), for brute-force checks of the planners.

    Every configuration uses 1 or 2 GPUs of one of two GPU types with ``max_gpus`` GPUs each, so each replica
    count is at most ``max_gpus`` and the plans can be enumerated. The budget is drawn between the cost of the
    cheapest replica and that of renting every GPU, so it binds in some seeds and not in others.
    """
    rng = np.random.default_rng(seed)
    query_types = tuple(
        QueryType(
            f"t{i}",
            "general",
            float(rng.uniform(50.0, 250.0)),
            100.0,
            10.0,
            10.0,
            float(rng.uniform(0.1, 0.2)),
            float(rng.choice([0.0, 0.1])),
            float(rng.uniform(0.5, 2.0)),
            0.01,
        )
        for i in range(num_types)
    )
    num_models = 2
    config_model = rng.integers(num_models, size=num_configs)
    config_gpu = rng.integers(2, size=num_configs)
    gpus_per_replica = rng.integers(1, 3, size=num_configs)
    configurations = tuple(
        Configuration(f"m{config_model[c]}", f"g{config_gpu[c]}", "fp16", int(gpus_per_replica[c]), 1)
        for c in range(num_configs)
    )
    capacity = rng.uniform(60.0, 300.0, size=(num_types, num_configs)) * gpus_per_replica
    capacity[rng.random((num_types, num_configs)) < 0.15] = 0.0
    prices = rng.uniform(0.5, 2.0, size=2)
    cheapest = float((gpus_per_replica * prices[config_gpu]).min())
    return Instance(
        name=f"tiny-{seed}",
        query_types=query_types,
        models=("m0", "m1"),
        gpus=("g0", "g1"),
        configurations=configurations,
        config_model=config_model,
        config_gpu=config_gpu,
        gpus_per_replica=gpus_per_replica,
        gpu_price_per_hour=prices,
        gpu_availability=np.array([max_gpus, max_gpus]),
        capacity_per_hour=capacity,
        delay_s=rng.uniform(1.0, 12.0, size=(num_types, num_configs)),
        error_rate=rng.uniform(0.02, 0.25, size=(num_types, num_configs)),
        demand_per_hour=np.array([q.arrival_rate_per_hour for q in query_types]),
        model_storage_gb=rng.uniform(10.0, 60.0, size=num_models),
        storage_price_per_gb_hour=0.001,
        storage_capacity_gb=float(rng.choice([70.0, 200.0])),
        budget_per_hour=float(rng.uniform(2 * cheapest, 2 * max_gpus * prices.max())),
        design_utilisation=0.85,
        startup_s=np.zeros(num_configs),  # S_c = 0 s: replicas are ready at once (module docstring)
        description=f"tiny random instance, seed {seed}",
    )
