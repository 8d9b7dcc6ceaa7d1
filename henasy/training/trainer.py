"""The shared trainer every model and every sweep job runs.

Follows the recipe of HENASY §4 "Training" and LaViLa's ``main_pretrain.py``: AdamW at a fixed learning
rate with weight decay on matrices only (1-D parameters — biases, norms, temperatures — get none), mixed
precision on the GPU (``torch.autocast`` + ``GradScaler``; bf16 without scaler), gradient accumulation,
frozen modules (``requires_grad`` off, kept in eval mode, left out of the optimizer) and
``DistributedDataParallel`` when launched with several processes (``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` as
torchrun or submitit export them; gloo on CPU, NCCL on GPU).

Restartability is the point of this module: the order of the clips of epoch ``e`` is a pure function of
``(seed, e)`` and ``last.pt`` (written atomically every ``checkpoint_every`` steps and at each epoch end)
holds the model, optimizer, scaler, every RNG state (as tensors and plain types, so it loads with
``torch.load(weights_only=True)``), the epoch and the step within it. A restarted run skips the batches the
checkpoint already consumed without loading their videos and ends with bit-identical weights.

Nothing non-finite is ever saved: before each write the model and optimizer state are checked, and a
non-finite loss or state stops the run with a message that names the last finite ``last.pt`` (or says that
none was written). A write that fails on a full or read-only disk says so and that the previous ``last.pt``
is intact (``henasy.core.atomic.WriteFailed``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from henasy.core.atomic import WriteFailed, atomic_torch_save, atomic_write_json
from henasy.core.errors import BenchError, CheckpointError
from henasy.training.callbacks import Callback
from henasy.training.config import TrainerConfig, lr_at, to_plain

CHECKPOINT_NAME = "last.pt"
SUMMARY_NAME = "summary.json"
CHECKPOINT_FORMAT = "henasy-train-state"
CHECKPOINT_VERSION = 1
# Trainer settings that change the optimisation trajectory: resuming with different values is refused.
TRAJECTORY_KEYS = (
    "batch_size",
    "lr",
    "weight_decay",
    "betas",
    "eps",
    "grad_accum_steps",
    "clip_grad_norm",
    "freeze",
    "seed",
    "lr_schedule",
    "warmup_steps",
)


# ----------------------------------------------------------------------------------------------- processes
@dataclass
class DistInfo:
    """Where this process sits in the (possibly single-process) job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # this trainer created the process group (and destroys it at the end)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the process group that torchrun/submitit describe in the environment (or one already set up)."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        dev = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BenchError(f"trainer.device={device!r} but CUDA is not available; use trainer.device=cpu")
        torch.cuda.set_device(dev)
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), local_rank, dist.get_world_size(), dev, owns_group=False)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo(0, 0, 1, dev)
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise BenchError(
            f"WORLD_SIZE={world_size} but {', '.join(missing)} not set; launch with torchrun or export them "
            "(submitit: submitit.helpers.TorchDistributedEnvironment().export())"
        )
    dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", init_method="env://")
    return DistInfo(dist.get_rank(), local_rank, world_size, dev, owns_group=True)


