"""Instance ↔ JSON: every coefficient, in the schema documented in docs/instance-schema.md.

:func:`instance_to_dict` writes an instance; :func:`load_instance` reads a file and :func:`instance_from_dict`
checks every value against the schema table below before it builds the :class:`Instance`. Each problem is reported
as ``SOURCE: JSON-PATH: message`` (e.g. ``my.json: $.capacity_per_hour[2][5]: value NaN must be finite and >= 0``),
one line per problem, at most :data:`MAX_REPORTED_PROBLEMS` lines. The checks run in three stages, each only when
the previous one found nothing: the structure, types and ranges of every value; the consistency between values
(names, indices, G_c = t·p); and the stated ``derived`` block against the values the instance recomputes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from servegym.envs.catalog import PRECISIONS, TASK_FAMILIES
from servegym.envs.instance import Configuration, Instance, InstanceError, QueryType

SCHEMA_VERSION = 1
MAX_REPORTED_PROBLEMS = 10
"""Lines of one error message; further problems are counted in a last line."""
DERIVED_RELATIVE_TOLERANCE = 1e-9
"""Largest relative difference between a stated ``derived`` value and the recomputed one."""
MAX_JSON_INTEGER = 2**53
"""Largest integer magnitude accepted (exactly representable as a float, as in most JSON readers)."""

DIMENSIONS: Mapping[str, str] = {"I": "query_types", "J": "models", "G": "gpus", "C": "configurations"}
"""Index set → the list whose length defines it."""


def _show(value: Any) -> str:
    """A value as it reads in JSON (NaN and infinities as Python's json writes them), shortened to 60 characters."""
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    """The JSON type of a value, with its article."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    kinds = ((str, "a string"), ((int, float), "a number"), (list, "a list"), (dict, "an object"))
    return next((name for types, name in kinds if isinstance(value, types)), f"a {type(value).__name__}")


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _names(keys: Any) -> str:
    return ", ".join(json.dumps(k, ensure_ascii=False) for k in keys)


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


class _Checker:
    """Collects problems as ``SOURCE: PATH: message`` lines and knows the index-set sizes I, J, G and C."""

    def __init__(self, source: str, sizes: Mapping[str, int]) -> None:
        self.source = source
        self.sizes = sizes
        self.lines: list[str] = []
        self.unreported = 0

    def problem(self, path: str, message: str) -> None:
        """Record that the value at JSON path ``path`` breaks a rule."""
        if len(self.lines) < MAX_REPORTED_PROBLEMS:
            self.lines.append(f"{self.source}: {path}: {message}")
        else:
            self.unreported += 1

    def raise_if_any(self) -> None:
        """Raise an :class:`InstanceError` listing the problems recorded so far, if any."""
        if self.unreported:
            self.lines.append(f"{self.source}: ... and {self.unreported} more problem(s)")
        if self.lines:
            raise InstanceError("\n".join(self.lines))


@dataclass(frozen=True)
class _Number:
    """A JSON number in [low, high] (an end is excluded when its ``*_open`` flag is set).

    ``integer`` demands a JSON integer; ``unlimited`` lets JSON null stand for +∞.
    """

    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    unlimited: bool = False

    @property
    def rule(self) -> str:
        """The accepted values in words, e.g. ``finite and >= 0`` or ``an integer >= 1``."""
        if math.isinf(self.high):
            rule = f"{'>' if self.low_open else '>='} {_bound(self.low)}"
            rule = f"an integer {rule}" if self.integer else f"finite and {rule}"
        else:
            opening, closing = "(" if self.low_open else "[", ")" if self.high_open else "]"
            interval = f"{opening}{_bound(self.low)}, {_bound(self.high)}{closing}"
            rule = f"an integer in {interval}" if self.integer else f"in {interval}"
        return f"{rule}, or null for unlimited" if self.unlimited else rule

    def admits(self, value: float) -> bool:
        """Whether a float lies in the range (NaN and ±∞ never do)."""
        above = self.low < value if self.low_open else self.low <= value
        below = value < self.high if self.high_open else value <= self.high
        return math.isfinite(value) and above and below

    def check(self, value: Any, path: str, checker: _Checker) -> int | float | None:
        """The value as int (``integer``) or float, or None after reporting a problem."""
        if value is None and self.unlimited:
            return math.inf
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = "" if isinstance(value, (list, dict)) else f"value {_show(value)} "
            expected = self.rule if self.integer else "a number"
            note = " (JSON booleans are not numbers)" if isinstance(value, bool) else ""
            checker.problem(path, f"{shown}must be {expected}, not {_kind(value)}{note}")
            return None
        if isinstance(value, int) and abs(value) > MAX_JSON_INTEGER:
            checker.problem(path, f"value {value} is too large: integers must be at most 2**53 in magnitude")
            return None
        if (self.integer and not isinstance(value, int)) or not self.admits(float(value)):
            checker.problem(path, f"value {_show(value)} must be {self.rule}")
            return None
        return int(value) if self.integer else float(value)


@dataclass(frozen=True)
class _Text:
    """A JSON string, non-empty unless ``empty_ok``, from ``choices`` when given."""

    empty_ok: bool = False
    choices: tuple[str, ...] = ()

    def check(self, value: Any, path: str, checker: _Checker) -> str | None:
        """The string, or None after reporting a problem."""
        if not isinstance(value, str):
            shown = "" if isinstance(value, (list, dict)) else f"value {_show(value)} "
            checker.problem(path, f"{shown}must be a string, not {_kind(value)}")
            return None
        if not value and not self.empty_ok:
            checker.problem(path, 'value "" must be a non-empty string')
            return None
        if self.choices and value not in self.choices:
            checker.problem(path, f"value {_show(value)} must be one of {_names(self.choices)}")
            return None
        return value


@dataclass(frozen=True)
class _Array:
    """A nested list of numbers of shape ``dims`` (index-set letters, e.g. ``("I", "C")``)."""

    dims: tuple[str, ...]
    element: _Number

    def shape(self, checker: _Checker) -> str:
        """E.g. ``(I, C) = (6, 589)``."""
        letters = ", ".join(self.dims)
        sizes = ", ".join(str(checker.sizes.get(d, "?")) for d in self.dims)
        return f"({letters}{',' if len(self.dims) == 1 else ''}) = ({sizes}{',' if len(self.dims) == 1 else ''})"

    def check(self, value: Any, path: str, checker: _Checker, depth: int = 0) -> Any:
        """Nested lists of ints or floats, None in place of each reported problem."""
        if depth == len(self.dims):
            return self.element.check(value, path, checker)
        dim = self.dims[depth]
        size = checker.sizes.get(dim)
        if not isinstance(value, list):
            what = "a list" if depth == len(self.dims) - 1 else "a list of lists"
            checker.problem(path, f"must be {what} (shape {self.shape(checker)}), not {_kind(value)}")
            return None
        if size is not None and len(value) != size:
            entries = f"{len(value)} entr{'y' if len(value) == 1 else 'ies'}"
            checker.problem(
                path,
                f"has {entries}, expected {dim} = {size} (the length of $.{DIMENSIONS[dim]}); "
                f"the shape must be {self.shape(checker)}",
            )
            return None
        return [self.check(v, f"{path}[{i}]", checker, depth + 1) for i, v in enumerate(value)]


@dataclass(frozen=True)
class _Object:
    """A JSON object with exactly the keys of ``fields`` (those in ``optional`` may be left out)."""

    fields: Mapping[str, _Number | _Text | _Array | _List | _Object]
    optional: frozenset[str] = frozenset()

    def check(self, value: Any, path: str, checker: _Checker) -> dict[str, Any] | None:
        """The checked values of the keys present, or None when the value is not an object."""
        if not isinstance(value, dict):
            checker.problem(path, f"must be an object, not {_kind(value)}")
            return None
        return self.check_keys(value, path, checker)

    def check_keys(self, value: dict[str, Any], path: str, checker: _Checker) -> dict[str, Any]:
        """The checked values of the keys present in an object."""
        duplicates = getattr(value, "duplicate_keys", ())
        if duplicates:
            checker.problem(path, f"key(s) {_names(duplicates)} given more than once")
        missing = [k for k in self.fields if k not in value and k not in self.optional]
        if missing:
            checker.problem(path, f"missing key(s) {_names(missing)}; allowed keys: {_names(self.fields)}")
        unknown = [k for k in value if k not in self.fields]
        if unknown:
            checker.problem(path, f"unknown key(s) {_names(unknown)}; allowed keys: {_names(self.fields)}")
        return {k: spec.check(value[k], _key_path(path, k), checker) for k, spec in self.fields.items() if k in value}


@dataclass(frozen=True)
class _List:
    """A non-empty JSON list whose length defines index set ``dim``; ``unique`` names (an object's ``name``)."""

    dim: str
    item: _Text | _Object
    unique: bool = True

    def check(self, value: Any, path: str, checker: _Checker) -> list[Any] | None:
        """The checked items, or None when the value is not a non-empty list."""
        if not isinstance(value, list) or not value:
            given = "an empty list" if isinstance(value, list) else _kind(value)
            checker.problem(path, f"must be a non-empty list ({self.dim} >= 1), not {given}")
            return None
        items = [self.item.check(v, f"{path}[{i}]", checker) for i, v in enumerate(value)]
        if self.unique:
            first: dict[str, int] = {}
            for i, item in enumerate(items):
                name, suffix = (item.get("name"), ".name") if isinstance(item, dict) else (item, "")
                if name is None:
                    continue
                if name in first:
                    checker.problem(f"{path}[{i}]{suffix}", f"value {_show(name)} duplicates {path}[{first[name]}]")
                first.setdefault(name, i)
        return items


_NON_NEGATIVE = _Number()
_FRACTION = _Number(high=1.0)
_INDEX = _Number(integer=True)
_NAME = _Text()

# The ranges of QueryType.__post_init__ (envs/instance.py), restated so that each problem names its JSON path;
# tests/test_instance_file.py checks that both agree.
_QUERY_TYPE = _Object(
    {
        "name": _NAME,
        "task_family": _Text(choices=TASK_FAMILIES),
        "arrival_rate_per_hour": _Number(0.0, 1e9),  # λ_i, requests/hour
        "mean_prompt_tokens": _Number(1.0, 1e6),  # h_i, tokens
        "mean_output_tokens": _Number(1.0, 1e6),  # f_i, tokens
        "delay_slo_s": _Number(1e-3, 1e5),  # Δ_i, s
        "error_slo": _FRACTION,  # ε_i
        "max_unmet_fraction": _FRACTION,  # ζ_i
        "unmet_penalty_per_request": _Number(0.0, 1e6),  # φ_i, $/request
        "delay_penalty_per_request_s": _Number(0.0, 1e6),  # ρ_i, $/(request·s)
    }
)
_CONFIGURATION = _Object(
    {
        "model": _NAME,
        "gpu": _NAME,
        "precision": _Text(choices=PRECISIONS),
        "tensor_parallel": _Number(1, integer=True),
        "pipeline_parallel": _Number(1, integer=True),
        "name": _NAME,
        "tier": _NAME,
    },
    optional=frozenset({"name", "tier"}),
)
_DERIVED = _Object(
    {
        "replica_price_per_hour": _Array(("C",), _NON_NEGATIVE),  # G_c·π_g, $/hour
        "max_replicas": _Array(("C",), _INDEX),  # ⌊A_g / G_c⌋, replicas
        "route_allowed": _Array(("I", "C"), _Number(0, 1, integer=True)),  # μ_{i,c} > 0 and D_{i,c} ≤ Δ_i, 0/1
    },
    optional=frozenset({"replica_price_per_hour", "max_replicas", "route_allowed"}),
)
_SCHEMA = _Object(
    {
        "schema_version": _Number(SCHEMA_VERSION, SCHEMA_VERSION, integer=True),
        "name": _NAME,
        "description": _Text(empty_ok=True),
        "query_types": _List("I", _QUERY_TYPE),
        "models": _List("J", _NAME),
        "gpus": _List("G", _NAME),
        "configurations": _List("C", _CONFIGURATION, unique=False),
        "config_model": _Array(("C",), _INDEX),  # j of each configuration
        "config_gpu": _Array(("C",), _INDEX),  # g of each configuration
        "gpus_per_replica": _Array(("C",), _Number(1, integer=True)),  # G_c = t·p, GPUs
        "gpu_price_per_hour": _Array(("G",), _NON_NEGATIVE),  # π_g, $/GPU-hour
        "gpu_availability": _Array(("G",), _INDEX),  # A_g, GPUs
        "capacity_per_hour": _Array(("I", "C"), _NON_NEGATIVE),  # μ_{i,c}, requests/hour
        "delay_s": _Array(("I", "C"), _NON_NEGATIVE),  # D_{i,c}, s
        "error_rate": _Array(("I", "C"), _FRACTION),  # e_{i,c}
        "demand_per_hour": _Array(("I",), _NON_NEGATIVE),  # λ_i, requests/hour
        "model_storage_gb": _Array(("J",), _NON_NEGATIVE),  # B_j, GB
        "startup_s": _Array(("C",), _NON_NEGATIVE),  # S_c, s
        "storage_price_per_gb_hour": _NON_NEGATIVE,  # p^s, $/GB-hour
        "storage_capacity_gb": _NON_NEGATIVE,  # C^s, GB
        "budget_per_hour": _Number(unlimited=True),  # δ, $/hour; null = unlimited
        "design_utilisation": _Number(0.0, 1.0, low_open=True, high_open=True),  # ρ_max, as Instance requires
        "period_hours": _Number(low_open=True),  # Δt, hours
        "derived": _DERIVED,
    },
    optional=frozenset({"description", "startup_s", "derived"}),
)
"""Every key of an instance file with the accepted values (docs/instance-schema.md "Validation")."""


def _plain(record: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict of plain Python values (NumPy scalars converted), as JSON reads them back."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in dataclasses.asdict(record).items()}


def instance_to_dict(instance: Instance) -> dict[str, Any]:
    """A JSON-ready dict with every field and derived coefficient of the instance.

    An unlimited budget (δ = +∞ $/hour) is written as None (JSON null): JSON has no infinity.
    """
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": instance.name,
        "description": instance.description,
        "query_types": [_plain(q) for q in instance.query_types],
        "models": list(instance.models),
        "gpus": list(instance.gpus),
        "configurations": [_plain(c) | {"name": c.name, "tier": c.tier} for c in instance.configurations],
        "storage_price_per_gb_hour": float(instance.storage_price_per_gb_hour),
        "storage_capacity_gb": float(instance.storage_capacity_gb),
        "budget_per_hour": None if math.isinf(instance.budget_per_hour) else float(instance.budget_per_hour),
        "design_utilisation": float(instance.design_utilisation),
        "period_hours": float(instance.period_hours),
    }
    for name, spec in _SCHEMA.fields.items():
        if isinstance(spec, _Array):
            payload[name] = np.asarray(getattr(instance, name)).tolist()
    payload["derived"] = {
        "replica_price_per_hour": instance.replica_price_per_hour.tolist(),
        "max_replicas": instance.max_replicas.tolist(),
        "route_allowed": instance.route_allowed.astype(int).tolist(),
    }
    return payload


def _check_consistency(values: Mapping[str, Any], checker: _Checker) -> tuple[Configuration, ...]:
    """Configurations against models, GPUs, indices and G_c = t·p; returns them (valid when no problem)."""
    indices = {key: {name: i for i, name in enumerate(values[key])} for key in ("models", "gpus")}
    configurations: list[Configuration] = []
    first: dict[str, int] = {}
    for c, entry in enumerate(values["configurations"]):
        path = f"$.configurations[{c}]"
        known = True
        for field, names, index_key in (("model", "models", "config_model"), ("gpu", "gpus", "config_gpu")):
            index = indices[names].get(entry[field])
            known = known and index is not None
            if index is None:
                checker.problem(f"{path}.{field}", f"value {_show(entry[field])} is not in $.{names}")
            elif values[index_key][c] != index:
                checker.problem(
                    f"$.{index_key}[{c}]",
                    f"value {values[index_key][c]} contradicts {path}.{field} = {_show(entry[field])}, "
                    f"which is $.{names}[{index}]",
                )
        configuration = Configuration(**{f.name: entry[f.name] for f in dataclasses.fields(Configuration)})
        gpus = configuration.tensor_parallel * configuration.pipeline_parallel
        if values["gpus_per_replica"][c] != gpus:
            checker.problem(
                f"$.gpus_per_replica[{c}]",
                f"value {values['gpus_per_replica'][c]} must equal tensor_parallel × pipeline_parallel = "
                f"{configuration.tensor_parallel} × {configuration.pipeline_parallel} = {gpus} of {path}",
            )
        for field in ("name", "tier") if known else ():
            implied = getattr(configuration, field)
            if field in entry and entry[field] != implied:
                checker.problem(
                    f"{path}.{field}",
                    f"value {_show(entry[field])} disagrees with {_show(implied)}, implied by the model, gpu, "
                    "precision, tensor_parallel and pipeline_parallel",
                )
        if configuration.name in first:
            checker.problem(
                path,
                f"configuration {_show(configuration.name)} duplicates $.configurations[{first[configuration.name]}]",
            )
        first.setdefault(configuration.name, c)
        configurations.append(configuration)
    return tuple(configurations)


def _check_derived(derived: Mapping[str, Any], instance: Instance, checker: _Checker) -> None:
    """Each stated derived value against the instance's own (relative tolerance 1e-9)."""
    for key, stated in derived.items():
        recomputed = np.asarray(getattr(instance, key), dtype=float)
        stated_values = np.asarray(stated, dtype=float)
        differs = ~np.isclose(stated_values, recomputed, rtol=DERIVED_RELATIVE_TOLERANCE, atol=0.0)
        for index in np.argwhere(differs):
            at = tuple(index.tolist())
            stated_value, recomputed_value = stated_values[at].item(), recomputed[at].item()
            if _DERIVED.fields[key].element.integer:
                stated_value, recomputed_value = int(stated_value), int(recomputed_value)
            checker.problem(
                "$.derived." + key + "".join(f"[{i}]" for i in at),
                f"value {_show(stated_value)} differs from the recomputed {_show(recomputed_value)}; derived "
                'values are recomputed: remove the "derived" block or make it agree',
            )


def instance_from_dict(payload: Any, *, source: str = "instance JSON") -> Instance:
    """Check a parsed instance file (or :func:`instance_to_dict` output) and build the instance from it.

    Args:
        payload: The parsed JSON value; it must be an object in the schema of docs/instance-schema.md.
        source: Names the input in error messages (a file path for :func:`load_instance`).

    ``startup_s`` is optional: a file written before it existed loads with S_c = 0 s for every configuration.
    ``budget_per_hour`` null means an unlimited budget (+∞ $/hour). A ``derived`` block is optional; when given,
    every value in it must equal the one recomputed from the other keys.

    Raises:
        InstanceError: One line per problem, ``SOURCE: JSON-PATH: message`` (docs/instance-schema.md "Validation").
    """
    if not isinstance(payload, dict):
        raise InstanceError(f"{source}: $: must be an object, not {_kind(payload)}")
    version = payload.get("schema_version")
    if "schema_version" in payload and (isinstance(version, bool) or version != SCHEMA_VERSION):
        raise InstanceError(
            f"{source}: $.schema_version: value {_show(version)} is not supported (this loader reads "
            f"schema_version {SCHEMA_VERSION})"
        )
    lists = {dim: payload.get(key) for dim, key in DIMENSIONS.items()}
    sizes = {dim: len(value) for dim, value in lists.items() if isinstance(value, list) and value}
    checker = _Checker(source, sizes)
    values = _SCHEMA.check_keys(payload, "$", checker)
    checker.raise_if_any()
    configurations = _check_consistency(values, checker)
    checker.raise_if_any()
    arrays = {
        key: np.asarray(values[key], dtype=np.int64 if spec.element.integer else float)
        for key, spec in _SCHEMA.fields.items()
        if isinstance(spec, _Array) and key in values
    }
    try:
        instance = Instance(
            name=values["name"],
            description=values.get("description", ""),
            query_types=tuple(QueryType(**q) for q in values["query_types"]),
            models=tuple(values["models"]),
            gpus=tuple(values["gpus"]),
            configurations=configurations,
            storage_price_per_gb_hour=values["storage_price_per_gb_hour"],
            storage_capacity_gb=values["storage_capacity_gb"],
            budget_per_hour=values["budget_per_hour"],
            design_utilisation=values["design_utilisation"],
            period_hours=values["period_hours"],
            **arrays,
        )
    except InstanceError as error:
        raise InstanceError(f"{source}: {error}") from None
    _check_derived(values.get("derived", {}), instance, checker)
    checker.raise_if_any()
    return instance


class _JSONObject(dict):
    """A parsed JSON object that remembers the keys given more than once (the last value is kept)."""

    duplicate_keys: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _JSONObject:
    parsed = _JSONObject(pairs)
    if len(parsed) != len(pairs):
        parsed.duplicate_keys = tuple(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    return parsed


def load_instance(path: str | Path) -> Instance:
    """Read an instance file written by ``servegym export`` (or by hand) and check every value.

    The file must be UTF-8 JSON (a byte-order mark is allowed). The NaN and Infinity tokens Python writes are
    parsed and then rejected by the range checks; JSON null is the unlimited budget.

    Raises:
        InstanceError: Naming the file: it is missing or unreadable, not UTF-8, not JSON (with line and column),
            or breaks the schema (with the JSON path of each bad value, see :func:`instance_from_dict`).
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InstanceError(f"{source}: no such instance file") from None
    except OSError as error:
        raise InstanceError(f"{source}: cannot read the instance file: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InstanceError(f"{source}: not UTF-8 text (invalid byte at offset {error.start})") from None
    if not text.strip():
        raise InstanceError(f"{source}: the file is empty; expected a JSON object (docs/instance-schema.md)")
    try:
        payload = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as error:
        raise InstanceError(
            f"{source}: not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except RecursionError:
        raise InstanceError(f"{source}: not valid JSON: nested too deeply") from None
    return instance_from_dict(payload, source=source)
