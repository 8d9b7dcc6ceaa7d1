"""Sweep specs: the YAML schema, strict loading with line numbers, and name → file resolution.

A spec is one human-edited YAML file (``sweeps/ablations/losses.yaml`` fills HENASY Table 3): a ``base`` run
(model, dotted config overrides, the benchmarks evaluated after training), per-``scales`` settings
(``smoke``: tiny presets on the synthetic set, ``paper``: paper presets on real data with the cluster
resources they need), and named ``rows`` (labelled as in the paper table) and/or ``axes`` of dotted
overrides; optionally an Optuna ``search`` space.

Stages (``stages:``): named runs that rows build on, e.g. ``pretrain`` trains the LaViLa backbone that every
HENASY row of Table 3 starts from. A row consumes a stage's output by reference, never by path: an override
value ``{stage: pretrain, output: checkpoint}`` (e.g. on ``model.lavila_checkpoint``) stands for the stage's
trained weights. A stage is resolved from its own ``model``/``overrides``/``benchmarks``/``eval``, then the
scale's ``scales.<scale>.stages.<name>`` part (overrides, eval, benchmarks, resources); of the scale's own
settings only ``models``, ``preset``, ``data``, ``eval`` and ``resources`` apply to it, and ``base``, the
scale's ``overrides`` and rows do not (they configure the rows: a row-only option such as a HENASY loss
switch never reaches the backbone stage, and changing a row setting never changes the stage's id). References are checked when the spec is read (unknown stage, unknown
output, cycles between stages, references on other than ``model.*`` keys), naming the line. A ``--set`` of a
key that holds a reference to a stage gives that stage's output (``--set model.lavila_checkpoint=/ckpt/lavila.pth``
at paper scale): every reference to that stage (``checkpoint: {stage: pretrain}`` of a ``train: false`` row
included) then reads that file, and the stage is not run. Typed dataclasses are the schema; loading is strict
(unknown key = error, no ``_base_`` chains, no ``!function`` tags).

Files are read by ``henasy.core.specfile.load_yaml`` (safe tags, line numbers, hostile-file limits) and checked
with ``henasy.core.specfile.SpecChecker``: an error names the file, the 1-based line, the key and the allowed keys
(``henasy.core.errors.DataFormatError``). The spec ``name`` becomes the sweep folder ``runs/<name>/<scale>``, so
it must be one or more safe folder names joined by ``/``. A shipped spec is found by its path under
``sweeps/`` or by its ``name`` (``tables/table1`` is ``sweeps/paper_tables/table1.yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from henasy.core import SCALES
from henasy.core.errors import BenchError
from henasy.core.overrides import is_dotted_key
from henasy.core.specfile import LineDict, LineList, SpecChecker, did_you_mean, load_yaml, read_text
from henasy.core.specfile import plain as _plain
from sweeps import SPEC_ROOT

RUN_KEYS = ("model", "overrides", "benchmarks", "eval", "train", "checkpoint")
TOP_KEYS = ("name", "description", "table", "metrics", "base", "stages", "scales", "rows", "axes", "search")
SCALE_KEYS = (
    "preset",
    "models",
    "data",
    "overrides",
    "benchmarks",
    "resources",
    "eval",
    "train",
    "checkpoint",
    "stages",
)
STAGE_KEYS = ("description", "model", "overrides", "benchmarks", "eval")
SCALE_STAGE_KEYS = ("overrides", "eval", "benchmarks", "resources")
REF_KEYS = ("stage", "output")
STAGE_OUTPUTS = ("checkpoint",)  # checkpoint: the stage's trained weights (its run folder's last.pt)
STAGE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ROW_KEYS = ("label", *RUN_KEYS)
# bench eval options; options: {benchmark: {option: value}} as bench eval --option BENCH.KEY=VALUE
EVAL_KEYS = ("batch_size", "num_workers", "limit", "device", "on_missing", "options")
ON_MISSING = ("error", "skip")  # bench eval --on-missing (benchmarks.context.ON_MISSING)
DATA_KEYS = ("synth", "seed")
SYNTH_SIZES = ("tiny", "small", "medium")
RESOURCE_KEYS = (
    "partition",
    "timeout_min",
    "nodes",
    "tasks_per_node",
    "gpus_per_node",
    "cpus_per_task",
    "mem_gb",
    "constraint",
    "account",
    "qos",
    "signal_delay_s",
    "max_num_timeout",
    "additional",
)
SEARCH_KEYS = ("objective", "direction", "n_trials", "sampler", "seed", "space")
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices")
PARAM_TYPES = ("float", "int", "categorical")
DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("tpe", "random")
BENCHMARK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# One folder name of a sweep name (``runs/<name>/<scale>``): no "." / ".." / empty parts, no control characters.
NAME_PART = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.+=@ -]*[A-Za-z0-9_.+=@-])?$")


# ----------------------------------------------------------------------------------------- the schema
@dataclass(frozen=True)
class EvalSettings:
    """How the benchmarks run after training (``benchmarks.runner.evaluate`` keyword arguments)."""

    batch_size: int | None = None  # None: the runner's default
    num_workers: int | None = None
    limit: int | None = None  # evaluate the first N items only: records are marked partial
    device: str | None = None  # None: cuda when available, else cpu


@dataclass(frozen=True)
class DataSource:
    """Where a scale's data comes from when ``--data`` is not given: a generated synthetic set."""

    synth: str = "small"  # generator size
    seed: int = 0

    @property
    def folder_name(self) -> str:
        return f"synth-{self.synth}-seed{self.seed}"


