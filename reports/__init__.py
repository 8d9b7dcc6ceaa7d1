"""Reports: the paper's tables beside this project's measurements, cost comparisons and plots.

``bench table`` and ``bench compare`` answer one question: *how does my run compare with the paper, and is
the difference real?* The pieces, one job each:

- ``paper_numbers`` (+ ``paper_numbers.yaml``): every number of HENASY's Tables 1–6, transcribed once;
- ``spec`` (+ ``tables/table<N>.yaml``): which MLflow runs and metrics fill each table, units, precision;
- ``collect``: MLflow runs (or a cost file for Table 5) → table cells, saying why a cell is empty;
- ``render``: cells → Markdown, LaTeX (booktabs), CSV, JSON, HTML;
- ``cost``: Table 5 measurements (parameters, FLOPs on the meta device, latency, peak memory);
- ``records`` and ``bootstrap``: per-item results of two models, paired bootstrap confidence intervals;
- ``plots``: ablation bar charts (paper beside measured) and training curves (matplotlib, Agg).

The table spec files are the registry: ``bench table`` and ``bench list tables`` read ``reports/tables/``
(``reports.spec.list_table_ids``); adding a table is adding one YAML file there (and its paper numbers).
"""

from __future__ import annotations

from pathlib import Path

REPORTS_ROOT = Path(__file__).resolve().parent
OUT_DIR = Path("reports") / "out"  # where `bench table --id all` and plots write, relative to the cwd
