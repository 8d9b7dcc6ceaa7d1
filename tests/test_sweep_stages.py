"""Sweep stages: a spec's ``stages`` (e.g. pretrain → rows), referenced by ``{stage, output}`` and checked when
read, expanded once and covered by the ids of the rows that need them, listed by ``--dry-run``, and shown as
*blocked* (not failed) after a failed stage. The SLURM pipeline (afterok, kill, rerun) is in tests/test_slurm.py.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from henasy.cli import main
from henasy.core.errors import DataFormatError
from sweeps import executors, monitor, records
from sweeps.expand import expand
from sweeps.spec import StageRef, load_spec

PIPE = """
name: test/pipe
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
    overrides: {trainer.max_steps: 2, trainer.batch_size: 4, model.patch_size: 16}
    stages:
      pretrain:
        overrides: {trainer.max_steps: 3}
        resources: {cpus_per_task: 2}
rows:
  - label: a
    overrides: {trainer.seed: 1}
  - label: b
    overrides: {trainer.seed: 2}
  - label: own backbone        # no stage: replaces the reference by a plain value
    overrides: {model.lavila_checkpoint: null}
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_stage_is_expanded_once_and_its_id_is_covered_by_the_rows(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, PIPE))
    ref = spec.base.overrides["model.lavila_checkpoint"]
    assert isinstance(ref, StageRef) and (ref.stage, ref.output, ref.line) == ("pretrain", "checkpoint", 6)
    runs = expand(spec, scale="smoke", data_root="/d")
    stage, a, b, own = runs
    assert stage.stage == "pretrain" and stage.label == "stage:pretrain" and stage.index < 0
    # the stage: its own settings, then the scale's part of it; never base, rows or the scale's row overrides
    assert stage.model == "lavila_tiny" and stage.config["trainer"]["max_steps"] == 3
    assert stage.config["trainer"]["batch_size"] == 16 and a.config["trainer"]["batch_size"] == 4
    assert (
        stage.config["model_args"] == {} and a.config["model_args"]["patch_size"] == 16 and stage.needs == {}
    )
    assert a.stage_ids == b.stage_ids == [stage.run_id] and own.stage_ids == []
    assert a.needs["model.lavila_checkpoint"] == {
        "stage": "pretrain",
        "output": "checkpoint",
        "run_id": stage.run_id,
    }
    assert own.params == {"model.lavila_checkpoint": None}  # params: the row's own overrides
    # a change of the stage's config changes the stage's id and, through it, every row's id
    longer = expand(spec, scale="smoke", data_root="/d", overrides={"trainer.batch_size": 8})
    assert all(x.run_id != y.run_id for x, y in zip(runs, longer))
    (tmp_path / "v2.yaml").write_text(
        (tmp_path / "spec.yaml").read_text().replace("max_steps: 3}", "max_steps: 5}")
    )
    changed = expand(load_spec(tmp_path / "v2.yaml"), scale="smoke", data_root="/d")
    assert changed[0].run_id != stage.run_id and changed[1].run_id != a.run_id
    assert changed[3].run_id == own.run_id  # the row without the stage keeps its id


def test_set_of_the_referencing_key_replaces_the_stage(tmp_path: Path) -> None:
    import torch

    from henasy.core.factory import create_model

    ckpt = tmp_path / "lavila.pt"
    torch.save(create_model("lavila_tiny").state_dict(), ckpt)
    spec = load_spec(write(tmp_path, PIPE))
    runs = expand(spec, scale="smoke", data_root="/d", overrides={"model.lavila_checkpoint": str(ckpt)})
    assert all(r.stage is None and not r.needs for r in runs) and len(runs) == 3  # no stage is run
    assert runs[0].config["model_args"]["lavila_checkpoint"] == str(ckpt)


