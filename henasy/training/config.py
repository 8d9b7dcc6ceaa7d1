"""Run and trainer configuration: the dataclasses and the ``smoke``/``paper`` presets.

Paper defaults (HENASY §4 "Training"; LaViLa ``main_pretrain.py`` flags): AdamW at a fixed learning rate of
3e-5, weight decay 0.01 (LaViLa ``--wd``), betas (0.9, 0.999), eps 1e-8, 5 epochs, a total batch of 128
clips, mixed precision on the GPU. The ``smoke`` preset trains tiny models from scratch on the synthetic set,
which needs a larger learning rate (3e-4; at 1e-3 lavila_tiny's embeddings collapse on the small set) and a
small batch. Overrides (``trainer.lr=1e-4``, ``data.hard_negative_sec=10``, ``model.loss_weights.nec=0.3``)
are parsed, nested, checked and applied by ``henasy.core.overrides``, the one override path of every command.

Model families add their training-data recipe on top of a preset (``FAMILY_PRESETS``, applied before the
user's overrides): HENASY and HelpingHands train with EgoNCE hard negatives (paper Eq. 1, EgoVLP's
scene-aware negative sampling) from the same 600-s segment, as HelpingHands always samples them
(Chuhanxx/helping_hand_for_egocentric_videos @ 46a3852 : data_loader/EgoClip_EgoMCQ_dataset.py,
``chunk_sec = 600``, ``segment_id``), in the ``paper`` preset; both take HelpingHands' caption noun lists
(``henasy.data.caption_nouns``; HENASY §4 uses "the pre-extracted narration's nouns ... from [4]"), and
HelpingHands its LaViLa-rephrased caption positives (``henasy.data.rephrased``) when the file is present.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from henasy.core.errors import BenchError
from henasy.core.overrides import apply, parse

PRECISIONS = ("fp32", "fp16", "bf16")
LR_SCHEDULES = ("fixed", "cosine")
NOUN_LISTS = ("tags", "helpinghands")  # data.noun_list values


@dataclass
class TrainerConfig:
    """Everything the shared trainer needs to know; the defaults are the paper's (HENASY §4)."""

    epochs: int = 5  # HENASY §4: 5 epochs
    batch_size: int = 128  # clips per optimizer step, all processes and accumulation steps together (§4)
    lr: float = 3e-5  # fixed learning rate, no schedule (§4; LaViLa --fix-lr)
    lr_schedule: str = "fixed"  # fixed (§4) | cosine: decay to 0 over the run (short smoke runs), see lr_at
    warmup_steps: int = 0  # linear warm-up from 0 over this many optimizer steps, either schedule
    weight_decay: float = 0.01  # LaViLa --wd; 1-D parameters (biases, norms, temperature) get none
    betas: tuple[float, float] = (0.9, 0.999)  # LaViLa --betas
    eps: float = 1e-8  # LaViLa --eps
    grad_accum_steps: int = 1  # micro-batches per optimizer step (LaViLa --update-freq)
    clip_grad_norm: float | None = None  # max global grad norm; None = no clipping
    precision: str = "fp16"  # fp32 | fp16 (autocast + GradScaler) | bf16 (autocast); mixed only on CUDA
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes (module paths) kept frozen
    checkpoint_every: int = 500  # optimizer steps between last.pt writes (0: only at epoch ends)
    seed: int = 0  # model init, epoch permutations, dropout
    num_workers: int = 0  # DataLoader worker processes per training process
    max_steps: int | None = None  # stop (finished) after this many optimizer steps in total
    stop_after_steps: int | None = (
        None  # stop (unfinished, checkpointed) at this global step: preemption drill
    )
    log_every: int = 1  # optimizer steps between metric reports to the callbacks
    progress: bool = True  # tqdm progress bar on rank 0
    device: str = "auto"  # auto (cuda:LOCAL_RANK when available, else cpu) | cpu | cuda | cuda:N
    find_unused_parameters: bool = False  # DistributedDataParallel option for models with unused branches

    def validate(self) -> None:
        """Raise a ``BenchError`` for values that cannot work."""
        positive = ("epochs", "batch_size", "grad_accum_steps", "log_every")
        for key in positive:
            if getattr(self, key) < 1:
                raise BenchError(f"trainer.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("lr", "weight_decay", "eps", "checkpoint_every", "num_workers"):
            if getattr(self, key) < 0:
                raise BenchError(f"trainer.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("max_steps", "stop_after_steps", "clip_grad_norm"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise BenchError(f"trainer.{key} must be > 0 or null, got {value}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise BenchError(
                f"trainer.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if self.warmup_steps < 0:
            raise BenchError(f"trainer.warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.precision not in PRECISIONS:
            raise BenchError(
                f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.batch_size % self.grad_accum_steps:
            raise BenchError(
                f"trainer.batch_size ({self.batch_size}) must be divisible by trainer.grad_accum_steps "
                f"({self.grad_accum_steps})"
            )


@dataclass
class DataConfig:
    """Which training set and how to sample it."""

    root: str = ""  # dataset root (the layout of henasy/data/layout.py); set by --data
    # EgoNCE hard negatives (Eq. 1): one other clip of the same video_uid + "_" + narration_time // N segment
    # (None: off); HENASY/HelpingHands paper preset: 600 (FAMILY_PRESETS)
    hard_negative_sec: float | None = None
    # HelpingHands' extra EgoNCE positives: "auto" = <root>/ego4d/lavila_rephrased.pth when that file exists,
    # a path = that file (must exist), None = off (only models with ``uses_rephrased_captions`` read them)
    rephrased_captions: str | None = None
    # noun lists for noun-matching losses (HENASY NEC, HelpingHands' word loss): "tags" = EgoClip tag_noun as
    # given; "helpinghands" = caption words matched to the synonyms of the first max_nouns tags, hand/person
    # words left out (henasy.data.caption_nouns, HH extract_noun)
    noun_list: str = "tags"
    max_nouns: int = 4  # "helpinghands" noun lists: at most this many nouns per caption (HH max_n_words)
    limit: int | None = None  # train on the first N clips only (smoke runs)
    on_error: str = "raise"  # unreadable video: "raise" (stop, naming the file) or "skip" (drop it, count it)
    boxes: bool = (
        True  # read hand/object boxes (ego4d/hand_object/) when the folder exists (projection losses)
    )
    verb_phrases: str | None = None  # verb_phrases.json for HENASY's VEC; None: the rule-based extractor

    def validate(self) -> None:
        """Raise a ``BenchError`` for values that cannot work."""
        if self.on_error not in ("raise", "skip"):
            raise BenchError(f"data.on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if self.limit is not None and self.limit < 1:
            raise BenchError(f"data.limit must be >= 1 or null, got {self.limit}")
        if self.hard_negative_sec is not None and self.hard_negative_sec <= 0:
            raise BenchError(f"data.hard_negative_sec must be > 0 or null, got {self.hard_negative_sec}")
        if self.noun_list not in NOUN_LISTS:
            raise BenchError(f"data.noun_list must be one of {', '.join(NOUN_LISTS)}, got {self.noun_list!r}")
        if self.max_nouns < 1:
            raise BenchError(f"data.max_nouns must be >= 1, got {self.max_nouns}")
        if self.rephrased_captions is not None and not str(self.rephrased_captions).strip():
            raise BenchError(
                "data.rephrased_captions must be 'auto', a path to lavila_rephrased.pth, or null; got ''"
            )


@dataclass
class RunConfig:
    """One training run: the registered model, its constructor arguments, the data and the trainer."""

    model: str
    preset: str = "paper"
    model_args: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the model factory
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-serialisable form (tuples become lists)."""
        return to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of ``to_dict``; unknown keys raise a ``BenchError``."""
        if "model" not in data:
            raise BenchError("run config has no 'model' key")
        config = cls(model=str(data["model"]), preset=str(data.get("preset", "paper")))
        config.model_args = dict(data.get("model_args") or {})
        flat: dict[str, Any] = {}
        for section in ("data", "trainer"):
            for key, value in (data.get(section) or {}).items():
                flat[f"{section}.{key}"] = value
        extra = set(data) - {"model", "preset", "model_args", "data", "trainer"}
        if extra:
            raise BenchError(f"run config: unknown top-level keys {sorted(extra)}")
        apply(config, flat)
        return config


# Presets: dotted overrides applied on top of the dataclass defaults (which are the paper's).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    # Tiny models from scratch on the synthetic set: larger lr, small batch, fp32, frequent checkpoints.
    "smoke": {
        "trainer.epochs": 4,
        "trainer.batch_size": 16,
        "trainer.lr": 3e-4,
        "trainer.precision": "fp32",
        "trainer.checkpoint_every": 20,
        # one loader process decodes while the main process trains: lavila_tiny on 2 cores, 80 steps,
        # 49.3 clips/s with 0 workers, 71.5 with 1 (79.5 with OMP_NUM_THREADS=1 too, 75.4 with 2 workers)
        "trainer.num_workers": 1,
    },
}


# EgoNCE hard-negative window of HENASY and HelpingHands: HelpingHands always draws the negative from the
# same 600-s segment (HH @ 46a3852 : data_loader/EgoClip_EgoMCQ_dataset.py, chunk_sec = 600, segment_id);
# EgoVLP's window is its neg_param (showlab/EgoVLP @ 928406c : data_loader/EgoClip_EgoMCQ_dataset.py; 60 in
# that file's __main__, off in the released configs/pt/egoclip.json). HENASY's code is not public; it takes
# HelpingHands' nouns and boxes (§4), so it gets HelpingHands' window.
HARD_NEGATIVE_SEC = 600.0

# Per model family (the name before the first "_"), per preset: dotted overrides applied after the preset.
# Hard negatives double the clips of a step, so the smoke preset leaves them to the sweeps that need them.
_NOUN_LIST = {"data.noun_list": "helpinghands", "data.max_nouns": 4}
FAMILY_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "henasy": {
        "paper": {"data.hard_negative_sec": HARD_NEGATIVE_SEC, **_NOUN_LIST},
        "smoke": dict(_NOUN_LIST),
    },
    "helpinghands": {
        "paper": {
            "data.hard_negative_sec": HARD_NEGATIVE_SEC,
            "data.rephrased_captions": "auto",
            **_NOUN_LIST,
        },
        "smoke": {"data.rephrased_captions": "auto", **_NOUN_LIST},
    },
}


def model_family(model: str) -> str:
    """``henasy_tiny`` → ``henasy``, ``helpinghands_tsfl`` → ``helpinghands``: the key of ``FAMILY_PRESETS``."""
    return model.split("_", 1)[0]


def default_preset(model: str) -> str:
    """``smoke`` for the tiny/test presets of a model family (names ending in _tiny or _test), else ``paper``."""
    return "smoke" if model.endswith(("_tiny", "_test")) else "paper"


def build_run_config(
    model: str,
    data_root: str = "",
    *,
    preset: str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> RunConfig:
    """The run config of ``model``: defaults, then ``preset``, then the model family's additions to it
    (``FAMILY_PRESETS``), then ``overrides`` (``key=value`` strings or a dict)."""
    preset = preset or default_preset(model)
    if preset not in PRESETS:
        raise BenchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    config = RunConfig(model=model, preset=preset)
    config.data.root = str(data_root)
    apply(config, PRESETS[preset])
    apply(config, FAMILY_PRESETS.get(model_family(model), {}).get(preset, {}))
    if overrides:
        apply(config, overrides if isinstance(overrides, dict) else parse(overrides))
    config.data.validate()
    config.trainer.validate()
    return config


def to_plain(obj: Any) -> Any:
    """Tuples → lists, recursively (JSON/YAML friendly)."""
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def lr_at(config: TrainerConfig, step: int, total_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based) of ``total_steps``: ``trainer.lr`` (``fixed``, the
    paper's §4 setting) or ``lr · ½(1 + cos(π·p))`` with p the fraction of the post-warm-up steps done
    (``cosine``); both ramp linearly from ``lr/warmup_steps`` to ``lr`` over the first ``warmup_steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.lr_schedule == "fixed":
        return config.lr
    span = max(1, total_steps - config.warmup_steps)
    done = min(1.0, (step - config.warmup_steps) / span)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * done))
