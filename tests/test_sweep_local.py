"""Sweeps on the local and debug executors: submit, manifest, MLflow, failure reports, kill → resume with the
same final weights as an uninterrupted run, reruns that submit nothing, and a resumable Optuna search.

Rows train ``lavila_tiny`` for a few steps on the tiny synthetic set and evaluate EgoMCQ on its first items
(records marked partial); the search trains only (objective: the final training loss).
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path

import pytest
import torch
from sweep_support import reference_sweep, wait_for, weights

from henasy.cli import main
from sweeps import records
from sweeps.manifest import read_manifest
from sweeps.tracking import client

SPEC = """
name: test/local
table: 9
base:
  model: lavila_tiny
  benchmarks: [egomcq]
  eval: {limit: 8, batch_size: 8, num_workers: 0}
scales:
  smoke:
    overrides: {trainer.epochs: 4, trainer.max_steps: 4, trainer.batch_size: 8, trainer.checkpoint_every: 2}
    resources: {cpus_per_task: 1, timeout_min: 10}
rows:
  - label: short
    overrides: {trainer.seed: 1}
  - label: bad  # valid (so the sweep starts), but its job stops early and fails
    overrides: {trainer.stop_after_steps: 1}
  - label: long
    overrides: {trainer.max_steps: 16, trainer.seed: 2, trainer.checkpoint_every: 3}
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


def kill_job(job_id: str) -> None:
    """SIGKILL a local submitit job: its task processes first, then the controller (job id = its pid)."""
    pid = int(job_id)
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


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
    assert main(["sweep", "spec.yaml", *data, "--detach", "--only", "long"]) == 0
    sweep_dir = workdir / "runs" / "test" / "local" / "smoke"
    manifest = read_manifest(sweep_dir)
    runs = {e["label"]: (run_id, e) for run_id, e in manifest["runs"].items()}
    assert set(runs) == {"long"} and runs["long"][1]["executor"] == "local"
    long_id, long_entry = runs["long"]
    long_dir = Path(long_entry["run_dir"])

    # Preempt it (USR2, as SLURM does before a time limit): submitit calls SweepJob.checkpoint, the job
    # exits for requeue and its controller restarts it, resuming from the last checkpoint.
    job_id = long_entry["job_id"]
    wait_for("a mid-training checkpoint", lambda: records.read_state(long_dir).get("step", 0) >= 4)
    task = Path(f"/proc/{job_id}/task/{job_id}/children").read_text().split()[0]
    os.kill(int(task), signal.SIGUSR2)
    wait_for("the requeued job to resume", lambda: records.read_state(long_dir).get("resumed") is True)
    assert records.read_state(long_dir)["step"] >= 4  # saved at the signal, not back to the last checkpoint
    log = (sweep_dir / "submitit" / job_id / f"{job_id}_0_log.out").read_text()
    assert (
        "Calling checkpoint method" in log and "Requeued job" in log and "triggered an exception" not in log
    )

    # Then kill it half-way, like a node dying: no chance to clean up.
    wait_for("a later checkpoint", lambda: records.read_state(long_dir).get("step", 0) >= 8)
    kill_job(job_id)
    wait_for("the killed job to be gone", lambda: _ended(long_entry))

    assert main(["status", "spec.yaml"]) == 1
    out = capsys.readouterr().out
    assert "1 failed" in out and "job ended without a result" in out
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    long_mlflow = json.loads((long_dir / "mlflow.json").read_text())["run_id"]
    assert client(uri).get_run(long_mlflow).info.status == "FAILED"  # killed: not left RUNNING

    # Rerun: only the unfinished row is submitted; it resumes from its checkpoint and finishes.
    assert main(["sweep", "spec.yaml", *data, "--only", "long"]) == 0
    assert "submitted 1 job(s)" in capsys.readouterr().out
    summary = json.loads((long_dir / "summary.json").read_text())
    assert 6 <= summary["resumed_from_step"] < 16 and summary["step"] == 16
    run = client(uri).get_run(long_mlflow)
    assert run.info.status == "FINISHED"
    history = sorted((m.step, m.value) for m in client(uri).get_metric_history(long_mlflow, "train.loss"))
    assert [s for s, _ in history] == list(range(1, 17))  # each step exactly once, over three attempts

    # Same weights and metrics as an uninterrupted run of the same config (same run id, another folder).
    ref_dir = workdir / "reference"
    assert reference_sweep(data, ref_dir) == 0
    reference, resumed = weights(ref_dir / long_id), weights(long_dir)
    assert reference.keys() == resumed.keys()
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    ref_losses = [(r["step"], r["loss"]) for r in _rows(ref_dir / long_id)]
    assert history == ref_losses
    ref_result, result = records.read_result(ref_dir / long_id), records.read_result(long_dir)
    assert result["metrics"] == ref_result["metrics"] and {"egomcq.inter", "egomcq.intra"} <= set(
        result["metrics"]
    )
    assert run.data.metrics["egomcq.intra"] == result["metrics"]["egomcq.intra"]

    # A second run of the finished row submits nothing.
    assert main(["sweep", "spec.yaml", *data, "--only", "long"]) == 0
    assert "submitted 0 job(s)" in capsys.readouterr().out


