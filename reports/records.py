"""Result records of a model's runs, from record files or from MLflow, and their per-item outcomes.

Records are read through ``henasy.core.records`` (the one schema and loader): ``load_records`` takes whatever
``henasy.core.records.load_record`` reads (a benchmark record file or list, a run's ``result.json``, a run
folder) and refuses records of an unknown schema version. ``records_from_mlflow`` takes, per benchmark,
the latest FINISHED run of a model (MLflow tag ``henasy.core.records.TAG_MODEL``) or the given MLflow run id.

Per-item outcomes: each registered benchmark declares how its metrics decompose into the parallel lists of
its ``per_item`` (``Benchmark.breakdown`` in ``benchmarks/<name>.py``; a metric averaging two item sets,
like EK100-MIR ``mAP_avg``, has two strata). Records of other benchmarks may key ``per_item`` by metric
name (item ids compared as strings):

- ``{"<metric>": {"<item id>": value, ...}, ...}``  per metric, keyed by item id;
- ``{"ids": [...], "<metric>": [value, ...], ...}``  parallel lists;
- ``{"<item id>": {"<metric>": value, ...}, ...}``  per item;
- ``[{"id": ..., "<metric>": value, ...}, ...]``      a list of items.

The mean of a metric's per-item values must reproduce the record's metric (up to a factor 100 between
0/1 outcomes or fractions and percentages); when it does not, the comparison says so instead of
reporting an interval.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from henasy.core.errors import BenchError
from henasy.core.records import ItemBreakdown, benchmark_results, load_record

ID_KEYS = ("ids", "item_ids", "id")
RUN_ID_LENGTH = 32  # MLflow run ids are 32 hex digits


def load_records(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{benchmark: record}`` from a record file, a list, a ``result.json`` or a run directory (last wins)."""
    return {r.benchmark: r.to_dict() for r in benchmark_results(load_record(path))}


def record_model(record: dict[str, Any]) -> str | None:
    """The registered model a record was measured with (``model.id``, benchmarks/record.py), if stated."""
    model = record.get("model")
    found = model.get("id") if isinstance(model, dict) else model
    return found if isinstance(found, str) and found else None


def check_records_model(records: dict[str, dict[str, Any]], name: str, where: str, side: str) -> None:
    """Refuse records that state another model than ``name`` (records stating none are taken as given)."""
    for benchmark, record in sorted(records.items()):
        held = record_model(record)
        if held is not None and held != name:
            raise BenchError(
                f"{where}: its {benchmark} record is of model {held!r}, but it was given for {side} = "
                f"{name!r}; pass records of {name!r}, or name {held!r} as model {side}"
            )


def records_from_mlflow(
    mlc: Any, who: str, sweep: str | None = None
) -> dict[str, tuple[dict[str, Any], str]]:
    """``{benchmark: (record, mlflow run id)}`` for a model name (latest finished run per benchmark) or a run id.

    The record is the run's ``results/eval/<benchmark>.json`` artifact when present, else one rebuilt from
    the run's ``<benchmark>.<metric>`` metrics (without per-item values).
    """
    from reports.collect import FINISHED, RunInfo, eval_records, search_runs

    runs: list[RunInfo]
    if len(who) == RUN_ID_LENGTH and all(c in "0123456789abcdef" for c in who):
        run = mlc.get_run(who)
        runs = [
            RunInfo(
                who,
                run.info.status,
                int(run.info.start_time or 0),
                run.info.end_time,
                dict(run.data.tags),
                dict(run.data.metrics),
                dict(run.data.params),
            )
        ]
    else:
        runs = search_runs(mlc, model=who, sweep=sweep)  # a None sweep is no condition
    finished = sorted(
        (r for r in runs if r.status == FINISHED), key=lambda r: r.end_time or r.start_time, reverse=True
    )
    out: dict[str, tuple[dict[str, Any], str]] = {}
    for run in finished:
        benchmarks = {k.split(".", 1)[0] for k in run.metrics if "." in k}
        benchmarks -= {"train", "epoch", "summary"}
        for benchmark in sorted(benchmarks - set(out)):
            recs = [
                r for r in eval_records(mlc, run.run_id, benchmark) or [] if r.get("benchmark") == benchmark
            ]
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


def declared_breakdown(benchmark: Any) -> ItemBreakdown | None:
    """The per-item breakdown the registered benchmark ``benchmark`` declares (None: unregistered or none)."""
    from henasy.core.catalog import BENCHMARKS

    if not isinstance(benchmark, str) or benchmark not in BENCHMARKS:
        return None
    return getattr(BENCHMARKS.get(benchmark), "breakdown", None)


def item_outcomes(record: dict[str, Any], metric: str) -> tuple[list[dict[str, float]] | None, str]:
    """Per-item outcomes of ``metric`` as strata of ``{item id: value}`` (NaN items left out), or why none.

    Registered benchmarks answer through their declared breakdown (``declared_breakdown``); any other
    record may hold ``per_item`` keyed by metric name in one of the generic layouts (module docstring).
    """
    per_item = record.get("per_item")
    if not per_item:
        return None, "the record has no per_item outcomes"
    benchmark = record.get("benchmark")
    breakdown = declared_breakdown(benchmark) if isinstance(per_item, dict) else None
    if breakdown is not None:
        strata = breakdown(per_item, metric)
        if not strata:
            return None, f"{metric} is not a mean over {benchmark} items (no per-item outcome for it)"
        out = []
        for stratum in strata:
            values, why = stratum.read(per_item)
            if values is None:
                return None, why
            if not values:
                return None, f"no per-item outcome of {metric} is a number"
            out.append(values)
        return out, ""
    values, why = per_item_values(record, metric)
    return (None, why) if values is None else ([values], "")


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
        return None, f"per_item has no values for {metric!r}" + (
            f" (keys: {', '.join(map(str, keys))})" if keys else ""
        )
    values = {k: v for k, v in ((k, _number(v)) for k, v in raw.items()) if v is not None}
    if not values:
        return None, f"per_item values of {metric!r} are all missing or NaN"
    return values, ""


def item_scales(strata: list[dict[str, float]], metric_value: Any) -> list[float]:
    """Factors f (of 1, 100, 0.01) with f × (mean over strata of the per-item means) = the record's metric.

    Empty when none fits: then the metric is not that mean and no interval is reported for it. A mean of 0
    fits every factor (the other model's record decides).
    """
    target = _number(metric_value)
    if target is None:
        return [1.0]
    mean = sum(sum(v.values()) / len(v) for v in strata) / len(strata)
    return [f for f in (1.0, 100.0, 0.01) if math.isclose(mean * f, target, rel_tol=1e-6, abs_tol=1e-9)]
