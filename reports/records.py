"""Result records of a model's runs, from JSON files or from MLflow, and their per-item outcomes.

A result record is what a benchmark writes (``benchmarks/``; logged by the sweep as the MLflow artifact
``results/eval/<benchmark>.json``): ``{"benchmark", "protocol", "split", "metrics", "n_items", "partial",
"model": {"id", ...}, "per_item": {...}}``. ``load_records`` accepts a record file, a JSON list of
records, a run's ``result.json`` (``{"records": [...]}``) or a run directory (its ``result.json``, else its
``eval/*.json``). ``records_from_mlflow`` takes, per benchmark, the latest FINISHED run of a model (MLflow
tag ``bench.model``) or the given MLflow run id.

Per-item outcomes: the benchmarks of ``benchmarks/`` keep parallel lists in ``per_item`` (an id list and
one outcome list per quantity, e.g. EgoMCQ ``item_id`` / ``type`` / ``correct``); ``ITEM_OUTCOMES`` says
which lists make up each metric (a metric averaging two item sets, like EK100-MIR ``mAP_avg``, has two
strata). Records of other benchmarks may key ``per_item`` by metric name (item ids compared as strings):

- ``{"<metric>": {"<item id>": value, ...}, ...}``  per metric, keyed by item id;
- ``{"ids": [...], "<metric>": [value, ...], ...}``  parallel lists;
- ``{"<item id>": {"<metric>": value, ...}, ...}``  per item;
- ``[{"id": ..., "<metric>": value, ...}, ...]``      a list of items.

The mean of a metric's per-item values must reproduce the record's metric (up to a factor 100 between
0/1 outcomes or fractions and percentages); when it does not, the comparison says so instead of
reporting an interval.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
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
            raise BenchError(
                f"{where}: record {i} has no 'benchmark' name; expected {{'benchmark', 'metrics', ...}}"
            )
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


@dataclass(frozen=True)
class Stratum:
    """Where one group of per-item outcomes of a metric lives in a record's ``per_item`` (parallel lists)."""

    ids: str  # the list of item ids
    values: str  # the list of outcomes (0/1 hits, per-query AP, IoU …)
    where: tuple[str, Any] | None = None  # keep the items whose per_item[key] == value
    within: str | None = None  # a sub-mapping of per_item holding the lists (EGTEA: one per split)


# How each benchmark's metrics decompose into per-item outcomes (benchmarks/<name>.py write ``per_item``).
# A metric with several strata is the mean of the strata's means (EK100-MIR averages, EGTEA splits).
_MIR = {
    f"{m}_{d}": (Stratum("video_id" if d == "v2t" else "sentence_id", f"{'AP' if m == 'mAP' else m}_{d}"),)
    for m in ("mAP", "nDCG")
    for d in ("v2t", "t2v")
}
ITEM_OUTCOMES: dict[str, dict[str, tuple[Stratum, ...]]] = {
    "egomcq": {
        "inter": (Stratum("item_id", "correct", where=("type", 1)),),
        "intra": (Stratum("item_id", "correct", where=("type", 2)),),
    },
    "ek100_mir": {
        **_MIR,
        "mAP_avg": _MIR["mAP_v2t"] + _MIR["mAP_t2v"],
        "nDCG_avg": _MIR["nDCG_v2t"] + _MIR["nDCG_t2v"],
    },
    "ek100_cls": {
        "top1": (Stratum("narration_id", "correct_top1"),),
        "top5": (Stratum("narration_id", "correct_top5"),),
    },
    "egonlq": {
        **{f"r{k}_iou{t}": (Stratum("query_id", f"r{k}_iou{t}"),) for k in (1, 5) for t in ("0.3", "0.5")},
        "mIoU": (Stratum("query_id", "top1_iou"),),
    },
    "egomq": {f"r{k}_iou0.5": (Stratum("instance_id", f"r{k}_iou0.5"),) for k in (1, 5)},
    "grounding": {
        "mIoU": (Stratum("query_id", "iou"),),
        "mIoU_noun": (Stratum("query_id", "iou", where=("query_type", "noun")),),
        "mIoU_verb_phrase": (Stratum("query_id", "iou", where=("query_type", "verb_phrase")),),
    },
}


def _egtea_strata(per_item: dict[str, Any], metric: str) -> tuple[Stratum, ...]:
    """EGTEA keeps one per_item mapping per split; ``top1`` is the mean over splits, ``top1_<split>`` one."""
    splits = [k for k, v in per_item.items() if isinstance(v, dict)]
    if metric == "top1":
        return tuple(Stratum("clip_id", "correct", within=split) for split in splits)
    if metric.startswith("top1_") and metric[len("top1_") :] in splits:
        return (Stratum("clip_id", "correct", within=metric[len("top1_") :]),)
    return ()


def _read_stratum(per_item: dict[str, Any], stratum: Stratum) -> tuple[dict[str, float] | None, str]:
    table = per_item.get(stratum.within) if stratum.within is not None else per_item
    if not isinstance(table, dict):
        return None, f"per_item has no {stratum.within!r} section"
    ids, values = table.get(stratum.ids), table.get(stratum.values)
    if not isinstance(ids, list) or not isinstance(values, list) or len(ids) != len(values):
        return None, f"per_item lacks equally long lists {stratum.ids!r} and {stratum.values!r}"
    keep = [True] * len(ids)
    if stratum.where is not None:
        key, wanted = stratum.where
        column = table.get(key)
        if not isinstance(column, list) or len(column) != len(ids):
            return None, f"per_item lacks the list {key!r} that selects the items"
        keep = [v == wanted for v in column]
    out = {str(i): v for i, v, k in zip(ids, (_number(v) for v in values), keep) if k and v is not None}
    return out, ""


def item_outcomes(record: dict[str, Any], metric: str) -> tuple[list[dict[str, float]] | None, str]:
    """Per-item outcomes of ``metric`` as strata of ``{item id: value}`` (NaN items left out), or why none.

    Known benchmarks use ``ITEM_OUTCOMES``; any other record may hold ``per_item`` keyed by metric name in
    one of the generic layouts (module docstring).
    """
    per_item = record.get("per_item")
    if not per_item:
        return None, "the record has no per_item outcomes"
    benchmark = record.get("benchmark")
    if isinstance(per_item, dict) and (benchmark in ITEM_OUTCOMES or benchmark == "egtea"):
        strata = (
            _egtea_strata(per_item, metric)
            if benchmark == "egtea"
            else ITEM_OUTCOMES[benchmark].get(metric, ())
        )
        if not strata:
            return None, f"{metric} is not a mean over {benchmark} items (no per-item outcome for it)"
        out = []
        for stratum in strata:
            values, why = _read_stratum(per_item, stratum)
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
