"""MLflow runs (or a cost file, for Table 5) → the cells of a paper table, each saying why it is empty.

Run selection follows what the sweep writes (``sweeps/job.py``, ``sweeps/tracking.py``): one MLflow run per
sweep row, tagged ``bench.sweep``, ``bench.table``, ``bench.row`` (the row label), ``bench.run_id``,
``bench.scale``, ``bench.model``, ``bench.git_commit`` (and ``bench.failure`` when it failed), with the
benchmark metrics logged as ``<benchmark>.<metric>`` and the per-benchmark result records as the artifacts
``results/eval/<benchmark>.json``. For a table row the candidates are the runs tagged ``bench.table = id``
(or ``bench.sweep = NAME`` with ``--sweep``) whose ``bench.row`` is the row's ``run_row``; the cell comes
from the latest FINISHED one (``paper`` scale preferred over ``synth``, then ``smoke``, unless a scale is asked for).

A cell without a value has a status: ``not run`` (no run), ``running``, ``failed`` (only failed/killed
runs), ``partial`` (evaluated on a subset: ``eval.limit`` or a record marked partial; tables refuse
those), ``no metric``, ``nan``, ``unit mismatch``,
``not measured`` (Table 5 without a cost entry) or ``reference`` (a row the project does not run).
Each measured cell also keeps the run's per-item outcomes of its metric (``cell_items``: the benchmark's declared
breakdown of the ``results/eval`` record, in printed units), from which ``reports.intervals`` computes its 95 %
interval and each row's difference from the reference row.
Values are converted to the printed unit here (``ColumnSpec.scale``: fractions ×100); a value whose record
states other units (``protocol.units``) than its column, or a "fraction" above 1, is refused (``unit
mismatch``) rather than printed 100 times too small or too large.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from henasy.core.errors import BenchError
from henasy.core.records import (
    ARTIFACT_EVAL_FILE,
    BENCHMARK_KIND,
    PARAM_EVAL_LIMIT,
    TAG_FAILURE,
    TAG_GIT_COMMIT,
    TAG_MODEL,
    TAG_PREFIX,
    TAG_ROW,
    TAG_SCALE,
    check_version,
)
from reports import OUT_DIR
from reports.intervals import DEFAULT_N_BOOT, annotate
from reports.paper_numbers import PaperValue
from reports.records import item_outcomes, item_scales
from reports.spec import RowSpec, TableSpec

FINISHED = "FINISHED"
ACTIVE = ("RUNNING", "SCHEDULED")
# without --scale, a paper-scale run wins over the longer synthetic study, which wins over a smoke run
SCALE_PREFERENCE = ("paper", "synth", "smoke")
DEFAULT_COST_FILE = OUT_DIR / "cost.json"


@dataclass
class Cell:
    """One measured cell in printed units; ``value`` is None unless ``status == "ok"``."""

    value: float | bool | None
    status: str
    reason: str = ""


@dataclass
class RunInfo:
    """The parts of an MLflow run that tables and comparisons read."""

    run_id: str
    status: str
    start_time: int
    end_time: int | None
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, str]

    @property
    def row(self) -> str:
        return self.tags.get(TAG_ROW, "")

    @property
    def scale(self) -> str:
        return self.tags.get(TAG_SCALE, "")

    @property
    def model(self) -> str:
        return self.tags.get(TAG_MODEL, "")

    @property
    def short(self) -> str:
        return self.run_id[:8]


@dataclass
class RowData:
    """A table row: the paper's values beside the measured cells (both in printed units)."""

    spec: RowSpec
    paper: tuple[PaperValue, ...]
    printed: tuple[str, ...]
    measured: list[Cell]
    run: RunInfo | None = None
    source: dict[str, Any] = field(default_factory=dict)  # where the measured values come from
    # per column: per-item outcomes in printed units, one {item id: value} per stratum (None: why in item_notes)
    items: list[list[dict[str, float]] | None] = field(default_factory=list)
    item_notes: list[str] = field(default_factory=list)
    ci: list[tuple[float, float] | None] = field(default_factory=list)  # 95 % interval of each measured cell
    vs_reference: Any = None  # reports.intervals.RowComparison, for rows other than the reference row

    def diff(self, column: int) -> float | None:
        """measured − paper in printed units, where both are numbers."""
        m, p = self.measured[column].value, self.paper[column]
        if isinstance(m, bool) or isinstance(p, bool) or m is None or p is None:
            return None
        return float(m) - float(p)


