"""The one spec-file reader (``henasy/core/specfile.py``) and the spec folders as the list of sweeps and tables."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

import reports.spec
import sweeps.spec
from henasy.cli import main
from henasy.core.errors import DataFormatError
from henasy.core.specfile import LineDict, LineList, SpecChecker, load_yaml
from reports.spec import list_table_ids, load_table_spec, parse_table_spec
from sweeps import SPEC_ROOT
from sweeps.spec import list_specs, load_spec, resolve_spec_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_load_yaml_keeps_the_line_of_every_key_and_item(tmp_path: Path) -> None:
    data = load_yaml(write(tmp_path / "a.yaml", "a: 1\nb:\n  - x\n  - y\nc: {d: 2}\n"))
    assert isinstance(data, LineDict) and isinstance(data["b"], LineList)
    assert [data.line_of(k) for k in "abc"] == [1, 2, 5]
    assert data["b"].item_lines == [3, 4]


def test_checker_names_file_line_key_and_the_close_match(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", "rows: 1\nbase:\n  modle: x\n")
    checker = SpecChecker(path)
    top = checker.mapping(load_yaml(path), "the spec", ("rows", "base"), required=True)
    with pytest.raises(DataFormatError) as err:
        checker.mapping(top["base"], "base", ("model", "overrides"), parent=top, key="base")
    text = str(err.value)
    assert "a.yaml, line 3" in text and "unknown key 'modle' in base; did you mean 'model'?" in text
    assert "one of model, overrides" in text
    with pytest.raises(DataFormatError, match="line 1, column 'rows': spec.rows must be str, got 1"):
        checker.typed(top, "rows", (str,), "spec")


def test_absent_mapping_is_empty_unless_required(tmp_path: Path) -> None:
    checker = SpecChecker(tmp_path / "x.yaml")
    assert checker.mapping(None, "eval", ("device",)) == {}
    with pytest.raises(DataFormatError, match="the table spec must be a mapping, got NoneType"):
        checker.mapping(None, "the table spec", ("id",), required=True)


def test_a_new_sweep_file_is_listed_and_found_by_its_name(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "sweeps"
    shutil.copytree(SPEC_ROOT / "ablations", root / "ablations")
    write(
        root / "mine/extra.yaml",
        "name: custom/extra\ndescription: one new file\nbase: {model: henasy_tiny}\n",
    )
    monkeypatch.setattr(sweeps.spec, "SPEC_ROOT", root)
    assert list_specs() == ["ablations/architecture", "ablations/losses", "custom/extra"]
    assert resolve_spec_path("custom/extra") == (root / "mine/extra.yaml", "custom/extra")
    assert main(["list", "sweeps"]) == 0


def test_old_sweep_table_names_resolve_to_the_renamed_folder() -> None:
    path, name = resolve_spec_path("tables/table1.yaml")
    assert path == SPEC_ROOT / "paper_tables" / "table1.yaml" and name == "tables/table1"
    assert load_spec("sweeps/tables/table6").name == "tables/table6"
    assert not (SPEC_ROOT / "tables").exists()  # one tables/ folder in the repository: reports/tables


def test_a_new_table_file_is_listed_without_any_other_edit(tmp_path: Path, monkeypatch, capsys) -> None:
    for table_id in ("3", "6"):
        shutil.copy(reports.spec.SPEC_DIR / f"table{table_id}.yaml", tmp_path)
    monkeypatch.setattr(reports.spec, "SPEC_DIR", tmp_path)
    assert list_table_ids() == ["3", "6"]
    assert main(["list", "tables"]) == 0
    out = capsys.readouterr().out
    assert "table3" in out and "filled by sweep ablations/losses" in out and "table1" not in out


def test_a_table_row_defaults_its_run_row_to_its_label(tmp_path: Path) -> None:
    shipped = load_table_spec("6")
    text = (reports.spec.SPEC_DIR / "table6.yaml").read_text(encoding="utf-8")
    text = text.replace('run_row: "HelpingHands", ', "").replace('run_row: "Ours", ', "")
    path = write(tmp_path / "table6.yaml", text)
    rows = parse_table_spec(load_yaml(path), path).rows
    assert [(r.label, r.run_row) for r in rows] == [
        ("HelpingHands", "HelpingHands"),
        ("Ours (HENASY)", "Ours (HENASY)"),
    ]
    assert shipped.rows[1].run_row == "Ours"  # an explicit run_row still wins
