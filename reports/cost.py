"""Table 5 measurements: parameters, FLOPs, inference latency and peak memory of a registered model.

What is measured, for a model at its registered preset and input (1 × 3 × T × H × W, 4 × 224 × 224 for the
paper presets), as follows:

- parameters, total and trainable (M), counted on the ``meta`` device (``henasy.core.factory``);
- GFLOPs of one clip through ``encode_video`` (and of one caption through ``encode_text``) with
  ``torch.utils.flop_counter.FlopCounterMode`` on the ``meta`` device: real FLOPs (a multiply-add = 2,
  unlike fvcore's MAC "flops"), scaled-dot-product attention included. Never counted on CPU tensors, where
  fused attention dispatches to a kernel the counter misses (pytorch #195460);
- inference latency of ``encode_video`` on one clip: warm-up runs, then the median and spread of N timed
  runs under ``torch.inference_mode`` with ``torch.cuda.synchronize`` around each on GPU (timm benchmark.py);
- peak inference memory (model weights + one clip through ``encode_video``) and peak training-step memory
  (one ``training_losses`` + backward + AdamW step on a synthetic batch with every loss term's inputs):
  the CUDA caching allocator's ``max_memory_allocated`` on GPU; on CPU the process's peak resident set
  (``VmHWM``, reset through ``/proc/self/clear_refs`` before each phase), which includes the Python/torch
  runtime itself (reported as ``baseline_rss_gb``);
- whether inference is autoregressive: the model class's ``autoregressive`` attribute (None when the model
  does not declare it) beside the paper's claim (Table 5).

Weights are randomly initialised: none of these quantities depends on their values.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from henasy.core.errors import BenchError

GB = 1024**3
DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_RUNS = {"cpu": 3, "cuda": 20}
DEFAULT_WARMUP = {"cpu": 1, "cuda": 5}
FLOP_COUNTER = "torch.utils.flop_counter.FlopCounterMode on the meta device (FLOPs, multiply-add = 2)"
CAPTION = "#C C cuts a tomato on the board with a knife"
PAPER_DEVICE = "A6000"  # §5.1: HENASY was trained on two A6000 GPUs; Table 5 does not state its timing device
NOUNS = ["knife", "tomato", "board", "bowl", "spoon", "cup", "pan", "hand"]  # a small vocabulary for NEC


# --------------------------------------------------------------------------------------------- meta-only
def meta_costs(name: str) -> dict[str, Any]:
    """Parameter counts, GFLOPs per clip / caption and the ``autoregressive`` attribute, on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from henasy.core.factory import build_on_meta, parameter_counts

    model = build_on_meta(name)
    counts = parameter_counts(model)
    model.eval()
    model.requires_grad_(False)  # the counter's module tracker hooks grad-requiring inputs; not wanted here
    t, size = int(model.num_frames), int(model.image_size)
    video = torch.empty(1, 3, t, size, size, device="meta")  # (B, C, T, H, W)
    tokens = model.tokenize([CAPTION]).to("meta")  # (1, L)
    with FlopCounterMode(display=False) as counter:
        model.encode_video(video)
    video_flops = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        model.encode_text(tokens)
    text_flops = counter.get_total_flops()
    return {
        "model": name,
        "class": type(model).__name__,
        "input": [1, 3, t, size, size],
        "params_total_m": counts["params_total"] / 1e6,
        "params_trainable_m": counts["params_trainable"] / 1e6,
        "gflops": video_flops / 1e9,
        "gflops_text": text_flops / 1e9,
        "flops_video": int(video_flops),
        "flops_text": int(text_flops),
        "autoregressive": declared_autoregressive(model),
        "flop_counter": FLOP_COUNTER,
    }


def declared_autoregressive(model: Any) -> bool | None:
    """The model class's ``autoregressive`` attribute (None when it does not declare one)."""
    value = getattr(type(model), "autoregressive", None)
    return bool(value) if isinstance(value, bool) else None


# ------------------------------------------------------------------------------------------ peak memory
def _rss_hwm_bytes() -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmHWM:\s+(\d+)\s+kB", text)
    return int(match.group(1)) * 1024 if match else None