def test_set_model_options_configure_the_rows_and_trainer_keys_reach_the_stage(tmp_path: Path) -> None:
    """``--set model.use_nec=false`` is a HENASY option (the LaViLa stage would refuse it): it changes the
    rows, not the stage; ``--set trainer.*`` applies to every run, the stage included."""
    spec = load_spec(write(tmp_path, PIPE))
    plain = expand(spec, scale="smoke", data_root="/d")
    rows_only = expand(spec, scale="smoke", data_root="/d", overrides={"model.use_nec": False})
    assert rows_only[0].run_id == plain[0].run_id  # the stage is untouched
    assert rows_only[1].config["model_args"]["use_nec"] is False and rows_only[1].run_id != plain[1].run_id
    everywhere = expand(spec, scale="smoke", data_root="/d", overrides={"trainer.lr": 1e-5})
    assert everywhere[0].run_id != plain[0].run_id and everywhere[0].config["trainer"]["lr"] == 1e-5


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            PIPE.replace("{stage: pretrain,", "{stage: pretrian,"),
            6,
            "no stage 'pretrian'; did you mean 'pretrain'?",
        ),
        (PIPE.replace("output: checkpoint}", "output: features}"), 6, "unknown stage output 'features'"),
        (
            PIPE.replace("    model.lavila_checkpoint: {stage", "    trainer.lr: {stage"),
            6,
            "can only be the value of a model.<option> key",
        ),
        (
            PIPE.replace(
                "      pretrain:\n        overrides: {trainer.max_steps: 3}",
                "      pretrian:\n        overrides: {}",
            ),
            14,
            "no stage 'pretrian'",
        ),
        (
            PIPE.replace("  pretrain:\n    model: lavila_tiny", "  Pre-Train:\n    model: lavila_tiny"),
            8,
            "not a lower-case identifier",
        ),
        (
            PIPE.replace(
                "    model: lavila_tiny\n",
                "    model: lavila_tiny\n    overrides: {model.x: {stage: pretrain}}\n",
            ),
            8,
            "cycle: pretrain → pretrain",
        ),
        (
            PIPE.replace("{stage: pretrain, output: checkpoint}", "{stage: pretrain, outptu: x}"),
            6,
            "unknown key 'outptu'",
        ),
    ],
)
def test_bad_stage_references_name_file_and_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError) as err:
        load_spec(path)
    message = str(err.value)
    assert f"{path}, line {line}" in message and needle in message, message


def test_dry_run_lists_stages_and_what_waits_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, synth_tiny: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, PIPE)
    assert main(["sweep", "spec.yaml", "--data", str(synth_tiny), "--dry-run", "--no-tracking"]) == 0
    out = capsys.readouterr().out
    stage, a, b, own = expand(load_spec("spec.yaml"), scale="smoke", data_root=str(synth_tiny))
    assert "4 runs (1 stage(s) first)" in out
    assert f"stage pretrain [{stage.run_id}]: trains lavila_tiny (3 steps max, 2 CPU(s)" in out
    assert "model.lavila_checkpoint of 2 run(s): 'a', 'b'" in out
    table = [line.split() for line in out.splitlines() if line.split()[:1] in (["0"], ["1"], ["2"])]
    rows = {cells[1]: " ".join(cells) for cells in table}
    assert rows["a"].endswith(f"pretrain [{stage.run_id}] submit") and a.run_id in rows["a"]
    assert rows["own"].endswith("- submit") and own.run_id in rows["own"] and b.run_id in out
    # --only keeps the stages the chosen rows need, and nothing else
    assert main(["sweep", "spec.yaml", "--data", str(synth_tiny), "--dry-run", "--only", "own backbone"]) == 0
    out = capsys.readouterr().out
    assert "1 runs" in out and stage.run_id not in out and "would submit 1 job(s)" in out
    assert not (tmp_path / "runs").exists()


def _entry(
    tmp_path: Path, run_id: str, index: int, job: str | None, stages: list[str], **extra: object
) -> dict:
    run_dir = tmp_path / run_id
    run_dir.mkdir()
    return {
        "label": f"row {run_id}",
        "index": index,
        "benchmarks": [],
        "run_dir": str(run_dir),
        "job_id": job,
        "executor": "local" if job else None,
        "stages": stages,
        "attempts": [],
        **extra,
    }


def test_failed_stage_blocks_its_rows_and_a_blocked_job_is_not_failed(tmp_path: Path) -> None:
    dead = "999999999"  # no such process: a local job that ended
    assert executors.local_state(dead) == executors.ENDED
    alive = str(os.getpid())
    runs = {
        "stage": _entry(tmp_path, "stage", -1, dead, []),
        "waiting": _entry(tmp_path, "waiting", 0, alive, ["stage"]),
        "ended": _entry(tmp_path, "ended", 1, dead, ["stage"]),
        "free": _entry(tmp_path, "free", 2, None, []),
    }
    records.write_state(tmp_path / "stage", "failed", error="boom")
    records.write_state(tmp_path / "ended", "blocked", detail="stage pretrain [stage] ended without a result")
    manifest = {"runs": runs}
    rows = {r.run_id: r for r in monitor.statuses(manifest)}
    assert rows["stage"].state == monitor.FAILED
    # a live job waiting for the dead stage (the pid is this test, not a submitit process: ended) and a job
    # that ended saying blocked are both blocked, naming the stage; a row without stages is unaffected
    assert rows["ended"].state == monitor.BLOCKED and "ended without a result" in rows["ended"].detail
    assert rows["waiting"].state == monitor.BLOCKED and "row stage [stage] failed" in rows["waiting"].detail
    assert rows["free"].state == monitor.TODO
    assert monitor.counts(list(rows.values())) == "1 failed, 2 blocked, 1 todo"
    report = monitor.error_report(list(rows.values()))
    assert "blocked: row stage [stage] failed (rerun the sweep to resume)" in report
    assert (
        monitor.BLOCKED in monitor.TERMINAL
    )  # `bench sweep` stops following: nothing will happen until a rerun


