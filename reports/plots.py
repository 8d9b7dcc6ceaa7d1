"""Report plots (matplotlib, Agg backend, PNG written atomically).

- ``table_bars``: one panel per table column, the paper's value beside the measured one for every row (the
  ablation tables 3 and 4 read best this way; ``bench table --id 3 --plot``);
- ``training_curves``: the ``train.loss`` history (or another step metric) of each row's MLflow run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from henasy.core.atomic import atomic_write
from henasy.core.records import METRIC_TRAIN_LOSS
from reports.collect import TableData


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out_png: str | Path) -> Path:
    plt = _pyplot()
    out = atomic_write(out_png, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return out


def table_bars(table: TableData, out_png: str | Path) -> Path | None:
    """Grouped bars (paper | measured) per row, one panel per numeric column; None when nothing is numeric."""
    columns = [
        i
        for i, _ in enumerate(table.spec.columns)
        if any(isinstance(r.paper[i], float) or isinstance(r.measured[i].value, float) for r in table.rows)
    ]
    if not columns:
        return None
    plt = _pyplot()
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    longest = max(len(r.spec.label) for r in table.rows)
    height = 2.6 + 0.06 * longest  # room for the rotated row labels
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, height * nrows), dpi=100, squeeze=False)
    labels = [r.spec.label for r in table.rows]
    width = 0.38
    for k, i in enumerate(columns):
        ax = axes[k // ncols][k % ncols]
        col = table.spec.columns[i]
        paper = [r.paper[i] if isinstance(r.paper[i], float) else math.nan for r in table.rows]
        measured = [
            float(r.measured[i].value) if isinstance(r.measured[i].value, float) else math.nan
            for r in table.rows
        ]
        xs = range(len(labels))
        ax.bar([x - width / 2 for x in xs], paper, width, label="paper", color="#9aa5b1")
        ax.bar([x + width / 2 for x in xs], measured, width, label="measured", color="#2f6db5")
        for x, value, status in zip(xs, measured, (r.measured[i].status for r in table.rows)):
            if math.isnan(value) and status not in ("reference", "paper only"):
                ax.text(
                    x + width / 2,
                    0.03,
                    status,
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color="#a33",
                    transform=ax.get_xaxis_transform(),  # x in data, y in axes fraction
                )
        finite = [v for v in paper + measured if not math.isnan(v)]
        if finite:
            low, high = min(finite), max(finite)
            pad = max(1.0, (high - low) * 0.25)
            ax.set_ylim(max(0.0, low - pad), high + pad)
        ax.set_title(col.title, fontsize=9)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    for k in range(len(columns), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", fontsize=8, ncol=2)
    fig.suptitle(f"Table {table.spec.id}: {table.spec.title}", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


def training_curves(
    mlc: Any, table: TableData, out_png: str | Path, metric: str = METRIC_TRAIN_LOSS
) -> Path | None:
    """``metric`` per step for every row with an MLflow run; None when no run has that history."""
    from sweeps.tracking import retry

    curves = []
    for row in table.rows:
        if row.run is None:
            continue
        history = retry(lambda r=row: mlc.get_metric_history(r.run.run_id, metric), what="metric history")
        points = sorted((m.step, m.value) for m in history)
        if points:
            curves.append((row.spec.label, points))
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=100)
    for label, points in curves:
        ax.plot([p[0] for p in points], [p[1] for p in points], label=label, linewidth=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(metric)
    ax.set_title(f"Table {table.spec.id}: training curves", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_png)
