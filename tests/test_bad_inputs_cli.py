"""Bad-input corpus: a broken tracking store, an unreachable tracking server, ``bench ground`` arguments and
``bench compare --records`` of another model (issue 12; judged by ``tests/bad_input_support.py``).

Every case must end in exit 2 with a message naming the store / option / file and the way on, without a
traceback, and write nothing: no overlay image, no job started on a store that cannot record it.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from bad_input_support import CliResult, expect, expect_clear_error, run_bench, run_bench_process
from test_reports_compare import egomcq_record

from sweeps.tracking import RunTracker, client

# ------------------------------------------------------------------------------------ tracking store
NOT_SQLITE = bytes(range(256)) * 32  # 8 KiB that do not start with the SQLite header
MLFLOW_HTTP_ENV = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
)


@pytest.fixture(scope="module")
def truncated_store(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The first tenth of a real MLflow SQLite store (as after a full disk or a copy cut short)."""
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    client(f"sqlite:///{db}")
    data = db.read_bytes()
    return data[: len(data) // 10]


@pytest.fixture(params=["random-bytes", "truncated"])
def corrupt_db(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``<tmp>/mlflow.db`` that MLflow cannot read; MLFLOW_TRACKING_URI unset so the default store is it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    db = tmp_path / "mlflow.db"
    content = NOT_SQLITE if request.param == "random-bytes" else request.getfixturevalue("truncated_store")
    db.write_bytes(content)
    return db


def _expect_store_named(result: CliResult, db: Path) -> None:
    message = expect_clear_error(
        result, mentions=[str(db), "not a readable MLflow SQLite store", "--no-tracking", "bench sync"]
    )
    expect(
        "--tracking-uri" in message and "mv " in message, "the ways on (move it, another store) are missing"
    )


def _sweep_folder(root: Path, uri: str) -> Path:
    """A sweep folder whose manifest names the tracking store ``uri`` (no runs yet)."""
    folder = root / "runs" / "s" / "smoke"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"sweep": "s", "tracking_uri": uri, "runs": {}}))
    return folder


@pytest.mark.bad_input
def test_corrupt_store_bench_sync_names_the_file(corrupt_db: Path) -> None:
    folder = _sweep_folder(corrupt_db.parent, f"sqlite:///{corrupt_db}")
    _expect_store_named(run_bench(["sync", str(folder)]), corrupt_db)


@pytest.mark.bad_input
def test_corrupt_store_bench_table_names_the_file(corrupt_db: Path) -> None:
    result = run_bench(["table", "--id", "3"], cwd=corrupt_db.parent)  # the default store: ./mlflow.db
    _expect_store_named(result, corrupt_db)


@pytest.mark.bad_input
def test_corrupt_store_bench_compare_from_mlflow_names_the_file(corrupt_db: Path) -> None:
    uri = f"sqlite:///{corrupt_db}"
    _expect_store_named(
        run_bench(["compare", "henasy_tiny", "lavila_tiny", "--tracking-uri", uri]), corrupt_db
    )


SPEC = """
name: test/tracking
base:
  model: lavila_tiny
  benchmarks: [egomcq]
  eval: {limit: 8, batch_size: 8, num_workers: 0}
scales:
  smoke:
    overrides: {trainer.epochs: 1, trainer.max_steps: 1, trainer.batch_size: 8}
rows:
  - label: only
"""


@pytest.mark.bad_input
def test_corrupt_store_bench_sweep_refuses_before_any_job(corrupt_db: Path, synth_tiny: Path) -> None:
    work = corrupt_db.parent
    (work / "spec.yaml").write_text(textwrap.dedent(SPEC))
    before = corrupt_db.read_bytes()
    result = run_bench(["sweep", "spec.yaml", "--data", str(synth_tiny), "--executor", "debug"], cwd=work)
    _expect_store_named(result, corrupt_db)
    expect(not list(work.rglob("result.json")), "a job ran although its tracking store is unusable")
    expect(corrupt_db.read_bytes() == before, "the broken store was changed (it may still be recoverable)")


