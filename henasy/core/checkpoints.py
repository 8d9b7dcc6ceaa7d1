"""Reading checkpoint files safely and checking them against a model, key by key.

Generic machinery shared by every model family (model-specific key remapping, e.g. LaViLa's temporal
inflation or the EgoVLP renaming, lives next to the model in ``baselines/lavila.py``):

- ``load_checkpoint_file``: ``torch.load(weights_only=True)`` with a small allow-list of data-only globals
  that official checkpoints carry next to their tensors (LaViLa stores its ``argparse.Namespace`` as
  ``ckpt["args"]``; numpy scalars appear in metric fields). Anything else is refused: no arbitrary pickle.
- ``load_state_dict_file``: the tensor mapping of a checkpoint (``state_dict`` / ``model`` entry or a bare
  mapping) with the DistributedDataParallel ``module.`` prefix stripped.
- ``compare_state_dict`` → ``KeyReport`` (missing, unexpected, shape mismatches, keys deliberately not
  loadable, notes) and ``load_checked``, which raises ``CheckpointError`` naming the first mismatched keys.
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from henasy.core.errors import CheckpointError

DDP_PREFIX = "module."
STATE_DICT_ENTRIES = ("state_dict", "model", "module")  # where checkpoint dicts keep their tensors
SHOW_KEYS = 10  # how many keys an error message lists per category


def _allowed_globals() -> list[Any]:
    """Data-only classes that may appear next to tensors in official checkpoints (weights_only allow-list).

    ``argparse.Namespace``: LaViLa saves its training flags as ``ckpt["args"]`` (LaViLa main_pretrain.py).
    numpy scalars / dtypes: metric fields such as ``best_acc1`` saved from numpy values; files written with
    numpy 1.x name the scalar constructor ``numpy.core.multiarray.scalar``, numpy 2 ``numpy._core...``.
    """
    allowed: list[Any] = [argparse.Namespace]
    try:
        import numpy as np

        scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
        allowed += [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype]
        allowed += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    except (ImportError, AttributeError):  # numpy absent or reorganised: Namespace alone still works
        pass
    return allowed


def load_checkpoint_file(path: str | Path) -> Any:
    """The object stored in a checkpoint file, unpickled with ``weights_only=True`` (CPU tensors).

    Raises ``CheckpointError`` naming the file when it is missing, unreadable or holds Python objects
    outside the allow-list (the message lists them and says how to re-save the file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: checkpoint file not found (expected a .pth/.pt file written by torch.save)"
        )
    try:
        with torch.serialization.safe_globals(_allowed_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _unsafe_globals(path)
        what = f"Python objects outside the allow-list: {', '.join(refused)}" if refused else str(err)
        raise CheckpointError(
            f"{path}: refused to unpickle {what}. Only tensors, plain containers, argparse.Namespace and numpy "
            "scalars are accepted (weights_only=True). If you trust the file, re-save its tensors with "
            "torch.save({'state_dict': ckpt['state_dict']}, new_path) and load that instead."
        ) from None
    except Exception as err:  # torch/pickle raise many types on truncated or foreign files
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err}); "
            "the file may be truncated or written by another program"
        ) from None