@dataclass(frozen=True)
class Resources:
    """What one job asks the executor for (SLURM terms; the local executor uses tasks and the timeout)."""

    partition: str | None = None
    timeout_min: int = 60
    nodes: int = 1
    tasks_per_node: int = 1  # > 1: one process per task, DistributedDataParallel through submitit's env
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float | None = None
    constraint: str | None = None
    account: str | None = None
    qos: str | None = None
    signal_delay_s: int | None = None  # USR2 this many seconds before the time limit (submitit default 90)
    max_num_timeout: int = 3  # requeues after a time-out (preemptions always requeue)
    additional: dict[str, Any] = field(default_factory=dict)  # extra sbatch options, e.g. {exclusive: true}


@dataclass(frozen=True)
class StageRef:
    """An override value that stands for an output of a stage (``{stage: pretrain, output: checkpoint}``)."""

    stage: str
    output: str = "checkpoint"
    line: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, str]:
        return {"stage": self.stage, "output": self.output}


@dataclass(frozen=True)
class RunPart:
    """Run settings given in one place (base, a scale or a row); ``None`` = not set here."""

    model: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    benchmarks: tuple[str, ...] | None = None
    eval: dict[str, Any] = field(default_factory=dict)
    train: bool | None = None
    checkpoint: str | StageRef | None = None  # a path, or a stage's checkpoint (rows with train: false)
    origin: str = ""  # where in the spec: "base", "scales.smoke", "rows[1] ('b')", "axes.lr.small"
    # 1-based line of each setting: "" (the part), "model", "benchmarks", "checkpoint", "overrides.<key>", ...
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, key: str) -> int | None:
        """The line that sets ``key`` here (the part's own line when the key has none), or None."""
        return self.lines.get(key) or self.lines.get("") or None


@dataclass(frozen=True)
class Stage:
    """A named stage: a run that rows (or later stages) consume by ``StageRef``; trained once per sweep."""

    name: str
    run: RunPart
    description: str = ""
    line: int = 0


@dataclass(frozen=True)
class ScaleStage:
    """A scale's settings for one stage (``scales.<scale>.stages.<name>``): run settings and resources."""

    run: RunPart = field(default_factory=RunPart)
    resources: dict[str, Any] = field(default_factory=dict)  # Resources fields to replace for this stage


@dataclass(frozen=True)
class Scale:
    """Settings of one scale (``smoke`` or ``paper``)."""

    name: str
    preset: str | None = None  # trainer preset; default: smoke for the smoke scale, paper for paper
    models: dict[str, str] = field(default_factory=dict)  # paper model name → the model this scale runs
    data: DataSource | None = None
    run: RunPart = field(default_factory=RunPart)
    resources: Resources = field(default_factory=Resources)
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)  # "models.<name>" → line
    stages: dict[str, ScaleStage] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """One named variant: the paper table row it fills and its settings."""

    label: str
    run: RunPart
    line: int = 0


