"""The one way to build a registered model: ``create_model(name, checkpoint=, backbone_checkpoint=, **arch)``.

Every command, the trainer (``henasy.training.run.build_model``), the benchmark runner and the cost report
build models here, so each gets the same checks:

1. ``name`` is looked up in ``henasy.core.catalog.MODELS`` (built-in, entry-point or ``--include`` models);
2. the factory is called with the architecture options ``arch`` only (on the ``meta`` device when
   ``meta=True``: no memory, no I/O beyond the weight files); an option it rejects is a ``BenchError``;
3. the result must follow ``henasy.core.interface.VideoTextModel``: a missing member is named;
4. weights, never part of the architecture: ``backbone_checkpoint`` (the frozen LaViLa of HENASY /
   HelpingHands, through the model's ``load_backbone_checkpoint``), then ``checkpoint`` (the whole model,
   through the model's own ``load_checkpoint`` when it has one, else ``henasy.core.checkpoints.load_checked``);
5. the model moves to ``device``.

``lavila_checkpoint`` in ``arch`` (``--set model.lavila_checkpoint=PATH`` in specs and the README) is an alias
of ``backbone_checkpoint``; it is taken out of ``arch`` before the factory sees it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from henasy.core.checkpoints import KeyReport, load_checked, load_state_dict_file
from henasy.core.errors import BenchError

BACKBONE_ALIASES = ("lavila_checkpoint",)  # arch keys that name backbone weights (kept for existing specs)
WEIGHT_KEYS = ("checkpoint", "backbone_checkpoint", *BACKBONE_ALIASES)  # never architecture options


def create_model(
    name: str,
    *,
    checkpoint: str | Path | None = None,
    backbone_checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    meta: bool = False,
    **arch: Any,
) -> nn.Module:
    """Build the registered model ``name`` with architecture options ``arch``, check it, load its weights.

    See the module docstring for the steps. ``meta=True`` builds on the meta device (``device`` is then
    ignored). Raises ``BenchError`` for an unknown name, a rejected option, a model that does not follow
    ``VideoTextModel``, backbone weights for a model without a backbone, or an unusable device.
    """
    from henasy.core.catalog import MODELS

    factory = MODELS.get(name)
    backbone_checkpoint = _backbone_path(name, backbone_checkpoint, arch)
    with torch.device("meta") if meta else contextlib.nullcontext():
        try:
            model = factory(**arch)
        except TypeError as err:
            raise BenchError(f"model {name!r} rejected model options {arch}: {err}") from None
        check_interface(model, name)
        if backbone_checkpoint is not None:
            load_backbone(model, backbone_checkpoint, name)
        if checkpoint is not None:
            load_weights(model, checkpoint)
    if device is not None and not meta:
        try:
            model.to(torch.device(device))
        except (RuntimeError, AssertionError, ValueError) as err:
            raise BenchError(f"device {str(device)!r}: {err}") from None
    return model


def build_on_meta(name: str, frames: int | None = None) -> nn.Module:
    """The registered model ``name`` on the meta device (``num_frames=frames`` when given), no weights."""
    if frames is None:
        return create_model(name, meta=True)
    if frames < 1:
        raise BenchError(f"--frames must be a positive integer, got {frames}")
    try:
        return create_model(name, meta=True, num_frames=frames)
    except BenchError as err:
        if "rejected model options" not in str(err):
            raise
        raise BenchError(f"model {name!r} does not accept --frames ({err})") from None


def check_interface(model: Any, name: str) -> None:
    """``BenchError`` naming what ``model`` lacks of ``henasy.core.interface.VideoTextModel`` (none: it fits)."""
    from henasy.core.interface import missing_members

    if not isinstance(model, nn.Module):
        raise BenchError(
            f"model {name!r}: its factory returned a {type(model).__name__}, not a torch.nn.Module "
            "(see henasy.core.interface.VideoTextModel)"
        )
    missing = missing_members(model)
    if missing:
        raise BenchError(
            f"model {name!r} ({type(model).__name__}) does not follow henasy.core.interface.VideoTextModel: "
            f"missing {', '.join(missing)} (every model needs num_frames, image_size, embed_dim, pixel_mean, "
            "pixel_std, tokenize, encode_video, encode_text, training_losses)"
        )


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = True) -> KeyReport:
    """Whole-model weights from ``path``: the model's ``load_checkpoint`` when it has one (official files and
    trainer ``last.pt``), else a key/shape-checked ``load_state_dict`` (``henasy.core.checkpoints``)."""
    if hasattr(model, "load_checkpoint"):
        return model.load_checkpoint(path) if strict else model.load_checkpoint(path, strict=False)
    return load_checked(model, load_state_dict_file(path), strict=strict, source=str(path))


def load_backbone(model: nn.Module, path: str | Path, name: str) -> KeyReport:
    """Frozen-backbone weights from ``path`` through the model's ``load_backbone_checkpoint``."""
    if not hasattr(model, "load_backbone_checkpoint"):
        raise BenchError(
            f"model {name!r} has no separate backbone to load backbone_checkpoint / model.lavila_checkpoint "
            "into; give its weights as the whole-model checkpoint (--ckpt) instead"
        )
    return model.load_backbone_checkpoint(path)


def parameter_counts(model: nn.Module) -> dict[str, Any]:
    """``params_total``, ``params_trainable`` and ``modules`` (top-level child / direct parameter → count)."""
    modules: dict[str, int] = {}
    for name, param in model.named_parameters(recurse=False):
        modules[name] = param.numel()
    for name, child in model.named_children():
        count = sum(p.numel() for p in child.parameters())
        if count:
            modules[name] = count
    return {
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "modules": modules,
    }


def _backbone_path(name: str, given: str | Path | None, arch: dict[str, Any]) -> str | Path | None:
    """``backbone_checkpoint``, or the value of its alias in ``arch`` (removed from ``arch``)."""
    for alias in BACKBONE_ALIASES:
        if alias not in arch:
            continue
        value = arch.pop(alias)
        if value is None:
            continue
        if given is not None and str(given) != str(value):
            raise BenchError(
                f"model {name!r}: backbone_checkpoint={given} and model.{alias}={value} disagree; give one"
            )
        given = value
    return given
