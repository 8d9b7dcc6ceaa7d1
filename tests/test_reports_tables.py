"""``bench table`` on a small MLflow store written the way the sweep writes it (``sweeps.tracking.sync_run``).

The store (SQLite in a temporary directory) holds Table 3 rows in every state a cell can be in: finished
(twice, the newer must win), partial (a record marked partial; an ``eval.limit`` run), failed, running,
a fraction logged in percent (unit mismatch), a missing metric, and never run. Table 4 has a smoke and a
paper-scale run of one row (paper scale wins unless ``--scale`` says otherwise).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from henasy.cli import main
from henasy.core.atomic import atomic_write_json
from henasy.core.errors import BenchError, DataFormatError
from reports.spec import list_table_ids, load_table_spec, parse_table_spec

METRICS = {
    "egomcq": {"inter": 93.0, "intra": 58.0},
    "ek100_mir": {"mAP_avg": 30.5, "nDCG_avg": 33.0},
    "ek100_cls": {"top1": 18.0, "top5": 37.0},
}


def _record(
    label: str,
    metrics: dict[str, dict[str, float]],
    *,
    table: str,
    sweep: str,
    model: str,
    scale: str = "smoke",
    partial: tuple[str, ...] = (),
    config: dict[str, Any] | None = None,
    units: dict[str, str] | None = None,
    per_item: dict[str, dict[str, list]] | None = None,
) -> dict:
    from henasy.core.records import flat_metrics

    recs = [
        {
            "benchmark": b,
            "split": "test",
            "metrics": m,
            "n_items": 10,
            "partial": b in partial,
            "model": {"id": model},
            "protocol": {"version": 1, "units": (units or {}).get(b, "percent")},
            **({"per_item": per_item[b]} if per_item and b in per_item else {}),
        }
        for b, m in metrics.items()
    ]
    return {
        "complete": True,
        "run_id": label,
        "sweep": sweep,
        "table": table,
        "label": label,
        "scale": scale,
        "config": {"model": model, **(config or {})},
        "records": recs,
        "metrics": flat_metrics(recs),
        "git_commit": "0123456789abcdef",
    }


def publish(uri: str, root: Path, name: str, record: dict, losses: list[float] | None = None) -> None:
    """Write the run directory and replay it into MLflow exactly as ``bench sync`` / the sweep job do."""
    from sweeps import records
    from sweeps.tracking import sync_run

    run_dir = root / name
    for rec in record["records"]:
        atomic_write_json(records.eval_record_path(run_dir, rec["benchmark"]), [rec])
    if losses:
        run_dir.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"step": i + 1, "loss": v}) for i, v in enumerate(losses)]
        (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    records.write_result(run_dir, record)
    assert sync_run(uri, run_dir, record, experiment=record["sweep"]) == "synced"


def unfinished(uri: str, root: Path, label: str, *, failed: bool) -> None:
    from sweeps.tracking import RunTracker

    tracker = RunTracker(uri, root / label.replace(" ", "_"), experiment="ablations/losses", run_name=label)
    tags = {
        "bench.sweep": "ablations/losses",
        "bench.table": "3",
        "bench.row": label,
        "bench.scale": "smoke",
        "bench.model": "henasy_tiny",
    }
    if failed:
        tags["bench.failure"] = "RuntimeError: out of memory"
    tracker.open(params={}, tags=tags)
    if failed:
        tracker.finish("FAILED")


def egomcq_items(inter_correct: int, intra_correct: int, n: int = 100) -> dict[str, list]:
    """EgoMCQ per-item outcomes (benchmarks/egomcq.py breakdown): n inter- and n intra-video items."""
    return {
        "item_id": [f"i{k}" for k in range(2 * n)],
        "type": [1] * n + [2] * n,
        "correct": [1] * inter_correct
        + [0] * (n - inter_correct)
        + [1] * intra_correct
        + [0] * (n - intra_correct),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("mlflow_store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    t3 = {"table": "3", "sweep": "ablations/losses", "model": "henasy_tiny"}
    old = {**METRICS, "egomcq": {"inter": 11.0, "intra": 11.0}}
    publish(uri, root, "old", _record("L_ego", old, **t3))
    items = {"egomcq": egomcq_items(93, 58)}  # 93 % inter, 58 % intra: the record's EgoMCQ metrics
    publish(uri, root, "l_ego", _record("L_ego", METRICS, per_item=items, **t3), losses=[3.0, 2.5, 2.0])
    publish(uri, root, "nec", _record("L_ego + L_NEC", METRICS, partial=("ek100_cls",), **t3))
    unfinished(uri, root, "L_ego + L_VEC", failed=True)
    unfinished(uri, root, "L_ego + L_proj", failed=False)
    publish(
        uri, root, "limit", _record("L_ego + L_NEC + L_VEC", METRICS, config={"eval": {"limit": 5}}, **t3)
    )
    wrong = {**METRICS, "ek100_mir": {"mAP_avg": 0.313}}  # a record in fractions; nDCG missing
    items = {"egomcq": egomcq_items(93, 58)}
    row = _record(
        "L_ego + L_NEC + L_VEC + L_proj", wrong, units={"ek100_mir": "fraction"}, per_item=items, **t3
    )
    publish(uri, root, "wrong", row)
    t4 = {"table": "4", "sweep": "ablations/architecture", "model": "henasy_tiny"}
    paper = {**METRICS, "egomcq": {"inter": 94.0, "intra": 61.0}}
    publish(uri, root, "paper", _record("complete settings", paper, scale="paper", **t4))
    publish(uri, root, "smoke", _record("complete settings", METRICS, scale="smoke", **t4))
    return uri


def table_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["table", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cells_say_why_they_are_empty(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = table_json(capsys, "--id", "3", "--tracking-uri", store)
    rows = {r["label"]: r for r in data["rows"]}
    ego = rows["L_ego"]
    assert ego["status"] == ["ok"] * 6
    assert ego["measured"][0] == 93.0  # the newer of the two finished runs
    assert ego["measured"][2] == 30.5
    assert ego["diff"][2] == pytest.approx(30.5 - 30.8)
    assert ego["diff"][0] == pytest.approx(93.0 - 93.4)
    nec = rows["L_ego + L_NEC"]
    assert nec["status"] == ["ok"] * 4 + ["partial"] * 2
    assert nec["measured"][4] is None and "partial" in nec["reasons"][4]
    assert rows["L_ego + L_VEC"]["status"] == ["failed"] * 6
    assert "out of memory" in rows["L_ego + L_VEC"]["reasons"][0]
    assert rows["L_ego + L_proj"]["status"] == ["running"] * 6
    assert rows["L_ego + L_NEC + L_VEC"]["status"] == ["partial"] * 6  # eval.limit = 5
    assert "eval.limit" in rows["L_ego + L_NEC + L_VEC"]["reasons"][0]
    full = rows["L_ego + L_NEC + L_VEC + L_proj"]
    assert full["status"][2:4] == ["unit mismatch", "no metric"]
    assert full["measured"][2] is None and full["paper"][2] == 31.3
    # intervals from the runs' per-item outcomes (results/eval artifacts), none where a record has none
    assert data["reference_row"] == "L_ego + L_NEC + L_VEC + L_proj"
    low, high = ego["ci95"][0]
    assert low < 93.0 < high and high - low < 15  # 93 of 100 right: about ±5 points
    assert ego["ci95"][2] is None and "per_item" in ego["ci_notes"][2]
    assert ego["vs_reference"]["diff"][0] == pytest.approx(0.0)
    assert ego["vs_reference"]["ci95"][0] == [0.0, 0.0]  # identical outcomes item by item
    assert ego["vs_reference"]["significant"][0] is False
    assert full["vs_reference"] is None and data["intervals"]["n_boot"] == 10_000


def test_table4_prefers_paper_scale_unless_asked(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = {r["label"]: r for r in table_json(capsys, "--id", "4", "--tracking-uri", store)["rows"]}
    assert rows["complete settings"]["measured"][0] == 94.0
    assert rows["complete settings"]["source"]["scale"] == "paper"
    assert rows["w/ avg. pool"]["status"] == ["not run"] * 6
    rows = {
        r["label"]: r
        for r in table_json(capsys, "--id", "4", "--scale", "smoke", "--tracking-uri", store)["rows"]
    }
    assert rows["complete settings"]["measured"][0] == 93.0


def test_sweep_filter_selects_by_sweep_tag(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = table_json(capsys, "--id", "3", "--sweep", "someone/else", "--tracking-uri", store)
    assert all(s == "not run" for r in data["rows"] for s in r["status"])


def test_markdown_latex_csv_html_carry_the_same_cells(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "--id", "3", "--tracking-uri", store]) == 0
    md = capsys.readouterr().out
    line = next(x for x in md.splitlines() if x.startswith("| L_ego |"))
    kind, inter, intra, mir = (c.strip() for c in line.split("|")[2:6])
    data = table_json(capsys, "--id", "3", "--tracking-uri", store)
    low, high = data["rows"][0]["ci95"][0]
    assert (kind, inter, mir) == ("measured", f"93.0 ± {(high - low) / 2:.1f}", "30.5")  # no per-item MIR
    assert intra.startswith("58.0 ± ")
    assert "**" not in md.split("\n- ")[0].split("\n", 1)[1]  # no difference is significant: no bold
    assert "| Δ paper | -0.4 |" in md and "_failed_" in md and "_partial_" in md and "_running_" in md
    assert main(["table", "--id", "3", "--format", "latex", "--tracking-uri", store]) == 0
    tex = capsys.readouterr().out
    for piece in (
        "\\toprule",
        "\\midrule",
        "\\bottomrule",
        "$\\mathcal{L}_{ego} + \\mathcal{L}_{NEC}$",
        "\\emph{failed}",
        "$\\Delta$",
    ):
        assert piece in tex
    assert main(["table", "--id", "3", "--format", "csv", "--tracking-uri", store]) == 0
    cells = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(cells) == 6 * 6
    first = cells[0]
    assert (first["row"], first["metric"], first["paper"], first["measured"]) == (
        "L_ego",
        "egomcq.inter",
        "93.4",
        "93.0",
    )
    assert main(["table", "--id", "3", "--format", "html", "--tracking-uri", store]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<table") and "</table>" in page and "<b>" not in page
    assert 'title="95 % CI [' in page and inter in page


def test_missing_store_leaves_cells_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    data = table_json(capsys, "--id", "6", "--tracking-uri", uri)
    assert [r["status"] for r in data["rows"]] == [["not run"], ["not run"]]
    assert any("no MLflow store" in n for n in data["notes"])
    assert not (tmp_path / "none.db").exists()  # reading never creates a store


def test_all_writes_every_table_and_plots(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["table", "--id", "all", "--tracking-uri", store]) == 0
    out = tmp_path / "bench_reports"  # under the working directory, never inside the package
    for table_id in list_table_ids():
        for ext in ("md", "tex", "csv", "json", "html"):
            assert (out / f"table{table_id}.{ext}").stat().st_size > 0
    assert json.loads((out / "table2.json").read_text())["id"] == 2
    capsys.readouterr()
    assert main(["table", "--id", "3", "--plot", "--tracking-uri", store]) == 0
    for name in ("table3_bars", "table3_training"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    assert not (tmp_path / "reports").exists()


def test_plots_are_logged_to_a_run(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reports.collect import open_store, search_runs

    mlc, _ = open_store(store)
    run = next(
        r for r in search_runs(mlc, table="3") if r.row == "L_ego" and r.metrics["egomcq.inter"] == 93.0
    )
    args = [
        "table",
        "--id",
        "3",
        "--plot",
        "--out",
        str(tmp_path),
        "--log-run",
        run.run_id,
        "--tracking-uri",
        store,
    ]
    assert main(args) == 0
    logged = {a.path for a in mlc.list_artifacts(run.run_id, "reports")}
    assert {"reports/table3.md", "reports/table3_bars.png", "reports/table3_training.png"} <= logged


def test_strict_fails_on_empty_cells(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "--id", "3", "--strict", "--tracking-uri", store]) == 1
    assert "--strict" in capsys.readouterr().err


def _spec_text(path: Path, old: str, new: str) -> Path:
    from reports.spec import SPEC_DIR

    text = (SPEC_DIR / "table3.yaml").read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("unit: percent, precision: 1", "unit: percnt, precision: 1", "unit is 'percnt'"),
        ("{metric: egomcq.intra,", "{metric: egomcq.inter2,", "column 2 of paper Table 3"),
        ("better: higher}", "better: higher, colour: red}", "unknown key 'colour'"),
        ('  - {label: "L_ego", model: henasy}\n', "", "every row of paper Table 3"),
        ('{label: "L_ego + L_NEC", ', '{label: "L_ego + L_NEC", run_row: "", ', "must be a non-empty string"),
    ],
)
def test_spec_errors_name_file_line_and_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    from henasy.core.specfile import load_yaml

    path = _spec_text(tmp_path / "bad.yaml", old, new)
    with pytest.raises(DataFormatError) as err:
        parse_table_spec(load_yaml(path), path)
    text = str(err.value)
    assert message in text and str(path) in text and ", line " in text


def test_fraction_columns_are_scaled_and_guarded(tmp_path: Path) -> None:
    from henasy.core.specfile import load_yaml
    from reports.collect import measured_cell

    old = "{metric: ek100_mir.mAP_avg, unit: percent,"
    path = _spec_text(tmp_path / "fraction.yaml", old, old.replace("percent", "fraction"))
    spec = parse_table_spec(load_yaml(path), path)
    assert spec.columns[2].unit == "fraction"
    assert measured_cell(spec, 2, 0.305).value == pytest.approx(30.5)  # shown ×100
    cell = measured_cell(spec, 2, 30.5)  # a percentage in a fraction column
    assert (cell.value, cell.status) == (None, "unit mismatch") and "fraction.yaml" in cell.reason
    assert measured_cell(spec, 0, float("nan")).status == "nan"


def test_unknown_table_id_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BenchError, match="tables are 1, 2, 3, 4, 5, 6"):
        load_table_spec("7")
    assert main(["table", "--id", "7"]) == 2


def test_specs_match_the_sweeps_that_fill_them() -> None:
    """Every run_row is a row of the sweep named in the spec, and every column's benchmark is evaluated."""
    from sweeps.spec import load_spec

    for table_id in list_table_ids():
        spec = load_table_spec(table_id)
        if spec.source != "mlflow":
            continue
        sweep = load_spec(spec.sweep)
        assert str(sweep.table) == spec.id
        labels = {row.label for row in sweep.rows}
        assert {r.run_row for r in spec.rows if not r.reference} <= labels, table_id
        assert {c.metric.split(".")[0] for c in spec.columns} <= set(sweep.base.benchmarks or ()), table_id