def _unsafe_globals(path: Path) -> list[str]:
    """Names of the globals ``weights_only`` would refuse in ``path`` (empty when it cannot tell)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # best effort, only used to word an error message
        return []


def extract_state_dict(obj: Any, *, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensor mapping inside a loaded checkpoint, with the DDP ``module.`` prefix stripped.

    Accepts a bare ``{name: tensor}`` mapping or a dict holding one under ``state_dict``/``model``/``module``.
    """
    if isinstance(obj, Mapping):
        for entry in STATE_DICT_ENTRIES:
            if isinstance(obj.get(entry), Mapping):
                obj = obj[entry]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{source}: expected a mapping of parameter names to tensors (or a dict with a 'state_dict' entry), "
            f"got {type(obj).__name__}"
        )
    not_tensors = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{source}: entries that are not tensors: {', '.join(not_tensors[:SHOW_KEYS])}"
            f"{' ...' if len(not_tensors) > SHOW_KEYS else ''} (expected a state_dict of tensors)"
        )
    return strip_prefix(dict(obj), DDP_PREFIX)


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = DDP_PREFIX) -> dict[str, torch.Tensor]:
    """Drop ``prefix`` from every key that starts with it (DistributedDataParallel saves ``module.<name>``)."""
    return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read ``path`` safely and return its tensors keyed by parameter name (``module.`` stripped)."""
    return extract_state_dict(load_checkpoint_file(path), source=str(path))


@dataclass
class KeyReport:
    """How a checkpoint's keys line up with a model's state_dict."""

    missing: list[str] = field(default_factory=list)  # in the model, not in the checkpoint
    unexpected: list[str] = field(default_factory=list)  # in the checkpoint, not in the model
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=list
    )  # key, model, ckpt
    not_loadable: dict[str, str] = field(default_factory=dict)  # checkpoint key -> why it was set aside
    notes: list[str] = field(default_factory=list)  # conversions applied (renames, temporal inflation)
    loaded: int = 0  # number of tensors copied into the model

    @property
    def ok(self) -> bool:
        """True when every model key was provided with the right shape and nothing was left over."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, limit: int = SHOW_KEYS) -> str:
        """Human-readable lines: the first ``limit`` keys of each non-empty category."""

        def first(keys: list[str]) -> str:
            more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
            return ", ".join(keys[:limit]) + more

        lines = []
        if self.missing:
            lines.append(f"missing keys ({len(self.missing)}): {first(self.missing)}")
        if self.unexpected:
            lines.append(f"unexpected keys ({len(self.unexpected)}): {first(self.unexpected)}")
        if self.mismatched:
            shapes = [f"{k} model {list(m)} vs checkpoint {list(c)}" for k, m, c in self.mismatched]
            lines.append(f"shape mismatches ({len(shapes)}): {first(shapes)}")
        if self.not_loadable:
            items = [f"{k} ({why})" for k, why in self.not_loadable.items()]
            lines.append(f"not loadable ({len(items)}): {first(items)}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines) if lines else "all keys match"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "loaded": self.loaded,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "mismatched": [
                {"key": k, "model": list(m), "checkpoint": list(c)} for k, m, c in self.mismatched
            ],
            "not_loadable": self.not_loadable,
            "notes": self.notes,
        }


def compare_state_dict(
    expected: Mapping[str, torch.Tensor | torch.Size | tuple[int, ...]],
    state_dict: Mapping[str, torch.Tensor],
) -> KeyReport:
    """Missing / unexpected keys and shape mismatches of ``state_dict`` against ``expected`` (name → shape)."""
    shapes = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v) for k, v in expected.items()}
    report = KeyReport()
    report.missing = [k for k in shapes if k not in state_dict]
    report.unexpected = [k for k in state_dict if k not in shapes]
    report.mismatched = [
        (k, shapes[k], tuple(v.shape))
        for k, v in state_dict.items()
        if k in shapes and tuple(v.shape) != shapes[k]
    ]
    return report


def load_checked(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    strict: bool = True,
    report: KeyReport | None = None,
    source: str = "checkpoint",
    required_prefixes: tuple[str, ...] | None = None,
) -> KeyReport:
    """Copy ``state_dict`` into ``model`` after checking keys and shapes.

    ``strict``: any missing/unexpected key or shape mismatch raises ``CheckpointError`` listing the first
    offending keys and nothing is loaded. Not strict: the keys that match are loaded, the rest reported.
    A model built on the ``meta`` device gets the checkpoint tensors assigned (cast to its dtypes).
    ``report``: notes / not-loadable entries gathered by a model-specific conversion, kept in the result.
    ``required_prefixes``: when given, ``strict`` only fails on missing keys that start with one of them
    (a checkpoint format known to cover part of the model); such missing keys are still reported.
    """
    own = model.state_dict()
    found = compare_state_dict(own, state_dict)
    if report is not None:
        found.not_loadable, found.notes = report.not_loadable, report.notes
    required_missing = [
        k for k in found.missing if required_prefixes is None or k.startswith(required_prefixes)
    ]
    if strict and (required_missing or found.unexpected or found.mismatched):
        raise CheckpointError(
            f"{source} does not match {type(model).__name__} ({len(own)} tensors): {found.summary()}\n"
            "Check that the model name / preset (and --frames) match the checkpoint's architecture."
        )
    bad = set(found.unexpected) | {k for k, _, _ in found.mismatched}
    usable = {k: _like(v, own[k]) for k, v in state_dict.items() if k not in bad}
    on_meta = any(t.is_meta for t in own.values())
    model.load_state_dict(usable, strict=False, assign=on_meta)
    found.loaded = len(usable)
    return found


def _like(tensor: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``tensor`` with the floating dtype of ``reference`` (fp16 checkpoints into fp32 models)."""
    if tensor.is_floating_point() and reference.is_floating_point() and tensor.dtype != reference.dtype:
        return tensor.to(reference.dtype)
    return tensor