@dataclass(frozen=True)
class SearchParam:
    """One dimension of an Optuna search space."""

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Search:
    """An Optuna study: trials sample ``space`` on top of the base run and report ``objective``."""

    objective: str  # "<benchmark>.<metric>", e.g. egomcq.intra
    direction: str = "maximize"
    n_trials: int = 8
    sampler: str = "tpe"
    seed: int = 0
    space: tuple[SearchParam, ...] = ()


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep spec."""

    name: str
    path: Path
    description: str = ""
    table: str | None = None
    metrics: tuple[str, ...] = ()  # "<benchmark>.<metric>" columns the paper table reads
    base: RunPart = field(default_factory=RunPart)
    scales: dict[str, Scale] = field(default_factory=dict)
    rows: tuple[Row, ...] = ()
    axes: dict[str, dict[str, RunPart]] = field(default_factory=dict)
    search: Search | None = None
    name_line: int | None = None  # line of the ``name`` key (None: the name comes from the file name)
    stages: dict[str, Stage] = field(default_factory=dict)

    def scale(self, name: str) -> Scale:
        """The settings of scale ``name`` (an empty ``Scale`` when the spec does not mention it)."""
        if name not in SCALES:
            raise BenchError(f"unknown scale {name!r}; choose one of {', '.join(SCALES)}")
        return self.scales.get(name, Scale(name))


# ------------------------------------------------------------------------------------------- validation
class _Checker(SpecChecker):
    """``SpecChecker`` plus the sweep-spec checks: overrides, run settings, benchmark and sweep names."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.refs: list[tuple[StageRef, str]] = []  # every stage reference read, with where it was set

    def overrides(self, value: Any, what: str, parent: LineDict, key: str) -> dict[str, Any]:
        mapping = self.mapping(value, what, None, parent=parent, key=key)
        out: dict[str, Any] = {}
        for k, v in mapping.items():
            if not is_dotted_key(k):
                self.fail(
                    f"override key {k!r} in {what} is not a dotted config key",
                    where=mapping,
                    key=k,
                    expected="model.<factory argument>, data.<field> or trainer.<field>, e.g. trainer.lr",
                )
            out[k] = self.stage_ref(v, f"{what}.{k}", mapping, k) if _is_ref(v) else _plain(v)
        plain_keys = _sub_node(mapping, lambda k: not isinstance(out[k], StageRef))
        _check_config_keys(self, plain_keys, what)
        return out

    def checkpoint(self, node: LineDict, what: str) -> str | StageRef | None:
        """``checkpoint``: a path, or ``{stage: NAME}`` (evaluate a stage's weights: ``train: false`` rows)."""
        value = node.get("checkpoint")
        if _is_ref(value):
            return self.stage_ref(value, f"{what}.checkpoint", node, "checkpoint")
        return self.typed(node, "checkpoint", (str,), what)

    def stage_ref(self, value: LineDict, what: str, parent: LineDict, key: str) -> StageRef:
        """``{stage: NAME, output: checkpoint}`` on a ``model.<option>`` key (a path option of the model) or on
        ``checkpoint``."""
        node = self.mapping(value, what, REF_KEYS, parent=parent, key=key)
        if key != "checkpoint" and not re.match(r"^model\.[A-Za-z_][A-Za-z0-9_]*$", str(key)):
            self.fail(
                f"{what}: a stage output is a file of model weights; it can only be the value of a "
                "model.<option> key",
                where=parent,
                key=key,
                expected="e.g. model.lavila_checkpoint: {stage: pretrain, output: checkpoint}",
            )
        name = self.typed(node, "stage", (str,), what, optional=False)
        output = self.typed(node, "output", (str,), what) or "checkpoint"
        if output not in STAGE_OUTPUTS:
            self.fail(
                f"{what}: unknown stage output {output!r}{did_you_mean(output, STAGE_OUTPUTS)}",
                where=node,
                key="output",
                expected="one of " + ", ".join(STAGE_OUTPUTS),
            )
        ref = StageRef(name, output, line=node.line_of("stage"))
        self.refs.append((ref, what))
        return ref

    def run_part(self, node: LineDict, what: str, origin: str | None = None) -> RunPart:
        """Settings of ``node`` (base, a scale or a row); ``origin`` names it in later errors (default ``what``)."""
        model = self.typed(node, "model", (str,), what)
        overrides = self.overrides(node.get("overrides"), f"{what}.overrides", node, "overrides")
        benchmarks = None
        if "benchmarks" in node:
            items = node["benchmarks"]
            if not isinstance(items, LineList) or not all(isinstance(b, str) for b in items):
                self.fail(
                    f"{what}.benchmarks must be a list of benchmark names", where=node, key="benchmarks"
                )
            for i, name in enumerate(items):
                if not BENCHMARK_NAME.match(name):
                    self.fail(
                        f"bad benchmark name {name!r}",
                        where=items.item_lines[i],
                        expected="e.g. egomcq, ek100_mir",
                    )
            if len(set(items)) != len(items):
                self.fail(f"{what}.benchmarks lists a benchmark twice", where=node, key="benchmarks")
            self.registered_benchmarks(items, origin or what)
            benchmarks = tuple(items)
        ev = self.mapping(node.get("eval"), f"{what}.eval", EVAL_KEYS, parent=node, key="eval")
        for k in ("batch_size", "num_workers", "limit"):
            self.positive_int(ev, k, f"{what}.eval", minimum=0 if k == "num_workers" else 1)
        self.typed(ev, "device", (str,), f"{what}.eval")
        if self.typed(ev, "on_missing", (str,), f"{what}.eval") not in (None, *ON_MISSING):
            self.fail(
                f"{what}.eval.on_missing must be one of {list(ON_MISSING)}, got {ev['on_missing']!r}",
                ev,
                "on_missing",
            )
        self.benchmark_options(ev, f"{what}.eval")
        lines = {"": node.line, **{k: node.line_of(k) for k in node if k in RUN_KEYS}}
        lines.update({f"eval.{k}": ev.line_of(k) for k in ev})
        ov = node.get("overrides")
        if isinstance(ov, LineDict):
            lines.update({f"overrides.{k}": ov.line_of(k) for k in ov})
        return RunPart(
            model=model,
            overrides=overrides,
            benchmarks=benchmarks,
            eval={k: _plain(ev[k]) if k == "options" else ev[k] for k in ev},
            train=self.typed(node, "train", (bool,), what),
            checkpoint=self.checkpoint(node, what),
            origin=origin or what,
            lines=lines,
        )

    def benchmark_options(self, ev: LineDict, what: str) -> None:
        """``eval.options``: a mapping of benchmark names to mappings of option names to plain values (the
        values are checked against each benchmark's options when the spec expands: ``sweeps.expand``)."""
        options = self.mapping(ev.get("options"), f"{what}.options", None, parent=ev, key="options")
        for bench, given in options.items():
            if not isinstance(bench, str) or not BENCHMARK_NAME.match(bench):
                self.fail(f"{what}.options: bad benchmark name {bench!r}", options, bench)
            given = self.mapping(given, f"{what}.options.{bench}", None, parent=options, key=bench)
            for name, value in given.items():
                if not isinstance(value, (str, int, float, bool)) and value is not None:
                    self.fail(
                        f"{what}.options.{bench}.{name} must be a plain value (string, number, bool, null), "
                        f"got {type(value).__name__}",
                        given,
                        name,
                    )

    def registered_benchmarks(self, items: LineList, where: str) -> None:
        """Every name of ``items`` is a registered benchmark (``henasy.core.catalog.BENCHMARKS``)."""
        from henasy.core.catalog import BENCHMARKS

        for i, name in enumerate(items):
            try:
                BENCHMARKS.entry(name)
            except BenchError as err:
                self.fail(f"{where}.benchmarks: {err}", where=items.item_lines[i], key="benchmarks")

    def sweep_name(self, top: LineDict, derived: str) -> tuple[str, int | None]:
        """(the sweep name, its line): ``name`` or the name derived from the file; a safe relative folder."""
        given = self.typed(top, "name", (str,), "spec")
        name = derived if given is None else given
        parts = name.split("/")
        if all(NAME_PART.match(part) for part in parts) and len(name) <= 200:
            return name, None if given is None else top.line_of("name")
        expected = "folder names of letters, digits, _ . + = @ - joined by '/', e.g. ablations/losses"
        if given is None:
            self.fail(
                f"the sweep name {name!r} taken from the file name is not a safe folder name "
                "(the sweep folder is runs/<name>/<scale>); add a 'name:' to the spec",
                where=1,
                expected=expected,
            )
        self.fail(
            f"name {name!r} cannot be a sweep folder: runs/<name>/<scale> must stay inside runs/",
            where=top,
            key="name",
            expected=expected,
        )


