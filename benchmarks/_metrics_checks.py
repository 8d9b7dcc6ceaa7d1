"""Input checks shared by the metric modules of ``benchmarks.metrics``.

Every metric validates its arrays and parsed files here, so that bad input gives one clear
``BenchError`` naming the argument (or the key path inside a parsed JSON file), what was found and what
was expected, rather than a numpy traceback or a silently wrong number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from henasy.core.errors import BenchError


def float_matrix(name: str, value: Any, *, columns: int | None = None) -> np.ndarray:
    """``value`` as a non-empty, finite 2-D float array (float32 kept as is, anything else → float64)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise BenchError(f"{name}: cannot be read as a numeric matrix ({exc})") from None
    if array.dtype.kind not in "fiub":
        raise BenchError(f"{name}: expected a numeric matrix, got dtype {array.dtype}")
    if array.dtype != np.float32:
        array = array.astype(np.float64, copy=False)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise BenchError(f"{name}: expected a non-empty 2-D matrix, got shape {array.shape}")
    if columns is not None and array.shape[1] != columns:
        raise BenchError(f"{name}: expected {columns} columns, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise BenchError(
            f"{name}: contains a non-finite value (first at row {bad[0]}, column {bad[1]}); "
            "fix the scores upstream (NaN/inf would make the ranking arbitrary)"
        )
    return array


def int_vector(name: str, value: Any, length: int, low: int, high: int) -> np.ndarray:
    """``value`` as a 1-D int64 array of ``length`` integer-valued entries in ``[low, high)``."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise BenchError(f"{name}: cannot be read as a vector of integers ({exc})") from None
    if array.ndim != 1 or array.shape[0] != length:
        raise BenchError(f"{name}: expected shape ({length},), got {array.shape}")
    if array.dtype.kind not in "iuf" or (array.dtype.kind == "f" and not np.all(array == np.round(array))):
        raise BenchError(f"{name}: expected integer values, got dtype {array.dtype}")
    array = array.astype(np.int64)
    outside = (array < low) | (array >= high)
    if outside.any():
        index = int(np.flatnonzero(outside)[0])
        raise BenchError(f"{name}[{index}] = {array[index]} is outside the valid range [{low}, {high - 1}]")
    return array


def number(where: str, value: Any) -> float:
    """A finite real number read from a parsed JSON file (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise BenchError(f"{where}: expected a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise BenchError(f"{where}: expected a finite number, got {value!r}")
    return result


def window(where: str, value: Any) -> tuple[float, float]:
    """A ``[start, end]`` pair of numbers read from a parsed JSON file."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise BenchError(f"{where}: expected a [start, end] pair of seconds, got {value!r}")
    return number(f"{where}[0]", value[0]), number(f"{where}[1]", value[1])


def field(where: str, record: Any, key: str) -> Any:
    """``record[key]`` from a parsed JSON object, with a clear error when it is missing."""
    if not isinstance(record, Mapping):
        raise BenchError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if key not in record:
        raise BenchError(f"{where}: missing key {key!r} (present keys: {sorted(map(str, record))})")
    return record[key]


def json_list(where: str, value: Any) -> Sequence[Any]:
    """A JSON array (a Python list or tuple)."""
    if not isinstance(value, (list, tuple)):
        raise BenchError(f"{where}: expected a JSON array, got {type(value).__name__}")
    return value


def json_object(where: str, value: Any) -> Mapping[str, Any]:
    """A JSON object (a Python mapping)."""
    if not isinstance(value, Mapping):
        raise BenchError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value
