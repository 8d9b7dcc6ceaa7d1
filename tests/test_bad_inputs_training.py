"""Bad-input corpus, training runs: one writer per run folder, a full or read-only disk while saving, an
honest NaN guard, and ``--out`` / ``--data`` that cannot be used (issue 12).

Every case runs ``bench train lavila_tiny`` on the tiny synthetic dataset (a few steps of batch 4) and is
judged by ``tests/bad_input_support.py``. The lock cases hold the run folder's lock from a second, real
process; the disk cases make ``torch.save`` fail the way it does on a full disk (an ``OSError`` with
``errno``, or torch's ``RuntimeError`` from ``inline_container.cc`` raised while the ``OSError`` was handled,
as observed on a full 1 MiB tmpfs).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from henasy.training.trainer import CHECKPOINT_NAME
from tests.bad_input_support import REPO, expect, expect_clear_error, leftovers, run_bench

STEPS = ["trainer.batch_size=4", "trainer.progress=false"]


def train_args(data: Path, out: Path, *overrides: str) -> list[str]:
    """``bench train lavila_tiny --data DATA --out OUT --set ...`` (2 steps unless overridden)."""
    settings = ["trainer.max_steps=2", *STEPS, *overrides]
    return ["train", "lavila_tiny", "--data", str(data), "--out", str(out)] + [
        arg for item in settings for arg in ("--set", item)
    ]


@pytest.fixture(scope="module")
def trained(synth_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder whose ``last.pt`` holds step 2 (read-only: copy it before resuming)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    result = run_bench(train_args(synth_tiny, out))
    assert result.code == 0, result.describe()
    return out


def copy_run(trained: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    return out


def checkpoint_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["progress"]["step"])


# ------------------------------------------------------------------------------------ one writer per folder
HOLD_WITH_RUNLOCK = (
    "from henasy.core.runlock import run_lock\n"
    "lock = run_lock(sys.argv[1], command='bench train (the first writer)')\n"
)
HOLD_WITH_SWEEP_JOB = "from sweeps.job import _run_lock\nlock = _run_lock(Path(sys.argv[1]))\n"


@contextlib.contextmanager
def held_by_another_process(folder: Path, how: str) -> Iterator[subprocess.Popen]:
    """A second process that holds ``folder``'s lock (``how`` builds ``lock``) until the block ends."""
    code = f"import sys\nfrom pathlib import Path\n{how}with lock:\n    print('locked', flush=True)\n"
    code += "    sys.stdin.readline()\n"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked", (
            "the holder did not lock"
        )
        yield proc
    finally:
        proc.communicate("release\n", timeout=30)


def folder_snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != ".lock"}


@pytest.mark.bad_input
def test_second_bench_train_into_a_locked_run_folder_is_refused(trained: Path, tmp_path: Path) -> None:
    out = copy_run(trained, tmp_path)
    before = folder_snapshot(out)
    with held_by_another_process(out, HOLD_WITH_RUNLOCK) as holder:
        result = run_bench(train_args(_data_root(trained), out, "trainer.max_steps=4"))
        expect(folder_snapshot(out) == before, "the second writer changed the run folder")
        expect_clear_error(result, mentions=[str(out), f"PID {holder.pid}", "this host", "--out", "Wait"])
    assert folder_snapshot(out) == before


@pytest.mark.bad_input
def test_bench_train_into_the_folder_of_a_running_sweep_job_is_refused(
    synth_tiny: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep_run"
    out.mkdir()
    with held_by_another_process(out, HOLD_WITH_SWEEP_JOB) as holder:
        result = run_bench(train_args(synth_tiny, out))
        expect(
            not (out / CHECKPOINT_NAME).exists(), "bench train wrote last.pt into a live sweep job's folder"
        )
        expect_clear_error(result, mentions=[f"PID {holder.pid}", "sweep job", "--out"])
    assert sorted(p.name for p in out.iterdir()) == []  # the job's lock file went with the job


def test_requeued_sweep_job_waits_for_the_live_one_then_proceeds(tmp_path: Path) -> None:
    from sweeps import records
    from sweeps.job import _run_lock

    entered = threading.Event()

    def second_job() -> None:
        with _run_lock(tmp_path):
            entered.set()

    with held_by_another_process(tmp_path, HOLD_WITH_SWEEP_JOB) as holder:
        waiter = threading.Thread(target=second_job)
        waiter.start()
        for _ in range(200):  # up to 10 s for the second job to find the folder taken
            if records.read_state(tmp_path).get("phase") == "waiting":
                break
            entered.wait(0.05)
        state = records.read_state(tmp_path)
        assert not entered.is_set(), "the second job ran while the first held the run folder"
        assert state.get("phase") == "waiting" and f"PID {holder.pid}" in state.get("detail", ""), state
    waiter.join(timeout=30)
    assert entered.is_set(), "the second job never got the run folder after the first released it"


# ------------------------------------------------------------------------------ full or read-only disk
def _fail_like(kind: str) -> Any:
    """A ``torch.save`` that writes part of a checkpoint, then fails the way ``kind`` says."""

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"PK\x03\x04 half a checkpoint")
        if kind == "torch-after-enospc":  # torch's zip writer noticing the failed write (real full tmpfs)
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError:
                raise RuntimeError(
                    "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
                ) from None
        if kind.startswith("torch-no-errno"):
            raise RuntimeError(
                "[enforce fail at inline_container.cc:595] . PytorchStreamWriter failed writing file data/3: "
                "file write failed"
            )
        raise OSError(getattr(errno, kind), os.strerror(getattr(errno, kind)))

    return save


