"""Launching a sweep: plan (spec → runs → what to submit), prepare data, submit, write the manifest.

``plan_sweep`` has no side effects (``bench sweep --dry-run`` prints it): it loads the spec, picks the data
root (``--data``, or the scale's synthetic set under ``./data/synth-<size>-seed<seed>``), expands the runs
and decides per run: ``submit`` (no complete result), ``finished`` (complete result: skipped unless
``--force``) or ``active`` (its job is still pending/running: never submitted twice). ``launch`` generates
the synthetic set on first use (under a lock, into a temporary folder renamed into place), creates the
MLflow store and experiment once (before jobs race for it), submits one ``SweepJob`` per run and records
every job in ``<sweep_dir>/manifest.json``.

Validate before spending: ``plan_sweep`` refuses, before anything is generated, submitted or written, a
spec whose rows do not all validate (``sweeps.expand.check_run``: model, benchmarks, every override key and
type), a search space whose bounds do not (a trial at each bound is expanded), an ``--data`` that is not a
dataset folder (training rows need its ``ego4d/egoclip.csv``), files a row reads that do not exist
(``checkpoint`` of ``train: false`` rows, ``data.verb_phrases``), an ``--out`` or ``runs`` that is a file,
and a sweep folder that would resolve outside ``runs/``.

Stages: the plan holds the stages the rows need before the rows (``sweeps.expand``). ``launch`` submits every
stage and every row at once: on SLURM each row (job array per group of rows with the same stages) and each
stage that needs another carries ``--dependency=afterok:<stage jobs>`` (a failed stage leaves them pending:
``bench status`` shows them blocked); on the local executor a row's job waits for its stages' results before
it takes a slot (``sweeps.job``), and ends as blocked when a stage's job ended without one. A finished stage is
not submitted again; a rerun after a failed stage resubmits it and replaces the rows' dead pending SLURM jobs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from henasy.core import SCALES
from henasy.core.atomic import atomic_write_json
from henasy.core.errors import BenchError, DataFormatError
from sweeps import executors, manifest, monitor, records
from sweeps.expand import Run, build_run, expand, needed_stages, rows_of
from sweeps.spec import DataSource, Resources, SweepSpec, load_spec

SUBMIT, FINISHED, ACTIVE = "submit", "finished", "active"
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class SweepOptions:
    """What ``bench sweep`` was asked to do (command-line values; None = the spec's / default)."""

    spec: str
    scale: str = "smoke"
    data: str | None = None
    executor: str = "local"
    max_parallel: int | None = None
    out: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)  # partition, timeout_min, gpus_per_node, ...
    force: bool = False
    only: list[str] = field(default_factory=list)  # row labels
    tracking_uri: str | None = None
    tracking: bool = True
    check_data: bool = True  # preflight (henasy.data.preflight) of a user-given data root before submitting


@dataclass
class Plan:
    """A resolved sweep, before anything is submitted."""

    spec: SweepSpec
    scale: str
    data_root: Path
    synth: DataSource | None  # generate this set at data_root on first use
    sweep_dir: Path
    runs: list[Run]
    decisions: dict[str, str]  # run_id → submit | finished | active
    resources: Resources
    executor: str
    max_parallel: int
    tracking_uri: str | None
    force: bool = False  # redo runs that have a complete result
    check_data: bool = True  # run the data preflight before submitting (user-given data roots only)
    stage_resources: dict[str, Resources] = field(default_factory=dict)  # stage name → its resources
    replace_jobs: dict[str, str] = field(default_factory=dict)  # run_id → pending job to cancel (dead stage)

    def run_dir(self, run: Run) -> Path:
        return self.sweep_dir / run.run_id

    @property
    def stages(self) -> list[Run]:
        return [r for r in self.runs if r.stage is not None]

    def resources_of(self, run: Run) -> Resources:
        """The resources of ``run``'s job (a stage's own, else the scale's)."""
        return self.stage_resources.get(run.stage or "", self.resources)

    @property
    def to_submit(self) -> list[Run]:
        return [r for r in self.runs if self.decisions[r.run_id] == SUBMIT]


def git_commit() -> str:
    """The commit the code runs from (``-dirty`` with uncommitted changes), else ``unknown (why)``:
    ``henasy.core.buildinfo.git_commit`` (a git checkout, else the commit a wheel recorded when it was built)."""
    from henasy.core.buildinfo import git_commit as commit

    return commit()