def test_slurm_job_pending_on_a_dead_dependency_is_blocked(tmp_path: Path) -> None:
    entry = _entry(tmp_path, "row", 0, "12_0", ["st"], executor="slurm")
    blocked = monitor.row_status("row", entry, (executors.PENDING, "PENDING (DependencyNeverSatisfied)"))
    waiting = monitor.row_status("row", entry, (executors.PENDING, "PENDING (Dependency)"))
    assert blocked.state == monitor.BLOCKED and waiting.state == monitor.PENDING
    assert "afterok" in waiting.detail


def test_pipeline_runs_in_order_and_rows_train_on_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synth_tiny: Path, capsys: pytest.CaptureFixture
) -> None:
    """In-process (debug executor): the stage trains first, each row loads its checkpoint as the backbone
    and is tagged with it in MLflow (parent run); a rerun redoes nothing."""
    import torch

    from sweeps.tracking import client

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write(
        tmp_path,
        PIPE.replace(
            "  - label: own backbone        # no stage: replaces the reference by a plain value\n    overrides: {model.lavila_checkpoint: null}\n",
            "",
        ),
    )
    args = ["sweep", "spec.yaml", "--data", str(synth_tiny), "--executor", "debug", "--only", "a"]
    assert main(args) == 0
    stage, a = expand(load_spec("spec.yaml"), scale="smoke", data_root=str(synth_tiny))[:2]
    sweep = tmp_path / "runs" / "test" / "pipe" / "smoke"
    assert records.run_finished(sweep / stage.run_id, stage.run_id, ())
    assert records.run_finished(sweep / a.run_id, a.run_id, ())
    backbone = torch.load(sweep / stage.run_id / "last.pt", weights_only=True)["model"]
    row = torch.load(sweep / a.run_id / "last.pt", weights_only=True)["model"]
    key = "visual.patch_embed.proj.weight"  # HENASY's frozen global encoder is the stage's LaViLa (§5.1)
    assert torch.equal(row[key], backbone[key])
    from henasy.core.factory import create_model

    assert not torch.equal(create_model("henasy_tiny").state_dict()[key], backbone[key])  # not by chance
    result = json.loads((sweep / a.run_id / "result.json").read_text())
    assert result["config"]["model_args"]["lavila_checkpoint"] == str(sweep / stage.run_id / "last.pt")
    mlc = client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    stage_ml = json.loads((sweep / stage.run_id / "mlflow.json").read_text())["run_id"]
    tags = mlc.get_run(json.loads((sweep / a.run_id / "mlflow.json").read_text())["run_id"]).data.tags
    assert tags["bench.stage.pretrain"] == stage.run_id and tags["mlflow.parentRunId"] == stage_ml
    assert mlc.get_run(stage_ml).data.tags["bench.stage"] == "pretrain"
    capsys.readouterr()
    assert main([*args[:-2], "--only", "b"]) == 0  # the stage is finished: only row b runs
    assert "submitted 1 job(s)" in capsys.readouterr().out


def test_a_train_false_row_evaluates_the_stage_and_set_gives_the_stage_for_every_reference(
    tmp_path: Path,
) -> None:
    """Table 1's LaViLa row is the stage's LaViLa (``checkpoint: {stage: ...}``); ``--set`` of the backbone key
    (paper scale: the official checkpoint) stands for the stage everywhere, so no stage is run."""
    import torch

    from henasy.core.factory import create_model

    text = PIPE.replace(
        "rows:\n",
        "rows:\n  - label: backbone\n    model: lavila_tiny\n    train: false\n    checkpoint: {stage: pretrain}\n"
        "    overrides: {model.lavila_checkpoint: null}\n",
    )
    spec = load_spec(write(tmp_path, text))
    stage, backbone, *_ = expand(spec, scale="smoke", data_root="/d")
    assert backbone.checkpoint is None and backbone.needs == {
        "checkpoint": {"stage": "pretrain", "output": "checkpoint", "run_id": stage.run_id}
    }
    ckpt = tmp_path / "lavila.pt"
    torch.save(create_model("lavila_tiny").state_dict(), ckpt)
    runs = expand(spec, scale="smoke", data_root="/d", overrides={"model.lavila_checkpoint": str(ckpt)})
    assert [r.label for r in runs] == ["backbone", "a", "b", "own backbone"]  # no stage
    assert runs[0].checkpoint == str(ckpt) and not runs[0].needs
    assert (
        runs[0].config["model_args"]["lavila_checkpoint"] is None
    )  # the --set went only where the stage was meant
    assert (
        runs[1].config["model_args"]["lavila_checkpoint"] == str(ckpt)
        and runs[3].config["model_args"]["lavila_checkpoint"] is None
    )
