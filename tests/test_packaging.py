"""Packaging: what the wheel holds, what it requires, the commit it records, and shadowed top-level packages.

The wheel test copies the source tree into a temporary git repository, plants the user output a checkout
collects (``reports/out/``, run folders, ``mlflow.db`` and its lock, JSON next to package files), builds the
wheel with the setuptools backend (no network, no build isolation; ``setuptools`` comes with the ``dev``
extra) and lists it: package code and the YAML files the code reads, nothing else; ``pytest`` only under
the ``dev`` extra; ``henasy/_build_info.py`` naming the commit it was built from. The build-info tests run
``henasy.core.buildinfo`` from an unpacked layout outside any checkout. The shadowing tests run ``bench``
from a folder holding same-named packages (``henasy/core/shadowing.py``).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from henasy import __version__
from henasy.core import shadowing

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("henasy", "baselines", "benchmarks", "sweeps", "reports")
BENCH = Path(sys.executable).with_name("bench")  # the console script pip generated
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def _copy_source(dest: Path) -> None:
    """The files a build reads: the packages (without caches), pyproject.toml, setup.py, README.md."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "out", "*.egg-info")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, dest / name)


def _plant_outputs(src: Path) -> list[str]:
    """User output where a checkout collects it (paths relative to ``src``)."""
    planted = [
        "reports/out/cost.json",
        "reports/out/table3.tex",
        "reports/out/ablation.png",
        "reports/results.json",
        "reports/tables/notes.json",
        "sweeps/ablations/runs/r1/result.json",
        "benchmarks/eval/egomcq.json",
        "henasy/mlflow.db",
        "runs/ablations/losses/smoke/r1/result.json",
        "mlflow.db",
        "mlflow.db.lock",
    ]
    for rel in planted:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("{}\n")
    return planted


