"""EK100-MIR relevancy (JPoSE rule, henasy/data/relevancy.py) and ``bench data relevancy``.

Rule: mwray/Joint-Part-of-Speech-Embeddings @ a2a29f0 : src/scripts/create_relevancy_files.py. The excerpt
rows below are copied from epic-kitchens/epic-kitchens-100-annotations @ ea8b404 :
retrieval_annotations/EPIC_100_retrieval_test{,_sentence}.csv (CC BY-NC 4.0): a row with an empty
``narration_timestamp``, a duplicated noun class (``[36, 36]``), and two of the sentences JPoSE appended for
missing action classes, whose text repeats an earlier narration while their id names another clip.
"""

from __future__ import annotations

import ast
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from henasy.cli import main
from henasy.core.errors import BenchError, DataFormatError
from henasy.data.ek100 import load_ek100_retrieval, load_relevancy
from henasy.data.layout import DatasetLayout
from henasy.data.relevancy import build_ek100_relevancy, relevancy_matrix

HEADER = (
    "narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,"
    "stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes"
)
TEST_ROWS = """\
P01_11_0,P01,P01_11,00:00:00.560,00:00:00.00,00:00:01.89,1,113,take plate,take,0,plate,2,['plate'],[2]
P01_11_1,P01,P01_11,00:00:01.700,00:00:01.56,00:00:02.45,93,147,put down plate,put-down,1,plate,2,['plate'],[2]
P01_11_12,P01,P01_11,00:00:52.620,00:00:51.98,00:00:53.03,3118,3181,throw paper into bin,throw-into,13,paper,49,"['paper', 'bin']","[49, 36]"
P01_11_123,P01,P01_11,00:06:47.220,00:06:46.53,00:06:49.64,24391,24578,put bin onto other bin,put-onto,1,bin,36,"['bin', 'bin:other']","[36, 36]"
P02_12_293,P02,P02_12,,00:17:47.56,00:17:50.75,64053,64245,roll,roll,47,ball:dough,25,['ball:dough'],[25]
P08_16_88,P08,P08_16,00:07:17.699,00:07:17.55,00:07:21.10,26253,26466,throw away bits,throw,13,lemon,105,['lemon'],[105]
P22_01_192,P22,P22_01,00:10:14.710,00:10:14.29,00:10:17.20,36857,37032,cut slice,cut,7,knife,4,['knife'],[4]
P22_04_144,P22,P22_04,00:05:21.640,00:05:19.93,00:05:23.01,19195,19380,cut slice,cut,7,bowl:salad,7,['bowl:salad'],[7]
P32_10_6,P32,P32_10,00:01:17.729,00:01:18.69,00:01:33.75,4721,5625,wash cooker,wash,2,cooker,46,['cooker'],[46]
"""
SENTENCE_ROWS = """\
P01_11_0,take plate
P01_11_1,put down plate
P01_11_12,throw paper into bin
P01_11_123,put bin onto other bin
P02_12_293,roll
P22_01_192,cut slice
P32_10_6,wash cooker
P22_04_144,wash cooker
P08_16_88,cut slice
"""


def write_excerpt(root: Path) -> DatasetLayout:
    layout = DatasetLayout(root)
    layout.ek100_retrieval_csv.parent.mkdir(parents=True, exist_ok=True)
    layout.ek100_retrieval_csv.write_text(HEADER + "\n" + TEST_ROWS)
    layout.ek100_retrieval_sentence_csv.write_text("narration_id,narration\n" + SENTENCE_ROWS)
    return layout


