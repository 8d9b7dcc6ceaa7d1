"""MLflow tracking of sweep runs: one MLflow run per sweep row, continued (not reopened) across requeues.

Facts and pains this module answers ("MLflow + requeue"): Lightning #6205 (a logger
opens a fresh run after a SLURM requeue), mlflow #4248/#10510 (continue runs; a killed run stays RUNNING).

- Tracking URI: ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<cwd>/mlflow.db``; relative SQLite paths
  are made absolute so jobs started elsewhere write to the same file.
- The MLflow run id lives in ``<run_dir>/mlflow.json``; a restarted job continues that run (status back to
  RUNNING). A job that dies without a word is set FAILED by whoever notices (``bench status``/``sync`` and
  the sweep monitor call ``mark_failed``); requeued jobs are set SCHEDULED until they start again.
- Step metrics from the trainer callback are buffered and written at each checkpoint, and a resumed run first
  asks MLflow how far ``train.loss`` got, so each step reaches MLflow exactly once whatever the kill point
  (steps between the kill and the checkpoint are replayed from ``metrics.jsonl``).
- Every call retries with exponential backoff on SQLite's "database is locked" (many jobs, one file).
- Tracking never costs a result: if MLflow stays unreachable the job goes on, its result record is written
  to the run directory anyway, and ``bench sync`` replays it later (``replay_run``).
- A store that cannot be used is named in a ``TrackingStoreError`` (a ``BenchError``) with the ways on: a
  SQLite file that is not a database (checked by its header, https://www.sqlite.org/fileformat.html §1.3.1)
  or is malformed, or an HTTP server that does not answer. MLflow's own HTTP retries are bounded where the
  user has not set them (``HTTP_DEFAULTS``), and the first request to a server is tried ``HTTP_ATTEMPTS``
  times, saying on stderr what it waits for.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from henasy.core.atomic import atomic_write_json
from henasy.core.errors import BenchError
from henasy.core.records import (
    ARTIFACT_CONFIG,
    ARTIFACT_EVAL,
    ARTIFACT_PLOTS,
    ARTIFACT_RESULTS,
    EVAL_DIR,
    METRIC_TRAIN_LOSS,
    METRIC_WALL_TIME,
    RESULT_NAME,
    TAG_ARTIFACT_STORE,
    TAG_FAILURE,
    TAG_SYNCED_BY,
    run_tags,
)
from henasy.training.callbacks import Callback, read_metrics
from sweeps.records import read_json

T = TypeVar("T")
DEFAULT_DB = "mlflow.db"
MLFLOW_FILE = "mlflow.json"  # {"run_id", "experiment_id", "tracking_uri", "synced"}
STEP_KEY = METRIC_TRAIN_LOSS  # the step metric whose history tells how far a run was logged
LOCK_PATTERNS = ("database is locked", "database table is locked", "database schema has changed")
INVALID_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. :/]")
MAX_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
CORRUPT_PATTERNS = ("not a database", "malformed", "file is encrypted")
# Bounded MLflow HTTP retries (set only where the user has not set them): a few seconds per refused call
# (at most 3 × the timeout for a silent host) instead of MLflow's 7 retries with backoff 2, about 4 minutes
# (mlflow 3.17.2 : mlflow/environment_variables.py). The first request to a server is retried here
# instead, saying so (PROBE_ENV: no MLflow retries for it).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
HTTP_ATTEMPTS = 3
HTTP_WAIT_S = 1.0  # before attempt k (k >= 2): HTTP_WAIT_S * 2 ** (k - 2) seconds
WAYS_ON = (
    "`bench sweep ... --no-tracking` runs without MLflow (result records are still written; "
    "`bench sync` replays them into MLflow later)"
)
log = logging.getLogger(__name__)


class TrackingStoreError(BenchError):
    """The MLflow tracking store cannot be used; the message names it and says how to go on."""


def resolve_tracking_uri(uri: str | None = None, cwd: str | Path | None = None) -> str:
    """The tracking URI jobs use: ``uri`` or $MLFLOW_TRACKING_URI or ``sqlite:///<cwd>/mlflow.db``, absolute."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"
    base = Path(cwd) if cwd is not None else Path.cwd()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        rel = uri[len("sqlite:///") :]
        uri = f"sqlite:///{(base / rel).resolve()}"
    elif "://" not in uri:  # a bare path: MLflow's file store
        uri = str((base / uri).resolve())
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores)."""
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def is_locked_error(err: BaseException) -> bool:
    text = str(err).lower()
    return any(p in text for p in LOCK_PATTERNS)


def retry(
    fn: Callable[[], T], *, what: str, attempts: int = 12, base_s: float = 0.05, max_s: float = 4.0
) -> T:
    """Call ``fn``; on "database is locked" wait (exponential backoff with jitter) and try again."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as err:  # MLflow wraps SQLAlchemy errors in MlflowException
            if not is_locked_error(err) or attempt == attempts - 1:
                raise
            delay = min(max_s, base_s * 2**attempt) * (0.5 + random.random())
            log.debug("%s: database is locked, retry %d in %.2fs", what, attempt + 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def quiet_mlflow_logs() -> None:
    """MLflow and alembic log every schema migration at INFO; keep job logs readable."""
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)


