"""Paired bootstrap intervals and ``bench compare A B`` (result-record files and MLflow).

Hand-made cases: identical outcomes (interval [0, 0] contains 0), a model better on every item (interval
above 0), equal accuracy on different items (interval contains 0), a one-item case whose interval is the
item's own difference, and the per-item layouts the records may use.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from henasy.cli import main
from henasy.core.errors import BenchError
from reports.bootstrap import paired_bootstrap, paired_bootstrap_strata
from reports.compare_models import compare_records
from reports.records import item_outcomes, item_scales, load_records


def test_identical_models_give_an_interval_containing_zero() -> None:
    outcomes = np.random.default_rng(1).integers(0, 2, size=300).astype(float)
    ci = paired_bootstrap(outcomes, outcomes.copy(), n_boot=2000)
    assert ci.low <= 0 <= ci.high and not ci.excludes_zero
    assert ci.diff == 0 and ci.n == 300


def test_better_on_every_item_excludes_zero() -> None:
    b = np.random.default_rng(2).random(200)
    ci = paired_bootstrap(b + 0.01, b, n_boot=2000)
    assert ci.excludes_zero and ci.low > 0
    assert ci.diff == pytest.approx(0.01)


def test_same_accuracy_on_different_items_contains_zero() -> None:
    a = np.array([1.0, 0.0] * 100)  # 50 % correct
    b = np.array([0.0, 1.0] * 100)  # 50 % correct, on the other items
    ci = paired_bootstrap(a, b, n_boot=4000, seed=3)
    assert ci.diff == 0 and ci.low < 0 < ci.high


def test_one_item_interval_is_its_difference_and_seeded() -> None:
    ci = paired_bootstrap([3.0], [1.0], n_boot=50)
    assert (ci.diff, ci.low, ci.high) == (2.0, 2.0, 2.0)
    a, b = np.arange(30.0), np.arange(30.0)[::-1]
    assert paired_bootstrap(a, b, seed=7, n_boot=500) == paired_bootstrap(a, b, seed=7, n_boot=500)


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(BenchError, match="equal length"):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(BenchError, match="NaN"):
        paired_bootstrap([1.0, float("nan")], [1.0, 2.0])


def test_generic_per_item_layouts_and_unit_scale() -> None:
    by_metric = {"per_item": {"acc": {"q1": 1, "q2": 0}}}
    lists = {"per_item": {"ids": ["q1", "q2"], "acc": [1, 0]}}
    by_item = {"per_item": {"q1": {"acc": 1}, "q2": {"acc": 0}}}
    rows = {"per_item": [{"id": "q1", "acc": 1}, {"id": "q2", "acc": 0}]}
    for record in (by_metric, lists, by_item, rows):
        strata, why = item_outcomes({"benchmark": "custom", **record}, "acc")
        assert strata == [{"q1": 1.0, "q2": 0.0}], why
    assert item_outcomes({"benchmark": "custom", "per_item": {"other": {"q": 1}}}, "acc")[0] is None
    assert item_scales([{"q1": 1.0, "q2": 0.0}], 50.0) == [100.0]  # 0/1 items of a percentage
    assert item_scales([{"q1": 1.0, "q2": 0.0}], 0.5) == [1.0]
    assert item_scales([{"q1": 1.0, "q2": 0.0}], 0.7) == []  # not a mean over items
    assert item_scales([{"q1": 0.0, "q2": 0.0}], 0.0) == [1.0, 100.0, 0.01]  # zero fits any unit


def egomcq_record(types: list[int], correct: list[int]) -> dict:
    """An EgoMCQ record as benchmarks/egomcq.py writes it: parallel per-item lists, metrics in percent."""

    def accuracy(kind: int) -> float:
        chosen = [c for t, c in zip(types, correct) if t == kind]
        return 100.0 * sum(chosen) / len(chosen) if chosen else float("nan")

    return {
        "benchmark": "egomcq",
        "metrics": {"inter": accuracy(1), "intra": accuracy(2)},
        "per_item": {"item_id": [str(i) for i in range(len(types))], "type": types, "correct": correct},
    }


def test_benchmark_layouts_egomcq_by_type_and_mir_average() -> None:
    record = egomcq_record([1, 1, 2, 2], [1, 0, 0, 0])
    assert item_outcomes(record, "inter")[0] == [{"0": 1.0, "1": 0.0}]
    assert item_outcomes(record, "intra")[0] == [{"2": 0.0, "3": 0.0}]
    mir = {
        "benchmark": "ek100_mir",
        "metrics": {"mAP_avg": 50.0},
        "per_item": {"video_id": ["v1", "v2"], "AP_v2t": [0.2, 0.4], "sentence_id": ["s1"], "AP_t2v": [0.7]},
    }
    strata, _ = item_outcomes(mir, "mAP_avg")
    assert strata == [{"v1": 0.2, "v2": 0.4}, {"s1": 0.7}]
    assert item_scales(strata, 50.0) == [100.0]  # (mean(0.2, 0.4) + 0.7) / 2 = 0.5
    assert item_outcomes({**mir, "benchmark": "egomq"}, "mAP")[0] is None  # MQ mAP is no item mean


def test_stratified_interval_is_the_mean_of_strata() -> None:
    v_a, v_b = [0.5, 0.7, 0.9], [0.4, 0.6, 0.8]  # video→text: +0.1 on each item
    s_a, s_b = [0.3, 0.3], [0.3, 0.3]  # text→video: no difference
    ci = paired_bootstrap_strata([(v_a, v_b), (s_a, s_b)], n_boot=300)
    assert ci.diff == pytest.approx(0.05) and ci.low == pytest.approx(0.05) and ci.high == pytest.approx(0.05)
    assert ci.n == 5


def test_compare_records_units_pairing_and_reasons() -> None:
    a = {
        "egomcq": egomcq_record([1, 1, 1, 1, 2, 2], [1, 1, 1, 0, 1, 0]),
        "ek100_mir": {
            "benchmark": "ek100_mir",
            "metrics": {"mAP_v2t": 0.5},
            "per_item": {"video_id": ["v1", "v2"], "AP_v2t": [0.25, 0.75]},
        },
    }
    b_mcq = egomcq_record([1, 1, 1, 1, 2, 2], [0, 1, 0, 0, 1, 0])
    b_mcq["per_item"]["item_id"][3] = "other"  # item 3 was not evaluated for B; B answered another item
    b = {
        "egomcq": b_mcq,
        "ek100_mir": {
            "benchmark": "ek100_mir",
            "metrics": {"mAP_v2t": 0.25},
            "per_item": {"video_id": ["v1", "v2"], "AP_v2t": [0.25, 0.25]},
        },
    }
    units = {"egomcq.inter": "percent", "ek100_mir.mAP_v2t": "fraction"}
    rows = {r.key: r for r in compare_records(a, b, units=units, n_boot=500)}
    inter = rows["egomcq.inter"]
    assert (inter.a, inter.b, inter.diff) == (75.0, 25.0, 50.0)
    assert inter.ci is not None and inter.ci.n == 3  # items 0–2 are shared; 3 and "other" are not
    assert (inter.n_only_a, inter.n_only_b) == (1, 1)
    assert inter.ci.diff == pytest.approx(100 * 2 / 3)  # mean over the shared items, in percent
    mir = rows["ek100_mir.mAP_v2t"]
    assert mir.diff == pytest.approx(25.0)  # a fraction column shown ×100
    assert mir.ci is not None and mir.ci.diff == pytest.approx(25.0)
    intra = rows["egomcq.intra"]
    assert intra.diff == 0 and intra.ci is not None and intra.ci.low == intra.ci.high == 0


def test_cli_compare_with_record_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    better = egomcq_record([1] * 60, [1] * 60)
    worse = egomcq_record([1] * 60, [k % 2 for k in range(60)])
    (tmp_path / "a.json").write_text(json.dumps(better))
    run_dir = tmp_path / "run_b"
    run_dir.mkdir()
    (run_dir / "result.json").write_text(json.dumps({"records": [worse]}))
    assert load_records(run_dir)["egomcq"]["metrics"]["inter"] == 50.0
    args = ["compare", "m_a", "m_b", "--records", str(tmp_path / "a.json"), str(run_dir), "--n-boot", "500"]
    assert main([*args, "--benchmarks", "egomcq", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    inter = next(m for m in out["metrics"] if m["metric"] == "inter")
    assert inter["diff"] == 50.0 and inter["excludes_zero"] is True and inter["n_items"] == 60
    assert main(args) == 0
    assert "yes (CI excludes 0)" in capsys.readouterr().out
    # one model, two checkpoints (trained vs untrained): the columns still say which is which
    same = ["compare", "m", "m", "--records", str(tmp_path / "a.json"), str(run_dir), "--n-boot", "200"]
    assert main(same) == 0
    assert "| m [A] | m [B] | Δ (m [A] − m [B])" in capsys.readouterr().out


def test_cli_compare_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    assert (
        main(["compare", "a", "b", "--records", str(tmp_path / "bad.json"), str(tmp_path / "bad.json")]) == 2
    )
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["compare", "a", "b", "c"]) == 2
    assert "exactly two models" in capsys.readouterr().err


def test_cli_compare_from_mlflow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_reports_tables import publish  # same helper: writes runs as the sweep does

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for label, model, correct in (("Ours", "henasy_tiny", 30), ("LaViLa", "lavila_tiny", 20)):
        rec = {
            **egomcq_record([1] * 40, [int(i < correct) for i in range(40)]),
            "n_items": 40,
            "partial": False,
            "model": {"id": model},
        }
        record = {
            "complete": True,
            "run_id": label,
            "sweep": "tables/table1",
            "table": "1",
            "label": label,
            "scale": "smoke",
            "config": {"model": model},
            "records": [rec],
            "metrics": {"egomcq.inter": rec["metrics"]["inter"]},
            "git_commit": "x",
        }
        publish(uri, tmp_path, label, record)
    args = [
        "compare",
        "henasy_tiny",
        "lavila_tiny",
        "--tracking-uri",
        uri,
        "--n-boot",
        "500",
        "--format",
        "json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    row = next(m for m in out["metrics"] if m["metric"] == "inter")
    assert (row["a"], row["b"], row["diff"]) == (75.0, 50.0, 25.0)
    assert row["excludes_zero"] is True and row["n_items"] == 40
    assert main(["compare", "henasy_tiny", "nobody", "--tracking-uri", uri]) == 2
    assert "bench.model='nobody'" in capsys.readouterr().err
