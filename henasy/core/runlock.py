"""One writer per run folder: an exclusive ``flock`` on ``<run_dir>/.lock`` that names its holder.

``bench train --out X`` and every sweep job hold the lock of their run folder for the whole run, so two
processes never interleave one ``metrics.jsonl`` or overwrite each other's ``last.pt``. The holder writes
its host, PID, command and start time into the lock file; a second writer reads them and is refused with a
``RunFolderBusy`` naming the holder (``run_lock``), or waits for it (``run_lock(wait=True)``: a requeued
sweep job racing a live one).

The kernel drops a ``flock`` when its holder dies (kill -9 included), so a stale lock never blocks a run.
On release the holder removes the lock file; a process that locked a removed file notices (its descriptor
no longer matches the path) and locks the new one. Over NFS, Linux maps ``flock`` onto byte-range locks
that other hosts see; on a file system without locks the run proceeds unlocked with a warning.
The lock is re-entrant within one thread: a sweep job holds it and the ``train_run`` it calls re-enters.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from henasy.core.errors import BenchError

LOCK_NAME = ".lock"
HOLDER_WAIT_S = 1.0  # how long to wait for a holder that has just locked to write down who it is
log = logging.getLogger(__name__)

_held: dict[str, tuple[tuple[int, int], int]] = {}  # lock path -> ((pid, thread) holding it, re-entry depth)


@dataclass
class Holder:
    """Who holds a run folder's lock, as recorded in the lock file."""

    host: str
    pid: int
    command: str
    started: float  # seconds since the epoch

    def describe(self) -> str:
        """``PID 123 on this host (started ..., command: ...)``, saying when the host is another one."""
        here = socket.gethostname()
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        where = "this host" if self.host == here else f"host {self.host}"
        text = f"PID {self.pid} on {where} (started {started}"
        text += f", command: {self.command})" if self.command else ")"
        if self.host != here:
            text += f"; that is not this host ({here}): the run folder is on a file system both hosts share"
        return text


class RunFolderBusy(BenchError):
    """Another process holds the run folder's lock."""

    def __init__(self, run_dir: Path, holder: Holder | None) -> None:
        self.run_dir, self.holder = run_dir, holder
        who = holder.describe() if holder else "another process (it has not recorded its host and PID)"
        super().__init__(
            f"{run_dir} is in use: {who} is writing to this run folder ({run_dir / LOCK_NAME}). "
            "Wait for it to finish (or stop it), or choose another --out"
        )

    def __reduce__(self) -> tuple:
        return (RunFolderBusy, (self.run_dir, self.holder))


def prepare_run_dir(run_dir: str | Path) -> Path:
    """Create ``run_dir`` (and its parents); a clear ``BenchError`` when it is a file or cannot be created."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise BenchError(f"{run_dir} is a file, not a run folder: pass a folder path to --out")
    blocker = next((p for p in run_dir.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise BenchError(
            f"cannot create the run folder {run_dir}: {blocker} is a file, not a folder; choose another --out"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BenchError(
            f"cannot create the run folder {run_dir}: {err.strerror or err}; choose another --out"
        ) from None
    if not os.access(run_dir, os.W_OK | os.X_OK):
        why = "is on a read-only file system" if _read_only(run_dir) else "is not writable (permissions)"
        raise BenchError(f"the run folder {run_dir} {why}; choose another --out")
    return run_dir


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


@contextlib.contextmanager
def run_lock(
    run_dir: str | Path,
    *,
    wait: bool = False,
    on_wait: Callable[[Holder | None], None] | None = None,
    command: str | None = None,
) -> Iterator[Path]:
    """Hold the lock of ``run_dir`` (created if needed) for the block; yields the folder.

    Held elsewhere: ``RunFolderBusy`` naming the holder, or with ``wait`` call ``on_wait(holder)`` and block
    until it is free. ``command`` is what the lock file says this process does (default: its argv).
    """
    run_dir = prepare_run_dir(run_dir)
    path = run_dir / LOCK_NAME
    key = str(path.resolve())
    me = (os.getpid(), threading.get_ident())
    holder, depth = _held.get(key, ((0, 0), 0))
    if holder == me:  # re-entered by the thread that holds it (a sweep job calling train_run)
        _held[key] = (me, depth + 1)
        try:
            yield run_dir
        finally:
            _held[key] = (me, depth)
        return
    fd = _acquire(run_dir, path, wait, on_wait)
    if fd is None:  # the file system cannot lock: proceed as before locks existed
        yield run_dir
        return
    try:
        _record_holder(fd, command if command is not None else " ".join(sys.argv))
        _held[key] = (me, 1)
        yield run_dir
    finally:
        _held.pop(key, None)
        _release(fd, path)


def _acquire(
    run_dir: Path, path: Path, wait: bool, on_wait: Callable[[Holder | None], None] | None
) -> int | None:
    """A descriptor of ``path`` locked exclusively by this process (None when locks are unsupported)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask applies
        except OSError as err:
            raise BenchError(
                f"cannot create the lock file {path}: {err.strerror or err}; choose another --out"
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                if not wait:
                    raise RunFolderBusy(run_dir, holder) from None
                if on_wait is not None:
                    on_wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                log.warning(
                    "%s: the file system does not support locks (%s); another process could write "
                    "to this run folder at the same time",
                    path,
                    err.strerror,
                )
                return None
            raise
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)  # the holder removed the file while we waited: lock the one now at the path


def _same_file(fd: int, path: Path) -> bool:
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (at_path.st_dev, at_path.st_ino)


def _record_holder(fd: int, command: str) -> None:
    """Write who holds the lock into the lock file (synced: other hosts of an NFS mount read it too)."""
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": command[:500],
        "started": time.time(),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
    os.fsync(fd)


def _read_holder(fd: int) -> Holder | None:
    """The holder recorded in the lock file; waits briefly for one that has only just locked it."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        try:
            data = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
            return Holder(
                str(data["host"]), int(data["pid"]), str(data.get("command", "")), float(data["started"])
            )
        except (ValueError, KeyError, TypeError, OSError):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


def _release(fd: int, path: Path) -> None:
    """Remove the lock file (still ours) and unlock it."""
    try:
        if _same_file(fd, path):
            path.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only or vanished folder: the flock is released below either way
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
