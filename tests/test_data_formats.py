"""Annotation loaders on small hand-written files: good input, and bad input naming file + line/column/key."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from henasy.core.errors import DataFormatError
from henasy.data.egoclip import EGOCLIP_COLUMNS, load_egoclip
from henasy.data.egomcq import load_egomcq
from henasy.data.egtea import egtea_clip_relpath, load_action_index, load_split
from henasy.data.ek100 import (
    EPIC_COLUMNS,
    ek100_video_relpath,
    load_ek100_retrieval,
    load_epic_annotations,
    load_epic_classes,
    load_relevancy,
)
from henasy.data.grounding import load_grounding, load_mask
from henasy.data.handobj import HandObjectStore, boxes_from_entry, handobj_relpath
from henasy.data.layout import DatasetLayout
from henasy.data.mq import load_clip_annotations, load_moments
from henasy.data.nlq import load_nlq
from henasy.data.taxonomy import load_taxonomy
from henasy.data.transforms import crop_geometry
from henasy.data.verb_phrases import load_verb_phrases

# ------------------------------------------------------------------------------------------- Ego4D


def write_taxonomy(path, labels):
    lines = ["label,group"] + [f"{lab},\"['{lab}', '{lab}s']\"" for lab in labels]
    path.write_text("\n".join(lines) + "\n")


def test_taxonomy(tmp_path):
    p = tmp_path / "narration_noun_taxonomy.csv"
    write_taxonomy(p, ["apple", "knife"])
    tax = load_taxonomy(p)
    assert tax.labels == ["apple", "knife"] and tax.groups[1] == ["knife", "knifes"] and len(tax) == 2
    assert tax.synonym_index()["apples"] == 0
    p.write_text("label,group\napple,\"['apple'\"\n")
    with pytest.raises(DataFormatError) as e:
        load_taxonomy(p)
    assert (e.value.line, e.value.column) == (2, "group")


EGOCLIP_ROW = [
    "0",
    "vid_a",
    "100.0",
    "narration_pass_1",
    "3",
    "10.5",
    "10.0",
    "11.0",
    "#C C picks a knife",
    "[1]",
    "[0, 2]",
]


def write_egoclip(path, rows):
    path.write_text("\n".join(["\t".join(EGOCLIP_COLUMNS)] + ["\t".join(r) for r in rows]) + "\n")


def test_egoclip_good(tmp_path):
    p = tmp_path / "egoclip.csv"
    rows = [
        EGOCLIP_ROW,
        ["1", "vid_b", "50", "narration_pass_2", "0", "3", "2.5", "3.5", "#C C cuts", "[0, 1]", "[]"],
    ]
    write_egoclip(p, rows)
    df = load_egoclip(p, num_verbs=2, num_nouns=3)
    assert list(df.columns) == list(EGOCLIP_COLUMNS)
    assert df["tag_verb"].tolist() == [[1], [0, 1]] and df["tag_noun"].tolist() == [[0, 2], []]
    assert df["clip_start"].tolist() == [10.0, 2.5] and df["clip_idx"].dtype == np.int64
    assert df["video_uid"].tolist() == ["vid_a", "vid_b"]


@pytest.mark.parametrize(
    "column, value, line, fragment",
    [
        ("tag_verb", "[1, ", 3, "tag_verb"),
        ("tag_noun", "[7]", 3, "outside the noun taxonomy"),
        ("clip_start", "abc", 3, "clip_start"),
        ("clip_end", "inf", 3, "finite"),  # reversed bounds load: tests/test_real_ego4d.py
    ],
)
def test_egoclip_bad_cells(tmp_path, column, value, line, fragment):
    p = tmp_path / "egoclip.csv"
    bad = list(EGOCLIP_ROW)
    bad[EGOCLIP_COLUMNS.index(column)] = value
    write_egoclip(p, [EGOCLIP_ROW, bad])
    with pytest.raises(DataFormatError) as e:
        load_egoclip(p, num_verbs=2, num_nouns=3)
    assert e.value.line == line and e.value.column == column and fragment in str(e.value)
    assert "egoclip.csv" in str(e.value)


def test_egoclip_missing_column(tmp_path):
    p = tmp_path / "egoclip.csv"
    cols = [c for c in EGOCLIP_COLUMNS if c != "tag_noun"]
    p.write_text("\t".join(cols) + "\n" + "\t".join(EGOCLIP_ROW[:-1]) + "\n")
    with pytest.raises(DataFormatError) as e:
        load_egoclip(p)
    assert "['tag_noun']" in str(e.value) and "egoclip.csv" in str(e.value)


def test_egoclip_taxonomy_check(tmp_path):
    p = tmp_path / "egoclip.csv"
    write_egoclip(p, [EGOCLIP_ROW])
    verbs, nouns = tmp_path / "v.csv", tmp_path / "n.csv"
    write_taxonomy(verbs, ["take", "cut"])
    write_taxonomy(nouns, ["apple", "knife"])  # noun index 2 is out of range
    with pytest.raises(DataFormatError) as e:
        load_egoclip(p, verb_taxonomy=load_taxonomy(verbs), noun_taxonomy=load_taxonomy(nouns))
    assert e.value.line == 2 and e.value.column == "tag_noun"


def mcq_clip(uid="v1", start=1.0, end=2.0, text="#C C opens a door"):
    return {
        "video_uid": uid,
        "clip_start": start,
        "clip_end": end,
        "clip_text": text,
        "tag_verb": "[1]",
        "tag_noun": [2],
    }


def mcq_item(answer=2, types=2):
    return {
        "answer": answer,
        "query": mcq_clip(),
        "choices": {str(i): mcq_clip(start=i, end=i + 1.0) for i in range(5)},
        "types": types,
    }


def test_egomcq_good(tmp_path):
    p = tmp_path / "egomcq.json"
    data = {"1": mcq_item(1, 1), "0": mcq_item(4, 2)}
    data["0"]["choices"]["3"]["clip_start"] = "3.0"  # numeric strings are accepted (LaViLa wraps in float())
    p.write_text(json.dumps(data))
    items = load_egomcq(p)
    assert [it.key for it in items] == ["0", "1"]
    assert items[0].answer == 4 and items[0].type == 2 and items[1].type == 1
    assert len(items[0].choices) == 5 and items[0].choices[3].clip_start == 3.0
    assert items[0].query.tag_verb == (1,) and items[0].query.tag_noun == (2,)


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (
            lambda d: d["12"]["choices"]["3"].pop("clip_start"),
            'key "12" → "choices" → "3": missing "clip_start"',
        ),
        (lambda d: d["12"].__setitem__("answer", 5), 'key "12" → "answer": answer 5'),
        (lambda d: d["12"].__setitem__("types", 3), 'key "12" → "types": unknown type 3'),
        (lambda d: d["12"]["choices"].pop("2"), 'key "12" → "choices": choice keys'),
        (
            lambda d: d["12"]["query"].__setitem__("clip_text", 7),
            'key "12" → "query" → "clip_text": expected a string',
        ),
    ],
)
def test_egomcq_bad(tmp_path, mutate, fragment):
    data = {"12": mcq_item()}
    mutate(data)
    p = tmp_path / "egomcq.json"
    p.write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as e:
        load_egomcq(p)
    assert str(e.value).startswith(f"{p}: ") and fragment in str(e.value)


def test_verb_phrases(tmp_path):
    p = tmp_path / "verb_phrases.json"
    p.write_text(json.dumps({"#C C cuts an onion": ["cuts an onion"]}))
    assert load_verb_phrases(p) == {"#C C cuts an onion": ["cuts an onion"]}
    p.write_text(json.dumps({"#C C cuts": "cuts"}))
    with pytest.raises(DataFormatError) as e:
        load_verb_phrases(p)
    assert 'key "#C C cuts": expected a list' in str(e.value)


# ------------------------------------------------------------------------------------------- EK100


def epic_row(nid, verb_class=0, nouns=(1,), start="00:00:01.00", stop="00:00:02.50", vid="P01_01"):
    noun_names = "[" + ", ".join(f"'n{n}'" for n in nouns) + "]"
    noun_ids = "[" + ", ".join(str(n) for n in nouns) + "]"
    cells = [nid, vid.split("_")[0], vid, start, start, stop, "60", "150", f"verb{verb_class} n{nouns[0]}",
             f"verb{verb_class}", str(verb_class), f"n{nouns[0]}", str(nouns[0]), noun_names, noun_ids]  # fmt: skip
    return ",".join(f'"{c}"' if "," in c else c for c in cells)


def write_epic(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([",".join(EPIC_COLUMNS)] + rows) + "\n")


def test_epic_annotations(tmp_path):
    p = tmp_path / "EPIC_100_validation.csv"
    write_epic(
        p, [epic_row("P01_01_0", nouns=(1, 4)), epic_row("P01_01_1", start="01:00:00.25", stop="01:00:03.00")]
    )
    df = load_epic_annotations(p)
    assert df["start_sec"].tolist() == [1.0, 3600.25] and df["stop_sec"].tolist() == [2.5, 3603.0]
    assert df["all_noun_classes"].tolist() == [[1, 4], [1]] and df["all_nouns"][0] == ["n1", "n4"]
    assert df["verb_class"].dtype == np.int64
    assert ek100_video_relpath("P01", "P01_01") == "P01/P01_01.MP4"


@pytest.mark.parametrize(
    "row, column, fragment",
    [
        (epic_row("P01_01_1", start="00:00:xx.00"), "start_timestamp", "HH:MM:SS"),
        (epic_row("P01_01_1").replace("['n1']", "['n1'"), "all_nouns", "all_nouns"),
        (epic_row("P01_01_1", stop="00:00:00.50"), "stop_timestamp", "before start"),
        (epic_row("P01_01_0"), "narration_id", "duplicate"),
    ],
)
def test_epic_annotations_bad(tmp_path, row, column, fragment):
    p = tmp_path / "EPIC_100_train.csv"
    write_epic(p, [epic_row("P01_01_0"), row])
    with pytest.raises(DataFormatError) as e:
        load_epic_annotations(p)
    assert (e.value.line, e.value.column) == (3, column) and fragment in str(e.value)
    assert "EPIC_100_train.csv" in str(e.value)


def test_epic_classes(tmp_path):
    p = tmp_path / "EPIC_100_verb_classes.csv"
    p.write_text("id,key,instances,category\n0,take,\"['take', 'grab']\",retrieve\n1,put,['put'],leave\n")
    df = load_epic_classes(p)
    assert df["key"].tolist() == ["take", "put"] and df["instances"][0] == ["take", "grab"]
    p.write_text("id,key,instances,category\n0,take,['take'],retrieve\n2,put,['put'],leave\n")
    with pytest.raises(DataFormatError) as e:
        load_epic_classes(p)
    assert (e.value.line, e.value.column) == (3, "id")


def write_retrieval(root, n_videos=3, sentence_ids=("P01_01_0", "P01_01_2"), rel_shape=None):
    layout = DatasetLayout(root)
    write_epic(
        layout.ek100_retrieval_csv, [epic_row(f"P01_01_{i}", verb_class=i % 2) for i in range(n_videos)]
    )
    layout.ek100_retrieval_sentence_csv.write_text(
        "narration_id,narration\n" + "".join(f"{s},caption {s}\n" for s in sentence_ids)
    )
    layout.ek100_relevancy_pkl.parent.mkdir(parents=True, exist_ok=True)
    rel = np.random.default_rng(0).random(rel_shape or (n_videos, len(sentence_ids)))
    layout.ek100_relevancy_pkl.write_bytes(pickle.dumps(rel))
    return layout, rel


def test_ek100_retrieval_bundle(tmp_path):
    layout, rel = write_retrieval(tmp_path)
    mir = load_ek100_retrieval(tmp_path)
    assert len(mir.videos) == 3 and len(mir.sentences) == 2
    assert mir.sentence_rows.tolist() == [0, 2]
    np.testing.assert_array_equal(mir.relevancy, rel)


def test_ek100_relevancy_wrong_shape(tmp_path):
    layout, _ = write_retrieval(tmp_path, rel_shape=(3, 5))
    with pytest.raises(DataFormatError) as e:
        load_ek100_retrieval(tmp_path)
    assert "caption_relevancy_EPIC_100_retrieval_test.pkl" in str(e.value) and "(3, 5)" in str(e.value)
    assert "(3, 2)" in str(e.value)


def test_ek100_relevancy_not_an_array(tmp_path):
    p = tmp_path / "rel.pkl"
    p.write_bytes(pickle.dumps([[1.0, 0.0]]))
    with pytest.raises(DataFormatError) as e:
        load_relevancy(p)
    assert "rel.pkl" in str(e.value) and "2-D float numpy array" in str(e.value)


def test_ek100_sentence_not_in_videos(tmp_path):
    write_retrieval(tmp_path, sentence_ids=("P01_01_0", "P09_99_9"))
    with pytest.raises(DataFormatError) as e:
        load_ek100_retrieval(tmp_path)
    assert (e.value.line, e.value.column) == (3, "narration_id") and "P09_99_9" in str(e.value)


# ------------------------------------------------------------------------------------------- EGTEA


def test_egtea(tmp_path):
    idx = tmp_path / "action_idx.txt"
    idx.write_text("Take_bowl 5\nCut_Tomato with knife 2\n\n")
    classes = load_action_index(idx)
    assert [(c.index, c.action_id, c.text) for c in classes] == [
        (0, 5, "take bowl"),
        (1, 2, "cut tomato with knife"),
    ]
    split = tmp_path / "test_split1.txt"
    split.write_text("OP01-R01-PastaSalad-1-2-F0-F9 2 3 4\nP20-R03-BaconAndEggs-7-8-F1-F2 5\n")
    clips = load_split(split, classes)
    assert [(c.clip_id, c.class_index, c.verb_id, c.noun_id) for c in clips] == [
        ("OP01-R01-PastaSalad-1-2-F0-F9", 1, 3, 4),
        ("P20-R03-BaconAndEggs-7-8-F1-F2", 0, None, None),
    ]
    assert egtea_clip_relpath(clips[0].clip_id) == "OP01-R01-PastaSalad/OP01-R01-PastaSalad-1-2-F0-F9.mp4"
    split.write_text("OP01-R01-PastaSalad-1-2-F0-F9 2\nOP01-R01-PastaSalad-3 9\n")
    with pytest.raises(DataFormatError) as e:
        load_split(split, classes)
    assert e.value.line == 2 and "test_split1.txt" in str(e.value) and "action id 9" in str(e.value)
    idx.write_text("Take_bowl 5\nCut_Tomato x\n")
    with pytest.raises(DataFormatError) as e:
        load_action_index(idx)
    assert (e.value.line, e.value.column) == (2, "action_id")


# ------------------------------------------------------------------------------------------- NLQ / MQ


def nlq_doc():
    query = {"clip_start_sec": 1.0, "clip_end_sec": 3.5, "video_start_sec": 11.0, "video_end_sec": 13.5,
             "template": "Objects: Where is X?", "query": "where is the knife?"}  # fmt: skip
    clip = {"clip_uid": "c1", "video_start_sec": 10.0, "video_end_sec": 70.0, "clip_start_sec": 0, "clip_end_sec": 60,
            "annotations": [{"annotation_uid": "a1", "language_queries": [query, {**query, "query": None}, dict(query)]}]}  # fmt: skip
    return {"version": "1", "videos": [{"video_uid": "v1", "split": "val", "clips": [clip]}]}


def test_nlq(tmp_path):
    p = tmp_path / "nlq_val.json"
    p.write_text(json.dumps(nlq_doc()))
    nlq = load_nlq(p)
    assert [q.query_idx for q in nlq.queries] == [0, 2] and nlq.num_skipped == 1
    q = nlq.queries[0]
    assert (q.clip_uid, q.annotation_uid, q.window, q.video_uid) == ("c1", "a1", (1.0, 3.5), "v1")
    assert (q.video_start_sec, q.video_end_sec) == (10.0, 70.0) and nlq.clips["c1"].video_uid == "v1"
    doc = nlq_doc()
    del doc["videos"][0]["clips"][0]["annotations"][0]["language_queries"][2]["clip_end_sec"]
    p.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError) as e:
        load_nlq(p)
    assert (
        'key "videos" → "0" → "clips" → "0" → "annotations" → "0" → "language_queries" → "2": missing "clip_end_sec"'
        in str(e.value)
    )


def test_mq(tmp_path):
    label = {
        "label": "cut_veg",
        "start_time": 1.0,
        "end_time": 4.0,
        "video_start_time": 11.0,
        "video_end_time": 14.0,
        "primary": True,
    }
    clip = {"clip_uid": "c1", "video_start_sec": 10.0, "video_end_sec": 490.0,
            "annotations": [{"annotator_uid": "x", "labels": [label, {**label, "label": "wash", "primary": False}]}]}  # fmt: skip
    p = tmp_path / "moments_val.json"
    p.write_text(json.dumps({"videos": [{"video_uid": "v1", "split": "val", "clips": [clip]}]}))
    clips = load_moments(p)
    assert (
        len(clips) == 1
        and [s.label for s in clips[0].primary()] == ["cut_veg"]
        and len(clips[0].segments) == 2
    )
    conv = {"c1": {"video_id": "v1", "clip_id": "c1", "parent_start_sec": 10.0, "parent_end_sec": 490.0,
                   "v_duration": 480.0, "subset": "val", "annotations": [label]}}  # fmt: skip
    p2 = tmp_path / "clip_annotations.json"
    p2.write_text(json.dumps(conv))
    ann = load_clip_annotations(p2)
    assert ann["c1"].subset == "val" and ann["c1"].segments[0].end_time == 4.0
    conv["c1"]["annotations"][0] = {**label, "end_time": "late"}
    p2.write_text(json.dumps(conv))
    with pytest.raises(DataFormatError) as e:
        load_clip_annotations(p2)
    assert 'key "c1" → "annotations" → "0" → "end_time": expected a number' in str(e.value)


# ------------------------------------------------------------------------------------------- grounding


def test_grounding(tmp_path):
    (tmp_path / "masks").mkdir()
    labels = np.zeros((3, 4, 5), np.uint8)
    labels[:, 1:3, 1:4] = 2
    np.savez(tmp_path / "masks" / "g0.npz", labels=labels, frame_times=np.array([1.0, 1.1, 1.2]))
    item = {"clip_id": "g0", "video_uid": "v1", "start_sec": 1.0, "end_sec": 1.2, "query": "knife",
            "query_type": "noun", "entity_ids": [2], "mask_file": "masks/g0.npz"}  # fmt: skip
    p = tmp_path / "grounding_val.json"
    p.write_text(json.dumps([item]))
    items = load_grounding(p)
    assert items[0].entity_ids == (2,) and items[0].mask_path == tmp_path / "masks" / "g0.npz"
    m = load_mask(items[0].mask_path)
    assert m.labels.shape == (3, 4, 5) and m.frame_times.dtype == np.float64
    p.write_text(json.dumps([{**item, "query_type": "adjective"}]))
    with pytest.raises(DataFormatError) as e:
        load_grounding(p)
    assert 'key "0" → "query_type"' in str(e.value)
    np.savez(
        tmp_path / "masks" / "bad.npz", labels=labels.astype(np.int32), frame_times=np.array([1.0, 1.1, 1.2])
    )
    with pytest.raises(DataFormatError) as e:
        load_mask(tmp_path / "masks" / "bad.npz")
    assert "bad.npz" in str(e.value) and "uint8" in str(e.value)
    (tmp_path / "masks" / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError) as e:
        load_mask(tmp_path / "masks" / "junk.npz")
    assert "junk.npz" in str(e.value)


# ------------------------------------------------------------------------------------------- 100DOH boxes


def test_crop_geometry_hand_computed():
    g = crop_geometry(480, 640, 224)  # short side 480 → 224, long 640 → int(224·640/480) = 298
    assert (g.resized_height, g.resized_width, g.top, g.left) == (224, 298, 0, 37)  # round(74/2) = 37
    # a box covering x 160..480 px, y 120..360 px of the 640x480 frame
    box = g.box_to_crop(np.array([[160.0, 120.0, 480.0, 360.0]]))[0]
    sx, sy = 298 / 640, 224 / 480  # the resize maps 640 px onto 298 (truncated), 480 onto 224
    expected = [(160 * sx - 37) / 224, 120 * sy / 224, (480 * sx - 37) / 224, 360 * sy / 224]
    np.testing.assert_allclose(box, expected, rtol=1e-6)


def dets(rows):
    out = np.zeros((len(rows), 10), np.float32)
    out[:, :5] = rows
    return out


def test_handobj_top2_and_mask(tmp_path):
    entry = {
        "info": {"height": 100, "width": 100},
        0: {
            "hand_dets": dets([[0, 0, 50, 50, 0.5], [10, 10, 20, 20, 0.9], [0, 0, 100, 100, 0.7]]),
            "obj_dets": None,
        },
        1: {"hand_dets": None, "obj_dets": dets([[50, 50, 100, 100, 0.8]])},
        2: {"hand_dets": None, "obj_dets": None},
    }
    boxes, mask = boxes_from_entry(entry, 50, path=tmp_path / "x.pkl", key="1.0")
    assert boxes.shape == (4, 4, 4) and mask.shape == (4, 4)
    np.testing.assert_allclose(boxes[0, 0], [0.1, 0.1, 0.2, 0.2])  # score 0.9 first
    np.testing.assert_allclose(boxes[0, 1], [0.0, 0.0, 1.0, 1.0])  # then 0.7; 0.5 dropped
    assert mask[0].tolist() == [True, True, False, False]
    np.testing.assert_allclose(boxes[1, 2], [0.5, 0.5, 1.0, 1.0])
    assert mask[1].tolist() == [False, False, True, False] and not mask[2:].any() and not boxes[2:].any()

    video = tmp_path / "hand_object" / "vid"
    video.mkdir(parents=True)
    assert handobj_relpath("vid", 601.2) == "vid/1.handobj.pkl"
    (video / "1.handobj.pkl").write_bytes(pickle.dumps({601.2: entry}))
    store = HandObjectStore(tmp_path / "hand_object", 50)
    got = store.get("vid", 601.2000001)
    assert got.found and torch.equal(got.mask, torch.from_numpy(mask))
    missing = store.get("vid", 5.0)
    assert not missing.found and not missing.mask.any() and missing.boxes.shape == (4, 4, 4)


def test_handobj_bad_entry(tmp_path):
    with pytest.raises(DataFormatError) as e:
        boxes_from_entry(
            {"info": {"height": 10, "width": 10}, 0: {"hand_dets": np.zeros((2, 3))}},
            8,
            path=tmp_path / "y.pkl",
            key="2.5",
        )
    assert "y.pkl" in str(e.value) and 'key 2.5 → 0 → "hand_dets"' in str(e.value)
