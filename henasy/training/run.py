"""One training run from a ``RunConfig``: what ``bench train`` and every sweep job call.

``train_run(config, run_dir)`` builds the registered model (``henasy.core.catalog.MODELS``), the EgoClip training
set of ``config.data.root`` with a clip loader sized from the model (``num_frames``, ``image_size``,
``pixel_mean``, ``pixel_std``), a collate that tokenises the narrations with ``model.tokenize`` and appends
the EgoNCE hard negatives after the positives (EgoVLP's batch formation, HENASY §3 Eq. 1: B̃ = 2B), and runs
the shared ``Trainer``. The data recipe (``data.hard_negative_sec``, ``data.noun_list``,
``data.rephrased_captions``: henasy/training/config.py ``FAMILY_PRESETS``) shapes the items; the file actually
used for rephrased captions is reported in ``summary.json`` (``data_recipe``). The resolved config goes to ``<run_dir>/config.json`` next to ``last.pt``,
``metrics.jsonl`` and ``summary.json``. The run folder is locked for the whole run (``henasy.core.runlock``: one
writer per folder), after the dataset root and the folder were checked and before any model is built.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from henasy.core.atomic import atomic_write_json
from henasy.core.errors import BenchError
from henasy.core.runlock import run_lock
from henasy.training.callbacks import Callback, JsonlMetrics
from henasy.training.config import RunConfig
from henasy.training.trainer import Trainer, seed_everything

if TYPE_CHECKING:
    from henasy.data.layout import DatasetLayout

CONFIG_NAME = "config.json"
SKIPPED_KEY = "_skipped"  # clips whose video could not be read (henasy.data.batching.SkippedItem)
NEGATIVE_PREFIX = "neg_"  # EgoClipDataset's hard-negative copies: neg_video, neg_text, neg_verb_tags, ...


def build_model(config: RunConfig, *, checkpoint: str | Path | None = None) -> nn.Module:
    """The registered model ``config.model`` built by ``henasy.core.factory.create_model`` with
    ``config.model_args`` (weights such as ``lavila_checkpoint`` included), initialised from the run seed,
    then ``checkpoint`` (whole-model weights) loaded when given."""
    from henasy.core.factory import create_model

    seed_everything(config.trainer.seed)  # same initial weights on every rank and every restart
    weights = {} if checkpoint is None else {"checkpoint": checkpoint}
    return create_model(config.model, **{**config.model_args, **weights})


def rephrased_captions_file(config: RunConfig, model: nn.Module | None = None) -> Path | None:
    """The ``lavila_rephrased.pth`` this run reads, or None.

    ``data.rephrased_captions``: ``"auto"`` = ``<root>/ego4d/lavila_rephrased.pth`` when it exists and the model
    uses rephrased captions (``uses_rephrased_captions``, HelpingHands); a path = that file, which must exist,
    for a model that uses them; None = off.
    """
    from henasy.data.layout import DatasetLayout

    setting = config.data.rephrased_captions
    uses = model is None or bool(getattr(model, "uses_rephrased_captions", False))
    if setting is None:
        return None
    if setting == "auto":
        path = DatasetLayout(config.data.root).lavila_rephrased
        return path if uses and path.is_file() else None
    if not uses:
        raise BenchError(
            f"data.rephrased_captions={setting!r}: {config.model} does not use rephrased captions (only "
            "HelpingHands' EgoNCE does); set data.rephrased_captions=null"
        )
    path = Path(setting)
    if not path.is_file():
        raise BenchError(
            f"data.rephrased_captions: {path} not found (HelpingHands' lavila_rephrased.pth; 'auto' takes "
            "<root>/ego4d/lavila_rephrased.pth when present, null trains without it)"
        )
    return path


def build_train_set(config: RunConfig, model: nn.Module, *, rephrased: Path | None) -> Dataset:
    """EgoClip training clips of ``config.data.root`` loaded as the model expects (optionally the first N);
    ``rephrased``: the caption file ``rephrased_captions_file`` resolved for this run, or None."""
    from henasy.data.batching import SkipErrors
    from henasy.data.egoclip_dataset import EgoClipDataset
    from henasy.data.rephrased import load_rephrased
    from henasy.data.taxonomy import load_taxonomy
    from henasy.data.video import ClipLoader

    layout = check_data_root(config)
    num_verbs = len(load_taxonomy(layout.verb_taxonomy_csv))
    noun_taxonomy = load_taxonomy(layout.noun_taxonomy_csv)
    clip_loader = ClipLoader.for_model(model, jitter=True, seed=config.trainer.seed)
    dataset: Dataset = EgoClipDataset(
        config.data.root,
        clip_loader,
        num_verbs,
        len(noun_taxonomy),
        hard_negative_sec=config.data.hard_negative_sec,
        seed=config.trainer.seed,
        hand_object=config.data.boxes and layout.hand_object.is_dir(),
        noun_list=config.data.noun_list,  # type: ignore[arg-type]
        noun_taxonomy=noun_taxonomy,
        max_nouns=config.data.max_nouns,
        rephrased=load_rephrased(rephrased) if rephrased is not None else None,
    )
    if config.data.limit is not None:
        size = len(dataset)  # type: ignore[arg-type]
        dataset = Subset(dataset, range(min(config.data.limit, size)))
    return SkipErrors(dataset)  # read errors travel as data, so workers report them with their file name


def check_data_root(config: RunConfig) -> DatasetLayout:
    """The layout of ``config.data.root``; a ``BenchError`` saying what is wrong unless it has egoclip.csv."""
    from henasy.data.layout import DatasetLayout

    if not config.data.root:
        raise BenchError("no dataset root given: pass --data DIR (the folder that holds ego4d/egoclip.csv)")
    layout = DatasetLayout(config.data.root)
    if layout.egoclip_csv.is_file():
        return layout
    root = Path(config.data.root)
    if not root.exists():
        problem = f"the dataset root {root} (--data) does not exist"
    elif not root.is_dir():
        problem = f"the dataset root {root} (--data) is a file, not a folder"
    else:
        problem = f"--data must be a dataset root holding ego4d/egoclip.csv; {root} holds none"
    raise BenchError(
        f"{layout.egoclip_csv} not found: {problem} (write a synthetic one with `bench data synth --out DIR`)"
    )


class TrainCollate:
    """Dataset items → one training batch for ``model.training_losses``.

    With hard negatives (items carrying ``neg_video``, ``neg_text``, ``neg_verb_tags``, ...) every field gets
    the B negatives appended after the B positives, in the same order, so ``video`` is (B̃, C, T, H, W) and
    ``text`` (B̃, L) token ids with B̃ = 2B (EgoVLP's batch formation); otherwise B̃ = B. Tensors are stacked
    (``verb_tags``/``noun_tags``/``caption_noun_tags`` → (B̃, classes) multi-hot), numbers become tensors,
    strings stay lists (``henasy.data.batching.collate``); ``num_positives`` = B. Items with
    ``rephrased_texts`` (HelpingHands' positives, the narration first) give ``rephrased_text`` (B̃, 5, L) ids
    and ``rephrased_valid`` (B̃, 5) bool (empty slots are padding, as HH's 5 slots). Items that failed to load
    (``SkippedItem``) are listed under ``_skipped`` for the skip policy.
    """

    def __init__(self, tokenize: Callable[[list[str]], torch.Tensor]) -> None:
        self.tokenize = tokenize

    def __call__(self, items: list[Any]) -> dict[str, Any]:
        from henasy.data.batching import collate

        skipped = [item for item in items if not isinstance(item, dict)]  # batching.SkippedItem: read errors
        positives = [item for item in items if isinstance(item, dict)]
        if not positives:
            return {SKIPPED_KEY: skipped}
        rows = [{k: v for k, v in item.items() if not k.startswith(NEGATIVE_PREFIX)} for item in positives]
        if all(f"{NEGATIVE_PREFIX}video" in item for item in positives):
            n = len(NEGATIVE_PREFIX)
            rows += [
                {k[n:]: v for k, v in item.items() if k.startswith(NEGATIVE_PREFIX)} for item in positives
            ]
        batch = collate(rows)
        batch.pop(SKIPPED_KEY, None)
        # raw narrations (B̃,): HENASY's VEC extracts verb phrases from them
        batch["texts"] = list(batch["text"])
        batch["text"] = self.tokenize(batch["text"])  # (B̃, L)
        if "rephrased_texts" in batch:
            batch["rephrased_text"], batch["rephrased_valid"] = self._captions(batch.pop("rephrased_texts"))
        batch["num_positives"] = len(positives)
        if skipped:
            batch[SKIPPED_KEY] = skipped
        return batch

    def _captions(self, lists: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-clip caption lists (1–5 each) → ids (B̃, 5, L) and validity (B̃, 5); empty slots are zeros."""
        from henasy.data.rephrased import MAX_CAPTIONS

        valid = torch.zeros(len(lists), MAX_CAPTIONS, dtype=torch.bool)  # (B̃, R)
        flat = [text for captions in lists for text in captions[:MAX_CAPTIONS]]
        for row, captions in enumerate(lists):
            valid[row, : min(len(captions), MAX_CAPTIONS)] = True
        ids = self.tokenize(flat)  # (M, L): only the captions, not the padding
        out = ids.new_zeros(len(lists) * MAX_CAPTIONS, ids.shape[-1])
        out[valid.flatten()] = ids
        return out.view(len(lists), MAX_CAPTIONS, -1), valid


class SkipPolicy:
    """Applied to each batch in the training process: ``data.on_error`` decides what an unreadable video does.

    ``raise`` re-raises its ``VideoReadError`` (naming the file); ``skip`` drops the clip from its batch and
    counts it (``summary.json`` → ``skipped_clips``, this process's count). Other data errors always raise.
    """

    def __init__(self, on_error: str) -> None:
        from henasy.data.batching import SkipCounter

        self.on_error = on_error
        self.skips = SkipCounter()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        for item in batch.pop(SKIPPED_KEY, []):
            if self.on_error != "skip" or item.kind != "video":
                raise item.error()
            self.skips.add(item)
        if "video" not in batch:
            raise BenchError(f"every clip of a training batch was unreadable; {self.skips.summary()}")
        return batch


class _ReportSkips(Callback):
    def __init__(self, policy: SkipPolicy, recipe: dict[str, Any] | None = None) -> None:
        self.policy = policy
        self.recipe = recipe

    def on_train_end(self, summary: dict[str, Any]) -> None:
        summary["skipped_clips"] = self.policy.skips.as_dict()
        if self.recipe is not None:
            summary["data_recipe"] = dict(self.recipe)


def _caption_max_nouns(config: RunConfig) -> int | None:
    """``data.max_nouns`` when it applies (the HelpingHands noun lists), else None."""
    return config.data.max_nouns if config.data.noun_list == "helpinghands" else None


def data_recipe(config: RunConfig, *, rephrased: Path | None) -> dict[str, Any]:
    """How the training items were formed (for ``summary.json``): hard negatives, noun lists, and the caption
    file ``rephrased`` (``rephrased_captions_file`` resolved for this run, the one ``build_train_set`` loads)."""
    return {
        "hard_negative_sec": config.data.hard_negative_sec,
        "noun_list": config.data.noun_list,
        "max_nouns": _caption_max_nouns(config),
        "rephrased_captions_file": str(rephrased) if rephrased is not None else None,
    }


def bind_data(model: nn.Module, config: RunConfig) -> None:
    """Give models with fine-grained losses (HENASY, HelpingHands) the noun taxonomy and verb phrases.

    Called once before training for models that define ``bind_data(noun_names, verb_phrases)``; the nouns
    are the taxonomy labels in class-index order, the verb phrases come from ``data.verb_phrases`` (a
    ``verb_phrases.json`` an LLM pass wrote) or, when that is unset, the model's rule-based extractor.
    """
    if not hasattr(model, "bind_data"):
        return
    from henasy.data.layout import DatasetLayout
    from henasy.data.taxonomy import load_taxonomy
    from henasy.data.verb_phrases import load_verb_phrases

    layout = DatasetLayout(config.data.root)
    nouns = load_taxonomy(layout.noun_taxonomy_csv).labels
    phrases = load_verb_phrases(config.data.verb_phrases) if config.data.verb_phrases else None
    model.bind_data(list(nouns), phrases)


def run_info(config: RunConfig) -> dict[str, Any]:
    """What makes a checkpoint belong to this run (checked on resume besides the trainer settings)."""
    # the caption-positive and noun-list settings only when on, so runs without them resume as before
    recipe = {
        "data.rephrased_captions": config.data.rephrased_captions,
        "data.noun_list": config.data.noun_list if config.data.noun_list != "tags" else None,
        "data.max_nouns": _caption_max_nouns(config),
    }
    return {
        "model": config.model,
        "model_args": dict(config.model_args),
        "data.hard_negative_sec": config.data.hard_negative_sec,
        **{k: v for k, v in recipe.items() if v is not None},
        "data.limit": config.data.limit,
    }


def train_run(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = True,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` (resuming from ``run_dir/last.pt`` when ``resume``); return the summary."""
    run_dir = Path(run_dir)
    config.data.validate()
    config.trainer.validate()
    check_data_root(config)  # before the run folder is created and the model built
    main = int(os.environ.get("RANK", "0")) == 0  # torchrun / submitit export RANK before the process starts
    with run_lock(run_dir) if main else contextlib.nullcontext():
        return _train_locked(config, run_dir, resume, callbacks)


def _train_locked(
    config: RunConfig, run_dir: Path, resume: bool, callbacks: Sequence[Callback]
) -> dict[str, Any]:
    """``train_run`` once the run folder is this process's."""
    model = build_model(config)
    rephrased = rephrased_captions_file(config, model)  # resolved once: the file loaded is the file reported
    dataset = build_train_set(config, model, rephrased=rephrased)
    bind_data(model, config)
    skip_policy = SkipPolicy(config.data.on_error)
    trainer = Trainer(
        model,
        dataset,
        config.trainer,
        run_dir,
        collate_fn=TrainCollate(model.tokenize),
        prepare_batch=skip_policy,
        callbacks=[
            _WriteConfig(run_dir / CONFIG_NAME, config),
            JsonlMetrics(run_dir),
            _ReportSkips(skip_policy, data_recipe(config, rephrased=rephrased)),
            *callbacks,
        ],
        run_info=run_info(config),
    )
    return trainer.fit(resume=resume)


class _WriteConfig(Callback):
    """Write the resolved run config once training starts (after the resume check accepted it)."""

    def __init__(self, path: Path, config: RunConfig) -> None:
        self.path, self.config = path, config

    def on_train_start(self, info: dict[str, Any]) -> None:
        atomic_write_json(self.path, self.config.to_dict())
