"""Table 5 cost measurements: FLOPs on the meta device against a hand-computed model, latency summaries,
peak-memory probes, ``bench compare --cost`` on the tiny presets and ``bench table --id 5`` from a cost file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from henasy.cli import main
from henasy.core.catalog import MODELS
from reports.cost import PeakMemory, latency_summary, measure_model, meta_costs, time_runs


class HandModel(nn.Module):
    """A model whose FLOPs are easy by hand: one Linear on the flattened clip, one on the token embeddings."""

    autoregressive = True
    num_frames, image_size, embed_dim = 2, 4, 8
    pixel_mean, pixel_std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.video = nn.Linear(3 * 2 * 4 * 4, 8)  # 96 → 8
        self.embed = nn.Embedding(10, 6)
        self.text = nn.Linear(6, 8)
        self.embed.requires_grad_(False)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return torch.zeros(len(texts), 5, dtype=torch.long)  # (B, L=5)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        return self.video(video.flatten(1))  # (B, 96) @ (96, 8)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text(self.embed(tokens)).mean(dim=1)  # (B, 5, 6) @ (6, 8)

    def training_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        loss = (self.encode_video(batch["video"]) * self.encode_text(batch["text"])).sum()
        return {"loss": loss}


@pytest.fixture
def hand_model(monkeypatch: pytest.MonkeyPatch) -> str:
    real_get = MODELS.get
    monkeypatch.setattr(MODELS, "get", lambda name: HandModel if name == "hand" else real_get(name))
    monkeypatch.setattr(MODELS, "entry", lambda name: None)
    return "hand"


def test_meta_flops_and_params_match_hand_counts(hand_model: str) -> None:
    costs = meta_costs(hand_model)
    assert costs["flops_video"] == 2 * 96 * 8  # one (1, 96) × (96, 8) matmul, a multiply-add = 2 FLOPs
    assert costs["flops_text"] == 2 * 5 * 6 * 8  # (5, 6) × (6, 8); the embedding lookup is free
    assert costs["gflops"] == pytest.approx(2 * 96 * 8 / 1e9)
    assert costs["params_total_m"] * 1e6 == 96 * 8 + 8 + 10 * 6 + 6 * 8 + 8
    assert costs["params_trainable_m"] * 1e6 == 96 * 8 + 8 + 6 * 8 + 8
    assert costs["autoregressive"] is True and costs["input"] == [1, 3, 2, 4, 4]


def test_measure_model_on_cpu_reports_every_quantity(hand_model: str) -> None:
    result = measure_model(hand_model, device="cpu", runs=3, warmup=1)
    assert (
        result["latency_runs"] == 3
        and result["latency_min_s"] <= result["latency_s"] <= result["latency_max_s"]
    )
    assert result["memory_kind"] == "process_rss_peak"
    assert result["infer_mem_gb"] > 0 and result["train_mem_gb"] > 0 and result["baseline_rss_gb"] > 0
    assert (result["device"], result["dtype"], result["torch"]) == ("cpu", "float32", torch.__version__)


def test_latency_summary_by_hand() -> None:
    summary = latency_summary([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (summary["latency_s"], summary["latency_q1_s"], summary["latency_q3_s"]) == (3.0, 2.0, 4.0)
    assert (summary["latency_min_s"], summary["latency_max_s"], summary["latency_runs"]) == (1.0, 5.0, 5)


def test_time_runs_calls_warmup_then_runs() -> None:
    calls, syncs = [], []
    times = time_runs(lambda: calls.append(1), runs=4, warmup=2, sync=lambda: syncs.append(1))
    assert len(calls) == 6 and len(times) == 4 and len(syncs) == 1 + 2 * 4


def test_cpu_peak_memory_sees_an_allocation() -> None:
    memory = PeakMemory("cpu")
    memory.reset()
    before = memory.current_gb()
    block = np.ones(256 * 1024 * 1024 // 8)  # 256 MiB, written so the pages are resident
    peak = memory.peak_gb()
    del block
    assert memory.resettable
    assert peak - before >= 0.2


def test_compare_cost_tiny_presets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save = tmp_path / "cost.json"
    args = [
        "compare",
        "henasy_tiny",
        "helpinghands_tiny",
        "--cost",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--save",
        str(save),
    ]
    assert main([*args, "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in results] == ["henasy_tiny", "helpinghands_tiny"]
    for r in results:
        for key in ("params_total_m", "gflops", "latency_s", "infer_mem_gb", "train_mem_gb"):
            assert r[key] > 0, key
        assert r["paper"] is None  # tiny presets are not in Table 5
    assert results[1]["autoregressive"] is False  # HelpingHands' class attribute
    assert json.loads(save.read_text()) == results


def test_table5_from_a_cost_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = [
        {
            "model": "helpinghands",
            "device": "cpu",
            "dtype": "float32",
            "torch": "x",
            "memory_kind": "process_rss_peak",
            "autoregressive": False,
            "gflops": 190.9,
            "params_total_m": 216.5,
            "train_mem_gb": 2.0,
            "infer_mem_gb": 1.7,
            "latency_s": 5.1,
        },
        {
            "model": "henasy",
            "device": "cpu",
            "dtype": "float32",
            "torch": "x",
            "memory_kind": "process_rss_peak",
            "autoregressive": None,
            "gflops": 223.0,
            "params_total_m": 279.5,
            "train_mem_gb": 3.1,
            "infer_mem_gb": 2.0,
            "latency_s": 7.5,
        },
    ]
    path = tmp_path / "cost.json"
    path.write_text(json.dumps(entries))
    assert main(["table", "--id", "5", "--cost-file", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    hh, ours = data["rows"]
    assert hh["paper"] == [True, 530.0, 216.0, 38.0, 4.4, 2.87]
    assert hh["measured"] == [False, 190.9, 216.5, 2.0, 1.7, 5.1]
    assert hh["diff"][2] == pytest.approx(0.5) and hh["diff"][0] is None
    assert ours["status"][0] == "not declared" and ours["diff"][2] == pytest.approx(279.5 - 291)
    assert any("marks it autoregressive" in n for n in data["notes"])
    assert any("process RSS" in n for n in data["notes"])


def _cost_result(model: str, paper: dict | None, autoregressive: bool | None) -> dict:
    return {
        "model": model,
        "device": "cpu",
        "device_name": "Test CPU 3000",
        "dtype": "float32",
        "torch": "2.x",
        "cuda": None,
        "threads": 2,
        "input": [1, 3, 4, 224, 224],
        "params_total_m": 200.0,
        "params_trainable_m": 20.0,
        "gflops": 500.0,
        "gflops_text": 3.0,
        "latency_s": 2.5,
        "latency_q1_s": 2.4,
        "latency_q3_s": 2.6,
        "latency_runs": 3,
        "warmup": 1,
        "infer_mem_gb": 1.5,
        "train_mem_gb": 3.0,
        "train_batch": 1,
        "memory_kind": "process_rss_peak",
        "baseline_rss_gb": 0.4,
        "peak_reset": True,
        "flop_counter": "FlopCounterMode",
        "autoregressive": autoregressive,
        "autoregressive_paper": None if paper is None else paper.get("autoregressive"),
        "paper": paper,
        "paper_device": None if paper is None else "A6000",
    }


def test_cost_table_names_devices_and_keeps_paper_figures_apart() -> None:
    from reports.render_compare import cost_markdown

    ours = {"row": "Ours", "latency_s": 1.02, "autoregressive": False}
    theirs = {"row": "HelpingHands", "latency_s": 2.87, "autoregressive": True}
    md = cost_markdown([_cost_result("henasy", ours, False), _cost_result("helpinghands", theirs, False)])
    header = md.splitlines()[0].split(" | ")
    assert header[1:3] == [
        "henasy: measured on cpu (Test CPU 3000)",
        "helpinghands: measured on cpu (Test CPU 3000)",
    ]
    assert header[4:6] == ["paper Table 5 (A6000): Ours", "paper Table 5 (A6000): HelpingHands"]
    latency = next(x for x in md.splitlines() if x.startswith("| Inference time")).split(" | ")
    assert latency[1].startswith("2.500 on cpu") and latency[3] == "1.00"  # measured ratio 2.5 / 2.5
    assert latency[4:6] == ["1.02 on A6000", "2.87 on A6000"] and latency[6].startswith("0.36")
    auto = next(x for x in md.splitlines() if x.startswith("| Autoregressive")).split(" | ")
    assert auto[1] == "no (declared by the model class)" and auto[5] == "yes (the paper's claim)"
    assert "model attribute" not in md and "not comparable" in md
    md = cost_markdown([_cost_result("henasy_tiny", None, None)])
    assert "not declared by the model class" in md and "(not in Table 5)" in md
    assert "paper Table 5 (A6000): henasy_tiny not listed" in md.splitlines()[0]
