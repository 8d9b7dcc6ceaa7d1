"""Tests of the shared trainer (henasy/training): learning, exact resume, atomic checkpoints, NaN stop,
frozen modules, gradient accumulation, 2-process DDP on gloo, the run config and ``bench train``.

Most tests train ``lavila_tiny`` on a few in-memory clips (random pixels, distinct narrations); the
arithmetic ones use a linear regression stand-in that follows the ``training_losses`` contract.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset, Subset, default_collate

from baselines.lavila import lavila_tiny
from henasy.core.errors import BenchError
from henasy.core.overrides import apply, parse
from henasy.training.callbacks import Callback, JsonlMetrics, read_metrics
from henasy.training.config import RunConfig, TrainerConfig, build_run_config
from henasy.training.run import TrainCollate
from henasy.training.trainer import CHECKPOINT_NAME, EpochBatchSampler, Trainer, epoch_permutation

VIDEO_SHAPE = (3, 4, 64, 64)  # (C, T, H, W) of lavila_tiny
VERBS = ["cuts", "opens", "washes", "holds", "drops", "stirs", "folds", "pours"]
NOUNS = ["onion", "fridge", "plate", "knife"]


class ClipSet(Dataset):
    """``n`` fixed random clips with distinct narrations. Adds global-RNG noise to each read (so restored RNG
    states matter) and records which items were read (so skipped batches can be checked)."""

    def __init__(self, n: int, noise: float = 0.1) -> None:
        gen = torch.Generator().manual_seed(1234)
        self.videos = torch.randn(n, *VIDEO_SHAPE, generator=gen)  # (N, C, T, H, W)
        self.texts = [
            f"#C C {VERBS[i % len(VERBS)]} the {NOUNS[(i // len(VERBS)) % len(NOUNS)]}" for i in range(n)
        ]
        self.noise = noise
        self.loaded: list[int] = []

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> dict[str, Any]:
        self.loaded.append(i)
        video = self.videos[i] + self.noise * torch.randn(VIDEO_SHAPE)
        return {"video": video, "text": self.texts[i], "video_uid": f"v{i}"}


def tiny_trainer(
    run_dir: Path,
    dataset: Dataset,
    *,
    init_seed: int = 0,
    drop_path: float = 0.1,
    callbacks: tuple = (),
    **overrides: Any,
) -> tuple[nn.Module, Trainer]:
    """lavila_tiny (with drop-path by default, so training consumes RNG) and a CPU fp32 trainer."""
    torch.manual_seed(init_seed)
    model = lavila_tiny(drop_path_rate=drop_path)
    settings = dict(epochs=2, batch_size=4, lr=1e-3, precision="fp32", progress=False, checkpoint_every=3)
    config = TrainerConfig(**{**settings, "device": "cpu", **overrides})
    trainer = Trainer(
        model, dataset, config, run_dir, collate_fn=TrainCollate(model.tokenize), callbacks=callbacks
    )
    return model, trainer


class Linear(nn.Module):
    """y = w·x + b with a mean-squared-error loss: gradients of a 2B batch = mean of two B halves."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, 1)

    def training_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        err = self.lin(batch["x"]).squeeze(-1) - batch["y"]  # (B,)
        loss = (err**2).mean()
        return {"loss": loss, "mse": loss.detach()}


def regression_set(n: int = 32, nan_at: int | None = None) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(n, 4, generator=gen)  # (N, 4)
    y = x @ torch.tensor([1.0, -2.0, 3.0, 0.5]) + 1.0  # (N,)
    if nan_at is not None:
        y[nan_at] = float("nan")
    return [{"x": x[i], "y": y[i]} for i in range(n)]


def linear_trainer(
    run_dir: Path, data: list, *, init_seed: int = 0, **overrides: Any
) -> tuple[nn.Module, Trainer]:
    torch.manual_seed(init_seed)
    model = Linear()
    settings = dict(epochs=3, batch_size=8, lr=0.05, precision="fp32", progress=False, device="cpu")
    config = TrainerConfig(**{**settings, **overrides})
    return model, Trainer(model, data, config, run_dir, collate_fn=default_collate)


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ: {different[:5]}"


class KillAt(Callback):
    """Raises at a given step, like a SIGKILL between two checkpoints."""

    class Killed(Exception):
        pass

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        if step == self.step:
            raise KillAt.Killed(step)