# --------------------------------------------------------------------------------------------- data order
def epoch_permutation(num_items: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the clips in ``epoch``: a pure function of ``(seed, epoch)``, identical on every rank."""
    mixed = int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)
    gen = torch.Generator().manual_seed(mixed)
    return torch.randperm(num_items, generator=gen)  # (N,)


class EpochBatchSampler(Sampler[list[int]]):
    """This rank's micro-batches of one epoch, starting at optimizer step ``start_step``.

    Global step ``s`` uses clips ``perm[s*B:(s+1)*B]`` (B = ``batch_size``, the total batch); rank ``r`` takes
    the contiguous ``r``-th of ``world_size`` shards of it and splits that into ``accum`` micro-batches. So one
    process with accumulation ``k`` sees exactly the clips that ``k`` processes see, and the skipped steps of
    a resumed epoch are never read.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        *,
        seed: int,
        epoch: int,
        start_step: int = 0,
        accum: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size % (accum * world_size):
            raise BenchError(
                f"trainer.batch_size ({batch_size}) must be divisible by grad_accum_steps × processes "
                f"({accum} × {world_size})"
            )
        self.num_items, self.batch_size, self.seed, self.epoch = num_items, batch_size, seed, epoch
        self.start_step, self.accum, self.rank, self.world_size = start_step, accum, rank, world_size
        self.steps_per_epoch = num_items // batch_size  # the incomplete last batch is dropped

    def __iter__(self) -> Iterator[list[int]]:
        perm = epoch_permutation(self.num_items, self.seed, self.epoch)
        shard = self.batch_size // self.world_size
        micro = shard // self.accum
        for step in range(self.start_step, self.steps_per_epoch):
            mine = perm[step * self.batch_size + self.rank * shard :][:shard]  # (B / world,)
            for a in range(self.accum):
                yield mine[a * micro : (a + 1) * micro].tolist()

    def __len__(self) -> int:
        return max(0, self.steps_per_epoch - self.start_step) * self.accum


# ------------------------------------------------------------------------------------------------ RNG state
def capture_rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states as tensors and plain types (``weights_only`` loadable)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss},
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Inverse of ``capture_rng_state``."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if device is not None and device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------- finite state
def non_finite_tensor(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> str | None:
    """Name of the first model tensor or optimizer state tensor holding a NaN/Inf (None: all finite)."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return f"model tensor {name}"
    if optimizer is None:
        return None
    names = {id(p): n for n, p in model.named_parameters()}
    for param, state in optimizer.state.items():
        for key, value in state.items():
            if (
                isinstance(value, torch.Tensor)
                and value.is_floating_point()
                and not bool(torch.isfinite(value).all())
            ):
                return f"optimizer state {key} of {names.get(id(param), 'a parameter')}"
    return None


# ----------------------------------------------------------------------------------------- freezing, optim
def _matches(name: str, prefix: str) -> bool:
    """``prefix`` is a module path: "visual" matches "visual.blocks.0.w" and "visual", not "visual_proj"."""
    if prefix.endswith("."):
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".")


def freeze_parameters(model: nn.Module, prefixes: Sequence[str]) -> list[nn.Module]:
    """Turn ``requires_grad`` off under each prefix; return the frozen modules (to keep in eval mode)."""
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(_matches(n, prefix) for n in names):
            tops = sorted({n.split(".")[0] for n in names})
            raise BenchError(
                f"trainer.freeze: {prefix!r} matches no parameter of {type(model).__name__}; "
                f"prefixes are module paths such as {', '.join(tops[:20])}"
            )
    for name, param in model.named_parameters():
        if any(_matches(name, p) for p in prefixes):
            param.requires_grad_(False)
    return [m for n, m in model.named_modules() if n and any(_matches(n, p) for p in prefixes)]


def build_optimizer(model: nn.Module, config: TrainerConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; 1-D ones (biases, norms, temperature) without weight decay.

    The decay split mirrors LaViLa ``main_pretrain.py`` (``p.ndim < 2`` → weight decay 0).
    """
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    if not decay and not no_decay:
        raise BenchError("every parameter is frozen (trainer.freeze); nothing to train")
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=config.lr, betas=tuple(config.betas), eps=config.eps
    )


class _LossModule(nn.Module):
    """Routes ``forward`` to ``training_losses`` so DistributedDataParallel sees the call it hooks into."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.model.training_losses(batch)


def _set_epoch(dataset: Any, epoch: int) -> None:
    """Call ``set_epoch`` on the dataset, or on the one it wraps (``Subset``, ``SkipErrors``), if it has one.

    Datasets whose per-item randomness is a function of (seed, epoch, index) — ``EgoClipDataset`` — stay
    exactly reproducible across restarts and worker counts.
    """
    while dataset is not None:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
            return
        dataset = getattr(dataset, "dataset", None)


def _to_device(obj: Any, device: torch.device) -> Any:
    """Move every tensor inside nested dicts/lists/tuples to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


