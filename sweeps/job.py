"""The sweep job: train → evaluate → record → MLflow, for one run, as a checkpointable submitit callable.

``SweepJob(run, context)()`` is what every executor runs (in-process, as a local process or a SLURM task):

1. a run whose directory already holds a complete ``result.json`` returns it (reruns are free);
2. with several tasks (``nodes``/``tasks_per_node``), ``TorchDistributedEnvironment().export()`` sets
   ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``, which the trainer reads to start
   DistributedDataParallel; only rank 0 tracks, evaluates and writes records;
3. ``henasy.training.run.train_run`` trains into the run directory, resuming from its ``last.pt`` (exact
   resume, so a killed or requeued run ends with the same weights as an uninterrupted one);
4. each benchmark of ``run.benchmarks`` is evaluated with ``benchmarks.runner.evaluate`` on the trained
   weights and saved to ``eval/<name>.json`` as it finishes (a restart skips the finished ones);
5. ``result.json`` is written atomically, then metrics, artifacts and status go to MLflow.

A run that needs stages (``Run.needs``) first waits, before it takes a local slot, until each stage's folder
holds a complete result, then puts the stage's output (its ``last.pt``) at the referencing ``model.*`` key
(``sweeps.expand.resolve_needs``) and tags its MLflow run with the stage (``bench.stage.<name>`` = the stage's
run id; ``mlflow.parentRunId`` = the stage's MLflow run, so the UI nests rows under the stage they used). When
a stage's job ended without a result the run ends at once as *blocked* (``state.json``), not failed, and
writes no result; a rerun of the sweep submits the stage again and the run after it. On SLURM the row's job
only starts after its stages succeeded (``afterok``), so it finds their results at once.

Preemption and time-out: ``submitit.helpers.Checkpointable`` — on USR2 submitit calls ``checkpoint``, which
returns a fresh job with the same arguments, and requeues it; the new attempt resumes from the trainer's
last atomic checkpoint (``trainer.checkpoint_every``) and continues the same MLflow run. Design follows the
EgoVerse recipe and submitit's docs; no code copied.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import submitit

from henasy.core.atomic import atomic_write_json
from henasy.core.errors import BenchError
from henasy.core.plugins import ENV_VAR as INCLUDE_ENV_VAR
from henasy.core.plugins import include_items, load_includes
from henasy.core.records import TAG_FAILURE, TAG_JOB_ID, BenchmarkResult, RunResult, run_tags
from henasy.core.runlock import Holder, run_lock
from henasy.training.callbacks import Callback
from sweeps import executors, monitor, records
from sweeps.expand import Run

STATE_EVERY_S = 1.0  # at most one state.json write per second while training
STAGE_POLL_S = 0.5  # how often a run waiting for a stage looks at the stage's folder and job
BLOCKED = "blocked"  # state.json phase of a run whose stage ended without a result
TAG_STAGE = "bench.stage"  # a stage's MLflow run: its name; a row's: bench.stage.<name> = the stage's run id
TAG_PARENT = "mlflow.parentRunId"  # MLflow's own parent tag: the UI nests a row under its stage


class SweepJob(submitit.helpers.Checkpointable):
    """One run of a sweep as a submitit job.

    ``run`` is ``Run.to_dict()``; ``context`` holds ``run_dir``, ``tracking_uri`` (None: no MLflow),
    ``experiment``, ``git_commit``, ``cpus_per_task``, ``slots`` (local executor: ``{"dir", "count"}``, a
    file-lock semaphore bounding concurrent jobs), ``job_tags`` (extra MLflow tags) and ``noop`` (bookkeeping
    only: no training, no evaluation; for harness overhead measurements).
    """

    def __init__(self, run: dict[str, Any], context: dict[str, Any]) -> None:
        self.run = run
        self.context = context
        self._requeue_requested = False

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on preemption/time-out: requeue a fresh job; it resumes from ``last.pt``."""
        self._requeue_requested = True
        return submitit.helpers.DelayedSubmission(SweepJob(self.run, self.context))

    def __call__(self) -> dict[str, Any]:
        self._requeue_requested = False
        # models / benchmarks that `bench --include` registered in the submitting process (it exported them)
        load_includes(include_items(), source=INCLUDE_ENV_VAR)
        run = Run.from_dict(self.run)
        run_dir = Path(self.context["run_dir"])
        run_dir.mkdir(parents=True, exist_ok=True)
        rank = _distributed_rank()
        if not self.context.get("noop"):
            _limit_threads(int(self.context.get("cpus_per_task") or 0))
        with _run_lock(run_dir) if rank == 0 else contextlib.nullcontext():
            if rank == 0:
                done = records.read_result(run_dir)
                if records.is_complete(done, run.run_id, run.benchmarks):
                    return done  # type: ignore[return-value]
            if run.needs:
                try:
                    resolved = self._wait_for_stages(run, run_dir)
                except BaseException as err:
                    self._on_failure(err, run_dir, None)
                    raise
                if resolved is None:
                    return {"run_id": run.run_id, "phase": BLOCKED}
                run = resolved
            return self._run(run, run_dir, rank)

    def _wait_for_stages(self, run: Run, run_dir: Path) -> Run | None:
        """``run`` with its stages' outputs filled in once every stage has a complete result; None (and state
        ``blocked``) when a stage's job ended without one."""
        from henasy.training.trainer import CHECKPOINT_NAME
        from sweeps.expand import resolve_needs

        stages = self.context.get("stages") or {}
        names = {need["run_id"]: need["stage"] for need in run.needs.values()}
        outputs: dict[str, Path] = {}
        tags: dict[str, str] = {}
        for run_id in run.stage_ids:
            info = stages.get(run_id) or {"run_dir": str(run_dir.parent / run_id)}
            stage_dir, name = Path(info["run_dir"]), names[run_id]
            announced = False
            while True:
                result = records.read_result(stage_dir)
                if records.is_complete(result, run_id, ()):
                    break
                if _job_state(info) == executors.ENDED:
                    result = records.read_result(stage_dir)  # it may have finished just before it ended
                    if records.is_complete(result, run_id, ()):
                        break
                    detail = f"stage {name} [{run_id}] ended without a result"
                    records.write_state(run_dir, BLOCKED, job_id=_job_id(), detail=detail, stage=run_id)
                    return None
                if not announced:
                    detail = f"waiting for stage {name} [{run_id}]"
                    records.write_state(run_dir, "waiting", job_id=_job_id(), detail=detail, stage=run_id)
                    announced = True
                time.sleep(STAGE_POLL_S)
            outputs[run_id] = stage_dir / CHECKPOINT_NAME
            if not outputs[run_id].is_file():
                raise BenchError(
                    f"stage {name} [{run_id}] finished but has no {CHECKPOINT_NAME} in {stage_dir}; rerun the "
                    "sweep with --force to redo it"
                )
            tags[f"{TAG_STAGE}.{name}"] = run_id
            if _nonempty(result.get("mlflow_run_id")):  # type: ignore[union-attr]
                tags[TAG_PARENT] = str(result["mlflow_run_id"])  # type: ignore[index]
        self.context = {**self.context, "job_tags": {**(self.context.get("job_tags") or {}), **tags}}
        return resolve_needs(run, outputs)

    def _run(self, run: Run, run_dir: Path, rank: int) -> dict[str, Any]:
        with _slot(self.context.get("slots"), run_dir) if rank == 0 else contextlib.nullcontext():
            tracker = self._open_tracker(run) if rank == 0 else None
            started = time.time()
            try:
                if rank == 0:
                    records.write_state(run_dir, "starting", job_id=_job_id(), host=socket.gethostname())
                summary, weights = self._train(run, run_dir, tracker)
                if rank != 0:
                    return {"rank": rank, "run_id": run.run_id}
                evaluated = self._evaluate(run, run_dir, weights)
                record = self._record(run, summary, evaluated, time.time() - started, tracker)
                records.write_result(run_dir, record)
                if tracker is not None:
                    from sweeps.tracking import publish_result

                    publish_result(tracker, run_dir, record)
                records.write_state(run_dir, "finished", job_id=_job_id())
                return record
            except BaseException as err:
                if rank == 0:
                    self._on_failure(err, run_dir, tracker)
                raise

    # ------------------------------------------------------------------------------------------- stages
    def _open_tracker(self, run: Run) -> Any:
        uri = self.context.get("tracking_uri")
        if not uri:
            return None
        from sweeps.tracking import RunTracker, flatten_params

        tracker = RunTracker(
            uri,
            self.context["run_dir"],
            experiment=self.context.get("experiment") or run.sweep,
            run_name=run.label,
        )
        tags = {
            **run_tags(
                sweep=run.sweep,
                table=run.table,
                row=run.label,
                run_id=run.run_id,
                scale=run.scale,
                model=run.model,
                git_commit=self.context.get("git_commit"),
            ),
            **{k: str(v) for k, v in (self.context.get("job_tags") or {}).items()},
            **({TAG_STAGE: run.stage} if run.stage else {}),
        }
        tracker.open(params=flatten_params(run.resolved()), tags=tags)
        tracker.set_tags({TAG_JOB_ID: _job_id()})
        return tracker

    def _train(self, run: Run, run_dir: Path, tracker: Any) -> tuple[dict[str, Any] | None, Path | None]:
        """Train (resuming) when the run trains; returns (summary, weights file to evaluate)."""
        if self.context.get("noop"):
            return None, None
        if not run.train:
            return None, Path(run.checkpoint) if run.checkpoint else None
        from henasy.training.config import RunConfig
        from henasy.training.run import train_run
        from henasy.training.trainer import CHECKPOINT_NAME

        config = RunConfig.from_dict(run.config)
        guard = _PreemptionGuard(config.trainer)
        callbacks: list[Callback] = [_StateReporter(run_dir), guard]
        if tracker is not None:
            callbacks.append(tracker.callback())
        with guard.installed():
            summary = train_run(config, run_dir, resume=True, callbacks=callbacks)
        if guard.requested:
            guard.requeue_now()  # submitit: checkpoint() + requeue + exit (SystemExit)
        if not summary.get("finished"):
            raise BenchError(
                f"training of run {run.run_id} stopped at step {summary.get('step')} of {summary.get('total_steps')} "
                "(trainer.stop_after_steps); rerun the sweep to continue from the checkpoint"
            )
        return summary, run_dir / CHECKPOINT_NAME

    def _evaluate(self, run: Run, run_dir: Path, weights: Path | None) -> list[dict[str, Any]]:
        """Every benchmark's records, evaluating only those without a saved ``eval/<name>.json``."""
        if self.context.get("noop") or not run.benchmarks:
            return []
        saved = {name: records.read_json(records.eval_record_path(run_dir, name)) for name in run.benchmarks}
        todo = [name for name, recs in saved.items() if not isinstance(recs, list) or not recs]
        if todo:
            evaluate, load_model = _runner()
            checkpoint = str(weights) if weights is not None else None
            model = load_model(run.model, checkpoint, run.config.get("model_args"))
            device = run.eval.get("device") or _default_device()
            kwargs = {
                k: run.eval[k]
                for k in ("limit", "batch_size", "num_workers", "on_missing")
                if run.eval.get(k) is not None
            }
            for name in todo:
                records.write_state(run_dir, "evaluating", benchmark=name, job_id=_job_id())
                recs = evaluate(
                    model,
                    [name],
                    run.config["data"]["root"],
                    model_id=run.model,
                    checkpoint=checkpoint,
                    device=device,
                    progress=False,
                    options=_options_for(run, name),
                    **kwargs,
                )
                atomic_write_json(records.eval_record_path(run_dir, name), recs)
                saved[name] = recs
        return [rec for name in run.benchmarks for rec in saved[name]]

    def _record(
        self,
        run: Run,
        summary: dict[str, Any] | None,
        evaluated: list[dict[str, Any]],
        wall_s: float,
        tracker: Any,
    ) -> dict[str, Any]:
        return RunResult.create(
            train_summary=summary,
            records=[
                BenchmarkResult.from_dict(r, f"run {run.run_id}: record {i}") for i, r in enumerate(evaluated)
            ],
            run_id=run.run_id,
            sweep=run.sweep,
            table=run.table,
            label=run.label,
            scale=run.scale,
            noop=bool(self.context.get("noop")),
            config=run.resolved(),
            params=run.params,
            git_commit=self.context.get("git_commit"),
            job_id=_job_id(),
            host=socket.gethostname(),
            wall_time_s=wall_s,
            finished_at=time.time(),
            mlflow_run_id=getattr(tracker, "run_id", None),
        ).to_dict()

    def _on_failure(self, err: BaseException, run_dir: Path, tracker: Any) -> None:
        if isinstance(err, SystemExit) and self._requeue_requested:  # submitit requeued us after USR2
            records.write_state(run_dir, "requeued", job_id=_job_id())
            if tracker is not None:
                tracker.set_status("SCHEDULED")
            return
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        records.write_error(run_dir, f"job {_job_id()} on {socket.gethostname()} at {time.ctime()}\n{text}")
        last = (str(err) or type(err).__name__).strip().splitlines()
        records.write_state(run_dir, "failed", job_id=_job_id(), error=last[-1][:500] if last else "")
        if tracker is not None:
            tracker.set_tags({TAG_FAILURE: (last[-1] if last else type(err).__name__)[:500]})
            tracker.finish("FAILED")


