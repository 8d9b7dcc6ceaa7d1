"""Result records of a model's runs, from JSON files or from MLflow, and their per-item outcomes.

A result record is what a benchmark writes (``benchmarks/``; logged by the sweep as the MLflow artifact
``results/eval/<benchmark>.json``): ``{"benchmark", "protocol", "split", "metrics", "n_items", "partial",
"model": {"id", ...}, "per_item": {...}}``. ``load_records`` accepts a record file, a JSON list of
records, a run's ``result.json`` (``{"records": [...]}``) or a run directory (its ``result.json``, else its
``eval/*.json``). ``records_from_mlflow`` takes, per benchmark, the latest FINISHED run of a model (MLflow
tag ``bench.model``) or the given MLflow run id.

``per_item`` layouts understood (item ids are compared as strings):

- ``{"<metric>": {"<item id>": value, ...}, ...}``  per metric, keyed by item id;
- ``{"ids": [...], "<metric>": [value, ...], ...}``  parallel lists;
- ``{"<item id>": {"<metric>": value, ...}, ...}``  per item;
- ``[{"id": ..., "<metric>": value, ...}, ...]``      a list of items.

The mean of a metric's per-item values must reproduce the record's metric (up to a factor 100 between
fractions and percentages); when it does not, the comparison says so instead of reporting an interval.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from henasy.errors import BenchError

ID_KEYS = ("ids", "item_ids", "id")
RUN_ID_LENGTH = 32  # MLflow run ids are 32 hex digits


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise BenchError(f"{path}: cannot read the result records ({err.strerror})") from None
    except ValueError as err:
        raise BenchError(f"{path}: not valid JSON ({err})") from None


def _as_records(data: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise BenchError(f"{where}: expected a result record, a list of records or a result.json")
    for i, record in enumerate(data):
        if not isinstance(record, dict) or not isinstance(record.get("benchmark"), str):
            raise BenchError(f"{where}: record {i} has no 'benchmark' name; expected {{'benchmark', 'metrics', ...}}")
        if not isinstance(record.get("metrics"), dict):
            raise BenchError(f"{where}: record {i} ({record['benchmark']}) has no 'metrics' mapping")
    return data


def load_records(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{benchmark: record}`` from a record file, a list, a ``result.json`` or a run directory (last wins)."""
    path = Path(path)
    if path.is_dir():
        if (path / "result.json").is_file():
            records = _as_records(_read(path / "result.json"), str(path / "result.json"))
        else:
            files = sorted((path / "eval").glob("*.json"))
            if not files:
                raise BenchError(f"{path}: a run directory needs result.json or eval/<benchmark>.json")
            records = [r for f in files for r in _as_records(_read(f), str(f))]
    elif path.is_file():
        records = _as_records(_read(path), str(path))
    else:
        raise BenchError(f"{path}: no such result-record file or run directory")
    return {r["benchmark"]: r for r in records}


def records_from_mlflow(mlc: Any, who: str, sweep: str | None = None) -> dict[str, tuple[dict[str, Any], str]]:
    """``{benchmark: (record, mlflow run id)}`` for a model name (latest finished run per benchmark) or a run id.

    The record is the run's ``results/eval/<benchmark>.json`` artifact when present, else one rebuilt from
    the run's ``<benchmark>.<metric>`` metrics (without per-item values).
    """
    from reports.collect import FINISHED, RunInfo, eval_records, search_runs

    runs: list[RunInfo]
    if len(who) == RUN_ID_LENGTH and all(c in "0123456789abcdef" for c in who):
        run = mlc.get_run(who)
        runs = [
            RunInfo(who, run.info.status, int(run.info.start_time or 0), run.info.end_time, dict(run.data.tags),
                    dict(run.data.metrics), dict(run.data.params))
        ]
    else:
        runs = search_runs(mlc, model=who, sweep=sweep) if sweep else search_runs(mlc, model=who)
    finished = sorted(
        (r for r in runs if r.status == FINISHED), key=lambda r: (r.end_time or r.start_time), reverse=True
    )
    out: dict[str, tuple[dict[str, Any], str]] = {}
    for run in finished:
        benchmarks = {k.split(".", 1)[0] for k in run.metrics if "." in k}
        benchmarks -= {"train", "epoch", "summary"}
        for benchmark in sorted(benchmarks - set(out)):
            recs = [r for r in eval_records(mlc, run.run_id, benchmark) or [] if r.get("benchmark") == benchmark]
            if recs:
                record = recs[-1]
            else:
                prefix = f"{benchmark}."
                metrics = {k[len(prefix) :]: v for k, v in run.metrics.items() if k.startswith(prefix)}
                record = {"benchmark": benchmark, "metrics": metrics}
            record.setdefault("model", {}).setdefault("id", run.model)
            out[benchmark] = (record, run.run_id)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def per_item_values(record: dict[str, Any], metric: str) -> tuple[dict[str, float] | None, str]:
    """(``{item id: value}`` of ``metric``, "") or (None, why there are none). NaN/None items are left out."""
    items = record.get("per_item")
    if not items:
        return None, "the record has no per_item outcomes"
    raw: dict[str, Any] | None = None
    if isinstance(items, dict):
        column = items.get(metric)
        if isinstance(column, dict):
            raw = {str(k): v for k, v in column.items()}
        elif isinstance(column, list):
            ids = next((items[k] for k in ID_KEYS if isinstance(items.get(k), list)), None)
            if ids is None or len(ids) != len(column):
                return None, f"per_item[{metric!r}] is a list without an equally long 'ids' list"
            raw = {str(k): v for k, v in zip(ids, column)}
        elif all(isinstance(v, dict) for v in items.values()):
            raw = {str(k): v[metric] for k, v in items.items() if metric in v}
    elif isinstance(items, list) and all(isinstance(v, dict) for v in items):
        key = next((k for k in ("id", "item_id", "uid") if all(k in v for v in items)), None)
        if key is None:
            return None, "per_item is a list whose entries have no common 'id' key"
        raw = {str(v[key]): v[metric] for v in items if metric in v}
    if not raw:
        keys = sorted(items)[:8] if isinstance(items, dict) else []
        return None, f"per_item has no values for {metric!r}" + (f" (keys: {', '.join(map(str, keys))})" if keys else "")
    values = {k: v for k, v in ((k, _number(v)) for k, v in raw.items()) if v is not None}
    if not values:
        return None, f"per_item values of {metric!r} are all missing or NaN"
    return values, ""


def item_scale(values: dict[str, float], metric_value: Any) -> float | None:
    """Factor f with f × mean(per-item values) = the record's metric (1, 100 or 0.01), None if none fits."""
    target = _number(metric_value)
    if target is None:
        return 1.0
    mean = sum(values.values()) / len(values)
    for factor in (1.0, 100.0, 0.01):
        if math.isclose(mean * factor, target, rel_tol=1e-6, abs_tol=1e-9):
            return factor
    return None