def client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri`` whose store answers (for SQLite: whose schema exists).

    MLflow creates and migrates a SQLite schema on first use; jobs starting together would race on it
    ("duplicate column name"), so for SQLite the first use happens under a file lock next to the database.
    Raises ``TrackingStoreError`` naming the store when it is corrupt, cannot be opened or does not answer.
    """
    from mlflow import MlflowClient

    quiet_mlflow_logs()  # after the import: importing mlflow configures its loggers at INFO
    db = sqlite_path(uri)
    if db is not None:
        return _sqlite_client(uri, db)
    if is_served(uri):
        return _http_client(uri)
    mlc = MlflowClient(tracking_uri=uri)
    try:
        retry(lambda: mlc.search_experiments(max_results=1), what="open the MLflow store")
    except Exception as err:
        raise TrackingStoreError(
            f"cannot use the MLflow store {uri} ({_short(err)}); point --tracking-uri or "
            f"MLFLOW_TRACKING_URI at another store, or {WAYS_ON}"
        ) from None
    return mlc


def _short(err: BaseException) -> str:
    """The first line of an MLflow / SQLAlchemy error, without the ``(sqlite3.DatabaseError)`` prefix."""
    lines = str(err).strip().splitlines() or [type(err).__name__]
    return re.sub(r"^\([\w.]+\)\s*", "", lines[0])[:300]


def corrupt_store_error(db: Path, detail: str) -> TrackingStoreError:
    """The error for a SQLite file MLflow cannot read, with the ways on."""
    return TrackingStoreError(
        f"{db}: not a readable MLflow SQLite store ({detail}). Move it aside (`mv {db} {db}.broken`; the "
        f"next `bench sweep` or `bench sync` starts a new store) or point --tracking-uri / "
        f"MLFLOW_TRACKING_URI at another store; {WAYS_ON}"
    )


def _check_sqlite_file(db: Path) -> None:
    """Refuse a path that is a folder, or a non-empty file without the SQLite header (an empty one is new)."""
    if db.is_dir():
        raise corrupt_store_error(db, "it is a folder")
    blocking = next((parent for parent in db.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        raise TrackingStoreError(
            f"{db}: cannot create the MLflow store, {blocking} is a file, not a folder; point "
            f"--tracking-uri / MLFLOW_TRACKING_URI elsewhere, or {WAYS_ON}"
        )
    try:
        with open(db, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as err:
        raise TrackingStoreError(
            f"{db}: cannot read the MLflow store ({err.strerror}); fix its permissions or point "
            f"--tracking-uri / MLFLOW_TRACKING_URI at another store; {WAYS_ON}"
        ) from None
    if head and head != SQLITE_HEADER:
        raise corrupt_store_error(db, "file is not a database: no SQLite header")


def _sqlite_client(uri: str, db: Path) -> Any:
    from mlflow import MlflowClient

    from sweeps.manifest import file_lock

    _check_sqlite_file(db)
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(db.with_name(db.name + ".lock")):
            mlc = MlflowClient(tracking_uri=uri)
            retry(lambda: mlc.search_experiments(max_results=1), what="open the MLflow store")
    except Exception as err:
        detail = err.strerror if isinstance(err, OSError) and err.strerror else _short(err)
        if any(p in str(err).lower() for p in CORRUPT_PATTERNS):
            raise corrupt_store_error(db, detail) from None
        raise TrackingStoreError(
            f"{db}: cannot open the MLflow SQLite store ({detail}); check the file and its folder, or "
            f"point --tracking-uri / MLFLOW_TRACKING_URI at another store; {WAYS_ON}"
        ) from None
    return mlc


def bound_http_retries() -> None:
    """Bounded MLflow HTTP retries and timeout (``HTTP_DEFAULTS``) where the user has not set them."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


