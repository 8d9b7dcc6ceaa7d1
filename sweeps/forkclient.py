"""Client of the sweep fork server (``sweeps.forkserver``): the ``python`` command of local submitit jobs.

submitit's local controller runs ``<python> -u -m submitit.core._submit <folder>`` (submitit 1.5.4 :
submitit/local/local.py, ``LocalExecutor(python=...)`` and ``Controller.start_tasks``); with the fork server
``<python>`` is ``<interpreter> -I -S <this file> <socket>``, so this script gets the socket and the command:

1. it connects to the server and sends the command, its environment, working directory, umask and CPU
   affinity, and its stdin/stdout/stderr descriptors (``SCM_RIGHTS``); the server forks a pre-warmed child
   that runs the command with them and answers the child's pid;
2. signals sent to this process (submitit's time-out / preemption ``USR2``, its ``SIGINT`` on cancel, ...)
   are forwarded to the child; when the child ends this process ends the same way (exit code or signal);
3. on any failure before the child started (no server, refused, unsupported command, protocol error) it
   runs the command itself with ``os.execv`` — exactly what the plain interpreter would have done.

Only the standard library is imported (started with ``-I -S``: about 10 ms), and nothing of this project:
this file is also loaded by the server process, which must not import the project's packages.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time
from typing import Any, NoReturn

ENV_ENABLE = "HENASY_FORKSERVER"  # "0": never use the fork server
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCONT,
    signal.SIGHUP,
)
REPLY_TIMEOUT_S = 60.0  # the server answers after its imports; past this the client runs the command itself
MAX_MESSAGE = 64 * 1024 * 1024
_HEADER = struct.Struct("!I")


class ProtocolError(Exception):
    """The other side closed the connection or sent something that is not a message."""


def send_message(sock: socket.socket, obj: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    """One message: a 4-byte length, then JSON; ``fds`` travel (SCM_RIGHTS) with the length."""
    data = json.dumps(obj).encode()
    header = _HEADER.pack(len(data))
    if fds:
        sent = socket.send_fds(sock, [header], list(fds))
        if sent != len(header):
            sock.sendall(header[sent:])
        sock.sendall(data)
    else:
        sock.sendall(header + data)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ProtocolError("connection closed in the middle of a message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_message(sock: socket.socket, maxfds: int = 0) -> tuple[dict[str, Any], list[int]]:
    """The next message and the descriptors that came with it; ``ProtocolError`` on EOF or garbage."""
    fds: list[int] = []
    if maxfds:
        head, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, maxfds)
    else:
        head = sock.recv(_HEADER.size)
    try:
        if not head:
            raise ProtocolError("connection closed")
        if len(head) < _HEADER.size:
            head += _recv_exact(sock, _HEADER.size - len(head))
        (size,) = _HEADER.unpack(head)
        if size > MAX_MESSAGE:
            raise ProtocolError(f"message of {size} bytes")
        obj = json.loads(_recv_exact(sock, size))
        if not isinstance(obj, dict):
            raise ProtocolError("a message is a JSON object")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return obj, fds


def module_command(argv: list[str]) -> tuple[bool, str, list[str]] | None:
    """``([-u] -m module args...)`` → (unbuffered, module, args); None for any other interpreter command."""
    unbuffered = False
    i = 0
    while i < len(argv) and argv[i] == "-u":
        unbuffered, i = True, i + 1
    if i + 1 < len(argv) and argv[i] == "-m" and argv[i + 1] and not argv[i + 1].startswith("-"):
        return unbuffered, argv[i + 1], argv[i + 2 :]
    return None


class _Forwarder:
    """Signal handlers that pass signals on to the child once its pid is known (queued until then)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []
        self.saved = {sig: signal.getsignal(sig) for sig in FORWARDED}
        for sig in FORWARDED:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.pid is None:
            self.pending.append(signum)
            return
        try:
            os.kill(self.pid, signum)
        except OSError:
            pass

    def start(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            self._handle(signum, None)
        self.pending = []

    def restore(self) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _run_here(command: list[str], forwarder: _Forwarder | None = None) -> NoReturn:
    """What the interpreter would have done without the server: exec it with the command."""
    if forwarder is not None:
        forwarder.restore()
        for signum in forwarder.pending:  # arrived before the child existed: they were meant for us
            os.kill(os.getpid(), signum)
    os.execv(sys.executable, [sys.executable, *command])


def _end_like(result: dict[str, Any]) -> NoReturn:
    """Exit with the child's exit code, or die of the signal that killed it."""
    if "signal" in result:
        signum = int(result["signal"])
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        time.sleep(1.0)
        os._exit(128 + signum)
    os._exit(int(result.get("exit", 1)))


def _wait_gone(pid: int) -> None:
    """Block until ``pid`` no longer exists (the server died, so its exit status is lost)."""
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except OSError:
            return
        time.sleep(0.2)


def main(argv: list[str]) -> None:
    """``forkclient.py SOCKET [-u] -m MODULE ARGS...``: run the command in a child of the fork server."""
    if not argv:
        print("usage: forkclient.py SOCKET [-u] -m MODULE [ARGS...]", file=sys.stderr)
        os._exit(2)
    path, command = argv[0], argv[1:]
    if os.environ.get(ENV_ENABLE) == "0" or module_command(command) is None:
        _run_here(command)
    try:
        fds = (0, 1, 2)
        for fd in fds:
            os.fstat(fd)  # a closed stdio descriptor cannot be passed on: run the command here
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(REPLY_TIMEOUT_S)
        sock.connect(path)
    except (OSError, ValueError):
        _run_here(command)
    forwarder = _Forwarder()
    try:
        mask = os.umask(0o22)
        os.umask(mask)
        request = {
            "argv": command,
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "umask": mask,
            "affinity": sorted(os.sched_getaffinity(0)),
        }
        send_message(sock, request, fds)
        reply, _ = recv_message(sock)
        pid = int(reply["pid"])
    except (OSError, ValueError, KeyError, TypeError, ProtocolError):
        sock.close()  # the server sees EOF and does not start (or stops) the child
        _run_here(command, forwarder)
    forwarder.start(pid)
    sock.settimeout(None)
    try:
        result, _ = recv_message(sock)
    except (OSError, ValueError, ProtocolError):
        print(
            f"forkclient: lost the fork server at {path}; waiting for job process {pid} (exit status lost)",
            file=sys.stderr,
            flush=True,
        )
        _wait_gone(pid)
        result = {"exit": 1}
    _end_like(result)


if __name__ == "__main__":
    main(sys.argv[1:])
