"""Bad-input corpus, dataset side: annotation paths stay inside the data root, ``synth --force`` only replaces
its own dataset, and evaluation writes nothing under a (read-only) data root.

Every containment case poisons one path field of a copy of the tiny synthetic dataset with a value that
climbs out of the root (``..`` components or an absolute path) to a *real* file or video placed next to the
root, so that a loader following the value would succeed silently. The case must end in a clear error that
names the file, the line or JSON key path, and the field, before any video or box file is touched. Loader-
level cases (no cheap command reads the file) are judged with ``refused`` below, in the same WRONG /
UNCLEAR terms as ``bad_input_support.expect_clear_error``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bad_input_support import expect, expect_clear_error, leftovers, run_bench
from bench_support import one_thread  # noqa: F401 (autouse fixture)

import henasy.data.video as video_module
from benchmarks.context import EvalContext
from benchmarks.features import FeatureCache, Span
from henasy.core.errors import BenchError
from henasy.data.egoclip import load_egoclip
from henasy.data.handobj import HandObjectStore
from henasy.data.layout import DatasetLayout
from henasy.data.video import AutoSource, EgovlpChunkSource, LavilaChunkSource, SingleFileSource
from henasy.synth.generate import IN_PROGRESS, MANIFEST, prepare_out

EVAL = ["--limit", "2", "--num-workers", "0", "--no-progress"]
FAST_NLQ = [
    "--option",
    "egonlq.epochs=1",
    "--option",
    "egonlq.window_sec=1.0",
    "--option",
    "egonlq.stride_sec=4.0",
]


# ------------------------------------------------------------------------------------------------ helpers


@pytest.fixture
def data(synth_tiny: Path, tmp_path: Path) -> Path:
    """A writable copy of the tiny synthetic dataset at ``tmp_path/data`` (so ``tmp_path`` is outside it)."""
    return Path(shutil.copytree(synth_tiny, tmp_path / "data"))


@pytest.fixture
def video_access(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every chunk folder listed and video file opened by ``henasy.data.video`` during the test."""
    seen: list[Path] = []
    list_chunks, open_video = video_module._list_chunks, video_module.VideoReaderCache.open

    def listing(folder: Path, *args: Any) -> Any:
        seen.append(Path(folder))
        return list_chunks(folder, *args)

    def opening(self: Any, path: Path) -> Any:
        seen.append(Path(path))
        return open_video(self, path)

    monkeypatch.setattr(video_module, "_list_chunks", listing)
    monkeypatch.setattr(video_module.VideoReaderCache, "open", opening)
    return seen


def _outside(paths: list[Path], root: Path) -> list[str]:
    base = os.path.normpath(root)
    return [str(p) for p in paths if not os.path.normpath(p).startswith(base + os.sep)]


def _ego4d_sentinel(data: Path) -> Path:
    """A real LaViLa chunk folder ``<tmp>/outside.mp4`` next to the root: readable if a path escapes."""
    first = sorted(DatasetLayout(data).ego4d_videos.glob("*.mp4"))[0]
    return Path(shutil.copytree(first, data.parent / "outside.mp4"))


def _edit_json(path: Path, edit: Callable[[Any], None]) -> None:
    obj = json.loads(path.read_text(encoding="utf-8"))
    edit(obj)
    path.write_text(json.dumps(obj), encoding="utf-8")


def _edit_cell(path: Path, line: int, column: str, value: str, sep: str = ",") -> None:
    """Set ``column`` of 1-based file ``line`` (after the header) of a delimited file to ``value``."""
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split(sep)
    cells = lines[line - 1].split(sep)
    cells[header.index(column)] = value
    lines[line - 1] = sep.join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")


def _eval(data: Path, tmp_path: Path, *benchmark_args: str, model: str = "lavila_tiny") -> Any:
    out = tmp_path / "records.json"
    result = run_bench(["eval", model, *benchmark_args, "--data", data, "--out", out, *EVAL])
    expect(not out.exists(), f"a records file was written for a refused dataset: {out}")
    return result


def refused(call: Callable[[], Any], error: type[Exception], mentions: list[str]) -> str:
    """Assert that ``call()`` raises ``error`` whose message mentions every string (loader-level cases)."""
    try:
        call()
    except error as err:
        missing = [m for m in mentions if m not in str(err)]
        if missing:
            raise AssertionError(f"UNCLEAR: the message does not mention {missing}: {err}") from None
        return str(err)
    except Exception as err:  # noqa: BLE001 - any other exception is a traceback for the user
        raise AssertionError(f"UNCLEAR: {type(err).__name__} instead of {error.__name__}: {err}") from None
    raise AssertionError("WRONG: the path outside the root was accepted")


