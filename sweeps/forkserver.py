"""A pre-warmed fork server ("zygote") for local sweep jobs: each job starts as a fork, not a new interpreter.

Why: a local no-op job spent most of its seconds importing libraries (``import mlflow`` and the modules its
SQLAlchemy store imports on first use — alembic, SQLAlchemy's SQLite dialect, the store's table models —,
``import torch``), once per job. The server imports them once; each job is a ``fork()`` of it that only
imports this project's own (small) modules, from disk, so an editable install never runs stale project code.

How (the client side is ``sweeps.forkclient``):

- ``ensure_server()`` (called by ``sweeps.launch.submit_runs`` before it submits local jobs) starts the
  server when none answers at ``/tmp/henasy-forkserver-<uid>/<key>.sock`` (folder mode 0700; ``key`` hashes
  the interpreter, these two files, the versions of the pre-imported distributions and the environment read
  at interpreter start, so a changed environment gets a fresh server). The server binds its socket, detaches
  (new session, stdio to ``<key>.log``), then imports ``PRELOAD`` (each import guarded) and serves.
- ``local_python()`` is the ``python`` command submitit's ``LocalExecutor`` runs the job with (submitit
  1.5.4 : submitit/local/local.py, ``LocalExecutor(python=...)``, forwarded by ``AutoExecutor`` as
  ``local_python``): ``<interpreter> -I -S sweeps/forkclient.py <socket>``.
- Per request the server (single-threaded, a ``selectors`` loop, so ``fork()`` is safe) checks the peer's
  uid, forks, and answers the child's pid, later its exit status. The child resets signal handlers to a
  fresh interpreter's, puts the client's stdin/stdout/stderr on 0/1/2 (new ``sys.std*`` objects, unbuffered
  under ``-u``), takes its working directory, umask, CPU affinity, environment and ``sys.argv``, reseeds
  NumPy's global generator and runs the ``-m`` module with ``runpy``. It then exits as the interpreter
  would (exit code; traceback and 1 on an exception; thread joins, ``atexit``, flushed stdio) but through
  ``os._exit``: tearing down the inherited modules takes seconds in a fork (every object touched, every
  page copied on write).
- A client that goes away closes its connection: the server SIGKILLs its child. The client forwards every
  catchable signal, so it only goes away by SIGKILL (a controller's last resort, a test's "node dies"), and
  the job must end as abruptly as the task would have (SIGTERM first would not do: submitit's job
  environment ignores SIGTERM, so the job would go on training and writing).
- The server exits after ``HENASY_FORKSERVER_IDLE_S`` seconds (default 600) without children or
  connections, on SIGTERM once its children ended, or when its socket file is removed or replaced.
  ``HENASY_FORKSERVER=0``: off (plain submitit).

Caveats: the server never imports the project's packages (it refuses to serve if a library did), never
initialises CUDA or torch's thread pools and opens no MLflow store. Environment variables that libraries read
at import come from the server's environment: the interpreter's own (``PYTHON*``), the OpenMP / BLAS thread
counts, ``LD_*`` and the locale must equal the job's (the server refuses a job whose values differ, and the
client then runs it in a fresh interpreter); torch reads ``OMP_NUM_THREADS`` lazily and
``CUDA_VISIBLE_DEVICES`` at CUDA initialisation, MLflow its ``MLFLOW_*`` variables when called, so those
follow the job. Native helper threads started by imports (OpenBLAS's pool, pyarrow's jemalloc background
thread) register ``pthread_atfork`` handlers; Python-level threads would make forking unsafe and are refused.
Children share the server's hash seed (``PYTHONHASHSEED`` unset: one random seed per server, not per job),
and a pre-imported library comes from site-packages even where the job's working directory holds a folder
of the same name (a fresh interpreter would import that folder).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import re
import selectors
import shlex
import signal
import socket
import stat
import struct
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

if __package__:
    from sweeps.forkclient import ENV_ENABLE, ProtocolError, module_command, recv_message, send_message
else:  # the server runs this file as a script; it must not import the sweeps package
    from forkclient import ENV_ENABLE, ProtocolError, module_command, recv_message, send_message

ENV_IDLE = "HENASY_FORKSERVER_IDLE_S"
ENV_DIR = "HENASY_FORKSERVER_DIR"  # the socket folder (tests); default /tmp/henasy-forkserver-<uid>
ENV_PRELOAD = "HENASY_FORKSERVER_PRELOAD"  # comma-separated modules instead of PRELOAD (tests: fast start)
DEFAULT_IDLE_S = 600.0
START_TIMEOUT_S = 20.0
HERE = Path(__file__).resolve().parent
CLIENT = HERE / "forkclient.py"
PROJECT_PACKAGES = ("henasy", "sweeps", "benchmarks", "baselines", "reports")
# Third-party modules a job imports; the MLflow store modules are what MlflowClient("sqlite:///...") imports
# on its first call (measured on an existing store: 0.67 s in a fresh interpreter, 0.04 s after these).
PRELOAD = (
    "numpy",
    "yaml",
    "cloudpickle",
    "submitit",
    "submitit.core.submission",
    "submitit.helpers",
    "torch",
    "timm",
    "pandas",
    "mlflow",
    "mlflow.tracking",
    "mlflow.entities",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.tracking.sqlalchemy_workspace_store",
    "mlflow.store.db.utils",
    "mlflow.store.model_registry.sqlalchemy_store",
    "alembic",
    "alembic.command",
    "alembic.config",
    "alembic.script",
    "alembic.runtime.migration",
    "sqlalchemy",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlite3",
    "PIL.Image",
    "av",
    "decord",
)
DISTRIBUTIONS = (
    "numpy",
    "PyYAML",
    "cloudpickle",
    "submitit",
    "torch",
    "timm",
    "pandas",
    "pyarrow",
    "mlflow",
    "mlflow-skinny",
    "alembic",
    "SQLAlchemy",
    "Pillow",
    "av",
    "decord",
)
# Read when the interpreter or a native library starts: a job with other values cannot be a fork
STARTUP_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
)


def startup_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that take effect at interpreter or library start (``-u`` is per job)."""
    return {
        k: v
        for k, v in env.items()
        if (k.startswith("PYTHON") and k != "PYTHONUNBUFFERED") or k in STARTUP_ENV
    }


