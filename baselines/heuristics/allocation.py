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

import math
from dataclasses import dataclass

import numpy as np

from servegym.baselines.heuristics.fleet import LIMIT_NAMES, Fleet
from servegym.baselines.heuristics.greedy_context import GreedyContext
from servegym.envs.limits import exceeds

NEGLIGIBLE_SHARE = 1e-9
"""Residual demand below this share of λ_i counts as served (floating-point dust)."""

_NO_FLAGS = np.zeros(0, dtype=bool)
"""Read-only empty bool array (the upgrade fields of options without upgrades)."""
_NO_FLAGS.setflags(write=False)
_NO_VALUES = np.zeros(0)
"""Read-only empty float array (the upgrade fields of options without upgrades)."""
_NO_VALUES.setflags(write=False)


@dataclass(slots=True)
class _Options:
    """The options of one query type at one replica state, ordered spare, upgrade, new (argmin ties go to the
    earlier kind); everything here but the room holds until the fleet's next replica change.

    Attributes:
        spare: (S,) configurations of the spare options (the first S options).
        configs: (K,) configuration each option puts demand on (the upgrade target for upgrades).
        sources: (U,) the configuration each upgrade option switches a replica from.
        cost: (K,) $/hour each option adds.
        excess: (K,) e − ε of each option's configuration.
        spenders: (K,) bool excess > 0 (the options that spend error slack).
        penalty: (K,) delay penalty, $ per request.
        spare_free: (S,) ρ_max·n of each spare option's configuration, replica-loads.
        spare_capacity: (S,) μ of the type on each spare option's configuration, requests/hour per replica-load.
        upgrade_free: (U,) ρ_max·(n + 1) of each upgrade target, replica-loads.
        upgrade_blocked: (U,) bool the upgrade breaks a shared limit.
        room: (K,) buffer of the room in requests/hour by capacity and limits; the new options' part is final,
            :meth:`_TypeServer._fill_room` fills the rest for the current loads.
        error_room: (K,) buffer of the room by the error budget (inf where the option builds no excess).
    """

    spare: np.ndarray
    configs: np.ndarray
    sources: np.ndarray
    cost: np.ndarray
    excess: np.ndarray
    spenders: np.ndarray
    penalty: np.ndarray
    spare_free: np.ndarray
    spare_capacity: np.ndarray
    upgrade_free: np.ndarray
    upgrade_blocked: np.ndarray
    room: np.ndarray
    error_room: np.ndarray