def sweep_dir_for(spec_name: str, scale: str, out: str | None = None) -> Path:
    """``--out`` or ``runs/<spec name>/<scale>`` (absolute); a name that leads outside ``runs/`` is refused."""
    if out:
        return Path(out).resolve()
    root = Path("runs").resolve()
    folder = (root / spec_name / scale).resolve()
    if not folder.is_relative_to(root) or folder == root:
        raise BenchError(
            f"sweep name {spec_name!r} would put the sweep folder at {folder}, outside {root}; "
            "give the spec a name made of plain folder names, e.g. name: ablations/losses"
        )
    return folder


def _spec_sweep_dir(spec: SweepSpec, scale: str, out: str | None) -> Path:
    """``sweep_dir_for`` whose refusal names the spec file and the line of its ``name``."""
    try:
        folder = sweep_dir_for(spec.name, scale, out)
    except BenchError as err:
        raise DataFormatError(spec.path, str(err), line=spec.name_line, column="name") from None
    _must_be_folder(folder, "--out" if out else "the sweep folder")
    return folder


def _must_be_folder(folder: Path, what: str) -> None:
    """``folder`` and each existing parent are folders (a file in the way would fail the run later)."""
    for path in (folder, *folder.parents):
        if path.exists():
            if not path.is_dir():
                raise BenchError(
                    f"{what} {folder}: {path} is a file, not a folder; move it or choose another"
                )
            return


def resolve_data(spec: SweepSpec, scale: str, data: str | None) -> tuple[Path, DataSource | None]:
    """(data root, synthetic set to generate there if missing)."""
    if data:
        root = Path(data).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise BenchError(
                f"--data {data}: is a file; give the dataset root folder (holding ego4d/, ek100/ ...)"
            )
        if not root.is_dir():
            raise BenchError(
                f"--data {data}: no such folder (a dataset root holding ego4d/, ek100/, egtea/ ...)"
            )
        return root, None
    source = spec.scale(scale).data
    if source is None:
        raise BenchError(
            f"{spec.path}: scale {scale!r} has no default data; pass --data DIR (the real dataset root, laid out as "
            "the synthetic one: ego4d/egoclip.csv, ek100/, egtea/ ...)"
        )
    root = (Path("data") / source.folder_name).resolve()
    _must_be_folder(root, "the synthetic dataset folder")
    return root, source


def plan_sweep(opts: SweepOptions, spec: SweepSpec | None = None) -> Plan:
    """Resolve ``opts`` into a ``Plan`` (reads the manifest; submits nothing, writes nothing)."""
    spec = spec or load_spec(opts.spec)
    if opts.executor not in executors.EXECUTORS:
        raise BenchError(
            f"unknown --executor {opts.executor!r}; choose one of {', '.join(executors.EXECUTORS)}"
        )
    data_root, synth = resolve_data(spec, opts.scale, opts.data)
    sweep_dir = _spec_sweep_dir(spec, opts.scale, opts.out)
    runs = expand(spec, scale=opts.scale, data_root=str(data_root), overrides=opts.overrides)
    if spec.search is not None:
        _check_search_bounds(spec, opts.scale, str(data_root), opts.overrides)
    _check_files(spec, runs, data_root if synth is None else None)
    if opts.only:
        labels = [r.label for r in runs]
        unknown = [label for label in opts.only if label not in labels]
        if unknown:
            raise BenchError(
                f"--only {unknown}: no such row in {spec.path}; rows: {', '.join(map(repr, labels))}"
            )
        selected = [r for r in runs if r.label in opts.only]
        runs = needed_stages(runs, selected) + selected
    resources = executors.with_flags(spec.scale(opts.scale).resources, **opts.resources)
    # a stage's scale part: its resources, command-line flags still winning (other stages: Plan.resources_of
    # falls back to the scale's)
    stage_resources = {
        name: executors.with_flags(replace(resources, **stage.resources), **opts.resources)
        for name, stage in spec.scale(opts.scale).stages.items()
    }
    max_parallel = opts.max_parallel or (
        executors.default_max_parallel(resources) if opts.executor == "local" else max(1, len(runs))
    )
    if max_parallel < 1:
        raise BenchError("--max-parallel must be >= 1")
    decisions, replace_jobs = _decide(runs, sweep_dir, opts.force)
    uri = None
    if opts.tracking:
        from sweeps.tracking import resolve_tracking_uri

        uri = resolve_tracking_uri(opts.tracking_uri)
    return Plan(
        spec,
        opts.scale,
        data_root,
        synth,
        sweep_dir,
        runs,
        decisions,
        resources,
        opts.executor,
        max_parallel,
        uri,
        opts.force,
        opts.check_data,
        stage_resources,
        replace_jobs,
    )


