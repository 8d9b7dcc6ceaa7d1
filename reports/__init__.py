"""Reports: the paper's tables beside this project's measurements, cost comparisons and plots.

``bench table`` and ``bench compare`` answer one question: *how does my run compare with the paper, and is
the difference real?* The pieces, one job each:

- ``paper_numbers`` (+ ``paper_numbers.yaml``): every number of HENASY's Tables 1–6, transcribed once;
- ``spec`` (+ ``tables/table<N>.yaml``): which MLflow runs and metrics fill each table, units, precision;
- ``collect``: MLflow runs (or a cost file for Table 5) → table cells, saying why a cell is empty;
- ``render``: cells → Markdown, LaTeX (booktabs), CSV, JSON, HTML;
- ``cost``: Table 5 measurements (parameters, FLOPs on the meta device, latency, peak memory);
- ``records`` and ``bootstrap``: per-item results of two models, paired bootstrap confidence intervals;
- ``intervals``: the 95 % interval of every measured table cell and each row's difference from the
  reference row (the same paired bootstrap, all rows of a column resampled together);
- ``plots``: ablation bar charts (paper beside measured, error bars from the intervals) and training
  curves (matplotlib, Agg; PNG and PDF).

The table spec files are the registry: ``bench table`` and ``bench list tables`` read ``reports/tables/``
(``reports.spec.list_table_ids``); adding a table is adding one YAML file there (and its paper numbers).
"""

from __future__ import annotations

from pathlib import Path

REPORTS_ROOT = Path(__file__).resolve().parent
# where `bench table --id all`, plots and `bench compare --cost` write by default: relative to the working
# directory, never inside the installed package (a wheel must not ship, nor a checkout mix in, user output)
OUT_DIR = Path("bench_reports")
