"""Clip loader (frame sampling, layouts, chunk crossing, errors), transforms, DataLoader + skip policy, and
the EgoClip training dataset, on tiny mp4s written with PyAV whose pixel values encode the frame index."""

from __future__ import annotations

import pickle

import av
import numpy as np
import pytest
import torch

from henasy.core.errors import VideoReadError
from henasy.data.batching import ClipDataset, ClipRef, collate, make_dataloader
from henasy.data.egoclip import EGOCLIP_COLUMNS
from henasy.data.egoclip_dataset import EgoClipDataset, EgoClipPaths
from henasy.data.transforms import CLIP_MEAN, CLIP_STD, ClipTransform
from henasy.data.video import (
    AutoSource,
    ClipLoader,
    EgovlpChunkSource,
    LavilaChunkSource,
    SingleFileSource,
    clip_frame_range,
    segment_frame_ids,
)

FPS = 10
STEP = 8  # gray level of global frame g is STEP * g (decoded within ±2)


def write_mp4(path, first_frame, num_frames, fps=FPS, height=24, width=32):
    """Flat gray H.264 frames; frame i has gray level STEP * (first_frame + i)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "0", "g": "4"}
        for i in range(num_frames):
            img = np.full((height, width, 3), STEP * (first_frame + i), np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())


def frame_index(clip: torch.Tensor) -> list[int]:
    """(C, T, H, W) normalised → the global frame index each frame encodes."""
    pixels = clip * torch.tensor(CLIP_STD).view(3, 1, 1, 1) + torch.tensor(CLIP_MEAN).view(3, 1, 1, 1)
    return [round(v / STEP) for v in pixels.mean(dim=(0, 2, 3)).tolist()]


@pytest.fixture
def two_chunk_videos(tmp_path):
    """Video "abc" (20 frames at 10 fps) as two 1-s chunks in both chunked layouts."""
    write_mp4(tmp_path / "lavila" / "abc.mp4" / "0.mp4", 0, 10)
    write_mp4(tmp_path / "lavila" / "abc.mp4" / "1.mp4", 10, 10)
    write_mp4(tmp_path / "egovlp" / "abc" / "0.mp4", 0, 10)
    write_mp4(tmp_path / "egovlp" / "abc" / "1.mp4", 10, 10)
    return tmp_path


# ------------------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(
    "start, end, n, expected",
    [
        (0, 30, 4, [3, 10, 18, 25]),  # size 7.25: bounds 0|7|14|22|29 (14.5 rounds to even 14)
        (5, 15, 4, [6, 8, 10, 13]),  # size 2.25: bounds 5|7|9|12|14
        (0, 4, 4, [0, 1, 2, 2]),  # size 0.75: bounds 0|1|2|2|3
        (10, 11, 2, [10, 10]),  # size 0
        (0, 100, 1, [49]),  # size 99: (0 + 99) // 2
    ],
)
def test_segment_frame_ids_hand_computed(start, end, n, expected):
    assert segment_frame_ids(start, end, n) == expected


def test_segment_frame_ids_jitter_within_segments():
    bounds = [(0, 7), (7, 14), (14, 22), (22, 29)]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        ids = segment_frame_ids(0, 30, 4, jitter=True, rng=rng)
        assert all(s <= i <= e for i, (s, e) in zip(ids, bounds))
        seen.add(tuple(ids))
    assert len(seen) > 50
    a = segment_frame_ids(0, 30, 4, jitter=True, rng=np.random.default_rng(3))
    assert a == segment_frame_ids(0, 30, 4, jitter=True, rng=np.random.default_rng(3))


def test_segment_frame_ids_rejects_empty_range():
    with pytest.raises(ValueError):
        segment_frame_ids(5, 5, 4)


@pytest.mark.parametrize(
    "args, expected",
    [
        ((0.5, 1.5, 10, 4, "duration"), (5, 15)),
        ((1.0, 1.1, 30, 4, "duration"), (30, 34)),  # int(0.1 * 30) = 3 < 4 frames → 4
        ((1.0, 2.51, 10, 4, "ceil"), (10, 26)),
        ((2.0, 2.0, 10, 4, "ceil"), (20, 21)),
    ],
)
def test_clip_frame_range(args, expected):
    assert clip_frame_range(*args) == expected


# ------------------------------------------------------------------------------------------- transforms


def test_transform_centre_crop_and_normalise():
    frames = np.zeros((2, 4, 8, 3), np.uint8)
    frames[:] = (np.arange(8) * 10)[None, None, :, None]  # column c has value 10c
    t = ClipTransform(4, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0))
    out = t(frames)
    assert out.shape == (3, 2, 4, 4) and out.dtype == torch.float32
    # short side already 4: no resize; centre crop keeps columns 2..5
    np.testing.assert_allclose(out[0, 0, 0].numpy(), (np.array([20, 30, 40, 50]) - 10.0) / 2.0)
    np.testing.assert_allclose(out[2, 1, 3].numpy(), (np.array([20, 30, 40, 50]) - 30.0) / 5.0)
    left, centre, right = t.crops(frames, 3)
    assert left[0, 0, 0, 0].item() == (0 - 10.0) / 2.0 and right[0, 0, 0, -1].item() == (70 - 10.0) / 2.0
    assert torch.equal(centre, out)


def test_transform_resizes_short_side():
    frames = np.full((3, 48, 64, 3), 100, np.uint8)
    out = ClipTransform(16, mean=(0, 0, 0), std=(1, 1, 1))(frames)
    assert out.shape == (3, 3, 16, 16)
    assert torch.allclose(out, torch.full_like(out, 100.0), atol=1e-3)


# ------------------------------------------------------------------------------------------- loader


@pytest.mark.parametrize("layout", ["lavila", "egovlp", "egovlp-inferred", "auto-lavila", "auto-egovlp"])
def test_chunk_boundary_crossing(two_chunk_videos, layout):
    root = two_chunk_videos
    source = {
        "lavila": LavilaChunkSource(root / "lavila"),
        "egovlp": EgovlpChunkSource(root / "egovlp", chunk_sec=1.0),
        "egovlp-inferred": EgovlpChunkSource(root / "egovlp", chunk_sec=None),  # 10 frames / 10 fps
        "auto-lavila": AutoSource(root / "lavila", chunk_sec=1.0),
        "auto-egovlp": AutoSource(root / "egovlp", chunk_sec=1.0),
    }[layout]
    loader = ClipLoader(4, 16)
    clip = loader.load(source, "abc", 0.5, 1.5)  # frames [5, 15) → ids [6, 8, 10, 13]
    assert clip.shape == (3, 4, 16, 16) and clip.dtype == torch.float32
    assert frame_index(clip) == [6, 8, 10, 13]
    info = loader.video_info(source, "abc")
    assert (info.fps, info.num_frames, len(info.chunks)) == (10.0, 20, 2)


def test_auto_source_detects_layout(two_chunk_videos):
    assert AutoSource(two_chunk_videos / "lavila").layout_of("abc") == "lavila"
    assert AutoSource(two_chunk_videos / "egovlp").layout_of("abc") == "egovlp"


def test_past_the_end_is_clamped(two_chunk_videos):
    loader = ClipLoader(4, 16)
    clip = loader.load(
        LavilaChunkSource(two_chunk_videos / "lavila"), "abc", 1.5, 2.5
    )  # ids [16, 18, 20, 23]
    assert frame_index(clip) == [16, 18, 19, 19]


def test_clip_after_the_end_raises(two_chunk_videos):
    with pytest.raises(VideoReadError) as e:
        ClipLoader(4, 16).load(LavilaChunkSource(two_chunk_videos / "lavila"), "abc", 3.5, 4.0)
    assert "1.mp4" in str(e.value) and "ends at 2.00 s" in str(e.value)


def test_missing_chunk_raises(tmp_path):
    write_mp4(tmp_path / "abc.mp4" / "0.mp4", 0, 10)
    write_mp4(tmp_path / "abc.mp4" / "3.mp4", 20, 10)
    with pytest.raises(VideoReadError) as e:
        ClipLoader(4, 16).load(tmp_path, "abc", 2.0, 2.5)
    assert "0.mp4" in str(e.value) and "chunk file missing" in str(e.value)


def test_single_file_ceil_rule(tmp_path):
    write_mp4(tmp_path / "P01" / "P01_01.MP4", 0, 30)
    loader = ClipLoader(4, 16, frame_rule="ceil")
    clip = loader.load(
        SingleFileSource(tmp_path), "P01/P01_01.MP4", 0.0, 2.9
    )  # [0, 29): size 7 → 3, 10, 17, 24
    assert frame_index(clip) == [3, 10, 17, 24]
    assert frame_index(loader.load_frame_ids(tmp_path, "P01/P01_01.MP4", [0, 29, 5])) == [0, 29, 5]


def test_missing_and_corrupt_videos_name_the_file(tmp_path):
    loader = ClipLoader(4, 16)
    with pytest.raises(VideoReadError) as e:
        loader.load(tmp_path, "nothing_here", 0.0, 1.0)
    assert "nothing_here" in str(e.value) and "not found" in str(e.value)
    with pytest.raises(VideoReadError) as e:
        loader.load(SingleFileSource(tmp_path), "gone.mp4", 0.0, 1.0)
    assert "gone.mp4" in str(e.value)
    (tmp_path / "bad.mp4").mkdir()
    (tmp_path / "bad.mp4" / "0.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    with pytest.raises(VideoReadError) as e:
        loader.load(tmp_path, "bad", 0.0, 1.0)
    assert str(tmp_path / "bad.mp4" / "0.mp4") in str(e.value)


def test_loader_jitter_is_seeded(two_chunk_videos):
    loader = ClipLoader(4, 16, jitter=True)
    src = LavilaChunkSource(two_chunk_videos / "lavila")
    a = loader.load(src, "abc", 0.0, 2.0, rng=np.random.default_rng(1))
    b = loader.load(src, "abc", 0.0, 2.0, rng=np.random.default_rng(1))
    assert torch.equal(a, b)
    ids = frame_index(a)
    assert all(s <= i <= e for i, (s, e) in zip(ids, [(0, 5), (5, 10), (10, 14), (14, 19)]))


# ------------------------------------------------------------------------------------------- batching


def test_collate_keeps_strings_and_lists():
    items = [{"video": torch.zeros(3, 2), "text": "a", "tags": [1], "index": 0, "t": 0.5},
             {"video": torch.ones(3, 2), "text": "b", "tags": [], "index": 1, "t": 1.5}]  # fmt: skip
    batch = collate(items)
    assert batch["video"].shape == (2, 3, 2) and batch["text"] == ["a", "b"] and batch["tags"] == [[1], []]
    assert (
        batch["index"].dtype == torch.long and batch["t"].tolist() == [0.5, 1.5] and batch["_skipped"] == []
    )


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_skip_policy(two_chunk_videos, num_workers):
    loader = ClipLoader(4, 16)
    clips = [ClipRef("abc", 0.1 * i, 0.1 * i + 0.5, {"text": f"clip {i}"}) for i in range(5)]
    clips.insert(2, ClipRef("missing_video", 0.0, 1.0))
    source = LavilaChunkSource(two_chunk_videos / "lavila")
    loader.load(source, "abc", 0.0, 1.0)  # readers opened in the parent must not leak into workers
    dl = make_dataloader(ClipDataset(clips, loader, source), 2, num_workers=num_workers, on_error="skip")
    batches = list(dl)
    seen = [i for b in batches for i in b["index"].tolist()]
    assert seen == [0, 1, 3, 4, 5] and dl.skips.count == 1
    assert "missing_video" in dl.skips.examples[0].path and "1 clip(s) skipped" in dl.skips.summary()
    first = batches[0]
    assert first["video"].shape == (2, 3, 4, 16, 16) and first["text"] == ["clip 0", "clip 1"]
    assert frame_index(first["video"][0])[0] == 0

    strict = make_dataloader(ClipDataset(clips, loader, source), 2, num_workers=num_workers)
    with pytest.raises(VideoReadError) as e:
        list(strict)
    assert "missing_video" in str(e.value) and "missing_video" in e.value.path


def test_dataloader_shuffle_is_seeded(two_chunk_videos):
    clips = [ClipRef("abc", 0.0, 0.5) for _ in range(6)]
    ds = ClipDataset(clips, ClipLoader(2, 8), two_chunk_videos / "lavila")
    order = [
        [i for b in make_dataloader(ds, 3, shuffle=True, seed=s) for i in b["index"].tolist()] for s in (4, 4)
    ]
    assert order[0] == order[1] and sorted(order[0]) == list(range(6))


# ------------------------------------------------------------------------------------------- EgoClip dataset

EGOCLIP_ROWS = [  # video_uid, narration_time, clip_start, clip_end, tag_verb, tag_noun
    ("vid_a", 1.0, 0.5, 1.5, "[1]", "[0, 2]"),
    ("vid_a", 5.0, 4.5, 5.5, "[0]", "[1]"),
    ("vid_a", 15.0, 14.5, 15.5, "[2]", "[]"),
    ("vid_a", 25.0, 24.5, 25.5, "[0, 1]", "[2]"),
    ("vid_b", 2.0, 1.5, 2.5, "[1]", "[1]"),
]


@pytest.fixture
def egoclip_root(tmp_path):
    ego = tmp_path / "ego4d"
    ego.mkdir()
    lines = ["\t".join(EGOCLIP_COLUMNS)]
    for i, (uid, t, s, e, verbs, nouns) in enumerate(EGOCLIP_ROWS):
        lines.append(
            "\t".join(
                [
                    str(i),
                    uid,
                    "30.0",
                    "narration_pass_1",
                    str(i),
                    str(t),
                    str(s),
                    str(e),
                    f"#C C does {i}",
                    verbs,
                    nouns,
                ]
            )
        )
    (ego / "egoclip.csv").write_text("\n".join(lines) + "\n")
    write_mp4(ego / "video_chunks" / "vid_a.mp4" / "0.mp4", 0, 15, fps=1)  # 15-s chunks at 1 fps
    write_mp4(ego / "video_chunks" / "vid_a.mp4" / "15.mp4", 15, 15, fps=1)
    write_mp4(ego / "video_chunks" / "vid_b.mp4" / "0.mp4", 0, 10, fps=1)
    entry = {
        "info": {"height": 24, "width": 32},
        0: {"hand_dets": np.array([[8, 0, 24, 24, 0.9, 0, 0, 0, 0, 0]], np.float32), "obj_dets": None},
    }
    (ego / "hand_object" / "vid_a").mkdir(parents=True)
    (ego / "hand_object" / "vid_a" / "0.handobj.pkl").write_bytes(pickle.dumps({0.5: entry}))
    return tmp_path


def test_egoclip_dataset_items(egoclip_root):
    loader = ClipLoader(4, 16)
    ds = EgoClipDataset(egoclip_root, loader, num_verbs=3, num_nouns=3, hand_object=True)
    assert len(ds) == 5
    item = ds[0]
    assert item["video"].shape == (3, 4, 16, 16) and item["text"] == "#C C does 0"
    assert item["verb_tags"].tolist() == [0.0, 1.0, 0.0] and item["noun_tags"].tolist() == [1.0, 0.0, 1.0]
    assert (item["video_uid"], item["clip_start"], item["clip_end"], item["index"]) == ("vid_a", 0.5, 1.5, 0)
    # 24x32 frame → 16x21 (int(16·32/24)), crop left round(5/2) = 2: x 8 px → (8·21/32 − 2)/16
    np.testing.assert_allclose(
        item["boxes"][0, 0].numpy(), [(8 * 21 / 32 - 2) / 16, 0.0, (24 * 21 / 32 - 2) / 16, 1.0], rtol=1e-5
    )
    assert item["box_mask"][0].tolist() == [True, False, False, False] and not item["box_mask"][1:].any()
    assert not ds[1]["box_mask"].any()
    # 1 fps: start round(0.5) = 0 (half to even), end 0 + max(int(1.0), 4) = 4 → size 0.75 → [0, 1, 2, 2]
    assert frame_index(item["video"]) == [0, 1, 2, 2]
    assert frame_index(ds[2]["video"]) == [
        14,
        15,
        16,
        16,
    ]  # round(14.5) = 14; crosses the 15-s chunk boundary


def test_egoclip_hard_negatives(egoclip_root):
    ds = EgoClipDataset(
        EgoClipPaths.from_root(egoclip_root), ClipLoader(2, 8), 3, 3, hard_negative_sec=10, seed=7
    )
    negs = [ds[i]["neg_index"] for i in range(5)]
    assert negs[0] == 1 and negs[1] == 0  # same 10-s segment vid_a_0
    assert negs[2] == 1  # alone in vid_a_1: nearest in time, tie (10 s each way) → the earlier clip
    assert negs[3] == 2  # alone in vid_a_2: nearest clip of vid_a
    assert negs[4] != 4  # only clip of vid_b: another clip of the dataset
    assert [ds[i]["neg_index"] for i in range(5)] == negs  # deterministic for (seed, epoch, index)
    item = ds[0]
    assert item["neg_text"] == "#C C does 1" and item["neg_video"].shape == item["video"].shape
    assert item["neg_verb_tags"].tolist() == [1.0, 0.0, 0.0]


def test_egoclip_dataset_with_workers(egoclip_root):
    ds = EgoClipDataset(egoclip_root, ClipLoader(2, 8, jitter=True), 3, 3, hard_negative_sec=10)
    dl = make_dataloader(ds, batch_size=2, num_workers=2, shuffle=True, seed=0)
    batches = list(dl)
    assert sorted(i for b in batches for i in b["index"].tolist()) == list(range(5))
    b = batches[0]
    assert b["video"].shape == (2, 3, 2, 8, 8) and b["neg_video"].shape == (2, 3, 2, 8, 8)
    assert (
        b["verb_tags"].shape == (2, 3)
        and isinstance(b["text"], list)
        and isinstance(b["neg_video_uid"], list)
    )
    again = [torch.equal(ds[i]["video"], ds[i]["video"]) for i in range(2)]
    assert all(again)  # jitter seeded per (seed, epoch, index)


def test_frames_before_the_first_chunk_raise(tmp_path):
    write_mp4(tmp_path / "abc.mp4" / "1.mp4", 10, 10)  # chunk 0.mp4 missing
    with pytest.raises(VideoReadError) as e:
        ClipLoader(4, 16).load(tmp_path, "abc", 0.2, 0.8)
    assert "abc.mp4" in str(e.value) and "before the first chunk" in str(e.value)


def test_loader_pickles_without_open_readers(two_chunk_videos):
    import pickle

    class Model:  # the preprocessing fields of henasy.core.interface.VideoTextModel
        num_frames, image_size, pixel_mean, pixel_std = 4, 16, CLIP_MEAN, CLIP_STD

    loader = ClipLoader.for_model(Model())
    src = LavilaChunkSource(two_chunk_videos / "lavila")
    first = loader.load(src, "abc", 0.5, 1.5)
    clone = pickle.loads(pickle.dumps(loader))  # spawn-started workers receive a pickled copy
    assert torch.equal(clone.load(src, "abc", 0.5, 1.5), first)


class _CollectGarbage(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        import gc

        gc.collect()  # destroys, in the worker, readers the parent left as uncollected garbage
        return i


def test_forked_worker_survives_parent_reader_garbage(two_chunk_videos):
    import gc

    gc.disable()
    try:
        loader = ClipLoader(2, 8)
        loader.load(LavilaChunkSource(two_chunk_videos / "lavila"), "abc", 0.0, 1.0)
        cycle = [loader]
        cycle.append(cycle)  # only the cyclic GC can free it, so the forked child inherits it as garbage
        del cycle, loader
        dl = torch.utils.data.DataLoader(
            _CollectGarbage(), num_workers=1, timeout=30, multiprocessing_context="fork"
        )
        assert [int(b) for b in dl] == [0, 1]  # a hung decoder free would time out instead
    finally:
        gc.enable()


def test_backends_return_identical_frames(tmp_path):
    """PyAV (default) and decord give the same pixels for any frame order, repeats and keyframe jumps (the
    test videos have B-frames and a keyframe every 4 frames)."""
    from henasy.data.video import VideoReaderCache

    path = tmp_path / "v.mp4"
    write_mp4(path, 0, 30)
    pyav, dec = VideoReaderCache(backend="pyav"), VideoReaderCache(backend="decord")
    assert (pyav.open(path).num_frames, pyav.open(path).fps) == (
        dec.open(path).num_frames,
        dec.open(path).fps,
    )
    rng = np.random.default_rng(0)
    orders = [[0, 1, 2], [29, 3, 3, 17], [5, 6, 20, 21], [2, 1, 0]] + [
        list(rng.integers(0, 30, 5)) for _ in range(6)
    ]
    for ids in orders:
        a, b = pyav.get_batch(path, ids), dec.get_batch(path, ids)
        assert a.shape == (len(ids), 24, 32, 3) and np.array_equal(a, b), ids


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        ClipLoader(4, 16, backend="opencv")