# ------------------------------------------------------------------------------------------ launcher side
def socket_dir() -> Path:
    """The private folder of this user's fork server sockets (created 0700; refused if not private)."""
    path = Path(os.environ.get(ENV_DIR) or f"/tmp/henasy-forkserver-{os.getuid()}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(
            f"{path} is not a private folder of this user (owner uid {info.st_uid}, mode "
            f"{oct(info.st_mode & 0o777)}); remove it or set {ENV_DIR} to another folder"
        )
    return path


def server_key() -> str:
    """Hash of what the server's imports depend on: interpreter, this code, library versions, startup env."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    code = hashlib.sha256(Path(__file__).read_bytes() + CLIENT.read_bytes()).hexdigest()
    env = sorted(startup_env(os.environ).items())
    blob = json.dumps([sys.executable, sys.version, code, versions, env, preload_list()])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def socket_path() -> Path:
    """Where this environment's server listens (AF_UNIX paths are limited to 107 bytes: keep it short)."""
    return socket_dir() / f"{server_key()}.sock"


def _listening(path: Path) -> bool:
    """A server accepts connections at ``path`` (it may still be importing; it answers after)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2.0)
        sock.connect(str(path))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def ensure_server(timeout_s: float = START_TIMEOUT_S) -> Path | None:
    """The socket of this environment's fork server, started now if none listens; None when switched off
    (``HENASY_FORKSERVER=0``) or when it cannot start (a line on stderr says why; jobs then start as usual).

    Returns once the server listens; it answers requests after its imports (seconds), so the first jobs
    wait for it instead of importing the same libraries themselves."""
    if os.environ.get(ENV_ENABLE) == "0":
        return None
    import subprocess

    # Launcher side only (``sweeps.launch`` imports this module as ``sweeps.forkserver``): the server script
    # never calls this function, so it still imports no project package at startup.
    from sweeps.manifest import file_lock

    try:
        path = socket_path()
        if _listening(path):
            return path
        with file_lock(path.with_suffix(".lock")):
            if _listening(path):
                return path
            log = path.with_suffix(".log")
            with open(log, "w") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-u", str(HERE / "forkserver.py"), "serve", str(path)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd="/",
                    start_new_session=True,
                    close_fds=True,
                )
            try:
                code = proc.wait(timeout_s)  # it exits once its detached copy listens
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = None
            if code != 0 or not _listening(path):
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                raise OSError(f"it did not start (exit code {code}; {log}: {' / '.join(tail) or 'empty'})")
    except OSError as err:
        print(
            f"bench: no fork server for local jobs, each starts a fresh interpreter ({err})", file=sys.stderr
        )
        return None
    return path


def python_command(path: Path) -> str:
    """submitit's ``python`` for jobs through the server at ``path``: the client script with the socket."""
    return shlex.join([sys.executable, "-I", "-S", str(CLIENT), str(path)])