# ------------------------------------------------------------------------------------------------ learning
def test_loss_falls_on_fixed_clips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 30 one-step epochs: skip the 30 epoch-end checkpoint writes (64 MB each), saving is tested below
    monkeypatch.setattr("henasy.training.trainer.atomic_torch_save", lambda path, obj: path)
    data = ClipSet(4, noise=0.0)
    metrics = JsonlMetrics(tmp_path)
    _, trainer = tiny_trainer(
        tmp_path, data, drop_path=0.0, epochs=30, checkpoint_every=0, callbacks=(metrics,)
    )
    summary = trainer.fit()
    losses = [row["loss"] for row in read_metrics(tmp_path / "metrics.jsonl") if "event" not in row]
    assert len(losses) == 30 and summary["step"] == 30 and summary["finished"]
    assert summary["first_loss"] == losses[0] and summary["final_loss"] == losses[-1]
    # 4 pairs get memorised: the symmetric InfoNCE falls from about 2·ln 4 to well below half of it
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0], losses
    assert (tmp_path / "summary.json").is_file()


# ------------------------------------------------------------------------------------------- exact resume
def test_killed_run_resumes_to_identical_weights(tmp_path: Path) -> None:
    model_a, trainer_a = tiny_trainer(tmp_path / "a", ClipSet(16))
    trainer_a.fit()
    final_a = state_of(model_a)
    ckpt_a = torch.load(tmp_path / "a" / CHECKPOINT_NAME, weights_only=True)

    run_b = tmp_path / "b"
    _, trainer_b = tiny_trainer(run_b, ClipSet(16), callbacks=(JsonlMetrics(run_b), KillAt(7)))
    with pytest.raises(KillAt.Killed):
        trainer_b.fit()  # last.pt was written at step 6 (checkpoint_every=3), mid-epoch 1
    saved = torch.load(run_b / CHECKPOINT_NAME, weights_only=True)
    assert (saved["progress"]["step"], saved["progress"]["epoch"], saved["progress"]["step_in_epoch"]) == (
        6,
        1,
        2,
    )

    data = ClipSet(16)
    model_b, trainer_b2 = tiny_trainer(run_b, data, init_seed=99, callbacks=(JsonlMetrics(run_b),))
    summary = trainer_b2.fit()
    assert summary["finished"] and summary["resumed_from_step"] == 6
    assert_same_tensors(final_a, state_of(model_b))
    ckpt_b = torch.load(run_b / CHECKPOINT_NAME, weights_only=True)
    for key in ("exp_avg", "exp_avg_sq"):
        for idx, state in ckpt_a["optimizer"]["state"].items():
            assert torch.equal(state[key], ckpt_b["optimizer"]["state"][idx][key])
    # only the unconsumed batches of epoch 1 were read: steps 7 and 8 = positions 8..15 of its permutation
    assert data.loaded == epoch_permutation(16, 0, 1)[8:16].tolist()
    steps = [row["step"] for row in read_metrics(run_b / "metrics.jsonl") if "event" not in row]
    assert steps == list(range(1, 9))  # the killed run's step 7 was cut back, then logged once


def test_stop_after_steps_then_resume_matches(tmp_path: Path) -> None:
    model_a, trainer_a = tiny_trainer(tmp_path / "a", ClipSet(16), epochs=1)
    trainer_a.fit()
    _, first = tiny_trainer(tmp_path / "b", ClipSet(16), epochs=1, stop_after_steps=2)
    summary = first.fit()
    assert summary["status"] == "stopped" and summary["step"] == 2 and not summary["finished"]
    _, same = tiny_trainer(tmp_path / "b", ClipSet(16), epochs=1, stop_after_steps=2)
    assert same.fit()["step"] == 2  # already at the stop: no further step
    model_b, second = tiny_trainer(tmp_path / "b", ClipSet(16), epochs=1, init_seed=5)
    assert second.fit()["finished"]
    assert_same_tensors(state_of(model_a), state_of(model_b))
    _, third = tiny_trainer(tmp_path / "b", ClipSet(16), epochs=1)
    again = third.fit()
    assert again["already_finished"] and again["step"] == 4


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    _, trainer = linear_trainer(tmp_path, regression_set(), stop_after_steps=2)
    trainer.fit()
    _, other = linear_trainer(tmp_path, regression_set(), lr=0.01)
    with pytest.raises(BenchError, match=r"trainer\.lr: 0\.05 in the checkpoint, 0\.01 now"):
        other.fit()
    _, fresh = linear_trainer(tmp_path, regression_set(), lr=0.01)
    assert fresh.fit(resume=False)["finished"]  # --no-resume starts over