class _PreemptionGuard(Callback):
    """Defers submitit's preemption / time-out signal (USR2) during training to the end of a step.

    submitit's handler checkpoints and requeues from inside the signal handler, raising ``SystemExit``
    wherever the main thread is; inside ``torch.save`` that exit turns into a torch ``RuntimeError`` and the
    job fails instead of requeueing. While training, this guard only notes the signal; at the next
    ``on_step`` it sets ``trainer.stop_after_steps`` to the current step, so the trainer writes ``last.pt``
    (a checkpoint at the signal, not at the last ``checkpoint_every``) and returns; then ``requeue_now``
    runs submitit's handler. DDP jobs (every rank must stop at the same step) call the handler at the step
    end instead, resuming from the last periodic checkpoint. Outside training the handler runs at once.
    """

    def __init__(self, trainer_config: Any) -> None:
        self.trainer_config = trainer_config
        self.requested = False
        self.training = False
        self.world_size = 1
        self.signum: int | None = None
        self.original: Any = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        name = "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
        signum = getattr(signal, name, None)
        original = signal.getsignal(signum) if signum is not None else None
        if not callable(original):  # not under a submitit handler (debug executor, plain call)
            yield
            return
        self.signum, self.original = signum, original
        signal.signal(signum, self._on_signal)
        try:
            yield
        finally:
            signal.signal(signum, original)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.training:
            self.requested = True
        else:
            self.original(signum, frame)

    def on_train_start(self, info: dict[str, Any]) -> None:
        self.training = True
        self.world_size = int(info.get("world_size", 1))

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        if not self.requested:
            return
        if self.world_size == 1:
            self.trainer_config.stop_after_steps = step  # the trainer saves last.pt now and returns
        else:
            self.requeue_now()

    def on_train_end(self, summary: dict[str, Any]) -> None:
        self.training = False

    def requeue_now(self) -> None:
        self.training = False
        if self.original is not None and self.signum is not None:
            self.original(self.signum, None)