def local_python() -> str | None:
    """The ``python`` command for local submitit jobs: through the fork server, or None (plain submitit)."""
    path = ensure_server()
    return None if path is None else python_command(path)


def server_status(path: Path, timeout_s: float = 60.0) -> dict[str, Any]:
    """The server's own report: pid, imported and failed modules, project modules loaded (must be none)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        send_message(sock, {"ping": True})
        reply, _ = recv_message(sock)
    return reply


def stop_servers(folder: Path) -> list[int]:
    """SIGTERM the servers whose sockets are in ``folder`` (tests, benchmarks); returns their pids. A server
    stops accepting at once and exits when its running jobs have ended."""
    stopped = []
    for log in sorted(Path(folder).glob("*.log")):
        with open(log, errors="replace") as handle:
            first = handle.readline()
        found = re.search(r"forkserver\[(\d+)\]: listening at (\S+)", first)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(HERE / "forkserver.py").encode() in cmdline and found.group(2).encode() in cmdline:
            _kill(pid, signal.SIGTERM)
            stopped.append(pid)
    return stopped


# ------------------------------------------------------------------------------------------- server side
def _log(text: str) -> None:
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} forkserver[{os.getpid()}]: {text}", file=sys.stderr, flush=True
    )


def _bind(path: Path) -> tuple[socket.socket, int]:
    """Listen at ``path`` (atomically replacing a stale socket file); returns the socket and its inode."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp))
    os.chmod(tmp, 0o600)
    sock.listen(128)
    os.replace(tmp, path)
    return sock, path.stat().st_ino


def preload_list() -> list[str]:
    """The modules the server imports: ``PRELOAD``, or the list in ``HENASY_FORKSERVER_PRELOAD``."""
    override = os.environ.get(ENV_PRELOAD)
    if override is None:
        return list(PRELOAD)
    return [name.strip() for name in override.split(",") if name.strip()]


def _preload() -> tuple[list[str], dict[str, str]]:
    loaded: list[str] = []
    failed: dict[str, str] = {}
    for name in preload_list():
        start = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as err:  # an optional library (av, decord, ...) or a broken one: jobs import it
            failed[name] = f"{type(err).__name__}: {err}"[:200]
            continue
        loaded.append(name)
        _log(f"imported {name} ({time.perf_counter() - start:.2f} s)")
    return loaded, failed


def project_modules() -> list[str]:
    """This project's modules in ``sys.modules`` (the server must have none: jobs import them from disk)."""
    return sorted(m for m in sys.modules if m.split(".")[0] in PROJECT_PACKAGES)


def _unsafe() -> str | None:
    """Why forking this process would not give a clean job, or None."""
    import threading

    if project_modules():
        return f"a library imported project modules ({', '.join(project_modules()[:5])})"
    if threading.active_count() != 1:
        return f"the imports started Python threads ({', '.join(t.name for t in threading.enumerate())})"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "the imports initialised CUDA"
    return None


@dataclass
class _Child:
    pid: int
    conn: socket.socket | None


@dataclass
class Request:
    """A job request, as the forked child receives it."""

    message: dict[str, Any]
    fds: list[int]


def _fresh_signals() -> None:
    """Signal dispositions of a freshly started interpreter."""
    signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


