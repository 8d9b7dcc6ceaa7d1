"""Per-benchmark metric differences between two models, with paired bootstrap confidence intervals.

For every benchmark both models have a record for, and every metric both records hold: the values (in the
paper's printed units: fractions ×100, from the table specs' ``unit``), the difference A − B, and, when
both records carry per-item outcomes for that metric, the paired bootstrap interval of the difference over
the items both were evaluated on (paired by item id; ``reports.bootstrap``; ``reports.records`` says where
each benchmark keeps its per-item outcomes). The interval is only reported when the mean of the per-item
values reproduces each record's metric, i.e. the metric *is* a mean over items (EgoMCQ accuracy, per-query
AP/nDCG, recall hits); for other metrics (mean class accuracy, MQ mAP) it says why not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reports.bootstrap import BootstrapCI, paired_bootstrap_strata
from reports.records import item_outcomes, item_scales
from reports.spec import UNITS


@dataclass
class MetricComparison:
    """One metric of one benchmark: A, B, A − B and its interval (printed units), or why there is none."""

    benchmark: str
    metric: str
    unit: str  # the record's unit (percent / fraction / "as recorded")
    a: float | None
    b: float | None
    ci: BootstrapCI | None
    n_only_a: int = 0
    n_only_b: int = 0
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.benchmark}.{self.metric}"

    @property
    def diff(self) -> float | None:
        return None if self.a is None or self.b is None else self.a - self.b

    @property
    def verdict(self) -> str:
        if self.ci is None:
            return "n/a"
        return "yes" if self.ci.excludes_zero else "no"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def compare_metric(
    benchmark: str,
    metric: str,
    rec_a: dict[str, Any],
    rec_b: dict[str, Any],
    *,
    unit: str | None,
    n_boot: int,
    confidence: float,
    seed: int,
) -> MetricComparison:
    """Compare one metric of two records of the same benchmark."""
    factor = UNITS.get(unit or "", 1.0)
    a, b = _number(rec_a["metrics"].get(metric)), _number(rec_b["metrics"].get(metric))
    out = MetricComparison(
        benchmark,
        metric,
        unit or "as recorded",
        None if a is None else a * factor,
        None if b is None else b * factor,
        None,
    )
    if a is None or b is None:
        out.note = "missing or NaN in " + " and ".join(n for n, v in (("A", a), ("B", b)) if v is None)
        return out
    strata_a, why_a = item_outcomes(rec_a, metric)
    strata_b, why_b = item_outcomes(rec_b, metric)
    if strata_a is None or strata_b is None:
        out.note = f"no interval: {'A: ' + why_a if strata_a is None else 'B: ' + why_b}"
        return out
    scales = [f for f in item_scales(strata_a, a) if f in item_scales(strata_b, b)]
    if not scales or len(strata_a) != len(strata_b):
        out.note = "no interval: the per-item values do not average to the metric (not a mean over items)"
        return out
    scale = scales[0]  # the unit both records' per-item values share
    pairs = []
    for items_a, items_b in zip(strata_a, strata_b):
        shared = sorted(set(items_a) & set(items_b))
        out.n_only_a += len(items_a) - len(shared)
        out.n_only_b += len(items_b) - len(shared)
        if not shared:
            out.note = "no interval: the two records share no item ids"
            return out
        pairs.append(([items_a[k] * scale for k in shared], [items_b[k] * scale for k in shared]))
    ci = paired_bootstrap_strata(pairs, n_boot=n_boot, confidence=confidence, seed=seed)
    out.ci = ci.scaled(factor)
    if out.n_only_a or out.n_only_b:
        out.note = (
            f"interval over the {ci.n} shared items ({out.n_only_a} only in A, {out.n_only_b} only in B)"
        )
    return out


def compare_records(
    records_a: dict[str, dict[str, Any]],
    records_b: dict[str, dict[str, Any]],
    *,
    benchmarks: list[str] | None = None,
    units: dict[str, str] | None = None,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[MetricComparison]:
    """Every shared metric of every benchmark in both ``{benchmark: record}`` maps (or only ``benchmarks``)."""
    units = units or {}
    names = benchmarks or sorted(set(records_a) | set(records_b))
    out: list[MetricComparison] = []
    for benchmark in names:
        rec_a, rec_b = records_a.get(benchmark), records_b.get(benchmark)
        if rec_a is None or rec_b is None:
            missing = "A" if rec_a is None else "B"
            out.append(
                MetricComparison(
                    benchmark, "*", "", None, None, None, note=f"no {benchmark} record for {missing}"
                )
            )
            continue
        metrics = [m for m in rec_a["metrics"] if m in rec_b["metrics"]]
        partial = [n for n, r in (("A", rec_a), ("B", rec_b)) if r.get("partial")]
        for metric in metrics:
            result = compare_metric(
                benchmark,
                metric,
                rec_a,
                rec_b,
                unit=units.get(f"{benchmark}.{metric}"),
                n_boot=n_boot,
                confidence=confidence,
                seed=seed,
            )
            if partial:
                result.note = "; ".join(
                    filter(None, [result.note, f"partial record: {' and '.join(partial)}"])
                )
            out.append(result)
    return out