def _is_ref(value: Any) -> bool:
    """A mapping with a ``stage`` key is a stage reference (no model option takes such a mapping)."""
    return isinstance(value, LineDict) and "stage" in value


def _sub_node(node: LineDict, keep: Callable[[Any], bool]) -> LineDict:
    """The keys of ``node`` that ``keep`` accepts, with their values, ``node``'s line and their key lines."""
    sub = LineDict((k, v) for k, v in node.items() if keep(k))
    lines = getattr(node, "key_lines", {})
    sub.line, sub.key_lines = node.line, {k: lines.get(k, node.line) for k in sub}
    return sub


def _check_config_keys(checker: _Checker, mapping: LineDict, what: str) -> None:
    """``data.*``/``trainer.*`` keys and values pass ``henasy.core.overrides.validate`` (the message of every
    command), reported at their line; ``model.*`` options are checked by the factory when the spec expands."""
    from henasy.core import overrides
    from henasy.training.config import RunConfig

    template = RunConfig(model="check")
    for key, value in mapping.items():
        if str(key).startswith(f"{overrides.MODEL}."):
            continue
        try:
            overrides.validate({key: _plain(value)}, template)
        except BenchError as err:
            checker.fail(f"{what}: {err}", where=mapping, key=key)


def parse_spec(data: Any, path: Path, name: str) -> SweepSpec:
    """Validate the loaded YAML ``data`` of ``path`` into a ``SweepSpec``."""
    c = _Checker(path)
    if not isinstance(data, LineDict):
        c.fail("a sweep spec must be a YAML mapping with keys " + ", ".join(TOP_KEYS), where=1)
    top = c.mapping(data, "the spec", TOP_KEYS)
    spec_name, name_line = c.sweep_name(top, name)
    table = top.get("table")
    if table is not None and not isinstance(table, (str, int)):
        c.fail("table must be the paper table id, e.g. 3", where=top, key="table")
    metrics: tuple[str, ...] = ()
    if "metrics" in top:
        items = top["metrics"]
        if not isinstance(items, LineList) or not all(isinstance(m, str) and "." in m for m in items):
            c.fail("metrics must be a list of '<benchmark>.<metric>' names", where=top, key="metrics")
        metrics = tuple(items)

    base_node = c.mapping(top.get("base"), "base", RUN_KEYS, parent=top, key="base")
    base = c.run_part(base_node, "base")
    stages = _parse_stages(c, top)

    scales: dict[str, Scale] = {}
    scales_node = c.mapping(top.get("scales"), "scales", SCALES, parent=top, key="scales")
    for scale_name, node in scales_node.items():
        scales[scale_name] = _parse_scale(
            c,
            scale_name,
            c.mapping(node, f"scales.{scale_name}", SCALE_KEYS, parent=scales_node, key=scale_name),
        )

    rows: list[Row] = []
    if "rows" in top:
        items = top["rows"]
        if not isinstance(items, LineList) or not items:
            c.fail("rows must be a non-empty list of {label: ..., overrides: {...}}", where=top, key="rows")
        for i, node in enumerate(items):
            what = f"rows[{i}]"
            if not isinstance(node, LineDict):
                c.fail(f"{what} must be a mapping with keys {', '.join(ROW_KEYS)}", where=items.item_lines[i])
            node = c.mapping(node, what, ROW_KEYS)
            label = c.typed(node, "label", (str, int, float), what, optional=False)
            run = c.run_part(node, what, origin=f"{what} ({str(label)!r})")
            rows.append(Row(label=str(label), run=run, line=node.line))
        labels = [r.label for r in rows]
        for i, label in enumerate(labels):
            if labels.index(label) != i:
                c.fail(f"row label {label!r} is used twice", where=rows[i].line)

    axes: dict[str, dict[str, RunPart]] = {}
    axes_node = c.mapping(top.get("axes"), "axes", None, parent=top, key="axes")
    for axis, values in axes_node.items():
        values = c.mapping(values, f"axes.{axis}", None, parent=axes_node, key=axis)
        if not values:
            c.fail(f"axes.{axis} has no values", where=axes_node, key=axis)
        axes[str(axis)] = {str(label): _axis_value(c, axis, label, values) for label in values}

    search = None
    if "search" in top:
        search = _parse_search(c, c.mapping(top["search"], "search", SEARCH_KEYS, parent=top, key="search"))
    _check_refs(c, stages, scales)
    return SweepSpec(
        name=spec_name,
        path=path,
        description=str(top.get("description") or ""),
        table=None if table is None else str(table),
        metrics=metrics,
        base=base,
        scales=scales,
        rows=tuple(rows),
        axes=axes,
        search=search,
        name_line=name_line,
        stages=stages,
    )


