"""Expansion: a pure function from a sweep spec (+ scale, data root, command-line overrides) to its runs.

Every run is fully resolved (the ``henasy.training.config.RunConfig`` after preset and overrides, the
benchmarks and evaluation settings) and gets a deterministic id: the first 12 hex digits of the SHA-256 of
the canonical JSON of that resolved config, leaving out settings that do not change results (progress bars,
worker counts, logging and checkpoint cadence, device). Same spec + same data → same ids, which is what
makes a rerun skip finished rows (CLIP_benchmark ``--skip_existing``).

Override order, later wins: base → scale → row / axis values → ``--set``. A row's ``model`` names the paper
model; the scale's ``models`` map says what runs at that scale (``henasy`` → ``henasy_tiny`` for smoke).

Every run is validated the way its job will use it before it gets an id (``check_run``): the run config is
built by ``henasy.training.config.build_run_config`` (every ``data.*``/``trainer.*`` key and type), the
model by ``henasy.training.run.build_model`` on the ``meta`` device (every ``model.*`` option, with no
memory or time spent on weights), each benchmark is looked up and its ``check_model`` run on that model
(``benchmarks.runner``), and ``eval.device`` must name a torch device. An error names the spec file, the
line that set the offending value and the row; so a spec with a typo never gets ids, and the id of a
fixed spec is that of a spec that never had the typo (ids hash only validated, normalised configs).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from henasy.core.errors import BenchError, DataFormatError
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


def _merge(parts: list[RunPart], extra: dict[str, Any]) -> dict[str, Any]:
    """Fold run parts (later wins) into model name, overrides, benchmarks, eval, train, checkpoint.

    ``where`` maps each setting (``model``, ``benchmarks``, ``checkpoint``, ``eval.<k>``, ``overrides.<key>``)
    to the part that set it last, for error messages.
    """
    out: dict[str, Any] = {
        "model": None,
        "overrides": dict(JOB_DEFAULTS),
        "benchmarks": (),
        "eval": {},
        "train": True,
        "checkpoint": None,
        "where": {},
    }
    for part in parts:
        where = out["where"]
        if part.model is not None:
            out["model"] = part.model
            where["model"] = part
        out["overrides"].update(part.overrides)
        where.update({f"overrides.{k}": part for k in part.overrides})
        if part.benchmarks is not None:
            out["benchmarks"] = part.benchmarks
            where["benchmarks"] = part
        out["eval"].update({k: v for k, v in part.eval.items() if v is not None})
        where.update({f"eval.{k}": part for k in part.eval})
        if part.train is not None:
            out["train"] = part.train
        if part.checkpoint is not None:
            out["checkpoint"] = part.checkpoint
            where["checkpoint"] = part
    out["overrides"].update(extra)
    for key in extra:
        out["where"].pop(f"overrides.{key}", None)  # set on the command line (--set) or by a search trial
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


class _Where:
    """Names the spec file, row and line of a setting of one run in ``DataFormatError`` messages."""

    def __init__(
        self, spec: SweepSpec, label: str, scale: str, merged: dict[str, Any], parts: list[RunPart]
    ) -> None:
        self.spec, self.label, self.scale = spec, label, scale
        self.parts: dict[str, RunPart] = merged["where"]
        self.row_line = parts[0].line_of("") if parts else None  # the row (or first axis value)
        # search-space keys (trial runs) → their line; any other key set outside the spec came from --set
        self.searched = {p.key: p.line for p in (spec.search.space if spec.search else ())}

    def error(self, message: str, key: str | None = None) -> DataFormatError:
        """``message`` about setting ``key`` (``model``, ``overrides.trainer.lr``, ...) of this run."""
        name = key.removeprefix("overrides.") if key else None
        part = self.parts.get(key) if key else None
        line, origin = self.row_line, ""
        if part is not None:
            line, origin = part.line_of(key), f" (set in {part.origin})" if part.origin else ""
        elif name in self.searched:
            line, origin = self.searched[name], f" (searched over in search.space.{name})"
        elif key and key.startswith("overrides."):
            line, origin = None, f" (set on the command line: --set {name})"  # not in the file
        return DataFormatError(
            self.spec.path,
            f"row {self.label!r} at scale {self.scale!r}{origin}: {message}",
            line=line,
            column=name,
        )


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
    """Resolve and validate one variant into a ``Run`` (a ``BenchError`` names the spec, line and row)."""
    from henasy.core.catalog import MODELS
    from henasy.training.config import build_run_config

    sc = spec.scale(scale)
    merged = _merge([spec.base, sc.run, *parts], dict(overrides or {}))
    where = _Where(spec, label, scale, merged, parts)
    if merged["model"] is None:
        raise where.error("no model; set base.model (or the row's model) in the spec")
    model = sc.models.get(merged["model"], merged["model"])
    try:
        MODELS.entry(model)
    except BenchError as err:
        if merged["model"] in sc.models:
            raise DataFormatError(
                spec.path, f"scales.{scale}.models: {err}", line=sc.lines.get(f"models.{merged['model']}")
            ) from None
        raise where.error(str(err), "model") from None
    preset = sc.preset or ("smoke" if scale == "smoke" else "paper")
    try:
        config = build_run_config(
            model, data_root, preset=preset, overrides=merged["overrides"]
        )  # henasy.core.overrides nests model.a.b keys and checks every key
    except BenchError as err:
        raise where.error(str(err), _key_named_in(str(err), merged["overrides"])) from None
    if not merged["train"] and not merged["checkpoint"]:
        raise where.error("train: false needs a checkpoint to evaluate")
    benchmarks = tuple(merged["benchmarks"])
    eval_settings = dict(sorted(merged["eval"].items()))
    check_run(config, benchmarks, eval_settings, where, merged["overrides"])
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
        benchmarks=benchmarks,
        eval=eval_settings,
        train=bool(merged["train"]),
        checkpoint=merged["checkpoint"],
        params=own,
    )
    return Run(**{**draft.__dict__, "run_id": run_id_of(draft.resolved())})


def _key_named_in(message: str, overrides: dict[str, Any]) -> str | None:
    """``overrides.<key>`` of the override an error message names (model options by their bare name)."""
    for key in reversed(list(overrides)):
        section, _, name = key.partition(".")
        names = (key, name.partition(".")[0]) if section == "model" else (key,)
        if any(re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", message) for n in names):
            return f"overrides.{key}"
    return None


# Verdicts of check_run by (model, model options, benchmarks): rows that share them are checked once.
_CHECKED: set[str] = set()


def check_run(
    config: Any,
    benchmarks: tuple[str, ...],
    eval_settings: dict[str, Any],
    where: _Where,
    overrides: dict[str, Any],
) -> None:
    """Validate what the job will do with ``config`` (a ``RunConfig``) before anything is spent on it.

    The model is built by ``henasy.training.run.build_model`` (the job's own call) inside
    ``torch.device("meta")``: every factory option is applied and checked, no weights are allocated. Each
    benchmark's ``check_model`` then runs on it, as ``benchmarks.runner.evaluate`` would.
    """
    import torch

    devices = {"eval.device": eval_settings.get("device"), "overrides.trainer.device": config.trainer.device}
    for key, device in devices.items():
        if (
            device is not None and device != "auto"
        ):  # parsed here; whether it exists is the job host's business
            try:
                torch.device(device)
            except (RuntimeError, ValueError) as err:
                name = key.removeprefix("overrides.")
                raise where.error(f"{name} {device!r} is not a torch device ({err})", key) from None
    on_missing = eval_settings.get("on_missing", "error")
    key = json.dumps(
        [config.model, config.model_args, list(benchmarks), on_missing], sort_keys=True, default=str
    )
    if key in _CHECKED:
        return
    model = _build_on_meta(config, where, overrides)
    from benchmarks.runner import benchmark_spec, check_on_missing

    specs = []
    for name in benchmarks:
        try:
            spec = benchmark_spec(name)
            if spec.check_model is not None:
                spec.check_model(model, config.model)
        except BenchError as err:
            raise where.error(str(err), "benchmarks") from None
        specs.append(spec)
    try:  # eval.on_missing: skip only where the protocol supports it
        check_on_missing(on_missing, specs)
    except BenchError as err:
        raise where.error(str(err), "eval.on_missing") from None
    _CHECKED.add(key)


def _build_on_meta(config: Any, where: _Where, overrides: dict[str, Any]) -> Any:
    """``build_model(config)`` on the meta device; its errors name the spec line of the offending option."""
    import torch

    from henasy.training.run import build_model

    try:
        with _global_rng_kept(), torch.device("meta"):
            return build_model(config)
    except BenchError as err:
        message = str(err)
    except Exception as err:  # noqa: BLE001 - a factory failing on a bad value: reported as the spec's error
        message = f"model {config.model!r} cannot be built with options {config.model_args}: {err}"
    model_keys = {k: v for k, v in overrides.items() if k.startswith("model.")}
    raise where.error(message, _key_named_in(message, model_keys)) from None


@contextlib.contextmanager
def _global_rng_kept() -> Iterator[None]:
    """Restore the Python, NumPy and torch (CPU) random states that ``build_model`` seeds."""
    import numpy as np
    import torch

    state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])


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