def test_sampler_shards_and_skips_deterministically() -> None:
    perm = epoch_permutation(20, 3, 2)
    assert torch.equal(perm, epoch_permutation(20, 3, 2)) and not torch.equal(
        perm, epoch_permutation(20, 3, 1)
    )
    assert sorted(perm.tolist()) == list(range(20))
    one = list(EpochBatchSampler(20, 8, seed=3, epoch=2, accum=2))
    ranks = [list(EpochBatchSampler(20, 8, seed=3, epoch=2, rank=r, world_size=2)) for r in range(2)]
    assert len(one) == 4  # 20 // 8 = 2 steps × 2 micro-batches; the last 4 clips are dropped
    assert one[0::2] == ranks[0] and one[1::2] == ranks[1]  # accumulation k ≡ k processes
    resumed = list(EpochBatchSampler(20, 8, seed=3, epoch=2, accum=2, start_step=1))
    assert resumed == one[2:]
    with pytest.raises(BenchError, match="divisible"):
        EpochBatchSampler(20, 6, seed=0, epoch=0, accum=4)


class EpochAware(Dataset):
    """Regression items that record the epoch set on the dataset when each one is read."""

    def __init__(self, n: int) -> None:
        self.items = regression_set(n)
        self.epoch = -1
        self.reads: list[tuple[int, int]] = []  # (epoch, index)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        self.reads.append((self.epoch, i))
        return self.items[i]


def test_dataset_epoch_is_set_through_wrappers(tmp_path: Path) -> None:
    data = EpochAware(32)
    torch.manual_seed(0)
    config = TrainerConfig(epochs=2, batch_size=8, lr=0.05, precision="fp32", progress=False, device="cpu")
    Trainer(Linear(), Subset(data, range(16)), config, tmp_path, collate_fn=default_collate).fit()
    assert [e for e, _ in data.reads] == [0] * 16 + [1] * 16  # per-item randomness can depend on the epoch
    assert sorted(i for _, i in data.reads[:16]) == list(range(16))