def _parse_stages(c: _Checker, top: LineDict) -> dict[str, Stage]:
    """``stages:``: name → model, overrides, benchmarks, eval (a mapping, in pipeline order)."""
    node = c.mapping(top.get("stages"), "stages", None, parent=top, key="stages")
    out: dict[str, Stage] = {}
    for name, value in node.items():
        if not isinstance(name, str) or not STAGE_NAME.match(name):
            c.fail(
                f"stage name {name!r} is not a lower-case identifier",
                where=node,
                key=name,
                expected="e.g. pretrain",
            )
        what = f"stages.{name}"
        part = c.mapping(value, what, STAGE_KEYS, parent=node, key=name)
        run = c.run_part(_sub_node(part, lambda k: k in RUN_KEYS), what, origin=what)
        description = c.typed(part, "description", (str,), what) or ""
        out[name] = Stage(name=name, run=run, description=description, line=node.line_of(name))
    return out


def _parse_scale_stages(c: _Checker, node: LineDict, what: str) -> dict[str, ScaleStage]:
    """``scales.<scale>.stages``: name → overrides, eval, benchmarks, resources of that stage at this scale."""
    stages_node = c.mapping(node.get("stages"), f"{what}.stages", None, parent=node, key="stages")
    out: dict[str, ScaleStage] = {}
    for name, value in stages_node.items():
        where = f"{what}.stages.{name}"
        part = c.mapping(value, where, SCALE_STAGE_KEYS, parent=stages_node, key=name)
        run_node = _sub_node(part, lambda k: k in RUN_KEYS)
        res_node = c.mapping(
            part.get("resources"), f"{where}.resources", RESOURCE_KEYS, parent=part, key="resources"
        )
        out[str(name)] = ScaleStage(
            run=c.run_part(run_node, where, origin=where), resources=_resource_values(c, res_node, where)
        )
    return out