class Server:
    """The accept / fork / reap loop. ``loop()`` returns None in the server when it ends, a ``Request`` in
    a forked child (which then runs it at the top level of the script)."""

    def __init__(self, path: Path, listener: socket.socket, inode: int, idle_s: float) -> None:
        self.path, self.listener, self.inode, self.idle_s = path, listener, inode, idle_s
        self.startup_env = startup_env(os.environ)
        self.loaded: list[str] = []
        self.failed: dict[str, str] = {}
        self.children: dict[int, _Child] = {}
        self.stopping = False
        self.sel = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()

    def _stop(self, signum: int, _frame: Any) -> None:
        self.stopping = True

    def loop(self) -> Request | None:
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd hears of dead children
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        last_active = time.monotonic()
        accepting = True
        while True:
            for key, _ in self.sel.select(1.0):
                if key.data == "accept":
                    request = self._accept()
                    if request is not None:
                        return request  # in the forked child
                    last_active = time.monotonic()
                elif key.data == "wake":
                    try:
                        while os.read(self.wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    self._client_event(key.fileobj, key.data)  # type: ignore[arg-type]
            self._reap()
            now = time.monotonic()
            if self.children:
                last_active = now
            if accepting and (self.stopping or not self._own_socket()):
                _log("stopping: " + ("signal" if self.stopping else "socket file removed or replaced"))
                self.sel.unregister(self.listener)
                self.listener.close()
                accepting = False
            idle = now - last_active > self.idle_s
            if not self.children and (not accepting or idle):
                if accepting:
                    _log(f"idle for {self.idle_s:g} s: exiting")
                break
        self._remove_socket()
        return None

    def _own_socket(self) -> bool:
        try:
            return self.path.stat().st_ino == self.inode
        except OSError:
            return False

    def _remove_socket(self) -> None:
        if self._own_socket():
            self.path.unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "python": sys.executable,
            "loaded": self.loaded,
            "failed": self.failed,
            "project_modules": project_modules(),
            "threads": len(os.listdir("/proc/self/task")),
            "children": sorted(self.children),
        }

    def _accept(self) -> Request | None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return None
        fds: list[int] = []
        try:
            conn.setblocking(True)
            conn.settimeout(10.0)
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _peer_pid, uid, _gid = struct.unpack("3i", creds)
            if uid != os.getuid():
                _log(f"refused a connection of uid {uid}")
                conn.close()
                return None
            message, fds = recv_message(conn, maxfds=3)
            if message.get("ping"):
                send_message(conn, self.status())
                raise ProtocolError("ping answered")
            problem = self._problem(message, fds)
            if problem is not None:
                _log(f"refused a job: {problem}")
                send_message(conn, {"error": problem})
                raise ProtocolError(problem)
            if _closed(conn):  # the client gave up (and runs the job itself) while this request waited
                raise ProtocolError("client gone")
        except (OSError, ValueError, ProtocolError):
            for fd in fds:
                os.close(fd)
            conn.close()
            return None
        pid = os.fork()
        if pid == 0:
            self._become_child(conn)
            return Request(message, fds)
        for fd in fds:
            os.close(fd)
        child = _Child(pid, conn)
        self.children[pid] = child
        _log(f"job process {pid}: {shlex.join(message['argv'])} (cwd {message['cwd']})")
        try:
            send_message(conn, {"pid": pid})
        except OSError:
            self._client_gone(child)
            return None
        conn.setblocking(False)
        self.sel.register(conn, selectors.EVENT_READ, pid)
        return None

    def _problem(self, message: dict[str, Any], fds: list[int]) -> str | None:
        argv, env, cwd = message.get("argv"), message.get("env"), message.get("cwd")
        if len(fds) != 3:
            return f"expected stdin/stdout/stderr, got {len(fds)} descriptors"
        if (
            not isinstance(argv, list)
            or not all(isinstance(a, str) for a in argv)
            or not module_command(argv)
        ):
            return "the command is not [-u] -m MODULE ARGS..."
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            return "no environment"
        if not isinstance(cwd, str):
            return "no working directory"
        ours, theirs = self.startup_env, startup_env(env)
        differ = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        if differ:
            return f"the job's {', '.join(differ)} differ from the fork server's (read at interpreter start)"
        return None

    def _become_child(self, conn: socket.socket) -> None:
        """In the forked child: drop everything of the server."""
        _fresh_signals()
        conn.close()
        for child in self.children.values():
            if child.conn is not None:
                child.conn.close()
        self.sel.close()
        self.listener.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.children = {}

    def _client_event(self, conn: socket.socket, pid: int) -> None:
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            child = self.children.get(pid)
            if child is not None:
                self._client_gone(child)

    def _detach(self, child: _Child) -> socket.socket | None:
        """Take ``child``'s client connection off the selector and the child; None when it has none."""
        conn, child.conn = child.conn, None
        if conn is not None:
            try:
                self.sel.unregister(conn)
            except (KeyError, ValueError):
                pass
        return conn

    def _client_gone(self, child: _Child) -> None:
        """The client of a running child went away (killed): end the child too."""
        conn = self._detach(child)
        if conn is not None:
            conn.close()
        _log(f"the client of job process {child.pid} went away: SIGKILL")
        _kill(child.pid, signal.SIGKILL)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            child = self.children.pop(pid, None)
            _log(f"job process {pid} ended: " + (f"exit code {code}" if code >= 0 else f"signal {-code}"))
            conn = self._detach(child) if child is not None else None
            if conn is None:
                continue
            try:
                conn.setblocking(True)
                send_message(conn, {"exit": code} if code >= 0 else {"signal": -code})
            except OSError:
                pass
            conn.close()


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _closed(conn: socket.socket) -> bool:
    """The peer closed its end (a pending EOF after the request)."""
    conn.setblocking(False)
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    finally:
        conn.setblocking(True)


