"""Zero-shot protocols end to end on the tiny synthetic set: EgoMCQ, EK100-MIR, EK100-CLS, EGTEA.

An untrained ``lavila_tiny`` is enough to check the records: contract keys, split sizes, partial flags,
metric ranges, per-item outcomes that reproduce the metrics, JSON round trip; and the protocol details
that only show on real files (MIR sentence-column ordering, EGTEA zero padding, HelpingHands' 3 splits).
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from bench_support import one_thread  # noqa: F401 (autouse fixture)

from benchmarks.egtea import EgteaViews
from benchmarks.record import write_records
from benchmarks.runner import evaluate, load_model
from henasy.core.errors import BenchError
from henasy.data.egtea import load_action_index, load_split
from henasy.data.layout import DatasetLayout
from henasy.data.video import ClipLoader, SingleFileSource

RECORD_KEYS = {
    "benchmark",
    "protocol",
    "split",
    "metrics",
    "n_items",
    "partial",
    "model",
    "wall_time_s",
    "data_root",
    "per_item",
}
FAST_EGTEA = {"num_clips": 2, "num_crops": 1}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """An untrained ``lavila_tiny`` (seeded), shared by the module's tests."""
    return load_model("lavila_tiny")


@pytest.fixture(scope="module")
def records(model: torch.nn.Module, synth_tiny: Path) -> dict[str, dict]:
    recs = evaluate(
        model,
        ["egomcq", "ek100_mir", "ek100_cls", "egtea"],
        synth_tiny,
        model_id="lavila_tiny",
        num_workers=0,
        batch_size=32,
        progress=False,
        options={"egtea": FAST_EGTEA},
    )
    return {r["benchmark"]: r for r in recs}


def test_records_follow_the_contract(records: dict[str, dict], synth_tiny: Path, tmp_path: Path) -> None:
    assert list(records) == ["egomcq", "ek100_mir", "ek100_cls", "egtea"]
    for name, rec in records.items():
        assert RECORD_KEYS <= set(rec), name
        assert rec["protocol"]["version"].startswith(f"{name}/")
        assert rec["partial"] is False
        assert rec["model"] == {"id": "lavila_tiny", "checkpoint": None, "checkpoint_sha256": None}
        assert Path(rec["data_root"]) == synth_tiny.resolve()
        for metric, value in rec["metrics"].items():
            assert 0.0 <= value <= 100.0, (name, metric, value)
    path = write_records(tmp_path / "out.json", list(records.values()))
    assert [r["benchmark"] for r in json.loads(path.read_text())] == list(records)


def test_egomcq_per_item_reproduces_the_type_accuracies(records: dict[str, dict], synth_tiny: Path) -> None:
    rec = records["egomcq"]
    items = json.loads(DatasetLayout(synth_tiny).egomcq_json.read_text())
    assert rec["n_items"] == len(items) == len(rec["per_item"]["correct"])
    correct = np.array(rec["per_item"]["correct"])
    types = np.array(rec["per_item"]["type"])
    assert types.tolist() == [items[k]["types"] for k in rec["per_item"]["item_id"]]
    assert rec["metrics"]["inter"] == pytest.approx(100 * correct[types == 1].mean())
    assert rec["metrics"]["intra"] == pytest.approx(100 * correct[types == 2].mean())
    assert rec["protocol"]["similarity"].startswith("cosine")


def test_ek100_mir_reports_both_directions_and_their_average(records: dict[str, dict]) -> None:
    m = records["ek100_mir"]["metrics"]
    assert m["mAP_avg"] == pytest.approx((m["mAP_v2t"] + m["mAP_t2v"]) / 2)
    assert m["nDCG_avg"] == pytest.approx((m["nDCG_v2t"] + m["nDCG_t2v"]) / 2)
    per = records["ek100_mir"]["per_item"]
    assert m["mAP_v2t"] == pytest.approx(100 * np.mean(per["AP_v2t"]))


def test_ek100_mir_columns_follow_the_sentence_csv(
    records: dict[str, dict], model: torch.nn.Module, synth_tiny: Path, tmp_path: Path
) -> None:
    """Reverse the sentence csv (and the relevancy columns): every caption keeps its own column, so the
    per-caption scores are permuted and the averages unchanged."""
    src = DatasetLayout(synth_tiny)
    dst = DatasetLayout(tmp_path / "root")
    dst.ek100_relevancy_pkl.parent.mkdir(parents=True)
    shutil.copy(src.ek100_retrieval_csv, dst.ek100_retrieval_csv)
    (dst.ek100 / "video_ht256px").symlink_to(src.ek100_videos)
    header, *lines = src.ek100_retrieval_sentence_csv.read_text().splitlines()
    dst.ek100_retrieval_sentence_csv.write_text("\n".join([header, *lines[::-1]]) + "\n")
    with open(src.ek100_relevancy_pkl, "rb") as f:
        relevancy = pickle.load(f)
    with open(dst.ek100_relevancy_pkl, "wb") as f:
        pickle.dump(np.ascontiguousarray(relevancy[:, ::-1]), f)
    (rec,) = evaluate(model, ["ek100_mir"], dst.root, model_id="lavila_tiny", num_workers=0, progress=False)
    base = records["ek100_mir"]
    assert rec["per_item"]["sentence_id"] == base["per_item"]["sentence_id"][::-1]
    np.testing.assert_allclose(rec["per_item"]["AP_t2v"], base["per_item"]["AP_t2v"][::-1])
    for key, value in base["metrics"].items():
        assert rec["metrics"][key] == pytest.approx(value), key