def _ended(entry: dict) -> bool:
    from sweeps.executors import ENDED, local_state

    return local_state(str(entry["job_id"])) == ENDED


def _rows(run_dir: Path) -> list[dict]:
    from henasy.training.callbacks import read_metrics

    return [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("event") != "epoch_end"]


def test_debug_executor_failure_force_and_a_resumable_optuna_search(
    workdir: Path, synth_tiny: Path, capsys: pytest.CaptureFixture
) -> None:
    data = ["--data", str(synth_tiny), "--executor", "debug"]
    assert main(["sweep", "spec.yaml", *data, "--only", "bad"]) == 1
    out = capsys.readouterr().out
    assert "1 failed" in out and "BenchError: training of run" in out  # the error tail
    assert main(["status", "spec.yaml"]) == 1
    assert "stop_after_steps" in capsys.readouterr().out
    bad_dir = next(iter(read_manifest(workdir / "runs" / "test" / "local" / "smoke")["runs"].values()))[
        "run_dir"
    ]
    bad_mlflow = json.loads((Path(bad_dir) / "mlflow.json").read_text())["run_id"]
    failed = client(f"sqlite:///{workdir / 'mlflow.db'}").get_run(bad_mlflow)
    assert failed.info.status == "FAILED" and "stop_after_steps" in failed.data.tags["bench.failure"]

    assert main(["sweep", "spec.yaml", *data, "--only", "short"]) == 0
    run_id, entry = next(
        (r, e)
        for r, e in read_manifest(workdir / "runs" / "test" / "local" / "smoke")["runs"].items()
        if e["label"] == "short"
    )
    first = records.read_result(entry["run_dir"])
    statuses = {
        e["label"]: e["status"]
        for e in read_manifest(workdir / "runs" / "test" / "local" / "smoke")["runs"].values()
    }
    assert statuses == {"short": "finished", "bad": "failed"}
    assert first["complete"] and first["run_id"] == run_id and first["train"]["step"] == 4
    assert [r["benchmark"] for r in first["records"]] == ["egomcq"] and first["records"][0]["partial"]
    assert records.read_json(records.eval_record_path(entry["run_dir"], "egomcq"))[0]["n_items"] == 8
    assert main(["sweep", "spec.yaml", *data, "--only", "short", "--force"]) == 0
    assert "submitted 1 job(s)" in capsys.readouterr().out
    assert records.read_result(entry["run_dir"])["finished_at"] > first["finished_at"]

    # A result that never reached a tracking store is replayed by `bench sync` (here: into a fresh store).
    other = f"sqlite:///{workdir / 'other.db'}"
    assert main(["sync", "spec.yaml", "--tracking-uri", other]) == 0
    assert "1 run(s) synced" in capsys.readouterr().out
    replayed = client(other).search_runs([client(other).get_experiment_by_name("test/local").experiment_id])
    assert [(r.data.tags["bench.row"], r.info.status) for r in replayed] == [("short", "FINISHED")]
    assert (
        replayed[0].data.metrics["egomcq.intra"]
        == records.read_result(entry["run_dir"])["metrics"]["egomcq.intra"]
    )
    assert main(["status"]) == 0 and "test/local [smoke]" in capsys.readouterr().out

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