def _check_refs(c: _Checker, stages: dict[str, Stage], scales: dict[str, Scale]) -> None:
    """Every reference names a declared stage; stages do not depend on themselves; scale stage parts exist."""
    for ref, what in c.refs:
        if ref.stage not in stages:
            declared = ", ".join(stages) or "none declared"
            c.fail(
                f"{what}: no stage {ref.stage!r}{did_you_mean(ref.stage, stages)} (stages: {declared})",
                where=ref.line or None,
                expected="a name under the spec's top-level stages:",
            )
    for scale in scales.values():
        for name in scale.stages:
            if name not in stages:
                c.fail(
                    f"scales.{scale.name}.stages.{name}: no stage {name!r}{did_you_mean(name, stages)}",
                    where=scale.lines.get(f"stages.{name}"),
                    expected="a name under the spec's top-level stages:",
                )

    def needs(name: str) -> set[str]:
        parts = [stages[name].run, *(s.stages[name].run for s in scales.values() if name in s.stages)]
        return {v.stage for p in parts for v in p.overrides.values() if isinstance(v, StageRef)}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            cycle = " → ".join((*path[path.index(name) :], name))
            c.fail(f"stages depend on each other in a cycle: {cycle}", where=stages[name].line)
        for dep in needs(name):
            visit(dep, (*path, name))

    for name in stages:
        visit(name, ())


def _axis_value(c: _Checker, axis: Any, label: Any, values: LineDict) -> RunPart:
    """One value of an axis: its dotted overrides, with their lines."""
    what = f"axes.{axis}.{label}"
    overrides = c.overrides(values[label], what, values, label)
    node = values[label]
    lines = {"": values.line_of(label)}
    if isinstance(node, LineDict):
        lines.update({f"overrides.{k}": node.line_of(k) for k in node})
    return RunPart(overrides=overrides, origin=what, lines=lines)


