"""Sweeps on the local and debug executors: submit, manifest, MLflow, failure reports, kill → resume with the
same final weights as an uninterrupted run, reruns that submit nothing, and a resumable Optuna search.

Rows train ``lavila_tiny`` for a few steps on the tiny synthetic set without benchmarks (the benchmark
runner is exercised by its own tests; a result record is complete once every requested benchmark is in).
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from henasy.cli import main
from sweeps import records
from sweeps.manifest import read_manifest
from sweeps.tracking import client

SPEC = """
name: test/local
table: 9
base:
  model: lavila_tiny
  benchmarks: []
scales:
  smoke:
    overrides: {trainer.epochs: 4, trainer.max_steps: 4, trainer.batch_size: 8, trainer.checkpoint_every: 2}
    resources: {cpus_per_task: 1, timeout_min: 10}
rows:
  - label: short
    overrides: {trainer.seed: 1}
  - label: bad
    overrides: {model.no_such_option: 1}
  - label: long
    overrides: {trainer.max_steps: 12, trainer.seed: 2}
"""

SEARCH = """
name: test/search
base:
  model: lavila_tiny
  benchmarks: []
scales:
  smoke:
    overrides: {trainer.epochs: 1, trainer.max_steps: 2, trainer.batch_size: 8}
search:
  objective: train.final_loss
  direction: minimize
  n_trials: 2
  sampler: random
  space:
    trainer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
"""


def wait_for(what: str, predicate: Callable[[], bool], limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def kill_job(job_id: str) -> None:
    """SIGKILL a local submitit job: its task processes first, then the controller (job id = its pid)."""
    pid = int(job_id)
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)["model"]


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "spec.yaml").write_text(textwrap.dedent(SPEC))
    (tmp_path / "search.yaml").write_text(textwrap.dedent(SEARCH))
    return tmp_path


def test_local_sweep_reports_failures_and_resumes_a_killed_job(
    workdir: Path, synth_tiny: Path, capsys: pytest.CaptureFixture
) -> None:
    data = ["--data", str(synth_tiny)]
    assert main(["sweep", "spec.yaml", *data, "--detach", "--only", "bad", "--only", "long"]) == 0
    sweep_dir = workdir / "runs" / "test" / "local" / "smoke"
    manifest = read_manifest(sweep_dir)
    runs = {e["label"]: (run_id, e) for run_id, e in manifest["runs"].items()}
    assert set(runs) == {"bad", "long"} and all(e["executor"] == "local" for _, e in runs.values())
    long_id, long_entry = runs["long"]
    long_dir = Path(long_entry["run_dir"])

    # Kill the long job half-way (after a checkpoint), like a node dying: no chance to clean up.
    wait_for("a mid-training checkpoint", lambda: records.read_state(long_dir).get("step", 0) >= 6)
    kill_job(long_entry["job_id"])
    wait_for("the other jobs to end", lambda: all(not e["job_id"] or _ended(e) for _, e in runs.values()))

    assert main(["status", "spec.yaml"]) == 1
    out = capsys.readouterr().out
    assert "2 failed" in out
    assert "unknown LaViLa option" in out or "no_such_option" in out  # the bad row's error tail
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    long_mlflow = json.loads((long_dir / "mlflow.json").read_text())["run_id"]
    assert client(uri).get_run(long_mlflow).info.status == "FAILED"  # killed: not left RUNNING
    bad_mlflow = json.loads((Path(runs["bad"][1]["run_dir"]) / "mlflow.json").read_text())["run_id"]
    assert client(uri).get_run(bad_mlflow).data.tags["bench.failure"]

    # Rerun: only the unfinished row is submitted; it resumes from its checkpoint and finishes.
    assert main(["sweep", "spec.yaml", *data, "--only", "long"]) == 0
    assert "submitted 1 job(s)" in capsys.readouterr().out
    summary = json.loads((long_dir / "summary.json").read_text())
    assert 4 <= summary["resumed_from_step"] < 12 and summary["step"] == 12
    run = client(uri).get_run(long_mlflow)
    assert run.info.status == "FINISHED"
    history = sorted((m.step, m.value) for m in client(uri).get_metric_history(long_mlflow, "train.loss"))
    assert [s for s, _ in history] == list(range(1, 13))  # each step exactly once

    # Same weights and metrics as an uninterrupted run of the same config (same run id, another folder).
    ref_dir = workdir / "reference"
    assert main(["sweep", "spec.yaml", *data, "--only", "long", "--executor", "debug", "--out", str(ref_dir), "--no-tracking"]) == 0
    reference, resumed = weights(ref_dir / long_id), weights(long_dir)
    assert reference.keys() == resumed.keys()
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    ref_losses = [(r["step"], r["loss"]) for r in _rows(ref_dir / long_id)]
    assert history == ref_losses
    ref_result = records.read_result(ref_dir / long_id)
    assert records.read_result(long_dir)["metrics"] == ref_result["metrics"]

    # A second run of the finished row submits nothing.
    assert main(["sweep", "spec.yaml", *data, "--only", "long"]) == 0
    assert "submitted 0 job(s)" in capsys.readouterr().out


def _ended(entry: dict) -> bool:
    from sweeps.executors import ENDED, local_state

    return local_state(str(entry["job_id"])) == ENDED


def _rows(run_dir: Path) -> list[dict]:
    from henasy.training.callbacks import read_metrics

    return [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("event") != "epoch_end"]


def test_debug_executor_force_and_a_resumable_optuna_search(
    workdir: Path, synth_tiny: Path, capsys: pytest.CaptureFixture
) -> None:
    data = ["--data", str(synth_tiny), "--executor", "debug"]
    assert main(["sweep", "spec.yaml", *data, "--only", "short"]) == 0
    run_id, entry = next(iter(read_manifest(workdir / "runs" / "test" / "local" / "smoke")["runs"].items()))
    first = records.read_result(entry["run_dir"])
    assert first["complete"] and first["run_id"] == run_id and first["train"]["step"] == 4
    assert main(["sweep", "spec.yaml", *data, "--only", "short", "--force"]) == 0
    assert "submitted 1 job(s)" in capsys.readouterr().out
    assert records.read_result(entry["run_dir"])["finished_at"] > first["finished_at"]

    assert main(["sweep", "search.yaml", *data]) == 0
    out = capsys.readouterr().out
    assert "2 complete, 0 failed" in out and "best trial" in out
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlc = client(uri)
    trials = mlc.search_runs([mlc.get_experiment_by_name("test/search").experiment_id])
    assert sorted(r.data.tags["bench.optuna_trial"] for r in trials) == ["0", "1"]
    assert {r.info.status for r in trials} == {"FINISHED"}
    best = min(trials, key=lambda r: r.data.metrics["train.final_loss"])
    assert f"train.final_loss = {best.data.metrics['train.final_loss']:.4f}" in out
    assert main(["sweep", "search.yaml", *data, "--trials", "3"]) == 0  # the study resumes: one more trial
    assert "3 complete, 0 failed" in capsys.readouterr().out