@contextmanager
def _probe_env() -> Iterator[None]:
    """No MLflow retries for one request (``client`` retries it, saying so) unless the user set them."""
    saved = {name: os.environ.get(name) for name in PROBE_ENV}
    user_set = {name for name in PROBE_ENV if os.environ.get(name) != HTTP_DEFAULTS.get(name)}
    for name in set(PROBE_ENV) - user_set:
        os.environ[name] = PROBE_ENV[name]
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _http_client(uri: str) -> Any:
    """Client of an MLflow server; its first request is tried ``HTTP_ATTEMPTS`` times, saying each wait."""
    from mlflow import MlflowClient

    bound_http_retries()
    mlc = MlflowClient(tracking_uri=uri)
    detail = ""
    for attempt in range(1, HTTP_ATTEMPTS + 1):
        if attempt > 1:
            wait = HTTP_WAIT_S * 2 ** (attempt - 2)
            print(
                f"bench: waiting for the MLflow server at {uri} (attempt {attempt}/{HTTP_ATTEMPTS} in "
                f"{wait:g} s; {detail})",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(wait)
        timeout = "?"
        try:
            with _probe_env():
                timeout = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "?")
                mlc.search_experiments(max_results=1)
            return mlc
        except Exception as err:
            detail = _http_detail(err, timeout)
    raise TrackingStoreError(
        f"cannot use the MLflow server at {uri}: {HTTP_ATTEMPTS} attempts failed (last: {detail}). Check "
        f"that the server runs and is reachable from here, or point --tracking-uri / MLFLOW_TRACKING_URI "
        f"at another store; {WAYS_ON}"
    )


def _http_detail(err: BaseException, timeout: str) -> str:
    """A few words for a failed request: connection refused, no answer within N s, or MLflow's first line."""
    text = str(err)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return f"no answer within {timeout} s"
    if "Name or service not known" in text or "Failed to resolve" in text:
        return "unknown host name"
    return _short(err)


def ensure_store(uri: str) -> None:
    """Create the tracking store (SQLite schema) before jobs start; ``TrackingStoreError`` when unusable."""
    client(uri)


def is_served(uri: str) -> bool:
    """True for an MLflow tracking server (``http(s)://``)."""
    return uri.startswith(("http://", "https://"))


def artifact_location(uri: str, name: str) -> str | None:
    """Where a new experiment's artifacts go: next to a SQLite database (``<db folder>/mlruns/<name>``), else
    the store's own default (a server's default artifact root: ``mlflow-artifacts:/…``, uploaded through the
    server, when it serves artifacts as ``mlflow server`` does by default)."""
    db = sqlite_path(uri)
    if db is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "sweep"
    return (db.parent / "mlruns" / slug).as_uri()


