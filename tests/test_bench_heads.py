"""EgoNLQ / EgoMQ end to end on the tiny synthetic set: cached window features, heads, official files.

Small windows / strides and few epochs keep it to seconds; the second evaluation must reuse every cached
feature file and reproduce the metrics exactly (seeded heads).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from bench_support import one_thread  # noqa: F401 (autouse fixture)

from benchmarks.context import EvalContext
from benchmarks.features import FeatureCache, WindowSpec, cache_key
from benchmarks.runner import evaluate, load_model

FAST = {"window_sec": 1.0, "stride_sec": 2.0, "epochs": 4, "hidden": 32}
FAST_MQ = {**FAST, "num_positions": 32}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """An untrained ``lavila_tiny`` (seeded), shared by the module's tests."""
    return load_model("lavila_tiny")


@pytest.fixture(scope="module")
def first_run(model: torch.nn.Module, synth_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    cache = tmp_path_factory.mktemp("bench_cache")
    recs = evaluate(
        model, ["egonlq", "egomq"], synth_tiny, model_id="lavila_tiny", num_workers=0, batch_size=32,
        progress=False, options={"cache_dir": str(cache), "egonlq": FAST, "egomq": FAST_MQ},
    )  # fmt: skip
    return {r["benchmark"]: r for r in recs}, cache


def test_nlq_writes_the_official_prediction_file_and_reports_official_metrics(
    first_run: tuple, synth_tiny: Path
) -> None:
    rec = first_run[0]["egonlq"]
    for key in ("r1_iou0.3", "r5_iou0.3", "r1_iou0.5", "r5_iou0.5", "mIoU"):
        assert 0.0 <= rec["metrics"][key] <= 100.0
    assert rec["metrics"]["r5_iou0.3"] >= rec["metrics"]["r1_iou0.3"] >= rec["metrics"]["r1_iou0.5"]
    predictions = json.loads(Path(rec["artifacts"]["predictions"]).read_text())
    assert predictions["challenge"] == "ego4d_nlq_challenge"
    results = predictions["results"]
    gt = json.loads((synth_tiny / "ego4d/nlq/nlq_val.json").read_text())
    n_queries = sum(
        len(a["language_queries"]) for v in gt["videos"] for c in v["clips"] for a in c["annotations"]
    )
    assert len(results) == rec["n_items"] == n_queries
    for r in results:
        assert {"clip_uid", "annotation_uid", "query_idx", "predicted_times"} <= set(r)
        assert len(r["predicted_times"]) == 5 and all(s <= e for s, e in r["predicted_times"])
    hits = rec["per_item"]["r1_iou0.3"]
    assert rec["metrics"]["r1_iou0.3"] == pytest.approx(100 * sum(hits) / len(hits))
    assert rec["protocol"]["text_features"].startswith("pooled")


def test_mq_writes_detection_and_retrieval_files(first_run: tuple, synth_tiny: Path) -> None:
    rec = first_run[0]["egomq"]
    for key in ("mAP", "r1_iou0.5", "r5_iou0.5", "mAP@0.1"):
        assert 0.0 <= rec["metrics"][key] <= 100.0
    assert rec["metrics"]["r5_iou0.5"] >= rec["metrics"]["r1_iou0.5"]
    gt = json.loads((synth_tiny / "ego4d/mq/clip_annotations.json").read_text())
    val = {k for k, v in gt.items() if v["subset"] == "val"}
    det = json.loads(Path(rec["artifacts"]["detections"]).read_text())
    ret = json.loads(Path(rec["artifacts"]["retrieval"]).read_text())
    assert (
        set(det["results"])
        == set(ret["results"])
        == val
        == {i.split("/")[0] for i in rec["per_item"]["instance_id"]}
    )
    for clip, rows in ret["results"].items():
        labels = {a["label"] for a in gt[clip]["annotations"]}
        assert {r["label"] for r in rows} <= labels  # retrieval keeps the clip's GT classes only
        assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    hits = rec["per_item"]["r1_iou0.5"]
    assert rec["metrics"]["r1_iou0.5"] == pytest.approx(100 * sum(hits) / len(hits))


def test_second_run_reuses_the_feature_cache(
    first_run: tuple, model: torch.nn.Module, synth_tiny: Path
) -> None:
    records, cache = first_run
    first = records["egonlq"]["protocol"]["features"]
    assert first["extracted"] > 0 and first["reused"] == 0
    files = sorted(Path(first["cache"]).glob("*.npy"))
    stamps = [f.stat().st_mtime_ns for f in files]
    (again,) = evaluate(
        model, ["egonlq"], synth_tiny, model_id="lavila_tiny", num_workers=0, progress=False,
        options={"cache_dir": str(cache), "egonlq": FAST},
    )  # fmt: skip
    second = again["protocol"]["features"]
    assert second["cache"] == first["cache"]
    assert second["extracted"] == 0 and second["reused"] == first["extracted"]
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert again["metrics"] == records["egonlq"]["metrics"]  # seeded head on the same features


def test_cache_key_changes_with_weights_window_and_checkpoint(model: torch.nn.Module, tmp_path: Path) -> None:
    def folder(m: torch.nn.Module, spec: WindowSpec, sha: str | None = None) -> Path:
        ctx = EvalContext(m, "lavila_tiny", tmp_path, checkpoint_sha256=sha, cache_dir=tmp_path)
        return FeatureCache(tmp_path, cache_key(ctx, spec)).dir

    spec = WindowSpec(1.0, 2.0)
    base = folder(model, spec)
    assert folder(model, spec) == base and json.loads((base / "meta.json").read_text())["stride_sec"] == 2.0
    assert folder(model, WindowSpec(1.0, 1.0)) != base
    assert folder(model, spec, sha="0" * 64) != base
    other = load_model("lavila_tiny")
    with torch.no_grad():
        other.logit_scale.add_(1.0)  # any change of the weights
    assert folder(other, spec) != base