def _rss_bytes() -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmRSS:\s+(\d+)\s+kB", text)
    return int(match.group(1)) * 1024 if match else None


class PeakMemory:
    """Peak memory of a phase: CUDA allocator peak on GPU, process peak RSS (VmHWM) on CPU."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.kind = "cuda_max_memory_allocated" if device.startswith("cuda") else "process_rss_peak"
        self.resettable = True

    def reset(self, collect: bool = False) -> None:
        """Start a new phase (after a garbage collection when ``collect``): reset the peak counter."""
        import torch

        if collect:
            gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            return
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back so the RSS reflects live memory
        try:
            Path("/proc/self/clear_refs").write_text("5")  # "5" resets VmHWM to the current RSS (Linux ≥ 4.0)
        except OSError:
            self.resettable = False

    def current_gb(self) -> float | None:
        import torch

        if self.device.startswith("cuda"):
            return torch.cuda.memory_allocated() / GB
        rss = _rss_bytes()
        return None if rss is None else rss / GB

    def peak_gb(self) -> float | None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / GB
        hwm = _rss_hwm_bytes()
        return None if hwm is None else hwm / GB


# ---------------------------------------------------------------------------------------------- timing
def time_runs(fn: Callable[[], Any], runs: int, warmup: int, sync: Callable[[], None]) -> list[float]:
    """Seconds of each of ``runs`` calls of ``fn`` after ``warmup`` untimed calls, synchronised around each."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def latency_summary(times: list[float]) -> dict[str, Any]:
    """Median and spread (quartiles, min, max) of timed runs, in seconds."""
    ordered = sorted(times)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "latency_s": statistics.median(ordered),
        "latency_q1_s": q1,
        "latency_q3_s": q3,
        "latency_min_s": ordered[0],
        "latency_max_s": ordered[-1],
        "latency_runs": len(ordered),
    }


# ----------------------------------------------------------------------------------------- the batch
def training_batch(model: Any, batch_size: int, device: Any, dtype: Any) -> dict[str, Any]:
    """A synthetic training batch with the inputs of every loss term (EgoNCE, nouns, verb phrases, boxes)."""
    import torch

    t, size = int(model.num_frames), int(model.image_size)
    generator = torch.Generator().manual_seed(0)
    video = torch.randn(batch_size, 3, t, size, size, generator=generator).to(
        device, dtype
    )  # (B, C, T, H, W)
    corner = torch.rand(batch_size, t, 4, 2, generator=generator) * 0.5  # (B, T, 4 boxes, x1y1)
    boxes = torch.cat([corner, corner + 0.3], dim=-1).to(device)  # (B, T, 4, 4) x1y1x2y2 in [0, 1]
    noun_tags = torch.zeros(batch_size, len(NOUNS), device=device)  # (B, V) multi-hot
    noun_tags[:, :2] = 1  # "knife", "tomato"
    return {
        "video": video,
        "text": model.tokenize([CAPTION] * batch_size).to(device),  # (B, L)
        "texts": [CAPTION] * batch_size,
        "noun_tags": noun_tags,
        "boxes": boxes,
        "box_valid": torch.ones(batch_size, t, 4, dtype=torch.bool, device=device),  # (B, T, 4)
    }


def _check_device(device: str, dtype: str) -> None:
    import torch

    if dtype not in DTYPES:
        raise BenchError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA device is visible to torch here; use --device cpu")
    if not device.startswith(("cuda", "cpu")):
        raise BenchError(f"unknown device {device!r}; use cpu or cuda")
    if device == "cpu" and dtype == "float16":
        raise BenchError("float16 on the CPU is not a meaningful cost setting; use float32 or bfloat16")