def artifacts_misplaced(uri: str, experiment: Any) -> str:
    """Why runs of ``experiment`` reached through ``uri`` would put their artifacts in the wrong place ("" if not).

    An experiment keeps the artifact location it was created with (https://github.com/mlflow/mlflow/issues/5407,
    maintainers' answer of 2022-02-23): one created on a local SQLite store has a ``file:`` location, so runs
    logged through a server that serves that store would write their files on the client's disk, around the
    server; one created through a server has an ``mlflow-artifacts:`` location, which only a server resolves.
    """
    location = str(getattr(experiment, "artifact_location", "") or "")
    scheme = location.split(":", 1)[0].lower() if ":" in location else ""
    tags = getattr(experiment, "tags", None) or {}
    if is_served(uri) and scheme in ("", "file") and tags.get(TAG_ARTIFACT_STORE) != "server":
        return f"its artifacts go to {location}, a folder of the machine that logs, not through the server"
    if sqlite_path(uri) is not None and scheme == "mlflow-artifacts":
        return f"its artifacts go to {location}, which only an MLflow server resolves"
    return ""


_WARNED: set[tuple[str, str]] = set()


def experiment_id(mlc: Any, name: str, uri: str) -> str:
    """Id of experiment ``name`` (created if missing) whose artifact location follows ``uri``.

    New experiments get ``artifact_location(uri, name)``. An existing one whose location does not fit ``uri``
    (``artifacts_misplaced``: created on the SQLite file that a server now serves, or the reverse) is left as
    it is and the runs go to the experiment ``"<name> (served)"`` / ``"<name> (local)"`` instead (tables and
    comparisons select runs by their ``bench.*`` tags across experiments).
    """
    found = retry(lambda: mlc.get_experiment_by_name(name), what="look up the experiment")
    why = artifacts_misplaced(uri, found) if found is not None else ""
    if why:
        sibling = f"{name} ({'served' if is_served(uri) else 'local'})"
        if (uri, name) not in _WARNED:
            _WARNED.add((uri, name))
            log.warning("MLflow experiment %r: %s; runs logged through %s go to %r", name, why, uri, sibling)
        name = sibling
        found = retry(lambda: mlc.get_experiment_by_name(name), what="look up the experiment")
    if found is not None:
        return found.experiment_id
    tags = (
        {TAG_ARTIFACT_STORE: "server" if is_served(uri) else "sqlite"}
        if is_served(uri) or sqlite_path(uri)
        else {}
    )
    try:
        return retry(
            lambda: mlc.create_experiment(name, artifact_location=artifact_location(uri, name), tags=tags),
            what="create the experiment",
        )
    except Exception as err:  # another job created it first
        if "already exists" not in str(err).lower() and "unique" not in str(err).lower():
            raise
        return retry(lambda: mlc.get_experiment_by_name(name), what="look up the experiment").experiment_id


def metric_key(name: str) -> str:
    """``name`` with the characters MLflow refuses in metric names replaced: ``mAP@0.1`` → ``mAP_0.1``.

    MLflow accepts alphanumerics, ``_ - . : /`` and spaces; result records keep the original names.
    """
    return INVALID_KEY_CHARS.sub("_", name)


def flatten_params(resolved: dict[str, Any]) -> dict[str, str]:
    """Resolved run config → MLflow params: ``model``, ``model.<arg>``, ``trainer.lr``, ``benchmarks``..."""
    out: dict[str, str] = {}
    for key, value in resolved.items():
        if key == "model_args":
            for arg, v in value.items():
                out[f"model.{arg}"] = _param(v)
        elif isinstance(value, dict):
            for sub, v in value.items():
                out[f"{key}.{sub}"] = _param(v)
        else:
            out[key] = _param(value)
    return out


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:6000]