# --------------------------------------------------------------------------------------- in the child
def _stdio(fd: int, mode: str, unbuffered: bool, like: Any) -> io.TextIOWrapper:
    """A ``sys.std*`` object on ``fd`` as the interpreter makes it (``-u``: no buffer, write-through)."""
    raw = io.FileIO(fd, mode, closefd=False)
    buffered = mode == "rb" or not unbuffered
    stream: Any = (io.BufferedReader if mode == "rb" else io.BufferedWriter)(raw) if buffered else raw
    return io.TextIOWrapper(
        stream,
        encoding=getattr(like, "encoding", None) or "utf-8",
        errors=getattr(like, "errors", None) or "strict",
        line_buffering=fd == 2 or (fd == 1 and os.isatty(fd)),
        write_through=not buffered,
    )


def run_request(request: Request) -> None:
    """In the forked child: become the job process the client asked for, and run its module."""
    import runpy

    message = request.message
    unbuffered, module, args = module_command(message["argv"])  # type: ignore[misc]
    for target, fd in enumerate(request.fds):
        os.dup2(fd, target)
    for fd in request.fds:
        if fd > 2:
            os.close(fd)
    os.chdir(message["cwd"])
    os.umask(int(message.get("umask", 0o22)))
    try:
        os.sched_setaffinity(0, message.get("affinity") or os.sched_getaffinity(0))
    except (OSError, ValueError):
        pass
    os.environ.clear()
    os.environ.update(message["env"])
    sys.stdin = sys.__stdin__ = _stdio(0, "rb", unbuffered, sys.__stdin__)
    sys.stdout = sys.__stdout__ = _stdio(1, "wb", unbuffered, sys.__stdout__)
    sys.stderr = sys.__stderr__ = _stdio(2, "wb", unbuffered, sys.__stderr__)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # a fresh interpreter seeds NumPy's global generator from the OS
    sys.path.insert(0, message["cwd"])  # what `python -m` puts first
    importlib.invalidate_caches()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def serve_main(argv: list[str]) -> Request | None:
    """``forkserver.py serve SOCKET``: bind, detach, import, serve; a forked child gets its ``Request``."""
    if len(argv) != 2 or argv[0] != "serve":
        print("usage: forkserver.py serve SOCKET", file=sys.stderr)
        raise SystemExit(2)
    if sys.path and os.path.realpath(sys.path[0]) == str(HERE):
        sys.path.pop(0)  # this script's folder (sweeps/): jobs must not import its files as top-level modules
    os.chdir("/")
    path = Path(argv[1])
    idle_s = float(os.environ.get(ENV_IDLE) or DEFAULT_IDLE_S)
    listener, inode = _bind(path)
    if os.fork() != 0:
        os._exit(0)  # the launcher waits for this process; the server goes on in its own session
    os.setsid()
    server = Server(path, listener, inode, idle_s)
    _log(f"listening at {path} ({sys.executable}, idle exit after {idle_s:g} s)")
    start = time.perf_counter()
    server.loaded, server.failed = _preload()
    for name, why in server.failed.items():
        _log(f"not imported {name}: {why}")
    _log(f"imports done in {time.perf_counter() - start:.2f} s; native threads: {server.status()['threads']}")
    problem = _unsafe()
    if problem is not None:
        _log(f"cannot serve: {problem}")
        server._remove_socket()
        raise SystemExit(1)
    return server.loop()


def run_and_exit(request: Request) -> NoReturn:
    """Run the job, then exit as the interpreter would — status, traceback, thread joins, ``atexit``, flushed
    stdio — but through ``os._exit``: tearing down the inherited modules would take seconds (a forked child's
    exit measured 0.66 s after ``import torch``, 1.3 s after timm, 2 s with all of ``PRELOAD``)."""
    import atexit
    import threading
    import traceback

    code, interrupted = 0, False
    try:
        run_request(request)
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        interrupted = True
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    for step in (getattr(threading, "_shutdown", None), atexit._run_exitfuncs):
        try:
            if step is not None:
                step()  # threading._shutdown: join non-daemon threads, as the interpreter does at exit
        except BaseException:
            traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if interrupted:  # an uncaught KeyboardInterrupt ends the interpreter by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _exit_code(value: Any) -> int:
    """``SystemExit(value)`` → exit status as the interpreter maps it (None: 0; a non-int is printed: 1)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    try:
        print(value, file=sys.stderr)
    except (OSError, ValueError):
        pass
    return 1


if __name__ == "__main__":
    _request = serve_main(sys.argv[1:])
    if _request is not None:
        run_and_exit(_request)