@dataclass
class TableData:
    """A filled table: the spec, its rows and notes on where the measured values came from."""

    spec: TableSpec
    rows: list[RowData]
    paper_only: bool
    notes: list[str] = field(default_factory=list)
    reference: int | None = None  # index of the row the others are compared with (TableSpec.comparison_row)
    intervals: Any = None  # reports.intervals.IntervalInfo once intervals were computed
    significant_best: list[set[int]] = field(default_factory=list)  # per column: rows better than all others


# ------------------------------------------------------------------------------------------------ MLflow
def open_store(uri: str | None) -> tuple[Any, str]:
    """(MlflowClient or None, resolved URI); None when a SQLite store does not exist (it is never created).

    A store that exists but cannot be used (corrupt file, server not answering) raises ``TrackingStoreError``
    naming it (``sweeps.tracking.client``).
    """
    from sweeps.tracking import client, resolve_tracking_uri, sqlite_path

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars per artifact read
    resolved = resolve_tracking_uri(uri)
    db = sqlite_path(resolved)
    if db is not None and not db.is_file():
        return None, resolved
    if db is None and "://" not in resolved and not Path(resolved).exists():
        return None, resolved
    return client(resolved), resolved


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def search_runs(mlc: Any, **tags: str | None) -> list[RunInfo]:
    """Every active run (all experiments) whose ``bench.<key>`` tags (``TAG_PREFIX``) equal the values given
    (None: any)."""
    from sweeps.tracking import retry

    experiments = retry(lambda: mlc.search_experiments(max_results=1000), what="list MLflow experiments")
    ids = [e.experiment_id for e in experiments]
    if not ids:
        return []
    filter_string = " and ".join(
        f"tags.`{TAG_PREFIX}{k}` = {_quote(v)}" for k, v in tags.items() if v is not None
    )
    out: list[RunInfo] = []
    token = None
    while True:
        page = retry(
            lambda t=token: mlc.search_runs(ids, filter_string, max_results=1000, page_token=t),
            what="search MLflow runs",
        )
        for run in page:
            out.append(
                RunInfo(
                    run_id=run.info.run_id,
                    status=run.info.status,
                    start_time=int(run.info.start_time or 0),
                    end_time=run.info.end_time,
                    tags=dict(run.data.tags),
                    metrics=dict(run.data.metrics),
                    params=dict(run.data.params),
                )
            )
        token = page.token
        if not token:
            return out


def _newest(runs: list[RunInfo]) -> RunInfo:
    return max(runs, key=lambda r: (r.end_time or r.start_time, r.start_time))


def pick_run(runs: list[RunInfo], scale: str | None = None) -> tuple[RunInfo | None, str, str]:
    """(run, status, reason) for one row's candidate runs: the latest FINISHED one, or why there is none."""
    if scale is not None:
        runs = [r for r in runs if r.scale == scale]
    finished = [r for r in runs if r.status == FINISHED]
    if finished:
        if scale is None:
            for preferred in SCALE_PREFERENCE:
                at_scale = [r for r in finished if r.scale == preferred]
                if at_scale:
                    return _newest(at_scale), "ok", ""
        return _newest(finished), "ok", ""
    active = [r for r in runs if r.status in ACTIVE]
    if active:
        run = _newest(active)
        return run, "running", f"run {run.short} is {run.status.lower()}, no finished run yet"
    if runs:
        run = _newest(runs)
        why = run.tags.get(TAG_FAILURE) or f"status {run.status}"
        return run, "failed", f"run {run.short} failed: {why}"
    return None, "not run", ""


