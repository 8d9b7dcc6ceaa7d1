"""``evaluate``: run registered benchmarks on a model and return one result record per benchmark.

This is the function ``bench eval`` and every sweep job call. It validates everything it can before any
video is decoded (benchmark names, options, the model's capabilities, the data root), puts the model in
eval mode on the requested device, runs each protocol (``henasy.core.catalog.BENCHMARKS`` →
``benchmarks.<name>.BENCHMARK``) and wraps its ``BenchResult`` into a record (``benchmarks.record``).

``options`` maps a benchmark name to its protocol options, e.g. ``{"egtea": {"protocol": "helpinghands"},
"egonlq": {"epochs": 30}}``; the reserved key ``"cache_dir"`` sets where extracted features and prediction
files go (default ``benchmarks.context.default_cache_dir()``, a per-user cache: nothing is written under the
data root, which may be a read-only mount). ``load_model`` builds a registered model and loads a
checkpoint (a trainer ``last.pt`` or an official file) as ``bench eval --ckpt`` does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.context import ON_MISSING, Benchmark, EvalContext, resolve_options
from benchmarks.record import file_sha256, make_record
from henasy.core.errors import BenchError, VideoReadError

CACHE_DIR_KEY = "cache_dir"


def benchmark_spec(name: str) -> Benchmark:
    """The registered ``Benchmark`` called ``name`` (unknown names list the registered ones)."""
    from henasy.core.catalog import BENCHMARKS

    spec = BENCHMARKS.get(name)
    if not isinstance(spec, Benchmark):
        raise BenchError(f"benchmark {name!r} is registered as {type(spec).__name__}, not a Benchmark")
    return spec


def _split_options(names: Sequence[str], options: Mapping[str, Any] | None) -> tuple[dict[str, dict], Any]:
    options = dict(options or {})
    cache_dir = options.pop(CACHE_DIR_KEY, None)
    per_benchmark: dict[str, dict] = {}
    for key, value in options.items():
        if key not in names:
            raise BenchError(
                f"options for {key!r}, which is not among the evaluated benchmarks {list(names)} "
                f"(options are keyed by benchmark name, plus {CACHE_DIR_KEY!r})"
            )
        if not isinstance(value, Mapping):
            raise BenchError(f"options[{key!r}] must be a mapping of option names to values, got {value!r}")
        per_benchmark[key] = dict(value)
    return per_benchmark, cache_dir


def check_on_missing(on_missing: str, specs: Sequence[Benchmark]) -> None:
    """``on_missing`` is one of ``ON_MISSING``; ``"skip"`` only for benchmarks whose protocol supports it."""
    if on_missing not in ON_MISSING:
        raise BenchError(f"on_missing must be one of {list(ON_MISSING)}, got {on_missing!r}")
    if on_missing != "skip":
        return
    refused = [s.name for s in specs if not s.skip_aware]
    if refused:
        from henasy.core.catalog import BENCHMARKS

        aware = [n for n in BENCHMARKS.names() if getattr(BENCHMARKS.get(n), "skip_aware", False)]
        raise BenchError(
            f"--on-missing skip is not supported by {refused} (their protocols need every video: features "
            f"over whole videos or per-query grounding); it is supported by {aware}. Evaluate those "
            "benchmarks with the default --on-missing error, after `bench data check --data ROOT` reports "
            "them ready"
        )


def _with_hint(err: VideoReadError, spec: Benchmark, root: Path) -> str:
    """The error's own message plus how to find every missing video and how to evaluate the rest."""
    message = str(err)
    prefix = f"{err.path}: "
    message = message[len(prefix) :] if message.startswith(prefix) else message
    hint = (
        f"{message} (benchmark {spec.name}); run `bench data check --data {root}` to list every missing video"
    )
    if spec.skip_aware:
        hint += ", or evaluate the remaining items with `--on-missing skip` (the record is then partial)"
    return hint


def _device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as err:
        raise BenchError(f"device {device!r} is not usable here: {err}") from None
    return dev