def test_ek100_cls_per_item_and_class_set(records: dict[str, dict]) -> None:
    rec = records["ek100_cls"]
    per = rec["per_item"]
    assert rec["metrics"]["top1"] == pytest.approx(100 * np.mean(per["correct_top1"]))
    assert rec["metrics"]["top5"] == pytest.approx(100 * np.mean(per["correct_top5"]))
    assert rec["metrics"]["top5"] >= rec["metrics"]["top1"]
    assert rec["protocol"]["template"] == "none" and rec["protocol"]["num_classes"] > 5


def test_egtea_records_views_and_matches_per_item(records: dict[str, dict]) -> None:
    rec = records["egtea"]
    p = rec["protocol"]
    assert (p["protocol"], p["splits"], p["num_clips"], p["num_crops"]) == ("lavila", ["test_split1"], 2, 1)
    assert p["view_pooling"] == "max" and p["clip_stride"] == 2
    per = rec["per_item"]["test_split1"]
    assert rec["metrics"]["top1"] == pytest.approx(100 * np.mean(per["correct"]))


def test_egtea_helpinghands_protocol_averages_three_splits(model: torch.nn.Module, synth_tiny: Path) -> None:
    (rec,) = evaluate(
        model, ["egtea"], synth_tiny, model_id="lavila_tiny", limit=2, num_workers=0, progress=False,
        options={"egtea": {"protocol": "helpinghands", "num_clips": 2}},
    )  # fmt: skip
    assert rec["partial"] is True and rec["n_items"] == 6
    assert rec["protocol"]["splits"] == ["test_split1", "test_split2", "test_split3"]
    assert rec["protocol"]["num_crops"] == 1
    m = rec["metrics"]
    splits = [m[f"top1_test_split{i}"] for i in (1, 2, 3)]
    assert m["top1"] == pytest.approx(np.mean(splits))


def test_egtea_short_videos_are_zero_padded_before_normalisation(
    model: torch.nn.Module, synth_tiny: Path
) -> None:
    layout = DatasetLayout(synth_tiny)
    clips = load_split(layout.egtea_split("test_split1"), load_action_index(layout.egtea_action_idx))[:1]
    loader = ClipLoader.for_model(model)
    views = EgteaViews(clips, SingleFileSource(layout.egtea_videos), loader, 4, 100, num_clips=2, num_crops=3)
    video = views[0]["video"]  # stride 100: only frame 0 is real
    assert video.shape == (6, 3, 4, model.image_size, model.image_size)
    black = (0 - torch.tensor(model.pixel_mean)) / torch.tensor(model.pixel_std)  # (3,)
    torch.testing.assert_close(video[:, :, 1:].amax(dim=(2, 3, 4)), black.expand(6, 3))
    assert not torch.allclose(video[:, :, 0].amax(dim=(2, 3)), black.expand(6, 3))


def test_limit_marks_the_record_partial(model: torch.nn.Module, synth_tiny: Path) -> None:
    (rec,) = evaluate(model, ["egomcq"], synth_tiny, model_id="m", limit=3, num_workers=0, progress=False)
    assert rec["partial"] is True and rec["n_items"] == 3 and len(rec["per_item"]["correct"]) == 3


def test_bad_arguments_fail_before_any_video_is_read(model: torch.nn.Module, synth_tiny: Path) -> None:
    with pytest.raises(BenchError, match="unknown benchmark 'egomqc'"):
        evaluate(model, ["egomqc"], synth_tiny, model_id="m")
    with pytest.raises(BenchError, match="unknown option"):
        evaluate(model, ["egtea"], synth_tiny, model_id="m", options={"egtea": {"clips": 3}})
    with pytest.raises(BenchError, match="not among the evaluated"):
        evaluate(model, ["egomcq"], synth_tiny, model_id="m", options={"egtea": {"num_clips": 3}})
    with pytest.raises(BenchError, match="not a folder"):
        evaluate(model, ["egomcq"], synth_tiny / "missing", model_id="m")
    with pytest.raises(BenchError, match="limit"):
        evaluate(model, ["egomcq"], synth_tiny, model_id="m", limit=0)
