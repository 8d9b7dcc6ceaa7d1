"""Tests for ``henasy/core/checkpoints.py`` and the ``bench info`` / ``bench ckpt check`` commands."""

from __future__ import annotations

import argparse
import importlib
import json
import pathlib

import numpy as np
import pytest
import torch
from torch import nn

from henasy.cli import add_command
from henasy.core.checkpoints import (
    compare_state_dict,
    extract_state_dict,
    load_checked,
    load_checkpoint_file,
    load_state_dict_file,
)
from henasy.core.errors import BenchError, CheckpointError


class Touch:
    """A pickle payload that would create a file if it were ever unpickled by a permissive loader."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def bench(*argv: str) -> int:
    """Run one of this module's subcommands exactly as ``bench`` does (``add_command`` + dispatch)."""
    parser = argparse.ArgumentParser(prog="bench")
    subparsers = parser.add_subparsers(dest="command")
    for name in ("henasy.commands.info", "henasy.commands.ckpt"):
        add_command(subparsers, importlib.import_module(name))
    args = parser.parse_args(list(argv))
    return args.func(args)


# ------------------------------------------------------------------------------------------- reading


def test_official_checkpoint_dict_with_namespace_and_numpy_fields(tmp_path):
    path = tmp_path / "official.pth"
    state = {"module.visual.cls_token": torch.ones(1, 1, 4), "module.logit_scale": torch.tensor(2.0)}
    args = argparse.Namespace(model="CLIP_OPENAI_TIMESFORMER_BASE", clip_length=4, lr=3e-5)
    torch.save({"epoch": 5, "state_dict": state, "args": args, "best_acc1": np.float64(0.5)}, path)
    ckpt = load_checkpoint_file(path)
    assert ckpt["args"].model == "CLIP_OPENAI_TIMESFORMER_BASE" and ckpt["epoch"] == 5
    assert list(load_state_dict_file(path)) == ["visual.cls_token", "logit_scale"]  # module. stripped


def test_arbitrary_pickled_objects_are_refused_without_running_them(tmp_path):
    payload, marker = tmp_path / "evil.pth", tmp_path / "pwned"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": Touch(marker)}, payload)
    with pytest.raises(CheckpointError, match="refused to unpickle") as err:
        load_state_dict_file(payload)
    assert "pathlib.PosixPath" in str(err.value) and str(payload) in str(err.value)
    assert not marker.exists()


def test_missing_and_corrupt_files_name_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="nothere.pth: checkpoint file not found"):
        load_state_dict_file(tmp_path / "nothere.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a zip archive nor a pickle")
    with pytest.raises(CheckpointError, match="corrupt.pth"):
        load_state_dict_file(corrupt)


def test_extract_state_dict_accepts_bare_and_wrapped_mappings():
    tensors = {"module.a": torch.zeros(1), "b": torch.ones(2)}
    assert list(extract_state_dict(tensors)) == ["a", "b"]
    assert list(extract_state_dict({"model": tensors, "epoch": 1})) == ["a", "b"]
    with pytest.raises(CheckpointError, match="not tensors: a"):
        extract_state_dict({"state_dict": {"a": [1, 2], "b": torch.ones(1)}})
    with pytest.raises(CheckpointError, match="expected a mapping"):
        extract_state_dict([torch.ones(1)])


# ------------------------------------------------------------------------------------------ comparing


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.scale = nn.Parameter(torch.ones([]), requires_grad=False)


def test_compare_lists_missing_unexpected_and_shape_mismatches():
    report = compare_state_dict(
        {"fc.weight": (2, 3), "fc.bias": (2,), "scale": ()},
        {"fc.weight": torch.zeros(3, 2), "scale": torch.zeros([]), "head.weight": torch.zeros(1)},
    )
    assert report.missing == ["fc.bias"] and report.unexpected == ["head.weight"]
    assert report.mismatched == [("fc.weight", (2, 3), (3, 2))] and not report.ok


