"""The paper's numbers: ``bench table --id N --paper-only --format json`` reproduces HENASY Tables 1–6.

The expected values below are typed from the paper (Vo et al., NeurIPS 2024) independently of
reports/paper_numbers.yaml: every row's first and last value of every table, every value of Table 3, and
the row labels. A malformed paper-numbers file must fail with the file, line and key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from henasy.cli import main
from henasy.core.errors import DataFormatError
from reports.paper_numbers import load_paper_numbers

# (label, first value, last value) per printed row, None where the paper prints "-".
FIRST_LAST = {
    1: [
        ("EgoVLP", 90.6, None),
        ("EgoVLPv2", 91.0, None),
        ("LaViLa", 93.8, 28.9),
        ("HelpingHands*", 93.2, 29.4),
        ("Ours (HENASY)", 94.1, 29.6),
    ],
    2: [
        ("SlowFast", 5.5, 6.0),
        ("EgoVLP", 10.8, 11.4),
        ("LaViLa(B)", 10.5, 11.3),
        ("HelpingHands*", 11.2, 11.7),
        ("Ours (HENASY)", 11.5, 12.4),
    ],
    4: [
        ("w/ avg. pool", 87.6, 18.1),
        ("w/ SA dec.", 93.3, 36.3),
        ("w/o bootstrap", 92.6, 37.9),
        ("complete settings", 94.1, 38.2),
    ],
    5: [("HelpingHands", True, 2.87), ("Ours (HENASY)", False, 1.02)],
    6: [("HelpingHands", 22.73, 22.73), ("Ours (HENASY)", 41.06, 41.06)],
}

TABLE3 = [
    ("L_ego", [93.4, 58.4, 30.8, 32.7, 18.2, 36.8]),
    ("L_ego + L_NEC", [93.6, 59.9, 30.9, 32.8, 19.1, 37.5]),
    ("L_ego + L_VEC", [93.7, 59.7, 31.1, 32.9, 18.9, 37.3]),
    ("L_ego + L_proj", [93.2, 58.5, 30.8, 32.6, 18.5, 37.0]),
    ("L_ego + L_NEC + L_VEC", [94.0, 61.1, 31.3, 33.0, 19.3, 37.7]),
    ("L_ego + L_NEC + L_VEC + L_proj", [94.1, 61.3, 31.3, 33.1, 19.3, 38.2]),
]


def paper_json(table_id: int, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["table", "--id", str(table_id), "--paper-only", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("table_id", sorted(FIRST_LAST))
def test_paper_only_json_first_and_last_values(table_id: int, capsys: pytest.CaptureFixture[str]) -> None:
    data = paper_json(table_id, capsys)
    assert data["id"] == table_id
    assert [r["label"] for r in data["rows"]] == [label for label, _, _ in FIRST_LAST[table_id]]
    for row, (label, first, last) in zip(data["rows"], FIRST_LAST[table_id]):
        assert len(row["paper"]) == len(data["columns"]), label
        assert row["paper"][0] == first, label
        assert row["paper"][-1] == last, label
        assert row["measured"] == [None] * len(data["columns"])  # --paper-only reads no runs


def test_paper_only_json_table3_every_value(capsys: pytest.CaptureFixture[str]) -> None:
    data = paper_json(3, capsys)
    assert data["columns"] == [
        "egomcq.inter",
        "egomcq.intra",
        "ek100_mir.mAP_avg",
        "ek100_mir.nDCG_avg",
        "ek100_cls.top1",
        "ek100_cls.top5",
    ]
    assert [(r["label"], r["paper"]) for r in data["rows"]] == TABLE3


def test_table1_middle_columns_and_dashes(capsys: pytest.CaptureFixture[str]) -> None:
    data = paper_json(1, capsys)
    rows = {r["label"]: r["paper"] for r in data["rows"]}
    cols = data["columns"]
    assert rows["EgoVLPv2"][cols.index("ek100_mir.mAP_avg")] == 26.7
    assert rows["EgoVLPv2"][cols.index("ek100_mir.mAP_v2t")] is None
    assert rows["HelpingHands*"][cols.index("ek100_cls.top1")] is None
    assert rows["Ours (HENASY)"][cols.index("ek100_cls.top1")] == 19.5
    assert rows["LaViLa"][cols.index("ek100_mir.nDCG_avg")] == 32.0


def test_reference_rows_are_marked(capsys: pytest.CaptureFixture[str]) -> None:
    data = paper_json(2, capsys)
    reference = {r["label"]: r["reference"] for r in data["rows"]}
    assert reference == {
        "SlowFast": True,
        "EgoVLP": True,
        "LaViLa(B)": False,
        "HelpingHands*": False,
        "Ours (HENASY)": False,
    }


def test_markdown_paper_cells_are_printed_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "--id", "1", "--paper-only"]) == 0
    out = capsys.readouterr().out
    egovlp = next(line for line in out.splitlines() if line.startswith("| EgoVLP |"))
    assert "| 26.0 |" in egovlp and "| 27.0 |" in egovlp and "| - |" in egovlp  # trailing zeros kept


def test_table3_ticks_are_kept() -> None:
    table = load_paper_numbers()["3"]
    assert table.settings == ("L_ego", "L_NEC", "L_VEC", "L_proj")
    assert [r.ticks for r in table.rows] == ["✓✗✗✗", "✓✓✗✗", "✓✗✓✗", "✓✗✗✓", "✓✓✓✗", "✓✓✓✓"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "numbers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """tables:
  "9":
    title: "t"
    columns:
      - {key: a.x, header: "X"}
      - {key: a.y, header: "Y"}
    rows:
      - label: "r1"
        values: ["1.0", "-"]
"""


def test_paper_numbers_file_loads_and_rejects_bad_cells(tmp_path: Path) -> None:
    table = load_paper_numbers(_write(tmp_path, GOOD))["9"]
    assert table.value("r1", "a.x") == 1.0 and table.value("r1", "a.y") is None
    with pytest.raises(DataFormatError) as err:
        load_paper_numbers(_write(tmp_path, GOOD.replace('"-"]', '"n/a"]')))
    assert "line 9" in str(err.value) and "n/a" in str(err.value)
    with pytest.raises(DataFormatError) as err:
        load_paper_numbers(_write(tmp_path, GOOD.replace('["1.0", "-"]', '["1.0"]')))
    assert "1 values for 2 columns" in str(err.value) and "line 9" in str(err.value)
    with pytest.raises(DataFormatError) as err:
        load_paper_numbers(_write(tmp_path, GOOD.replace('title: "t"', 'title: "t"\n    colour: red')))
    assert "unknown key 'colour'" in str(err.value) and "line 4" in str(err.value)
