"""Optuna search for specs with a ``search:`` section: trials as sweep jobs, study in the MLflow database.

The study is stored in the same database as MLflow: Optuna's RDB storage cannot share a SQLite file with
MLflow (both keep their schema revision in the one ``alembic_version`` table, and Optuna then refuses the
file), so the study is an Optuna ``JournalStorage`` whose log is the table ``optuna_journal`` of that file
(``SqliteJournalBackend``). For a non-SQLite tracking store the journal is ``<sweep_dir>/optuna.journal``.

``run_search`` is the driver: it asks the study for trials while fewer than ``--max-parallel`` are running,
submits each as a ``SweepJob`` (an MLflow run tagged with the trial number), and tells the study each
objective value (``search.objective``, e.g. ``egomcq.intra``) when its result record appears. Resumable:
rerunning the command reloads the study; trials left RUNNING by a driver that died are adopted (their job
is followed if alive, resubmitted otherwise — it resumes from its checkpoint). The best trial is reported.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend

from henasy.core.errors import BenchError
from henasy.core.records import TAG_OPTUNA_STUDY, TAG_OPTUNA_TRIAL
from sweeps import launch, manifest, monitor, records
from sweeps.expand import trial_run
from sweeps.spec import Search, SweepSpec

POLL_S = 2.0
JOURNAL_TABLE = "optuna_journal"


class SqliteJournalBackend(BaseJournalBackend):
    """Optuna journal log in a table of a SQLite file (process-safe: one IMMEDIATE transaction per append)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        with self._connect() as con:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {JOURNAL_TABLE} (log_number INTEGER PRIMARY KEY, log TEXT NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60.0)

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        import json

        with self._connect() as con:
            rows = con.execute(
                f"SELECT log FROM {JOURNAL_TABLE} WHERE log_number >= ? ORDER BY log_number",
                (log_number_from,),
            ).fetchall()
        return [json.loads(text) for (text,) in rows]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        import json

        from sweeps.tracking import retry

        def append() -> None:
            con = self._connect()
            try:
                con.execute("BEGIN IMMEDIATE")
                (next_number,) = con.execute(
                    f"SELECT COALESCE(MAX(log_number) + 1, 0) FROM {JOURNAL_TABLE}"
                ).fetchone()
                con.executemany(
                    f"INSERT INTO {JOURNAL_TABLE} (log_number, log) VALUES (?, ?)",
                    [(next_number + i, json.dumps(log)) for i, log in enumerate(logs)],
                )
                con.commit()
            finally:
                con.close()

        retry(append, what="append to the Optuna journal")


