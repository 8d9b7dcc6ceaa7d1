"""The prepared benchmark scripts of issue #17 run end to end on tiny inputs: ``scripts/bench_gpu.py`` in its
CPU dry-run mode (tiny preset, one step) and ``scripts/bench_loader.py`` on the tiny synthetic set."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.bench_support import one_thread  # noqa: F401  (autouse: one torch thread)

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name, tflops",
    [
        ("NVIDIA H100 80GB HBM3", 989.4),  # SXM
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA RTX A6000", 154.8),
        ("Tesla T4", None),
    ],
)
def test_gpu_peak_by_device_name(name, tflops):
    assert _script("bench_gpu").peak_tflops(name) == tflops


def test_gpu_script_dry_run(tmp_path, capsys):
    """Eager inference and training rows of the tiny HENASY (one step each), with a 1-TFLOPS peak."""
    from reports.cost import meta_costs

    bench = _script("bench_gpu")
    out = tmp_path / "gpu.json"
    args = ["--dry-run", "--models", "henasy_tiny", "--compile", "off", "--peak-tflops", "1"]
    assert bench.main([*args, "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    rows = printed["rows"]
    assert [(r["phase"], r["compiled"]) for r in rows] == [("inference", False), ("training", False)]
    cost = meta_costs("henasy_tiny")
    for r in rows:
        assert r["clips_per_s"] > 0 and r["batch"] == 2 and r["step_s"] > 0
        flops = (
            cost["flops_video"]
            if r["phase"] == "inference"
            else 3 * (cost["flops_video"] + cost["flops_text"])
        )
        assert r["gflops_per_clip"] == pytest.approx(flops / 1e9)
        assert r["pct_of_peak"] == pytest.approx(100 * r["clips_per_s"] * flops / 1e12)  # peak = 1 TFLOPS
    table = bench.markdown(printed)
    assert table.count("| henasy_tiny |") == 2 and "(approx.)" in table


def test_gpu_script_compiled_inference(capsys):
    """The torch.compile path (eager backend: traced by dynamo, no code generation) of the tiny LaViLa."""
    bench = _script("bench_gpu")
    args = ["--dry-run", "--models", "lavila_tiny", "--compile", "on", "--compile-backend", "eager"]
    assert bench.main([*args, "--phases", "inference", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["compiled"] and row["phase"] == "inference" and row["clips_per_s"] > 0
    assert row["pct_of_peak"] is None  # no peak known for the CPU


def test_loader_script_matches_naive_baseline(synth_tiny):
    bench = _script("bench_loader")
    clips = bench.read_clips(synth_tiny, 16, seed=0)
    result = bench.compare(synth_tiny, clips, rounds=2, frames=4, size=32)
    assert result["max_abs_diff"] == 0.0 and result["clips"] == 16 and len(result["ratios"]) == 2
    assert result["frame_size"] == [128, 96] and result["loader_clips_per_s"] > 0


@pytest.mark.parametrize("layout, chunk_sec", [("lavila", 300), ("egovlp", 600)])
def test_real_video_size_spec(layout, chunk_sec):
    """``--video-size real``: EK100 video_ht256px geometry at 30 fps with the layout's Ego4D chunk length;
    the default leaves the size spec untouched."""
    from henasy.synth.sizes import SIZES, with_video_size

    real = with_video_size(SIZES["tiny"], "real", layout)
    assert (real.width, real.height, real.fps, real.chunk_sec) == (456, 256, 30, chunk_sec)
    assert real.ego_train == SIZES["tiny"].ego_train
    assert with_video_size(SIZES["tiny"], "synth", layout) is SIZES["tiny"]
    with pytest.raises(ValueError, match="video size"):
        with_video_size(SIZES["tiny"], "4k", layout)
