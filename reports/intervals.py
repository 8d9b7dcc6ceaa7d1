"""95 % confidence intervals for the measured cells of a table, and each row's difference from a reference row.

A measured cell that is a mean over benchmark items (EgoMCQ accuracy, EK100-MIR per-query AP / nDCG,
EK100-CLS top-k hits …; each benchmark declares its per-item breakdown) gets the percentile bootstrap
interval of that mean, resampling items with replacement (``reports.bootstrap``; a metric that averages
several item sets, such as EK100-MIR ``mAP_avg``, resamples each set on its own). Rows evaluated on the same
items share the resampled item sets, so the difference between two rows' resampled means is their paired
bootstrap (item difficulty cancels) — exactly what ``bench compare`` reports for two models. Each row is
compared with the table's reference row (``TableSpec.comparison_row``: the full model of an ablation, or
HENASY) and the best measured value of a column is "significant" only when its paired interval against every
other measured row excludes 0.

Intervals cover item sampling only, not training noise (seeds); the table's footnote says so. All rows of a
column are resampled together (one matrix product per chunk of resamples), so a 6-row table over three
benchmarks takes about a second at 10,000 resamples (cells over the same items share one pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from reports.bootstrap import bootstrap_row_means, percentile_interval

if TYPE_CHECKING:
    from reports.collect import TableData

CONFIDENCE = 0.95
DEFAULT_N_BOOT = 10_000


def confidence_text(confidence: float = CONFIDENCE) -> str:
    """The confidence level as tables print it: "95 %"."""
    return f"{confidence * 100:g} %"


@dataclass(frozen=True)
class IntervalInfo:
    """How the intervals of a table were computed (printed in its footnote and JSON)."""

    n_boot: int
    seed: int
    confidence: float = CONFIDENCE
    method: str = "percentile bootstrap over benchmark items, paired across rows (same resampled items)"

    def footnote(self, reference: str | None) -> str:
        level = confidence_text(self.confidence)
        text = (
            f"± = half-width of the {level} confidence interval: {self.method}, "
            f"{self.n_boot:,} resamples, seed {self.seed} (exact bounds in the JSON/CSV output); it covers "
            "item sampling only, not training noise (seeds)"
        )
        if reference:
            text += (
                f"; Δ ref = row − {reference!r} (the reference row) with its paired {level} "
                "interval in brackets; bold marks an interval that excludes 0, and a measured value "
                "significantly better than every other measured row of its column"
            )
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "confidence": self.confidence,
            "n_boot": self.n_boot,
            "seed": self.seed,
        }


@dataclass
class RowComparison:
    """One row against the reference row, per column: the difference (printed units) and its paired interval."""

    reference: str
    diff: list[float | None]
    ci: list[tuple[float, float] | None]
    notes: list[str] = field(default_factory=list)

    @property
    def significant(self) -> list[bool | None]:
        """Per column: the interval excludes 0 (None: no interval)."""
        return [None if c is None else bool(c[0] > 0 or c[1] < 0) for c in self.ci]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _joint(
    rows: list[list[dict[str, float]]], ids: list[list[str]], n_boot: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(observed (R,), resampled (n_boot, R)) of R rows over the items ``ids`` of each stratum."""
    strata = [
        np.array([[row[k][i] for i in stratum_ids] for row in rows]) for k, stratum_ids in enumerate(ids)
    ]
    return bootstrap_row_means(strata, n_boot=n_boot, seed=seed)


