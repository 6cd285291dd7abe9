"""AGH's MILP polish: a large-neighbourhood move that re-solves the exact MILP on a few configurations.

:func:`milp_polish` is an ``adaptive.PolishMove``: ``solve_agh(instance, polish=milp_polish)`` makes it once on the
best plan of its searches (``servegym solve`` and scripts/bench_planners.py do; AGH inside the environment does not,
``policies.AGH_IN_ENV`` and ``AGH_REPLANNING``). It lives with the MILP, which may import the heuristics.

The local search changes one or two deployments at a time. Where the optimum differs from its local optimum in
several replicas at once, and every plan in between costs more, no sequence of its moves gets there. The polish
frees every replica count of a *neighbourhood* of configurations at once (all others stay at 0) and solves
MODEL.md §3 on it (``baselines/milp/model.py``, HiGHS), warm-started from the incumbent, which the neighbourhood
always holds:

- the whole working instance when it has at most ``POLISH_MAX_ROUTES`` allowed routes (small instances, where an
  exact root solve is cheap);
- else the active configurations, then their *siblings* (the same model and GPU type: another precision, TP or PP
  degree) and then their *re-models* (another model on the same GPU type, precision, TP and PP degree), nearest
  first, until ``POLISH_MAX_ROUTES`` allowed routes.

The solve is bounded by work, not time: the root node only (``POLISH_NODES``), without restarts
(``SolveSettings.restarts``), so it is deterministic (AGH's own ``time_limit_s``, when given, also bounds it). It is
skipped on working instances with more than ``POLISH_MAX_WORKING_ROUTES`` allowed routes. Its plan is re-routed by
the routing LP and accepted only if ``evaluate_plan`` passes it and it is cheaper.

On the random (20, 20, 24) instance of seed 0 AGH stopped 8.1 % above the optimum, which regroups two TP-1 H100
replicas of Qwen2.5-32B~v15 into one TP-2 replica, merges two TP-1 replicas of Qwen2.5-7B models into one TP-2
replica and re-models an A100 replica: three changes at once, none of which pays alone. The polish finds it, and
on the random (10, 10, 10) instance of seed 0 (10.8 % above) the optimum's three replicas, none of which AGH's plan
has (docs/heuristics.md, "MILP polish").
"""

from __future__ import annotations

import time

import numpy as np

from servegym.baselines.heuristics.local_search import LocalSearch, SearchPoint, improvement_margin
from servegym.baselines.milp.backends import SolveSettings, run
from servegym.baselines.milp.model import build_highs_model
from servegym.envs.evaluation import Plan
from servegym.envs.instance import Instance

POLISH_MAX_ROUTES = 3000
"""Most allowed routes (type, configuration pairs, the MILP's x columns) of the polish's neighbourhood. The root
solve took 0.3 s at 1,451 routes ((20, 20, 24) seed 0) and 0.9 s at 2,650 ((10, 10, 10) seed 0, the whole working
instance) on the 2-core benchmark machine at load about 1.5 (docs/heuristics.md, "MILP polish")."""
POLISH_MAX_WORKING_ROUTES = 100_000
"""The polish is skipped on working instances with more routes than this: the random (40, 40, 40) instances (about
170,000), where even a 1,000-route neighbourhood's root solve takes 0.25-0.37 s and would take AGH beyond its 2 s
there (the (30, 30, 30) ones have 56,000-78,000)."""
POLISH_NODES = 1
"""Branch-and-bound nodes of the polish's MILP: the root, where HiGHS's RINS/RENS sub-MIP heuristics find the plans
that pay; the nodes after it mostly prove the bound."""


def neighbourhood(instance: Instance, replicas: np.ndarray, max_routes: int = POLISH_MAX_ROUTES) -> np.ndarray:
    """Sorted indices of the configurations the polish frees around ``replicas`` (C,) (module docstring).

    Args:
        instance: The (working) instance.
        replicas: (C,) replica counts of the incumbent.
        max_routes: Most allowed routes of the configurations returned (the active ones are always returned).
    """
    routes = instance.route_allowed.sum(axis=0)  # (C,) allowed routes per configuration
    if routes.sum() <= max_routes:
        return np.arange(instance.num_configurations)
    configurations = instance.configurations
    tensor_parallel = np.array([c.tensor_parallel for c in configurations])
    pipeline_parallel = np.array([c.pipeline_parallel for c in configurations])
    precision = np.unique([c.precision for c in configurations], return_inverse=True)[1]
    model, gpu = instance.config_model, instance.config_gpu
    active = np.flatnonzero(replicas > 0)
    active = active[np.argsort(-instance.replica_price_per_hour[active] * replicas[active], kind="stable")]
    siblings = [(model == model[a]) & (gpu == gpu[a]) for a in active.tolist()]
    remodels = [
        (gpu == gpu[a])
        & (model != model[a])
        & (precision == precision[a])
        & (tensor_parallel == tensor_parallel[a])
        & (pipeline_parallel == pipeline_parallel[a])
        for a in active.tolist()
    ]
    order = dict.fromkeys(active.tolist())  # insertion-ordered, without repeats: nearest first
    for members in siblings + remodels:  # every deployment's siblings (dearest first), then its re-models
        order |= dict.fromkeys(np.flatnonzero(members).tolist())
    chosen = np.array(list(order), dtype=np.int64)
    within = np.cumsum(routes[chosen]) <= max_routes
    within[: len(active)] = True
    return np.sort(chosen[within])


def milp_polish(search: LocalSearch, point: SearchPoint, max_routes: int = POLISH_MAX_ROUTES) -> SearchPoint | None:
    """Solve the MILP on the :func:`neighbourhood` of ``point`` (root node only, warm-started from it).

    Args:
        search: The local search whose instance and router judge the plan (``LocalSearch.evaluate``).
        point: The incumbent.
        max_routes: Most allowed routes of the neighbourhood (:func:`neighbourhood`).

    Returns:
        The MILP's plan re-routed by the LP, if ``evaluate_plan`` passes it and it costs less than ``point``;
        else None.
    """
    instance = search.instance
    if instance.route_allowed.sum() > POLISH_MAX_WORKING_ROUTES:
        return None
    kept = neighbourhood(instance, point.replicas, max_routes)
    sub = instance.restrict(kept)
    model = build_highs_model(sub, drop_idle_routes=True)
    incumbent = Plan(
        replicas=point.replicas[kept], routing=point.plan.routing[:, kept], unserved=np.array(point.plan.unserved)
    )
    hint = model.plan_values(incumbent)
    time_left_s = None if search.deadline is None else search.deadline - time.perf_counter()
    if time_left_s is not None and time_left_s <= 0.0:
        return None
    settings = SolveSettings(time_limit_s=time_left_s, node_limit=POLISH_NODES, restarts=False)
    outcome = run(model, "HIGHS", settings, (list(range(len(hint))), hint.tolist()))
    if outcome.values is None:
        return None
    replicas = np.zeros(instance.num_configurations, dtype=np.int64)
    replicas[kept] = model.solution_plan(outcome.values).replicas
    if np.array_equal(replicas, point.replicas):
        return None
    target = point.cost - improvement_margin(point.cost)
    better = search.evaluate(replicas, below_cost=target)
    if better is None or better.cost >= target:
        return None
    search.accepted_moves += 1
    return better
