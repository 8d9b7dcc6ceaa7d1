"""Tests of the synthetic dataset generator (``henasy.synth``, ``bench data synth``).

They use the session fixtures ``synth_tiny`` / ``synth_tiny_egovlp`` (tests/conftest.py) and generate two
more tiny datasets (same seed, other seed) to check determinism.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import decord
import numpy as np
import pytest

from henasy.cli import main
from henasy.commands.data import SIZE_NAMES
from henasy.core.errors import BenchError
from henasy.data import safe_pickle
from henasy.data.sampling import segment_frame_ids
from henasy.synth import SIZES, generate
from henasy.synth.epic import EpicRow, relevancy_matrix
from henasy.synth.generate import MANIFEST, plan_dataset, prepare_out
from henasy.synth.handobj import frame_detections
from henasy.synth.language import ego4d_narration, verb_phrases
from henasy.synth.render import noun_colours
from henasy.synth.scene import Action, Entity, Step, VideoScript
from henasy.synth.world import HAND_IDS, MIRROR_VERBS, NOUN_INDEX, NOUNS, SHAPES, TEXTURES, VERB_INDEX, VERBS

FPS = 15
EGOCLIP_COLUMNS = (
    "clip_idx video_uid video_dur narration_source narration_ind narration_time clip_start clip_end "
    "clip_text tag_verb tag_noun"
).split()
EPIC_COLUMNS = (
    "narration_id participant_id video_id narration_timestamp start_timestamp stop_timestamp start_frame "
    "stop_frame narration verb verb_class noun noun_class all_nouns all_noun_classes"
).split()
LAYOUT_FILES = (
    "synth_manifest.json",
    "ego4d/egoclip.csv",
    "ego4d/narration_noun_taxonomy.csv",
    "ego4d/narration_verb_taxonomy.csv",
    "ego4d/egomcq.json",
    "ego4d/verb_phrases.json",
    "ego4d/nlq/nlq_train.json",
    "ego4d/nlq/nlq_val.json",
    "ego4d/mq/moments_train.json",
    "ego4d/mq/moments_val.json",
    "ego4d/mq/clip_annotations.json",
    "ek100/EPIC_100_train.csv",
    "ek100/EPIC_100_validation.csv",
    "ek100/EPIC_100_verb_classes.csv",
    "ek100/EPIC_100_noun_classes.csv",
    "ek100/retrieval_annotations/EPIC_100_retrieval_test.csv",
    "ek100/retrieval_annotations/EPIC_100_retrieval_test_sentence.csv",
    "ek100/retrieval_annotations/relevancy/caption_relevancy_EPIC_100_retrieval_test.pkl",
    "egtea/action_idx.txt",
    "egtea/train_split1.txt",
    "egtea/test_split1.txt",
    "egtea/test_split2.txt",
    "egtea/test_split3.txt",
    "grounding/grounding_val.json",
)


# ----------------------------------------------------------------------------------------------- helpers


def _csv(path: Path, delimiter: str = ",") -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        return list(reader.fieldnames or []), list(reader)


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _split_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def _frames(path: Path) -> np.ndarray:
    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(len(vr)))).asnumpy()


def _held_out(root: Path) -> set[tuple[int, int]]:
    pairs = _json(root / MANIFEST)["held_out"]["noun_verb_pairs"]
    return {(p["noun_index"], p["verb_index"]) for p in pairs}


def _phrase_pair(phrase: str) -> tuple[int, int]:
    """'picking up the cup next to the plate' → (noun index of cup, verb index of take)."""
    forms = sorted(((f.gerund, vi) for vi, v in enumerate(VERBS) for f in v.forms), key=lambda x: -len(x[0]))
    for gerund, vi in forms:  # longest first: "putting down" before "putting"
        if phrase.startswith(gerund + " "):
            rest = phrase[len(gerund) + 1 :].split(" next to ")[0]
            noun = rest.split(" ", 1)[1]  # drop the article
            return NOUN_INDEX[noun], vi
    raise AssertionError(f"cannot parse verb phrase {phrase!r}")


def _ego4d_chunks(root: Path, uid: str) -> list[tuple[float, Path]]:
    folder = root / "ego4d" / "video_chunks" / f"{uid}.mp4"
    return sorted((float(p.stem), p) for p in folder.glob("*.mp4"))


# ----------------------------------------------------------------------------------------------- world


def test_taxonomy_has_enough_distinct_nouns_and_verbs() -> None:
    assert len(NOUNS) >= 20 and len(VERBS) >= 10
    assert len({(n.shape, n.colour, n.texture) for n in NOUNS}) == len(NOUNS)  # appearance defines the noun
    assert all(n.shape in SHAPES and n.texture in TEXTURES for n in NOUNS)
    assert len({n.name for n in NOUNS}) == len(NOUNS) and len({v.name for v in VERBS}) == len(VERBS)
    for a, b in MIRROR_VERBS:
        assert a in VERB_INDEX and b in VERB_INDEX


def test_size_names_match_the_generator() -> None:
    assert tuple(SIZES) == SIZE_NAMES


def test_small_size_has_2000_training_clips_and_held_out_backgrounds_only_in_evaluation() -> None:
    plan = plan_dataset(0, SIZES["small"])
    assert sum(len(s.actions) for s in plan.ego_train) >= 2000
    # many short scenes, not few long ones: otherwise a model can memorise scenes (see sizes.py)
    assert len(plan.ego_train) >= 150 and max(len(s.actions) for s in plan.ego_train) <= 15
    train = plan.ego_train + [s for s, _ in plan.ek_train] + [s for s, _ in plan.egtea_train]
    evaluation = plan.ego_eval + [s for s, _ in plan.ek_val] + [s for s, _ in plan.egtea_eval]
    held = set(plan.world.held_out_backgrounds)
    assert held and not held & {s.background for s in train}
    assert held <= {s.background for s in evaluation}


def test_narration_and_verb_phrases_text() -> None:
    cup, knife = NOUN_INDEX["cup"], NOUN_INDEX["knife"]
    take, put = VERB_INDEX["take"], VERB_INDEX["put"]
    script = VideoScript(
        uid="v",
        dataset="ego4d",
        split="train",
        background=0,
        skin=(1, 1, 1),
        sleeve=(1, 1, 1),
        entities=(Entity(1, cup, 50, 40, 8, 0), Entity(2, knife, 80, 40, 8, 0)),
        actions=(),
        num_frames=30,
        fps=FPS,
        render_seed=(0, 0),
    )
    one = Action(0, (Step(take, 1, "left", 0),), 0.0, 1.0, 0.5, "the")
    assert ego4d_narration(script, one) == "#C C takes the cup"
    assert verb_phrases(script, one) == ["taking the cup"]
    two = Action(1, (Step(take, 1, "left", 0), Step(put, 2, "right", 0, ref=1)), 0.0, 1.0, 0.5, "the")
    assert ego4d_narration(script, two) == "#C C takes the cup and puts the knife next to the cup"
    assert verb_phrases(script, two) == ["taking the cup", "putting the knife next to the cup"]


# ----------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files_and_frames(synth_tiny: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, seed=0, size="tiny", progress=False, workers=2)  # other worker count, same output
    assert _files(again) == _files(synth_tiny)
    for rel in _files(synth_tiny):
        assert (again / rel).read_bytes() == (synth_tiny / rel).read_bytes(), rel
    mp4s = [p for p in _files(synth_tiny) if p.lower().endswith(".mp4")]
    for rel in (mp4s[0], mp4s[len(mp4s) // 2], mp4s[-1]):
        a, b = _frames(synth_tiny / rel), _frames(again / rel)
        assert a.shape == b.shape and np.array_equal(a, b), rel


def test_other_seed_gives_other_data(synth_tiny: Path, tmp_path: Path) -> None:
    other = tmp_path / "seed1"
    generate(other, seed=1, size="tiny", progress=False)
    for rel in (
        "ego4d/egoclip.csv",
        "ego4d/egomcq.json",
        "ek100/EPIC_100_train.csv",
        "grounding/grounding_val.json",
    ):
        assert (other / rel).read_bytes() != (synth_tiny / rel).read_bytes(), rel
    video = "ek100/video_ht256px/P01/P01_01.MP4"  # same file name under both seeds
    a, b = _frames(synth_tiny / video), _frames(other / video)
    n = min(len(a), len(b))
    assert not np.array_equal(a[:n], b[:n])


# ----------------------------------------------------------------------------------------------- layout


def test_every_layout_file_exists_with_official_columns(synth_tiny: Path) -> None:
    for rel in LAYOUT_FILES:
        assert (synth_tiny / rel).is_file(), rel
    header, rows = _csv(synth_tiny / "ego4d/egoclip.csv", "\t")
    assert header == EGOCLIP_COLUMNS and rows
    for row in rows:
        assert row["clip_text"].startswith("#C C ")
        assert all(
            isinstance(t, int) for t in ast.literal_eval(row["tag_verb"]) + ast.literal_eval(row["tag_noun"])
        )
        assert float(row["clip_start"]) < float(row["clip_end"]) <= float(row["video_dur"])
    for kind in ("noun", "verb"):
        header, rows = _csv(synth_tiny / f"ego4d/narration_{kind}_taxonomy.csv")
        assert header == ["label", "group"] and all(
            isinstance(ast.literal_eval(r["group"]), list) for r in rows
        )
    for rel in (
        "EPIC_100_train.csv",
        "EPIC_100_validation.csv",
        "retrieval_annotations/EPIC_100_retrieval_test.csv",
    ):
        header, rows = _csv(synth_tiny / "ek100" / rel)
        assert header == EPIC_COLUMNS and rows
        for row in rows:
            assert len(row["start_timestamp"]) == len("00:00:00.00") and len(row["narration_timestamp"]) == 12
            assert (
                len(ast.literal_eval(row["all_nouns"])) == len(ast.literal_eval(row["all_noun_classes"])) >= 1
            )
    _, val = _csv(synth_tiny / "ek100/EPIC_100_validation.csv")
    _, test = _csv(synth_tiny / "ek100/retrieval_annotations/EPIC_100_retrieval_test.csv")
    assert val == test
    for kind in ("verb", "noun"):
        header, rows = _csv(synth_tiny / f"ek100/EPIC_100_{kind}_classes.csv")
        assert header == ["id", "key", "instances", "category"]
        assert [int(r["id"]) for r in rows] == list(range(len(rows)))
    header, _ = _csv(synth_tiny / "ek100/retrieval_annotations/EPIC_100_retrieval_test_sentence.csv")
    assert header == ["narration_id", "narration"]
    for line in (synth_tiny / "egtea/action_idx.txt").read_text().splitlines():
        assert len(line.split()) >= 2 and line.split()[-1].isdigit()
    for name in ("train_split1", "test_split1", "test_split2", "test_split3"):
        lines = _split_lines(synth_tiny / f"egtea/{name}.txt")
        assert lines and all(len(parts) == 4 and all(p.isdigit() for p in parts[1:]) for parts in lines)
    manifest = _json(synth_tiny / MANIFEST)
    assert (manifest["seed"], manifest["size"], manifest["fps"], manifest["video_layout"]) == (
        0,
        "tiny",
        FPS,
        "lavila",
    )


def test_clips_cross_chunk_boundaries(synth_tiny: Path) -> None:
    chunk = _json(synth_tiny / MANIFEST)["chunk_sec"]
    _, rows = _csv(synth_tiny / "ego4d/egoclip.csv", "\t")
    assert any(float(r["clip_start"]) // chunk != float(r["clip_end"]) // chunk for r in rows)


def test_every_mp4_decodes_to_the_expected_frame_count(synth_tiny: Path) -> None:
    chunk_frames = _json(synth_tiny / MANIFEST)["chunk_sec"] * FPS
    _, rows = _csv(synth_tiny / "ego4d/egoclip.csv", "\t")
    durations = {r["video_uid"]: float(r["video_dur"]) for r in rows}
    for item in _json(synth_tiny / "ego4d/egomcq.json").values():
        for clip in [item["query"], *item["choices"].values()]:
            durations[clip["video_uid"]] = float(clip["video_dur"])
    assert len(list((synth_tiny / "ego4d/video_chunks").iterdir())) == len(durations)
    for uid, duration in durations.items():
        chunks = _ego4d_chunks(synth_tiny, uid)
        lengths = []
        for k, (start, path) in enumerate(chunks):
            assert start == k * chunk_frames / FPS
            vr = decord.VideoReader(str(path))
            assert vr.get_avg_fps() == FPS and vr[len(vr) - 1].shape == (96, 128, 3)
            lengths.append(len(vr))
        assert sum(lengths) == round(duration * FPS), uid
        assert all(n == chunk_frames for n in lengths[:-1]) and 0 < lengths[-1] <= chunk_frames
    for rel in ("EPIC_100_train.csv", "EPIC_100_validation.csv"):
        _, rows = _csv(synth_tiny / "ek100" / rel)
        for vid in {r["video_id"] for r in rows}:
            pid = vid.split("_")[0]
            vr = decord.VideoReader(str(synth_tiny / "ek100/video_ht256px" / pid / f"{vid}.MP4"))
            assert len(vr) >= max(int(r["stop_frame"]) for r in rows if r["video_id"] == vid)
            assert len(vr) % FPS == 0 and vr[len(vr) - 1].shape == (96, 128, 3)
    clips = {
        parts[0]
        for name in ("train_split1", "test_split1")
        for parts in _split_lines(synth_tiny / f"egtea/{name}.txt")
    }
    assert len(list((synth_tiny / "egtea/cropped_clips").rglob("*.mp4"))) == len(clips)
    for clip_id in clips:
        fields = clip_id.split("-")
        first, last = int(fields[-2][1:]), int(fields[-1][1:])
        vr = decord.VideoReader(
            str(synth_tiny / "egtea/cropped_clips" / "-".join(fields[:3]) / f"{clip_id}.mp4")
        )
        assert len(vr) == last - first and vr[len(vr) - 1].shape == (96, 128, 3)


def test_egovlp_layout_has_numbered_chunks_and_the_same_annotations(
    synth_tiny: Path, synth_tiny_egovlp: Path
) -> None:
    root = synth_tiny_egovlp
    assert _json(root / MANIFEST)["video_layout"] == "egovlp"
    for folder in (root / "ego4d/video_chunks").iterdir():
        names = sorted(p.name for p in folder.iterdir())
        assert names == [f"{k}.mp4" for k in range(len(names))]
        lavila = _ego4d_chunks(synth_tiny, folder.name)
        assert len(lavila) == len(names)
        assert (folder / "0.mp4").read_bytes() == lavila[0][1].read_bytes()
    for rel in LAYOUT_FILES[1:]:
        assert (root / rel).read_bytes() == (synth_tiny / rel).read_bytes(), rel


# ----------------------------------------------------------------------------------------------- held out


def test_held_out_compositions_absent_from_training_and_present_in_evaluation(synth_tiny: Path) -> None:
    held = _held_out(synth_tiny)
    assert held
    phrases = _json(synth_tiny / "ego4d/verb_phrases.json")
    _, rows = _csv(synth_tiny / "ego4d/egoclip.csv", "\t")
    train_pairs = {_phrase_pair(p) for r in rows for p in phrases[r["clip_text"]]}
    assert not train_pairs & held
    mcq = _json(synth_tiny / "ego4d/egomcq.json")
    mcq_pairs = {_phrase_pair(p) for item in mcq.values() for p in phrases[item["query"]["clip_text"]]}
    assert held <= mcq_pairs

    def epic_pairs(rel: str) -> set[tuple[int, int]]:
        _, rows = _csv(synth_tiny / "ek100" / rel)
        return {(int(r["noun_class"]), int(r["verb_class"])) for r in rows}

    assert not epic_pairs("EPIC_100_train.csv") & held
    assert held <= epic_pairs("EPIC_100_validation.csv")

    def egtea_pairs(name: str) -> set[tuple[int, int]]:
        return {(int(p[3]) - 1, int(p[2]) - 1) for p in _split_lines(synth_tiny / f"egtea/{name}.txt")}

    assert not egtea_pairs("train_split1") & held
    for name in ("test_split1", "test_split2", "test_split3"):
        assert held <= egtea_pairs(name)


# ----------------------------------------------------------------------------------------------- EgoMCQ


def test_egomcq_types_answers_and_videos(synth_tiny: Path) -> None:
    mcq = _json(synth_tiny / "ego4d/egomcq.json")
    _, rows = _csv(synth_tiny / "ego4d/egoclip.csv", "\t")
    train_videos = {r["video_uid"] for r in rows}
    assert list(mcq) == [str(i) for i in range(len(mcq))]
    assert {item["types"] for item in mcq.values()} == {1, 2}
    for item in mcq.values():
        choices = [item["choices"][str(j)] for j in range(5)]
        assert list(item["choices"]) == ["0", "1", "2", "3", "4"] and 0 <= item["answer"] < 5
        assert choices[item["answer"]] == item["query"]
        assert len({c["clip_text"] for c in choices}) == 5  # answerable: one matching narration
        videos = [c["video_uid"] for c in choices]
        if item["types"] == 1:
            assert len(set(videos)) == 5
        else:
            assert set(videos) == {item["query"]["video_uid"]}
        assert not set(videos) & train_videos
        for c in choices:
            assert {"video_uid", "clip_start", "clip_end", "clip_text", "tag_verb", "tag_noun"} <= set(c)


# ----------------------------------------------------------------------------------------------- EK100 relevancy


def test_relevancy_matrix_hand_computed() -> None:
    def row(verb: int, nouns: tuple[int, ...]) -> EpicRow:
        return EpicRow("n", "P01", "P01_01", 0, 0, 1, FPS, "x", "v", verb, ("a",) * len(nouns), nouns, False)

    videos = [row(0, (1,)), row(0, (1, 2)), row(3, (2,))]
    rel = relevancy_matrix(videos, videos)
    expected = np.array(
        [
            [1.0, 0.5 + 0.5 * 1 / 2, 0.0],
            [0.5 + 0.5 * 1 / 2, 1.0, 0.5 * 1 / 2],
            [0.0, 0.5 * 1 / 2, 1.0],
        ]
    )
    np.testing.assert_allclose(rel, expected)


def test_relevancy_pickle_follows_the_jpose_rule(synth_tiny: Path) -> None:
    folder = synth_tiny / "ek100/retrieval_annotations"
    _, videos = _csv(folder / "EPIC_100_retrieval_test.csv")
    _, sentences = _csv(folder / "EPIC_100_retrieval_test_sentence.csv")
    rel = safe_pickle.load(folder / "relevancy/caption_relevancy_EPIC_100_retrieval_test.pkl")
    assert (
        isinstance(rel, np.ndarray) and rel.dtype == np.float64 and rel.shape == (len(videos), len(sentences))
    )
    assert len({s["narration"] for s in sentences}) == len(sentences) == len({v["narration"] for v in videos})
    by_id = {v["narration_id"]: v for v in videos}
    for i, v in enumerate(videos):
        for j, s in enumerate(sentences):
            sv = by_id[s["narration_id"]]
            a, b = set(ast.literal_eval(v["all_noun_classes"])), set(ast.literal_eval(sv["all_noun_classes"]))
            expected = 0.5 * (v["verb_class"] == sv["verb_class"]) + 0.5 * len(a & b) / len(a | b)
            assert math.isclose(rel[i, j], expected), (i, j)
            if v["narration"] == s["narration"]:
                assert rel[i, j] == 1.0
    assert ((rel > 0) & (rel < 1)).any()  # partial matches exist


# ----------------------------------------------------------------------------------------------- boxes


def test_segment_frame_ids_hand_computed() -> None:
    assert segment_frame_ids(0, 30, 4) == [3, 10, 18, 25]
    assert segment_frame_ids(10, 14, 4) == [10, 11, 12, 12]  # size 0.75: (10,11) (11,12) (12,12) (12,13)


def test_frame_detections_on_a_hand_made_label_map() -> None:
    labels = np.zeros((20, 30), dtype=np.uint8)
    labels[2:6, 3:9] = 1  # entity 1: box x 3..9, y 2..6
    labels[10:20, 20:26] = HAND_IDS["right"]  # right hand: box x 20..26, y 10..20
    labels[0:2, 28:30] = 2  # entity 2
    hands, objects = frame_detections(labels, {HAND_IDS["right"]: 1, HAND_IDS["left"]: 0}, active=[1])
    assert hands.dtype == np.float32 and hands.shape == (1, 10)
    np.testing.assert_allclose(hands[0, :4], [20, 10, 26, 20])
    assert hands[0, 5] == 3 and hands[0, 9] == 1  # portable-object contact, right hand
    dx, dy = 6.0 - 23.0, 4.0 - 15.0  # from the hand's centre to the object's centre
    np.testing.assert_allclose(hands[0, 7:9], np.array([dx, dy]) / math.hypot(dx, dy), rtol=1e-5)
    np.testing.assert_allclose(objects[:, :5], [[3, 2, 9, 6, 0.97], [28, 0, 30, 2, 0.5]])
    assert frame_detections(np.zeros((4, 4), np.uint8), {}, []) == (None, None)


def test_hand_object_pickles_cover_every_training_clip(synth_tiny: Path) -> None:
    _, rows = _csv(synth_tiny / "ego4d/egoclip.csv", "\t")
    contact = 0
    for r in rows:
        start = float(r["clip_start"])
        data = safe_pickle.load(
            synth_tiny / "ego4d/hand_object" / r["video_uid"] / f"{int(start // 600)}.handobj.pkl"
        )
        entry = data[round(start, 3)]
        assert entry["info"] == {"height": 96, "width": 128}
        assert sorted(k for k in entry if k != "info") == [0, 1, 2, 3]
        for f in range(4):
            for name in ("hand_dets", "obj_dets"):
                dets = entry[f][name]
                if dets is None:
                    continue
                assert dets.dtype == np.float32 and dets.ndim == 2 and dets.shape[1] == 10
                assert (dets[:, 0] < dets[:, 2]).all() and (dets[:, 1] < dets[:, 3]).all()
                assert (dets[:, :4] >= 0).all() and (dets[:, 2] <= 128).all() and (dets[:, 3] <= 96).all()
                assert ((dets[:, 4] > 0) & (dets[:, 4] <= 1)).all()
            if entry[f]["hand_dets"] is not None:
                assert set(entry[f]["hand_dets"][:, 9].tolist()) <= {0.0, 1.0}
                contact += int((entry[f]["hand_dets"][:, 5] == 3).sum())
    assert contact > 0


# ----------------------------------------------------------------------------------------------- grounding


def test_grounding_masks_match_the_video(synth_tiny: Path) -> None:
    entries = _json(synth_tiny / "grounding/grounding_val.json")
    assert {e["query_type"] for e in entries} == {"noun", "verb_phrase"}
    decoded: dict[str, np.ndarray] = {}
    for e in entries:
        with np.load(synth_tiny / "grounding" / e["mask_file"], allow_pickle=False) as npz:
            labels, times = npz["labels"], npz["frame_times"]
        assert labels.dtype == np.uint8 and labels.ndim == 3 and labels.shape[1:] == (96, 128)
        assert (
            times.shape == (len(labels),) and (times >= e["start_sec"]).all() and (times < e["end_sec"]).all()
        )
        for entity_id in e["entity_ids"]:
            assert (labels == entity_id).any(), (e["clip_id"], entity_id)  # visible somewhere in the clip
        if e["query_type"] == "verb_phrase":
            assert set(e["entity_ids"]) & set(HAND_IDS.values())
            continue
        uid = e["video_uid"]
        if uid not in decoded:
            decoded[uid] = np.concatenate([_frames(p) for _, p in _ego4d_chunks(synth_tiny, uid)])
        frames = decoded[uid][np.rint(times * FPS).astype(int)].astype(np.float64)
        pixels = frames[labels == e["entity_ids"][0]]  # (N, 3) decoded colours under the mask
        base, second = noun_colours(NOUNS[NOUN_INDEX[e["query"]]])
        dist = np.minimum(np.linalg.norm(pixels - base, axis=1), np.linalg.norm(pixels - second, axis=1))
        assert (dist < 60).mean() > 0.75, e["query"]


# ----------------------------------------------------------------------------------------------- NLQ / MQ / phrases


def test_nlq_and_mq_files(synth_tiny: Path) -> None:
    for split in ("train", "val"):
        nlq = _json(synth_tiny / f"ego4d/nlq/nlq_{split}.json")
        assert {"version", "date", "description", "manifest", "videos"} <= set(nlq)
        queries = 0
        for video in nlq["videos"]:
            assert video["split"] == split
            for clip in video["clips"]:
                length = clip["video_end_sec"] - clip["video_start_sec"]
                for ann in clip["annotations"]:
                    for q in ann["language_queries"]:
                        queries += 1
                        assert {"template", "query", "slot_x", "verb_x", "raw_tags"} <= set(q)
                        assert 0 <= q["clip_start_sec"] < q["clip_end_sec"] <= length
                        assert math.isclose(
                            q["video_start_sec"], q["clip_start_sec"] + clip["video_start_sec"], abs_tol=2e-3
                        )
        assert queries > 0
    converted = _json(synth_tiny / "ego4d/mq/clip_annotations.json")
    secondary = 0
    for split in ("train", "val"):
        for video in _json(synth_tiny / f"ego4d/mq/moments_{split}.json")["videos"]:
            for clip in video["clips"]:
                labels = [lab for ann in clip["annotations"] for lab in ann["labels"]]
                secondary += sum(not lab["primary"] for lab in labels)
                entry = converted[clip["clip_uid"]]
                assert entry["annotations"] == [lab for lab in labels if lab["primary"]]
                assert (entry["video_id"], entry["subset"]) == (video["video_uid"], split)
                assert entry["parent_start_sec"] == clip["video_start_sec"]
    assert secondary > 0  # the converter's primary-only rule is exercised


def test_verb_phrases_cover_every_narration(synth_tiny: Path) -> None:
    phrases = _json(synth_tiny / "ego4d/verb_phrases.json")
    _, rows = _csv(synth_tiny / "ego4d/egoclip.csv", "\t")
    texts = {r["clip_text"] for r in rows}
    for item in _json(synth_tiny / "ego4d/egomcq.json").values():
        texts |= {c["clip_text"] for c in item["choices"].values()}
    assert texts <= set(phrases)
    assert any(" and " in t for t in texts)
    for text in texts:
        assert len(phrases[text]) == text.count(" and ") + 1
        for p in phrases[text]:
            _phrase_pair(p)


# ----------------------------------------------------------------------------------------------- CLI


def test_out_folder_rules(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(BenchError, match="not empty"):
        prepare_out(busy, force=False)
    with pytest.raises(BenchError, match="has no synth_manifest.json"):
        prepare_out(busy, force=True)  # not a synthetic dataset: refused, nothing is deleted
    assert (busy / "notes.txt").read_text() == "mine"
    old = tmp_path / "old"
    (old / "ego4d").mkdir(parents=True)
    (old / "ego4d" / "egoclip.csv").write_text("stale")
    (old / MANIFEST).write_text('{"generator": "henasy.synth"}')
    prepare_out(old, force=True)
    assert not (old / "ego4d").exists() and not (old / MANIFEST).exists()
    prepare_out(tmp_path / "new", force=False)  # absent is fine


def test_cli_refuses_a_non_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.txt").write_text("x")
    assert main(["data", "synth", "--out", str(tmp_path), "--size", "tiny"]) == 2
    assert "--force" in capsys.readouterr().err


def test_cli_help_is_fast_and_does_not_import_torch_or_the_generator() -> None:
    code = (
        "import sys\n"
        "from henasy.cli import main\n"
        "try:\n    main(['data', 'synth', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'henasy.synth' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--layout" in out and "examples:" in out
    assert out.strip().splitlines()[-1] == "False False"


def test_generator_does_not_import_torch() -> None:
    code = "import sys\nimport henasy.synth.generate\nprint('torch' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("size", sorted(SIZES))
def test_every_size_asks_all_its_egomcq_items(size: str) -> None:
    """EgoMCQ asks each evaluation clip at most once: a size must have enough clips for its ``mcq_items``
    (before generator version 2, 'medium' silently produced 1,600 of its 2,000)."""
    from collections import Counter

    from henasy.synth import ego4d
    from henasy.synth.generate import _STREAMS, stream

    spec = SIZES[size]
    plan = plan_dataset(0, spec)
    clips = [c for s in plan.ego_eval for c in ego4d.narration_clips(s, plan.world)]
    items = ego4d.build_egomcq(clips, spec.mcq_items, stream(0, _STREAMS["egomcq"]))
    types = Counter(item["types"] for item in items.values())
    assert len(items) == spec.mcq_items and types[1] == types[2] == spec.mcq_items // 2