def test_strict_load_raises_listing_first_keys_and_loads_nothing():
    model = Small()
    before = model.fc.weight.detach().clone()
    bad = {f"extra.{i}": torch.zeros(1) for i in range(12)} | {"fc.weight": torch.ones(2, 3)}
    with pytest.raises(CheckpointError) as err:
        load_checked(model, bad, source="ckpt.pth")
    message = str(err.value)
    assert "ckpt.pth" in message and "missing keys (2): scale, fc.bias" in message
    assert "unexpected keys (12): extra.0" in message and "(+2 more)" in message
    assert torch.equal(model.fc.weight, before)


def test_non_strict_load_copies_matching_keys_only():
    model = Small()
    report = load_checked(model, {"fc.weight": torch.ones(2, 3), "fc.bias": torch.ones(5)}, strict=False)
    assert torch.equal(model.fc.weight, torch.ones(2, 3)) and report.loaded == 1
    assert report.mismatched == [("fc.bias", (2,), (5,))] and report.missing == ["scale"]


def test_meta_model_gets_tensors_assigned_with_dtype_and_frozen_flags_kept():
    with torch.device("meta"):
        model = Small()
    state = {
        "fc.weight": torch.ones(2, 3, dtype=torch.float16),
        "fc.bias": torch.zeros(2),
        "scale": torch.tensor(3.0),
    }
    report = load_checked(model, state)
    assert report.ok and not model.fc.weight.is_meta
    assert model.fc.weight.dtype == torch.float32 and model.fc.weight.requires_grad
    assert not model.scale.requires_grad and model.scale.item() == 3.0


# ----------------------------------------------------------------------------------------- commands


def test_bench_info_paper_preset_counts_177_7_million(capsys):
    assert bench("info", "lavila", "--format", "json") == 0
    info = json.loads(capsys.readouterr().out)
    assert abs(info["params_total"] / 1e6 - 177.7) <= 0.5
    assert info["params_trainable"] == info["params_total"] - 1  # the frozen logit_scale
    assert sum(info["modules"].values()) == info["params_total"]
    assert set(info["modules"]) >= {"visual", "transformer", "token_embedding", "image_projection"}


def test_bench_info_frames_override_and_text_output(capsys):
    assert bench("info", "lavila", "--frames", "16", "--format", "json") == 0
    sixteen = json.loads(capsys.readouterr().out)
    assert bench("info", "lavila", "--format", "json") == 0
    four = json.loads(capsys.readouterr().out)
    assert sixteen["params_total"] - four["params_total"] == 12 * 768  # temporal_embed rows only
    assert bench("info", "lavila_tiny") == 0
    text = capsys.readouterr().out
    assert "total" in text and "visual" in text and " M " in text
    with pytest.raises(BenchError, match="Did you mean 'lavila'"):
        bench("info", "lavla")


@pytest.fixture()
def tiny_checkpoint(tmp_path):
    from baselines.lavila import lavila_tiny

    torch.manual_seed(0)
    state = lavila_tiny().state_dict()
    path = tmp_path / "tiny.pth"
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    return path, state


def test_bench_ckpt_check_matching_file_exits_zero(tiny_checkpoint, capsys):
    path, _ = tiny_checkpoint
    assert bench("ckpt", "check", "lavila_tiny", str(path)) == 0
    out = capsys.readouterr().out
    assert "missing keys (0)" in out and "unexpected keys (0)" in out and "OK" in out
    assert bench("ckpt", "check", "lavila_tiny", str(path), "--frames", "16") == 0  # inflated 4 → 16
    assert "4 → 16 frames (bilinear inflation)" in capsys.readouterr().out


def test_bench_ckpt_check_mismatched_file_exits_one(tiny_checkpoint, tmp_path, capsys):
    _, state = tiny_checkpoint
    state = dict(state)
    del state["ln_final.bias"]
    state["head.weight"] = torch.zeros(3)
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, bad)
    assert bench("ckpt", "check", "lavila_tiny", str(bad), "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["missing"] == ["ln_final.bias"] and report["unexpected"] == ["head.weight"]
    with pytest.raises(CheckpointError, match="not found"):
        bench("ckpt", "check", "lavila_tiny", str(tmp_path / "absent.pth"))