def study_storage(tracking_uri: str | None, sweep_dir: Path) -> Any:
    """The Optuna storage: a journal table in the MLflow SQLite file, else a journal file in the sweep folder."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from sweeps.tracking import sqlite_path

    db = sqlite_path(tracking_uri) if tracking_uri else None
    if db is not None:
        return JournalStorage(SqliteJournalBackend(db))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(sweep_dir / "optuna.journal")))


def make_sampler(search: Search, offset: int = 0) -> Any:
    """The spec's sampler, seeded with ``seed + offset`` (offset = trials already in the study, so a resumed
    study does not replay the samples of its first session)."""
    import optuna

    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=search.seed + offset)
    return optuna.samplers.TPESampler(seed=search.seed + offset)


def suggest(trial: Any, search: Search) -> dict[str, Any]:
    """Sample every parameter of the search space for ``trial``."""
    params: dict[str, Any] = {}
    for p in search.space:
        if p.type == "categorical":
            params[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        elif p.type == "int":
            params[p.key] = trial.suggest_int(
                p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log
            )  # type: ignore[arg-type]
        else:
            params[p.key] = trial.suggest_float(p.key, float(p.low), float(p.high), step=p.step, log=p.log)  # type: ignore[arg-type]
    return params


def study_name(spec: SweepSpec, scale: str) -> str:
    return f"{spec.name}/{scale}"


def run_search(
    spec: SweepSpec, opts: launch.SweepOptions, *, trials: int | None, dry_run: bool, detach: bool
) -> int:
    """Drive (or continue) the Optuna study of ``spec``; print the best trial. Exit 1 if no trial finished."""
    import optuna

    assert spec.search is not None
    search = spec.search
    plan = launch.plan_sweep(opts, spec)
    total = trials or search.n_trials
    if opts.executor == "slurm" and not opts.max_parallel:
        plan.max_parallel = total  # the cluster schedules them
    name = study_name(spec, plan.scale)
    space = ", ".join(f"{p.key} ∈ {list(p.choices) if p.choices else [p.low, p.high]}" for p in search.space)
    print(
        f"search {spec.name}, scale {plan.scale}: {search.direction} {search.objective} over {space}; {total} trials, "
        f"{plan.max_parallel} at once ({plan.executor}); study {name!r}"
    )
    if dry_run:
        base = plan.runs[0]
        print(f"base run {base.model} on {plan.data_root}; trial runs go to {plan.sweep_dir}/<run id>/")
        return 0
    if detach:
        return _detach(plan)
    commit = launch.prepare(plan)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name,
        storage=study_storage(plan.tracking_uri, plan.sweep_dir),
        direction=search.direction,
        sampler=make_sampler(search),
        load_if_exists=True,
    )
    study.sampler = make_sampler(search, offset=len(study.trials))
    active: dict[int, tuple[Any, str]] = {}  # trial number → (FrozenTrial/Trial, run id)
    handles: dict[str, Any] = {}
    _adopt(study, plan, commit, active, handles, opts.overrides)
    try:
        while True:
            done = [t for t in study.trials if t.state.is_finished()]
            while len(done) + len(active) < total and len(active) < plan.max_parallel:
                trial = study.ask()
                run = trial_run(
                    spec,
                    trial.number,
                    suggest(trial, search),
                    scale=plan.scale,
                    data_root=str(plan.data_root),
                    overrides=opts.overrides,
                )
                trial.set_user_attr("run_id", run.run_id)
                active[trial.number] = (trial, run.run_id)
                _submit(plan, run, commit, trial.number, name, handles)
            _collect(study, plan, search, active, handles)
            if not active and sum(t.state.is_finished() for t in study.trials) >= total:
                break
            if active:
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        print("\nstopped; rerun the same command to continue the study (running trials are adopted)")
        return 130
    return _report(study, search, plan)


def _submit(
    plan: launch.Plan, run: Any, commit: str, number: int, name: str, handles: dict[str, Any]
) -> None:
    tags = {TAG_OPTUNA_STUDY: name, TAG_OPTUNA_TRIAL: str(number)}
    context = launch.job_context(plan, run, commit, tags=tags)
    plan.decisions[run.run_id] = launch.SUBMIT
    new = launch.submit_runs(plan, [run], [context], name=f"bench-{name.replace('/', '-')}-t{number}")
    handles.update(new)
    print(f"[{time.strftime('%H:%M:%S')}] trial {number} [{run.run_id}] submitted: {run.params}", flush=True)
    if plan.executor == "debug":
        launch.run_debug_jobs(new)


def _adopt(
    study: Any,
    plan: launch.Plan,
    commit: str,
    active: dict[int, tuple[Any, str]],
    handles: dict[str, Any],
    overrides: dict[str, Any],
) -> None:
    """Trials left RUNNING by an earlier driver: follow their live job, or resubmit the run (it resumes)."""
    import optuna

    try:
        data = manifest.read_manifest(plan.sweep_dir)
    except BenchError:
        data = {"runs": {}}
    jobs = monitor.job_states(data)
    spec = plan.spec
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        run_id = frozen.user_attrs.get("run_id")
        run = trial_run(
            spec,
            frozen.number,
            dict(frozen.params),
            scale=plan.scale,
            data_root=str(plan.data_root),
            overrides=overrides,
        )
        if run_id != run.run_id:  # sampled under other overrides: cannot be resumed as is
            study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)
            continue
        active[frozen.number] = (frozen, run_id)
        live = jobs.get(run_id, ("",))[0] in ("pending", "running")
        finished = records.run_finished(plan.run_dir(run), run.run_id, run.benchmarks)
        if not live and not finished:
            _submit(plan, run, commit, frozen.number, study.study_name, handles)


def _collect(
    study: Any, plan: launch.Plan, search: Search, active: dict[int, tuple[Any, str]], handles: dict[str, Any]
) -> None:
    """Tell the study about trials whose job finished or failed."""
    import optuna

    data = manifest.read_manifest(plan.sweep_dir)
    rows = {row.run_id: row for row in monitor.statuses(data, handles, [r for _, r in active.values()])}
    monitor.reconcile(data, list(rows.values()))
    monitor.record_statuses(plan.sweep_dir, data, list(rows.values()))
    for number, (_, run_id) in list(active.items()):
        row = rows.get(run_id)
        if row is None or row.state not in (monitor.FINISHED, monitor.FAILED):
            continue
        stamp = time.strftime("%H:%M:%S")
        value = row.metrics.get(search.objective)
        if row.state == monitor.FINISHED and value is not None:
            study.tell(number, value)
            print(
                f"[{stamp}] trial {number} [{run_id}] finished: {search.objective} = {value:.4f}", flush=True
            )
        else:
            why = (
                row.detail if row.state == monitor.FAILED else f"no metric {search.objective!r} in its result"
            )
            study.tell(number, state=optuna.trial.TrialState.FAIL)
            print(f"[{stamp}] trial {number} [{run_id}] failed: {why}\n{row.error}", flush=True)
        del active[number]


def _report(study: Any, search: Search, plan: launch.Plan) -> int:
    import optuna

    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    failed = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    print(f"study {study.study_name}: {len(complete)} complete, {len(failed)} failed trial(s)")
    if not complete:
        return 1
    best = study.best_trial
    run_id = best.user_attrs.get("run_id", "?")
    info = records.read_json(plan.sweep_dir / str(run_id) / "mlflow.json") or {}
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
    print(
        f"best trial {best.number}: {search.objective} = {best.value:.4f} with {params} "
        f"(run {run_id}, MLflow run {info.get('run_id', '-')}, folder {plan.sweep_dir / str(run_id)})"
    )
    return 0


def _detach(plan: launch.Plan) -> int:
    """Continue the driver in the background (its own session, output to ``<sweep_dir>/driver.log``)."""
    argv = [a for a in sys.argv[1:] if a != "--detach"]
    plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    log_path = plan.sweep_dir / "driver.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "henasy.cli", *argv],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    manifest.update_manifest(
        plan.sweep_dir, lambda d: d.update(driver={"pid": process.pid, "log": str(log_path)})
    )
    print(
        f"search driver running in the background (pid {process.pid}, log {log_path}); follow with `bench status {plan.spec.name}`"
    )
    return 0