# ------------------------------------------------------------------------------------ atomic checkpoints
def test_checkpoint_is_never_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, trainer = linear_trainer(tmp_path, regression_set(), epochs=1)
    trainer.fit()  # last.pt at step 4, finished
    good = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    real_save = torch.save

    def dying_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"PK\x03\x04 half a checkpoint")  # the process dies in the middle of the write
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dying_save)
    _, longer = linear_trainer(tmp_path, regression_set(), epochs=2, checkpoint_every=1)
    with pytest.raises(OSError, match=r"no space left on device .* last.pt \(step 4\) is intact"):
        longer.fit()
    monkeypatch.setattr(torch, "save", real_save)
    after = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert after["progress"]["step"] == good["progress"]["step"] == 4
    assert_same_tensors(good["model"], after["model"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]  # no temp file; stale summary gone


def test_checkpoint_loads_with_weights_only_and_holds_rng(tmp_path: Path) -> None:
    _, trainer = linear_trainer(tmp_path, regression_set(), epochs=1)
    trainer.fit()
    ckpt = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert {"model", "optimizer", "scaler", "rng", "progress"} <= set(ckpt)
    assert {"epoch", "step_in_epoch", "step"} <= set(ckpt["progress"])
    assert {"python", "numpy", "torch"} <= set(ckpt["rng"][0])
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    _, again = linear_trainer(tmp_path, regression_set(), epochs=2)
    with pytest.raises(BenchError, match="cannot load the training state"):
        again.fit()


# ----------------------------------------------------------------------------------------------- NaN stop
def test_nan_loss_stops_with_step_and_terms(tmp_path: Path) -> None:
    bad = 13
    position = epoch_permutation(32, 0, 0).tolist().index(bad)
    step = position // 8 + 1  # batch_size 8: the first step whose batch holds the NaN target
    _, trainer = linear_trainer(tmp_path, regression_set(nan_at=bad))
    with pytest.raises(BenchError) as info:
        trainer.fit()
    message = str(info.value)
    assert f"non-finite training loss at step {step} (epoch 0)" in message
    assert "loss=nan" in message and "mse=nan" in message


# ------------------------------------------------------------------------------------------ frozen modules
def test_frozen_modules_get_no_update_and_stay_in_eval(tmp_path: Path) -> None:
    model, trainer = tiny_trainer(tmp_path, ClipSet(8), epochs=1, freeze=["visual", "image_projection"])
    before = state_of(model)
    modes: list[tuple[bool, bool]] = []
    losses = model.training_losses

    def spy(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        modes.append((model.visual.training, model.transformer.training))
        return losses(batch)

    model.training_losses = spy  # type: ignore[method-assign]
    trainer.fit()
    after = state_of(model)
    frozen = [k for k in before if k.startswith(("visual.", "image_projection"))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.startswith("visual."))
    assert not torch.equal(before["text_projection"], after["text_projection"])
    assert modes == [(False, True)] * 2
    ckpt = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    optimised = sum(len(g["params"]) for g in ckpt["optimizer"]["param_groups"])
    assert optimised == sum(1 for p in model.parameters() if p.requires_grad)


def test_unknown_freeze_prefix_names_the_modules(tmp_path: Path) -> None:
    _, trainer = tiny_trainer(tmp_path, ClipSet(4), freeze=["vis"])
    with pytest.raises(BenchError, match=r"'vis' matches no parameter.*visual"):
        trainer.fit()


# -------------------------------------------------------------------------------- gradient accumulation
def test_grad_accumulation_equals_one_big_batch(tmp_path: Path) -> None:
    model_big, big = linear_trainer(tmp_path / "big", regression_set(), batch_size=8)
    model_acc, acc = linear_trainer(tmp_path / "acc", regression_set(), batch_size=8, grad_accum_steps=2)
    big.fit()
    acc.fit()
    for key, value in state_of(model_big).items():
        torch.testing.assert_close(state_of(model_acc)[key], value, rtol=1e-5, atol=1e-6)
    torch.manual_seed(0)
    assert not torch.equal(state_of(model_big)["lin.weight"], Linear().lin.weight.detach())  # it trained


# ------------------------------------------------------------------------------------------------- DDP
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world_size),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    # different initial weights per rank: DDP must broadcast rank 0's
    model, trainer = linear_trainer(Path(out) / "run", regression_set(16), init_seed=rank, epochs=1)
    summary = trainer.fit()
    torch.save({"state": state_of(model), "summary": summary}, Path(out) / f"rank{rank}.pt")


def test_ddp_two_processes_on_gloo_agree(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0]["summary"]["world_size"] == 2 and ranks[0]["summary"]["step"] == 2
    assert_same_tensors(ranks[0]["state"], ranks[1]["state"])
    # one process accumulating the two shards sees the same clips: same weights up to float rounding
    model, single = linear_trainer(tmp_path / "single", regression_set(16), epochs=1, grad_accum_steps=2)
    single.fit()
    for key, value in state_of(model).items():
        torch.testing.assert_close(ranks[0]["state"][key], value, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- config
def test_overrides_parse_yaml_and_check_types() -> None:
    parsed = parse(["trainer.lr=1e-4", "freeze=[visual, transformer]", "data.hard_negative_sec=null"])
    assert (
        parsed
        == {
            "trainer.lr": 1e-4,  # henasy.core.overrides: exponent-form numbers are floats (YAML 1.1 reads a string)
            "freeze": ["visual", "transformer"],
            "data.hard_negative_sec": None,
        }
    )
    config = apply(RunConfig(model="lavila_tiny"), parsed)
    assert config.trainer.lr == 1e-4 and config.trainer.freeze == ["visual", "transformer"]
    config = build_run_config(
        "lavila_tiny", "/data", overrides=["model.depth=3", "trainer.betas=[0.9, 0.98]"]
    )
    assert (
        config.preset == "smoke" and config.model_args == {"depth": 3} and config.trainer.betas == (0.9, 0.98)
    )
    assert build_run_config("lavila", "/data").trainer.lr == 3e-5  # paper preset by default for full models
    assert RunConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("item", "pattern"),
    [
        ("trainer.lrr=1", r"unknown config key 'trainer\.lrr'\. Allowed keys: .*trainer\.lr,"),
        ("epochs=two", r"trainer\.epochs expects int, got 'two'"),
        ("trainer.lr", "expected KEY=VALUE"),
        ("trainer.precision=fp8", "must be one of fp32, fp16, bf16"),
        ("trainer.batch_size=10", r"divisible by trainer\.grad_accum_steps"),
    ],
)
def test_bad_overrides_are_clear(item: str, pattern: str) -> None:
    overrides = [item, "trainer.grad_accum_steps=4"] if "batch_size" in item else [item]
    with pytest.raises(BenchError, match=pattern):
        build_run_config("lavila_tiny", "/data", overrides=overrides)


def test_collate_tokenises_and_appends_hard_negatives() -> None:
    model = lavila_tiny()
    items = [
        {
            "video": torch.full(VIDEO_SHAPE, float(i)),
            "text": f"#C C cuts {i}",
            "verb_tags": torch.tensor([1.0, 0.0]),
            "noun_tags": torch.tensor([0.0, 1.0, 0.0]),
            "video_uid": f"v{i}",
            "neg_video": torch.full(VIDEO_SHAPE, -float(i) - 1),
            "neg_text": f"#C C drops {i}",
            "neg_video_uid": f"n{i}",
            "neg_verb_tags": torch.tensor([0.0, 1.0]),
            "neg_noun_tags": torch.tensor([1.0, 0.0, 0.0]),
        }
        for i in range(3)
    ]
    batch = TrainCollate(model.tokenize)(items)
    assert batch["video"].shape == (6, *VIDEO_SHAPE) and batch["num_positives"] == 3
    assert batch["video"][:, 0, 0, 0, 0].tolist() == [0.0, 1.0, 2.0, -1.0, -2.0, -3.0]
    assert torch.equal(
        batch["text"], model.tokenize([it["text"] for it in items] + [it["neg_text"] for it in items])
    )
    assert batch["verb_tags"].tolist() == [[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3
    assert batch["noun_tags"].shape == (6, 3) and batch["video_uid"] == ["v0", "v1", "v2", "n0", "n1", "n2"]
    plain = TrainCollate(model.tokenize)(
        [{k: v for k, v in it.items() if not k.startswith("neg_")} for it in items]
    )
    assert plain["video"].shape == (3, *VIDEO_SHAPE) and plain["text"].shape[0] == 3


def test_metrics_file_has_one_row_per_step(tmp_path: Path) -> None:
    _, trainer = linear_trainer(tmp_path, regression_set(), epochs=2)
    trainer.callbacks.append(JsonlMetrics(tmp_path))
    trainer.fit()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    steps = [r for r in rows if "event" not in r]
    epochs = [r for r in rows if r.get("event") == "epoch_end"]
    assert [r["step"] for r in steps] == list(range(1, 9)) and [e["epoch"] for e in epochs] == [0, 1]
    assert all({"loss", "mse", "lr", "clips_per_s", "epoch"} <= set(r) for r in steps)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final_loss"] == steps[-1]["loss"] and summary["status"] == "finished"


# ------------------------------------------------------------------------------- end to end: bench train
def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    settings = ["trainer.max_steps=2", "trainer.batch_size=4", "trainer.progress=false"]
    return ["train", "lavila_tiny", "--data", str(data), "--out", str(out)] + [
        arg for item in [*settings, *extra] for arg in ("--set", item)
    ]


def test_bench_train_on_synthetic_data_then_rerun(
    synth_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from henasy.cli import main
    from henasy.core.checkpoints import load_state_dict_file

    out = tmp_path / "run"
    assert main(_train_args(synth_tiny, out, "data.hard_negative_sec=10")) == 0
    printed = capsys.readouterr().out
    assert "finished at step 2/2" in printed and "loss" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        CHECKPOINT_NAME,
        "metrics.jsonl",
        "summary.json",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["skipped_clips"]["skipped"] == 0
    assert json.loads((out / "config.json").read_text())["data"]["hard_negative_sec"] == 10.0
    # last.pt's weights load into a fresh model through the generic checkpoint reader
    model = lavila_tiny()
    model.load_state_dict(load_state_dict_file(out / CHECKPOINT_NAME))
    assert main(_train_args(synth_tiny, out, "data.hard_negative_sec=10")) == 0
    assert "already finished" in capsys.readouterr().out
    assert main(_train_args(synth_tiny, out, "trainer.lr=0.5")) == 2  # other settings: refuse to resume
    assert "trainer.lr" in capsys.readouterr().err


def test_bench_train_help_and_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from henasy.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    assert "examples:" in capsys.readouterr().out
    assert main(_train_args(tmp_path, tmp_path / "run", "trainer.lrr=1")) == 2
    assert "Allowed keys" in capsys.readouterr().err
    assert main(_train_args(tmp_path / "nowhere", tmp_path / "run")) == 2
    assert "ego4d/egoclip.csv not found" in capsys.readouterr().err


def test_unreadable_videos_raise_or_are_skipped(
    synth_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from henasy.cli import main

    data = tmp_path / "data"
    shutil.copytree(synth_tiny / "ego4d", data / "ego4d")
    uids = sorted(
        {line.split("\t")[1] for line in (data / "ego4d" / "egoclip.csv").read_text().splitlines()[1:]}
    )
    for chunk in (data / "ego4d" / "video_chunks" / f"{uids[0]}.mp4").iterdir():
        chunk.write_bytes(b"not an mp4")  # a quarter of the training clips become unreadable
    assert main(_train_args(data, tmp_path / "strict", "trainer.max_steps=6")) == 2
    assert uids[0] in capsys.readouterr().err  # the error names the broken file
    assert main(_train_args(data, tmp_path / "lenient", "trainer.max_steps=6", "data.on_error=skip")) == 0
    summary = json.loads((tmp_path / "lenient" / "summary.json").read_text())
    assert summary["finished"] and summary["skipped_clips"]["skipped"] > 0
    assert uids[0] in summary["skipped_clips"]["examples"][0]["path"]


# ------------------------------------------------------------------- the data recipe of HENASY / HelpingHands
def test_family_presets_turn_on_the_paper_batch_formation() -> None:
    from henasy.training.config import HARD_NEGATIVE_SEC

    assert HARD_NEGATIVE_SEC == 600.0  # HelpingHands' segment (EgoClip_EgoMCQ_dataset.py chunk_sec)
    henasy = build_run_config("henasy", "/data", preset="paper").data
    assert (henasy.hard_negative_sec, henasy.noun_list, henasy.max_nouns) == (600.0, "helpinghands", 4)
    assert henasy.rephrased_captions is None  # only HelpingHands' EgoNCE reads them
    hh = build_run_config("helpinghands_tsfl", "/data").data  # paper preset by default for full models
    assert (hh.hard_negative_sec, hh.rephrased_captions, hh.noun_list) == (600.0, "auto", "helpinghands")
    lavila = build_run_config("lavila", "/data").data  # LaViLa pretrains without EgoNCE hard negatives
    assert (lavila.hard_negative_sec, lavila.rephrased_captions, lavila.noun_list) == (None, None, "tags")
    smoke = build_run_config("henasy_tiny", "/data").data  # smoke: sweeps turn hard negatives on themselves
    assert (smoke.hard_negative_sec, smoke.noun_list) == (None, "helpinghands")
    off = build_run_config("helpinghands", "/data", overrides=["data.hard_negative_sec=null"]).data
    assert off.hard_negative_sec is None  # the user's overrides come last
    with pytest.raises(BenchError, match="data.noun_list must be one of tags, helpinghands"):
        build_run_config("henasy", "/data", overrides=["data.noun_list=spacy"])


def test_dry_run_shows_the_data_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from henasy.cli import main

    shown = {}
    for model in ("henasy", "helpinghands"):
        assert (
            main(
                [
                    "train",
                    model,
                    "--data",
                    str(tmp_path),
                    "--preset",
                    "paper",
                    "--dry-run",
                    "--format",
                    "json",
                ]
            )
            == 0
        )
        shown[model] = json.loads(capsys.readouterr().out)["data"]
    assert shown["henasy"]["hard_negative_sec"] == 600.0 and shown["henasy"]["noun_list"] == "helpinghands"
    assert shown["helpinghands"]["rephrased_captions"] == "auto" and shown["helpinghands"]["max_nouns"] == 4


def test_collate_pads_the_rephrased_captions_to_five_slots() -> None:
    model = lavila_tiny()
    items = [
        {
            "video": torch.zeros(VIDEO_SHAPE),
            "text": f"#C C cuts {i}",
            "rephrased_texts": [f"#C C cuts {i}"] + [f"#C C slices {i} {j}" for j in range(i)],
            "neg_video": torch.ones(VIDEO_SHAPE),
            "neg_text": f"#C C drops {i}",
            "neg_rephrased_texts": [f"#C C drops {i}"],
        }
        for i in range(3)
    ]
    batch = TrainCollate(model.tokenize)(items)
    ids, valid = batch["rephrased_text"], batch["rephrased_valid"]
    assert ids.shape[:2] == (6, 5) and "rephrased_texts" not in batch
    assert valid.sum(1).tolist() == [1, 2, 3, 1, 1, 1] and valid[:, 0].all()
    assert torch.equal(ids[2, :3], model.tokenize(items[2]["rephrased_texts"]))
    assert torch.equal(ids[:, 0], batch["text"])  # slot 0 is the narration, in the batch's row order
    assert not ids[~valid].any()  # padding slots hold no tokens


def test_helpinghands_trains_with_the_synthetic_rephrase_file(synth_tiny: Path, tmp_path: Path) -> None:
    from henasy.training.run import train_run

    config = build_run_config(
        "helpinghands_tiny",
        synth_tiny,
        overrides=[
            "data.hard_negative_sec=600",
            "trainer.max_steps=1",
            "trainer.batch_size=4",
            "trainer.num_workers=0",
            "trainer.progress=false",
        ],
    )
    summary = train_run(config, tmp_path / "hh")
    assert summary["data_recipe"] == {
        "hard_negative_sec": 600.0,
        "noun_list": "helpinghands",
        "max_nouns": 4,
        "rephrased_captions_file": str(synth_tiny / "ego4d" / "lavila_rephrased.pth"),
    }
    (step,) = [r for r in read_metrics(tmp_path / "hh" / "metrics.jsonl") if "event" not in r]
    assert step["captions_per_clip"] > 1.0 and step["noun"] > 0  # paraphrases and noun lists arrived
    config.model, config.data.rephrased_captions = (
        "lavila_tiny",
        str(synth_tiny / "ego4d" / "lavila_rephrased.pth"),
    )
    with pytest.raises(BenchError, match="lavila_tiny does not use rephrased captions"):
        train_run(config, tmp_path / "lavila")


def test_lr_schedules_hand_computed() -> None:
    from henasy.training.config import lr_at

    cosine = TrainerConfig(lr=1.0, lr_schedule="cosine", warmup_steps=2)
    # warm-up 1/2, 2/2; then ½(1 + cos(π·k/4)) for k = 0..3 of the 4 remaining steps of 6
    expected = [0.5, 1.0, 1.0, 0.5 * (1 + 2**-0.5), 0.5, 0.5 * (1 - 2**-0.5)]
    assert [lr_at(cosine, s, 6) for s in range(6)] == pytest.approx(expected)
    fixed = TrainerConfig(lr=0.3, warmup_steps=2)
    assert [lr_at(fixed, s, 6) for s in range(4)] == pytest.approx([0.15, 0.3, 0.3, 0.3])
    assert lr_at(TrainerConfig(lr=0.3), 0, 6) == 0.3  # the paper's fixed lr, no warm-up: unchanged
    with pytest.raises(BenchError, match="trainer.lr_schedule must be one of fixed, cosine"):
        TrainerConfig(lr_schedule="step").validate()


def test_cosine_schedule_is_logged_and_resumes_exactly(tmp_path: Path) -> None:
    from henasy.training.config import lr_at

    settings = dict(epochs=2, lr_schedule="cosine", warmup_steps=1)
    model_a, trainer_a = linear_trainer(tmp_path / "a", regression_set(), **settings)
    trainer_a.callbacks.append(JsonlMetrics(tmp_path / "a"))
    trainer_a.fit()
    logged = [r["lr"] for r in read_metrics(tmp_path / "a" / "metrics.jsonl") if "event" not in r]
    assert logged == pytest.approx([lr_at(trainer_a.config, s, 8) for s in range(8)]) and logged[-1] < 0.01
    _, first = linear_trainer(tmp_path / "b", regression_set(), stop_after_steps=3, **settings)
    first.fit()
    model_b, second = linear_trainer(tmp_path / "b", regression_set(), init_seed=7, **settings)
    assert second.fit()["resumed_from_step"] == 3
    assert_same_tensors(state_of(model_a), state_of(model_b))


def test_cosine_run_refuses_to_resume_with_another_length(tmp_path: Path) -> None:
    _, first = linear_trainer(tmp_path, regression_set(), lr_schedule="cosine", stop_after_steps=2)
    first.fit()
    _, longer = linear_trainer(tmp_path, regression_set(), lr_schedule="cosine", epochs=4)
    with pytest.raises(BenchError, match=r"trainer\.epochs: 3 in the checkpoint, 4 now"):
        longer.fit()  # the cosine of the remaining steps would no longer continue the saved one
