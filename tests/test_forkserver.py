"""The fork server of local sweep jobs (``sweeps.forkserver``, client ``sweeps.forkclient``).

A child runs with the client's environment, working directory, argv and stdio; exit codes and signal deaths
come back; signals sent to the client reach the child; a SIGKILLed client takes its child along; without a
server (or switched off, or with an environment the server cannot serve) the client runs the command itself;
the server never holds project modules; it exits when idle; submitit's local executor runs jobs through it.
Servers here live in the test's own folder, import only a few modules (fast start; one test uses the full
list) and are stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest

from sweeps import forkserver
from sweeps.forkclient import ENV_ENABLE

LIGHT = "numpy,submitit.core.submission"
PROBE = """
import json, os, signal, sys, time
out = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "exit"
ours = ("henasy", "sweeps", "benchmarks", "baselines", "reports")
project = sorted(m for m in sys.modules if m.split(".")[0] in ours)
info = {"argv": sys.argv, "cwd": os.getcwd(), "probe": os.environ.get("PROBE"), "path0": sys.path[0],
        "ppid": os.getppid(), "pid": os.getpid(), "project": project, "numpy": "numpy" in sys.modules}
with open(out, "w") as f:
    json.dump(info, f)
print("to stdout")
print("to stderr", file=sys.stderr)
if mode == "exit":
    sys.exit(int(sys.argv[3]))
if mode == "raise":
    raise RuntimeError("boom from the probe")
if mode == "message":
    sys.exit("a message instead of a code")
if mode == "die":
    os.kill(os.getpid(), signal.SIGTERM)
if mode == "signals":
    def note(signum, frame):
        with open(out + "." + signal.Signals(signum).name, "w") as f:
            f.write("got it")
        if signum == signal.SIGTERM:
            sys.exit(5)
    signal.signal(signal.SIGUSR2, note)
    signal.signal(signal.SIGTERM, note)
if mode in ("signals", "sleep"):
    open(out + ".ready", "w").close()
    time.sleep(60)
