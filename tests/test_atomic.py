"""Tests of atomic writes (henasy/core/atomic.py): complete files or nothing, no temp files left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from henasy.core.atomic import atomic_write, atomic_write_json


def test_json_roundtrip_and_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    assert json.loads(target.read_text()) == {"b": 1, "a": [1, 2]}
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    atomic_write_json(target, {"v": 1})

    def explode(f: object) -> None:
        f.write(b'{"v": 2')  # type: ignore[attr-defined]
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_written_file_follows_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        target = atomic_write_json(tmp_path / "r.json", {})
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644