# ------------------------------------------------------------------------------------------------- trainer
@dataclass
class Progress:
    """Where a run stands; saved in ``last.pt`` (plain types only)."""

    step: int = 0  # optimizer steps done, over all epochs
    epoch: int = 0  # current epoch (0-based)
    step_in_epoch: int = 0  # optimizer steps done in the current epoch
    first_metrics: dict[str, float] | None = None  # metrics of step 1
    last_metrics: dict[str, float] | None = None  # metrics of the latest step
    train_s: float = 0.0  # training seconds over every invocation
    epoch_sums: dict[str, float] = dataclasses.field(default_factory=dict)  # loss-term sums of this epoch
    epoch_steps: int = 0  # steps those sums cover

    def record(self, terms: dict[str, float], metrics: dict[str, float]) -> None:
        """Account for one finished optimizer step."""
        if self.first_metrics is None:
            self.first_metrics = dict(metrics)
        self.last_metrics = dict(metrics)
        for key, value in terms.items():
            self.epoch_sums[key] = self.epoch_sums.get(key, 0.0) + value
        self.epoch_steps += 1

    def close_epoch(self) -> dict[str, float]:
        """Move to the next epoch; return the finished epoch's mean loss terms (and its last ``step``)."""
        means = {k: v / max(self.epoch_steps, 1) for k, v in self.epoch_sums.items()}
        means["step"] = self.step
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        self.epoch_sums, self.epoch_steps = {}, 0
        return means


