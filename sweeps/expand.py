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

Stages (``sweeps.spec.Stage``): a run whose override holds a ``StageRef`` needs that stage; the stage is
resolved (once per expansion) into a ``Run`` of its own (``Run.stage`` = its name, label ``stage:<name>``),
and the needing run records ``needs[key] = {stage, output, run_id}``: its id therefore covers the stage's id,
which covers the stage's own resolved config. The reference key is left out of the config that is validated
(the stage's weights do not exist yet); the job puts the stage's output path there before it builds the model
(``resolve_needs``). ``expand`` returns the stages the rows need first, in dependency order.
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
from pathlib import Path
from typing import Any

from henasy.core.errors import BenchError, DataFormatError
from sweeps.spec import RunPart, StageRef, SweepSpec

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
CHECKPOINT_KEY = "checkpoint"  # Run.needs key of a stage's weights evaluated by a train: false run


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
    # config key → {"stage", "output", "run_id"}: stage outputs this run consumes (filled in by its job)
    needs: dict[str, dict[str, str]] = field(default_factory=dict)
    stage: str | None = None  # the stage's name when this run is a stage

    @property
    def model(self) -> str:
        return str(self.config["model"])

    @property
    def stage_ids(self) -> list[str]:
        """Run ids of the stages this run needs (each once, in key order)."""
        return list(dict.fromkeys(need["run_id"] for need in self.needs.values()))

    def resolved(self) -> dict[str, Any]:
        """Everything that determines the result (what the id hashes, before exclusions)."""
        out = {
            **self.config,
            "benchmarks": list(self.benchmarks),
            "eval": dict(self.eval),
            "train": self.train,
            "checkpoint": self.checkpoint,
        }
        if self.needs:  # absent without stages: ids of specs without stages are unchanged
            out["needs"] = {k: dict(v) for k, v in sorted(self.needs.items())}
        return out

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
            "needs": {k: dict(v) for k, v in self.needs.items()},
            "stage": self.stage,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        return cls(**{**data, "benchmarks": tuple(data.get("benchmarks", ()))})


def resolve_needs(run: Run, outputs: dict[str, Path]) -> Run:
    """``run`` with each needed stage output (``outputs``: stage run id → its output file) put at its key: a
    ``model.<option>`` of the config, or the weights a ``train: false`` run evaluates (``checkpoint``)."""
    model_args = dict(run.config.get("model_args") or {})
    checkpoint = run.checkpoint
    for key, need in run.needs.items():
        if key == CHECKPOINT_KEY:
            checkpoint = str(outputs[need["run_id"]])
        else:
            model_args[key.removeprefix("model.")] = str(outputs[need["run_id"]])
    return Run(
        **{**run.__dict__, "config": {**run.config, "model_args": model_args}, "checkpoint": checkpoint}
    )


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
    stages: StageRuns | None = None,
    stage: str | None = None,
) -> Run:
    """Resolve and validate one variant into a ``Run`` (a ``BenchError`` names the spec, line and row).

    ``stage``: resolve that stage instead (its parts: the scale, the stage, the scale's part of the stage;
    ``parts`` is ignored). ``stages`` resolves the stages referenced (default: a fresh ``StageRuns``).
    """
    from henasy.core.catalog import MODELS
    from henasy.training.config import build_run_config

    sc = spec.scale(scale)
    stages = stages or StageRuns(spec, scale=scale, data_root=data_root, overrides=overrides)
    # a --set of a key that the spec points at a stage gives that stage's output: it replaces the references
    # (below), and is not set on runs that do not refer to the stage (Table 1's LaViLa row has no backbone)
    overrides = {k: v for k, v in (overrides or {}).items() if k not in stages.given_keys}
    if stage is not None:
        # --set model.* options configure the rows, as base/row overrides do (a HENASY loss weight means nothing
        # to the LaViLa stage); trainer.* / data.* keys from --set apply to the stages too
        overrides = {k: v for k, v in overrides.items() if not k.startswith("model.")}
        # a stage: the scale's eval settings, the stage, the scale's part of the stage
        parts = [spec.stages[stage].run] + ([sc.stages[stage].run] if stage in sc.stages else [])
        scale_eval = {
            k: v for k, v in sc.run.eval.items() if k != "options"
        }  # options: of the rows' benchmarks
        merged = _merge([RunPart(eval=scale_eval, origin=sc.run.origin), *parts], dict(overrides or {}))
    else:
        merged = _merge([spec.base, sc.run, *parts], dict(overrides or {}))
    where = _Where(spec, label, scale, merged, parts)
    for key, value in merged["overrides"].items():  # stages whose output --set gave: that file
        if isinstance(value, StageRef) and value.stage in stages.given:
            merged["overrides"][key] = stages.given[value.stage]
    if isinstance(merged["checkpoint"], StageRef) and merged["checkpoint"].stage in stages.given:
        merged["checkpoint"] = stages.given[merged["checkpoint"].stage]
    refs = {k: v for k, v in merged["overrides"].items() if isinstance(v, StageRef)}
    merged["overrides"] = {k: v for k, v in merged["overrides"].items() if k not in refs}
    if isinstance(merged["checkpoint"], StageRef):
        refs[CHECKPOINT_KEY] = merged["checkpoint"]
        merged["checkpoint"] = None
    needs: dict[str, dict[str, str]] = {}
    for key, ref in refs.items():
        needs[key] = {"stage": ref.stage, "output": ref.output, "run_id": stages.run(ref.stage).run_id}
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
    preset = sc.preset or ("paper" if scale == "paper" else "smoke")
    try:
        config = build_run_config(
            model, data_root, preset=preset, overrides=merged["overrides"]
        )  # henasy.core.overrides nests model.a.b keys and checks every key
    except BenchError as err:
        raise where.error(str(err), _key_named_in(str(err), merged["overrides"])) from None
    if not merged["train"] and not merged["checkpoint"] and CHECKPOINT_KEY not in needs:
        raise where.error("train: false needs a checkpoint to evaluate")
    benchmarks = tuple(merged["benchmarks"])
    eval_settings = dict(sorted(merged["eval"].items()))
    check_run(config, benchmarks, eval_settings, where, merged["overrides"])
    own = {}
    for part in parts:
        own.update({k: v.to_dict() if isinstance(v, StageRef) else v for k, v in part.overrides.items()})
    own.update(params or {})
    draft = Run(
        run_id="",
        sweep=spec.name,
        label=label,
        index=index,
        scale=scale,
        table=None if stage is not None else spec.table,
        config=config.to_dict(),
        benchmarks=benchmarks,
        eval=eval_settings,
        train=bool(merged["train"]),
        checkpoint=merged["checkpoint"],
        params=own,
        needs=needs,
        stage=stage,
    )
    return Run(**{**draft.__dict__, "run_id": run_id_of(draft.resolved())})


