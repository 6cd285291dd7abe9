"""Shipped oracle reference points: the 100 point of the normalised score, the same on every machine.

The perfect-foresight oracle (``servegym.baselines.milp.oracle``) is solved once per protocol test episode
(``servegym.envs.protocol.PROTOCOL``) by ``scripts/solve_oracle_references.py`` under a deterministic stopping rule,
:data:`REFERENCE_RULE`: a proven relative gap, backed by a branch-and-bound node limit, single-threaded HiGHS with
seed 0, never a wall-clock limit. Each episode's record, shipped in ``agents/data/oracle_references.json``, holds
the oracle's schedule (replicas per period of every configuration it rents), its cost as the environment charges
it (``oracle_cost``: the schedule played in the env, what scoring uses), the MILP's objective, proven lower bound
and gap, the solve's seconds (for information: the rule, not the clock, decides where it stops) and an
:func:`episode_fingerprint` of every input the oracle reads (instance, realised demand and multipliers, start-up
shares, limits), so that a record is used only for the episode it was solved on.

``servegym score`` replays the shipped schedule (:class:`ReferenceOraclePolicy`) and checks that the replay costs
``oracle_cost``; an episode without a record is solved fresh under the same rule, with a notice;
``--recompute-oracle`` solves every episode fresh and checks the fresh cost against the record
(:func:`check_fresh`).

File format (JSON, :data:`REFERENCES_FORMAT`)::

    {"format": "servegym-oracle-references/2",
     "servegym_version": "0.1.0", "provenance": {"date": …, "commit": …, "machine": {…}},
     "polish_provenance": {"date": …, "commit": …, "machine": {…}},
     "solver": {"name": "highs", "version": "1.x.y", "threads": 1, "seed": 0},
     "stopping_rule": {"relative_gap": 0.005, "node_limit": 300, "polish_sweeps": 100, "time_limit_s": null},
     "episodes": [{"env_id": …, "env_settings": "{}", "day": "2024-05-16-thu" | null, "seed": 0,
                   "fingerprint": "<sha256>", "oracle_cost": $, "milp_schedule_cost": $, "polish_moves": k,
                   "milp_objective": $, "bound": $, "gap": …,
                   "status": "optimal" | "feasible", "is_lower_bound": true, "solve_s": s,
                   "schedule": {"configurations": [name, …], "replicas": [[n per configuration] per period],
                                "milp_replicas": [[n per configuration] per period]}}],
     "missing": [{"env_id": …, "day": … | null, "seed": …}]}

``missing`` lists the protocol test episodes not solved yet; they fall back to a fresh solve. ``replicas`` is the
schedule scoring plays: the MILP's schedule ``milp_replicas`` polished in the environment
(``servegym.baselines.milp.schedule_polish``, ``polish_moves`` moves); ``milp_schedule_cost`` is what the environment
charges for the MILP's schedule. Format 2 (2026-12-04) added the polish; format 1 files (MILP schedule only) are
refused with the format named.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from servegym.baselines.milp.oracle import OracleResult, episode_factors, solve_oracle
from servegym.baselines.milp.schedule_polish import POLISH_SWEEPS, polish_schedule
from servegym.baselines.runner.episodes import run_episode
from servegym.envs.export import instance_to_dict
from servegym.envs.provisioning import ProvisioningEnv
from servegym.errors import ServegymError

REFERENCES_FORMAT = "servegym-oracle-references/2"
"""``format`` of the shipped references file."""
REFERENCES_FILE = "oracle_references.json"
"""File name of the shipped references in ``servegym.agents``'s ``data`` folder."""
FINGERPRINT_DIGITS = 10
"""Significant digits of every number the fingerprint hashes (so that last-bit differences of floating-point
arithmetic between machines do not change it)."""
COST_TOLERANCE = 1e-6
"""Relative tolerance of a replayed cost against the shipped ``oracle_cost`` (the replay is exact up to rounding)."""


