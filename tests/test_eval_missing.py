"""``bench eval --on-missing error|skip``: a missing or unreadable video stops the run naming it and pointing to
``bench data check`` (default), or its items are skipped, counted and the record marked partial (issue 14,
item 4); records written before these fields existed still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bench_support import one_thread  # noqa: F401 (autouse fixture)

from henasy.cli import main
from henasy.core.records import BenchmarkResult, load_record
from henasy.data.egomcq import load_egomcq
from henasy.data.ek100 import ek100_video_relpath, load_epic_annotations
from henasy.data.layout import DatasetLayout

GONE = ("P01_02", "P01_99")  # rows of the first video re-pointed at a missing one


def _eval(*argv: str) -> int:
    return main(["eval", *argv, "--num-workers", "0", "--no-progress"])


@pytest.fixture
def partial_root(synth_tiny: Path, tmp_path: Path) -> Path:
    """A copy of the tiny synthetic root where the last 4 EK100 validation / retrieval rows name a video that
    is not there (P01_99) and one Ego4D video is unreadable."""
    root = tmp_path / "data"
    shutil.copytree(synth_tiny, root)
    layout = DatasetLayout(root)
    for csv in (layout.epic_csv("validation"), layout.ek100_retrieval_csv):
        lines = csv.read_text().splitlines(keepends=True)
        for i in range(len(lines) - 4, len(lines)):
            fields = lines[i].split(",")
            assert fields[2] == GONE[0]  # video_id column
            fields[2] = GONE[1]
            lines[i] = ",".join(fields)
        csv.write_text("".join(lines))
    assert not (layout.ek100_videos / ek100_video_relpath("P01", GONE[1])).exists()
    mcq = load_egomcq(layout.egomcq_json)
    uid = mcq[0].choices[0].video_uid
    (folder,) = layout.ego4d_videos.glob(f"{uid}*")  # LaViLa layout: <uid>.mp4/<chunk>.mp4
    for chunk in folder.glob("*.mp4"):
        chunk.write_bytes(b"not a video")
    return root


def test_default_stops_at_the_first_missing_video_and_points_to_data_check(
    partial_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "r.json"
    assert _eval("lavila_tiny", "ek100_cls", "--data", str(partial_root), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "P01_99.MP4" in err and f"bench data check --data {partial_root}" in err, err
    assert "--on-missing skip" in err and not out.exists()


def test_skip_evaluates_the_rest_and_marks_the_record_partial(
    partial_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "r.json"
    argv = ["lavila_tiny", "egomcq", "ek100_cls", "ek100_mir", "--data", str(partial_root), "--out", str(out)]
    assert _eval(*argv, "--on-missing", "skip") == 0
    printed = capsys.readouterr().out
    assert "skipped" in printed
    mcq, cls, mir = json.loads(out.read_text())
    layout = DatasetLayout(partial_root)

    val = load_epic_annotations(layout.epic_csv("validation"))
    gone = val["video_id"] == GONE[1]
    assert gone.sum() == 4 < len(val)
    assert cls["partial"] is True and cls["skipped_items"] == int(gone.sum())
    assert cls["n_items"] == len(val) - int(gone.sum())
    assert cls["skipped_videos_total"] == 1 and cls["skipped_videos"][0].endswith("P01_99.MP4")
    assert cls["per_item"]["narration_id"] == val.loc[~gone, "narration_id"].tolist()  # the items scored
    top1 = 100.0 * sum(cls["per_item"]["correct_top1"]) / cls["n_items"]
    assert cls["metrics"]["top1"] == pytest.approx(top1)

    items = load_egomcq(layout.egomcq_json)
    uid = items[0].choices[0].video_uid
    hit = [any(c.video_uid == uid for c in it.choices) for it in items]
    assert mcq["partial"] is True and mcq["skipped_items"] == sum(hit) > 0
    assert mcq["n_items"] == len(items) - sum(hit) and len(mcq["per_item"]["item_id"]) == mcq["n_items"]
    paths = mcq["skipped_videos"]  # the unreadable chunk files of that video
    assert mcq["skipped_videos_total"] == len(paths) >= 1 and all(uid in p for p in paths)
    assert "skipped" in mcq["protocol"]

    assert mir["partial"] is True and mir["skipped_items"] == 4 and mir["protocol"]["nan_policy"] == "omit"
    assert (
        GONE[1] not in " ".join(mir["per_item"]["video_id"])
        and len(mir["per_item"]["video_id"]) == mir["n_items"]
    )

    (loaded,) = [r for r in load_record(out) if r.benchmark == "ek100_cls"]
    assert loaded.skipped_items == cls["skipped_items"] and loaded.partial


def test_skip_is_refused_by_benchmarks_that_need_every_video(
    synth_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["lavila_tiny", "egonlq", "--data", str(synth_tiny), "--out", str(tmp_path / "r.json")]
    assert _eval(*argv, "--on-missing", "skip") == 2
    err = capsys.readouterr().err
    assert "not supported by ['egonlq']" in err and "egomcq" in err


def test_a_record_without_the_skip_fields_still_loads(tmp_path: Path) -> None:
    old = {"benchmark": "egomcq", "metrics": {"inter": 50.0}, "n_items": 4, "partial": False}
    path = tmp_path / "old.json"
    path.write_text(json.dumps([{**old, "schema_version": 2, "kind": "benchmark"}, old]))
    for rec in load_record(path):
        assert rec.skipped_items == 0 and rec.skipped_videos == [] and not rec.partial
        assert "skipped_items" not in rec.to_dict()  # a complete record is written as before
    full = BenchmarkResult("egomcq", {"inter": 1.0}, partial=True, skipped_items=2, skipped_videos=["a"])
    back = BenchmarkResult.from_dict(full.to_dict())
    assert back.skipped_items == 2 and back.skipped_videos == ["a"] and back.extra == {}


SPEC = """
name: test/missing
table: 9
base:
  model: lavila_tiny
  benchmarks: [egomcq]
  eval: {on_missing: VALUE}