def given_outputs(spec: SweepSpec, overrides: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """(stage name → the value ``overrides`` (``--set``) gives to a key that the spec points at that stage,
    those keys)."""
    parts = [spec.base, *(r.run for r in spec.rows), *(p for a in spec.axes.values() for p in a.values())]
    for sc in spec.scales.values():
        parts += [sc.run, *(s.run for s in sc.stages.values())]
    parts += [s.run for s in spec.stages.values()]
    given: dict[str, Any] = {}
    keys: set[str] = set()
    for part in parts:
        for key, value in part.overrides.items():
            if isinstance(value, StageRef) and key in overrides:
                given[value.stage] = overrides[key]
                keys.add(key)
    return given, keys


class StageRuns:
    """Resolves the stages of one expansion, each once (``run(name)``), remembering the order they resolved
    in (a stage after the stages it needs)."""

    def __init__(
        self, spec: SweepSpec, *, scale: str, data_root: str, overrides: dict[str, Any] | None = None
    ) -> None:
        self.spec, self.scale, self.data_root, self.overrides = spec, scale, data_root, overrides
        self.runs: dict[str, Run] = {}
        self.given, self.given_keys = given_outputs(spec, overrides or {})

    def run(self, name: str) -> Run:
        if name not in self.runs:
            self.runs[name] = build_run(
                self.spec,
                f"stage:{name}",
                -1,
                [],
                scale=self.scale,
                data_root=self.data_root,
                overrides=self.overrides,
                stages=self,
                stage=name,
            )
        return self.runs[name]

    def needed(self, runs: list[Run]) -> list[Run]:
        """The stages ``runs`` need, directly or through other stages, dependencies first; indices < 0."""
        # self.runs holds each stage after the stages it needs (``run`` resolves those inside build_run first);
        # one stage per run id (two names whose settings resolve alike are one run)
        by_id = {r.run_id: r for r in self.runs.values()}
        order = needed_stages(list(by_id.values()), runs)
        return [Run(**{**r.__dict__, "index": i - len(order)}) for i, r in enumerate(order)]


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
    _check_options(eval_settings.get("options") or {}, benchmarks, where)
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


def _check_options(options: dict[str, Any], benchmarks: tuple[str, ...], where: _Where) -> None:
    """``eval.options``: only evaluated benchmarks, and values their protocols accept (as ``bench eval``)."""
    from benchmarks.context import resolve_options
    from benchmarks.runner import benchmark_spec

    for name, given in options.items():
        if name not in benchmarks:
            raise where.error(
                f"eval.options names {name!r}, which is not among the evaluated benchmarks {list(benchmarks)}",
                "eval.options",
            )
        try:
            resolve_options(name, benchmark_spec(name).options, given)
        except BenchError as err:
            raise where.error(str(err), "eval.options") from None


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
    """Every run of ``spec`` at ``scale`` on ``data_root``: the stages the rows need (dependencies first), then
    the rows in spec order; ids unique."""
    stages = StageRuns(spec, scale=scale, data_root=data_root, overrides=overrides)
    runs = [
        build_run(spec, label, i, parts, scale=scale, data_root=data_root, overrides=overrides, stages=stages)
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
    return stages.needed(runs) + runs


def rows_of(runs: list[Run]) -> list[Run]:
    """The runs that are not stages."""
    return [r for r in runs if r.stage is None]


def needed_stages(runs: list[Run], selected: list[Run]) -> list[Run]:
    """The stages of ``runs`` that the ``selected`` runs need, directly or through other stages (in order)."""
    by_id = {r.run_id: r for r in runs}
    wanted: set[str] = set()
    todo = [i for r in selected for i in r.stage_ids]
    while todo:
        run_id = todo.pop()
        if run_id not in wanted:
            wanted.add(run_id)
            todo.extend(by_id[run_id].stage_ids)
    return [r for r in runs if r.run_id in wanted]


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
