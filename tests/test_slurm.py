"""Sweeps on a real SLURM cluster (``scripts/slurm_local.sh start``; .ci/run starts it and sets
HENASY_REQUIRE_SLURM=1): a job array, a requeued running job that resumes and ends with the weights of an
uninterrupted run, a failing job whose error is reported, a 2-task DDP job, and a two-stage pipeline submitted at
once with ``afterok`` whose killed stage blocks the row until a rerun completes both.

Requeue procedure (probed on the local cluster, scripts/slurm_local.sh): ``scontrol requeue`` (the job is killed: submitit
ignores SIGTERM, slurmd SIGKILLs it after KillWait, 2 s on the local cluster), then once it is pending with ``Reason=BeginTime`` wait
~3 s and pull it in with ``scontrol update JobId=… StartTime=now`` (at once fails: "Job credential revoked").
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import torch
from sweep_support import reference_sweep, wait_for

from henasy.cli import main
from sweeps import records
from sweeps.executors import slurm_problem, slurm_states
from sweeps.manifest import read_manifest
from sweeps.tracking import client

pytestmark = pytest.mark.slurm
LOCAL_CONF = Path(os.environ.get("HENASY_SLURM_DIR", "/tmp/henasy-slurm")) / "etc" / "slurm.conf"

SPEC = """
name: test/slurm
table: 9
base:
  model: lavila_tiny
  benchmarks: [egomcq]
  eval: {limit: 8, batch_size: 8, num_workers: 0}
scales:
  smoke:
    overrides: {trainer.epochs: 7, trainer.max_steps: 40, trainer.batch_size: 8, trainer.checkpoint_every: 2}
    resources: {cpus_per_task: 1, timeout_min: 15, mem_gb: 3}
rows:
  - label: long
    overrides: {trainer.seed: 3}
  - label: bad  # valid (so the sweep starts), but its job stops early and fails
    overrides: {trainer.stop_after_steps: 1}
"""

DDP = """
name: test/slurm-ddp
base:
  model: lavila_tiny
  benchmarks: []
scales:
  smoke:
    overrides: {trainer.epochs: 1, trainer.max_steps: 3, trainer.batch_size: 8}
    resources: {nodes: 1, tasks_per_node: 2, cpus_per_task: 1, timeout_min: 15, mem_gb: 4}
rows:
  - label: ddp
"""


PIPELINE = """
name: test/slurm-stages
base:
  model: henasy_tiny
  benchmarks: []
  overrides:
    model.lavila_checkpoint: {stage: pretrain, output: checkpoint}
stages:
  pretrain:
    model: lavila_tiny
scales:
  smoke:
    overrides: {trainer.epochs: 1, trainer.max_steps: 2, trainer.batch_size: 4}
    resources: {cpus_per_task: 1, timeout_min: 15, mem_gb: 3}
    stages:
      pretrain:
        overrides: {trainer.epochs: 9, trainer.max_steps: 60, trainer.batch_size: 4, trainer.checkpoint_every: 2}
rows:
  - label: row
