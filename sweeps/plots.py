"""Plots logged as MLflow artifacts: the training losses of a run (from its ``metrics.jsonl``), PNG and PDF.

One panel per quantity, never two curves of different meaning on one axis: the total ``loss`` (paper Eq. 10,
L_ego plus the enabled terms weighted by λ1..λ3) on the first panel, then each logged term unweighted on its
own panel (``egonce`` = L_ego, Eq. 1; ``nec`` = L_NEC, Eq. 7; ``vec`` = L_VEC, Eq. 8; ``proj`` = L_proj,
Eq. 9) — with only EgoNCE enabled the total equals ``egonce``, and the two used to hide each other.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from henasy.core.atomic import atomic_write
from henasy.training.callbacks import read_metrics
from sweeps import records

TERMS = {  # logged key → panel title (paper equation)
    "loss": "total loss L (Eq. 10: L_ego + Σ λ_k L_k over the enabled terms)",
    "egonce": "L_ego — EgoNCE (Eq. 1), unweighted",
    "nec": "L_NEC — noun–entity contrastive (Eq. 7), unweighted",
    "vec": "L_VEC — verb–entities contrastive (Eq. 8), unweighted",
    "proj": "L_proj — projection (Eq. 9), unweighted",
}


def training_curve(metrics_jsonl: str | Path, out_png: str | Path) -> Path | None:
    """Draw ``loss`` and each loss term per step into ``out_png`` (and the same name ``.pdf``), atomically.

    Returns the PNG path, None when there is nothing to draw.
    """
    path = Path(metrics_jsonl)
    if not path.exists():
        return None
    fig = loss_figure(read_metrics(path), title=f"training losses of run {_run_name(path.parent)}")
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    out_png = Path(out_png)
    out = atomic_write(out_png, lambda f: fig.savefig(f, format="png"))
    atomic_write(out_png.with_suffix(".pdf"), lambda f: fig.savefig(f, format="pdf"))
    plt.close(fig)
    return out


def _run_name(run_dir: Path) -> str:
    """The run folder's name, with its sweep row label (``run.json``) when there is one."""
    data = records.read_json(run_dir / records.RUN_NAME)
    label = data.get("label") if isinstance(data, dict) else None
    return f"{run_dir.name} ({label})" if isinstance(label, str) and label else run_dir.name


def loss_figure(metrics: list[dict[str, Any]], title: str = "training losses") -> Any:
    """The figure of ``training_curve`` from ``metrics.jsonl`` rows; None when no row holds a loss."""
    rows = [r for r in metrics if r.get("event") != "epoch_end"]
    series = {}
    for key in TERMS:
        points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and "step" in r]
        if points:
            series[key] = points
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = min(3, len(series))
    nrows = math.ceil(len(series) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.3 * ncols, 3.0 * nrows), dpi=120, squeeze=False, layout="constrained"
    )
    only_egonce = set(series) <= {"loss", "egonce"}
    for k, (key, points) in enumerate(series.items()):
        ax = axes[k // ncols][k % ncols]
        ax.plot([p[0] for p in points], [p[1] for p in points], linewidth=1.2, color=f"C{k}")
        panel = TERMS[key]
        if key == "loss" and only_egonce and "egonce" in series:
            panel += "\n(= L_ego here: no other term is enabled)"
        ax.set_title(panel, fontsize=8)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.set_ylabel(key, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for k in range(len(series), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    fig.suptitle(f"{title} ({len(rows)} logged steps)", fontsize=9)
    return fig
