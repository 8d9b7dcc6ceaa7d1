"""Table specs (``reports/tables/table<N>.yaml``): which runs and metrics fill each of the paper's tables.

A spec names, for one paper table, its columns (the metric ``<benchmark>.<metric>`` logged to MLflow, the
unit of that value in the result record, the printed precision, and which direction is better) and its rows
(the paper row it mirrors, the ``bench.row`` tag of the sweep row that fills it — by default the row's own
label — or ``reference: true`` for a row this project does not run). Headers and paper values come from
``reports/paper_numbers.yaml``; a spec must list exactly the paper table's columns in order and use every
paper row once.

Units (``unit``, the unit of the value in the result record): ``percent`` values are shown as they are,
``fraction`` values ×100 (the paper prints every metric of Tables 1–4 and 6 as a percentage), ``raw``
values as measured (Table 5, units in the headers). The shipped specs say ``percent`` throughout: the
benchmark records store percentages (EK100-MIR, EgoNLQ, EgoMQ as 100 × the official fractions).
``reference_row`` (optional) names the measured row every other row is compared with (``Δ ref``, with a
paired bootstrap interval; ``reports.intervals``); by default the last measured row (the full model of an
ablation, HENASY in Tables 1, 2 and 6).
Loading is strict (``henasy.core.specfile``: safe YAML with line numbers, unknown key = error): a mistake raises
``DataFormatError`` naming the file, 1-based line and key. The folder is the list of tables: adding a table
is adding one ``tableN.yaml`` here (for a paper table, its printed numbers in ``reports/paper_numbers.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from henasy.core.errors import BenchError
from henasy.core.specfile import SpecChecker, load_yaml
from reports import REPORTS_ROOT
from reports.paper_numbers import PaperTable, paper_table

SPEC_DIR = REPORTS_ROOT / "tables"
TOP_KEYS = ("id", "title", "source", "sweep", "columns", "rows", "notes", "reference_row")
COLUMN_KEYS = ("metric", "unit", "precision", "better", "header")
ROW_KEYS = ("label", "paper_row", "run_row", "model", "reference")
SOURCES = ("mlflow", "cost")
UNITS = {"percent": 1.0, "fraction": 100.0, "raw": 1.0}  # record unit → factor to the printed unit
BETTER = ("higher", "lower", "none")


@dataclass(frozen=True)
class ColumnSpec:
    """One column: the metric, its unit in the record, printed precision and the better direction."""

    metric: str
    unit: str
    precision: int
    better: str
    group: str
    header: str

    @property
    def scale(self) -> float:
        """Factor from the record's unit to the printed unit (100 for fractions)."""
        return UNITS[self.unit]

    @property
    def title(self) -> str:
        return f"{self.group} {self.header}".strip()


@dataclass(frozen=True)
class RowSpec:
    """One row: its display label, the paper row it mirrors, and how a run is selected for it."""

    label: str
    paper_row: str
    run_row: (
        str | None
    )  # the sweep row's label (MLflow tag bench.row), default ``label``; None: reference row
    model: str | None  # the paper model (registry name) the row measures
    reference: bool  # True: the paper's number only; this project does not run this model


@dataclass(frozen=True)
class TableSpec:
    """A validated table spec, joined with its paper table."""

    id: str
    title: str
    source: str
    sweep: str | None
    columns: tuple[ColumnSpec, ...]
    rows: tuple[RowSpec, ...]
    notes: tuple[str, ...]
    paper: PaperTable
    path: Path
    reference_row: str | None = None  # the row every other row is compared with (``comparison_row``)

    @property
    def metrics(self) -> list[str]:
        return [c.metric for c in self.columns]

    @property
    def comparison_row(self) -> int | None:
        """Index of the row the other rows are tested against: ``reference_row``, else the last row this
        project measures (the full model in the ablations, HENASY in Tables 1, 2, 6); None for a cost table."""
        if self.source != "mlflow":
            return None
        if self.reference_row is not None:
            return next(i for i, r in enumerate(self.rows) if r.label == self.reference_row)
        measured = [i for i, r in enumerate(self.rows) if not r.reference]
        return measured[-1] if measured else None


def _parse_columns(c: SpecChecker, node: Any, paper: PaperTable) -> tuple[ColumnSpec, ...]:
    items = c.items(node, "columns", "the table spec")
    if len(items) != len(paper.columns):
        c.fail(
            f"columns lists {len(items)} metrics but paper Table {paper.id} has {len(paper.columns)}",
            node,
            "columns",
            expected="metrics " + ", ".join(paper.keys),
        )
    out = []
    for i, item in enumerate(items):
        what = f"columns[{i}]"
        item = c.mapping(item, what, COLUMN_KEYS, parent=items.item_lines[i], required=True)
        metric = c.text(item, "metric", what, required=True)
        if metric != paper.columns[i].key:
            c.fail(
                f"{what}.metric is {metric!r} but column {i + 1} of paper Table {paper.id} is "
                f"{paper.columns[i].key!r}",
                item,
                "metric",
                expected="the paper table's columns, in order",
            )
        precision = item.get("precision")
        if isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= 6:
            c.fail(f"{what}.precision must be an integer 0..6, got {precision!r}", item, "precision")
        out.append(
            ColumnSpec(
                metric=metric,
                unit=c.choice(item, "unit", what, tuple(UNITS)),
                precision=precision,
                better=c.choice(item, "better", what, BETTER, default="higher"),
                group=paper.columns[i].group,
                header=c.text(item, "header", what) or paper.columns[i].header,
            )
        )
    return tuple(out)


