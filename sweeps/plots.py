"""Plots logged as MLflow artifacts: the training-loss curve of a run (from its ``metrics.jsonl``)."""

from __future__ import annotations

from pathlib import Path

from henasy.core.atomic import atomic_write
from henasy.training.callbacks import read_metrics


def training_curve(metrics_jsonl: str | Path, out_png: str | Path) -> Path | None:
    """Draw every ``loss*`` term per step into ``out_png`` (atomically); None when there is nothing to draw."""
    path = Path(metrics_jsonl)
    if not path.exists():
        return None
    rows = [r for r in read_metrics(path) if r.get("event") != "epoch_end"]
    keys = sorted({k for r in rows for k in r if k == "loss" or k in ("egonce", "nec", "vec", "proj")})
    if not rows or not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for key in keys:
        points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        ax.plot([p[0] for p in points], [p[1] for p in points], label=key, linewidth=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = atomic_write(out_png, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return out