scales:
  smoke:
    models: {lavila: lavila_tiny}
rows:
  - label: a
"""


def test_sweep_specs_pass_eval_on_missing_to_their_jobs(tmp_path: Path) -> None:
    from henasy.core.errors import BenchError
    from sweeps.expand import expand
    from sweeps.spec import load_spec

    good = tmp_path / "good.yaml"
    good.write_text(SPEC.replace("VALUE", "skip").lstrip("\n"))
    (run,) = expand(load_spec(good), scale="smoke", data_root="/d")
    assert run.eval["on_missing"] == "skip"  # sweeps/job.py passes it to benchmarks.runner.evaluate
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("VALUE", "ignore").lstrip("\n"))
    with pytest.raises(BenchError, match="on_missing must be one of"):
        load_spec(bad)


def test_sweep_refuses_skip_for_a_benchmark_that_cannot_skip_before_any_job(
    tmp_path: Path, synth_tiny: Path
) -> None:
    """Validate before spending: ``eval: {on_missing: skip}`` with egonlq is refused at planning time."""
    from henasy.cli import main

    (tmp_path / "spec.yaml").write_text(
        "name: test/skip\nbase:\n  model: lavila_tiny\n  benchmarks: [egonlq]\n  eval: {on_missing: skip}\n"
        "scales:\n  smoke:\n    overrides: {trainer.max_steps: 1}\nrows:\n  - label: a\n"
    )
    argv = ["sweep", str(tmp_path / "spec.yaml"), "--data", str(synth_tiny), "--dry-run", "--no-tracking"]
    argv += ["--out", str(tmp_path / "runs")]
    assert main(argv) == 2
    assert not (tmp_path / "runs").exists()


def test_egtea_skip_drops_the_clips_of_a_missing_file(
    synth_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """EGTEA items are whole trimmed clips: a removed clip file is one skipped item per split naming it."""
    from henasy.data.egtea import egtea_clip_relpath, load_action_index, load_split

    root = tmp_path / "data"
    shutil.copytree(synth_tiny, root)
    layout = DatasetLayout(root)
    classes = load_action_index(layout.egtea_action_idx)
    clips = load_split(layout.egtea_split("test_split1"), classes)
    gone = clips[0].clip_id
    (layout.egtea_videos / egtea_clip_relpath(gone)).unlink()
    out = tmp_path / "r.json"
    argv = [
        "lavila_tiny",
        "egtea",
        "--data",
        str(root),
        "--out",
        str(out),
        "--option",
        "egtea.protocol=single_view",
    ]
    assert _eval(*argv) == 2
    assert gone in capsys.readouterr().err
    assert _eval(*argv, "--on-missing", "skip") == 0
    (rec,) = json.loads(out.read_text())
    in_split = sum(c.clip_id == gone for c in clips)
    assert rec["partial"] is True and rec["skipped_items"] == in_split >= 1
    assert rec["n_items"] == len(clips) - in_split
    assert rec["skipped_videos_total"] == 1 and rec["skipped_videos"][0].endswith(f"{gone}.mp4")
