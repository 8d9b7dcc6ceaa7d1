"""Strict parsing helpers (henasy.data.parsing) and the restricted unpickler (henasy.data.safe_pickle)."""

from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest

from henasy.core.errors import DataFormatError
from henasy.data import safe_pickle
from henasy.data.parsing import (
    float_column,
    int_column,
    list_column,
    parse_literal_list,
    parse_timestamp,
    read_json,
    read_table,
)


def test_read_table_types_and_line_numbers(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('a,b,c\n1,2.5,"[1, 2]"\n\n3,4,[]\n')
    t = read_table(p, ["a", "b", "c"])
    assert t.lines.tolist() == [2, 4]  # the blank line 3 is dropped, lines keep counting
    assert int_column(t, "a").tolist() == [1, 3]
    assert float_column(t, "b").tolist() == [2.5, 4.0]
    assert list_column(t, "c", int) == [[1, 2], []]


def test_missing_column_names_file_and_columns(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DataFormatError) as e:
        read_table(p, ["a", "c"])
    msg = str(e.value)
    assert "x.csv" in msg and "['c']" in msg and "['a', 'b']" in msg and e.value.line == 1


def test_too_many_fields_raises_with_line_or_skips(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_text("a\tb\n1\t2\n3\t4\t5\n6\t7\n")
    with pytest.raises(DataFormatError) as e:
        read_table(p, ["a", "b"], sep="\t")
    assert e.value.line == 3 and "x.tsv" in str(e.value)
    t = read_table(p, ["a", "b"], sep="\t", bad_lines="skip")
    assert t.skipped_lines == [3]
    assert t.lines.tolist() == [2, 4]
    assert int_column(t, "a").tolist() == [1, 6]


def test_bad_cells_name_line_and_column(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text('a,b,c\n1,2,[1]\n2,x,"[1, 2"\n')
    t = read_table(p, ["a", "b", "c"])
    with pytest.raises(DataFormatError) as e:
        float_column(t, "b")
    assert (e.value.line, e.value.column) == (3, "b") and "'x'" in str(e.value)
    with pytest.raises(DataFormatError) as e:
        list_column(t, "c", int)
    assert (e.value.line, e.value.column) == (3, "c") and "x.csv" in str(e.value)


def test_literal_list_never_evaluates_code():
    with pytest.raises(DataFormatError):
        parse_literal_list("__import__('os').getcwd()", int, path="f.csv", line=2, column="c")
    with pytest.raises(DataFormatError):
        parse_literal_list("[1, 'a']", int, path="f.csv")
    assert parse_literal_list("['pan', 'lid']", str, path="f.csv") == ["pan", "lid"]
    assert parse_literal_list(" [ 3 , -7, ] ", int, path="f.csv") == [3, -7]


@pytest.mark.parametrize(
    "text, seconds", [("00:00:01.50", 1.5), ("01:02:03.25", 3723.25), ("0:00:05", 5.0), ("00:10:00.0", 600.0)]
)
def test_timestamps(text, seconds):
    assert parse_timestamp(text, path="f.csv") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1.5", "00:61:00.00", "aa:bb:cc", "00:00"])
def test_bad_timestamps(text):
    with pytest.raises(DataFormatError) as e:
        parse_timestamp(text, path="f.csv", line=7, column="start_timestamp")
    assert e.value.line == 7 and "HH:MM:SS" in str(e.value)


def test_json_key_path_errors(tmp_path):
    p = tmp_path / "egomcq.json"
    p.write_text('{"12": {"choices": {"3": {"clip_end": 2}}}}')
    root = read_json(p)
    with pytest.raises(DataFormatError) as e:
        root["12"]["choices"]["3"]["clip_start"]
    assert str(e.value) == f'{p}: key "12" → "choices" → "3": missing "clip_start"'
    with pytest.raises(DataFormatError) as e:
        root["12"]["choices"]["3"]["clip_end"].as_str()
    assert '"clip_end": expected a string' in str(e.value)


def test_json_syntax_error_names_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(DataFormatError) as e:
        read_json(p)
    assert e.value.line == 4 and "bad.json" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError) as e:
        read_table(tmp_path / "nope.csv", ["a"])
    assert "nope.csv" in str(e.value) and "not found" in str(e.value)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_safe_pickle_reads_numpy_and_builtins(tmp_path, protocol):
    obj = {
        12.5: {
            "info": {"height": 480, "width": 640},
            0: {"hand_dets": np.ones((2, 10), np.float32), "obj_dets": None},
        }
    }
    obj["scalar"] = np.float64(0.25)
    obj["set"] = {1, 2}
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps(obj, protocol=protocol))
    out = safe_pickle.load(p)
    np.testing.assert_array_equal(out[12.5][0]["hand_dets"], obj[12.5][0]["hand_dets"])
    assert out["scalar"] == 0.25 and out["set"] == {1, 2}


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    "obj, name", [(Evil(), "builtins.print"), (collections.Counter("ab"), "collections.Counter")]
)
def test_safe_pickle_rejects_other_classes(tmp_path, obj, name, capsys):
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps(obj))
    with pytest.raises(DataFormatError) as e:
        safe_pickle.load(p)
    assert "evil.pkl" in str(e.value) and name in str(e.value)
    assert "pwned" not in capsys.readouterr().out


def test_safe_pickle_truncated(tmp_path):
    p = tmp_path / "t.pkl"
    p.write_bytes(pickle.dumps(np.zeros(100))[:50])
    with pytest.raises(DataFormatError) as e:
        safe_pickle.load(p)
    assert "t.pkl" in str(e.value) and "not a readable pickle" in str(e.value)
