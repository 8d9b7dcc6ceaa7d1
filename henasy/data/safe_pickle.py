"""A restricted unpickler for the pickle files the benchmarks read from a dataset root.

EPIC-KITCHENS' relevancy matrix (``caption_relevancy_EPIC_100_retrieval_test.pkl``, a float numpy array) and
HelpingHands' 100DOH box files (``<video_uid>/<chunk>.handobj.pkl``, dicts of numpy arrays) are pickles, and
``pickle.load`` runs whatever callable a pickle names. Here every global a pickle names must be one of an
exact allow-list of ``(module, name)`` pairs — the constructors of numpy arrays, scalars and dtypes (numpy 1
and numpy 2 spellings) and a few plain builtin types — so no function that reaches code, the file system or
the interpreter can be called. There are no dotted names (protocol 4+ ``STACK_GLOBAL`` resolves
``"a.b"`` by attribute walking, which is how ``numpy.dtypes.__builtins__`` reached ``eval``), no whole-module
allowances and no persistent ids. Anything else raises a ``DataFormatError`` naming the file and the global.
``scripts/bad_inputs.sh`` runs the hostile-pickle suite (``tests/test_hostile_pickles.py``).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from henasy.core.errors import DataFormatError

# Array / scalar / dtype constructors: numpy 2 pickles name ``numpy._core``, numpy 1 ``numpy.core`` (the
# official EK100 relevancy file); protocol 5 rebuilds arrays through ``_frombuffer``.
_NUMPY_CONSTRUCTORS = {
    (module, name)
    for package in ("numpy.core", "numpy._core")
    for module, name in (
        (f"{package}.multiarray", "_reconstruct"),
        (f"{package}.multiarray", "scalar"),
        (f"{package}.numeric", "_frombuffer"),
    )
} | {("numpy", "ndarray"), ("numpy", "dtype")}

# numpy 2 writes the dtype *class* when a dtype class itself is pickled (``numpy.dtypes.Float32DType``).
_NUMPY_DTYPE_CLASSES = {
    ("numpy.dtypes", f"{kind}DType")
    for kind in (
        "Bool",
        "Int8",
        "UInt8",
        "Int16",
        "UInt16",
        "Int32",
        "UInt32",
        "Int64",
        "UInt64",
        "Float16",
        "Float32",
        "Float64",
        "LongDouble",
        "Complex64",
        "Complex128",
        "CLongDouble",
        "Str",
        "Bytes",
        "Void",
        "DateTime64",
        "TimeDelta64",
    )
}

# Plain data types; ``__builtin__`` is how protocol 0–2 pickles written by Python 2 (or for it) spell builtins.
_BUILTIN_TYPES = {
    (module, name)
    for module in ("builtins", "__builtin__")
    for name in ("set", "frozenset", "complex", "bytes", "bytearray")
}

ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    _NUMPY_CONSTRUCTORS
    | _NUMPY_DTYPE_CLASSES
    | _BUILTIN_TYPES
    | {
        ("_codecs", "encode"),  # protocol 0–2 store bytes as encode(latin-1 text); returns bytes only
        ("collections", "OrderedDict"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        # Exact pairs only: a dotted name ("dtypes.__builtins__") or any other member is never in the set.
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise DataFormatError(
            self._path,
            f"the pickle names {module}.{name}, which is not allowed (nothing was executed)",
            expected="only numpy arrays/scalars and plain containers, numbers and strings; if you trust the "
            "file, re-save it with just those, e.g. pickle.dump(numpy.asarray(matrix), f)",
        )

    def persistent_load(self, pid: Any) -> Any:
        raise DataFormatError(self._path, "the pickle uses persistent ids, which are not allowed")


def loads(data: bytes, path: str | Path) -> Any:
    """Unpickle ``data`` (read from ``path``, used in error messages) with the restricted unpickler."""
    path = Path(path)
    try:
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except DataFormatError:
        raise
    except Exception as exc:  # truncated/garbled pickles raise many types (EOFError, UnpicklingError, ...)
        raise DataFormatError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from None


def load(path: str | Path, what: str = "pickle file") -> Any:
    """Read and unpickle the file at ``path`` with the restricted unpickler."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, f"{what} not found", expected="an existing file; check the dataset root")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataFormatError(path, f"cannot read the {what} ({err.strerror})") from None
    return loads(data, path)