class RunTracker:
    """The MLflow run of one sweep row, identified through ``<run_dir>/mlflow.json``.

    Methods never raise: after ``retry`` gives up the tracker goes offline (``self.online`` False), the
    reason is kept in ``mlflow.json`` and ``bench sync`` replays what was missed.
    """

    def __init__(self, uri: str, run_dir: str | Path, *, experiment: str, run_name: str) -> None:
        self.uri = uri
        self.run_dir = Path(run_dir)
        self.experiment = experiment
        self.run_name = run_name
        self.run_id: str | None = None
        self.online = True
        self._mlc: Any = None

    # ------------------------------------------------------------------------------------------ state
    @property
    def info_path(self) -> Path:
        return self.run_dir / MLFLOW_FILE

    def info(self) -> dict[str, Any]:
        data = read_json(self.info_path)
        return data if isinstance(data, dict) else {}

    def _save_info(self, **changes: Any) -> None:
        atomic_write_json(self.info_path, {**self.info(), **changes})

    def _call(self, what: str, fn: Callable[[], T]) -> T | None:
        if not self.online:
            return None
        try:
            return retry(fn, what=what)
        except Exception as err:
            if getattr(err, "error_code", "") == "INVALID_PARAMETER_VALUE":  # bad input, the store is fine
                log.warning("MLflow refused %s: %s", what, err)
                return None
            self.online = False  # said once: later calls return at once
            log.warning(
                "MLflow logging is off for this run (%s failed: %s). Training goes on; the result record "
                "is still written to %s and `bench sync` replays it into MLflow later.",
                what,
                err,
                self.run_dir,
            )
            try:
                self._save_info(offline_reason=f"{what}: {err}"[:500], synced=False)
            except OSError:
                pass
            return None

    # ------------------------------------------------------------------------------------------- open
    def open(self, *, params: dict[str, str], tags: dict[str, str]) -> str | None:
        """Continue the run named in ``mlflow.json`` (status RUNNING) or create it; returns its id."""
        from mlflow.entities import Param, RunTag

        self._mlc = self._call("connect", lambda: client(self.uri))
        if self._mlc is None:
            return None
        mlc = self._mlc
        known = self.info().get("run_id")
        if known and self.info().get("tracking_uri") == self.uri and self._exists(known):
            self.run_id = known
            self._call("reopen the run", lambda: mlc.update_run(known, status="RUNNING"))
            return known
        exp = self._call("experiment", lambda: experiment_id(mlc, self.experiment, self.uri))
        if exp is None:
            return None
        run = self._call("create the run", lambda: mlc.create_run(exp, run_name=self.run_name, tags=tags))
        if run is None:
            return None
        self.run_id = run.info.run_id
        self._save_info(
            run_id=self.run_id, experiment_id=exp, tracking_uri=self.uri, synced=False, offline_reason=None
        )
        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 90):  # MLflow: at most 100 params per batch
            chunk = items[i : i + 90]
            self._call("log params", lambda c=chunk: mlc.log_batch(self.run_id, params=c))
        self._call(
            "log tags", lambda: mlc.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        )
        return self.run_id

    def _exists(self, run_id: str) -> bool:
        try:
            retry(lambda: self._mlc.get_run(run_id), what="get the run")
            return True
        except Exception:
            return False

    # ----------------------------------------------------------------------------------------- logging
    def log_metrics(self, rows: list[tuple[str, float, int]]) -> bool:
        """Log ``(key, value, step)`` triples in batches; True when they reached MLflow."""
        from mlflow.entities import Metric

        if self.run_id is None or not rows:
            return self.run_id is not None and self.online
        now = int(time.time() * 1000)
        metrics = [Metric(metric_key(k), float(v), now, int(s)) for k, v, s in rows]
        for i in range(0, len(metrics), MAX_BATCH):
            chunk = metrics[i : i + MAX_BATCH]
            self._call("log metrics", lambda c=chunk: self._mlc.log_batch(self.run_id, metrics=c))
        return self.online

    def logged_step(self) -> int:
        """The last step of ``train.loss`` in MLflow (0 when none; -1 when MLflow cannot say)."""
        if self.run_id is None:
            return -1
        history = self._call("metric history", lambda: self._mlc.get_metric_history(self.run_id, STEP_KEY))
        if history is None:
            return -1
        return max((m.step for m in history), default=0)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.run_id is not None and Path(path).exists():
            self._call(
                "log an artifact", lambda: self._mlc.log_artifact(self.run_id, str(path), artifact_path)
            )

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        if self.run_id is not None and tags:
            self._call(
                "set tags",
                lambda: self._mlc.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()]),
            )

    def set_status(self, status: str) -> None:
        """RUNNING / SCHEDULED (requeued) without ending the run."""
        if self.run_id is not None:
            self._call("set the status", lambda: self._mlc.update_run(self.run_id, status=status))

    def finish(self, status: str) -> bool:
        """End the run as FINISHED or FAILED; True when MLflow recorded it."""
        if self.run_id is None:
            return False
        self._call("end the run", lambda: self._mlc.set_terminated(self.run_id, status=status))
        return self.online

    def callback(self) -> TrainingLogger:
        return TrainingLogger(self)