@pytest.mark.bad_input
def test_corrupt_store_job_tracker_goes_offline_and_says_so_once(
    corrupt_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = corrupt_db.parent / "run"
    tracker = RunTracker(f"sqlite:///{corrupt_db}", run_dir, experiment="e", run_name="row")
    with caplog.at_level(logging.WARNING, logger="sweeps.tracking"):
        expect(tracker.open(params={"a": "1"}, tags={}) is None, "a run was opened in a corrupt store")
        logger = tracker.callback()
        logger.on_train_start({"start_step": 0, "resumed": False})
        logger.on_step(1, {"loss": 1.0})
        logger.on_checkpoint(run_dir / "last.pt")  # training goes on: no exception from the tracker
        tracker.finish("FINISHED")
    said = [r.getMessage() for r in caplog.records if r.name == "sweeps.tracking"]
    expect(len(said) == 1, f"the tracking failure should be said once, was said {len(said)} times")
    for words in ("MLflow logging is off for this run", str(corrupt_db), "bench sync", str(run_dir)):
        expect(words in said[0], f"the warning does not mention {words!r}: {said[0]}")
    reason = json.loads((run_dir / "mlflow.json").read_text())["offline_reason"]
    expect(str(corrupt_db) in reason, "mlflow.json does not keep why the run is offline")


# -------------------------------------------------------------------------------- tracking server
def _closed_port() -> int:
    """A loopback port nothing listens on (bound by the OS, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _expect_server_named(result: CliResult, uri: str, elapsed: float) -> None:
    expect(elapsed < 20, f"took {elapsed:.0f} s to give up on {uri} (MLflow's own retries unbounded?)")
    expect_clear_error(result, mentions=[uri, "--no-tracking", "bench sync", "connection refused"])
    for attempt in (2, 3):
        waiting = f"waiting for the MLflow server at {uri} (attempt {attempt}/3"
        expect(waiting in result.err, f"no line saying {waiting!r}")


@pytest.mark.bad_input
def test_unreachable_server_bench_sync_gives_up_soon_and_names_it(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    folder = _sweep_folder(tmp_path, uri)
    env = {"MLFLOW_TRACKING_URI": uri}
    started = time.monotonic()
    try:
        result = run_bench_process(["sync", str(folder)], cwd=tmp_path, env=env, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"WRONG: `bench sync` still retrying {uri} after 60 s") from None
    _expect_server_named(result, uri, time.monotonic() - started)


@pytest.mark.bad_input
def test_unreachable_server_bench_table_gives_up_soon_and_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MLFLOW_HTTP_ENV:  # restored after the test: `bench` bounds them for this process
        monkeypatch.delenv(name, raising=False)
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.monotonic()
    result = run_bench(["table", "--id", "3"])
    _expect_server_named(result, uri, time.monotonic() - started)


# ------------------------------------------------------------------------------------ bench ground
def _chunk(root: Path) -> Path:
    return sorted((root / "ego4d" / "video_chunks").glob("*.mp4/0.mp4"))[0]


GROUND_CASES = {
    # id: (changes to the good arguments, what the message must name)
    "start-nan": ({"--start": "nan"}, ["--start", "finite"]),
    "end-inf": ({"--end": "inf"}, ["--end", "finite"]),
    "start-negative": ({"--start": "-1"}, ["--start", "before 0"]),
    "start-equals-end": ({"--start": "2", "--end": "2"}, ["--end", "--start"]),
    "start-after-end": ({"--start": "3", "--end": "1"}, ["--end", "--start"]),
    "query-empty": ({"--query": ""}, ["--query", "empty"]),
    "query-whitespace": ({"--query": "  \t "}, ["--query", "empty"]),
    "query-not-utf8": ({"--query": "caf\udce9 cup"}, ["--query", "UTF-8", "0xe9"]),
    "out-is-a-folder": ({"--out": "{tmp}/folder.png"}, ["--out", "folder.png", "is a folder"]),
    "out-under-a-file": ({"--out": "{tmp}/a-file/x.png"}, ["--out", "a-file", "is a file"]),
}


@pytest.mark.bad_input
@pytest.mark.parametrize("case", list(GROUND_CASES))
def test_bench_ground_refuses_bad_arguments_before_building_the_model(
    case: str, synth_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from henasy.core.catalog import MODELS

    (tmp_path / "folder.png").mkdir()
    (tmp_path / "a-file").write_text("not a folder")
    args = {"--video": str(_chunk(synth_tiny)), "--start": "1", "--end": "3", "--query": "the red cup"}
    args["--out"] = str(tmp_path / "out.png")
    changes, mentions = GROUND_CASES[case]
    args.update({k: v.format(tmp=tmp_path) for k, v in changes.items()})
    built: list[str] = []
    real_get = MODELS.get
    monkeypatch.setattr(MODELS, "get", lambda name: built.append(name) or real_get(name))  # a spy
    result = run_bench(["ground", "henasy_tiny", *[x for kv in args.items() for x in kv]])
    expect_clear_error(result, mentions=mentions)
    images = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".png", ".gif", ".tmp")]
    expect(not images, f"an output file was written: {images}")
    expect(not built, "the model was built before the arguments were checked")


def test_bench_ground_creates_missing_output_folders(synth_tiny: Path, tmp_path: Path) -> None:
    """Like every writer of this project (henasy/core/atomic.py), missing parent folders of --out are created."""
    out = tmp_path / "new" / "sub" / "cup.png"
    args = ["--video", str(_chunk(synth_tiny)), "--start", "1", "--end", "3", "--query", "cup", "--out", out]
    result = run_bench(["ground", "lavila_tiny", *args])
    assert result.code == 0 and out.is_file(), result.describe()


# ------------------------------------------------------------------------------- bench compare --records
def _record_of(model: str | None, correct: int) -> dict:
    record = egomcq_record([1] * 20, [int(i < correct) for i in range(20)])
    return {**record, "model": {"id": model}} if model else record


@pytest.mark.bad_input
@pytest.mark.parametrize("side", ["A", "B"])
def test_compare_records_of_another_model_are_refused(side: str, tmp_path: Path) -> None:
    good, other = tmp_path / "henasy.json", tmp_path / "lavila.json"
    good.write_text(json.dumps(_record_of("henasy_tiny", 15)))
    other.write_text(json.dumps([_record_of("lavila_tiny", 10)]))
    files = [other, good] if side == "A" else [good, other]
    models = ["henasy_tiny", "henasy_tiny"]
    result = run_bench(["compare", *models, "--records", *files, "--n-boot", "50"])
    expect_clear_error(result, mentions=[str(other), "'lavila_tiny'", f"{side} = 'henasy_tiny'"])
    expect("| henasy_tiny" not in result.out, "a comparison table was printed anyway")


def test_compare_one_model_with_itself_still_works(tmp_path: Path) -> None:
    """README: `bench compare lavila_tiny lavila_tiny --records trained.json untrained.json`."""
    trained, untrained = tmp_path / "trained.json", tmp_path / "untrained.json"
    trained.write_text(json.dumps([_record_of("lavila_tiny", 15)]))
    untrained.write_text(json.dumps([_record_of("lavila_tiny", 5)]))
    result = run_bench(
        ["compare", "lavila_tiny", "lavila_tiny", "--records", trained, untrained, "--n-boot", "50"]
    )
    assert result.code == 0, result.describe()
    assert "| lavila_tiny [A] | lavila_tiny [B] |" in result.out
