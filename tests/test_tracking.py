"""MLflow tracking of sweep runs: URI defaults, lock retries, exactly-once step metrics across restarts,
killed runs marked FAILED, offline results replayed by sync, concurrent writers on one SQLite file, and the
Optuna journal living in the MLflow database."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from sweeps.tracking import (
    RunTracker,
    client,
    ensure_store,
    mark_failed,
    publish_result,
    resolve_tracking_uri,
    retry,
    sync_run,
)

WRITERS = 8
STEPS = 30


def loss_at(index: int, step: int) -> float:
    return 10.0 * index + 1.0 / step


def _write_steps(run_dir: Path, steps: range) -> None:
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
        for step in steps:
            f.write(json.dumps({"step": step, "loss": loss_at(0, step), "lr": 0.1}) + "\n")


def _history(uri: str, run_id: str, key: str = "train.loss") -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client(uri).get_metric_history(run_id, key))


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow SQLite store shared by the tests of this module (each uses its own experiment)."""
    store = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    ensure_store(store)
    return store


def test_tracking_uri_defaults_to_an_absolute_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(cwd=tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert (
        resolve_tracking_uri("sqlite:///sub/x.db", cwd=tmp_path) == f"sqlite:///{tmp_path / 'sub' / 'x.db'}"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(cwd=tmp_path) == "http://127.0.0.1:5000"


def test_retry_backs_off_on_locked_database_only() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert retry(flaky, what="test", base_s=0.001) == "ok" and len(calls) == 3
    with pytest.raises(ValueError):
        retry(lambda: (_ for _ in ()).throw(ValueError("other")), what="test")


def test_restarted_job_continues_the_same_run_and_logs_each_step_once(tmp_path: Path, uri: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # Attempt 1: steps 1-6, checkpoint (flush) after step 2 only, killed after step 6 (its last checkpoint
    # was step 4, written but killed before the flush).
    first = RunTracker(uri, run_dir, experiment="exp", run_name="row")
    run_id = first.open(params={"trainer.lr": "0.1"}, tags={"bench.run_id": "abc"})
    logger = first.callback()
    logger.on_train_start({"start_step": 0, "resumed": False, "run_dir": str(run_dir)})
    for step in range(1, 7):
        logger.on_step(step, {"loss": loss_at(0, step), "lr": 0.1})
        if step == 2:
            logger.on_checkpoint(run_dir / "last.pt")
    _write_steps(run_dir, range(1, 5))  # what JsonlMetrics keeps on resume: steps up to the checkpoint
    assert _history(uri, run_id) == [(s, loss_at(0, s)) for s in (1, 2)]
    # The dead job's run still says RUNNING until someone notices.
    assert client(uri).get_run(run_id).info.status == "RUNNING"
    assert mark_failed(uri, run_dir, "job ended without a result")
    assert client(uri).get_run(run_id).info.status == "FAILED"
    assert not mark_failed(uri, run_dir, "again")  # only RUNNING/SCHEDULED runs are touched

    # Attempt 2 resumes from step 4: same MLflow run, RUNNING again, steps 3-4 replayed, 5-8 logged once.
    second = RunTracker(uri, run_dir, experiment="exp", run_name="row")
    assert second.open(params={"trainer.lr": "0.1"}, tags={}) == run_id
    assert client(uri).get_run(run_id).info.status == "RUNNING"
    logger = second.callback()
    logger.on_train_start({"start_step": 4, "resumed": True, "run_dir": str(run_dir)})
    for step in range(5, 9):
        logger.on_step(step, {"loss": loss_at(0, step), "lr": 0.1})
    logger.on_epoch_end(0, {"loss": 1.0, "step": 8})
    logger.on_train_end({"step": 8})
    second.finish("FINISHED")
    assert _history(uri, run_id) == [(s, loss_at(0, s)) for s in range(1, 9)]
    assert len(_history(uri, run_id, "train.lr")) == 8 and _history(uri, run_id, "epoch.loss") == [(8, 1.0)]
    run = client(uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["trainer.lr"] == "0.1"


def test_offline_result_is_replayed_by_sync(tmp_path: Path, uri: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the database folder should be")
    offline = RunTracker(f"sqlite:///{blocked / 'mlflow.db'}", run_dir, experiment="exp", run_name="row")
    assert offline.open(params={}, tags={}) is None and not offline.online
    _write_steps(run_dir, range(1, 6))
    record = {
        "run_id": "r1",
        "label": "row",
        "sweep": "s",
        "table": "3",
        "scale": "smoke",
        "config": {"model": "m"},
        "metrics": {"egomcq.intra": 42.5, "egomcq.inter": 90.0},
        "train": {"final_loss": 0.2},
    }
    (run_dir / "result.json").write_text(json.dumps(record))
    assert not publish_result(offline, run_dir, record)

    assert sync_run(uri, run_dir, record, experiment="exp-sync") == "synced"
    info = json.loads((run_dir / "mlflow.json").read_text())
    run = client(uri).get_run(info["run_id"])
    assert run.info.status == "FINISHED" and info["synced"] is True
    assert run.data.metrics["egomcq.intra"] == 42.5 and run.data.tags["bench.row"] == "row"
    assert [s for s, _ in _history(uri, info["run_id"])] == [1, 2, 3, 4, 5]
    artifacts = {a.path for a in client(uri).list_artifacts(info["run_id"], "results")}
    assert "results/result.json" in artifacts
    assert sync_run(uri, run_dir, record, experiment="exp-sync") == "already"


def _writer(uri: str, run_dir: str, index: int) -> None:
    tracker = RunTracker(uri, run_dir, experiment="concurrent", run_name=f"job {index}")
    tracker.open(params={"index": str(index)}, tags={"bench.run_id": f"r{index}"})
    logger = tracker.callback()
    logger.on_train_start({"start_step": 0, "resumed": False, "run_dir": run_dir})
    for step in range(1, STEPS + 1):
        logger.on_step(step, {"loss": loss_at(index, step), "lr": 0.5})
        logger.on_checkpoint(Path(run_dir) / "last.pt")  # a flush (one write transaction) per step
    logger.on_train_end({"step": STEPS})
    tracker.finish("FINISHED")
    assert tracker.online, f"a writer gave up on the database: {tracker.info().get('offline_reason')}"


def test_eight_concurrent_writers_lose_no_metric(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    import mlflow  # noqa: F401 - imported once here, not once per forked writer

    ctx = multiprocessing.get_context("fork")
    procs = []
    for index in range(WRITERS):
        run_dir = tmp_path / f"run{index}"
        run_dir.mkdir()
        procs.append(ctx.Process(target=_writer, args=(uri, str(run_dir), index)))
    for proc in procs:  # the store does not exist yet: the writers also race to create it
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    mlc = client(uri)
    experiment = mlc.get_experiment_by_name("concurrent")
    runs = mlc.search_runs([experiment.experiment_id], max_results=100)
    assert len(runs) == WRITERS and {r.info.status for r in runs} == {"FINISHED"}
    total = 0
    for run in runs:
        index = int(run.data.params["index"])
        history = _history(uri, run.info.run_id)
        assert history == [(s, loss_at(index, s)) for s in range(1, STEPS + 1)]
        total += len(history) + len(_history(uri, run.info.run_id, "train.lr"))
    assert total == WRITERS * STEPS * 2


def test_optuna_study_lives_in_the_mlflow_database(tmp_path: Path, uri: str) -> None:
    import optuna

    from sweeps.optuna_search import JOURNAL_TABLE, study_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=study_storage(uri, tmp_path), direction="minimize")
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.3) ** 2, n_trials=4)
    again = optuna.load_study(study_name="s", storage=study_storage(uri, tmp_path))
    assert len(again.trials) == 4 and again.best_value == study.best_value
    import sqlite3

    with sqlite3.connect(uri.removeprefix("sqlite:///")) as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {JOURNAL_TABLE, "runs", "experiments"} <= tables
    mlc = client(uri)  # MLflow still works on the shared file
    run = mlc.create_run(mlc.create_experiment("after-optuna"))
    mlc.log_metric(run.info.run_id, "m", 1.0)
    assert mlc.get_run(run.info.run_id).data.metrics["m"] == 1.0


def test_metric_names_mlflow_refuses_are_sanitised_and_tracking_stays_online(
    tmp_path: Path, uri: str
) -> None:
    tracker = RunTracker(uri, tmp_path, experiment="names", run_name="row")
    run_id = tracker.open(params={}, tags={})
    assert tracker.log_metrics([("egomq.mAP@0.1", 0.5, 0), ("egonlq.r1_iou0.3", 0.25, 0)])
    assert tracker.online
    assert client(uri).get_run(run_id).data.metrics == {"egomq.mAP_0.1": 0.5, "egonlq.r1_iou0.3": 0.25}
