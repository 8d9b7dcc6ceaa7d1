"""Sweep specs: the YAML schema, strict loading with line numbers, and name → file resolution.

A spec is one human-edited YAML file (``sweeps/ablations/losses.yaml`` fills HENASY Table 3): a ``base`` run
(model, dotted config overrides, the benchmarks evaluated after training), per-``scales`` settings
(``smoke``: tiny presets on the synthetic set, ``paper``: paper presets on real data with the cluster
resources they need), and named ``rows`` (labelled as in the paper table) and/or ``axes`` of dotted
overrides; optionally an Optuna ``search`` space. Design from the anchors' lessons (anchors-style.md,
"Lessons" 4–5: typed dataclasses are the schema, strict loading, unknown key = error, no ``_base_`` chains,
no ``!function`` tags).

Loading uses a subclass of ``yaml.SafeLoader`` (safe tags only) that records the line of every key, so an
error names the file, the 1-based line, the key and the allowed keys (``henasy.errors.DataFormatError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from henasy.errors import BenchError, DataFormatError
from sweeps import SPEC_ROOT

SCALES = ("smoke", "paper")
RUN_KEYS = ("model", "overrides", "benchmarks", "eval", "train", "checkpoint")
TOP_KEYS = ("name", "description", "table", "metrics", "base", "scales", "rows", "axes", "search")
SCALE_KEYS = ("preset", "models", "data", "overrides", "resources", "eval", "train", "checkpoint")
ROW_KEYS = ("label", *RUN_KEYS)
EVAL_KEYS = ("batch_size", "num_workers", "limit", "device")
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
OVERRIDE_SECTIONS = ("model", "data", "trainer")
BENCHMARK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


# ------------------------------------------------------------------------------------------ YAML loading
class LineDict(dict):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (safe tags only) that keeps node line numbers and refuses duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool)):
            raise DataFormatError(loader.name, "mapping keys must be plain scalars", line=line)
        if key in out:
            raise DataFormatError(
                loader.name,
                f"duplicate key {key!r} (first on line {out.key_lines[key]})",
                line=line,
                column=str(key),
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: str | Path) -> Any:
    """Parse ``path`` with safe tags only; mappings/sequences carry line numbers (``LineDict``/``LineList``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise BenchError(f"{path}: cannot read the sweep spec ({err.strerror})") from None
    loader = _LineLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        raise DataFormatError(path, f"not valid YAML: {err.problem or err}", line=line) from None
    finally:
        loader.dispose()


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
class RunPart:
    """Run settings given in one place (base, a scale or a row); ``None`` = not set here."""

    model: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    benchmarks: tuple[str, ...] | None = None
    eval: dict[str, Any] = field(default_factory=dict)
    train: bool | None = None
    checkpoint: str | None = None


@dataclass(frozen=True)
class Scale:
    """Settings of one scale (``smoke`` or ``paper``)."""

    name: str
    preset: str | None = None  # trainer preset; default: smoke for the smoke scale, paper for paper
    models: dict[str, str] = field(default_factory=dict)  # paper model name → the model this scale runs
    data: DataSource | None = None
    run: RunPart = field(default_factory=RunPart)
    resources: Resources = field(default_factory=Resources)


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

    def scale(self, name: str) -> Scale:
        """The settings of scale ``name`` (an empty ``Scale`` when the spec does not mention it)."""
        if name not in SCALES:
            raise BenchError(f"unknown scale {name!r}; choose one of {', '.join(SCALES)}")
        return self.scales.get(name, Scale(name))


# ------------------------------------------------------------------------------------------- validation
class _Checker:
    """Field checks that raise ``DataFormatError`` naming the spec file, line and key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str, *, where: Any = None, key: Any = None, expected: str | None = None) -> None:
        line = None
        if isinstance(where, LineDict):
            line = where.line_of(key) if key is not None else where.line
        elif isinstance(where, (LineList, int)):
            line = where if isinstance(where, int) else where.line
        raise DataFormatError(
            self.path, message, line=line, column=None if key is None else str(key), expected=expected
        )

    def mapping(
        self, value: Any, what: str, allowed: tuple[str, ...] | None, *, parent: Any = None, key: Any = None
    ) -> LineDict:
        if value is None:
            value = LineDict()
            value.line, value.key_lines = (parent.line_of(key) if isinstance(parent, LineDict) else 0), {}
        if not isinstance(value, LineDict):
            self.fail(f"{what} must be a mapping, got {type(value).__name__}", where=parent, key=key)
        if allowed is not None:
            for k in value:
                if k not in allowed:
                    self.fail(
                        f"unknown key {k!r} in {what}",
                        where=value,
                        key=k,
                        expected="one of " + ", ".join(allowed),
                    )
        return value

    def typed(
        self, parent: LineDict, key: str, types: tuple[type, ...], what: str, *, optional: bool = True
    ) -> Any:
        value = parent.get(key)
        if value is None:
            if not optional and key not in parent:
                self.fail(f"missing required key {key!r} in {what}", where=parent)
            return None
        if isinstance(value, bool) and bool not in types:
            self.fail(
                f"{what}.{key} must be {'/'.join(t.__name__ for t in types)}, got {value!r}",
                where=parent,
                key=key,
            )
        if not isinstance(value, types):
            self.fail(
                f"{what}.{key} must be {'/'.join(t.__name__ for t in types)}, got {value!r}",
                where=parent,
                key=key,
            )
        return value

    def positive_int(self, parent: LineDict, key: str, what: str, *, minimum: int = 1) -> int | None:
        value = self.typed(parent, key, (int,), what)
        if value is not None and value < minimum:
            self.fail(f"{what}.{key} must be >= {minimum}, got {value}", where=parent, key=key)
        return value

    def overrides(self, value: Any, what: str, parent: LineDict, key: str) -> dict[str, Any]:
        mapping = self.mapping(value, what, None, parent=parent, key=key)
        out: dict[str, Any] = {}
        for k, v in mapping.items():
            if (
                not isinstance(k, str)
                or k.partition(".")[0] not in OVERRIDE_SECTIONS
                or not k.partition(".")[2]
            ):
                self.fail(
                    f"override key {k!r} in {what} is not a dotted config key",
                    where=mapping,
                    key=k,
                    expected="model.<factory argument>, data.<field> or trainer.<field>, e.g. trainer.lr",
                )
            out[k] = _plain(v)
        _check_config_keys(self, mapping, what)
        return out

    def run_part(self, node: LineDict, what: str) -> RunPart:
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
            benchmarks = tuple(items)
        ev = self.mapping(node.get("eval"), f"{what}.eval", EVAL_KEYS, parent=node, key="eval")
        for k in ("batch_size", "num_workers", "limit"):
            self.positive_int(ev, k, f"{what}.eval", minimum=0 if k == "num_workers" else 1)
        self.typed(ev, "device", (str,), f"{what}.eval")
        return RunPart(
            model=model,
            overrides=overrides,
            benchmarks=benchmarks,
            eval={k: ev[k] for k in ev},
            train=self.typed(node, "train", (bool,), what),
            checkpoint=self.typed(node, "checkpoint", (str,), what),
        )


def _plain(value: Any) -> Any:
    """LineDict/LineList → dict/list (recursively)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _check_config_keys(checker: _Checker, mapping: LineDict, what: str) -> None:
    """``data.*``/``trainer.*`` keys must be fields of the run config and their values must type-check."""
    from henasy.training.config import RunConfig, allowed_keys, apply_overrides

    for key, value in mapping.items():
        if str(key).startswith("model."):
            continue
        try:
            apply_overrides(RunConfig(model="check"), {key: _plain(value)})
        except BenchError as err:
            text = str(err)
            if text.startswith("unknown config key"):
                checker.fail(
                    f"unknown config key {key!r} in {what}",
                    where=mapping,
                    key=key,
                    expected="one of " + ", ".join(allowed_keys()),
                )
            checker.fail(f"bad value in {what}: {text}", where=mapping, key=key)


def parse_spec(data: Any, path: Path, name: str) -> SweepSpec:
    """Validate the loaded YAML ``data`` of ``path`` into a ``SweepSpec``."""
    c = _Checker(path)
    if not isinstance(data, LineDict):
        c.fail("a sweep spec must be a YAML mapping with keys " + ", ".join(TOP_KEYS), where=1)
    top = c.mapping(data, "the spec", TOP_KEYS)
    spec_name = c.typed(top, "name", (str,), "spec") or name
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
            rows.append(Row(label=str(label), run=c.run_part(node, what), line=node.line))
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
        axes[str(axis)] = {
            str(label): RunPart(overrides=c.overrides(ov, f"axes.{axis}.{label}", values, label))
            for label, ov in values.items()
        }

    search = None
    if "search" in top:
        search = _parse_search(c, c.mapping(top["search"], "search", SEARCH_KEYS, parent=top, key="search"))
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
    )


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
    part_node = LineDict((k, node[k]) for k in node if k in RUN_KEYS)
    part_node.line, part_node.key_lines = node.line, {k: node.line_of(k) for k in part_node}
    run = c.run_part(part_node, what)
    res_node = c.mapping(
        node.get("resources"), f"{what}.resources", RESOURCE_KEYS, parent=node, key="resources"
    )
    return Scale(
        name=name,
        preset=preset,
        models=models,
        data=data,
        run=run,
        resources=_parse_resources(c, res_node, what),
    )