class _StateReporter(Callback):
    """Keeps ``state.json`` current during training (phase, step, total) for ``bench status``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.total = 0
        self.last = 0.0

    def on_train_start(self, info: dict[str, Any]) -> None:
        self.total = int(info.get("total_steps", 0))
        self._write(int(info.get("start_step", 0)), force=True, resumed=bool(info.get("resumed")))

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self._write(step, loss=metrics.get("loss"))

    def _write(self, step: int, *, force: bool = False, **extra: Any) -> None:
        now = time.monotonic()
        if force or now - self.last >= STATE_EVERY_S or step >= self.total:
            self.last = now
            records.write_state(
                self.run_dir, "training", step=step, total_steps=self.total, job_id=_job_id(), **extra
            )


# ---------------------------------------------------------------------------------------------- helpers
def _nonempty(value: Any) -> bool:
    """True for a non-empty string."""
    return isinstance(value, str) and bool(value)


def _job_state(info: dict[str, Any]) -> str:
    """The state of a stage's job (``{"job_id", "executor"}``): ``ended`` when there is none to wait for."""
    # sweeps.monitor.job_states maps a manifest entry to a state; no job_id (finished before this submission)
    # gives no entry there: ended, as an in-process (debug) job, which ran first
    return monitor.job_states({"runs": {"stage": info}}).get("stage", (executors.ENDED, ""))[0]


