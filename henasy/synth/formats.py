"""Byte-stable, atomic writers for the annotation file types (csv, json, pickle, npz) and value formatting.

Everything written by the generator goes through here so that the same seed gives byte-identical files:
json with sorted keys, csv with ``\\n`` line ends, pickles with a fixed protocol, and npz archives with a
fixed zip timestamp (``numpy.savez`` stamps the current time into the zip, so it is not used).
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from henasy.core.atomic import atomic_write_bytes, atomic_write_text

PICKLE_PROTOCOL = 4
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def py_list(values: Iterable[Any]) -> str:
    """A string-encoded Python list, as in the official csvs: ``[3, 7]``, ``['cup', 'plate']``."""
    return repr([v if isinstance(v, str) else int(v) for v in values])


def hms(seconds: float, decimals: int = 2) -> str:
    """``HH:MM:SS.ff`` (EPIC-KITCHENS timestamps; ``decimals=3`` for narration timestamps)."""
    scale = 10**decimals
    total = int(round(seconds * scale))
    whole, frac = divmod(total, scale)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{frac:0{decimals}d}"


def seconds(value: float, decimals: int = 3) -> float:
    """Round a time for writing (the same rounding everywhere keeps files and keys consistent)."""
    return round(float(value), decimals)


def write_csv(
    path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]], *, delimiter: str = ","
) -> Path:
    """Write a csv (or tsv) atomically with ``\\n`` line ends and minimal quoting."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    return atomic_write_text(path, buf.getvalue())


def write_lines(path: str | Path, lines: Iterable[str]) -> Path:
    """Write text lines (each ending in ``\\n``) atomically."""
    return atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def write_json(path: str | Path, obj: Any, *, indent: int | None = None, sort_keys: bool = True) -> Path:
    """Write JSON atomically, keys sorted unless the caller's insertion order is itself deterministic."""
    return atomic_write_text(path, json.dumps(obj, sort_keys=sort_keys, indent=indent) + "\n")


def write_pickle(path: str | Path, obj: Any) -> Path:
    """Pickle ``obj`` (plain containers and numpy arrays) with a fixed protocol, atomically."""
    return atomic_write_bytes(path, pickle.dumps(obj, protocol=PICKLE_PROTOCOL))


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` archive (readable by ``numpy.load``) with fixed zip metadata."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write a deterministic compressed ``.npz`` atomically."""
    return atomic_write_bytes(path, npz_bytes(arrays))