def _parse_resources(c: _Checker, node: LineDict, what: str) -> Resources:
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
    return Resources(**values)


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
        if not isinstance(key, str) or key.partition(".")[0] not in OVERRIDE_SECTIONS:
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
            params.append(SearchParam(key, kind, choices=tuple(_plain(choices))))
            continue
        low = c.typed(pn, "low", (int, float), what, optional=False)
        high = c.typed(pn, "high", (int, float), what, optional=False)
        if not low < high:
            c.fail(f"{what}: low ({low}) must be below high ({high})", where=pn, key="low")
        log = bool(c.typed(pn, "log", (bool,), what))
        if log and low <= 0:
            c.fail(f"{what}: a log-scale range needs low > 0", where=pn, key="low")
        params.append(
            SearchParam(key, kind, low=low, high=high, log=log, step=c.typed(pn, "step", (int, float), what))
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
def list_specs() -> list[str]:
    """Names of the specs shipped under ``sweeps/`` (``ablations/losses``, ``tables/table1``, ...)."""
    return sorted(p.relative_to(SPEC_ROOT).with_suffix("").as_posix() for p in SPEC_ROOT.rglob("*.yaml"))


def resolve_spec_path(name_or_path: str | Path) -> tuple[Path, str]:
    """(file, spec name) for a file path, a name under ``sweeps/`` (with or without .yaml) or a SWEEPS entry."""
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
    if candidate.is_file():
        return candidate, stem
    from henasy.catalog import SWEEPS

    if stem in SWEEPS:
        entry = SWEEPS.entry(stem)
        target = SWEEPS.get(stem)
        resolved = Path(target(entry.tags.get("path", f"{stem}.yaml")) if callable(target) else target)
        return resolved, stem
    import difflib

    shipped = list_specs()
    close = difflib.get_close_matches(stem, shipped, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise BenchError(
        f"no sweep spec {raw!r}: not a file, and not a spec under {SPEC_ROOT} ({', '.join(shipped) or 'none'}).{hint}"
    )


def load_spec(name_or_path: str | Path) -> SweepSpec:
    """Resolve, load and validate a sweep spec."""
    path, name = resolve_spec_path(name_or_path)
    return parse_spec(load_yaml(path), path, name)