def _check_search_bounds(spec: SweepSpec, scale: str, data_root: str, overrides: dict[str, Any]) -> None:
    """Expand (and so validate) trial runs that together take both ends of every range and every choice."""
    assert spec.search is not None
    columns = {}
    for param in spec.search.space:
        values = list(param.choices) if param.choices else [param.low, param.high]
        columns[param.key] = [int(v) for v in values] if param.type == "int" and not param.choices else values
    count = max(len(values) for values in columns.values())
    for i in range(count):
        params = {key: values[min(i, len(values) - 1)] for key, values in columns.items()}
        label = f"search space check {i + 1} of {count}"
        build_run(
            spec,
            label,
            i,
            [],
            scale=scale,
            data_root=data_root,
            overrides={**overrides, **params},
            params=params,
        )


def _check_files(spec: SweepSpec, runs: list[Run], data_root: Path | None) -> None:
    """Files the runs will read exist: the given dataset's egoclip.csv (training), checkpoints, verb phrases."""
    from henasy.data.layout import DatasetLayout

    training = [r.label for r in runs if r.train]
    if data_root is not None and training and not DatasetLayout(data_root).egoclip_csv.is_file():
        raise BenchError(
            f"--data {data_root}: no {DatasetLayout(data_root).egoclip_csv.relative_to(data_root)}, which "
            f"training needs (row {training[0]!r} of {spec.path} trains); give the dataset root"
        )
    for run in runs:
        needed = {"checkpoint": run.checkpoint if not run.train else None}
        needed["data.verb_phrases"] = run.config["data"].get("verb_phrases") if run.train else None
        for key, path in needed.items():
            if path and not Path(path).expanduser().is_file():
                raise BenchError(
                    f"{spec.path}: row {run.label!r}: {key} {path} is not a file (relative paths are read "
                    f"from {Path.cwd()})"
                )