def _build_wheel(src: Path, out: Path) -> Path:
    code = "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=src, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[str]]:
    """(wheel, commit of the temporary repository it was built from, planted output paths)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    _copy_source(src)
    subprocess.run(["git", "init", "-q", str(src)], check=True, timeout=30)
    subprocess.run([*GIT, "-C", str(src), "add", "-A"], check=True, timeout=30)
    subprocess.run([*GIT, "-C", str(src), "commit", "-q", "-m", "snapshot"], check=True, timeout=30)
    head = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    planted = _plant_outputs(src)  # untracked, as user output is
    return _build_wheel(src, base / "dist"), head, planted


def test_wheel_holds_package_code_and_its_yaml_only(wheel: tuple[Path, str, list[str]]) -> None:
    path, _, planted = wheel
    names = zipfile.ZipFile(path).namelist()
    files = [n for n in names if ".dist-info/" not in n]
    assert not [n for n in files if "/out/" in n or n.endswith((".json", ".db", ".lock", ".png", ".tex"))]
    assert not set(planted) & set(files)
    assert not [n for n in files if n.split("/")[0] not in PACKAGES]  # no runs/, tests/, scripts/
    # every tracked module and data file the code reads is there (namespaces = false loses no package)
    wanted = {
        str(p.relative_to(ROOT))
        for package in PACKAGES
        for p in (ROOT / package).rglob("*")
        if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts and "out" not in p.parts
    }
    assert wanted - set(files) == set()
    assert set(files) - wanted == {"henasy/_build_info.py"}


def test_wheel_requires_no_test_tools_and_pins_no_exact_mlflow(wheel: tuple[Path, str, list[str]]) -> None:
    path, _, _ = wheel
    with zipfile.ZipFile(path) as archive:
        meta_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(archive.read(meta_name).decode())
    requires = [Requirement(text) for text in meta.get_all("Requires-Dist") or []]
    unconditional = {r.name.lower(): r for r in requires if r.marker is None}
    dev = {r.name.lower() for r in requires if r.marker is not None and r.marker.evaluate({"extra": "dev"})}
    assert {"torch", "mlflow", "pyyaml", "matplotlib"} <= set(unconditional)
    assert not {"pytest", "ruff", "setuptools"} & set(unconditional)
    assert {"pytest", "ruff", "setuptools"} <= dev
    assert not [s for s in unconditional["mlflow"].specifier if s.operator in ("==", "===")]
    assert meta["Version"] == __version__


def test_wheel_records_the_commit_it_was_built_from(wheel: tuple[Path, str, list[str]]) -> None:
    path, head, _ = wheel
    text = zipfile.ZipFile(path).read("henasy/_build_info.py").decode()
    tree = ast.parse(text)
    values = {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)}
    assert values["GIT_COMMIT"] == head  # clean: the planted output is untracked
    assert values["WHY_NO_COMMIT"] == ""


def test_no_library_module_imports_test_tools() -> None:
    offenders = []
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [
                    f"{file.relative_to(ROOT)}: {n}"
                    for n in names
                    if n.split(".")[0] in ("pytest", "_pytest")
                ]
    assert not offenders
    # the documented installs take the dev extra that holds pytest
    assert '-e ".[dev]"' in (ROOT / ".ci" / "run").read_text()
    assert '.[dev]"' in (ROOT / "README.md").read_text()


# ------------------------------------------------------------------------------------------- build info
def _installed_layout(site: Path, build_info: str | None) -> None:
    """``site/henasy/core/buildinfo.py`` as a wheel installs it, with ``_build_info.py`` when given."""
    (site / "henasy" / "core").mkdir(parents=True)
    (site / "henasy" / "__init__.py").write_text(f"__version__ = {__version__!r}\n")
    (site / "henasy" / "core" / "__init__.py").write_text("")
    shutil.copy2(ROOT / "henasy" / "core" / "buildinfo.py", site / "henasy" / "core" / "buildinfo.py")
    if build_info is not None:
        (site / "henasy" / "_build_info.py").write_text(build_info)


def _commit_seen_from(site: Path, cwd: Path) -> str:
    code = "from henasy.core.buildinfo import git_commit; print(git_commit())"
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_installed_code_reports_the_recorded_commit_or_why_there_is_none(tmp_path: Path) -> None:
    from henasy.core.buildinfo import build_info_source, write_build_info

    # a virtual environment inside another git repository reports the wheel's commit, not that repository's
    outer = tmp_path / "project"
    site = outer / "venv" / "site-packages"
    _installed_layout(site, build_info_source("0123abcd", ""))
    subprocess.run(["git", "init", "-q", str(outer)], check=True, timeout=30)
    subprocess.run(
        [*GIT, "-C", str(outer), "commit", "-q", "--allow-empty", "-m", "x"], check=True, timeout=30
    )
    assert _commit_seen_from(site, tmp_path) == "0123abcd"
    # a wheel built outside a git checkout says so
    plain = tmp_path / "plain"
    _installed_layout(plain, None)
    write_build_info(tmp_path / "no-git-source", plain / "henasy")
    seen = _commit_seen_from(plain, tmp_path)
    assert seen.startswith("unknown (installed from a wheel built outside a git checkout: ")
    assert "no-git-source is not a git checkout" in seen
    # installed without a build step (no _build_info.py): unknown, and why
    bare = tmp_path / "bare"
    _installed_layout(bare, None)
    seen = _commit_seen_from(bare, tmp_path)
    assert seen.startswith("unknown (") and "records no build commit" in seen


# ------------------------------------------------------------------------------------------- shadowing
def _user_folder(where: Path) -> Path:
    """A user's folder holding packages named like henasy-bench's: one regular, one namespace."""
    (where / "benchmarks").mkdir(parents=True)
    (where / "benchmarks" / "__init__.py").write_text("raise ImportError('the user benchmarks package')\n")
    (where / "reports").mkdir()  # output folder without __init__.py
    return where


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_shadowed_lists_same_named_packages_searched_first(tmp_path: Path) -> None:
    assert shadowing.shadowed() == []  # this process: the installation's packages
    assert shadowing.shadowed([tmp_path]) == []  # an empty folder first shadows nothing
    _user_folder(tmp_path)
    found = {s.name: s for s in shadowing.shadowed([tmp_path])}
    assert found["benchmarks"].found == tmp_path / "benchmarks"
    assert found["benchmarks"].expected == ROOT / "benchmarks"
    assert "henasy" not in found and "sweeps" not in found


def test_bench_console_script_ignores_a_users_benchmarks_folder(tmp_path: Path) -> None:
    cwd = _user_folder(tmp_path / "work")
    done = _run([str(BENCH), "list", "benchmarks"], cwd)
    assert done.returncode == 0, done.stderr
    assert "egomcq" in done.stdout


def test_python_m_bench_names_the_shadowing_folder(tmp_path: Path) -> None:
    cwd = _user_folder(tmp_path / "work")
    done = _run([sys.executable, "-m", "henasy.cli", "list", "benchmarks"], cwd)
    assert done.returncode == 2
    assert (
        f"{cwd / 'benchmarks'} would be imported instead of henasy-bench's package 'benchmarks'"
        in done.stderr
    )
    assert "Use the `bench` command" in done.stderr and "Traceback" not in done.stderr


def test_sweep_refuses_to_start_jobs_that_would_import_a_users_package(tmp_path: Path) -> None:
    cwd = _user_folder(tmp_path / "work")
    done = _run([str(BENCH), "sweep", "ablations/losses", "--dry-run"], cwd)
    assert done.returncode == 2
    assert "the sweep's jobs start with the working directory first on sys.path" in done.stderr
    assert str(cwd / "benchmarks") in done.stderr
    assert not (cwd / "runs").exists()  # nothing planned or written