def _parse_scale(c: _Checker, name: str, node: LineDict) -> Scale:
    what = f"scales.{name}"
    preset = c.typed(node, "preset", (str,), what)
    if preset is not None:
        from henasy.training.config import PRESETS

        if preset not in PRESETS:
            c.fail(
                f"unknown preset {preset!r}",
                where=node,
                key="preset",
                expected="one of " + ", ".join(PRESETS),
            )
    models_node = c.mapping(node.get("models"), f"{what}.models", None, parent=node, key="models")
    models = {}
    for k, v in models_node.items():
        if not isinstance(v, str):
            c.fail(f"{what}.models.{k} must be a registered model name", where=models_node, key=k)
        models[str(k)] = v
    data = None
    if "data" in node:
        dn = c.mapping(node["data"], f"{what}.data", DATA_KEYS, parent=node, key="data")
        size = c.typed(dn, "synth", (str,), f"{what}.data") or "small"
        if size not in SYNTH_SIZES:
            c.fail(
                f"unknown synthetic size {size!r}",
                where=dn,
                key="synth",
                expected="one of " + ", ".join(SYNTH_SIZES),
            )
        seed = c.typed(dn, "seed", (int,), f"{what}.data")
        data = DataSource(synth=size, seed=0 if seed is None else seed)
    run = c.run_part(_sub_node(node, lambda k: k in RUN_KEYS), what)
    res_node = c.mapping(
        node.get("resources"), f"{what}.resources", RESOURCE_KEYS, parent=node, key="resources"
    )
    stages = _parse_scale_stages(c, node, what)
    stage_lines = {}
    if isinstance(node.get("stages"), LineDict):
        stage_lines = {f"stages.{k}": node["stages"].line_of(k) for k in node["stages"]}
    return Scale(
        name=name,
        preset=preset,
        models=models,
        data=data,
        run=run,
        resources=_parse_resources(c, res_node, what),
        lines={**{f"models.{k}": models_node.line_of(k) for k in models_node}, **stage_lines},
        stages=stages,
    )


def _parse_resources(c: _Checker, node: LineDict, what: str) -> Resources:
    return Resources(**_resource_values(c, node, what))


def _resource_values(c: _Checker, node: LineDict, what: str) -> dict[str, Any]:
    """The ``Resources`` fields given in ``node`` (checked), by name."""
    what = f"{what}.resources"
    values: dict[str, Any] = {}
    for key in ("timeout_min", "nodes", "tasks_per_node", "cpus_per_task", "max_num_timeout"):
        value = c.positive_int(node, key, what, minimum=0 if key == "max_num_timeout" else 1)
        if value is not None:
            values[key] = value
    for key in ("gpus_per_node", "signal_delay_s"):
        value = c.positive_int(node, key, what, minimum=0)
        if value is not None:
            values[key] = value
    mem = c.typed(node, "mem_gb", (int, float), what)
    if mem is not None:
        if mem <= 0:
            c.fail(f"{what}.mem_gb must be > 0", where=node, key="mem_gb")
        values["mem_gb"] = float(mem)
    for key in ("partition", "constraint", "account", "qos"):
        value = c.typed(node, key, (str,), what)
        if value is not None:
            values[key] = value
    if "additional" in node:
        values["additional"] = _plain(
            c.mapping(node["additional"], f"{what}.additional", None, parent=node, key="additional")
        )
    return values


