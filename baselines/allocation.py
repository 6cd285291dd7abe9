"""GH phase 2 for one query type: serve its residual demand by repeatedly applying the best-ranked option.

Options, all checked against capacity at ρ_max, the type's error budget and the budget, availability, storage
and replica limits:

- ``spare``: capacity left on an active replica (adds no rental);
- ``upgrade``: switch one replica of an active configuration to twice its TP degree (M3);
- ``new``: a new replica of one of the type's candidate configurations (M1);
- ``drop``: leave demand unserved up to the unmet cap (with M2 only, priced at the unmet penalty φ_i).

With M2 an option's score is the $/hour it adds per request/hour it can serve, plus its delay penalty per
request; without M2 it is the $/hour it adds. The error budget of a type is the slack Σ_c (ε − e_c)·x_c ≥ 0:
routes with e > ε can only spend slack that routes with e < ε have built. With M2, when the best option builds
slack but a cheaper option spends it, the builder takes only the share that lets the cheaper one serve the rest
(the blend that keeps the average error at ε), so accurate and cheap models are mixed instead of the first
filling up.
"""

from __future__ import annotations

import numpy as np

from servegym.baselines.fleet import LIMIT_NAMES, Fleet
from servegym.baselines.greedy_context import GreedyContext
from servegym.envs.limits import exceeds

NEGLIGIBLE_SHARE = 1e-9
"""Residual demand below this share of λ_i counts as served (floating-point dust)."""

_SPARE, _UPGRADE, _NEW = 0, 1, 2


def _error_room(slack: float, excess: np.ndarray) -> np.ndarray:
    """Requests/hour each route can take before the type's average error exceeds ε (slack / (e − ε) when e > ε)."""
    return np.divide(max(slack, 0.0), excess, out=np.full(len(excess), np.inf), where=excess > 0.0)