def eval_records(mlc: Any, run_id: str, benchmark: str) -> list[dict[str, Any]] | None:
    """The run's ``results/eval/<benchmark>.json`` artifact (a list of result records), None if absent.

    A record of a schema version this code does not read is refused (``henasy.core.records.check_version``).
    """
    where = f"MLflow run {run_id}: {ARTIFACT_EVAL_FILE.format(benchmark=benchmark)}"
    with tempfile.TemporaryDirectory(prefix="bench-artifact-") as tmp:
        try:
            local = mlc.download_artifacts(run_id, ARTIFACT_EVAL_FILE.format(benchmark=benchmark), tmp)
            data = json.loads(Path(local).read_text(encoding="utf-8"))
        except Exception:  # no such artifact, unreachable artifact store, unreadable JSON
            return None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return None
    records = [r for r in data if isinstance(r, dict)]
    for record in records:
        check_version(record, BENCHMARK_KIND, where)
    return records


def _records(
    mlc: Any, run: RunInfo, benchmark: str, cache: dict[tuple[str, str], Any]
) -> list[dict[str, Any]]:
    """The run's ``benchmark`` records (artifact read once per run and benchmark)."""
    key = (run.run_id, benchmark)
    if key not in cache:
        cache[key] = eval_records(mlc, run.run_id, benchmark)
    return [r for r in cache[key] or [] if r.get("benchmark", benchmark) == benchmark]


def partial_reason(mlc: Any, run: RunInfo, benchmark: str, cache: dict[tuple[str, str], Any]) -> str | None:
    """Why the run's ``benchmark`` result is partial (``eval.limit`` set, or a record marked partial)."""
    limit = run.params.get(PARAM_EVAL_LIMIT)
    if limit not in (None, "", "null", "None"):
        return f"evaluated on the first {limit} items only (eval.limit)"
    for record in _records(mlc, run, benchmark, cache):
        if record.get("partial"):
            n = record.get("n_items")
            return f"record marked partial{f' ({n} items)' if n is not None else ''}"
    return None


def record_unit(mlc: Any, run: RunInfo, benchmark: str, cache: dict[tuple[str, str], Any]) -> str | None:
    """``percent`` / ``fraction`` as the run's record states it (``protocol.units``), None when unstated."""
    for record in _records(mlc, run, benchmark, cache):
        units = (record.get("protocol") or {}).get("units")
        if isinstance(units, str):
            for unit in ("percent", "fraction"):
                if units.strip().lower().startswith(unit):
                    return unit
    return None


# ------------------------------------------------------------------------------------------------- cells
def measured_cell(spec: TableSpec, column: int, raw: Any, source: str = "the run") -> Cell:
    """A raw record value → a printed-unit cell (fraction ×100), refusing NaN and impossible fractions."""
    col = spec.columns[column]
    if raw is None:
        return Cell(None, "no metric", f"{source} has no metric {col.metric!r}")
    if isinstance(raw, bool):
        return Cell(raw, "ok")
    value = float(raw)
    if math.isnan(value):
        return Cell(None, "nan", f"{col.metric} is NaN in {source}")
    if col.unit == "fraction" and not -1e-9 <= value <= 1 + 1e-9:
        return Cell(
            None,
            "unit mismatch",
            f"{col.metric} = {value:g} is not a fraction; if the record is in percent, set `unit: percent` "
            f"for it in {spec.path.name}",
        )
    return Cell(value * col.scale, "ok")


