"""Models from outside the repository's packages: ``bench --include`` / ``BENCH_INCLUDE`` files and the
``henasy_bench.models`` entry-point group (``henasy.core.plugins``, ``henasy.core.registry``), with the example of
``tests/plugin_example/`` (README, "Adding your own model")."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import henasy.core.plugins as plugins
from henasy.cli import main
from henasy.core.catalog import BENCHMARKS, MODELS
from henasy.core.factory import create_model
from henasy.core.registry import PluginError

EXAMPLE_DIR = Path(__file__).parent / "plugin_example"
EXAMPLE = EXAMPLE_DIR / "my_model.py"


@pytest.fixture(autouse=True)
def fresh_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into copies of the global registries, forgotten afterwards."""
    for registry in (MODELS, BENCHMARKS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        monkeypatch.setattr(registry, "_entry_points_read", False)
    monkeypatch.setattr(plugins, "_INCLUDED", {})
    monkeypatch.setenv(plugins.ENV_VAR, "")  # restored afterwards: --include exports what it loads
    monkeypatch.setattr(sys, "path", list(sys.path))


# ------------------------------------------------------------------------------------------- --include
def test_include_file_lists_its_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--include", str(EXAMPLE), "list", "models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "my_tiny" in x)
    assert "MyTinyModel from tests/plugin_example" in line
    assert MODELS.entry("my_tiny").origin == f"--include {EXAMPLE}"
    assert main(["list", "models"]) == 0  # included once per process: a second command sees it too


def test_include_model_evaluates_end_to_end(synth_tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "mcq.json"
    argv = ["--include", str(EXAMPLE), "eval", "my_tiny", "egomcq", "--data", str(synth_tiny)]
    argv += ["--limit", "4", "--num-workers", "0", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    text = out.read_text()
    assert "my_tiny" in text and "egomcq" in text
    assert json.loads(text)  # a records file was written


def test_include_is_exported_to_the_processes_a_command_starts() -> None:
    """Sweep jobs run in other processes (local workers, SLURM jobs inherit the environment): ``--include``
    exports what it loaded in ``BENCH_INCLUDE``, and a process that loads that variable (as ``SweepJob`` does
    on start) can build the model."""
    import os
    import subprocess

    assert main(["--include", str(EXAMPLE), "list", "models"]) == 0
    assert os.environ[plugins.ENV_VAR].split(os.pathsep) == [str(EXAMPLE.resolve())]
    code = (
        "from henasy.core.plugins import include_items, load_includes\n"
        "load_includes(include_items(), source='BENCH_INCLUDE')\n"
        "from henasy.core.factory import create_model\n"
        "print(type(create_model('my_tiny')).__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "MyTinyModel"


def test_bench_include_environment_variable(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(plugins.ENV_VAR, str(EXAMPLE))
    assert main(["list", "models"]) == 0
    assert "my_tiny" in capsys.readouterr().out


def test_include_as_module_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    monkeypatch.delitem(sys.modules, "my_model", raising=False)
    assert plugins.load_includes(["my_model"]) == ["my_model"]
    model = create_model("my_tiny", embed_dim=8)
    assert model.encode_text(model.tokenize(["cut the onion"])).shape == (1, 8)


@pytest.mark.parametrize(
    ("content", "mentions"),
    [
        (None, ["no such file"]),
        ("import torch\n\nraise RuntimeError('oops')\n", ["line 3", "RuntimeError: oops"]),
        (
            "from henasy.core.catalog import MODELS\nMODELS.add('lavila', 'x:y', 'z')\n",
            ["line 2", "already registered"],
        ),
    ],
    ids=["missing", "raises", "clashes"],
)
def test_bad_include_is_a_clear_error(content, mentions, tmp_path: Path, capsys) -> None:
    path = tmp_path / "user_code.py"
    if content is not None:
        path.write_text(content)
    assert main(["--include", str(path), "list", "models"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and all(m in err for m in mentions), err


def test_unknown_include_module_is_a_clear_error(capsys) -> None:
    assert main(["--include", "no_such_plugin_module_xyz", "list"]) == 2
    assert "no module named 'no_such_plugin_module_xyz'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- entry points
def _distribution(root: Path, name: str, entry_points: str) -> None:
    """An installed distribution as importlib.metadata sees one: a dist-info folder on sys.path."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_entry_point_model_is_listed_and_buildable(tmp_path: Path, monkeypatch, capsys) -> None:
    group = "[henasy_bench.models]\nep_tiny = tiny_nets:MyTinyModel\nep_broken = no_such_module_xyz:factory\n"
    _distribution(tmp_path, "my_plugin", group)
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))  # where the entry point's module lives
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "ep_tiny" in out and "tiny_nets:MyTinyModel (from my_plugin)" in out
    assert "tiny_nets" not in sys.modules or MODELS.entry("ep_tiny").loaded is None  # listing imports nothing
    model = create_model("ep_tiny", num_frames=3)
    assert model.num_frames == 3
    video = torch.zeros(2, 3, 3, model.image_size, model.image_size)  # (B, C, T, H, W)
    assert model.encode_video(video).shape == (2, model.embed_dim)
    with pytest.raises(PluginError) as info:
        create_model("ep_broken")
    message = str(info.value)
    assert "entry point 'ep_broken = no_such_module_xyz:factory'" in message and "my_plugin" in message
    assert "ModuleNotFoundError" in message


@pytest.mark.parametrize(
    ("line", "mentions"),
    [("bad = not_a_target", "'module:attribute'"), ("lavila = pkg.mod:other", "already registered")],
    ids=["malformed", "clash"],
)
def test_broken_entry_point_is_a_clear_error(
    line: str, mentions: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    _distribution(tmp_path, "broken_plugin", f"[henasy_bench.models]\n{line}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["list", "models"]) == 2
    err = capsys.readouterr().err
    assert f"entry point '{line}'" in err and "broken_plugin" in err and mentions in err, err


def test_entry_point_benchmark_group_is_read(tmp_path: Path, monkeypatch) -> None:
    _distribution(tmp_path, "bench_plugin", "[henasy_bench.benchmarks]\nmy_bench = json:dumps\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "my_bench" in BENCHMARKS.names() and BENCHMARKS.get("my_bench") is json.dumps