class _TypeServer:
    """The options of one query type (see the module docstring): rebuilt after every replica change, their room
    and scores recomputed after every applied move."""

    def __init__(self, context: GreedyContext, fleet: Fleet, query_type: int, excluded: np.ndarray) -> None:
        instance = context.instance
        self.context, self.fleet, self.query_type = context, fleet, query_type
        self.rank_by_coverage = context.mechanisms.coverage_ranking
        self.capacity = instance.capacity_per_hour[query_type]
        self.excess = context.error_excess[query_type]
        self.penalty = context.delay_penalty_per_request[query_type]
        table = context.candidate_tables[query_type]
        if excluded.any():
            self.spare_allowed = context.usable[query_type] & ~excluded
            targets = context.upgrade_target
            self.upgrade_allowed = (targets >= 0) & ~excluded & self.spare_allowed[targets]
            keep = ~excluded[table.openings.configs]
            self.table = table if keep.all() else table.subset(keep)
        else:
            self.spare_allowed = context.usable[query_type]
            self.upgrade_allowed = context.upgradable[query_type]
            self.table = table
        self.candidates = self.table.openings.configs

    def _options(self) -> _Options:
        """The options at the fleet's current replicas (room filled for the new options only)."""
        fleet, context, table = self.fleet, self.context, self.table
        instance = context.instance
        rho = instance.design_utilisation
        active = fleet.replicas > 0
        spare = (active & self.spare_allowed).nonzero()[0]
        sources = (active & self.upgrade_allowed).nonzero()[0]
        new_cost, new_blocked = fleet.screen_openings(table.openings)
        if len(sources):
            targets = context.upgrade_target[sources]
            price = instance.replica_price_per_hour
            upgrade_cost = price[targets] - price[sources]
            extra_gpus = instance.gpus_per_replica[targets] - instance.gpus_per_replica[sources]
            upgrade_blocked = fleet.blocked(targets, upgrade_cost, extra_gpus)
            upgrade_free = rho * (fleet.replicas[targets] + 1)
            cost = np.concatenate([np.zeros(len(spare)), upgrade_cost, new_cost])
            configs = np.concatenate([spare, targets, table.openings.configs])
        else:
            upgrade_blocked, upgrade_free = _NO_FLAGS, _NO_VALUES
            cost = np.concatenate([np.zeros(len(spare)), new_cost])
            configs = np.concatenate([spare, table.openings.configs])
        excess = self.excess[configs]
        return _Options(
            spare=spare,
            configs=configs,
            sources=sources,
            cost=cost,
            excess=excess,
            spenders=excess > 0.0,
            penalty=self.penalty[configs],
            spare_free=rho * fleet.replicas[spare],
            spare_capacity=self.capacity[spare],
            upgrade_free=upgrade_free,
            upgrade_blocked=upgrade_blocked,
            room=np.concatenate(
                [np.zeros(len(spare) + len(sources)), np.where(new_blocked, 0.0, table.room_per_replica)]
            ),
            error_room=np.full(len(configs), np.inf),
        )

    def _fill_room(self, options: _Options) -> np.ndarray:
        """``options.room`` with the spare and upgrade options' room at the fleet's current loads and routing."""
        fleet, room, spares = self.fleet, options.room, len(options.spare)
        room[:spares] = (options.spare_free - fleet.load[options.spare]) * options.spare_capacity
        sources = options.sources
        if len(sources):
            targets = options.configs[spares : spares + len(sources)]
            keeps_routes = ~((fleet.routing[:, sources] > 0.0) & ~self.context.usable[:, targets]).any(axis=0)
            allowed = keeps_routes & ~options.upgrade_blocked
            free_load = options.upgrade_free - fleet.load[targets] - fleet.moved_load(sources, targets)
            room[spares : spares + len(sources)] = np.where(allowed, free_load * self.capacity[targets], 0.0)
        return room

    def _score(self, options: _Options, cover: np.ndarray, dust: float) -> np.ndarray:
        """Rank score of options serving ``cover`` requests/hour: $ per request (M2) or $/hour, inf for those
        serving no more than ``dust`` requests/hour."""
        score = options.cost / np.maximum(cover, dust) + options.penalty if self.rank_by_coverage else options.cost
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
        drop_score = float(instance.unmet_penalty_per_request[query_type])
        dust = NEGLIGIBLE_SHARE * max(demand, 1.0)
        options: _Options | None = None  # valid until the next replica change
        while residual > dust:
            if options is None:
                options = self._options()
            room = self._fill_room(options)
            slack = float(fleet.error_slack[query_type])
            error_room = np.divide(max(slack, 0.0), options.excess, out=options.error_room, where=options.spenders)
            cover = np.minimum(np.minimum(room, error_room), residual)
            score = self._score(options, cover, dust)
            best = int(score.argmin()) if len(score) else -1  # ties go to the earlier kind: spare, upgrade, new
            drop = min(residual, drop_limit - float(fleet.dropped[query_type]))
            if self.rank_by_coverage and drop > dust and (best < 0 or drop_score < score[best]):
                fleet.dropped[query_type] += drop
                residual -= drop
                continue
            if best < 0 or not math.isfinite(score[best]):
                break
            amount = float(cover[best])
            if self.rank_by_coverage and options.excess[best] < 0.0:
                amount = self._builder_share(best, options, room, score, residual, slack, dust)
            config = int(options.configs[best])
            upgrade = best - len(options.spare)
            if upgrade < 0:
                fleet.assign(query_type, config, amount)
            else:
                if upgrade < len(options.sources):
                    self._upgrade(int(options.sources[upgrade]), config, amount)
                else:
                    fleet.add_replica(config)
                    fleet.assign(query_type, config, amount)
                options = None
            residual -= amount
        unserved = (residual if residual > dust else 0.0) + float(fleet.dropped[query_type])  # dust counts as served
        if not exceeds(unserved, drop_limit):
            return ""
        name = instance.query_types[query_type].name
        return f"{name}: {unserved:.6g} requests/hour unserved > unmet cap {drop_limit:.6g}; {self._reason()}"

    def _builder_share(
        self,
        best: int,
        options: _Options,
        room: np.ndarray,
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
        excess, spenders = options.excess, options.spenders
        slack_limit = np.divide(
            slack - excess[best] * residual, excess - excess[best], out=np.zeros(len(excess)), where=spenders
        )
        spent = np.minimum(np.minimum(room, residual), slack_limit)
        spender_score = np.where(spenders, self._score(options, spent, dust), np.inf)
        spender = int(spender_score.argmin())
        if not spender_score[spender] < score[best]:
            return float(min(room[best], residual))
        return float(min(room[best], residual, max(residual - spent[spender], dust)))

    def _upgrade(self, source: int, target: int, amount: float) -> None:
        """Switch one replica of ``source`` to ``target`` (twice its TP degree) and route ``amount`` requests/hour
        of the type to ``target``."""
        fleet = self.fleet
        fleet.add_replica(target)
        fleet.move_share(source, target, 1.0 / fleet.replicas[source])
        fleet.remove_replica(source)
        fleet.assign(self.query_type, target, amount)

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
