"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A reader (or a job restarted after a crash) sees either the old complete file or the new complete file,
never a half-written one. Used for result records, manifests, checkpoints and generated annotations.

A write that fails for a reason of the file system (full, over quota, read-only, no permission) raises
``WriteFailed``: a ``BenchError`` whose message says what happened and which file it was (the command line
prints it without a traceback), and still an ``OSError`` carrying the cause's ``errno``, so callers that
tolerate I/O failures keep doing so. The temporary file is removed either way.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from henasy.core.errors import BenchError

# What each errno means for the person whose file could not be written.
_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for its file system",
    errno.ENOTDIR: "a folder on the path is a file",
    errno.EIO: "input/output error (a failing disk or a lost network file system)",
}
# torch.save reports a failed write of its zip writer (PyTorch caffe2/serialize/inline_container.cc) as a
# RuntimeError without an errno: "[enforce fail at inline_container.cc:NNN] . unexpected pos ..." or
# "... file write failed"; the cause is then read off the file system's free space.
_TORCH_WRITE_FAILURE = ("inline_container.cc", "file write failed", "iostream error")
_FULL_BELOW_BYTES = 1 << 20  # a file system with less free space than this counts as full


class WriteFailed(BenchError, OSError):
    """``path`` could not be written: ``reason`` says why (no space left on device, read-only, ...)."""

    def __init__(self, path: str | Path, reason: str, hint: str = "", code: int | None = None) -> None:
        self.path, self.reason, self.hint, self.code = Path(path), reason, hint, code
        super().__init__(f"{reason} while writing {path}" + (f"; {hint}" if hint else ""))
        self.errno = code  # type: ignore[misc]  # OSError's attribute: code that checks errno keeps working

    def with_hint(self, hint: str) -> WriteFailed:
        """The same failure with ``hint`` (what is intact, what to do) appended to the message."""
        return WriteFailed(self.path, self.reason, hint, self.code)

    def __reduce__(self) -> tuple:  # picklable, so submitit and DataLoader workers can re-raise it intact
        return (WriteFailed, (str(self.path), self.reason, self.hint, self.code))


def as_write_failure(err: BaseException, path: str | Path) -> WriteFailed | None:
    """``err`` (raised while writing ``path``) as a ``WriteFailed`` when the file system caused it, else None.

    Only what the error shows is claimed: an ``errno`` anywhere in its chain, the C library's "No space
    left on device" text, or, for torch's errno-less zip-writer failure, the free space measured now.
    """
    if isinstance(err, BenchError) or not isinstance(err, Exception):
        return None  # already explained, or an interrupt
    chain = _chain(err)
    if any(not isinstance(e, Exception) for e in chain):
        return None  # an interrupt or exit surfacing through torch.save's writer is not a disk problem
    for e in chain:
        if isinstance(e, OSError) and e.errno in _REASONS:
            return WriteFailed(path, _REASONS[e.errno], code=e.errno)
    if any("No space left on device" in str(e) for e in chain):
        return WriteFailed(path, _REASONS[errno.ENOSPC], code=errno.ENOSPC)
    torch_failures = [str(e) for e in chain if any(t in str(e) for t in _TORCH_WRITE_FAILURE)]
    if not torch_failures:
        return None
    free = _free_bytes(Path(path).parent)
    if free is not None and free < _FULL_BELOW_BYTES:
        return WriteFailed(path, f"no space left on device ({free} bytes free)", code=errno.ENOSPC)
    detail = torch_failures[0].strip().splitlines()[0][:200]
    room = f", {free} bytes free" if free is not None else ""
    return WriteFailed(path, f"write error (torch.save: {detail}{room})")


@contextlib.contextmanager
def explain_write_failure(path: str | Path) -> Iterator[None]:
    """Turn an ``OSError`` of the file system inside the block into a ``WriteFailed`` naming ``path``."""
    try:
        yield
    except OSError as err:
        failure = as_write_failure(err, path)
        if failure is None:
            raise
        raise failure from err


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it was raised from or while handling (``__cause__``/``__context__``)."""
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged user may still write on the file system of ``folder`` (None: unknown)."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(f)`` on a temporary binary file next to ``path``, then rename it onto ``path``."""
    path = Path(path)
    with explain_write_failure(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; results must be readable on shared clusters
        os.replace(tmp, path)
    except BaseException as err:
        failure = as_write_failure(err, path)  # before the unlink: a full disk still reads as full
        Path(tmp).unlink(missing_ok=True)
        if failure is not None:
            raise failure from err
        raise
    return path


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON (keys in insertion order, trailing newline) to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    """``torch.save`` to ``path`` atomically (checkpoints survive a kill mid-write)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))