class _TypeServer:
    """The options of one query type, recomputed after every applied move (see the module docstring)."""

    def __init__(self, context: GreedyContext, fleet: Fleet, query_type: int, excluded: np.ndarray) -> None:
        instance = context.instance
        self.context, self.fleet, self.query_type = context, fleet, query_type
        self.rank_by_coverage = context.mechanisms.coverage_ranking
        self.capacity = instance.capacity_per_hour[query_type]
        self.excess = instance.error_rate[query_type] - instance.error_slo[query_type]
        self.penalty = context.delay_penalty_per_request[query_type]
        self.usable = context.usable[query_type]
        self.excluded = excluded
        candidates = context.candidates[query_type]
        self.candidates = candidates[~excluded[candidates]]

    def _options(self) -> tuple[np.ndarray, ...]:
        """(kind, config, source, added $/hour, room in requests/hour by capacity and limits) of every option."""
        fleet, context = self.fleet, self.context
        instance = context.instance
        rho = instance.design_utilisation
        active = np.flatnonzero(fleet.replicas)
        active = active[~self.excluded[active]]
        spare = active[self.usable[active]]
        spare_room = (rho * fleet.replicas[spare] - fleet.load[spare]) * self.capacity[spare]

        sources = active[context.upgrade_target[active] >= 0] if context.mechanisms.tp_upgrade else active[:0]
        sources = sources[
            self.usable[context.upgrade_target[sources]] & ~self.excluded[context.upgrade_target[sources]]
        ]
        targets = context.upgrade_target[sources]
        upgrade_cost = instance.replica_price_per_hour[targets] - instance.replica_price_per_hour[sources]
        upgrade_room = np.zeros(len(sources))
        if len(sources):
            extra_gpus = instance.gpus_per_replica[targets] - instance.gpus_per_replica[sources]
            keeps_routes = ~((fleet.routing[:, sources] > 0.0) & ~context.usable[:, targets]).any(axis=0)
            allowed = keeps_routes & ~fleet.blocked(targets, upgrade_cost, extra_gpus)
            free_load = rho * (fleet.replicas[targets] + 1) - fleet.load[targets] - fleet.moved_load(sources, targets)
            upgrade_room = np.where(allowed, free_load * self.capacity[targets], 0.0)

        new = self.candidates
        new_cost = fleet.opening_cost_per_hour(new)
        new_room = np.where(fleet.blocked(new, new_cost, instance.gpus_per_replica[new]), 0.0, rho * self.capacity[new])

        return (
            np.concatenate([np.full(len(spare), _SPARE), np.full(len(targets), _UPGRADE), np.full(len(new), _NEW)]),
            np.concatenate([spare, targets, new]),
            np.concatenate([np.full(len(spare), -1), sources, np.full(len(new), -1)]),
            np.concatenate([np.zeros(len(spare)), upgrade_cost, new_cost]),
            np.concatenate([spare_room, upgrade_room, new_room]),
        )

    def _score(self, configs: np.ndarray, cost: np.ndarray, cover: np.ndarray, dust: float) -> np.ndarray:
        """Rank score of options serving ``cover`` requests/hour (inf for those serving no more than ``dust``)."""
        score = cost / np.maximum(cover, dust) + self.penalty[configs] if self.rank_by_coverage else cost
        return np.where(cover > dust, score, np.inf)

    def serve(self, residual: float) -> str:
        """Apply the best-ranked option until ``residual`` requests/hour are served or no option is left.

        Returns:
            ``""`` when the unserved demand is within the unmet cap (``limits.exceeds``), else a line naming the
            blocking limits.
        """
        fleet, query_type = self.fleet, self.query_type
        instance = self.context.instance
        demand = float(instance.demand_per_hour[query_type])
        drop_limit = float(instance.max_unmet_fraction[query_type]) * demand
        dust = NEGLIGIBLE_SHARE * max(demand, 1.0)
        while residual > dust:
            kinds, configs, sources, cost, room = self._options()
            slack = float(fleet.error_slack[query_type])
            excess = self.excess[configs]
            cover = np.minimum(np.minimum(room, _error_room(slack, excess)), residual)
            score = self._score(configs, cost, cover, dust)
            best = int(np.argmin(score)) if len(score) else -1  # ties go to the earlier kind: spare, upgrade, new
            drop = min(residual, drop_limit - float(fleet.dropped[query_type]))
            drop_score = float(instance.unmet_penalty_per_request[query_type])
            if self.rank_by_coverage and drop > dust and (best < 0 or drop_score < score[best]):
                fleet.dropped[query_type] += drop
                residual -= drop
                continue
            if best < 0 or not np.isfinite(score[best]):
                break
            amount = float(cover[best])
            if self.rank_by_coverage and excess[best] < 0.0:
                amount = self._builder_share(best, kinds, configs, cost, room, excess, score, residual, slack, dust)
            self._apply(int(kinds[best]), int(configs[best]), int(sources[best]), amount)
            residual -= amount
        unserved = (residual if residual > dust else 0.0) + float(fleet.dropped[query_type])  # dust counts as served
        if not exceeds(unserved, drop_limit):
            return ""
        name = instance.query_types[query_type].name
        return f"{name}: {unserved:.6g} requests/hour unserved > unmet cap {drop_limit:.6g}; {self._reason()}"

    def _builder_share(
        self,
        best: int,
        kinds: np.ndarray,
        configs: np.ndarray,
        cost: np.ndarray,
        room: np.ndarray,
        excess: np.ndarray,
        score: np.ndarray,
        residual: float,
        slack: float,
        dust: float,
    ) -> float:
        """How much the error-slack builder ``best`` serves when a cheaper slack spender can take the rest.

        Serving x_h on a spender h (e_h > ε) and residual − x_h on the builder b keeps the slack ≥ 0 iff
        x_h ≤ (slack + (ε − e_b)·residual)/(e_h − e_b). The spender is the option with the best score at that x_h;
        after the builder's share, its error room is exactly x_h, so it is the next option applied.
        """
        spenders = excess > 0.0
        slack_limit = np.divide(
            slack - excess[best] * residual, excess - excess[best], out=np.zeros(len(excess)), where=spenders
        )
        spent = np.minimum(np.minimum(room, residual), slack_limit)
        spender_score = np.where(spenders, self._score(configs, cost, spent, dust), np.inf)
        spender = int(np.argmin(spender_score))
        if not spender_score[spender] < score[best]:
            return float(min(room[best], residual))
        return float(min(room[best], residual, max(residual - spent[spender], dust)))

    def _apply(self, kind: int, config: int, source: int, amount: float) -> None:
        fleet = self.fleet
        if kind == _UPGRADE:
            fleet.add_replica(config)
            fleet.move_share(source, config, 1.0 / fleet.replicas[source])
            fleet.remove_replica(source)
        elif kind == _NEW:
            fleet.add_replica(config)
        fleet.assign(self.query_type, config, amount)

    def _reason(self) -> str:
        """Why the type is left short: the limits that block its new replicas now, or its SLOs."""
        fleet = self.fleet
        configs = self.candidates
        if len(configs) == 0:
            return "no route meets its delay and error SLOs"
        instance = self.context.instance
        limits = fleet.blocking_limits(
            configs, fleet.opening_cost_per_hour(configs), instance.gpus_per_replica[configs]
        )
        names = [name for name, hit in zip(LIMIT_NAMES, limits.any(axis=1), strict=True) if hit]
        if names:
            return "new replicas blocked by " + ", ".join(names)
        return "its error SLO leaves no room on the routes left"


def serve_type(context: GreedyContext, fleet: Fleet, query_type: int, excluded: np.ndarray) -> str:
    """Serve the residual demand of ``query_type`` on ``fleet`` (updated in place), not using ``excluded`` (C,).

    Returns:
        ``""`` when its unserved demand is within the unmet cap, else a line naming the blocking limits.
    """
    demand = float(context.instance.demand_per_hour[query_type])
    residual = demand - float(fleet.routing[query_type].sum()) - float(fleet.dropped[query_type])
    if residual <= NEGLIGIBLE_SHARE * max(demand, 1.0):
        return ""
    return _TypeServer(context, fleet, query_type, excluded).serve(residual)