def _parse_search(c: _Checker, node: LineDict) -> Search:
    objective = c.typed(node, "objective", (str,), "search", optional=False)
    if "." not in objective:
        c.fail(
            "search.objective must be '<benchmark>.<metric>', e.g. egomcq.intra", where=node, key="objective"
        )
    direction = c.typed(node, "direction", (str,), "search") or "maximize"
    if direction not in DIRECTIONS:
        c.fail(
            f"unknown direction {direction!r}", where=node, key="direction", expected="maximize or minimize"
        )
    sampler = c.typed(node, "sampler", (str,), "search") or "tpe"
    if sampler not in SAMPLERS:
        c.fail(
            f"unknown sampler {sampler!r}",
            where=node,
            key="sampler",
            expected="one of " + ", ".join(SAMPLERS),
        )
    space_node = c.mapping(node.get("space"), "search.space", None, parent=node, key="space")
    if not space_node:
        c.fail("search.space is empty: name at least one dotted key to search over", where=node, key="space")
    params = []
    for key, pn in space_node.items():
        what = f"search.space.{key}"
        if not is_dotted_key(key):
            c.fail(
                f"{what}: not a dotted config key",
                where=space_node,
                key=key,
                expected="e.g. model.lambda_nec",
            )
        pn = c.mapping(pn, what, PARAM_KEYS, parent=space_node, key=key)
        kind = c.typed(pn, "type", (str,), what, optional=False)
        if kind not in PARAM_TYPES:
            c.fail(
                f"{what}.type {kind!r} is not known",
                where=pn,
                key="type",
                expected="one of " + ", ".join(PARAM_TYPES),
            )
        if kind == "categorical":
            choices = pn.get("choices")
            if not isinstance(choices, LineList) or not choices:
                c.fail(f"{what}: a categorical parameter needs a non-empty 'choices' list", where=pn)
            params.append(
                SearchParam(key, kind, choices=tuple(_plain(choices)), line=space_node.line_of(key))
            )
            continue
        low = c.typed(pn, "low", (int, float), what, optional=False)
        high = c.typed(pn, "high", (int, float), what, optional=False)
        if not low < high:
            c.fail(f"{what}: low ({low}) must be below high ({high})", where=pn, key="low")
        log = bool(c.typed(pn, "log", (bool,), what))
        if log and low <= 0:
            c.fail(f"{what}: a log-scale range needs low > 0", where=pn, key="low")
        step = c.typed(pn, "step", (int, float), what)
        params.append(
            SearchParam(key, kind, low=low, high=high, log=log, step=step, line=space_node.line_of(key))
        )
    return Search(
        objective=objective,
        direction=direction,
        n_trials=c.positive_int(node, "n_trials", "search") or 8,
        sampler=sampler,
        seed=c.typed(node, "seed", (int,), "search") or 0,
        space=tuple(params),
    )


# ------------------------------------------------------------------------------------------ resolution
@dataclass(frozen=True)
class ShippedSpec:
    """A spec file under ``sweeps/``, as ``bench list sweeps`` shows it (read, not validated)."""

    name: str  # its ``name`` (the sweep folder and MLflow tag), else its path under sweeps/ without .yaml
    path: Path
    description: str


def shipped_specs() -> dict[str, ShippedSpec]:
    """Every spec file under ``sweeps/``, by sweep name: the folder is the registry (no list to keep)."""
    out: dict[str, ShippedSpec] = {}
    for path in sorted(SPEC_ROOT.rglob("*.yaml")):
        name = path.relative_to(SPEC_ROOT).with_suffix("").as_posix()
        try:
            data = load_yaml(path)
        except BenchError as err:
            out[name] = ShippedSpec(name, path, f"(cannot be read: {err})")
            continue
        top = data if isinstance(data, dict) else {}
        declared = top.get("name")
        name = declared if isinstance(declared, str) and declared else name
        out[name] = ShippedSpec(name, path, str(top.get("description") or ""))
    return out


def list_specs() -> list[str]:
    """Names of the specs shipped under ``sweeps/`` (``ablations/losses``, ``tables/table1``, ...)."""
    return sorted(shipped_specs())


def resolve_spec_path(name_or_path: str | Path) -> tuple[Path, str]:
    """(file, spec name) for a file path, a path under ``sweeps/`` (with or without .yaml) or a spec's name."""
    raw = str(name_or_path)
    path = Path(raw).expanduser()
    if path.is_file():
        try:
            return path.resolve(), path.resolve().relative_to(SPEC_ROOT).with_suffix("").as_posix()
        except ValueError:
            return path.resolve(), path.stem
    stem = raw[: -len(".yaml")] if raw.endswith((".yaml", ".yml")) else raw
    stem = stem.removeprefix("sweeps/")
    candidate = SPEC_ROOT / f"{stem}.yaml"
    if candidate.is_file() and candidate.resolve().is_relative_to(SPEC_ROOT.resolve()):
        return candidate, stem
    shipped = shipped_specs()
    if stem in shipped:
        return shipped[stem].path, stem
    if path.exists():
        read_text(path)  # raises: a folder or a special file is named as such
    import difflib

    names = sorted(shipped)
    close = difflib.get_close_matches(stem, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise BenchError(
        f"no sweep spec {raw!r}: not a file, and not a spec under {SPEC_ROOT} ({', '.join(names) or 'none'}).{hint}"
    )


def load_spec(name_or_path: str | Path) -> SweepSpec:
    """Resolve, load and validate a sweep spec."""
    path, name = resolve_spec_path(name_or_path)
    return parse_spec(load_yaml(path), path, name)
