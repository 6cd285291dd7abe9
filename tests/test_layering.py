"""The package layering: traces → envs → baselines → agents / experiments → cli, with no import cycle, and one
home for the environment's keyword list."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from servegym.envs.settings import ENV_KEYWORDS, INSTANCE_KEYWORDS, ScenarioConfig

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "traces": ROOT / "traces",
    "envs": ROOT / "envs",
    "baselines": ROOT / "baselines",
    "agents": ROOT / "agents",
    "experiments": ROOT / "src" / "servegym" / "experiments",
    "cli": ROOT / "src" / "servegym" / "cli",
}
CORE = {"errors", "io", "tables", "processes", "tuning"}
"""Top-level modules every layer may use (src/servegym/*.py); they import no package."""
ALLOWED: dict[str, set[str]] = {
    "traces": set(),
    "envs": {"traces"},
    "baselines": {"traces", "envs"},
    "agents": {"traces", "envs", "baselines"},
    "experiments": {"traces", "envs", "baselines", "agents"},
    "cli": {"traces", "envs", "baselines", "agents", "experiments"},
}


def _imported_packages(path: Path) -> set[str]:
    """Top-level servegym packages or modules a file imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "servegym" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_layering__a_package_imports_only_the_layers_below_it(package):
    offending = {}
    for path in sorted(PACKAGES[package].rglob("*.py")):
        imported = _imported_packages(path) - {package} - CORE
        bad = imported - ALLOWED[package]
        if bad:
            offending[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offending, f"{package} may import {sorted(ALLOWED[package] | CORE)}; found {offending}"


@pytest.mark.parametrize("module", sorted(CORE))
def test_layering__core_modules_import_no_package(module):
    imported = _imported_packages(ROOT / "src" / "servegym" / f"{module}.py") - CORE
    assert not imported, f"servegym.{module} imports {sorted(imported)}"


def test_settings__one_field_of_scenario_config_per_env_keyword_and_instance_override():
    fields = [f.name for f in dataclasses.fields(ScenarioConfig)]
    assert [name for name in fields if name in ENV_KEYWORDS] == list(ENV_KEYWORDS)
    assert set(ENV_KEYWORDS) <= set(fields) and set(INSTANCE_KEYWORDS) <= set(fields)


BASELINE_GROUPS = {"heuristics": set(), "milp": {"heuristics"}, "runner": {"heuristics", "milp"}}
"""Inside baselines: the heuristics stand alone, the MILP warm-starts from them, the runner plays both."""


def _imported_baseline_groups(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[:2] == ["servegym", "baselines"] and len(parts) > 2 and parts[2] in BASELINE_GROUPS:
                found.add(parts[2])
    return found


@pytest.mark.parametrize("group", sorted(BASELINE_GROUPS))
def test_layering__baseline_groups_import_only_the_groups_below_them(group):
    offending = {}
    for path in sorted((PACKAGES["baselines"] / group).rglob("*.py")):
        bad = _imported_baseline_groups(path) - {group} - BASELINE_GROUPS[group]
        if bad:
            offending[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offending, f"baselines.{group} may import {sorted(BASELINE_GROUPS[group])}; found {offending}"


def test_layering__baselines_is_split_into_heuristics_milp_and_the_runner():
    loose = sorted(p.name for p in PACKAGES["baselines"].glob("*.py") if p.name not in {"__init__.py", "result.py"})
    assert not loose, f"modules outside baselines' groups {sorted(BASELINE_GROUPS)}: {loose}"


def _source_files() -> list[Path]:
    files = [path for root in PACKAGES.values() for path in root.rglob("*.py")]
    files += list((ROOT / "src" / "servegym").glob("*.py")) + list((ROOT / "scripts").glob("*.py"))
    return sorted(files)


def test_names__no_two_modules_share_a_name_across_packages():
    by_name: dict[str, list[str]] = {}
    for path in _source_files():
        if path.name not in {"__init__.py", "__main__.py"}:
            by_name.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not shared, f"module names used more than once: {shared}"


def test_names__no_two_public_classes_share_a_name_across_modules():
    by_name: dict[str, list[str]] = {}
    for path in _source_files():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                by_name.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not shared, f"class names defined more than once: {shared}"