def environment(device: str, dtype: str) -> dict[str, Any]:
    """Device name, dtype, torch/CUDA versions and thread count the measurements were taken with."""
    import torch

    env = {
        "device": device,
        "dtype": dtype,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    if device.startswith("cuda"):
        env["device_name"] = torch.cuda.get_device_name(torch.device(device))
    else:
        env["device_name"] = _cpu_name()
    return env


def _cpu_name() -> str:
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    except OSError:
        match = None
    return match.group(1).strip() if match else (platform.processor() or platform.machine())


# ---------------------------------------------------------------------------------------------- measure
def measure_model(
    name: str,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    runs: int | None = None,
    warmup: int | None = None,
    train_batch: int = 1,
    train: bool = True,
) -> dict[str, Any]:
    """Every Table 5 quantity of the registered model ``name`` (see the module docstring), as one dict."""
    import torch

    from henasy.core.factory import create_model

    _check_device(device, dtype)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    runs = DEFAULT_RUNS[kind] if runs is None else runs
    warmup = DEFAULT_WARMUP[kind] if warmup is None else warmup
    if runs < 1 or warmup < 0 or train_batch < 1:
        raise BenchError(
            f"need runs >= 1, warmup >= 0 and train batch >= 1 (got {runs}, {warmup}, {train_batch})"
        )
    result = {**meta_costs(name), **environment(device, dtype)}
    torch_dtype = getattr(torch, dtype)

    def sync() -> None:
        if kind == "cuda":
            torch.cuda.synchronize(torch.device(device))

    memory = PeakMemory(device)
    memory.reset(collect=True)
    baseline = memory.current_gb()
    with torch.device(device):  # weights allocated on the device directly (no CPU copy in the peak)
        model = create_model(name)
    model = model.to(dtype=torch_dtype).eval()
    t, size = int(model.num_frames), int(model.image_size)
    clip = torch.randn(1, 3, t, size, size, generator=torch.Generator().manual_seed(0))  # (1, C, T, H, W)
    clip = clip.to(device, torch_dtype)

    def infer() -> Any:
        with torch.inference_mode():
            return model.encode_video(clip)

    times = time_runs(infer, runs, warmup, sync)
    result.update(latency_summary(times))
    result["warmup"] = warmup
    result["infer_mem_gb"] = memory.peak_gb()
    result["train_mem_gb"] = None
    result["train_batch"] = train_batch
    if train:
        result["train_mem_gb"] = _train_step_peak(model, memory, train_batch, device, torch_dtype)
    result["memory_kind"] = memory.kind
    result["baseline_rss_gb"] = baseline if kind == "cpu" else None
    result["peak_reset"] = memory.resettable
    return result


def _train_step_peak(
    model: Any, memory: PeakMemory, batch_size: int, device: str, dtype: Any
) -> float | None:
    """Peak memory of one full training step (loss, backward, AdamW step) on a synthetic batch."""
    import warnings

    import torch

    if hasattr(model, "bind_data"):
        model.bind_data(NOUNS)
    batch = training_batch(model, batch_size, device, dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return None
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    model.train()
    memory.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "loss term is 0 for this batch" notices are not news here
        loss = model.training_losses(batch)["loss"]
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    peak = memory.peak_gb()
    model.eval()
    del optimizer, loss, batch
    return peak


def measure_models(names: list[str], **kwargs: Any) -> list[dict[str, Any]]:
    """``measure_model`` for each name, in order, with the paper's Table 5 values attached (``paper``)."""
    from henasy.core.catalog import MODELS

    for name in names:
        MODELS.entry(name)  # unknown names fail before anything is measured
    out = []
    for name in names:
        result = measure_model(name, **kwargs)
        paper = paper_costs(name)
        result["paper"] = paper
        result["paper_device"] = None if paper is None else PAPER_DEVICE
        result["autoregressive_paper"] = None if paper is None else paper.get("autoregressive")
        out.append(result)
    return out


def paper_costs(name: str) -> dict[str, Any] | None:
    """The paper's Table 5 values for a registered model name (None for a model Table 5 does not list)."""
    from reports.spec import load_table_spec

    spec = load_table_spec("5")
    for row in spec.rows:
        if row.model == name:
            paper = spec.paper.row(row.paper_row)
            return {"row": paper.label, **dict(zip(spec.paper.keys, paper.values))}
    return None
