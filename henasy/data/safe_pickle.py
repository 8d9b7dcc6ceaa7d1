"""A restricted unpickler for the two pickle formats the benchmarks read.

EPIC-KITCHENS' relevancy matrix (``caption_relevancy_EPIC_100_retrieval_test.pkl``, a float numpy array) and
HelpingHands' 100DOH box files (``<video_uid>/<chunk>.handobj.pkl``, dicts of numpy arrays) are pickles.
``pickle.load`` can run arbitrary code, so only numpy arrays, dtypes and scalars plus plain builtins
(containers, numbers, strings, bytes) may be reconstructed; any other class raises a ``DataFormatError``
naming the file and the class.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from henasy.errors import DataFormatError

# (module, name) pairs that rebuild numpy arrays/scalars/dtypes, across numpy 1.x and 2.x module names.
_NUMPY_ALLOWED = {
    (mod, name)
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}

_BUILTINS_ALLOWED = {"set", "frozenset", "complex", "bytearray", "slice", "range", "list", "dict", "tuple"}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_ALLOWED:
            return super().find_class(module, name)
        if module == "numpy" and name.endswith("DType") or module.startswith("numpy.dtypes"):
            return super().find_class(module, name)  # numpy 2 dtype classes (e.g. numpy.dtypes.Float32DType)
        if module in ("builtins", "__builtin__") and name in _BUILTINS_ALLOWED:  # __builtin__: protocol 2
            return super().find_class(module, name)
        if (
            module == "_codecs" and name == "encode"
        ):  # numpy arrays pickled with protocol 2 store bytes this way
            return super().find_class(module, name)
        if module == "collections" and name == "OrderedDict":
            return super().find_class(module, name)
        raise DataFormatError(
            self._path,
            f"the pickle contains the class {module}.{name}, which is not allowed",
            expected="only numpy arrays and plain Python containers/numbers/strings (re-save it with those)",
        )


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
    return loads(path.read_bytes(), path)