def _row_from_run(
    spec: TableSpec, row: RowData, run: RunInfo, mlc: Any, cache: dict[tuple[str, str], Any]
) -> None:
    partial: dict[str, str | None] = {}
    for i, col in enumerate(spec.columns):
        benchmark = col.metric.split(".", 1)[0]
        if benchmark not in partial:
            partial[benchmark] = partial_reason(mlc, run, benchmark, cache)
        cell = measured_cell(spec, i, run.metrics.get(col.metric))
        unit = record_unit(mlc, run, benchmark, cache)
        if cell.status == "ok" and unit is not None and col.unit != "raw" and unit != col.unit:
            cell = Cell(
                None,
                "unit mismatch",
                f"the {benchmark} record states its units as {unit}, {spec.path.name} says {col.unit}; "
                "fix the column's `unit`",
            )
        if cell.status == "ok" and partial[benchmark]:
            cell = Cell(
                None, "partial", f"{partial[benchmark]}; value {cell.value:.{col.precision}f} withheld"
            )
        row.measured[i] = cell
        if cell.status == "ok" and not isinstance(cell.value, bool):
            row.items[i], row.item_notes[i] = cell_items(
                _records(mlc, run, benchmark, cache), col.metric.split(".", 1)[1], col.scale
            )


def cell_items(
    records: list[dict[str, Any]], metric: str, scale: float
) -> tuple[list[dict[str, float]] | None, str]:
    """Per-item outcomes of ``metric`` in printed units (strata of ``{item id: value}``), or why there are none.

    The benchmark's declared per-item breakdown (``reports.records.item_outcomes``) must average to the
    record's metric (``item_scales``: per-item values may be 0/1 or fractions of a percentage metric).
    """
    record = next((r for r in reversed(records) if metric in (r.get("metrics") or {})), None)
    if record is None:
        return None, "no result record with per-item outcomes (results/eval artifact missing)"
    strata, why = item_outcomes(record, metric)
    if strata is None:
        return None, why
    factors = item_scales(strata, record["metrics"][metric])
    if not factors:
        return None, f"the per-item values of {metric} do not average to the metric (not a mean over items)"
    f = factors[0] * scale
    return [{k: v * f for k, v in stratum.items()} for stratum in strata], ""


def _empty_row(spec: TableSpec, row_spec: RowSpec, status: str, reason: str = "") -> RowData:
    paper = spec.paper.row(row_spec.paper_row)
    n = len(spec.columns)
    return RowData(
        spec=row_spec,
        paper=paper.values,
        printed=paper.printed,
        measured=[Cell(None, status, reason) for _ in spec.columns],
        items=[None] * n,
        item_notes=[""] * n,
        ci=[None] * n,
    )