@dataclass(frozen=True)
class StoppingRule:
    """When an oracle reference solve stops: at a proven relative gap, or after a node limit per solve; then how
    long its schedule is polished in the environment.

    Attributes:
        relative_gap: Stop once (objective − bound)/objective is at most this.
        node_limit: Branch-and-bound nodes per solve (every window and the whole episode) after which the solve
            stops with its incumbent and bound.
        polish_sweeps: Most sweeps of the polish of the MILP's schedule (``schedule_polish.polish_schedule``).
        solver: ``servegym.baselines.milp.oracle`` backend.
    """

    relative_gap: float = 5e-3
    node_limit: int = 300
    polish_sweeps: int = POLISH_SWEEPS
    solver: str = "highs"

    def to_dict(self) -> dict[str, Any]:
        """The rule as the file records it (``time_limit_s`` is always null: no wall clock)."""
        return {
            "relative_gap": self.relative_gap,
            "node_limit": self.node_limit,
            "polish_sweeps": self.polish_sweeps,
            "time_limit_s": None,
        }

    def solve(self, env: ProvisioningEnv) -> OracleResult:
        """:func:`solve_oracle` on the episode ``env`` was reset to, under this rule (single-threaded, seed 0)."""
        return solve_oracle(
            env,
            time_limit_s=None,
            solver=self.solver,
            relative_gap=self.relative_gap,
            node_limit=self.node_limit,
            polish_sweeps=self.polish_sweeps,
        )


REFERENCE_RULE = StoppingRule()
"""The stopping rule of the shipped references and of every fresh oracle solve in scoring: 0.5 % proven gap,
300 nodes per solve, HiGHS single-threaded, seed 0, no time limit; then at most
:data:`~servegym.baselines.milp.schedule_polish.POLISH_SWEEPS` (100) sweeps of polish per descent."""


class ReferenceFileError(ServegymError, ValueError):
    """The references file is damaged, of another format, or does not fit the episode (message: file and field)."""


class ReferenceMismatchError(ServegymError, ValueError):
    """A fresh oracle solve or a replay disagrees with the shipped reference beyond its proven gap."""


@dataclass(frozen=True)
class OracleReference:
    """One episode's shipped oracle reference (module docstring, ``episodes[k]``).

    Attributes:
        env_id: Registered environment id.
        env_settings: Canonical JSON of the env keywords (``{}`` for the id's defaults), as ``servegym score``
            writes it.
        day: Azure day of the episode, or None (synthetic demand).
        seed: Episode seed.
        fingerprint: :func:`episode_fingerprint` of the episode.
        oracle_cost: The schedule's total cost played in the environment, $ per episode.
        milp_schedule_cost: The MILP's own schedule's cost played in the environment, $ (≥ ``oracle_cost``).
        polish_moves: Moves of the polish from the MILP's schedule to ``replicas``.
        milp_objective: The MILP's objective for its own schedule, $.
        bound: Proven lower bound on the MILP optimum, $.
        gap: (milp_objective − bound) / milp_objective.
        status: ``optimal`` (gap within the rule's) or ``feasible`` (node limit first).
        is_lower_bound: Whether ``bound`` bounds every schedule's realised cost (``oracle.is_lower_bound``).
        solve_s: Wall-clock seconds of the solve on the machine that made the file (information only).
        configurations: Names of the configurations either schedule rents.
        replicas: (T, len(configurations)) replicas per period: the polished schedule, which scoring plays.
        milp_replicas: (T, len(configurations)) the MILP's schedule.
        where: ``FILE: $.episodes[k]``, for error messages.
    """

    env_id: str
    env_settings: str
    day: str | None
    seed: int
    fingerprint: str
    oracle_cost: float
    milp_schedule_cost: float
    polish_moves: int
    milp_objective: float
    bound: float
    gap: float
    status: str
    is_lower_bound: bool
    solve_s: float
    configurations: tuple[str, ...]
    replicas: np.ndarray
    milp_replicas: np.ndarray
    where: str = ""

    @property
    def key(self) -> tuple[str, str, str | None, int]:
        """(env id, env settings, day, seed)."""
        return (self.env_id, self.env_settings, self.day, self.seed)

    @property
    def reset_options(self) -> dict[str, str]:
        """The ``env.reset`` options of its episode: ``{"day": day}``, empty for a synthetic episode."""
        return {"day": self.day} if self.day is not None else {}

    def columns(self, env: ProvisioningEnv) -> list[int]:
        """Index in ``env.instance`` of each of :attr:`configurations`, in the record's order.

        Raises:
            ReferenceFileError: a configuration name is not in the instance.
        """
        names = {config.name: c for c, config in enumerate(env.instance.configurations)}
        unknown = [name for name in self.configurations if name not in names]
        if unknown:
            raise ReferenceFileError(f"{self.where}.schedule.configurations: {unknown} not in the env's instance")
        return [names[name] for name in self.configurations]

    def schedule(self, env: ProvisioningEnv, *, milp: bool = False) -> np.ndarray:
        """(T, C) replicas per period of every configuration of ``env.instance``: the played schedule, or the MILP's
        own with ``milp``.

        Raises:
            ReferenceFileError: a configuration name is not in the instance, or T is not the episode's length.
        """
        columns = self.columns(env)
        num_periods = env.state.demand.rates_per_hour.shape[0]
        if self.replicas.shape[0] != num_periods:
            raise ReferenceFileError(
                f"{self.where}.schedule.replicas: {self.replicas.shape[0]} periods, the episode has {num_periods}"
            )
        schedule = np.zeros((num_periods, env.instance.num_configurations), dtype=np.int64)
        schedule[:, columns] = self.milp_replicas if milp else self.replicas
        return schedule

    def to_dict(self) -> dict[str, Any]:
        """The record as the file stores it."""
        return {
            "env_id": self.env_id,
            "env_settings": self.env_settings,
            "day": self.day,
            "seed": self.seed,
            "fingerprint": self.fingerprint,
            "oracle_cost": self.oracle_cost,
            "milp_schedule_cost": self.milp_schedule_cost,
            "polish_moves": self.polish_moves,
            "milp_objective": self.milp_objective,
            "bound": self.bound,
            "gap": self.gap,
            "status": self.status,
            "is_lower_bound": self.is_lower_bound,
            "solve_s": self.solve_s,
            "schedule": {
                "configurations": list(self.configurations),
                "replicas": self.replicas.tolist(),
                "milp_replicas": self.milp_replicas.tolist(),
            },
        }