def loop_relevancy(layout: DatasetLayout) -> np.ndarray:
    """Independent per-pair JPoSE computation (csv module, sets, plain loops)."""
    import csv

    with open(layout.ek100_retrieval_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(layout.ek100_retrieval_sentence_csv, newline="") as f:
        sentences = list(csv.DictReader(f))
    by_id = {r["narration_id"]: r for r in rows}

    def classes(r: dict) -> tuple[int, set[int]]:
        return int(r["verb_class"]), set(ast.literal_eval(r["all_noun_classes"]))

    out = np.zeros((len(rows), len(sentences)))
    for i, r in enumerate(rows):
        vi, ni = classes(r)
        for j, s in enumerate(sentences):
            vj, nj = classes(by_id[s["narration_id"]])
            out[i, j] = ((1.0 if vi == vj else 0.0) + len(ni & nj) / len(ni | nj)) / 2
    return out


def test_hand_computed_2x3() -> None:
    rel = relevancy_matrix(
        [0, 1],
        [[2], [3, 4, 4]],
        [0, 1, 0],
        [[2, 3], [4], [5]],
    )
    expected = np.array(
        [
            [(1 + 1 / 2) / 2, (0 + 0) / 2, (1 + 0) / 2],
            [(0 + 1 / 3) / 2, (1 + 1 / 2) / 2, (0 + 0) / 2],
        ]
    )
    assert rel.dtype == np.float64 and rel.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(rel, expected)


def test_vocabulary_size_independent() -> None:
    """Class ids beyond the synthetic 30 nouns (the real vocabulary has 97 verbs / 300 nouns)."""
    rel = relevancy_matrix([96, 5], [[299, 120], [31]], [96, 5], [[299], [31, 299]])
    np.testing.assert_array_equal(rel, [[(1 + 1 / 2) / 2, (0 + 1 / 3) / 2], [0.0, (1 + 1 / 2) / 2]])
    # Relabelling the classes (any injective map) leaves the matrix unchanged.
    shift = relevancy_matrix([0, 1], [[2, 1], [0]], [0, 1], [[2], [0, 2]])
    np.testing.assert_array_equal(rel, shift)


def test_both_noun_sets_empty_is_zero_not_nan() -> None:
    np.testing.assert_array_equal(relevancy_matrix([0], [[]], [0, 1], [[], [1]]), [[0.5, 0.0]])


def test_rejects_negative_class() -> None:
    with pytest.raises(ValueError):
        relevancy_matrix([0], [[-1]], [0], [[1]])


def test_real_excerpt_equals_independent_loop(tmp_path: Path) -> None:
    layout = write_excerpt(tmp_path)
    built = build_ek100_relevancy(tmp_path)
    assert built.path == layout.ek100_relevancy_pkl and built.shape == (9, 9)
    rel = load_relevancy(built.path, 9, 9)
    np.testing.assert_array_equal(rel, loop_relevancy(layout))
    # The appended sentence P22_04_144 ("wash cooker") takes the classes of its own clip (cut, bowl:salad),
    # not those of the first "wash cooker" clip.
    assert rel[7, 7] == 1.0 and rel[8, 7] == 0.0
    assert rel[3, 3] == 1.0  # [36, 36] is the set {36}


def test_command_writes_refuses_and_forces(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    layout = write_excerpt(tmp_path)
    assert main(["data", "relevancy", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(layout.ek100_relevancy_pkl) in out and "9 x 9" in out
    mir = load_ek100_retrieval(tmp_path)
    assert mir.relevancy.shape == (9, 9)
    before = layout.ek100_relevancy_pkl.read_bytes()
    with pytest.raises(BenchError, match="--force"):
        build_ek100_relevancy(tmp_path)
    assert main(["data", "relevancy", "--data", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["data", "relevancy", "--data", str(tmp_path), "--force"]) == 0
    assert layout.ek100_relevancy_pkl.read_bytes() == before
    assert list(layout.ek100_relevancy_pkl.parent.iterdir()) == [layout.ek100_relevancy_pkl]


def test_command_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not found"):
        build_ek100_relevancy(tmp_path)
    assert not DatasetLayout(tmp_path).ek100_relevancy_pkl.exists()


def test_synthetic_generator_unchanged(synth_tiny: Path) -> None:
    """The synthetic pkl equals the previous generator's formula (0.5·[same verb] + 0.5·noun IoU over 30
    nouns), byte for byte once re-pickled the same way."""
    from henasy.data.ek100 import load_epic_annotations

    layout = DatasetLayout(synth_tiny)
    videos = load_epic_annotations(layout.ek100_retrieval_csv)
    first = videos.drop_duplicates("narration").index.to_numpy()
    verbs = videos["verb_class"].to_numpy()
    hot = np.zeros((len(videos), 30))
    for i, nouns in enumerate(videos["all_noun_classes"]):
        hot[i, list(set(nouns))] = 1.0
    inter = hot @ hot[first].T
    union = hot.sum(1)[:, None] + hot[first].sum(1)[None, :] - inter
    old = 0.5 * (verbs[:, None] == verbs[first][None, :]) + 0.5 * np.where(
        union > 0, inter / np.maximum(union, 1.0), 0.0
    )
    data = layout.ek100_relevancy_pkl.read_bytes()
    assert data == pickle.dumps(old, protocol=4)


def test_ek100_mir_missing_pkl_says_how_to_build(synth_tiny: Path, tmp_path: Path) -> None:
    from benchmarks.runner import evaluate, load_model

    src, dst = DatasetLayout(synth_tiny), DatasetLayout(tmp_path / "root")
    dst.ek100_retrieval_csv.parent.mkdir(parents=True)
    shutil.copy(src.ek100_retrieval_csv, dst.ek100_retrieval_csv)
    shutil.copy(src.ek100_retrieval_sentence_csv, dst.ek100_retrieval_sentence_csv)
    with pytest.raises(DataFormatError) as e:
        evaluate(load_model("lavila_tiny"), ["ek100_mir"], dst.root, model_id="lavila_tiny", progress=False)
    assert f"bench data relevancy --data {dst.root}" in str(e.value)
    assert "caption_relevancy_EPIC_100_retrieval_test.pkl" in str(e.value)