"""


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def start_server(folder: Path, preload: str | None, idle_s: float = 60.0) -> tuple[Path, int]:
    """A server with its socket in ``folder``; (socket, pid) once it answers."""
    env = {forkserver.ENV_DIR: str(folder), forkserver.ENV_IDLE: str(idle_s)}
    if preload is not None:
        env[forkserver.ENV_PRELOAD] = preload
    with mock.patch.dict(os.environ, env):  # restored afterwards, ENV_PRELOAD included
        if preload is None:
            os.environ.pop(forkserver.ENV_PRELOAD, None)
        path = forkserver.ensure_server()
        assert path is not None and path.parent == folder
        status = forkserver.server_status(path)
    return path, int(status["pid"])


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    folder = tmp_path_factory.mktemp("fs")
    path, pid = start_server(folder, LIGHT)
    yield path, pid
    forkserver.stop_servers(folder)
    wait_for("the server to stop", lambda: gone(pid), timeout=10)


@pytest.fixture()
def probe_dir(tmp_path: Path) -> Path:
    """A working directory holding the probe module (``python -m probe`` finds it there)."""
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE))
    return tmp_path


def client_cmd(socket_path: Path | str, *args: str) -> list[str]:
    return [sys.executable, "-I", "-S", str(forkserver.CLIENT), str(socket_path), "-u", "-m", "probe", *args]


def run_client(
    socket_path: Path | str, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, dict]:
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.run(
            client_cmd(socket_path, str(cwd / "info.json"), *args),
            cwd=cwd,
            env=env or dict(os.environ),
            stdout=stdout,
            stderr=stderr,
            timeout=60,
        )
    proc.stdout, proc.stderr = out.read_text(), err.read_text()
    return proc, json.loads((cwd / "info.json").read_text())


def test_child_runs_with_the_clients_env_cwd_argv_and_stdio(
    server: tuple[Path, int], probe_dir: Path
) -> None:
    path, server_pid = server
    proc, info = run_client(path, probe_dir, "exit", "0", env={**os.environ, "PROBE": "from the client"})
    assert proc.returncode == 0
    assert info["ppid"] == server_pid  # a fork of the server, not a fresh interpreter
    assert info["numpy"]  # pre-imported
    assert info["probe"] == "from the client"
    assert info["cwd"] == str(probe_dir) and info["path0"] == str(probe_dir)  # as `python -m` has it
    assert info["argv"] == [str(probe_dir / "probe.py"), str(probe_dir / "info.json"), "exit", "0"]
    assert proc.stdout == "to stdout\n" and proc.stderr == "to stderr\n"


@pytest.mark.parametrize(
    ("args", "code", "in_stderr"),
    [
        (("exit", "0"), 0, ""),
        (("exit", "3"), 3, ""),
        (("raise",), 1, "RuntimeError: boom from the probe"),
        (("message",), 1, "a message instead of a code"),
        (("die",), -signal.SIGTERM, ""),  # killed by a signal: the client dies of the same signal
    ],
)
def test_exit_status_comes_back(
    server: tuple[Path, int], probe_dir: Path, args: tuple[str, ...], code: int, in_stderr: str
) -> None:
    proc, info = run_client(server[0], probe_dir, *args)
    assert info["ppid"] == server[1]
    assert proc.returncode == code
    assert in_stderr in proc.stderr


def test_signals_sent_to_the_client_reach_the_child(server: tuple[Path, int], probe_dir: Path) -> None:
    out = probe_dir / "info.json"
    proc = subprocess.Popen(client_cmd(server[0], str(out), "signals"), cwd=probe_dir)
    try:
        wait_for("the child to start", (probe_dir / "info.json.ready").exists)
        proc.send_signal(signal.SIGUSR2)  # submitit's preemption / time-out signal
        wait_for("USR2 in the child", (probe_dir / "info.json.SIGUSR2").exists)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 5  # the child's SIGTERM handler exits with 5
    finally:
        proc.kill()
    assert (probe_dir / "info.json.SIGTERM").read_text() == "got it"
    assert json.loads(out.read_text())["ppid"] == server[1]


def test_a_killed_client_takes_its_child_along(server: tuple[Path, int], probe_dir: Path) -> None:
    out = probe_dir / "info.json"
    proc = subprocess.Popen(client_cmd(server[0], str(out), "sleep"), cwd=probe_dir)
    try:
        wait_for("the child to start", (probe_dir / "info.json.ready").exists)
        child = json.loads(out.read_text())["pid"]
        assert child != proc.pid and not gone(child)
        proc.kill()
        proc.wait(timeout=20)
        wait_for("the child to be killed", lambda: gone(child), timeout=5)
    finally:
        proc.kill()


def test_without_a_server_the_client_runs_the_command_itself(probe_dir: Path) -> None:
    proc, info = run_client(probe_dir / "no-server.sock", probe_dir, "exit", "4")
    assert proc.returncode == 4 and proc.stdout == "to stdout\n"
    assert info["ppid"] == os.getpid()  # the client exec'd the interpreter: same process, our child
    assert not info["numpy"]


def test_switched_off_or_foreign_environment_runs_the_command_itself(
    server: tuple[Path, int], probe_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, info = run_client(server[0], probe_dir, "exit", "0", env={**os.environ, ENV_ENABLE: "0"})
    assert info["ppid"] == os.getpid()
    # PYTHONHASHSEED takes effect at interpreter start: the server refuses, the client runs it itself
    proc, info = run_client(server[0], probe_dir, "exit", "2", env={**os.environ, "PYTHONHASHSEED": "123"})
    assert proc.returncode == 2 and info["ppid"] == os.getpid()
    log = server[0].with_suffix(".log").read_text()
    assert "refused a job: the job's PYTHONHASHSEED differ" in log
    monkeypatch.setenv(ENV_ENABLE, "0")
    assert forkserver.local_python() is None  # the launcher then leaves submitit's command as it is


def test_the_full_server_holds_no_project_module(tmp_path: Path, probe_dir: Path) -> None:
    """The real pre-import list: torch, MLflow and its SQLite store, ... but nothing of this project, so jobs
    import this project's code from disk (the server checks this and CUDA's state before it serves)."""
    folder = tmp_path / "full"
    folder.mkdir(mode=0o700)
    path, pid = start_server(folder, None)
    try:
        status = forkserver.server_status(path)
        assert status["project_modules"] == []
        assert {"torch", "mlflow", "mlflow.store.tracking.sqlalchemy_store", "submitit"} <= set(
            status["loaded"]
        )
        _, info = run_client(path, probe_dir, "exit", "0")
        assert info["ppid"] == pid and info["project"] == []
    finally:
        forkserver.stop_servers(folder)
    wait_for("the server to stop", lambda: gone(pid), timeout=10)


def test_an_idle_server_exits_and_removes_its_socket(tmp_path: Path) -> None:
    folder = tmp_path / "idle"
    folder.mkdir(mode=0o700)
    path, pid = start_server(folder, "", idle_s=0.3)
    wait_for("the idle server to exit", lambda: gone(pid), timeout=10)
    assert not path.exists()
    assert "idle for 0.3 s: exiting" in path.with_suffix(".log").read_text()


def test_ensure_server_reuses_a_running_server(
    server: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(forkserver.ENV_DIR, str(server[0].parent))
    monkeypatch.setenv(forkserver.ENV_PRELOAD, LIGHT)
    assert forkserver.ensure_server() == server[0]
    assert forkserver.server_status(server[0])["pid"] == server[1]
    assert len(list(server[0].parent.glob("*.log"))) == 1


def test_the_local_executor_runs_jobs_through_the_server(server: tuple[Path, int], tmp_path: Path) -> None:
    from sweeps.executors import make_executor
    from sweeps.spec import Resources

    python = forkserver.python_command(server[0])
    ex = make_executor(
        "local", tmp_path / "%j", Resources(timeout_min=2), max_parallel=1, name="t", local_python=python
    )
    job = ex.submit(os.getppid)  # runs in the job process: its parent is the server
    assert job.result() == server[1]