def _decide(runs: list[Run], sweep_dir: Path, force: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(run_id → submit | finished | active, run_id → pending SLURM job to replace).

    A run whose job is still pending but one of whose stages is submitted again (its earlier job failed or
    was killed) waits on a dependency that can never be met: it is submitted again and that job replaced.
    """
    try:
        data = manifest.read_manifest(sweep_dir)
    except BenchError:
        data = {"runs": {}}
    jobs = monitor.job_states(data)
    out: dict[str, str] = {}
    replace_jobs: dict[str, str] = {}
    for run in runs:  # stages come before the runs that need them
        state = jobs.get(run.run_id, ("",))[0]
        if records.run_finished(sweep_dir / run.run_id, run.run_id, run.benchmarks) and not force:
            out[run.run_id] = FINISHED
        elif state in (executors.PENDING, executors.RUNNING):
            out[run.run_id] = ACTIVE
            entry = data["runs"].get(run.run_id, {})
            stale = any(out.get(i) == SUBMIT for i in run.stage_ids)
            if stale and state == executors.PENDING and entry.get("executor") == "slurm":
                out[run.run_id] = SUBMIT
                replace_jobs[run.run_id] = str(entry["job_id"])
        else:
            out[run.run_id] = SUBMIT
    return out, replace_jobs


def _param_text(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"stage", "output"}:
        return f"<{value['output']} of stage {value['stage']}>"
    return str(value)


def plan_table(plan: Plan) -> str:
    """The runs of a plan as a table (``--dry-run``); with stages, a column says what each run waits for."""
    from tabulate import tabulate

    names = {r.run_id: r.stage for r in plan.stages}
    rows = []
    for run in plan.runs:
        params = ", ".join(f"{k}={_param_text(v)}" for k, v in run.params.items()) or "-"
        cells = [
            "stage" if run.stage else run.index,
            run.label,
            run.run_id,
            run.model,
            params,
            ",".join(run.benchmarks) or "-",
        ]
        if plan.stages:
            cells.append(", ".join(f"{names[i]} [{i}]" for i in run.stage_ids) or "-")
        rows.append([*cells, plan.decisions[run.run_id]])
    head = [
        "#",
        "row",
        "run id",
        "model",
        "overrides",
        "benchmarks",
        *(["after"] if plan.stages else []),
        "action",
    ]
    return tabulate(rows, headers=head, tablefmt="simple", disable_numparse=True)


def stages_text(plan: Plan) -> str:
    """One line per stage: what it trains, what it gives to which rows ('' without stages)."""
    lines = []
    for stage in plan.stages:
        users = [r for r in plan.runs if stage.run_id in r.stage_ids]
        keys = sorted({k for r in users for k, n in r.needs.items() if n["run_id"] == stage.run_id})
        res = plan.resources_of(stage)
        lines.append(
            f"stage {stage.stage} [{stage.run_id}]: trains {stage.model} "
            f"({stage.config['trainer'].get('max_steps') or 'all'} steps max, {res.cpus_per_task} CPU(s), "
            f"{res.gpus_per_node} GPU(s)), {plan.decisions[stage.run_id]}; its checkpoint goes to "
            f"{', '.join(keys)} of {len(users)} run(s): {', '.join(repr(r.label) for r in users)}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- data
def ensure_synthetic(root: Path, source: DataSource, *, progress: bool = True) -> bool:
    """Generate the synthetic set ``source`` at ``root`` unless complete there; True when it was generated."""
    from henasy.synth.generate import MANIFEST, generate

    if (root / MANIFEST).is_file():
        _refuse_stale(root, source)
        return False
    root.parent.mkdir(parents=True, exist_ok=True)
    with manifest.file_lock(root.parent / f".{root.name}.lock"):
        if (root / MANIFEST).is_file():  # another sweep generated it while we waited
            _refuse_stale(root, source)
            return False
        if root.exists() and any(root.iterdir()):
            raise BenchError(
                f"{root} exists but is not a complete synthetic dataset (no {MANIFEST}); delete it, or pass --data DIR"
            )
        partial = root.parent / f".{root.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        print(
            f"generating the synthetic '{source.synth}' dataset (seed {source.seed}) into {root} (first use only)",
            flush=True,
        )
        generate(partial, seed=source.seed, size=source.synth, progress=progress)
        if root.exists():
            root.rmdir()
        os.replace(partial, root)
    return True


def _refuse_stale(root: Path, source: DataSource) -> None:
    """Stop when ``root`` holds a synthetic set another generator version (or size / seed) wrote: its numbers
    would not be those of this version's set, and silently mixing them is worse than regenerating."""
    from henasy.synth.generate import stale_dataset

    why = stale_dataset(root, source.synth, source.seed)
    if why is not None:
        raise BenchError(
            f"{root} holds a synthetic dataset that is not this version's '{source.synth}' set (seed {source.seed}): "
            f"{why}. Regenerate it with `bench data synth --size {source.synth} --seed {source.seed} --out {root} "
            "--force` (or delete the folder and rerun; the sweep regenerates it), or pass --data DIR"
        )


# ----------------------------------------------------------------------------------------------- submit
def job_context(
    plan: Plan,
    run: Run,
    commit: str,
    *,
    noop: bool = False,
    tags: dict[str, str] | None = None,
    stage_jobs: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What a ``SweepJob`` needs besides its run (``stage_jobs``: stage run id → its job, for stage waits)."""
    jobs = stage_jobs or {}
    context: dict[str, Any] = {
        "run_dir": str(plan.run_dir(run)),
        "tracking_uri": plan.tracking_uri,
        "experiment": plan.spec.name,
        "git_commit": commit,
        "cpus_per_task": plan.resources_of(run).cpus_per_task,
        "noop": noop,
        "job_tags": dict(tags or {}),
    }
    if run.stage_ids:
        context["stages"] = {
            i: {"run_dir": str(plan.sweep_dir / i), **jobs.get(i, {})} for i in run.stage_ids
        }
    if plan.executor == "local":
        context["slots"] = {"dir": str(plan.sweep_dir / ".slots"), "count": plan.max_parallel}
    return context


def check_data_root(plan: Plan) -> None:
    """Refuse to submit when the benchmarks of the runs to submit miss annotation files or videos
    (``bench data check``); a generated synthetic set is complete by construction and is not checked."""
    from henasy.data.preflight import NEEDS, TRAINING, check, text_line

    names = sorted({b for run in plan.to_submit for b in run.benchmarks if b in NEEDS})
    if any(run.train for run in plan.to_submit):
        names.append(TRAINING)  # the EgoClip files and videos the rows train on
    if not names:
        return
    not_ready = [text_line(result) for result in check(plan.data_root, names) if not result.ready]
    if not_ready:
        raise BenchError(
            f"the data root {plan.data_root} is not ready for this sweep; nothing was submitted:\n  "
            + "\n  ".join(not_ready)
            + f"\nFull lists: bench data check --data {plan.data_root} --benchmarks {','.join(names)}. "
            "To evaluate what is there, set eval.on_missing: skip in the spec (EgoMCQ, EK100, EGTEA), or "
            "submit anyway with --no-data-check"
        )


def prepare(plan: Plan, *, progress: bool = True) -> str:
    """Tracking store and data ready, manifest header written; returns the git commit."""
    if plan.tracking_uri:  # first: an unusable store is named before any data is generated or checked
        from sweeps.tracking import client, experiment_id

        experiment_id(
            client(plan.tracking_uri), plan.spec.name, plan.tracking_uri
        )  # client() opens the store
    if plan.synth is not None:
        ensure_synthetic(plan.data_root, plan.synth, progress=progress)
    elif plan.check_data:
        check_data_root(plan)
    commit = git_commit()
    header = {
        "sweep": plan.spec.name,
        "spec_path": str(plan.spec.path),
        "table": plan.spec.table,
        "scale": plan.scale,
        "data_root": str(plan.data_root),
        "executor": plan.executor,
        "tracking_uri": plan.tracking_uri,
        "experiment": plan.spec.name,
        "git_commit": commit,
        "metrics": list(plan.spec.metrics),
    }

    def add_all(data: dict[str, Any]) -> None:
        for run in plan.runs:
            manifest.record_run(data, run, str(plan.run_dir(run)))

    manifest.update_manifest(plan.sweep_dir, add_all, **header)
    return commit


def submit_runs(
    plan: Plan,
    runs: list[Run],
    contexts: list[dict[str, Any]],
    *,
    name: str,
    after: list[str] | None = None,
    resources: Resources | None = None,
    extra_timeout_min: int = 0,
) -> dict[str, Any]:
    """Submit one ``SweepJob`` per run; record the jobs in the manifest; returns run_id → submitit job.

    ``after``: SLURM job ids that must end successfully first (``--dependency=afterok:...``); ``resources``:
    instead of the plan's; ``extra_timeout_min``: added to a local job's time limit (time it waits for stages).
    """
    from sweeps.job import SweepJob

    if not runs:
        return {}
    for run in runs:
        run_dir = plan.run_dir(run)
        if plan.force and records.run_finished(run_dir, run.run_id, run.benchmarks):
            shutil.rmtree(run_dir)  # --force: redo from scratch
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / records.RUN_NAME, run.to_dict())
    waves = -(-len(runs) // plan.max_parallel)
    folder = plan.sweep_dir / "submitit" / "%j"
    local_python = None
    if plan.executor == "local":
        from sweeps import forkserver

        local_python = forkserver.local_python()  # pre-warmed interpreter for the jobs; None: plain submitit
    ex = executors.make_executor(
        plan.executor,
        folder,
        resources or plan.resources,
        max_parallel=plan.max_parallel,
        name=name,
        waves=waves,
        after=after,
        extra_timeout_min=extra_timeout_min,
        local_python=local_python,
    )
    jobs = [SweepJob(run.to_dict(), ctx) for run, ctx in zip(runs, contexts)]
    with _detached_children() if plan.executor == "local" else contextlib.nullcontext():
        handles = executors.submit(ex, plan.executor, jobs)

    def record(data: dict[str, Any]) -> None:
        for run, handle in zip(runs, handles):
            entry = manifest.record_run(data, run, str(plan.run_dir(run)))
            manifest.record_submission(entry, str(handle.job_id), plan.executor, str(folder))

    manifest.update_manifest(plan.sweep_dir, record)
    return {run.run_id: handle for run, handle in zip(runs, handles)}


@contextlib.contextmanager
def _detached_children() -> Iterator[None]:
    """Local job controllers started in this block ignore SIGHUP and get /dev/null as stdin/stdout/stderr.

    So ``--detach`` survives a closed terminal (nohup semantics) and ``bench sweep --detach | tee log`` returns
    at once instead of waiting for the jobs, which would otherwise hold the pipe open (their logs go to files).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    devnull = os.open(os.devnull, os.O_RDWR)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        yield
    finally:
        for fd, copy in zip((0, 1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)
        signal.signal(signal.SIGHUP, previous)


def launch(plan: Plan, *, progress: bool = True) -> dict[str, Any]:
    """Prepare, then submit every run of the plan that needs it; returns run_id → submitit job.

    Stages first (each its own job, after the stages it needs), then the rows grouped by the jobs they wait
    for (one submission, a SLURM job array, per group)."""
    commit = prepare(plan, progress=progress)
    name = f"bench-{plan.spec.name.replace('/', '-')}"
    if plan.replace_jobs:
        executors.cancel(plan.executor, list(plan.replace_jobs.values()))
    data = manifest.read_manifest(plan.sweep_dir)
    stage_jobs: dict[str, dict[str, Any]] = {}  # stage run id → its job (submitted now or still active)
    for stage in plan.stages:
        entry = data["runs"].get(stage.run_id, {})
        if plan.decisions[stage.run_id] == ACTIVE and entry.get("job_id"):
            stage_jobs[stage.run_id] = {"job_id": str(entry["job_id"]), "executor": entry.get("executor")}
    handles: dict[str, Any] = {}
    timeouts = {s.run_id: plan.resources_of(s).timeout_min for s in plan.stages}
    for run in plan.stages:  # dependencies first
        if plan.decisions[run.run_id] != SUBMIT:
            continue
        after = [stage_jobs[i]["job_id"] for i in run.stage_ids if i in stage_jobs]
        ctx = job_context(plan, run, commit, stage_jobs=stage_jobs)
        handle = submit_runs(
            plan,
            [run],
            [ctx],
            name=f"{name}-{run.stage}",
            after=after,
            resources=plan.resources_of(run),
            extra_timeout_min=sum(timeouts[i] for i in run.stage_ids),
        )[run.run_id]
        handles[run.run_id] = handle
        stage_jobs[run.run_id] = {"job_id": str(handle.job_id), "executor": plan.executor}
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run in rows_of(plan.to_submit):
        groups.setdefault(tuple(i for i in run.stage_ids if i in stage_jobs), []).append(run)
    for waits_for, runs in groups.items():
        contexts = [job_context(plan, run, commit, stage_jobs=stage_jobs) for run in runs]
        handles.update(
            submit_runs(
                plan,
                runs,
                contexts,
                name=name,
                after=[stage_jobs[i]["job_id"] for i in waits_for],
                extra_timeout_min=sum(timeouts[i] for i in waits_for),
            )
        )
    return handles


def run_debug_jobs(handles: dict[str, Any]) -> dict[str, BaseException]:
    """Run in-process (debug executor) jobs one after the other; returns the errors by run id.

    ``job.exception()`` runs the job without submitit's post-mortem debugger (which ``job.result()`` opens on
    an error); failures are reported through the status table and ``error.txt`` like any other executor's.
    """
    errors = {}
    for run_id, handle in handles.items():
        err = handle.exception()
        if err is not None:
            errors[run_id] = err
    return errors


def find_sweep_dirs(
    name_or_dir: str | None, *, scale: str | None = None, out: str | None = None
) -> list[Path]:
    """Sweep folders (holding a manifest) for a folder, a spec name/path, or every sweep under ./runs."""
    if out:
        return [Path(out).resolve()]
    if name_or_dir is None:
        return sorted(p.parent for p in Path("runs").resolve().rglob(manifest.MANIFEST_NAME))
    folder = Path(name_or_dir).expanduser()
    if (folder / manifest.MANIFEST_NAME).is_file():
        return [folder.resolve()]
    try:
        name = load_spec(name_or_dir).name
    except BenchError:
        name = name_or_dir.removesuffix(".yaml")
    scales = [scale] if scale else list(SCALES)
    found = [
        sweep_dir_for(name, s) for s in scales if (sweep_dir_for(name, s) / manifest.MANIFEST_NAME).is_file()
    ]
    if not found:
        where = ", ".join(str(sweep_dir_for(name, s)) for s in scales)
        raise BenchError(
            f"no sweep manifest for {name_or_dir!r} (looked in {where}); run `bench sweep {name_or_dir}` first"
        )
    return found
