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
CORE = {"errors", "io", "tables", "processes"}
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