def evaluate(
    model: Any,
    names: list[str],
    data_root: str | Path,
    *,
    model_id: str,
    checkpoint: str | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    num_workers: int = 2,
    device: str = "cpu",
    progress: bool = True,
    options: dict | None = None,
    on_missing: str = "error",
) -> list[dict]:
    """Run the benchmarks ``names`` on ``model`` (a ``VideoTextModel``) and return their result records.

    ``checkpoint`` is the path of the weights ``model`` already holds (recorded with its SHA-256 and part of
    the feature-cache key); ``evaluate`` does not load it (see ``load_model``). ``limit`` evaluates only the
    first N items of each benchmark and marks its record ``partial``. Batches stream through a DataLoader
    with ``num_workers`` processes; ``progress`` shows tqdm bars on stderr.

    ``on_missing``: ``"error"`` (default) stops at the first missing/unreadable video with a
    ``VideoReadError`` naming it and pointing to ``bench data check``; ``"skip"`` drops the items whose
    videos cannot be read (benchmarks with ``skip_aware`` only), and their records say how many and which
    videos, and are ``partial``.
    """
    if isinstance(names, str) or not names:
        raise BenchError(f"names must be a non-empty list of benchmark names, got {names!r}")
    if len(set(names)) != len(names):
        raise BenchError(f"benchmark names repeat: {list(names)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise BenchError(f"limit must be a positive integer or None, got {limit!r}")
    if batch_size < 1:
        raise BenchError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise BenchError(f"num_workers must be >= 0, got {num_workers}")
    root = Path(data_root)
    if not root.is_dir():
        raise BenchError(f"data root {root} is not a folder (write a synthetic one with `bench data synth`)")
    specs = [benchmark_spec(name) for name in names]
    check_on_missing(on_missing, specs)
    per_benchmark, cache_dir = _split_options(names, options)
    resolved = {s.name: resolve_options(s.name, s.options, per_benchmark.get(s.name)) for s in specs}
    for spec in specs:
        if spec.check_model is not None:
            spec.check_model(model, model_id)
    checkpoint_sha = None
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise BenchError(f"checkpoint {checkpoint} not found")
        checkpoint_sha = file_sha256(checkpoint)
    dev = _device(device)
    was_training = bool(getattr(model, "training", False))
    model.to(dev)
    model.eval()
    records = []
    try:
        for spec in specs:
            ctx = EvalContext(
                model=model,
                model_id=model_id,
                data_root=root,
                limit=limit,
                batch_size=batch_size,
                num_workers=num_workers,
                device=dev,
                progress=progress,
                options=resolved[spec.name],
                checkpoint_sha256=checkpoint_sha,
                cache_dir=Path(cache_dir) if cache_dir is not None else None,
                on_missing=on_missing,
            )
            start = time.perf_counter()
            try:
                result = spec.run(ctx)
            except VideoReadError as err:
                raise VideoReadError(err.path, _with_hint(err, spec, root)) from None
            records.append(
                make_record(
                    spec.name,
                    result,
                    model_id=model_id,
                    checkpoint=str(checkpoint) if checkpoint is not None else None,
                    checkpoint_sha256=checkpoint_sha,
                    wall_time_s=time.perf_counter() - start,
                    data_root=root,
                    device=str(dev),
                )
            )
    finally:
        model.train(was_training)
    return records


def load_model(name: str, checkpoint: str | None = None, model_args: dict[str, Any] | None = None) -> Any:
    """Build the registered model ``name`` (seeded, ``model_args`` as factory arguments) and load ``checkpoint``.

    Built by ``henasy.core.factory.create_model`` (through the trainer's seeded ``build_model``), which loads
    the checkpoint with the model's own ``load_checkpoint`` when it has one (official LaViLa / HelpingHands /
    HENASY files and trainer ``last.pt`` files), else through ``henasy.core.checkpoints``.
    """
    from henasy.training.config import RunConfig
    from henasy.training.run import build_model

    return build_model(RunConfig(model=name, model_args=dict(model_args or {})), checkpoint=checkpoint)
