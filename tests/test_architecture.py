"""Layers point down: an import check over every module of the five packages (README "Architecture").

Imports are read from the source with ``ast`` (lazy imports inside functions included), so the rules hold
for every code path, not only the ones a test happens to run:

- no library module imports command-line code (``henasy.cli`` or any ``*.commands`` module);
- the framework core (``henasy.core``) imports nothing but itself;
- model packages (``henasy.model``, ``baselines``) import only the core, the data helpers and each other —
  nothing from ``benchmarks``, ``sweeps``, ``reports``, the trainer or the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("henasy", "baselines", "benchmarks", "sweeps", "reports")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the project modules ``path`` imports (``from a import b`` counts ``a`` and ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def all_modules() -> dict[str, set[str]]:
    return {
        module_name(path): imported_modules(path)
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
    }


def is_cli(name: str) -> bool:
    return name == "henasy.cli" or name.startswith("henasy.cli.") or "commands" in name.split(".")


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(rule: tuple[str, ...], allowed: tuple[str, ...]) -> list[str]:
    """``module → import`` pairs of modules under ``rule`` that import project code outside ``allowed``."""
    return sorted(
        f"{module} → {target}"
        for module, targets in all_modules().items()
        if within(module, rule)
        for target in targets
        if not within(target, allowed)
    )


def test_the_walk_sees_every_package_and_the_known_edges() -> None:
    modules = all_modules()
    assert {m.split(".")[0] for m in modules} == set(PACKAGES)
    assert "henasy.core.factory" in modules and "henasy.model.network" in modules
    assert "baselines.lavila" in modules["henasy.model.network"]  # HENASY is built on the LaViLa backbone
    commands = {m for m in modules if is_cli(m)}  # each of benchmarks, sweeps, reports owns its subcommands
    assert {"benchmarks.commands.eval", "sweeps.commands.sweep", "reports.commands.table"} <= commands


def test_no_library_module_imports_command_line_code() -> None:
    offenders = sorted(
        f"{module} → {target}"
        for module, targets in all_modules().items()
        if not is_cli(module)
        for target in targets
        if is_cli(target)
    )
    assert not offenders, "library code imports the CLI:\n" + "\n".join(offenders)


def test_the_core_imports_only_itself() -> None:
    offenders = violations(("henasy.core",), ("henasy.core",))
    assert not offenders, "henasy.core reaches up:\n" + "\n".join(offenders)


@pytest.mark.parametrize("package", ["henasy.model", "baselines"])
def test_models_import_only_the_core_data_helpers_and_models(package: str) -> None:
    offenders = violations((package,), ("henasy.core", "henasy.data", "henasy.model", "baselines"))
    assert not offenders, f"{package} imports framework layers above it:\n" + "\n".join(offenders)


def test_the_rules_catch_an_offender(tmp_path: Path) -> None:
    """The check is not vacuous: a module importing the CLI lazily is found."""
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from henasy.commands.train import run\n    import sweeps.job\n")
    assert imported_modules(module) == {"henasy.commands.train", "henasy.commands.train.run", "sweeps.job"}
    assert is_cli("henasy.commands.train") and not is_cli("henasy.core.factory")
