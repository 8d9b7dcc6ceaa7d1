"""The one record schema (``henasy/core/records.py``): round trips, version checks, older formats, MLflow names.

Checks that both record kinds survive ``to_dict`` → JSON → ``from_dict``, that a record of an unknown
schema version is refused naming the file and the versions read (also by ``bench compare --records``,
exit 2), that the formats the previous code wrote still load, that the MLflow tag and parameter names are
spelled only in ``henasy/core/records.py``, that ``reports/`` names no benchmark (each declares its own
per-item breakdown), and that new records carry ``date``, ``git_hash`` and ``henasy_bench_version`` at the
top while older ones read them as None.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from henasy.cli import main
from henasy.core import records as rec
from henasy.core.errors import BenchError

ROOT = Path(__file__).resolve().parents[1]


def bench_record(**changes: object) -> rec.BenchmarkResult:
    base = rec.BenchmarkResult(
        benchmark="egomcq",
        metrics={"inter": 75.0, "intra": float("nan")},
        protocol={"version": 1, "units": "percent"},
        split="egomcq.json",
        n_items=4,
        partial=False,
        model=rec.ModelRef("henasy_tiny", "/w/last.pt", "ab" * 32),
        wall_time_s=1.5,
        data_root="/data",
        per_item={"item_id": ["0", "1", "2", "3"], "type": [1, 1, 1, 1], "correct": [1, 1, 1, 0]},
        env={"torch": "2"},
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_benchmark_result_round_trip_writes_version_and_nan_as_null(tmp_path: Path) -> None:
    record = bench_record()
    data = json.loads(json.dumps(record.to_dict(), allow_nan=False))  # NaN became null: strict JSON
    assert data["schema_version"] == rec.SCHEMA_VERSION["benchmark"] and data["kind"] == "benchmark"
    assert data["metrics"] == {"inter": 75.0, "intra": None}
    back = rec.BenchmarkResult.from_dict(data)
    assert back.to_dict() == data
    assert back.model == record.model and back.per_item == record.per_item
    path = rec.write_record(tmp_path / "egomcq.json", [record])
    loaded = rec.load_record(path)
    assert isinstance(loaded, list) and [r.to_dict() for r in loaded] == [data]


def test_run_result_round_trip_through_a_run_folder(tmp_path: Path) -> None:
    summary = {"status": "finished", "step": 10, "first_loss": 2.0, "final_loss": 1.0, "finished": True}
    run = rec.RunResult.create(
        train_summary=summary,
        records=[bench_record()],
        run_id="abc",
        sweep="ablations/losses",
        label="L_ego",
        scale="smoke",
        config={"model": "henasy_tiny"},
    )
    assert run.complete and run.train is not None and "finished" not in run.train  # cut to TRAIN_KEYS
    assert run.metrics == {"egomcq.inter": 75.0, "train.first_loss": 2.0, "train.final_loss": 1.0}
    rec.write_record(tmp_path / rec.RESULT_NAME, run)
    loaded = rec.load_record(tmp_path)  # the folder's result.json
    assert isinstance(loaded, rec.RunResult)
    assert loaded.to_dict() == run.to_dict() and loaded.records[0].benchmark == "egomcq"
    assert json.loads((tmp_path / rec.RESULT_NAME).read_text())["kind"] == "run"


@pytest.mark.parametrize("kind", ["benchmark", "run"])
def test_unknown_schema_version_is_refused_naming_file_and_versions(tmp_path: Path, kind: str) -> None:
    data = (
        bench_record().to_dict() if kind == "benchmark" else {"run_id": "x", "records": [], "complete": True}
    )
    data["schema_version"] = 99
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BenchError) as err:
        rec.load_record(path)
    message = str(err.value)
    assert str(path) in message and "schema version 99" in message and "reads versions 0, 1, 2, 3" in message
    assert "newer henasy-bench" in message


def test_run_folder_with_a_newer_result_is_not_taken_for_unfinished(tmp_path: Path) -> None:
    from sweeps import records as run_folder

    (tmp_path / "result.json").write_text(json.dumps({"schema_version": 4, "records": [], "complete": True}))
    with pytest.raises(BenchError, match=r"result\.json: run record of schema version 4"):
        run_folder.read_result(tmp_path)


def test_compare_refuses_a_newer_record_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = bench_record().to_dict()
    newer = {**good, "schema_version": 7}
    (tmp_path / "a.json").write_text(json.dumps(good))
    (tmp_path / "b.json").write_text(json.dumps(newer))
    args = [
        "compare",
        "henasy_tiny",
        "henasy_tiny",
        "--records",
        str(tmp_path / "a.json"),
        str(tmp_path / "b.json"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "b.json") in err and "schema version 7" in err and "0, 1, 2, 3" in err


def test_formats_written_by_the_previous_code_still_load(tmp_path: Path) -> None:
    old_bench = {  # benchmarks/record.py before henasy/core/records.py: version 1, no "kind"
        "schema_version": 1,
        "benchmark": "egomcq",
        "protocol": {"version": 1},
        "split": "egomcq.json",
        "metrics": {"inter": 50.0, "intra": None},
        "n_items": 2,
        "partial": True,
        "model": {"id": "lavila_tiny", "checkpoint": None, "checkpoint_sha256": None},
        "wall_time_s": 0.1,
        "data_root": "/d",
        "per_item": {"item_id": ["a", "b"], "type": [1, 1], "correct": [1, 0]},
        "artifacts": {},
        "env": {},
    }
    old_run = {  # sweeps/job.py before: the sweep's own SCHEMA_VERSION 1, built inline
        "schema_version": 1,
        "complete": True,
        "run_id": "r1",
        "sweep": "s",
        "table": None,
        "label": "row",
        "scale": "smoke",
        "noop": False,
        "config": {"model": "lavila_tiny"},
        "params": {},
        "train": None,
        "records": [old_bench],
        "metrics": {"egomcq.inter": 50.0},
        "git_commit": "abc",
        "job_id": "pid1",
        "host": "h",
        "wall_time_s": 2.0,
        "finished_at": 1.0,
        "mlflow_run_id": None,
    }
    (tmp_path / "result.json").write_text(json.dumps(old_run))
    run = rec.load_record(tmp_path / "result.json")
    assert isinstance(run, rec.RunResult) and run.schema_version == 1 and run.complete
    assert run.records[0].schema_version == 1 and run.records[0].partial
    assert run.records[0].model.id == "lavila_tiny" and math.isclose(run.records[0].metrics["inter"], 50.0)
    upgraded = run.to_dict()
    assert upgraded["schema_version"] == rec.SCHEMA_VERSION["run"] and {
        k: upgraded[k] for k in old_run if k != "schema_version"
    } == {k: v for k, v in old_run.items() if k not in ("schema_version", "records")} | {
        "records": upgraded["records"]
    }
    # a hand-written record (no version, a model given as a string, an extra key) keeps what it says
    hand = rec.BenchmarkResult.from_dict(
        {"benchmark": "custom", "metrics": {"acc": 0.5}, "model": "m", "note": 1}
    )
    assert hand.schema_version == 0 and hand.model.id == "m" and hand.to_dict()["note"] == 1


def _literals(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_mlflow_names_are_spelled_only_in_henasy_records() -> None:
    names = {
        value
        for key, value in vars(rec).items()
        if key.startswith(("TAG_", "PARAM_", "METRIC_", "ARTIFACT_EVAL")) and key != "TAG_PREFIX"
    }  # ARTIFACT_CONFIG / _RESULTS / _PLOTS are plain words ("config") that other code uses for other things
    assert {"bench.model", "bench.row", "eval.limit", "results/eval/{benchmark}.json"} <= names
    offenders = []
    for package in ("henasy", "sweeps", "reports", "benchmarks", "baselines", "scripts"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "henasy" / "core" / "records.py":
                continue
            found = _literals(path) & names
            offenders += [f"{path.relative_to(ROOT)}: {name!r}" for name in sorted(found)]
    assert not offenders, "use the henasy.core.records constants instead of: " + "; ".join(offenders)


def test_benchmarks_declare_their_breakdown_and_reports_name_none() -> None:
    from henasy.core.catalog import BENCHMARKS
    from reports.records import declared_breakdown

    names = BENCHMARKS.names()
    assert {"egomcq", "ek100_mir", "egtea"} <= set(names)
    for name in names:
        assert callable(declared_breakdown(name)), f"{name} declares no per-item breakdown"
    strata = declared_breakdown("egtea")({"split1": {}, "split2": {}, "note": "x"}, "top1")  # type: ignore[misc]
    assert [s.within for s in strata] == ["split1", "split2"]
    for path in sorted((ROOT / "reports").glob("*.py")):
        literals = _literals(path)
        assert not any(name in text for text in literals for name in names), f"{path.name} names a benchmark"


def test_records_carry_date_git_hash_and_version_at_the_top(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from benchmarks.record import BenchResult, make_record
    from henasy import __version__
    from henasy.core.buildinfo import git_commit

    result = BenchResult(
        protocol={"version": 1}, split="s", metrics={"acc": 50.0}, n_items=2, total_items=2, per_item={}
    )
    made = make_record(
        "egomcq",
        result,
        model_id="m",
        checkpoint=None,
        checkpoint_sha256=None,
        wall_time_s=0.5,
        data_root=tmp_path,
        device="cpu",
    )  # what `bench eval` writes
    run = rec.RunResult.create(train_summary=None, records=[bench_record()], run_id="r", git_commit="abc123")
    top = ["schema_version", "kind", "date", "git_hash", "henasy_bench_version"]
    for data in (made, run.to_dict()):
        assert list(data)[:5] == top and data["henasy_bench_version"] == __version__
        made_at = datetime.strptime(data["date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert abs(datetime.now(timezone.utc) - made_at) < timedelta(minutes=5)
    assert made["git_hash"] == git_commit() and made["git_hash"]
    assert run.git_hash == "abc123"  # the commit the sweep was submitted from
    # they survive writing and reading
    path = rec.write_record(tmp_path / "r.json", [rec.BenchmarkResult.from_dict(made)])
    assert [r.to_dict() for r in rec.load_record(path)] == [made]  # type: ignore[union-attr]


def test_older_records_read_without_provenance_and_none_is_invented() -> None:
    v2 = {k: v for k, v in bench_record().to_dict().items() if k not in rec.PROVENANCE_KEYS}
    v2["schema_version"] = 2
    back = rec.BenchmarkResult.from_dict(v2)
    assert (back.date, back.git_hash, back.henasy_bench_version) == (None, None, None)
    assert back.to_dict()["date"] is None  # a re-written old record does not claim today's date
    other_tool = rec.BenchmarkResult.from_dict({"benchmark": "x", "metrics": {}, "date": 1712345678.5})
    assert other_tool.to_dict()["date"] == 1712345678.5  # lm-eval style Unix time kept as written
