"""Report plots (matplotlib, Agg backend), each written atomically as PNG and PDF.

- ``table_bars``: one panel per table column (one comparable quantity each), the paper's value beside the
  measured one for every row, measured bars with their 95 % bootstrap interval as error bars
  (``reports.intervals``), y-axes from 0, a measured 0 drawn as a marker with its value (never an empty
  slot), a cell without a value labelled with its status, the legend outside the panels and a title that
  says the scale, model and data of the measured runs (``bench table --id 3 --plot``);
- ``training_curves``: per row's MLflow run, the EgoNCE term ``train.egonce`` (L_ego, Eq. 1: optimised by every
  row, so comparable across rows) and the total ``train.loss`` (Eq. 10: each row sums different terms,
  so its panel says it is not comparable), each on its own panel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from henasy.core.atomic import atomic_write
from henasy.core.records import METRIC_TRAIN_LOSS
from reports.collect import TableData
from reports.intervals import confidence_text

PAPER_COLOR = "#9aa5b1"
MEASURED_COLOR = "#2f6db5"
FORMATS = ("png", "pdf")
EGONCE_METRIC = "train.egonce"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out_png: str | Path) -> list[Path]:
    """Write ``fig`` as ``out_png`` and the same name with ``.pdf`` (atomically); returns both paths."""
    plt = _pyplot()
    out_png = Path(out_png)
    written = []
    for fmt in FORMATS:
        path = out_png.with_suffix(f".{fmt}")
        written.append(atomic_write(path, lambda f, fmt=fmt: fig.savefig(f, format=fmt, bbox_inches="tight")))
    plt.close(fig)
    return written


def _legend_entries(axes: Iterable[Any]) -> tuple[list[Any], list[str]]:
    """(handles, labels) of the legend entries of ``axes``, each label once (the first axes' handle)."""
    handles: list[Any] = []
    names: list[str] = []
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            if name not in names:
                handles.append(handle)
                names.append(name)
    return handles, names


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def describe_measurements(table: TableData) -> str:
    """ "smoke scale, henasy_tiny on data synth-small-seed0" for the rows' runs (or why nothing is measured)."""
    runs = [
        r
        for r in table.rows
        if r.run is not None and r.measured and any(c.status == "ok" for c in r.measured)
    ]
    if table.paper_only or not runs:
        return "paper values only (nothing measured)"
    scales = sorted({r.source.get("scale") or "?" for r in runs})
    models = sorted({r.source.get("model") or "?" for r in runs})
    data = sorted({d for r in runs if (d := data_name(r.run.params))})
    text = f"{'/'.join(scales)} scale, {', '.join(models)}"
    if data:
        text += f" on {', '.join(data)}"
    if "smoke" in scales:
        text += " (pipeline check, not comparable with the paper)"
    return text


def data_name(params: dict[str, str]) -> str:
    """The dataset a run read, from its MLflow params (the folder name of its data root), '' when unknown."""
    for key in ("data", "data.root", "data_root", "data.path"):
        value = params.get(key)
        if value and value not in ("None", "null"):
            return Path(value).name or value
    return ""


def table_bars(table: TableData, out_png: str | Path) -> list[Path]:
    """``bars_figure`` written as PNG and PDF; [] when no column is numeric."""
    fig = bars_figure(table)
    return [] if fig is None else save_figure(fig, out_png)


def bars_figure(table: TableData) -> Any:
    """Bars (paper | measured ± 95 % CI) per row, one panel per numeric column; None when nothing is numeric."""
    columns = [
        i
        for i, _ in enumerate(table.spec.columns)
        if any(
            not math.isnan(_number(r.paper[i])) or not math.isnan(_number(r.measured[i].value))
            for r in table.rows
        )
    ]
    if not columns:
        return None
    plt = _pyplot()
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    longest = max(len(r.spec.label) for r in table.rows)
    height = 2.8 + 0.06 * longest  # room for the rotated row labels
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.4 * ncols, height * nrows), dpi=120, squeeze=False, layout="constrained"
    )
    labels = [r.spec.label for r in table.rows]
    width = 0.38
    xs = list(range(len(labels)))
    for k, i in enumerate(columns):
        ax = axes[k // ncols][k % ncols]
        col = table.spec.columns[i]
        paper = [_number(r.paper[i]) for r in table.rows]
        measured = [_number(r.measured[i].value) for r in table.rows]
        low = [m - r.ci[i][0] if r.ci[i] is not None else math.nan for m, r in zip(measured, table.rows)]
        high = [r.ci[i][1] - m if r.ci[i] is not None else math.nan for m, r in zip(measured, table.rows)]
        ax.bar([x - width / 2 for x in xs], paper, width, label="paper", color=PAPER_COLOR)
        ax.bar([x + width / 2 for x in xs], measured, width, label="measured", color=MEASURED_COLOR)
        has_ci = [j for j in xs if not math.isnan(low[j])]
        if has_ci:
            ax.errorbar(
                [xs[j] + width / 2 for j in has_ci],
                [measured[j] for j in has_ci],
                yerr=[[max(0.0, low[j]) for j in has_ci], [max(0.0, high[j]) for j in has_ci]],
                fmt="none",
                ecolor="black",
                elinewidth=1,
                capsize=3,
                label=f"{confidence_text()} CI (bootstrap over items)",
            )
        top = max(
            [v for v in paper + measured if not math.isnan(v)]
            + [h + m for h, m in zip(high, measured) if not math.isnan(h)]
            + [0.0]
        )
        top = top * 1.18 if top > 0 else 1.0
        for x, value, above, row in zip(xs, measured, high, table.rows):
            status = row.measured[i].status
            if math.isnan(value):
                if status not in ("reference", "paper only"):
                    ax.text(
                        x + width / 2,
                        0.02,
                        status,
                        rotation=90,
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        color="#a33",
                        transform=ax.get_xaxis_transform(),  # x in data, y in axes fraction
                    )
                continue
            tip = value + (0.0 if math.isnan(above) else above) + top * 0.01
            ax.text(x + width / 2, tip, f"{value:.{col.precision}f}", ha="center", va="bottom", fontsize=6)
        for offset, values, color in (
            (-width / 2, paper, PAPER_COLOR),
            (width / 2, measured, MEASURED_COLOR),
        ):
            zeros = [x + offset for x, v in zip(xs, values) if v == 0]
            if zeros:  # a zero-height bar is invisible: a marker at 0 so it does not read as a missing run
                ax.plot(
                    zeros, [0] * len(zeros), ls="none", marker="_", ms=14, mew=3, color=color, clip_on=False
                )
        ax.set_ylim(0, top)
        unit = "%" if col.unit in ("percent", "fraction") else ""
        ax.set_ylabel(f"{col.title} {'(' + unit + ')' if unit else ''}".strip(), fontsize=8)
        ax.set_title(
            col.title + (" ↑" if col.better == "higher" else " ↓" if col.better == "lower" else ""),
            fontsize=9,
        )
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    for k in range(len(columns), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    handles, names = _legend_entries(axes.flat)
    fig.legend(handles, names, loc="outside lower center", fontsize=8, ncol=len(names), frameon=False)
    fig.suptitle(
        f"Table {table.spec.id}: {table.spec.title}\nmeasured: {describe_measurements(table)}; "
        "paper: the published values (full scale, real data)",
        fontsize=9,
    )
    return fig


def _history(mlc: Any, run_id: str, metric: str) -> list[tuple[int, float]]:
    from sweeps.tracking import retry

    history = retry(lambda: mlc.get_metric_history(run_id, metric), what="metric history")
    return sorted((m.step, m.value) for m in history)


def training_curves(
    mlc: Any, table: TableData, out_png: str | Path, metric: str = METRIC_TRAIN_LOSS
) -> list[Path]:
    """The rows' ``train.egonce`` and ``metric`` per step, one panel each; [] when no run has a history."""
    panels = []
    for name, title in (
        (EGONCE_METRIC, "L_ego (EgoNCE, Eq. 1): the term every row optimises — comparable across rows"),
        (
            metric,
            f"{metric}: the sum each row optimises (Eq. 10 over its own terms) — not comparable across rows",
        ),
    ):
        curves = [
            (row.spec.label, f"C{r % 10}", points)  # one colour per row, the same on every panel
            for r, row in enumerate(table.rows)
            if row.run is not None and (points := _history(mlc, row.run.run_id, name))
        ]
        if curves:
            panels.append((name, title, curves))
    if not panels:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels) + 2.6, 3.8), dpi=120, squeeze=False, layout="constrained"
    )
    for ax, (name, title, curves) in zip(axes[0], panels):
        for label, color, points in curves:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label, color=color, linewidth=1.2)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.set_ylabel(f"{name} (training loss)", fontsize=8)
        ax.set_title(title, fontsize=8, wrap=True)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles, names = _legend_entries(axes[0])
    fig.legend(handles, names, loc="outside right center", fontsize=7, title="row", title_fontsize=8)
    fig.suptitle(f"Table {table.spec.id}: training curves — {describe_measurements(table)}", fontsize=9)
    return save_figure(fig, out_png)