def collect_table(
    spec: TableSpec,
    *,
    tracking_uri: str | None = None,
    sweep: str | None = None,
    scale: str | None = None,
    paper_only: bool = False,
    cost_file: str | Path | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> TableData:
    """Fill ``spec`` from MLflow (or the cost file for a ``source: cost`` table); ``paper_only`` reads nothing.

    Measured cells of an MLflow table get their 95 % bootstrap intervals and every row its difference from
    the reference row (``reports.intervals.annotate``, ``n_boot`` resamples, ``seed``).
    """
    if paper_only:
        rows = [_empty_row(spec, r, "reference" if r.reference else "paper only") for r in spec.rows]
        return TableData(spec, rows, paper_only=True)
    if spec.source == "cost":
        return _collect_cost(spec, cost_file)
    table = TableData(spec, [], paper_only=False)
    mlc, uri = open_store(tracking_uri)
    if mlc is None:
        table.notes.append(
            f"no MLflow store at {uri}: run a sweep first (`bench sweep {spec.sweep or '...'}`) or pass "
            "--tracking-uri / set MLFLOW_TRACKING_URI"
        )
        runs: list[RunInfo] = []
    else:
        runs = search_runs(mlc, sweep=sweep) if sweep else search_runs(mlc, table=spec.id)
        which = f"bench.sweep = {sweep!r}" if sweep else f"bench.table = {spec.id!r}"
        table.notes.append(f"MLflow {uri}: {len(runs)} run(s) tagged {which}")
    cache: dict[tuple[str, str], Any] = {}
    for row_spec in spec.rows:
        if row_spec.reference:
            table.rows.append(_empty_row(spec, row_spec, "reference", "reported by the paper; not run here"))
            continue
        candidates = [r for r in runs if r.row == row_spec.run_row]
        run, status, reason = pick_run(candidates, scale)
        if status == "not run":
            where = f" at scale {scale!r}" if scale else ""
            reason = f"no MLflow run with bench.row = {row_spec.run_row!r}{where}"
        row = _empty_row(spec, row_spec, status, reason)
        row.run = run
        if run is not None:
            row.source = {
                "run_id": run.run_id,
                "status": run.status,
                "scale": run.scale,
                "model": run.model,
                "git_commit": run.tags.get(TAG_GIT_COMMIT, ""),
            }
        if status == "ok" and run is not None:
            _row_from_run(spec, row, run, mlc, cache)
        table.rows.append(row)
    scales = sorted({r.source["scale"] for r in table.rows if r.source.get("scale") and r.run})
    if "smoke" in scales or "synth" in scales:
        table.notes.append(
            "smoke- and synth-scale runs (tiny presets, synthetic data) check the pipeline and the ablations' "
            "direction on synthetic data; their values are not comparable with the paper's"
        )
    table.reference = spec.comparison_row
    annotate(table, n_boot=n_boot, seed=seed)
    return table


# ---------------------------------------------------------------------------------------------- Table 5
def load_cost_file(path: str | Path) -> list[dict[str, Any]]:
    """The per-model entries of a cost file written by ``bench compare ... --cost``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise BenchError(f"{path}: cannot read the cost file ({err.strerror})") from None
    except ValueError as err:
        raise BenchError(f"{path}: not valid JSON ({err}); rerun `bench compare ... --cost`") from None
    if not isinstance(data, list) or not all(isinstance(e, dict) and "model" in e for e in data):
        raise BenchError(f"{path}: expected a JSON list of per-model objects with a 'model' key")
    return data


def _collect_cost(spec: TableSpec, cost_file: str | Path | None) -> TableData:
    table = TableData(spec, [], paper_only=False)
    path = Path(cost_file) if cost_file is not None else DEFAULT_COST_FILE
    entries: list[dict[str, Any]] = []
    if path.is_file():
        entries = load_cost_file(path)
        table.notes.append(f"cost file {path}")
    elif cost_file is not None:
        raise BenchError(f"{path}: no such cost file")
    else:
        table.notes.append(f"no cost file at {path}: run `bench compare helpinghands henasy --cost` first")
    for row_spec in spec.rows:
        found = [e for e in entries if e.get("model") == row_spec.model]  # a GPU entry wins, then the newest
        if not found:
            reason = f"no cost entry for model {row_spec.model!r}"
            table.rows.append(_empty_row(spec, row_spec, "not measured", reason))
            continue
        entry = max(enumerate(found), key=lambda e: (str(e[1].get("device", "")).startswith("cuda"), e[0]))[1]
        row = _empty_row(spec, row_spec, "ok")
        row.source = {k: entry.get(k) for k in ("model", "device", "dtype", "torch", "memory_kind")}
        for i, col in enumerate(spec.columns):
            row.measured[i] = measured_cell(spec, i, entry.get(col.metric), "the cost entry")
            if col.metric == "autoregressive":
                row.measured[i] = _autoregressive_cell(entry, row.paper[i], table)
        table.rows.append(row)
    devices = sorted({str(r.source.get("device")) for r in table.rows if r.source})
    if any(d.startswith("cpu") for d in devices):
        table.notes.append("measured on CPU: memory figures are process RSS peaks, not GPU memory")
    return table


def _autoregressive_cell(entry: dict[str, Any], claim: PaperValue, table: TableData) -> Cell:
    """The model's declared ``autoregressive`` attribute; a note when it contradicts the paper's claim."""
    declared = entry.get("autoregressive")
    if not isinstance(declared, bool):
        return Cell(None, "not declared", f"{entry['model']} declares no `autoregressive` class attribute")
    if isinstance(claim, bool) and claim != declared:
        table.notes.append(
            f"{entry['model']}: the paper marks it {'autoregressive' if claim else 'not autoregressive'}; the model "
            f"class declares autoregressive = {declared} (see the comment on that attribute)"
        )
    return Cell(declared, "ok")
