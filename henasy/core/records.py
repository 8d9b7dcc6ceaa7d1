"""The result-record schema: typed records, their schema versions, the one loader and the MLflow names.

Two record kinds, each a dataclass with ``to_dict`` / ``from_dict`` and its own ``schema_version`` and
``kind`` written into the JSON:

- ``BenchmarkResult`` (``kind: "benchmark"``): one benchmark run on one model, as ``bench eval`` and every
  sweep job write it (``benchmarks/record.py`` builds it from what a protocol returns)::

    {"schema_version", "kind", "date", "git_hash", "henasy_bench_version", "benchmark",
     "protocol": {"version", ...}, "split", "metrics": {name: value}, "n_items", "partial",
     "model": {"id", "checkpoint", "checkpoint_sha256"}, "wall_time_s", "data_root", "per_item": {...},
     "artifacts": {...}, "env": {...}}

  and, only when ``bench eval --on-missing skip`` dropped items (``partial`` is then true; metrics and
  ``per_item`` cover the remaining items): ``"skipped_items": N, "skipped_videos": [first 100 paths],
  "skipped_videos_total": M``. Records without these keys read as nothing skipped.

- ``RunResult`` (``kind: "run"``): one sweep run, ``<run_dir>/result.json`` (``sweeps/job.py``): run id,
  resolved config, training summary, the run's ``BenchmarkResult`` list and the flat metrics MLflow gets.

Provenance at the top of both kinds (the keys lm-evaluation-harness results carry): ``date`` (when the record
was made, ISO 8601 UTC, e.g. ``2026-12-04T20:15:03Z``), ``git_hash`` (``henasy.core.buildinfo.git_commit``:
the checkout's commit, else the one the installed wheel recorded, else ``unknown (why)``) and
``henasy_bench_version``. Records written before version 3 read them as ``None``.

Versions read (``KNOWN_VERSIONS``): 0 is a record without ``schema_version`` (hand-written, or from another
tool), 1 is what this repository wrote before records had one owner (the same fields, no ``kind``), 2 added
``kind``, 3 (the current one) adds ``date``, ``git_hash`` and ``henasy_bench_version``. ``load_record`` reads a benchmark record file (one record or a list), a ``result.json``
or a run folder, and refuses a record of a version it does not know, naming the file and the versions
it reads. NaN metric values are written as JSON ``null``.

Per-item breakdown: a benchmark says how its metrics decompose into per-item outcomes with an
``ItemBreakdown`` (``Stratum`` lists over its ``per_item`` arrays) declared next to its protocol
(``benchmarks/<name>.py``); the paired bootstrap of ``bench compare`` reads outcomes through it.

The MLflow tag, parameter, metric and artifact names every writer and reader of MLflow runs uses are the
constants below (``TAG_*``, ``PARAM_*``, ``METRIC_*``, ``ARTIFACT_*``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from henasy.core.atomic import atomic_write_json
from henasy.core.errors import BenchError

# ------------------------------------------------------------------------------------------- versions
BENCHMARK_KIND = "benchmark"
RUN_KIND = "run"
SCHEMA_VERSION = {BENCHMARK_KIND: 3, RUN_KIND: 3}  # what this code writes
KNOWN_VERSIONS = {BENCHMARK_KIND: (0, 1, 2, 3), RUN_KIND: (0, 1, 2, 3)}  # what it reads
PROVENANCE_KEYS = ("date", "git_hash", "henasy_bench_version")  # at the top of every record (version 3)
RESULT_NAME = "result.json"  # a run folder's RunResult
EVAL_DIR = "eval"  # a run folder's eval/<benchmark>.json: that benchmark's BenchmarkResult list

# ---------------------------------------------------------------------------------------- MLflow names
TAG_PREFIX = "bench."
TAG_SWEEP = "bench.sweep"
TAG_TABLE = "bench.table"
TAG_ROW = "bench.row"  # the sweep row's label (a table row's run_row)
TAG_RUN_ID = "bench.run_id"
TAG_SCALE = "bench.scale"
TAG_MODEL = "bench.model"
TAG_GIT_COMMIT = "bench.git_commit"
TAG_JOB_ID = "bench.job_id"
TAG_FAILURE = "bench.failure"
TAG_SYNCED_BY = "bench.synced_by"
TAG_OPTUNA_STUDY = "bench.optuna_study"
TAG_OPTUNA_TRIAL = "bench.optuna_trial"
TAG_ARTIFACT_STORE = (
    "bench.artifact_store"  # experiment tag: "server" or "sqlite", the store it was created on
)
TAG_MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"  # MLflow's own source-commit tag
PARAM_EVAL_LIMIT = "eval.limit"
METRIC_TRAIN_LOSS = "train.loss"  # the step metric whose history tells how far a run was logged
METRIC_WALL_TIME = "summary.wall_time_s"
ARTIFACT_CONFIG = "config"
ARTIFACT_RESULTS = "results"
ARTIFACT_EVAL = "results/eval"
ARTIFACT_EVAL_FILE = "results/eval/{benchmark}.json"
ARTIFACT_PLOTS = "plots"

TRAIN_SUMMARY_KEYS = ("first_loss", "final_loss")  # results only; timings stay in the record's "train"
TRAIN_KEYS = (  # the training summary a RunResult keeps (henasy.training.run.train_run's summary)
    "status",
    "step",
    "total_steps",
    "epoch",
    "first_loss",
    "final_loss",
    "train_s",
    "clips_per_s",
    "world_size",
    "device",
)


def run_tags(
    *, sweep: str, table: Any, row: str, run_id: str, scale: str, model: str, git_commit: str | None
) -> dict[str, str]:
    """The MLflow tags of a sweep run (what ``bench table`` / ``bench compare`` select runs by)."""
    commit = str(git_commit or "unknown")
    return {
        TAG_SWEEP: str(sweep),
        TAG_TABLE: str(table or ""),
        TAG_ROW: str(row),
        TAG_RUN_ID: str(run_id),
        TAG_SCALE: str(scale),
        TAG_MODEL: str(model),
        TAG_GIT_COMMIT: commit,
        TAG_MLFLOW_GIT_COMMIT: commit,
    }


# ----------------------------------------------------------------------------------------- provenance
def utc_now() -> str:
    """The current time as ISO 8601 UTC to the second (``2026-12-04T20:15:03Z``): a record's ``date``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def current_git_hash() -> str:
    """The commit the running code comes from (``henasy.core.buildinfo.git_commit``): a record's ``git_hash``."""
    from henasy.core.buildinfo import git_commit

    return git_commit()