class Trainer:
    """Train ``model`` (a ``henasy.core.interface.VideoTextModel``) on ``dataset``; resumable from ``last.pt``.

    ``collate_fn`` turns a list of items into a batch (in the DataLoader workers); ``prepare_batch``, if
    given, runs on each batch in the training process before it moves to the device; ``run_info`` (plain
    values) is stored in the checkpoint and must match on resume, like the trajectory settings of ``config``.
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        config: TrainerConfig,
        run_dir: str | Path,
        *,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        prepare_batch: Callable[[Any], Any] | None = None,
        callbacks: Sequence[Callback] = (),
        run_info: dict[str, Any] | None = None,
    ) -> None:
        config.validate()
        self.model = model
        self.dataset = dataset
        self.config = config
        self.run_dir = Path(run_dir)
        self.collate_fn = collate_fn
        self.prepare_batch = prepare_batch
        self.callbacks = list(callbacks)
        self.run_info = dict(run_info or {})
        self.num_items = len(dataset)  # type: ignore[arg-type]
        if self.num_items < config.batch_size:
            raise BenchError(
                f"the training set has {self.num_items} clips, fewer than trainer.batch_size={config.batch_size}; "
                "lower the batch size (--set trainer.batch_size=N) or use more data"
            )
        self.steps_per_epoch = self.num_items // config.batch_size
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.dist = DistInfo()
        self.precision = "fp32"  # what actually runs: mixed precision only on CUDA
        self.saved_step: int | None = None  # step of the last.pt this run resumed from or wrote (None: none)
        self._foreign_checkpoint = False  # a last.pt from before --no-resume is still in the folder

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    # -------------------------------------------------------------------------------------------- fit
    def fit(self, resume: bool = True) -> dict[str, Any]:
        """Train to the end (or to ``stop_after_steps``); resume from ``last.pt`` when ``resume`` and it exists.

        Returns the summary (also written to ``summary.json``); ``summary["already_finished"]`` is true when
        ``last.pt`` had already reached the last step and nothing was trained.
        """
        self.dist = setup_distributed(self.config.device)
        try:
            return self._fit(resume)
        finally:
            if self.dist.owns_group:
                dist.destroy_process_group()

    def _fit(self, resume: bool) -> dict[str, Any]:
        cfg, info = self.config, self.dist
        ckpt = self._load_checkpoint() if resume and self.checkpoint_path.exists() else None
        self.saved_step = None if ckpt is None else int(ckpt["progress"]["step"])
        self._foreign_checkpoint = ckpt is None and self.checkpoint_path.exists()
        if ckpt is not None:
            self._check_compatible(ckpt)
            if ckpt["progress"]["step"] >= self.total_steps:
                return self._already_finished(ckpt)

        frozen_modules = freeze_parameters(self.model, cfg.freeze)
        self.model.to(info.device)
        if ckpt is not None:
            self._load_model_state(ckpt["model"])
        optimizer = build_optimizer(self.model, cfg)
        mixed = info.device.type == "cuda" and cfg.precision != "fp32"
        self.precision = cfg.precision if mixed else "fp32"
        scaler = torch.amp.GradScaler(info.device.type, enabled=self.precision == "fp16")
        if ckpt is not None:
            optimizer.load_state_dict(ckpt["optimizer"])
            scaler.load_state_dict(ckpt["scaler"])
            self._refuse_non_finite_checkpoint(optimizer)
            restore_rng_state(ckpt["rng"][info.rank % len(ckpt["rng"])], info.device)
            progress = Progress(**ckpt["progress"])
        else:
            seed_everything(cfg.seed + info.rank)
            progress = Progress()
        if info.is_main:  # training goes on: a summary left in this folder by an earlier invocation is stale
            (self.run_dir / SUMMARY_NAME).unlink(missing_ok=True)

        loss_module: nn.Module = _LossModule(self.model)
        if info.world_size > 1:
            loss_module = nn.parallel.DistributedDataParallel(
                loss_module,
                device_ids=[info.device.index] if info.device.type == "cuda" else None,
                find_unused_parameters=cfg.find_unused_parameters,
            )
        counts = {
            "trainable_params": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            "frozen_params": sum(p.numel() for p in self.model.parameters() if not p.requires_grad),
        }
        start_step = progress.step
        self._emit(
            "on_train_start",
            {
                "run_dir": str(self.run_dir),
                "resumed": ckpt is not None,
                "start_step": start_step,
                "total_steps": self.total_steps,
                "steps_per_epoch": self.steps_per_epoch,
                "world_size": info.world_size,
                "device": str(info.device),
                "precision": self.precision,
                **counts,
            },
        )
        t_start = time.perf_counter()
        train_s_before = progress.train_s
        bar = self._progress_bar(start_step)
        try:
            while progress.step < self.total_steps and not self._should_stop(progress.step):
                batches = self._epoch_batches(progress)
                while progress.step_in_epoch < self.steps_per_epoch:
                    terms = self._train_step(
                        loss_module, optimizer, scaler, batches, frozen_modules, progress
                    )
                    progress.step += 1
                    progress.step_in_epoch += 1
                    elapsed = time.perf_counter() - t_start
                    progress.train_s = train_s_before + elapsed
                    metrics = {
                        **terms,
                        "lr": optimizer.param_groups[0]["lr"],
                        "epoch": progress.epoch + progress.step_in_epoch / self.steps_per_epoch,
                        "clips_per_s": (progress.step - start_step) * cfg.batch_size / max(elapsed, 1e-9),
                    }
                    if scaler.is_enabled():
                        metrics["grad_scale"] = float(scaler.get_scale())
                    progress.record(terms, metrics)
                    if progress.step % cfg.log_every == 0 or progress.step == self.total_steps:
                        self._emit("on_step", progress.step, metrics)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{terms['loss']:.4f}", clips_s=f"{metrics['clips_per_s']:.1f}")
                    done = progress.step >= self.total_steps
                    stopped = not done and self._should_stop(progress.step)
                    if progress.step_in_epoch == self.steps_per_epoch:
                        epoch_metrics = progress.close_epoch()
                        self._save(optimizer, scaler, progress)
                        self._emit("on_epoch_end", progress.epoch - 1, epoch_metrics)
                        break  # a fresh sampler for the next epoch, or the end
                    if (
                        done
                        or stopped
                        or (cfg.checkpoint_every and progress.step % cfg.checkpoint_every == 0)
                    ):
                        self._save(optimizer, scaler, progress)
                    if done or stopped:
                        break
                del batches
        finally:
            if bar is not None:
                bar.close()
        wall = time.perf_counter() - t_start
        summary = self._summary(progress, counts)
        summary["resumed_from_step"] = start_step if ckpt is not None else None
        summary["wall_s"] = wall
        summary["clips_per_s"] = (progress.step - start_step) * cfg.batch_size / max(wall, 1e-9)
        self._emit("on_train_end", summary)  # callbacks may add keys before it is written
        if info.is_main:
            atomic_write_json(self.run_dir / SUMMARY_NAME, summary)
        return summary

    def _epoch_batches(self, progress: Progress) -> Iterator[Any]:
        """This rank's micro-batches for the rest of ``progress.epoch`` (consumed steps are never loaded)."""
        cfg, info = self.config, self.dist
        sampler = EpochBatchSampler(
            self.num_items,
            cfg.batch_size,
            seed=cfg.seed,
            epoch=progress.epoch,
            start_step=progress.step_in_epoch,
            accum=cfg.grad_accum_steps,
            rank=info.rank,
            world_size=info.world_size,
        )
        loader = DataLoader(
            self.dataset,
            batch_sampler=sampler,
            collate_fn=self.collate_fn,
            num_workers=cfg.num_workers,
            pin_memory=info.device.type == "cuda",
            # Its own generator: creating the iterator must not draw from the global torch RNG.
            generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + progress.epoch),
        )
        _set_epoch(self.dataset, progress.epoch)  # before the iterator exists: workers copy the dataset
        return iter(loader)

    # ------------------------------------------------------------------------------------------- step
    def _train_step(
        self,
        loss_module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        batches: Iterator[Any],
        frozen_modules: list[nn.Module],
        progress: Progress,
    ) -> dict[str, float]:
        """One optimizer step over ``grad_accum_steps`` micro-batches; returns the mean loss terms."""
        cfg, device = self.config, self.dist.device
        accum = cfg.grad_accum_steps
        for group in optimizer.param_groups:  # a function of the step alone: resumes exactly
            group["lr"] = lr_at(cfg, progress.step, self.total_steps)
        self.model.train()
        for module in frozen_modules:
            module.eval()  # frozen modules keep their eval behaviour (dropout off, norm statistics fixed)
        amp_dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        sums: dict[str, float] = {}
        for micro in range(accum):
            batch = next(batches)
            if self.prepare_batch is not None:
                batch = self.prepare_batch(batch)
            batch = _to_device(batch, device)
            no_sync = getattr(
                loss_module, "no_sync", None
            )  # DDP: reduce gradients on the last micro-batch only
            sync = no_sync() if no_sync is not None and micro < accum - 1 else contextlib.nullcontext()
            with sync:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=self.precision != "fp32"):
                    losses = loss_module(batch)
                values = self._reduce_and_check(losses, progress, micro)
                scaler.scale(losses["loss"].float() / accum).backward()
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + value / accum
        if cfg.clip_grad_norm is not None:
            scaler.unscale_(optimizer)
            params = [p for p in self.model.parameters() if p.requires_grad]
            sums["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm))
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return sums

    def _reduce_and_check(
        self, losses: dict[str, torch.Tensor], progress: Progress, micro: int
    ) -> dict[str, float]:
        """Loss terms averaged over processes; a NaN/Inf anywhere stops every process with a ``BenchError``."""
        if not isinstance(losses, dict) or "loss" not in losses:
            got = sorted(losses) if isinstance(losses, dict) else type(losses).__name__
            raise BenchError(
                f"{type(self.model).__name__}.training_losses returned {got}; it must return a dict of scalar "
                "tensors with the total under 'loss'"
            )
        keys = ["loss"] + sorted(k for k in losses if k != "loss")
        stacked = torch.stack([losses[k].detach().float().reshape(()) for k in keys])  # (K,)
        if self.dist.world_size > 1:
            dist.all_reduce(stacked)
            stacked /= self.dist.world_size
        values = dict(zip(keys, stacked.tolist()))
        if not all(math.isfinite(v) for v in values.values()):
            accum = self.config.grad_accum_steps
            where = f"step {progress.step + 1} (epoch {progress.epoch}"
            where += f", micro-batch {micro + 1}/{accum})" if accum > 1 else ")"
            terms = ", ".join(f"{k}={v:.6g}" for k, v in values.items())
            raise BenchError(
                f"non-finite training loss at {where}: {terms}. The run stopped; {self._last_finite()}. "
                f"{self._divergence_advice()}"
            )
        return values

    def _should_stop(self, step: int) -> bool:
        return self.config.stop_after_steps is not None and step >= self.config.stop_after_steps

    # -------------------------------------------------------------------------------------- checkpoints
    def _save(
        self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, progress: Progress
    ) -> None:
        """Write ``last.pt`` atomically (rank 0), with every rank's RNG state (a collective call).

        A state with a non-finite tensor is not written: the run stops naming the tensor and the last
        finite checkpoint.
        """
        self._refuse_non_finite_state(optimizer, progress)
        rng = capture_rng_state(self.dist.device)
        rngs = [rng]
        if self.dist.world_size > 1:
            rngs = [None] * self.dist.world_size
            dist.all_gather_object(rngs, rng)
        if not self.dist.is_main:
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "progress": dataclasses.asdict(progress),
            "total_steps": self.total_steps,
            "finished": progress.step >= self.total_steps,
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": rngs,
            "trainer_config": to_plain(dataclasses.asdict(self.config)),
            "run_info": self.run_info,
            "world_size": self.dist.world_size,
        }
        try:
            atomic_torch_save(self.checkpoint_path, state)
        except WriteFailed as err:
            raise err.with_hint(self._previous_checkpoint()) from err
        self.saved_step = progress.step
        self._emit("on_checkpoint", self.checkpoint_path)

    def _refuse_non_finite_state(self, optimizer: torch.optim.Optimizer, progress: Progress) -> None:
        """Stop (every rank alike) before a state holding NaN/Inf weights or optimizer moments is saved."""
        bad = non_finite_tensor(self.model, optimizer)
        if self.dist.world_size > 1:  # the replicas are identical, but every rank must take the same branch
            flag = torch.tensor([float(bad is not None)], device=self.dist.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            bad = bad or ("a tensor on another process" if flag.item() else None)
        if bad is not None:
            raise BenchError(
                f"{bad} became non-finite in the update of step {progress.step}, although the loss was "
                "finite; that state was not saved. The run stopped; "
                f"{self._last_finite()}. {self._divergence_advice()}"
            )

    def _refuse_non_finite_checkpoint(self, optimizer: torch.optim.Optimizer) -> None:
        """A resumed ``last.pt`` must be finite too (one written before this check existed may not be)."""
        bad = non_finite_tensor(self.model, optimizer)
        if bad is not None:
            raise CheckpointError(
                f"{self.checkpoint_path} (step {self.saved_step}) holds a non-finite {bad}; it cannot be "
                "resumed. Start over with --no-resume or choose another --out"
            )

    def _last_finite(self) -> str:
        """Which ``last.pt`` holds the last finite state, as far as this run knows (for error messages)."""
        if self.saved_step is not None:
            return f"{self.checkpoint_path} (step {self.saved_step}) is the last finite state"
        if self._foreign_checkpoint:
            return (
                f"no checkpoint was written by this run ({self.checkpoint_path} is from before --no-resume)"
            )
        return "no checkpoint was written"

    def _divergence_advice(self) -> str:
        advice = "Try a lower trainer.lr, trainer.clip_grad_norm=1.0 or trainer.precision=fp32"
        if self.saved_step is None:
            return advice + "."
        return advice + f" (a run cannot resume {CHECKPOINT_NAME} with other settings: add --no-resume)."

    def _previous_checkpoint(self) -> str:
        """What a failed ``last.pt`` write left in place, and how to go on (for error messages)."""
        if self.saved_step is not None:
            return (
                f"the previous {CHECKPOINT_NAME} (step {self.saved_step}) is intact; once the problem is "
                "fixed, rerun the same command to resume from it"
            )
        if self._foreign_checkpoint:
            return (
                f"no checkpoint was written by this run; the {CHECKPOINT_NAME} from before --no-resume is "
                "intact"
            )
        return "no checkpoint was written yet; once the problem is fixed, rerun the same command"

    def _load_checkpoint(self) -> dict[str, Any]:
        path = self.checkpoint_path
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # any unpickling failure means a bad file
            raise CheckpointError(
                f"{path}: cannot load the training state ({err.__class__.__name__}: {err}); delete it or train "
                "with --no-resume"
            ) from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path}: not a henasy training checkpoint (no format={CHECKPOINT_FORMAT!r})"
            )
        if ckpt.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{path}: training-state version {ckpt.get('version')}, expected {CHECKPOINT_VERSION}"
            )
        return ckpt

    def _check_compatible(self, ckpt: dict[str, Any]) -> None:
        """Refuse to continue a run whose trajectory settings differ from the current ones."""
        saved = ckpt.get("trainer_config", {})
        now = to_plain(dataclasses.asdict(self.config))
        defaults = to_plain(
            dataclasses.asdict(TrainerConfig())
        )  # keys added later: older checkpoints had the default
        keys = TRAJECTORY_KEYS + (("epochs", "max_steps") if now["lr_schedule"] != "fixed" else ())
        diffs = [
            f"trainer.{k}: {saved.get(k, defaults[k])!r} in the checkpoint, {now[k]!r} now"
            for k in keys
            if saved.get(k, defaults[k]) != now[k]
        ]
        saved_info = ckpt.get("run_info", {})
        diffs += [
            f"{k}: {saved_info.get(k)!r} in the checkpoint, {self.run_info.get(k)!r} now"
            for k in sorted(set(saved_info) | set(self.run_info))
            if saved_info.get(k) != self.run_info.get(k)
        ]
        if diffs:
            raise BenchError(
                f"{self.checkpoint_path} belongs to a run with other settings ({'; '.join(diffs)}). Resume with the "
                "same settings, start over with --no-resume, or choose another --out"
            )

    def _load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        result = self.model.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"{self.checkpoint_path} does not fit {type(self.model).__name__}: missing "
                f"{result.missing_keys[:10]}, unexpected {result.unexpected_keys[:10]}"
            )

    def _already_finished(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        path = self.run_dir / SUMMARY_NAME
        if path.exists():
            summary = json.loads(path.read_text(encoding="utf-8"))
        else:  # killed between the last checkpoint and the summary
            summary = self._summary(Progress(**ckpt["progress"]), {})
            if self.dist.is_main:
                atomic_write_json(path, summary)
        summary["already_finished"] = True
        return summary

    # ------------------------------------------------------------------------------------------- misc
    def _summary(self, progress: Progress, counts: dict[str, int]) -> dict[str, Any]:
        first, last = progress.first_metrics or {}, progress.last_metrics or {}
        finished = progress.step >= self.total_steps
        return {
            "status": "finished" if finished else "stopped",
            "finished": finished,
            "already_finished": False,
            "step": progress.step,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "epoch": progress.epoch + progress.step_in_epoch / self.steps_per_epoch,
            "first_loss": first.get("loss"),
            "final_loss": last.get("loss"),
            "first_metrics": first,
            "final_metrics": last,
            "train_s": progress.train_s,
            "world_size": self.dist.world_size,
            "device": str(self.dist.device),
            "precision": self.precision,
            **counts,
            "checkpoint": CHECKPOINT_NAME,
            "config": to_plain(dataclasses.asdict(self.config)),
            "run_info": self.run_info,
        }

    def _progress_bar(self, initial: int) -> Any:
        if not (self.config.progress and self.dist.is_main):
            return None
        from tqdm import tqdm

        return tqdm(total=self.total_steps, initial=initial, unit="step", dynamic_ncols=True, desc="train")

    def _emit(self, hook: str, *args: Any) -> None:
        if not self.dist.is_main:
            return
        for callback in self.callbacks:
            getattr(callback, hook)(*args)
