"""Plots a reviewer would accept (``reports/plots.py``, ``sweeps/plots.py``): y-axes from 0, a measured 0 that
is visible, error bars from the table's intervals, legends outside the data, one panel per quantity, titles that
say scale and data, PNG and PDF."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from reports.collect import Cell, RunInfo, TableData, _empty_row
from reports.intervals import annotate
from reports.plots import bars_figure, save_figure, table_bars, training_curves
from reports.spec import load_table_spec
from sweeps.plots import loss_figure, training_curve


def _table() -> TableData:
    """Table 3: EgoMCQ inter measured for every row from per-item outcomes; the first row scores exactly 0."""
    spec = load_table_spec("3")
    table = TableData(spec, [], paper_only=False)
    rng = np.random.default_rng(0)
    for r, row_spec in enumerate(spec.rows):
        row = _empty_row(spec, row_spec, "not run", "no run")
        values = np.zeros(50) if r == 0 else 100.0 * (rng.random(50) < 0.2 + 0.05 * r)
        row.measured[0] = Cell(float(values.mean()), "ok")
        row.items[0] = [{f"q{k}": float(v) for k, v in enumerate(values)}]
        row.run = RunInfo(f"{r:032x}", "FINISHED", 0, 1, {}, {}, {"data": "/d/synth-small-seed0"})
        row.source = {"scale": "smoke", "model": "henasy_tiny"}
        table.rows.append(row)
    table.reference = spec.comparison_row
    annotate(table, n_boot=500)
    return table


def _overlaps(a: object, b: object) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_bars_start_at_zero_show_zero_and_carry_error_bars(tmp_path: Path) -> None:
    table = _table()
    table.rows[1].measured[0] = Cell(0.0, "ok")  # a zero without an interval
    table.rows[1].ci[0] = None
    fig = bars_figure(table)
    panels = [ax for ax in fig.axes if ax.has_data()]
    assert len(panels) == 6  # one panel per column (the paper values fill the other five)
    for ax in panels:
        assert ax.get_ylim()[0] == 0  # zero-based: gaps look as large as they are
    inter = panels[0]
    zero_x = [x for ln in inter.get_lines() if set(ln.get_ydata()) == {0} for x in ln.get_xdata()]
    assert len(zero_x) == 2, "each measured 0 must be drawn (a marker at 0), not an empty slot"
    assert sum(t.get_text() == "0.0" for t in inter.texts) == 2  # and labelled with its value
    errorbars = [c for c in inter.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(errorbars) == 1
    segments = errorbars[0].lines[2][0].get_segments()  # one vertical segment per bar with an interval
    spans = sorted((round(s[0][1], 6), round(s[1][1], 6)) for s in segments)
    expected = sorted((round(r.ci[0][0], 6), round(r.ci[0][1], 6)) for r in table.rows if r.ci[0] is not None)
    assert spans == expected and len(spans) == 5  # the error bars are the table's 95 % intervals
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend_box = fig.legends[0].get_window_extent(renderer)
    assert not any(_overlaps(legend_box, ax.get_window_extent(renderer)) for ax in fig.axes)
    title = fig._suptitle.get_text()
    assert "smoke scale" in title and "synth-small-seed0" in title and "henasy_tiny" in title
    written = save_figure(fig, tmp_path / "t3_bars.png")
    assert [p.name for p in written] == ["t3_bars.png", "t3_bars.pdf"]
    assert written[0].read_bytes()[:4] == b"\x89PNG" and written[1].read_bytes()[:5] == b"%PDF-"
    assert table_bars(TableData(table.spec, [], paper_only=True), tmp_path / "none.png") == []


def test_training_curves_separate_egonce_from_the_row_sums(tmp_path: Path) -> None:
    table = _table()
    history = {
        "train.egonce": [SimpleNamespace(step=s, value=3.0 - 0.1 * s) for s in range(1, 6)],
        "train.loss": [SimpleNamespace(step=s, value=4.0 - 0.1 * s) for s in range(1, 6)],
    }
    mlc = SimpleNamespace(get_metric_history=lambda run_id, metric: history.get(metric, []))
    written = training_curves(mlc, table, tmp_path / "t3_training.png")
    assert [p.suffix for p in written] == [".png", ".pdf"]


def test_run_plot_draws_each_loss_on_its_own_panel(tmp_path: Path) -> None:
    rows = [{"step": s, "loss": 3.0 - 0.1 * s, "egonce": 3.0 - 0.1 * s} for s in range(1, 9)]
    fig = loss_figure(rows, title="losses of run x")
    assert fig._suptitle.get_text() == "losses of run x (8 logged steps)"
    panels = [ax for ax in fig.axes if ax.has_data()]
    assert [len(ax.get_lines()) for ax in panels] == [1, 1]  # loss and egonce never share an axis
    assert "= L_ego here" in panels[0].get_title() and "Eq. 10" in panels[0].get_title()
    assert "Eq. 1" in panels[1].get_title()
    rows = [{**r, "nec": 1.0, "proj": 0.5} for r in rows] + [{"event": "epoch_end", "step": 8, "loss": 9.0}]
    fig = loss_figure(rows)
    titles = [ax.get_title() for ax in fig.axes if ax.has_data()]
    assert len(titles) == 4 and "= L_ego here" not in titles[0]
    assert all(
        max(ax.get_lines()[0].get_ydata()) < 9 for ax in fig.axes if ax.has_data()
    )  # epoch rows left out
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.parent.mkdir()
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = training_curve(metrics, tmp_path / "run" / "plots" / "training_loss.png")
    assert out is not None and out.read_bytes()[:4] == b"\x89PNG"
    assert out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    assert training_curve(tmp_path / "missing.jsonl", tmp_path / "x.png") is None