def _parse_rows(c: SpecChecker, node: Any, paper: PaperTable, source: str) -> tuple[RowSpec, ...]:
    items = c.items(node, "rows", "the table spec")
    out = []
    labels = {r.label for r in paper.rows}
    for i, item in enumerate(items):
        what = f"rows[{i}]"
        item = c.mapping(item, what, ROW_KEYS, parent=items.item_lines[i], required=True)
        label = c.text(item, "label", what, required=True)
        paper_row = c.text(item, "paper_row", what) or label
        if paper_row not in labels:
            c.fail(
                f"{what}.paper_row {paper_row!r} is not a row of paper Table {paper.id}",
                item,
                "paper_row" if "paper_row" in item else "label",
                expected="one of " + ", ".join(repr(x) for x in sorted(labels)),
            )
        reference = item.get("reference", False)
        if not isinstance(reference, bool):
            c.fail(f"{what}.reference must be true or false", item, "reference")
        run_row, model = c.text(item, "run_row", what), c.text(item, "model", what)
        if reference and (run_row or model):
            c.fail(f"{what} is a reference row (paper only): it takes no run_row or model", item, "reference")
        if not reference and source == "mlflow" and not run_row:
            run_row = label  # the sweep row that fills it has the same label
        if not reference and source == "cost" and not model:
            c.fail(f"{what} needs model (the registered model whose cost fills it)", item)
        out.append(RowSpec(label, paper_row, run_row, model, reference))
    used = [r.paper_row for r in out]
    missing = [label for label in (r.label for r in paper.rows) if label not in used]
    if missing or len(set(used)) != len(used):
        c.fail(
            f"rows must use every row of paper Table {paper.id} exactly once (missing: {missing or 'none'})",
            node,
            "rows",
        )
    if len({r.label for r in out}) != len(out):
        c.fail("rows has a label twice", node, "rows")
    return tuple(out)


def parse_table_spec(data: Any, path: Path) -> TableSpec:
    """Validate parsed YAML (``henasy.core.specfile.load_yaml`` output) as a table spec."""
    c = SpecChecker(path)
    node = c.mapping(data, "the table spec", TOP_KEYS, required=True)
    table_id = node.get("id")
    if isinstance(table_id, bool) or not isinstance(table_id, (int, str)):
        c.fail("missing or bad 'id' (the paper's table number)", node, "id" if "id" in node else None)
    try:
        paper = paper_table(table_id)
    except BenchError as err:
        c.fail(str(err), node, "id")
    source = c.choice(node, "source", "the table spec", SOURCES, default="mlflow")
    notes = c.strings(node, "notes", "the table spec")
    rows = _parse_rows(c, node, paper, source)
    reference_row = c.text(node, "reference_row", "the table spec")
    measured = [r.label for r in rows if not r.reference]
    if reference_row is not None and reference_row not in measured:
        c.fail(
            f"reference_row {reference_row!r} is not a measured row of this table",
            node,
            "reference_row",
            expected="one of " + ", ".join(repr(x) for x in measured),
        )
    return TableSpec(
        id=str(table_id),
        title=c.text(node, "title", "the table spec") or paper.title,
        source=source,
        sweep=c.text(node, "sweep", "the table spec"),
        columns=_parse_columns(c, node, paper),
        rows=rows,
        notes=tuple(notes),
        paper=paper,
        path=path,
        reference_row=reference_row,
    )


def list_table_ids() -> list[str]:
    """Ids of the shipped table specs, in numeric order ("1" … "6")."""
    ids = [p.stem.removeprefix("table") for p in SPEC_DIR.glob("table*.yaml")]
    return sorted((i for i in ids if i.isdigit()), key=int)


def resolve_table(table: str | int | Path) -> Path:
    """The spec file of ``table``: a table id ("3"), a registry name ("table3") or a path to a spec file."""
    raw = str(table)
    path = Path(raw).expanduser()
    if raw.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise BenchError(f"{path}: no such table spec file")
        return path
    stem = raw if raw.startswith("table") else f"table{raw}"
    candidate = SPEC_DIR / f"{stem}.yaml"
    if candidate.is_file():
        return candidate
    raise BenchError(
        f"no table {raw!r}: tables are {', '.join(list_table_ids())} (or `all`), or a path to a spec file; "
        "see `bench list tables`"
    )


def load_table_spec(table: str | int | Path) -> TableSpec:
    """Resolve, load and validate a table spec."""
    path = resolve_table(table)
    return parse_table_spec(load_yaml(path), path)


def metric_units() -> dict[str, str]:
    """``{metric: unit}`` over the shipped MLflow-filled specs (what ``bench compare`` uses to print %)."""
    out: dict[str, str] = {}
    for table_id in list_table_ids():
        spec = load_table_spec(table_id)
        if spec.source == "mlflow":
            for column in spec.columns:
                out.setdefault(column.metric, column.unit)
    return out