def reference_from_result(
    env: ProvisioningEnv,
    key: tuple[str, str, str | None, int],
    result: OracleResult,
    oracle_cost: float,
    solve_s: float,
) -> OracleReference:
    """The record of a solved episode: ``result``'s two schedules restricted to the configurations they rent."""
    used = np.flatnonzero(result.replicas.any(axis=0) | result.milp_replicas.any(axis=0))
    env_id, settings, day, seed = key
    return OracleReference(
        env_id=env_id,
        env_settings=settings,
        day=day,
        seed=seed,
        fingerprint=episode_fingerprint(env),
        oracle_cost=float(oracle_cost),
        milp_schedule_cost=float(result.milp_played_cost),
        polish_moves=int(result.polish_moves),
        milp_objective=float(result.objective),
        bound=float(result.bound),
        gap=float(result.gap),
        status=result.status,
        is_lower_bound=bool(result.is_lower_bound),
        solve_s=float(solve_s),
        configurations=tuple(env.instance.configurations[c].name for c in used.tolist()),
        replicas=np.asarray(result.replicas[:, used], dtype=np.int64),
        milp_replicas=np.asarray(result.milp_replicas[:, used], dtype=np.int64),
    )


@dataclass(frozen=True)
class ReferenceSet:
    """The contents of a references file.

    Attributes:
        episodes: The records, in file order.
        stopping_rule: The rule they were solved under (``StoppingRule.to_dict``).
        solver: Solver name, version, threads and seed.
        missing: (env id, day, seed) of protocol test episodes without a record.
        header: ``servegym_version``, ``provenance`` (of the MILP solves) and ``polish_provenance`` (of the polish,
            when a later run re-polished the schedules) as the file records them.
        path: The file read (empty for a set built in memory).
    """

    episodes: tuple[OracleReference, ...] = ()
    stopping_rule: Mapping[str, Any] = field(default_factory=dict)
    solver: Mapping[str, Any] = field(default_factory=dict)
    missing: tuple[tuple[str, str | None, int], ...] = ()
    header: Mapping[str, Any] = field(default_factory=dict)
    path: str = ""

    def find(self, env_id: str, env_settings: str, day: str | None, seed: int) -> OracleReference | None:
        """The record of the episode, or None."""
        for reference in self.episodes:
            if reference.key == (env_id, env_settings, day, seed):
                return reference
        return None

    def __iter__(self) -> Iterator[OracleReference]:
        return iter(self.episodes)

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON payload."""
        return {
            "format": REFERENCES_FORMAT,
            **dict(self.header),
            "solver": dict(self.solver),
            "stopping_rule": dict(self.stopping_rule),
            "episodes": [reference.to_dict() for reference in self.episodes],
            "missing": [{"env_id": e, "day": d, "seed": s} for e, d, s in self.missing],
        }


def _canonical(value: Any) -> Any:
    """``value`` with every float written to :data:`FINGERPRINT_DIGITS` significant digits (lists, dicts kept)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return f"{value:.{FINGERPRINT_DIGITS}g}"
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _canonical(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        return _canonical(value.item())
    raise TypeError(f"episode_fingerprint: cannot hash a {type(value).__name__}")


def episode_fingerprint(env: ProvisioningEnv) -> str:
    """SHA-256 of everything the oracle reads of the episode ``env`` was reset to: the instance (every
    coefficient), the realised demand and service-time and error multipliers of every period, the replica limits,
    the start-up shares, the start fee, the error price and the router kind. Numbers are hashed to
    :data:`FINGERPRINT_DIGITS` significant digits."""
    slowdown, error_factor = episode_factors(env)
    payload = {
        "instance": instance_to_dict(env.instance),
        "demand_per_hour": env.state.demand.rates_per_hour,
        "slowdown": slowdown,
        "error_factor": error_factor,
        "max_replicas": env.max_replicas,
        "ready_share": env.replicas.ready_share,
        "start_fee": float(env.start_fee),
        "error_penalty_per_request": np.asarray(env.error_penalty_per_request, dtype=float),
        "router": env.router_kind,
    }
    text = json.dumps(_canonical(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shipped_references_text() -> tuple[str, str]:
    """(text, label) of the shipped file (label ``servegym/agents/data/oracle_references.json``)."""
    text = resources.files("servegym.agents").joinpath("data", REFERENCES_FILE).read_text(encoding="utf-8")
    return text, f"servegym/agents/data/{REFERENCES_FILE}"


def load_references(path: Path | str | None = None) -> ReferenceSet:
    """Read and check a references file (the shipped one when ``path`` is None).

    Raises:
        ReferenceFileError: the file cannot be read, is not JSON, is of another format, or a field is missing or
            of the wrong type or value; the message names the file and the field (``$.episodes[2].bound``).
    """
    if path is None:
        text, label = shipped_references_text()
    else:
        label = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ReferenceFileError(f"{label}: cannot read the oracle references ({error})") from error
    try:
        payload = json.loads(text)
    except ValueError as error:
        raise ReferenceFileError(f"{label}: not JSON ({error})") from error
    return parse_references(payload, label)


def _field(record: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(record, Mapping):
        raise ReferenceFileError(f"{where}: expected an object, got {type(record).__name__}")
    if name not in record:
        raise ReferenceFileError(f"{where}.{name}: missing")
    value = record[name]
    wrong_bool = isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))
    if not isinstance(value, kind) or wrong_bool:
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ReferenceFileError(f"{where}.{name}: expected {names}, got {value!r}")
    return value


def _cost(record: Mapping[str, Any], name: str, where: str) -> float:
    value = float(_field(record, name, (int, float), where))
    if not math.isfinite(value) or value < 0.0:
        raise ReferenceFileError(f"{where}.{name}: expected a finite amount ≥ 0, got {value!r}")
    return value


def _replica_rows(schedule: Mapping[str, Any], name: str, width: int, where: str) -> np.ndarray:
    """(T, width) whole replica counts ≥ 0 of ``schedule[name]``."""
    rows = _field(schedule, name, list, where)
    try:
        replicas = np.array(rows, dtype=float).reshape(len(rows), width)
    except (TypeError, ValueError) as error:
        raise ReferenceFileError(f"{where}.{name}: expected one list of {width} replica counts per period") from error
    if np.any(replicas < 0) or np.any(replicas != np.round(replicas)):
        raise ReferenceFileError(f"{where}.{name}: replica counts must be whole numbers ≥ 0")
    return replicas.astype(np.int64)


def _parse_episode(record: Any, where: str) -> OracleReference:
    day = _field(record, "day", (str, type(None)), where)
    seed = _field(record, "seed", int, where)
    fingerprint = _field(record, "fingerprint", str, where)
    if len(fingerprint) != 64 or any(ch not in "0123456789abcdef" for ch in fingerprint):
        raise ReferenceFileError(f"{where}.fingerprint: expected 64 lower-case hex digits (SHA-256)")
    oracle_cost = _cost(record, "oracle_cost", where)
    objective = _cost(record, "milp_objective", where)
    bound = _cost(record, "bound", where)
    gap = _cost(record, "gap", where)
    if bound > objective * (1.0 + COST_TOLERANCE) + COST_TOLERANCE:
        raise ReferenceFileError(f"{where}.bound: {bound} exceeds milp_objective {objective}")
    status = _field(record, "status", str, where)
    if status not in ("optimal", "feasible"):
        raise ReferenceFileError(f"{where}.status: expected 'optimal' or 'feasible', got {status!r}")
    schedule = _field(record, "schedule", Mapping, where)
    configurations = _field(schedule, "configurations", list, f"{where}.schedule")
    if not all(isinstance(name, str) for name in configurations):
        raise ReferenceFileError(f"{where}.schedule.configurations: expected a list of configuration names")
    replicas = _replica_rows(schedule, "replicas", len(configurations), f"{where}.schedule")
    milp_replicas = _replica_rows(schedule, "milp_replicas", len(configurations), f"{where}.schedule")
    if milp_replicas.shape != replicas.shape:
        raise ReferenceFileError(
            f"{where}.schedule.milp_replicas: {milp_replicas.shape[0]} periods, replicas has {replicas.shape[0]}"
        )
    milp_schedule_cost = _cost(record, "milp_schedule_cost", where)
    if oracle_cost > milp_schedule_cost * (1.0 + COST_TOLERANCE) + COST_TOLERANCE:
        raise ReferenceFileError(
            f"{where}.oracle_cost: {oracle_cost} exceeds milp_schedule_cost {milp_schedule_cost} (the polish only "
            "ever lowers the cost)"
        )
    polish_moves = _field(record, "polish_moves", int, where)
    if polish_moves < 0:
        raise ReferenceFileError(f"{where}.polish_moves: expected a count ≥ 0, got {polish_moves}")
    return OracleReference(
        env_id=_field(record, "env_id", str, where),
        env_settings=_field(record, "env_settings", str, where),
        day=day,
        seed=seed,
        fingerprint=fingerprint,
        oracle_cost=oracle_cost,
        milp_schedule_cost=milp_schedule_cost,
        polish_moves=polish_moves,
        milp_objective=objective,
        bound=bound,
        gap=gap,
        status=status,
        is_lower_bound=_field(record, "is_lower_bound", bool, where),
        solve_s=_cost(record, "solve_s", where),
        configurations=tuple(configurations),
        replicas=replicas,
        milp_replicas=milp_replicas,
        where=where,
    )


def parse_references(payload: Any, label: str) -> ReferenceSet:
    """Check a references payload (module docstring) read from ``label``.

    Raises:
        ReferenceFileError: naming ``label`` and the field.
    """
    where = f"{label}: $"
    if not isinstance(payload, Mapping):
        raise ReferenceFileError(f"{where}: expected an object, got {type(payload).__name__}")
    if payload.get("format") != REFERENCES_FORMAT:
        raise ReferenceFileError(f"{where}.format: expected {REFERENCES_FORMAT!r}, got {payload.get('format')!r}")
    rule = _field(payload, "stopping_rule", Mapping, where)
    for name in ("relative_gap", "node_limit", "polish_sweeps"):
        _cost(rule, name, f"{where}.stopping_rule")
    solver = _field(payload, "solver", Mapping, where)
    _field(solver, "name", str, f"{where}.solver")
    episodes = tuple(
        _parse_episode(record, f"{where}.episodes[{k}]")
        for k, record in enumerate(_field(payload, "episodes", list, where))
    )
    seen: dict[tuple[str, str, str | None, int], str] = {}
    for reference in episodes:
        if reference.key in seen:
            raise ReferenceFileError(f"{reference.where}: the same episode as {seen[reference.key]}")
        seen[reference.key] = reference.where
    missing = []
    for k, record in enumerate(_field(payload, "missing", list, where)):
        at = f"{where}.missing[{k}]"
        env_id, day = _field(record, "env_id", str, at), _field(record, "day", (str, type(None)), at)
        missing.append((env_id, day, _field(record, "seed", int, at)))
    header = {
        name: payload[name] for name in ("servegym_version", "provenance", "polish_provenance") if name in payload
    }
    return ReferenceSet(episodes, dict(rule), dict(solver), tuple(missing), header, label)


def check_replay(reference: OracleReference, replayed_cost: float) -> None:
    """The shipped schedule played in the environment must cost ``oracle_cost``.

    Raises:
        ReferenceMismatchError: it does not (the environment changed since the file was made).
    """
    if abs(replayed_cost - reference.oracle_cost) > COST_TOLERANCE * max(abs(reference.oracle_cost), 1.0):
        raise ReferenceMismatchError(
            f"{reference.where}.oracle_cost: the shipped schedule now costs ${replayed_cost:,.4f} in the env, the "
            f"file records ${reference.oracle_cost:,.4f}; the environment changed since the references were made: "
            "regenerate them (python scripts/solve_oracle_references.py) or score with --recompute-oracle"
        )


def fresh_tolerance(reference: OracleReference, fresh_gap: float, relative_gap: float) -> float:
    """$ by which a fresh oracle cost may differ from the shipped one: the larger of the two proven gaps (at least
    the rule's) of the larger cost, plus :data:`COST_TOLERANCE`."""
    gap = max(reference.gap, fresh_gap, relative_gap)
    return gap * reference.oracle_cost + COST_TOLERANCE * max(reference.oracle_cost, 1.0)


def check_fresh(reference: OracleReference, fresh_cost: float, fresh_gap: float, relative_gap: float) -> None:
    """A fresh solve's env cost must lie within the proven gap of the shipped cost, and not below the shipped
    bound when that bounds every schedule.

    Raises:
        ReferenceMismatchError: naming the record and both costs.
    """
    tolerance = fresh_tolerance(reference, fresh_gap, relative_gap)
    below_bound = reference.is_lower_bound and fresh_cost < reference.bound - COST_TOLERANCE * max(reference.bound, 1.0)
    if below_bound or abs(fresh_cost - reference.oracle_cost) > tolerance:
        raise ReferenceMismatchError(
            f"{reference.where}: a fresh oracle solve costs ${fresh_cost:,.2f}, outside the shipped reference "
            f"(oracle_cost ${reference.oracle_cost:,.2f} ± ${tolerance:,.2f} from the proven gaps, bound "
            f"${reference.bound:,.2f}); the shipped references do not hold on this installation"
        )


@dataclass(frozen=True)
class EpisodeOracle:
    """Where one episode's oracle came from.

    Attributes:
        source: ``shipped`` (the record's schedule replayed), ``fresh`` (no record: solved under the rule) or
            ``recomputed`` (solved under the rule although a record exists, to check it).
        reference: The episode's record (None for ``fresh``).
        result: The fresh solve (None for ``shipped``).
    """

    source: str
    reference: OracleReference | None
    result: OracleResult | None

    @property
    def gap(self) -> float:
        """The MILP's proven gap for its own schedule (the tolerance of ``check_fresh``)."""
        if self.result is not None:
            return float(self.result.gap)
        return self.reference.gap if self.reference is not None else math.nan

    def played_gap(self, played_cost: float) -> float:
        """(``played_cost`` − proven lower bound) / ``played_cost``: how far the schedule played, at that cost in $,
        may lie above the cheapest schedule the environment can run; NaN where the bound does not bound every
        schedule's realised cost (``oracle.is_lower_bound``)."""
        source = self.result if self.result is not None else self.reference
        if source is None or not source.is_lower_bound:
            return math.nan
        return max(0.0, (played_cost - source.bound) / max(abs(played_cost), 1e-9))


class ReferenceOraclePolicy:
    """The oracle of scoring as a policy: the shipped schedule of an episode with a record, else a fresh solve.

    On the first ``act`` of an episode it computes :func:`episode_fingerprint`; a record of ``references`` with
    that fingerprint is replayed (unless ``recompute``), any other episode is solved with ``rule.solve``.
    ``records`` lists an :class:`EpisodeOracle` per episode played, in order. **Not an online policy**: a fresh
    solve reads the episode's true demand.
    """

    def __init__(
        self,
        env: ProvisioningEnv,
        references: Sequence[OracleReference] = (),
        *,
        recompute: bool = False,
        rule: StoppingRule = REFERENCE_RULE,
    ) -> None:
        self.name = "oracle"
        self.fallbacks = 0
        self.env: ProvisioningEnv = getattr(env, "unwrapped", env)
        self.references = {reference.fingerprint: reference for reference in references}
        self.recompute = recompute
        self.rule = rule
        self.records: list[EpisodeOracle] = []
        self._schedule: np.ndarray | None = None

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the schedule is chosen on the first ``act`` of each episode."""

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        period = int(info["period"])
        if period == 0 or self._schedule is None:
            reference = self.references.get(episode_fingerprint(self.env))
            if reference is not None and not self.recompute:
                self._schedule = reference.schedule(self.env)
                self.records.append(EpisodeOracle("shipped", reference, None))
            else:
                result = self.rule.solve(self.env)
                self._schedule = result.replicas
                self.records.append(EpisodeOracle("recomputed" if reference else "fresh", reference, result))
        return self._schedule[period].copy()


def build_reference(
    env: gym.Env,
    env_id: str,
    seed: int,
    options: Mapping[str, Any],
    *,
    env_settings: str = "{}",
    rule: StoppingRule = REFERENCE_RULE,
    known: Sequence[OracleReference] = (),
) -> OracleReference:
    """Solve one episode under ``rule`` and play its schedule in ``env``: the episode's record.

    An episode whose fingerprint equals a record of ``known`` (another seed of a setting without randomness)
    reuses that record's schedule without solving (``solve_s`` 0); the schedule is played either way, so
    ``oracle_cost`` is the episode's own.

    Args:
        env: The environment (``gymnasium.make(env_id, …)``, wrapped or not).
        env_id: Its registered id.
        seed: Episode seed.
        options: Reset options (``{"day": …}`` or ``{}``).
        env_settings: Canonical JSON of the env keywords (``{}``: the id's defaults).
        rule: The stopping rule.
        known: Records that may share the episode's schedule.
    """
    unwrapped: ProvisioningEnv = env.unwrapped  # type: ignore[assignment]
    env.reset(seed=seed, options=dict(options) or None)
    fingerprint = episode_fingerprint(unwrapped)
    key = (env_id, env_settings, options.get("day"), seed)
    same = next((r for r in known if r.env_id == env_id and r.fingerprint == fingerprint), None)
    if same is not None:
        draft = replace(same, env_id=env_id, env_settings=env_settings, day=key[2], seed=seed, solve_s=0.0)
    else:
        start = time.perf_counter()
        result = rule.solve(unwrapped)
        draft = reference_from_result(unwrapped, key, result, math.nan, time.perf_counter() - start)
    return replay_reference(env, draft)


def replay_reference(env: gym.Env, reference: OracleReference) -> OracleReference:
    """``reference`` with ``oracle_cost`` what its schedule costs played in ``env`` on its episode."""
    unwrapped: ProvisioningEnv = env.unwrapped  # type: ignore[assignment]
    policy = ReferenceOraclePolicy(unwrapped, [reference])
    record, _ = run_episode(env, policy, reference.seed, reference.reset_options)
    return replace(reference, oracle_cost=float(record["total_cost"]), where="")


def repolish_reference(
    env: gym.Env, reference: OracleReference, *, rule: StoppingRule = REFERENCE_RULE
) -> OracleReference:
    """``reference`` with its MILP schedule polished again under ``rule`` and played in ``env``, without solving:
    for a change of the polish (or of what the environment charges) that leaves the MILP's inputs as they were.

    Raises:
        ReferenceMismatchError: the episode ``env`` builds now has another fingerprint (the MILP must be solved
            again).
    """
    unwrapped: ProvisioningEnv = env.unwrapped  # type: ignore[assignment]
    env.reset(seed=reference.seed, options=reference.reset_options)
    if episode_fingerprint(unwrapped) != reference.fingerprint:
        raise ReferenceMismatchError(
            f"{reference.where or reference.key}: the episode's inputs changed since it was solved; solve it again"
        )
    milp = reference.schedule(unwrapped, milp=True)
    polished = polish_schedule(unwrapped, milp, max_sweeps=rule.polish_sweeps)
    draft = replace(
        reference,
        milp_schedule_cost=polished.cost_before,
        polish_moves=polished.moves,
        replicas=np.asarray(polished.replicas[:, reference.columns(unwrapped)], dtype=np.int64),
    )
    return replay_reference(env, draft)


__all__ = [
    "REFERENCE_RULE",
    "EpisodeOracle",
    "OracleReference",
    "ReferenceFileError",
    "ReferenceMismatchError",
    "ReferenceOraclePolicy",
    "ReferenceSet",
    "StoppingRule",
    "build_reference",
    "check_fresh",
    "check_replay",
    "episode_fingerprint",
    "load_references",
    "parse_references",
    "reference_from_result",
    "replay_reference",
    "repolish_reference",
]