def package_version() -> str:
    """The installed henasy-bench version (``henasy.core.buildinfo.package_version``): a record's
    ``henasy_bench_version``."""
    from henasy.core.buildinfo import package_version as version

    return version()


def _provenance(data: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance keys of a read record as written (another tool's ``date`` may be a Unix time); None
    where the record predates them or holds no plain value there."""
    return {
        key: value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
        for key, value in ((key, data.get(key)) for key in PROVENANCE_KEYS)
    }


# -------------------------------------------------------------------------------------------- helpers
def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python values and NaN/inf into ``None``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _number(value: Any) -> float | None:
    """A finite float, or None (booleans, NaN, inf and non-numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def check_version(data: Mapping[str, Any], kind: str, where: str) -> int:
    """The record's schema version; ``BenchError`` naming ``where`` when this code does not read it."""
    version = data.get("schema_version", 0)
    known = KNOWN_VERSIONS[kind]
    if isinstance(version, bool) or not isinstance(version, int) or version not in known:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > max(known)
        hint = (
            "it was written by a newer henasy-bench; upgrade henasy-bench to read it"
            if newer
            else "it is not a record this project writes; fix its 'schema_version'"
        )
        raise BenchError(
            f"{where}: {kind} record of schema version {version!r}; this henasy-bench reads versions "
            f"{', '.join(map(str, known))}; {hint}"
        )
    return version


def _kind_of(data: Mapping[str, Any]) -> str:
    """``run`` for a result.json (a ``records`` list), else ``benchmark`` (older records carry no kind)."""
    kind = data.get("kind")
    if kind in (BENCHMARK_KIND, RUN_KIND):
        return kind
    return RUN_KIND if isinstance(data.get("records"), list) else BENCHMARK_KIND


# ----------------------------------------------------------------------------------- benchmark result
@dataclass
class ModelRef:
    """The model a benchmark ran on: registered name, checkpoint path and the checkpoint file's SHA-256."""

    id: str | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None


@dataclass
class BenchmarkResult:
    """One benchmark run on one model (``bench eval``'s output, a sweep's ``eval/<benchmark>.json``)."""

    benchmark: str
    metrics: dict[str, float | None]  # as the protocol states them (``protocol.units``); NaN → None
    protocol: dict[str, Any] = field(default_factory=dict)  # every protocol choice, including "version"
    split: str | None = None
    n_items: int | None = None
    partial: bool = False  # --limit cut the evaluated set: tables refuse the numbers
    model: ModelRef = field(default_factory=ModelRef)
    wall_time_s: float | None = None
    data_root: str | None = None
    per_item: Any = field(default_factory=dict)  # parallel per-item lists (the benchmark's ItemBreakdown)
    artifacts: dict[str, str] = field(default_factory=dict)  # files written (official prediction files)
    env: dict[str, str] = field(default_factory=dict)  # versions and device that produced the record
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other tools' records, kept as they were
    schema_version: int = SCHEMA_VERSION[BENCHMARK_KIND]  # the version it was read as
    # bench eval --on-missing skip: items dropped for missing/unreadable videos, the first video paths
    # (benchmarks.context.MAX_SKIPPED_PATHS) and how many distinct videos; written only when skipped_items > 0
    skipped_items: int = 0
    skipped_videos: list[str] = field(default_factory=list)
    skipped_videos_total: int = 0
    # provenance (PROVENANCE_KEYS): filled when a record is made, None when a read record predates them
    date: str | None = field(default_factory=utc_now)
    git_hash: str | None = field(default_factory=current_git_hash)
    henasy_bench_version: str | None = field(default_factory=package_version)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record, in the current schema version (provenance first, after the version)."""
        out = {
            "schema_version": SCHEMA_VERSION[BENCHMARK_KIND],
            "kind": BENCHMARK_KIND,
            "date": self.date,
            "git_hash": self.git_hash,
            "henasy_bench_version": self.henasy_bench_version,
            "benchmark": self.benchmark,
            "protocol": self.protocol,
            "split": self.split,
            "metrics": self.metrics,
            "n_items": self.n_items,
            "partial": self.partial,
            "model": {
                "id": self.model.id,
                "checkpoint": self.model.checkpoint,
                "checkpoint_sha256": self.model.checkpoint_sha256,
            },
            "wall_time_s": self.wall_time_s,
            "data_root": self.data_root,
            "per_item": self.per_item,
            "artifacts": self.artifacts,
            "env": self.env,
        }
        if self.skipped_items:
            out["skipped_items"] = self.skipped_items
            out["skipped_videos"] = self.skipped_videos
            out["skipped_videos_total"] = self.skipped_videos_total
        out.update(self.extra)
        return jsonable(out)

    @classmethod
    def from_dict(cls, data: Any, where: str = "record") -> BenchmarkResult:
        """Read a record of any known version; ``BenchError`` naming ``where`` when it is none."""
        if not isinstance(data, dict) or not isinstance(data.get("benchmark"), str):
            raise BenchError(f"{where}: has no 'benchmark' name; expected {{'benchmark', 'metrics', ...}}")
        version = check_version(data, BENCHMARK_KIND, where)
        if not isinstance(data.get("metrics"), dict):
            raise BenchError(f"{where}: ({data['benchmark']}) has no 'metrics' mapping")
        model = data.get("model")
        if isinstance(model, dict):
            ref = ModelRef(model.get("id"), model.get("checkpoint"), model.get("checkpoint_sha256"))
        else:
            ref = ModelRef(model if isinstance(model, str) and model else None)
        own = {f.name for f in fields(cls)} | {"kind"}
        return cls(
            benchmark=data["benchmark"],
            metrics=dict(data["metrics"]),
            protocol=dict(data.get("protocol") or {}),
            split=data.get("split"),
            n_items=data.get("n_items"),
            partial=bool(data.get("partial", False)),
            model=ref,
            wall_time_s=data.get("wall_time_s"),
            data_root=data.get("data_root"),
            per_item=data.get("per_item") if data.get("per_item") is not None else {},
            artifacts=dict(data.get("artifacts") or {}),
            env=dict(data.get("env") or {}),
            extra={k: v for k, v in data.items() if k not in own},
            schema_version=version,
            skipped_items=_count(data.get("skipped_items")),
            skipped_videos=[str(p) for p in data.get("skipped_videos") or []]
            if isinstance(data.get("skipped_videos"), list)
            else [],
            skipped_videos_total=_count(data.get("skipped_videos_total")),
            **_provenance(data),
        )


def _count(value: Any) -> int:
    """A non-negative int field of a record; anything else (absent, null, malformed) reads as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def flat_metrics(records: list[BenchmarkResult] | list[dict[str, Any]]) -> dict[str, float]:
    """``{"<benchmark>.<metric>": value}`` over benchmark results or their dicts (the names MLflow uses)."""
    out: dict[str, float] = {}
    for record in records:
        if isinstance(record, dict):
            record = BenchmarkResult.from_dict(record)
        for name, value in record.metrics.items():
            number = _number(value)  # NaN is written as null and never logged
            if number is not None:
                out[f"{record.benchmark}.{name}"] = number
    return out


def train_metrics(train: Mapping[str, Any] | None) -> dict[str, float]:
    """``train.final_loss`` etc. from a training summary (usable as a search objective)."""
    out = {}
    for key in TRAIN_SUMMARY_KEYS:
        value = (train or {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"train.{key}"] = float(value)
    return out


# ----------------------------------------------------------------------------------------- run result
@dataclass
class RunResult:
    """One sweep run's ``result.json``: what ran, how training went, every benchmark's result."""

    run_id: str | None = None
    complete: bool = False  # written once training and every requested benchmark are done
    sweep: str | None = None
    table: str | None = None
    label: str | None = None  # the sweep row (MLflow tag bench.row)
    scale: str | None = None
    noop: bool = False
    config: dict[str, Any] = field(default_factory=dict)  # the resolved run configuration
    params: dict[str, Any] = field(default_factory=dict)  # the row's own parameters
    train: dict[str, Any] | None = None  # TRAIN_KEYS of the training summary; None without training
    records: list[BenchmarkResult] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # flat_metrics + train_metrics
    git_commit: str | None = None
    job_id: str | None = None
    host: str | None = None
    wall_time_s: float | None = None
    finished_at: float | None = None
    mlflow_run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION[RUN_KIND]
    # provenance (PROVENANCE_KEYS); ``create`` takes git_hash from git_commit (the commit the sweep was
    # submitted from) when given
    date: str | None = field(default_factory=utc_now)
    git_hash: str | None = field(default_factory=current_git_hash)
    henasy_bench_version: str | None = field(default_factory=package_version)

    @classmethod
    def create(
        cls, *, train_summary: Mapping[str, Any] | None, records: list[BenchmarkResult], **info: Any
    ) -> RunResult:
        """A complete result: the summary cut to ``TRAIN_KEYS`` and the flat metrics derived from both."""
        train = None if train_summary is None else {k: train_summary.get(k) for k in TRAIN_KEYS}
        metrics = {**flat_metrics(records), **train_metrics(train)}
        if info.get("git_commit") and "git_hash" not in info:
            info["git_hash"] = str(info["git_commit"])
        return cls(complete=True, train=train, records=list(records), metrics=metrics, **info)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "schema_version": SCHEMA_VERSION[RUN_KIND],
                "kind": RUN_KIND,
                "date": self.date,
                "git_hash": self.git_hash,
                "henasy_bench_version": self.henasy_bench_version,
                "complete": self.complete,
                "run_id": self.run_id,
                "sweep": self.sweep,
                "table": self.table,
                "label": self.label,
                "scale": self.scale,
                "noop": self.noop,
                "config": self.config,
                "params": self.params,
                "train": self.train,
                "records": [r.to_dict() for r in self.records],
                "metrics": self.metrics,
                "git_commit": self.git_commit,
                "job_id": self.job_id,
                "host": self.host,
                "wall_time_s": self.wall_time_s,
                "finished_at": self.finished_at,
                "mlflow_run_id": self.mlflow_run_id,
                **self.extra,
            }
        )

    @classmethod
    def from_dict(cls, data: Any, where: str = RESULT_NAME) -> RunResult:
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise BenchError(f"{where}: not a run result; expected {{'run_id', 'records': [...], ...}}")
        version = check_version(data, RUN_KIND, where)
        recs = [BenchmarkResult.from_dict(r, f"{where}: record {i}") for i, r in enumerate(data["records"])]
        own = {f.name for f in fields(cls)} | {"kind"}
        return cls(
            **{name: data.get(name) for name in _PLAIN},
            complete=data.get("complete") is True,
            noop=bool(data.get("noop", False)),
            config=dict(data.get("config") or {}),
            params=dict(data.get("params") or {}),
            records=recs,
            metrics=dict(data.get("metrics") or {}),
            extra={k: v for k, v in data.items() if k not in own},
            schema_version=version,
            **_provenance(data),
        )


# RunResult fields read as they are (the others are normalised in from_dict)
_PLAIN = {
    "run_id",
    "sweep",
    "table",
    "label",
    "scale",
    "train",
    "git_commit",
    "job_id",
    "host",
    "wall_time_s",
    "finished_at",
    "mlflow_run_id",
}

Record = RunResult | list[BenchmarkResult]


# ------------------------------------------------------------------------------------------- loading
def read_json_file(path: Path, what: str = "result record") -> Any:
    """Parsed JSON of ``path``; ``BenchError`` naming it when unreadable or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise BenchError(f"{path}: cannot read the {what} ({err.strerror})") from None
    except ValueError as err:
        raise BenchError(f"{path}: not valid JSON ({err})") from None


def parse_record(data: Any, where: str) -> Record:
    """A ``RunResult`` for a result.json's content, else the list of ``BenchmarkResult`` (one or a list)."""
    if isinstance(data, dict) and _kind_of(data) == RUN_KIND:
        return RunResult.from_dict(data, where)
    if isinstance(data, dict):
        return [BenchmarkResult.from_dict(data, where)]
    if isinstance(data, list):
        return [BenchmarkResult.from_dict(r, f"{where}: record {i}") for i, r in enumerate(data)]
    raise BenchError(f"{where}: expected a result record, a list of records or a result.json")


def load_record(path: str | Path) -> Record:
    """Read a record file (one benchmark record or a list), a ``result.json`` or a run folder.

    A run folder gives its ``result.json``, else the records of its ``eval/<benchmark>.json`` files (a run
    that has not finished). Unknown schema versions are refused naming the file (``check_version``).
    """
    path = Path(path)
    if path.is_dir():
        if (path / RESULT_NAME).is_file():
            return load_record(path / RESULT_NAME)
        files = sorted((path / EVAL_DIR).glob("*.json"))
        if not files:
            raise BenchError(f"{path}: a run directory needs {RESULT_NAME} or {EVAL_DIR}/<benchmark>.json")
        return [r for f in files for r in benchmark_results(load_record(f))]
    if not path.is_file():
        raise BenchError(f"{path}: no such result-record file or run directory")
    return parse_record(read_json_file(path), str(path))


def benchmark_results(record: Record) -> list[BenchmarkResult]:
    """The benchmark results a loaded record holds."""
    return list(record.records) if isinstance(record, RunResult) else list(record)


def write_record(path: str | Path, record: RunResult | BenchmarkResult | list[BenchmarkResult]) -> Path:
    """Write a record (or a list of benchmark records) as JSON to ``path`` atomically."""
    data = [r.to_dict() for r in record] if isinstance(record, list) else record.to_dict()
    return atomic_write_json(path, data)


# ----------------------------------------------------------------------------------- per-item outcomes
@dataclass(frozen=True)
class Stratum:
    """Where one group of per-item outcomes of a metric lives in a record's ``per_item`` (parallel lists)."""

    ids: str  # the list of item ids
    values: str  # the list of outcomes (0/1 hits, per-query AP, IoU …)
    where: tuple[str, Any] | None = None  # keep the items whose per_item[key] == value
    within: str | None = None  # a sub-mapping of per_item holding the lists (EGTEA: one per split)

    def read(self, per_item: Mapping[str, Any]) -> tuple[dict[str, float] | None, str]:
        """(``{item id: outcome}`` with NaN/None items left out, "") or (None, why the lists are unusable)."""
        table = per_item.get(self.within) if self.within is not None else per_item
        if not isinstance(table, dict):
            return None, f"per_item has no {self.within!r} section"
        ids, values = table.get(self.ids), table.get(self.values)
        if not isinstance(ids, list) or not isinstance(values, list) or len(ids) != len(values):
            return None, f"per_item lacks equally long lists {self.ids!r} and {self.values!r}"
        keep = [True] * len(ids)
        if self.where is not None:
            key, wanted = self.where
            column = table.get(key)
            if not isinstance(column, list) or len(column) != len(ids):
                return None, f"per_item lacks the list {key!r} that selects the items"
            keep = [v == wanted for v in column]
        out = {str(i): v for i, v, k in zip(ids, (_number(v) for v in values), keep) if k and v is not None}
        return out, ""


# (per_item, metric) -> the strata whose mean of means is the metric; () when it is no mean over items.
ItemBreakdown = Callable[[Mapping[str, Any], str], tuple[Stratum, ...]]


def fixed_breakdown(strata: Mapping[str, tuple[Stratum, ...]]) -> ItemBreakdown:
    """An ``ItemBreakdown`` from a fixed ``{metric: strata}`` table."""
    table = dict(strata)
    return lambda per_item, metric: table.get(metric, ())