# bench train end to end: the errno case, torch's own error on a real full disk, and a read-only disk
@pytest.mark.bad_input
@pytest.mark.parametrize(
    "kind, reason",
    [
        ("ENOSPC", "no space left on device"),
        ("torch-after-enospc", "no space left on device"),
        ("EROFS", "read-only file system"),
    ],
)
def test_checkpoint_write_failure_keeps_the_previous_last_pt(
    kind: str, reason: str, trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = copy_run(trained, tmp_path)
    before = (out / CHECKPOINT_NAME).read_bytes()
    monkeypatch.setattr(torch, "save", _fail_like(kind))
    overrides = ("trainer.max_steps=3", "trainer.checkpoint_every=1")
    result = run_bench(train_args(_data_root(trained), out, *overrides))
    expect((out / CHECKPOINT_NAME).read_bytes() == before, "the previous last.pt was changed")
    expect(not leftovers(out), f"half-written temporary files were left: {leftovers(out)}")
    expect_clear_error(
        result,
        mentions=[f"{reason} while writing {out / CHECKPOINT_NAME}", "previous last.pt (step 2) is intact"],
    )


# every failure atomic_write can meet, classified without training (the same code path as above)
WRITE_FAILURES = {  # kind -> what the message must say
    "ENOSPC": "no space left on device",
    "EDQUOT": "disk quota exceeded",
    "EACCES": "permission denied",
    "torch-after-enospc": "no space left on device",
    "torch-no-errno-disk-full": "no space left on device (0 bytes free)",
    "torch-no-errno-disk-has-room": "write error (torch.save: [enforce fail at inline_container.cc:595]",
}


@pytest.mark.parametrize("kind", list(WRITE_FAILURES))
def test_write_failures_are_named_and_leave_the_old_file(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from henasy.core.atomic import WriteFailed, atomic_torch_save

    target = tmp_path / CHECKPOINT_NAME
    target.write_bytes(b"the previous checkpoint")
    monkeypatch.setattr(torch, "save", _fail_like(kind))
    free = 0 if kind == "torch-no-errno-disk-full" else 10**9
    monkeypatch.setattr(
        os, "statvfs", lambda path: os.statvfs_result((4096, 1, 10**9, free, free, 0, 0, 0, 0, 255))
    )
    with pytest.raises(WriteFailed) as info:
        atomic_torch_save(target, {"w": torch.zeros(2)})
    assert f"{WRITE_FAILURES[kind]}" in str(info.value) and f"while writing {target}" in str(info.value)
    assert ("no space" in str(info.value)) == (info.value.errno == errno.ENOSPC)  # never guessed
    assert target.read_bytes() == b"the previous checkpoint" and not leftovers(tmp_path)


@pytest.mark.bad_input
def test_disk_full_before_the_first_checkpoint_says_none_was_written(
    synth_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    monkeypatch.setattr(torch, "save", _fail_like("ENOSPC"))
    result = run_bench(train_args(synth_tiny, out, "trainer.max_steps=1"))
    expect(not (out / CHECKPOINT_NAME).exists() and not leftovers(out), "a checkpoint file was left behind")
    expect_clear_error(
        result,
        mentions=[
            f"no space left on device while writing {out / CHECKPOINT_NAME}",
            "no checkpoint was written yet",
        ],
        absent=["intact"],
    )


def test_other_failures_are_not_called_a_full_disk(tmp_path: Path) -> None:
    from henasy.core.atomic import as_write_failure

    target = tmp_path / "last.pt"
    assert as_write_failure(RuntimeError("Can't pickle local object 'f.<locals>.g'"), target) is None
    assert as_write_failure(TypeError("cannot serialize"), target) is None
    try:  # submitit's requeue exit surfacing through torch's writer is not a disk problem either
        raise SystemExit(0)
    except SystemExit:
        try:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 7 vs 5")
        except RuntimeError as err:
            assert as_write_failure(err, target) is None
    failure = as_write_failure(OSError(errno.ENOSPC, "No space left on device"), target)
    assert failure is not None and failure.errno == errno.ENOSPC and isinstance(failure, OSError)


# ------------------------------------------------------------------------------------------ the NaN guard
@pytest.mark.bad_input
def test_nan_loss_at_step_1_says_no_checkpoint_exists(synth_tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    # τ = 1e-45 overflows logit_scale = log(1/τ) when exponentiated: the EgoNCE logits are inf at step 1
    result = run_bench(train_args(synth_tiny, out, "model.temperature=1.0e-45"))
    expect(not (out / CHECKPOINT_NAME).exists(), "a checkpoint was written for a run that diverged at step 1")
    expect_clear_error(
        result,
        mentions=["non-finite training loss at step 1", "no checkpoint was written"],
        absent=["last good state", "is the last finite state"],
    )


@pytest.mark.bad_input
def test_weights_that_turn_nan_are_never_saved(
    synth_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from baselines.lavila import LaViLaDualEncoder

    real = LaViLaDualEncoder.training_losses
    calls = [0]

    def poisoned(self: LaViLaDualEncoder, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        losses = real(self, batch)
        calls[0] += 1
        if calls[0] == 2:  # a finite loss whose gradient is NaN: d/dx sqrt(x) = inf at 0, times 0
            zero = sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
            losses = {**losses, "loss": losses["loss"] + torch.sqrt(zero)}
        return losses

    monkeypatch.setattr(LaViLaDualEncoder, "training_losses", poisoned)
    out = tmp_path / "run"
    result = run_bench(train_args(synth_tiny, out, "trainer.max_steps=3", "trainer.checkpoint_every=1"))
    ckpt = torch.load(out / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    finite = all(torch.isfinite(t).all() for t in ckpt["model"].values() if t.is_floating_point())
    expect(finite, f"last.pt (step {ckpt['progress']['step']}) holds non-finite weights")
    expect(ckpt["progress"]["step"] == 1, f"last.pt is at step {ckpt['progress']['step']}, expected 1")
    expect_clear_error(
        result,
        mentions=[
            "non-finite in the update of step 2",
            f"{out / CHECKPOINT_NAME} (step 1) is the last finite state",
        ],
    )


@pytest.mark.bad_input
def test_resuming_a_checkpoint_with_nan_weights_is_refused(trained: Path, tmp_path: Path) -> None:
    out = copy_run(trained, tmp_path)
    ckpt = torch.load(out / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][name].fill_(float("nan"))  # as written by a version without the guard
    torch.save(ckpt, out / CHECKPOINT_NAME)
    result = run_bench(train_args(_data_root(trained), out, "trainer.max_steps=4"))
    expect(checkpoint_step(out / CHECKPOINT_NAME) == 2, "training went on from the non-finite checkpoint")
    expect_clear_error(result, mentions=[f"{out / CHECKPOINT_NAME} (step 2)", name, "--no-resume"])


# ------------------------------------------------------------------------------------ unusable --out/--data
@pytest.fixture
def no_model_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every model ``bench train`` builds (it must build none when its arguments are unusable)."""
    import henasy.training.run as run

    built: list[str] = []
    real = run.build_model

    def build(config: Any) -> Any:
        built.append(config.model)
        return real(config)

    monkeypatch.setattr(run, "build_model", build)
    return built


@pytest.mark.bad_input
@pytest.mark.parametrize("where", ["out-is-a-file", "parent-is-a-file"])
def test_out_that_is_a_file_is_refused_before_building(
    where: str, synth_tiny: Path, tmp_path: Path, no_model_built: list[str]
) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("precious\n")
    out = blocker if where == "out-is-a-file" else blocker / "run"
    result = run_bench(train_args(synth_tiny, out))
    expect(blocker.read_text() == "precious\n", "the file given as --out was changed")
    expect(not no_model_built, "a model was built before --out was checked")
    expect_clear_error(result, mentions=[str(blocker), "is a file", "--out"])


@pytest.mark.bad_input
@pytest.mark.parametrize("where", ["missing", "a-file"])
def test_data_root_that_is_missing_or_a_file_is_refused_before_building(
    where: str, tmp_path: Path, no_model_built: list[str]
) -> None:
    data = tmp_path / "data"
    if where == "a-file":
        data.write_text("not a dataset\n")
    out = tmp_path / "run"
    result = run_bench(train_args(data, out))
    expect(not no_model_built, "a model was built before --data was checked")
    expect(not out.exists(), "the run folder was created for a run that cannot start")
    expected = "does not exist" if where == "missing" else "is a file, not a folder"
    expect_clear_error(result, mentions=[f"dataset root {data} (--data) {expected}"])


def _data_root(trained: Path) -> Path:
    """The dataset root a trained run was trained on (from its config.json)."""
    return Path(json.loads((trained / "config.json").read_text())["data"]["root"])