class TrainingLogger(Callback):
    """Trainer callback: step metrics to MLflow, flushed at checkpoints, each step exactly once.

    Epoch means are logged at once (``epoch.*``): the trainer reports them right after the epoch-end
    checkpoint, and a restart from that checkpoint does not report them again.
    """

    def __init__(self, tracker: RunTracker) -> None:
        self.tracker = tracker
        self.buffer: list[tuple[str, float, int]] = []
        self.logged = 0  # steps up to here are in MLflow (or deliberately skipped)

    def on_train_start(self, info: dict[str, Any]) -> None:
        start = int(info.get("start_step", 0))
        if not info.get("resumed"):
            self.logged = 0
            return
        logged = self.tracker.logged_step()
        if logged < 0:  # MLflow cannot say: steps before the checkpoint are left to `bench sync`
            self.logged = start
            return
        self.logged = logged
        if logged < start:  # killed between a checkpoint and its flush: replay those steps
            path = Path(info.get("run_dir", self.tracker.run_dir)) / "metrics.jsonl"
            for row in read_metrics(path) if path.exists() else []:
                step = int(row.get("step", 0))
                if logged < step <= start and row.get("event") != "epoch_end":
                    self.buffer += _rows(row, step)
            self.flush(start)

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        if step > self.logged:
            self.buffer += _rows(metrics, step)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.tracker.log_metrics(
            _rows({**metrics, "index": epoch}, int(metrics.get("step", 0)), prefix="epoch.")
        )

    def on_checkpoint(self, path: Path) -> None:
        self.flush(max((s for _, _, s in self.buffer), default=self.logged))

    def on_train_end(self, summary: dict[str, Any]) -> None:
        self.flush(int(summary.get("step", self.logged)))

    def flush(self, upto: int) -> None:
        if self.buffer and self.tracker.log_metrics(self.buffer):
            self.logged = max(self.logged, upto)
        self.buffer = []


def _rows(metrics: dict[str, Any], step: int, prefix: str = "train.") -> list[tuple[str, float, int]]:
    return [
        (f"{prefix}{k}", float(v), step)
        for k, v in metrics.items()
        if k not in ("step", "event") and isinstance(v, (int, float)) and not isinstance(v, bool)
    ]


def replay_training_metrics(tracker: RunTracker, run_dir: str | Path) -> int:
    """Log the steps of ``metrics.jsonl`` that MLflow does not have yet; returns how many steps were sent."""
    path = Path(run_dir) / "metrics.jsonl"
    logged = tracker.logged_step()
    if logged < 0 or not path.exists():
        return 0
    rows: list[tuple[str, float, int]] = []
    steps = set()
    for row in read_metrics(path):
        step = int(row.get("step", 0))
        if step > logged:
            epoch_row = row.get("event") == "epoch_end"
            rows += _rows(row, step, prefix="epoch." if epoch_row else "train.")
            if not epoch_row:
                steps.add(step)
    tracker.log_metrics(rows)
    return len(steps)