def annotate(table: TableData, *, n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> None:
    """Fill ``row.ci``, ``row.vs_reference`` and ``table.significant_best`` from the rows' per-item outcomes."""
    spec = table.spec
    table.intervals = IntervalInfo(n_boot, seed)
    table.significant_best = [set() for _ in spec.columns]
    ref = table.reference
    ref_row = table.rows[ref] if ref is not None and ref < len(table.rows) else None
    if ref_row is not None:
        for r, row in enumerate(table.rows):
            if r != ref and not row.spec.reference:
                row.vs_reference = RowComparison(
                    ref_row.spec.label, [None] * len(spec.columns), [None] * len(spec.columns)
                )
    # rows × columns that share their item sets are resampled in one pass (EK100-MIR mAP and nDCG, top-1
    # and top-5 …): the same resampled items for every (row, column), one matrix product per chunk
    groups: dict[tuple[tuple[str, ...], ...], list[tuple[int, int]]] = {}
    for i in range(len(spec.columns)):
        for r, row in enumerate(table.rows):
            if row.items[i] is not None:
                key = tuple(tuple(sorted(s)) for s in row.items[i])
                groups.setdefault(key, []).append((r, i))
    resampled: list[dict[int, tuple[tuple[tuple[str, ...], ...], np.ndarray]]] = [{} for _ in spec.columns]
    for key, members in groups.items():
        _, stats = _joint([table.rows[r].items[i] for r, i in members], [list(k) for k in key], n_boot, seed)
        for j, (r, i) in enumerate(members):
            resampled[i][r] = (key, stats[:, j])
            table.rows[r].ci[i] = percentile_interval(stats[:, j], CONFIDENCE)
    for i, col in enumerate(spec.columns):
        if ref_row is not None:
            _compare_with_reference(table, i, ref, resampled[i], n_boot, seed)
        table.significant_best[i] = _significant_best(table, i, col.better, resampled[i])


def _compare_with_reference(
    table: TableData,
    i: int,
    ref: int,
    resampled: dict[int, tuple[tuple[tuple[str, ...], ...], np.ndarray]],
    n_boot: int,
    seed: int,
) -> None:
    ref_row = table.rows[ref]
    ref_value = _number(ref_row.measured[i].value)
    for r, row in enumerate(table.rows):
        comparison = row.vs_reference
        if comparison is None:
            continue
        value = _number(row.measured[i].value)
        if value is None or ref_value is None:
            continue
        comparison.diff[i] = value - ref_value
        if r not in resampled or ref not in resampled:
            continue
        key, stats = resampled[r]
        ref_key, ref_stats = resampled[ref]
        if key == ref_key:
            comparison.ci[i] = percentile_interval(stats - ref_stats, CONFIDENCE)
            continue
        shared = [sorted(set(a) & set(b)) for a, b in zip(key, ref_key)]
        metric = table.spec.columns[i].metric
        if len(key) != len(ref_key) or not all(shared):
            comparison.notes.append(f"{metric}: no interval, the two rows share no items")
            continue
        observed, pair = _joint([row.items[i], ref_row.items[i]], shared, n_boot, seed)
        comparison.diff[i] = float(observed[0] - observed[1])
        comparison.ci[i] = percentile_interval(pair[:, 0] - pair[:, 1], CONFIDENCE)
        comparison.notes.append(f"{metric}: Δ and interval over the {sum(map(len, shared)):,} shared items")


def _significant_best(
    table: TableData,
    i: int,
    better: str,
    resampled: dict[int, tuple[tuple[tuple[str, ...], ...], np.ndarray]],
) -> set[int]:
    """Rows whose value is the best of column i and significantly better than every other measured row."""
    values = {r: v for r, row in enumerate(table.rows) if (v := _number(row.measured[i].value)) is not None}
    if better == "none" or len(values) < 2:
        return set()
    sign = 1.0 if better == "higher" else -1.0
    best = max(values, key=lambda r: sign * values[r])
    if best not in resampled:
        return set()
    key, best_stats = resampled[best]
    for r in values:
        if r == best:
            continue
        if r not in resampled or resampled[r][0] != key:
            return set()  # no paired interval against this row: nothing can be claimed
        low, high = percentile_interval(sign * (best_stats - resampled[r][1]), CONFIDENCE)
        if low <= 0:
            return set()
    return {best}
