"""Expansion: a pure function from a sweep spec (+ scale, data root, command-line overrides) to its runs.

Every run is fully resolved (the ``henasy.training.config.RunConfig`` after preset and overrides, the
benchmarks and evaluation settings) and gets a deterministic id: the first 12 hex digits of the SHA-256 of
the canonical JSON of that resolved config, leaving out settings that do not change results (progress bars,
worker counts, logging and checkpoint cadence, device). Same spec + same data → same ids, which is what
makes a rerun skip finished rows (CLIP_benchmark ``--skip_existing``; anchors-style.md lesson 5).

Override order, later wins: base → scale → row / axis values → ``--set``. A row's ``model`` names the paper
model; the scale's ``models`` map says what runs at that scale (``henasy`` → ``henasy_tiny`` for smoke).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from henasy.errors import BenchError
from sweeps.spec import RunPart, SweepSpec

RUN_ID_LENGTH = 12
# Dotted keys that never change a result; left out of the run id.
HASH_EXCLUDE = (
    "trainer.progress",
    "trainer.num_workers",
    "trainer.log_every",
    "trainer.checkpoint_every",
    "trainer.device",
    "eval.batch_size",
    "eval.num_workers",
    "eval.device",
)
JOB_DEFAULTS = {"trainer.progress": False}  # no progress bars in job logs


@dataclass(frozen=True)
class Run:
    """One fully resolved run of a sweep (JSON-serialisable through ``to_dict``)."""

    run_id: str
    sweep: str
    label: str
    index: int
    scale: str
    table: str | None
    config: dict[str, Any]  # RunConfig.to_dict()
    benchmarks: tuple[str, ...] = ()
    eval: dict[str, Any] = field(default_factory=dict)
    train: bool = True
    checkpoint: str | None = None  # weights to evaluate (train: false) instead of training
    params: dict[str, Any] = field(default_factory=dict)  # the row's own overrides (and search samples)

    @property
    def model(self) -> str:
        return str(self.config["model"])

    def resolved(self) -> dict[str, Any]:
        """Everything that determines the result (what the id hashes, before exclusions)."""
        return {
            **self.config,
            "benchmarks": list(self.benchmarks),
            "eval": dict(self.eval),
            "train": self.train,
            "checkpoint": self.checkpoint,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "sweep": self.sweep,
            "label": self.label,
            "index": self.index,
            "scale": self.scale,
            "table": self.table,
            "config": self.config,
            "benchmarks": list(self.benchmarks),
            "eval": dict(self.eval),
            "train": self.train,
            "checkpoint": self.checkpoint,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        return cls(**{**data, "benchmarks": tuple(data.get("benchmarks", ()))})


def run_id_of(resolved: dict[str, Any]) -> str:
    """The deterministic id of a resolved run config (settings in ``HASH_EXCLUDE`` left out)."""
    pruned = json.loads(json.dumps(resolved))  # deep copy, tuples → lists
    for key in HASH_EXCLUDE:
        section, _, name = key.partition(".")
        if isinstance(pruned.get(section), dict):
            pruned[section].pop(name, None)
    canonical = json.dumps(pruned, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:RUN_ID_LENGTH]


def nest_model_keys(overrides: dict[str, Any]) -> dict[str, Any]:
    """``model.a.b: v`` → ``model.a: {b: v}`` (deep-merged in order), for dict-valued factory arguments.

    ``model.loss_weights.nec: 0.3`` sets one entry of HENASY's ``loss_weights`` mapping; later keys win.
    """
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        section, _, rest = key.partition(".")
        if section != "model":
            out[key] = value
            continue
        head, _, tail = rest.partition(".")
        if not tail:
            out[key] = _deep_merge(out.get(key), value) if isinstance(value, dict) else value
            continue
        nested: Any = value
        for part in reversed(tail.split(".")):
            nested = {part: nested}
        out[f"model.{head}"] = _deep_merge(out.get(f"model.{head}"), nested)
    return out


def _deep_merge(old: Any, new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old) if isinstance(old, dict) else {}
    for k, v in new.items():
        merged[k] = _deep_merge(merged.get(k), v) if isinstance(v, dict) else v
    return merged


def _merge(parts: list[RunPart], extra: dict[str, Any]) -> dict[str, Any]:
    """Fold run parts (later wins) into model name, overrides, benchmarks, eval, train, checkpoint."""
    out: dict[str, Any] = {
        "model": None,
        "overrides": dict(JOB_DEFAULTS),
        "benchmarks": (),
        "eval": {},
        "train": True,
        "checkpoint": None,
    }
    for part in parts:
        if part.model is not None:
            out["model"] = part.model
        out["overrides"].update(part.overrides)
        if part.benchmarks is not None:
            out["benchmarks"] = part.benchmarks
        out["eval"].update({k: v for k, v in part.eval.items() if v is not None})
        if part.train is not None:
            out["train"] = part.train
        if part.checkpoint is not None:
            out["checkpoint"] = part.checkpoint
    out["overrides"].update(extra)
    return out


def variants(spec: SweepSpec) -> list[tuple[str, list[RunPart]]]:
    """(label, row parts) of every variant: rows × the product of the axes (one ``base`` row if neither)."""
    rows: list[tuple[str, list[RunPart]]] = [(r.label, [r.run]) for r in spec.rows] or [("base", [])]
    if not spec.axes:
        return rows
    names = list(spec.axes)
    out = []
    for label, parts in rows:
        for combo in itertools.product(*(spec.axes[a].items() for a in names)):
            tags = [f"{axis}={value}" for axis, (value, _) in zip(names, combo)]
            prefix = [] if not spec.rows else [label]
            out.append((" / ".join(prefix + tags), parts + [part for _, part in combo]))
    return out


def build_run(
    spec: SweepSpec,
    label: str,
    index: int,
    parts: list[RunPart],
    *,
    scale: str,
    data_root: str,
    overrides: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> Run:
    """Resolve one variant into a ``Run`` (raises ``BenchError`` naming the spec and row on bad settings)."""
    from henasy.catalog import MODELS
    from henasy.training.config import build_run_config

    sc = spec.scale(scale)
    merged = _merge([spec.base, sc.run, *parts], dict(overrides or {}))
    where = f"{spec.path}: row {label!r}"
    if merged["model"] is None:
        raise BenchError(f"{where}: no model; set base.model (or the row's model) in the spec")
    model = sc.models.get(merged["model"], merged["model"])
    try:
        MODELS.entry(model)
    except BenchError as err:
        raise BenchError(f"{where} at scale {scale!r}: {err}") from None
    preset = sc.preset or ("smoke" if scale == "smoke" else "paper")
    try:
        config = build_run_config(
            model, data_root, preset=preset, overrides=nest_model_keys(merged["overrides"])
        )
    except BenchError as err:
        raise BenchError(f"{where}: {err}") from None
    if not merged["train"] and not merged["checkpoint"]:
        raise BenchError(f"{where}: train: false needs a checkpoint to evaluate")
    own = {}
    for part in parts:
        own.update(part.overrides)
    own.update(params or {})
    draft = Run(
        run_id="",
        sweep=spec.name,
        label=label,
        index=index,
        scale=scale,
        table=spec.table,
        config=config.to_dict(),
        benchmarks=tuple(merged["benchmarks"]),
        eval=dict(sorted(merged["eval"].items())),
        train=bool(merged["train"]),
        checkpoint=merged["checkpoint"],
        params=own,
    )
    return Run(**{**draft.__dict__, "run_id": run_id_of(draft.resolved())})


def expand(
    spec: SweepSpec,
    *,
    scale: str = "smoke",
    data_root: str,
    overrides: dict[str, Any] | None = None,
) -> list[Run]:
    """Every run of ``spec`` at ``scale`` on ``data_root``, in spec order, ids unique."""
    runs = [
        build_run(spec, label, i, parts, scale=scale, data_root=data_root, overrides=overrides)
        for i, (label, parts) in enumerate(variants(spec))
    ]
    seen: dict[str, str] = {}
    for run in runs:
        if run.run_id in seen:
            raise BenchError(
                f"{spec.path}: rows {seen[run.run_id]!r} and {run.label!r} resolve to the same config "
                f"(run id {run.run_id}); make them differ or remove one"
            )
        seen[run.run_id] = run.label
    return runs


def trial_run(
    spec: SweepSpec,
    number: int,
    params: dict[str, Any],
    *,
    scale: str,
    data_root: str,
    overrides: dict[str, Any] | None = None,
) -> Run:
    """The run of Optuna trial ``number``: the base run with the sampled ``params`` applied last."""
    combined = {**(overrides or {}), **params}
    return build_run(
        spec,
        f"trial {number}",
        number,
        [],
        scale=scale,
        data_root=data_root,
        overrides=combined,
        params=params,
    )