def _listing(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``root`` → (mode, size, mtime_ns) (symlinks not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def read_only(data: Path) -> Iterator[Path]:
    """``data`` with every write permission removed (restored afterwards so tmp_path can be cleaned)."""
    paths = [data, *data.rglob("*")]
    for p in paths:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield data
    for p in paths:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


# ---------------------------------------------------------------------------- containment, through `bench`


@pytest.mark.bad_input
@pytest.mark.parametrize("form", ["dotdot", "absolute"])
def test_egomcq_video_uid_outside_the_root_is_refused_at_parse_time(
    data: Path, tmp_path: Path, video_access: list[Path], form: str
) -> None:
    sentinel = _ego4d_sentinel(data)
    uid = "../../../outside" if form == "dotdot" else str(sentinel.with_suffix(""))
    _edit_json(DatasetLayout(data).egomcq_json, lambda d: d["0"]["choices"]["0"].update(video_uid=uid))
    result = _eval(data, tmp_path, "egomcq")
    shown = uid if form == "dotdot" else "outside"  # a long absolute path may be shortened in the message
    expect_clear_error(result, mentions=["egomcq.json", '"0" → "choices" → "0" → "video_uid"', shown])
    expect(not _outside(video_access, data), f"read outside the data root: {_outside(video_access, data)}")
    expect(not video_access, f"videos were read before the annotation was refused: {video_access[:3]}")


@pytest.mark.bad_input
def test_ek100_participant_id_climbing_out_is_refused(
    data: Path, tmp_path: Path, video_access: list[Path]
) -> None:
    layout = DatasetLayout(data)
    shutil.copy(layout.ek100_videos / "P01" / "P01_02.MP4", tmp_path / "P01_02.MP4")  # where it would lead
    _edit_cell(layout.epic_csv("validation"), 2, "participant_id", "../../..")
    result = _eval(data, tmp_path, "ek100_cls")
    expect_clear_error(result, mentions=["EPIC_100_validation.csv", "line 2", "participant_id", "'../../..'"])
    expect(not video_access, f"videos were read before the annotation was refused: {video_access[:3]}")


@pytest.mark.bad_input
def test_ek100_retrieval_video_id_climbing_out_is_refused(
    data: Path, tmp_path: Path, video_access: list[Path]
) -> None:
    layout = DatasetLayout(data)
    shutil.copy(layout.ek100_videos / "P01" / "P01_02.MP4", tmp_path / "outside.MP4")
    _edit_cell(layout.ek100_retrieval_csv, 3, "video_id", "../../../../outside")
    result = _eval(data, tmp_path, "ek100_mir")
    expect_clear_error(result, mentions=["EPIC_100_retrieval_test.csv", "line 3", "video_id"])
    expect(not video_access, f"videos were read before the annotation was refused: {video_access[:3]}")


@pytest.mark.bad_input
def test_egtea_split_clip_id_with_a_path_is_refused(
    data: Path, tmp_path: Path, video_access: list[Path]
) -> None:
    split = DatasetLayout(data).egtea_split("test_split1")
    lines = split.read_text(encoding="utf-8").splitlines()
    lines[1] = "../../../" + lines[1]  # line 2: the clip id climbs out of cropped_clips/
    split.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _eval(data, tmp_path, "egtea")
    expect_clear_error(result, mentions=["test_split1.txt", "line 2", "clip_id"])
    expect(not video_access, f"videos were read before the annotation was refused: {video_access[:3]}")


def _first_grounding(field: str, value: str) -> Callable[[Any], None]:
    return lambda items: items[0].update({field: value})


@pytest.mark.bad_input
@pytest.mark.parametrize("field", ["video_uid", "clip_id", "mask_file", "mask_file_absolute"])
def test_grounding_path_fields_outside_the_root_are_refused(
    data: Path, tmp_path: Path, video_access: list[Path], field: str
) -> None:
    layout = DatasetLayout(data)
    _ego4d_sentinel(data)
    mask = shutil.copy(sorted((layout.grounding / "masks").glob("*.npz"))[0], tmp_path / "outside.npz")
    value = {
        "video_uid": "../../../outside",
        "clip_id": "../../outside",
        "mask_file": "../../outside.npz",
        "mask_file_absolute": str(mask),
    }[field]
    name = field.replace("_absolute", "")
    _edit_json(layout.grounding_json, _first_grounding(name, value))
    result = _eval(data, tmp_path, "grounding")
    expect_clear_error(result, mentions=["grounding_val.json", f'"0" → "{name}"'])
    expect(not video_access, f"videos were read before the annotation was refused: {video_access[:3]}")


@pytest.mark.bad_input
@pytest.mark.parametrize("field", ["clip_uid", "video_uid"])
def test_nlq_clip_and_video_uid_outside_the_root_are_refused(
    data: Path, tmp_path: Path, video_access: list[Path], monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    _ego4d_sentinel(data)

    def poison(d: dict) -> None:
        target = d["videos"][0] if field == "video_uid" else d["videos"][0]["clips"][0]
        target[field] = "../../../outside"

    _edit_json(DatasetLayout(data).nlq_json("val"), poison)
    result = _eval(data, tmp_path, "egonlq", *FAST_NLQ)
    where = (
        '"videos" → "0" → "video_uid"'
        if field == "video_uid"
        else '"videos" → "0" → "clips" → "0" → "clip_uid"'
    )
    expect_clear_error(result, mentions=["nlq_val.json", where])
    expect(not video_access, f"videos were read before the annotation was refused: {video_access[:3]}")
    expect(not (tmp_path / "cache").exists(), "the feature cache was written for a refused dataset")


@pytest.mark.bad_input
@pytest.mark.parametrize("field", ["clip_id", "video_id"])
def test_mq_clip_and_video_ids_outside_the_root_are_refused(
    data: Path, tmp_path: Path, video_access: list[Path], monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    _ego4d_sentinel(data)
    path = DatasetLayout(data).mq_clip_annotations_json
    first = next(iter(json.loads(path.read_text(encoding="utf-8"))))
    _edit_json(path, lambda d: d[first].update({field: "../../../outside"}))
    result = _eval(data, tmp_path, "egomq", "--option", "egomq.epochs=1")
    expect_clear_error(result, mentions=["clip_annotations.json", f'"{first}" → "{field}"'])
    expect(not video_access, f"videos were read before the annotation was refused: {video_access[:3]}")


# ------------------------------------------------------------------------- containment, at the loaders


@pytest.mark.bad_input
@pytest.mark.parametrize("uid", ["../../../outside", "/etc/passwd", "..", "a\\..\\..\\b"])
def test_egoclip_video_uid_that_is_a_path_is_refused_with_its_line(data: Path, uid: str) -> None:
    csv = DatasetLayout(data).egoclip_csv
    _edit_cell(csv, 3, "video_uid", uid, sep="\t")
    refused(lambda: load_egoclip(csv), BenchError, ["egoclip.csv", "line 3", "'video_uid'", repr(uid)])


@pytest.mark.bad_input
def test_handobj_video_uid_climbing_out_is_refused(data: Path, tmp_path: Path) -> None:
    folder = DatasetLayout(data).hand_object
    outside = tmp_path / "outside"
    shutil.copytree(sorted(folder.iterdir())[0], outside)  # a real 0.handobj.pkl, readable if followed
    store = HandObjectStore(folder, 32)
    refused(
        lambda: store.get("../../../outside", 1.0),
        BenchError,
        ["video_uid", "outside the hand-object folder"],
    )
    expect(not store._cache, "a pickle outside the hand-object folder was loaded")


def _sources(root: Path) -> dict[str, tuple[Any, str]]:
    """Each video source over ``root/videos`` and an id that climbs to the matching sentinel in ``root``."""
    videos = root / "videos"
    return {
        "single": (SingleFileSource(videos / "P01"), "../../outside.MP4"),
        "lavila": (LavilaChunkSource(videos), "../outside"),
        "egovlp": (EgovlpChunkSource(videos, chunk_sec=None), str(root / "outside_egovlp")),
        "auto": (AutoSource(videos), "../outside"),
    }


@pytest.mark.bad_input
@pytest.mark.parametrize("kind", ["single", "lavila", "egovlp", "auto"])
def test_video_sources_refuse_ids_that_leave_their_root(synth_tiny: Path, tmp_path: Path, kind: str) -> None:
    layout = DatasetLayout(synth_tiny)
    (tmp_path / "videos" / "P01").mkdir(parents=True)
    shutil.copy(layout.ek100_videos / "P01" / "P01_02.MP4", tmp_path / "outside.MP4")
    lavila = sorted(layout.ego4d_videos.glob("*.mp4"))[0]
    shutil.copytree(lavila, tmp_path / "outside.mp4")
    (tmp_path / "outside_egovlp").mkdir()
    shutil.copy(sorted(lavila.glob("*.mp4"))[0], tmp_path / "outside_egovlp" / "0.mp4")
    source, video_id = _sources(tmp_path)[kind]
    refused(lambda: source.chunks(video_id), BenchError, [repr(video_id), "leads outside the video folder"])


def test_a_symlinked_video_folder_inside_the_root_still_works(data: Path, tmp_path: Path) -> None:
    """Datasets on clusters are symlinked: containment is lexical, a link inside the root is followed."""
    videos = DatasetLayout(data).ego4d_videos
    real = sorted(videos.glob("*.mp4"))[0]
    moved = Path(shutil.move(real, tmp_path / "elsewhere"))
    (videos / real.name).symlink_to(moved, target_is_directory=True)
    chunks = AutoSource(videos).chunks(real.name[: -len(".mp4")])
    assert chunks and all(c.path.is_file() for c in chunks)


@pytest.mark.bad_input
def test_feature_cache_names_never_collide_or_leave_the_cache(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, {"k": 1})
    spans = [Span(name, "v", 0.0, 4.0) for name in ("clip a", "clip_a", "clip/a", "../../x")]
    paths = [cache.path(s) for s in spans]
    expect(len(set(paths)) == len(paths), f"different spans share one cache file: {paths}")
    expect(all(p.parent == cache.dir for p in paths), f"a cache file outside {cache.dir}: {paths}")
    moved = cache.path(Span("clip a", "v", 1.0, 4.0))
    expect(moved != paths[0], "a span whose times changed would reuse the old features")


# ----------------------------------------------------------------------------------- read-only data root


@pytest.mark.bad_input
def test_eval_writes_nothing_under_a_read_only_data_root(
    read_only: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests may run as root, where chmod does not stop writes: the listing before and after must match."""
    monkeypatch.delenv("BENCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    before = _listing(read_only)
    out = tmp_path / "records.json"
    result = run_bench(["eval", "lavila_tiny", "egonlq", "--data", read_only, "--out", out, *EVAL, *FAST_NLQ])
    expect(
        result.code == 0 and result.traceback is None, f"eval failed on a read-only root\n{result.describe()}"
    )
    after = _listing(read_only)
    expect(after == before, f"eval changed the data root: {sorted(set(after) ^ set(before))[:5]}")
    cache = tmp_path / "xdg" / "henasy-bench"
    expect(any(cache.rglob("*.npy")), f"no features in the default cache {cache}")
    record = json.loads(out.read_text(encoding="utf-8"))[0]
    expect(Path(record["artifacts"]["predictions"]).is_relative_to(cache), "predictions not in the cache")


@pytest.mark.bad_input
def test_unwritable_cache_dir_is_a_clear_error(data: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    cache = blocker / "cache"
    args = ["egonlq", *FAST_NLQ, "--cache-dir", str(cache)]
    result = _eval(data, tmp_path, *args)
    expect_clear_error(result, mentions=[str(cache), "--cache-dir"])
    expect(not leftovers(tmp_path), f"half-written files: {leftovers(tmp_path)}")


def test_cache_key_differs_between_data_roots(tmp_path: Path) -> None:
    from benchmarks.features import WindowSpec, cache_key
    from benchmarks.runner import load_model

    model = load_model("lavila_tiny")
    keys = [cache_key(EvalContext(model, "lavila_tiny", tmp_path / r), WindowSpec(1.0, 2.0)) for r in "ab"]
    assert keys[0]["data_root"] != keys[1]["data_root"]


# ------------------------------------------------------------------------------------ bench data synth


def _real_root(tmp_path: Path) -> tuple[Path, bytes]:
    root = tmp_path / "real"
    (root / "ego4d").mkdir(parents=True)
    content = b"clip_idx\tvideo_uid\n0\tmy-real-annotation\n"
    (root / "ego4d" / "egoclip.csv").write_bytes(content)
    return root, content


@pytest.mark.bad_input
def test_synth_force_refuses_a_root_it_did_not_write(tmp_path: Path) -> None:
    root, content = _real_root(tmp_path)
    result = run_bench(["data", "synth", "--out", root, "--size", "tiny", "--force", "--no-progress"])
    expect_clear_error(result, mentions=[str(root), MANIFEST, "--force", "delete"])
    expect((root / "ego4d" / "egoclip.csv").read_bytes() == content, "--force overwrote a real egoclip.csv")
    expect(
        sorted(p.name for p in root.rglob("*")) == ["ego4d", "egoclip.csv"], "files were added to the root"
    )


@pytest.mark.bad_input
def test_synth_force_refuses_a_foreign_manifest(tmp_path: Path) -> None:
    root, content = _real_root(tmp_path)
    (root / MANIFEST).write_text('{"generator": "someone else"}')
    result = run_bench(["data", "synth", "--out", root, "--size", "tiny", "--force", "--no-progress"])
    expect_clear_error(result, mentions=[MANIFEST])
    expect((root / "ego4d" / "egoclip.csv").read_bytes() == content, "--force overwrote a real egoclip.csv")


@pytest.mark.bad_input
def test_synth_force_does_not_delete_through_a_symlinked_part(tmp_path: Path) -> None:
    real, content = _real_root(tmp_path)
    root = tmp_path / "synth"
    root.mkdir()
    (root / MANIFEST).write_text('{"generator": "henasy.synth"}')
    (root / "ego4d").symlink_to(real / "ego4d", target_is_directory=True)
    result = run_bench(["data", "synth", "--out", root, "--size", "tiny", "--force", "--no-progress"])
    expect_clear_error(result, mentions=[str(root / "ego4d"), "symbolic link"])
    expect((real / "ego4d" / "egoclip.csv").read_bytes() == content, "--force deleted data through a link")


@pytest.mark.bad_input
@pytest.mark.parametrize("where", ["file", "below_a_file"])
def test_synth_out_that_is_a_file_is_a_clear_error(tmp_path: Path, where: str) -> None:
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    out = target if where == "file" else target / "synth"
    result = run_bench(["data", "synth", "--out", out, "--size", "tiny", "--no-progress"])
    expect_clear_error(result, mentions=[str(out)])
    expect(target.read_text() == "keep me", "--out overwrote a file")


def test_synth_force_regenerates_its_own_root(synth_tiny: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(synth_tiny, tmp_path / "synth"))
    (root / "ego4d" / "stale.txt").write_text("from an older generator")
    (root / "my_notes.txt").write_text("not part of the dataset")
    result = run_bench(["data", "synth", "--out", root, "--size", "tiny", "--force", "--no-progress"])
    assert result.code == 0, result.describe()
    assert not (root / "ego4d" / "stale.txt").exists() and (root / "my_notes.txt").is_file()
    assert (root / MANIFEST).read_bytes() == (synth_tiny / MANIFEST).read_bytes()
    assert not (root / IN_PROGRESS).exists() and not leftovers(root)


def test_synth_force_finishes_an_interrupted_root(tmp_path: Path) -> None:
    root = tmp_path / "half"
    (root / "ego4d" / "video_chunks").mkdir(parents=True)
    (root / IN_PROGRESS).write_text('{"generator": "henasy.synth"}')
    with pytest.raises(BenchError, match="not empty"):
        prepare_out(root, force=False)
    prepare_out(root, force=True)
    assert list(root.iterdir()) == []


def test_path_rules_accept_real_ids_and_refuse_escapes(tmp_path: Path) -> None:
    from henasy.data.paths import inside, path_component_problem, relative_path_problem

    real = ["2516ac85-e2eb-45e3-8cdb-31fe6899a08e", "P01_02", "OP01-R03-Continental-1402679-F021041", "a..b"]
    assert all(path_component_problem(v) is None for v in real)
    assert all(path_component_problem(v) for v in ["", ".", "..", "a/b", "/etc", "a\\b", "a\x00", "a\nb"])
    assert relative_path_problem("masks/g0.npz") is None
    assert all(relative_path_problem(v) for v in ["/x.npz", "masks/../../x", "C:x", "masks//x", "./x"])
    assert inside(tmp_path, tmp_path / "a" / ".." / "b") and not inside(tmp_path, tmp_path / ".." / "x")
    assert not inside(tmp_path, tmp_path) and not inside(tmp_path, Path(str(tmp_path) + "-sibling") / "x")