def _job_id() -> str:
    try:
        return submitit.JobEnvironment().job_id
    except RuntimeError:  # not inside a submitit job
        return f"pid{os.getpid()}"


def _distributed_rank() -> int:
    """Export the torch.distributed variables for multi-task jobs; return this task's global rank."""
    try:
        env = submitit.JobEnvironment()
    except RuntimeError:
        return int(os.environ.get("RANK", "0"))
    if env.num_tasks > 1:
        # Keep every GPU visible: the trainer picks cuda:LOCAL_RANK itself.
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return env.global_rank


def _limit_threads(cpus: int) -> None:
    """One intra-op thread per CPU the job asked for (torch otherwise oversubscribes shared nodes)."""
    if cpus > 0:
        import torch

        os.environ.setdefault("OMP_NUM_THREADS", str(cpus))
        torch.set_num_threads(cpus)


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock (``henasy.core.runlock``, the one ``bench train --out`` takes) for the block.

    A second job of the same run (a rerun racing a live job, a stale requeue) waits here, then finds the
    first one's result and returns it; a ``bench train --out`` into the folder is refused naming this job.
    The kernel drops the lock when its holder dies.
    """

    def waiting(holder: Holder | None) -> None:
        who = f" (PID {holder.pid} on {holder.host})" if holder else ""
        records.write_state(run_dir, "waiting", job_id=_job_id(), detail=f"another job runs this run{who}")

    with run_lock(
        run_dir, wait=True, on_wait=waiting, command=f"sweep job {_job_id()} of run {run_dir.name}"
    ):
        yield


@contextlib.contextmanager
def _slot(slots: dict[str, Any] | None, run_dir: Path) -> Iterator[None]:
    """Hold one of ``slots["count"]`` lock files for the block (the local executor's --max-parallel).

    The kernel drops a ``flock`` when its process dies, so a killed job never leaks its slot.
    """
    if not slots:
        yield
        return
    folder = Path(slots["dir"])
    folder.mkdir(parents=True, exist_ok=True)
    records.write_state(run_dir, "waiting", job_id=_job_id())
    while True:
        for i in range(int(slots["count"])):
            handle = open(folder / f"slot-{i}.lock", "a+")  # noqa: SIM115 - held for the whole block
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                handle.close()
            return
        time.sleep(0.25)


def _runner() -> tuple[Any, Any]:
    """``benchmarks.runner.evaluate`` and ``load_model`` (the benchmark capability's contract)."""
    try:
        from benchmarks.runner import evaluate, load_model
    except ImportError as err:
        raise BenchError(
            f"the benchmark runner (benchmarks.runner) is not available ({err}); the run trained but cannot be "
            "evaluated"
        ) from None
    return evaluate, load_model


def _options_for(run: Run, name: str) -> dict[str, Any] | None:
    """The spec's ``eval.options`` of benchmark ``name`` (``benchmarks.runner.evaluate`` options), or None."""
    given = (run.eval.get("options") or {}).get(name)
    return {name: dict(given)} if given else None


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
