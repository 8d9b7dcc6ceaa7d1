"""Integration: the loaders read every file of the tiny synthetic dataset (both video layouts)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from henasy.core.errors import VideoReadError
from henasy.data.batching import make_dataloader
from henasy.data.egoclip import load_egoclip
from henasy.data.egoclip_dataset import EgoClipDataset
from henasy.data.egomcq import load_egomcq
from henasy.data.egtea import egtea_clip_relpath, load_action_index, load_split
from henasy.data.ek100 import (
    ek100_video_relpath,
    load_ek100_retrieval,
    load_epic_annotations,
    load_epic_classes,
)
from henasy.data.grounding import load_grounding, load_mask
from henasy.data.layout import DatasetLayout
from henasy.data.mq import load_clip_annotations, load_moments
from henasy.data.nlq import load_nlq
from henasy.data.taxonomy import load_taxonomy
from henasy.data.verb_phrases import load_verb_phrases
from henasy.data.video import AutoSource, ClipLoader, SingleFileSource


def manifest(root):
    return json.loads((root / "synth_manifest.json").read_text())


def test_synth_annotation_files(synth_tiny):
    lay = DatasetLayout(synth_tiny)
    verbs, nouns = load_taxonomy(lay.verb_taxonomy_csv), load_taxonomy(lay.noun_taxonomy_csv)
    clips = load_egoclip(lay.egoclip_csv, verb_taxonomy=verbs, noun_taxonomy=nouns)  # tags checked in range
    assert len(clips) > 0 and all(isinstance(t, list) for t in clips["tag_verb"])
    mcq = load_egomcq(lay.egomcq_json)
    assert {it.type for it in mcq} <= {1, 2} and all(len(it.choices) == 5 for it in mcq)
    phrases = load_verb_phrases(lay.verb_phrases_json)
    texts = set(clips["clip_text"]) | {c.clip_text for it in mcq for c in (it.query, *it.choices)}
    assert texts <= set(phrases)

    for split in ("train", "validation"):
        epic = load_epic_annotations(lay.epic_csv(split))
        assert (epic["stop_sec"] >= epic["start_sec"]).all()
    verb_classes, noun_classes = (
        load_epic_classes(lay.epic_classes_csv("verb")),
        load_epic_classes(lay.epic_classes_csv("noun")),
    )
    mir = load_ek100_retrieval(synth_tiny)
    assert mir.relevancy.shape == (len(mir.videos), len(mir.sentences))
    assert mir.videos["narration_id"].tolist() == epic["narration_id"].tolist()  # rows = validation rows
    assert mir.videos["verb_class"].max() < len(verb_classes) and mir.videos["noun_class"].max() < len(
        noun_classes
    )

    classes = load_action_index(lay.egtea_action_idx)
    for split in ("train_split1", "test_split1", "test_split2", "test_split3"):
        for clip in load_split(lay.egtea_split(split), classes):
            assert (lay.egtea_videos / egtea_clip_relpath(clip.clip_id)).is_file()

    for split in ("train", "val"):
        nlq = load_nlq(lay.nlq_json(split))
        assert nlq.queries and all(0 <= q.window[0] <= q.window[1] for q in nlq.queries)
        assert all(q.window[1] <= q.video_end_sec - q.video_start_sec + 1e-6 for q in nlq.queries)
    moments = {c.clip_uid for split in ("train", "val") for c in load_moments(lay.moments_json(split))}
    assert set(load_clip_annotations(lay.mq_clip_annotations_json)) <= moments

    for item in load_grounding(lay.grounding_json):
        mask = load_mask(item.mask_path)
        assert item.start_sec - 1e-6 <= mask.frame_times[0] and mask.frame_times[-1] <= item.end_sec + 1e-6
        assert any((mask.labels == e).any() for e in item.entity_ids)


def test_synth_every_video_reads(synth_tiny):
    lay, meta = DatasetLayout(synth_tiny), manifest(synth_tiny)
    size = (meta["frame_size"]["height"], meta["frame_size"]["width"])
    loader = ClipLoader(2, 32)
    ego = AutoSource(lay.ego4d_videos)
    uids = sorted(p.name[: -len(".mp4")] for p in lay.ego4d_videos.iterdir())
    for uid in uids:
        info = loader.video_info(ego, uid)
        assert info.fps == meta["fps"] and ego.layout_of(uid) == "lavila"
        ids = list(range(0, info.num_frames, max(1, info.num_frames // 8))) + [info.num_frames - 1]
        assert loader.read_frames(ego, uid, ids).shape == (len(ids), *size, 3)  # touches every chunk
    epic = SingleFileSource(lay.ek100_videos)
    for path in sorted(lay.ek100_videos.glob("*/*.MP4")):
        rel = ek100_video_relpath(path.parent.name, path.stem)
        assert loader.load(epic, rel, 0.0, loader.video_info(epic, rel).duration_sec).shape == (3, 2, 32, 32)
    egtea = SingleFileSource(lay.egtea_videos)
    for path in sorted(lay.egtea_videos.glob("*/*.mp4")):
        rel = f"{path.parent.name}/{path.name}"
        assert loader.load_frame_ids(egtea, rel, [0]).shape == (3, 1, 32, 32)


def test_synth_layouts_give_identical_clips(synth_tiny, synth_tiny_egovlp):
    chunk = manifest(synth_tiny_egovlp)["chunk_sec"]
    clips = load_egoclip(DatasetLayout(synth_tiny).egoclip_csv)
    crossing = clips[(clips["clip_start"] // chunk) != (clips["clip_end"] // chunk)]
    rows = pd_concat_head(crossing, clips)
    loader = ClipLoader(4, 32)
    lavila = AutoSource(DatasetLayout(synth_tiny).ego4d_videos)
    for chunk_sec in (chunk, None):  # explicit, and inferred from chunk 0
        egovlp = AutoSource(DatasetLayout(synth_tiny_egovlp).ego4d_videos, chunk_sec=chunk_sec)
        for _, r in rows.iterrows():
            a = loader.load(lavila, r.video_uid, r.clip_start, r.clip_end)
            b = loader.load(egovlp, r.video_uid, r.clip_start, r.clip_end)
            assert egovlp.layout_of(r.video_uid) == "egovlp" and torch.equal(a, b)


def pd_concat_head(crossing, clips, n=4):
    """The chunk-crossing rows plus the first ``n`` rows."""
    import pandas as pd

    return pd.concat([crossing, clips.head(n)])


def test_synth_training_dataset(synth_tiny):
    lay = DatasetLayout(synth_tiny)
    verbs, nouns = len(load_taxonomy(lay.verb_taxonomy_csv)), len(load_taxonomy(lay.noun_taxonomy_csv))
    ds = EgoClipDataset(
        synth_tiny, ClipLoader(4, 32, jitter=True), verbs, nouns, hard_negative_sec=10, hand_object=True
    )
    dl = make_dataloader(ds, batch_size=8, num_workers=2, shuffle=True, seed=1)
    seen, with_boxes = [], 0
    for batch in dl:
        seen += batch["index"].tolist()
        assert batch["video"].shape[1:] == (3, 4, 32, 32) and batch["neg_video"].shape == batch["video"].shape
        assert batch["verb_tags"].sum(dim=1).min() >= 1 and batch["noun_tags"].shape[1] == nouns
        boxes, mask = batch["boxes"], batch["box_mask"]
        assert boxes.min() >= 0 and boxes.max() <= 1 and not boxes[~mask].any()
        assert (boxes[mask][:, 2] > boxes[mask][:, 0]).all() and (boxes[mask][:, 3] > boxes[mask][:, 1]).all()
        with_boxes += int(mask.flatten(1).any(dim=1).sum())
        neg_same_video = np.array(batch["neg_video_uid"]) == np.array(batch["video_uid"])
        assert neg_same_video.mean() > 0.5  # negatives come from the same scene / video
    assert sorted(seen) == list(range(len(ds))) and dl.skips.count == 0
    assert with_boxes == len(ds)  # every clip has a box pickle entry with at least one detection


@pytest.mark.parametrize("bad", ["missing", "corrupt"])
def test_synth_broken_video_skip_policy(synth_tiny, tmp_path, bad):
    """A copy of the EgoClip videos with one chunk removed/corrupted: skipped and counted, or raised."""
    import shutil

    lay = DatasetLayout(synth_tiny)
    videos = tmp_path / "video_chunks"
    shutil.copytree(lay.ego4d_videos, videos)
    clips = load_egoclip(lay.egoclip_csv)
    victim = clips["video_uid"].iloc[0]
    first = videos / f"{victim}.mp4" / "0.mp4"
    if bad == "missing":
        first.unlink()
        if not any(first.parent.iterdir()):
            first.parent.rmdir()
    else:
        first.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64)
    n_victim = int(((clips["video_uid"] == victim) & (clips["clip_start"] < 30)).sum())
    ds = EgoClipDataset(synth_tiny, ClipLoader(2, 16), 64, 64, source=AutoSource(videos), metadata=clips)
    dl = make_dataloader(ds, batch_size=8, num_workers=0, on_error="skip")
    kept = sum(len(b["index"]) for b in dl)
    assert dl.skips.count == n_victim and kept == len(ds) - n_victim
    assert victim in dl.skips.examples[0].path
    with pytest.raises(VideoReadError) as e:
        list(make_dataloader(ds, batch_size=8, num_workers=0))
    assert victim in str(e.value)
