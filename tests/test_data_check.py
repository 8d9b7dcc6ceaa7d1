"""``bench data check`` (henasy/data/preflight.py): ready roots exit 0, missing videos and broken annotation
files make a benchmark not ready (exit 1) with the paths in a list written outside the data root."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from henasy.cli import main
from henasy.data.ek100 import ek100_video_relpath, load_epic_annotations
from henasy.data.preflight import NEEDS, TRAINING

KEYS = {"ready", "annotations", "videos_expected", "videos_missing", "missing_list"}


def _files(root: Path) -> set[tuple[str, int]]:
    return {(str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*")}


def _check(capsys: pytest.CaptureFixture, root: Path, out: Path, *extra: str) -> tuple[int, dict]:
    rc = main(["data", "check", "--data", str(root), "--out", str(out), "--format", "json", *extra])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return rc, json.loads(captured.out)


@pytest.fixture(scope="module")
def copy_root(synth_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the tiny dataset (the session fixture is read-only)."""
    root = tmp_path_factory.mktemp("check") / "root"
    shutil.copytree(synth_tiny, root)
    return root


def test_ready_root_exits_0_with_the_exact_json_shape(
    synth_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    before = _files(synth_tiny)
    rc, report = _check(capsys, synth_tiny, tmp_path / "lists")
    assert rc == 0
    assert list(report) == ["benchmarks", "training"]
    assert set(report["benchmarks"]) == set(NEEDS) - {TRAINING}
    for name, entry in [*report["benchmarks"].items(), ("training", report["training"])]:
        assert set(entry) == KEYS, name
        assert entry["ready"] is True and entry["annotations"] == "ok" and entry["missing_list"] is None
        assert entry["videos_expected"] > 0 and entry["videos_missing"] == 0
    assert _files(synth_tiny) == before  # nothing written under the data root
    assert not (tmp_path / "lists").exists()


def test_text_output_one_line_per_benchmark(synth_tiny: Path, tmp_path: Path, capsys) -> None:
    rc = main(
        ["data", "check", "--data", str(synth_tiny), "--out", str(tmp_path), "--benchmarks", "egtea,egomcq"]
    )
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(lines) == 2
    assert lines[0].startswith("egtea: ready") and lines[1].startswith("egomcq: ready")


def test_a_removed_video_is_listed(copy_root: Path, tmp_path: Path, capsys) -> None:
    row = load_epic_annotations(copy_root / "ek100" / "EPIC_100_validation.csv").iloc[0]
    video = copy_root / "ek100" / "video_ht256px" / ek100_video_relpath(row.participant_id, row.video_id)
    moved = tmp_path / "moved.MP4"
    shutil.move(video, moved)
    try:
        before = _files(copy_root)
        rc, report = _check(capsys, copy_root, tmp_path / "lists")
        assert rc == 1
        entries = report["benchmarks"]
        for name in ("ek100_mir", "ek100_cls"):
            assert entries[name]["ready"] is False and entries[name]["annotations"] == "ok"
            assert entries[name]["videos_missing"] == 1
            listed = Path(entries[name]["missing_list"]).read_text().splitlines()
            assert listed == [str(video)]
        assert entries["egomcq"]["ready"] is True and entries["egomcq"]["missing_list"] is None
        assert _files(copy_root) == before
    finally:
        shutil.move(moved, video)


def test_a_removed_ego4d_chunk_folder_is_listed(copy_root: Path, tmp_path: Path, capsys) -> None:
    folder = next(p for p in (copy_root / "ego4d" / "video_chunks").iterdir() if p.is_dir())
    moved = tmp_path / "moved"
    shutil.move(folder, moved)
    try:
        rc = main(
            [
                "data",
                "check",
                "--data",
                str(copy_root),
                "--out",
                str(tmp_path),
                "--benchmarks",
                "egomcq,egonlq",
            ]
        )
        out = capsys.readouterr().out
        assert rc == 1 and "NOT READY" in out
        uid = folder.name[: -len(".mp4")]
        assert (
            uid in out
            and str(tmp_path / "egonlq_missing.txt") in out
            or str(tmp_path / "egomcq_missing.txt") in out
        )
    finally:
        shutil.move(moved, folder)


def test_a_broken_annotation_file_is_reported_not_raised(copy_root: Path, tmp_path: Path, capsys) -> None:
    csv = copy_root / "ek100" / "EPIC_100_validation.csv"
    original = csv.read_text()
    lines = original.splitlines(keepends=True)
    csv.write_text(lines[0] + "garbage,row\n" + "".join(lines[1:]))
    try:
        rc, report = _check(capsys, copy_root, tmp_path, "--benchmarks", "ek100_cls")
        entry = report["benchmarks"]["ek100_cls"]
        assert rc == 1 and entry["ready"] is False
        assert "EPIC_100_validation.csv" in entry["annotations"] and "line 2" in entry["annotations"]
    finally:
        csv.write_text(original)


def test_decode_checks_the_windows(synth_tiny: Path, tmp_path: Path, capsys) -> None:
    rc, report = _check(capsys, synth_tiny, tmp_path, "--benchmarks", "ek100_mir,egomcq", "--decode")
    assert rc == 0 and all(e["ready"] for e in report["benchmarks"].values())


def test_training_videos_are_checked(copy_root: Path, tmp_path: Path, capsys) -> None:
    """A chunk folder that only EgoClip training names makes ``training`` not ready, benchmarks unaffected."""
    from henasy.data.egoclip import load_egoclip

    chunks = copy_root / "ego4d" / "video_chunks"
    trained = set(load_egoclip(copy_root / "ego4d" / "egoclip.csv")["video_uid"])
    uid = sorted(trained)[0]
    folder = chunks / f"{uid}.mp4"
    assert folder.is_dir()
    moved = tmp_path / "moved"
    shutil.move(folder, moved)
    try:
        rc, report = _check(capsys, copy_root, tmp_path / "lists", "--benchmarks", "training")
        assert rc == 1 and list(report) == ["benchmarks", "training"] and report["benchmarks"] == {}
        entry = report["training"]
        assert entry["ready"] is False and entry["annotations"] == "ok" and entry["videos_missing"] == 1
        assert entry["videos_expected"] == len(trained)
        assert uid in Path(entry["missing_list"]).read_text()
    finally:
        shutil.move(moved, folder)


def test_training_reports_a_tag_outside_the_taxonomy(copy_root: Path, tmp_path: Path, capsys) -> None:
    taxonomy = copy_root / "ego4d" / "narration_noun_taxonomy.csv"
    original = taxonomy.read_text()
    lines = original.splitlines(keepends=True)
    taxonomy.write_text("".join(lines[:3]))  # header + 2 nouns: EgoClip's noun tags go out of range
    try:
        rc, report = _check(capsys, copy_root, tmp_path, "--benchmarks", "training")
        entry = report["training"]
        assert rc == 1 and entry["ready"] is False
        assert "egoclip.csv" in entry["annotations"] and "tag_noun" in entry["annotations"]
    finally:
        taxonomy.write_text(original)


def _ek100_video(root: Path) -> Path:
    row = load_epic_annotations(root / "ek100" / "EPIC_100_validation.csv").iloc[0]
    return root / "ek100" / "video_ht256px" / ek100_video_relpath(row.participant_id, row.video_id)


def test_decode_reports_a_video_shorter_than_its_windows(copy_root: Path, tmp_path: Path, capsys) -> None:
    """A file that exists but ends before an annotated window: present, yet not ready with --decode."""
    video = _ek100_video(copy_root)
    original = tmp_path / "original.MP4"
    shutil.copy(video, original)
    short = min((copy_root / "egtea" / "cropped_clips").rglob("*.mp4"), key=lambda p: p.stat().st_size)
    shutil.copy(short, video)  # a trimmed EGTEA clip lasts a few seconds; the EK100 windows reach further
    try:
        rc, report = _check(capsys, copy_root, tmp_path / "a", "--benchmarks", "ek100_mir")
        assert rc == 0  # without --decode only presence is checked
        rc, report = _check(capsys, copy_root, tmp_path / "b", "--benchmarks", "ek100_mir", "--decode")
        entry = report["benchmarks"]["ek100_mir"]
        assert rc == 1 and entry["videos_missing"] == 1
        listed = Path(entry["missing_list"]).read_text()
        assert str(video) in listed and "the video ends at" in listed and "annotated window ends at" in listed
    finally:
        shutil.copy(original, video)


def test_decode_reports_a_corrupt_video(copy_root: Path, tmp_path: Path, capsys) -> None:
    video = _ek100_video(copy_root)
    original = tmp_path / "original.MP4"
    shutil.copy(video, original)
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    try:
        rc, report = _check(capsys, copy_root, tmp_path, "--benchmarks", "ek100_cls", "--decode")
        entry = report["benchmarks"]["ek100_cls"]
        assert rc == 1 and entry["annotations"] == "ok" and entry["videos_missing"] == 1
        assert str(video) in Path(entry["missing_list"]).read_text()
    finally:
        shutil.copy(original, video)


@pytest.mark.parametrize(
    "argv",
    [["--benchmarks", "nope"], ["--out", "{data}/lists"]],
)
def test_usage_errors_exit_2(synth_tiny: Path, argv: list[str], capsys) -> None:
    argv = [a.replace("{data}", str(synth_tiny)) for a in argv]
    assert main(["data", "check", "--data", str(synth_tiny), *argv]) == 2
    assert not (synth_tiny / "lists").exists()


def test_bench_sweep_runs_the_preflight_before_submitting(copy_root: Path, tmp_path: Path, capsys) -> None:
    """A user-given data root missing a video of the rows' benchmarks: refused before anything is written."""
    row = load_epic_annotations(copy_root / "ek100" / "EPIC_100_validation.csv").iloc[0]
    video = copy_root / "ek100" / "video_ht256px" / ek100_video_relpath(row.participant_id, row.video_id)
    (tmp_path / "spec.yaml").write_text(
        "name: test/preflight\nbase:\n  model: lavila_tiny\n  benchmarks: [ek100_cls]\n  train: false\n"
        "  checkpoint: none.pt\nscales:\n  smoke: {}\nrows:\n  - label: a\n"
    )
    (tmp_path / "none.pt").write_bytes(b"")
    argv = ["sweep", "spec.yaml", "--data", str(copy_root), "--executor", "debug", "--no-tracking"]
    moved = tmp_path / "moved.MP4"
    shutil.move(video, moved)
    try:
        import os

        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            rc = main(argv)
        finally:
            os.chdir(cwd)
    finally:
        shutil.move(moved, video)
    err = capsys.readouterr().err
    assert rc == 2 and "not ready" in err and "ek100_cls" in err and video.name in err
    assert "bench data check" in err and "--no-data-check" in err
    assert not (tmp_path / "runs").exists()  # nothing submitted, no manifest


def test_no_data_check_flag_turns_the_preflight_off() -> None:
    from henasy.cli import build_parser
    from sweeps.commands.sweep import options_from_args

    args = build_parser().parse_args(["sweep", "ablations/losses.yaml", "--no-data-check"])
    assert options_from_args(args).check_data is False
    assert options_from_args(build_parser().parse_args(["sweep", "ablations/losses.yaml"])).check_data is True


def test_bench_sweep_checks_the_training_files_of_rows_that_train(
    copy_root: Path, tmp_path: Path, capsys
) -> None:
    from henasy.data.egoclip import load_egoclip

    uid = sorted(set(load_egoclip(copy_root / "ego4d" / "egoclip.csv")["video_uid"]))[-1]
    folder = copy_root / "ego4d" / "video_chunks" / f"{uid}.mp4"
    (tmp_path / "spec.yaml").write_text(
        "name: test/preflight_train\nbase:\n  model: lavila_tiny\n  benchmarks: [egtea]\n"
        "scales:\n  smoke:\n    overrides: {trainer.max_steps: 1}\nrows:\n  - label: a\n"
    )
    argv = ["sweep", str(tmp_path / "spec.yaml"), "--data", str(copy_root), "--executor", "debug"]
    argv += ["--no-tracking", "--out", str(tmp_path / "runs")]
    moved = tmp_path / "moved"
    shutil.move(folder, moved)
    try:
        rc = main(argv)
    finally:
        shutil.move(moved, folder)
    err = capsys.readouterr().err
    assert rc == 2 and "training: NOT READY" in err and uid in err
    assert "egtea" not in err.split("not ready")[1].split("Full lists")[0]  # egtea itself is ready
    assert not (tmp_path / "runs").exists()