"""


@pytest.fixture(scope="module")
def slurm() -> None:
    """A usable SLURM cluster: fail (never skip) when there is none."""
    if "SLURM_CONF" not in os.environ and LOCAL_CONF.is_file():
        os.environ["SLURM_CONF"] = str(LOCAL_CONF)
    problem = slurm_problem()
    if problem:
        pytest.fail(
            f"SLURM is not usable ({problem}). Start the local cluster with `scripts/slurm_local.sh start` "
            "(and export SLURM_CONF as it prints), or deselect these tests with -m 'not slurm'."
        )


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "spec.yaml").write_text(textwrap.dedent(SPEC))
    (tmp_path / "ddp.yaml").write_text(textwrap.dedent(DDP))
    (tmp_path / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE))
    return tmp_path


def squeue_state(job_id: str) -> tuple[str, str]:
    out = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i|%T|%r"], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        job, state, reason = line.split("|")
        if job == job_id:
            return state, reason
    return "", ""


def test_slurm_sweep_requeue_resumes_and_failure_is_reported(
    slurm: None, workdir: Path, synth_tiny: Path, capsys: pytest.CaptureFixture
) -> None:
    data = ["--data", str(synth_tiny)]
    assert main(["sweep", "spec.yaml", *data, "--executor", "slurm", "--detach"]) == 0
    sweep_dir = workdir / "runs" / "test" / "slurm" / "smoke"
    runs = {e["label"]: (run_id, e) for run_id, e in read_manifest(sweep_dir)["runs"].items()}
    long_id, long_entry = runs["long"]
    job = long_entry["job_id"]
    assert "_" in job and long_entry["executor"] == "slurm"  # one job array for the sweep
    long_dir = Path(long_entry["run_dir"])

    # last.pt itself, not state.json: the trainer reports a step before it saves that step's checkpoint
    wait_for("a first checkpoint", lambda: (long_dir / "last.pt").is_file())
    subprocess.run(["scontrol", "requeue", job], check=True)
    wait_for("the requeued job to pend", lambda: squeue_state(job) == ("PENDING", "BeginTime"), limit_s=60)
    time.sleep(3)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    wait_for(
        "the resumed job to finish",
        lambda: records.read_state(long_dir).get("phase") == "finished",
        limit_s=150,
    )

    summary = json.loads((long_dir / "summary.json").read_text())
    assert 2 <= summary["resumed_from_step"] < 40 and summary["step"] == 40
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow_run = json.loads((long_dir / "mlflow.json").read_text())["run_id"]
    wait_for(
        "MLflow to show the run finished",
        lambda: client(uri).get_run(mlflow_run).info.status == "FINISHED",
        30,
    )
    steps = sorted(m.step for m in client(uri).get_metric_history(mlflow_run, "train.loss"))
    assert steps == list(range(1, 41))  # one MLflow run across the requeue, each step once

    # The failing row: FAILED in SLURM's accounting, its error in `bench status`.
    bad_job = runs["bad"][1]["job_id"]
    wait_for(
        "sacct to record the failure",
        lambda: slurm_states([bad_job]).get(bad_job, ("", ""))[1] == "FAILED",
        30,
    )
    assert main(["status", "spec.yaml"]) == 1
    out = capsys.readouterr().out
    assert "1 finished" in out and "1 failed" in out and "stop_after_steps" in out

    # Same weights as an uninterrupted run of the same config (in-process, same run id).
    ref = workdir / "reference"
    assert reference_sweep(data, ref) == 0
    a = torch.load(ref / long_id / "last.pt", weights_only=True)["model"]
    b = torch.load(long_dir / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    metrics = records.read_result(long_dir)["metrics"]
    assert metrics == records.read_result(ref / long_id)["metrics"] and "egomcq.intra" in metrics

    assert main(["sweep", "spec.yaml", *data, "--executor", "slurm", "--only", "long"]) == 0
    assert "submitted 0 job(s)" in capsys.readouterr().out


def test_slurm_two_task_ddp_job(
    slurm: None, workdir: Path, synth_tiny: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["sweep", "ddp.yaml", "--data", str(synth_tiny), "--executor", "slurm"]) == 0
    run_id, entry = next(
        iter(read_manifest(workdir / "runs" / "test" / "slurm-ddp" / "smoke")["runs"].items())
    )
    result = records.read_result(entry["run_dir"])
    assert result["complete"] and result["train"]["world_size"] == 2 and result["train"]["step"] == 3
    assert "1 finished" in capsys.readouterr().out


def test_slurm_pipeline_afterok_blocked_after_a_killed_stage_and_resumed(
    slurm: None, workdir: Path, synth_tiny: Path, capsys: pytest.CaptureFixture
) -> None:
    """Stage and row are submitted at once, the row with ``--dependency=afterok:<stage job>``; ``scancel`` of
    the training stage leaves the row pending on a dependency that can never hold (``bench status``: blocked,
    not failed); a rerun resumes the stage from its checkpoint, replaces the row's dead job and finishes both;
    a third run submits nothing."""
    data = ["--data", str(synth_tiny)]
    assert main(["sweep", "pipeline.yaml", *data, "--executor", "slurm", "--detach"]) == 0
    sweep_dir = workdir / "runs" / "test" / "slurm-stages" / "smoke"
    entries = read_manifest(sweep_dir)["runs"]
    (stage_id, stage), (row_id, row) = sorted(entries.items(), key=lambda kv: kv[1]["index"])
    assert stage["stage"] == "pretrain" and row["stages"] == [stage_id]
    stage_job, row_job = stage["job_id"], row["job_id"]
    shown = subprocess.run(["scontrol", "show", "job", row_job], capture_output=True, text=True, check=True)
    assert f"Dependency=afterok:{stage_job}" in shown.stdout  # submitted before the stage ended
    stage_dir = Path(stage["run_dir"])

    wait_for("the stage's first checkpoint", lambda: (stage_dir / "last.pt").is_file())
    subprocess.run(["scancel", stage_job], check=True)
    wait_for(
        "the row to pend on a dependency that can never hold",
        lambda: squeue_state(row_job) == ("PENDING", "DependencyNeverSatisfied"),
        limit_s=60,
    )
    assert main(["status", "pipeline.yaml"]) == 1
    out = capsys.readouterr().out
    assert "1 failed, 1 blocked" in out and f"stage:pretrain [{stage_id}]" in out
    assert not (Path(row["run_dir"]) / "last.pt").exists()  # the row never started

    assert main(["sweep", "pipeline.yaml", *data, "--executor", "slurm"]) == 0  # follows until both end
    out = capsys.readouterr().out
    assert "submitted 2 job(s)" in out and "2 finished" in out
    assert squeue_state(row_job) == ("", "")  # the dead pending job was cancelled, not left in the queue
    summary = json.loads((stage_dir / "summary.json").read_text())
    assert 2 <= summary["resumed_from_step"] < 60 and summary["step"] == 60  # resumed, not redone
    new = read_manifest(sweep_dir)["runs"]
    assert new[row_id]["job_id"] != row_job and len(new[row_id]["attempts"]) == 2
    result = records.read_result(Path(row["run_dir"]))
    assert result["config"]["model_args"]["lavila_checkpoint"] == str(stage_dir / "last.pt")

    assert main(["sweep", "pipeline.yaml", *data, "--executor", "slurm"]) == 0
    assert "submitted 0 job(s)" in capsys.readouterr().out