def mark_failed(uri: str, run_dir: str | Path, reason: str) -> bool:
    """Set the run of ``run_dir`` FAILED if MLflow still shows it RUNNING/SCHEDULED (a job that died silently)."""
    info = read_json(Path(run_dir) / MLFLOW_FILE)
    if not isinstance(info, dict) or not info.get("run_id"):
        return False
    try:
        mlc = client(info.get("tracking_uri") or uri)
        run = retry(lambda: mlc.get_run(info["run_id"]), what="get the run")
        if run.info.status not in ("RUNNING", "SCHEDULED"):
            return False
        retry(lambda: mlc.set_tag(info["run_id"], TAG_FAILURE, reason[:500]), what="tag the failure")
        retry(lambda: mlc.set_terminated(info["run_id"], status="FAILED"), what="end the run")
        return True
    except Exception as err:
        log.warning("could not mark the MLflow run of %s FAILED: %s", run_dir, err)
        return False


def publish_result(tracker: RunTracker, run_dir: str | Path, record: dict[str, Any]) -> bool:
    """Benchmark metrics, artifacts (config, records, loss plot) and FINISHED for a complete result record.

    Marks ``mlflow.json`` synced when everything reached MLflow; returns that.
    """
    from sweeps.plots import training_curve
    from sweeps.records import RUN_NAME

    run_dir = Path(run_dir)
    rows = [(k, v, 0) for k, v in record.get("metrics", {}).items()]
    if isinstance(record.get("wall_time_s"), (int, float)):
        rows.append((METRIC_WALL_TIME, record["wall_time_s"], 0))
    tracker.log_metrics(rows)
    tracker.log_artifact(run_dir / RUN_NAME, ARTIFACT_CONFIG)
    tracker.log_artifact(run_dir / "config.json", ARTIFACT_CONFIG)
    tracker.log_artifact(run_dir / RESULT_NAME, ARTIFACT_RESULTS)
    for path in sorted((run_dir / EVAL_DIR).glob("*.json")):
        tracker.log_artifact(path, ARTIFACT_EVAL)
    plot = training_curve(run_dir / "metrics.jsonl", run_dir / "plots" / "training_loss.png")
    if plot is not None:
        tracker.log_artifact(plot, ARTIFACT_PLOTS)
    ok = tracker.finish("FINISHED")
    if ok:
        tracker._save_info(synced=True, offline_reason=None)
    return ok


def is_synced(run_dir: str | Path) -> bool:
    info = read_json(Path(run_dir) / MLFLOW_FILE)
    return isinstance(info, dict) and info.get("synced") is True


def sync_run(
    uri: str, run_dir: str | Path, record: dict[str, Any], *, experiment: str, git_commit: str | None = None
) -> str:
    """Replay a finished run that never fully reached MLflow: ``"synced"``, ``"already"`` or ``"offline"``.

    Continues the run named in ``mlflow.json`` when it exists in this store, else creates it; logs the
    training steps MLflow lacks (from ``metrics.jsonl``), then what ``publish_result`` logs.
    """
    run_dir = Path(run_dir)
    info = read_json(run_dir / MLFLOW_FILE) or {}
    if info.get("synced") is True and info.get("tracking_uri") == uri:
        return "already"
    tracker = RunTracker(uri, run_dir, experiment=experiment, run_name=str(record.get("label", run_dir.name)))
    config = record.get("config") or {}
    tags = {
        **run_tags(
            sweep=record.get("sweep", ""),
            table=record.get("table"),
            row=record.get("label", ""),
            run_id=record.get("run_id", ""),
            scale=record.get("scale", ""),
            model=config.get("model", ""),
            git_commit=record.get("git_commit") or git_commit,
        ),
        TAG_SYNCED_BY: "bench sync",
    }
    if tracker.open(params=flatten_params(config), tags=tags) is None:
        return "offline"
    replay_training_metrics(tracker, run_dir)
    return "synced" if publish_result(tracker, run_dir, record) else "offline"
