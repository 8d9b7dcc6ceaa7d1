"""GPU throughput of the paper presets in one run (issue #17, item 4): inference and training, eager and compiled.

For lavila / helpinghands / henasy (``--tiny``: their ``_tiny`` presets), on one device:

- inference: ``encode_video`` on a batch of ``--infer-batch`` clips (default 64), weights and input in
  ``--dtype`` (default bfloat16), every attention layer on ``F.scaled_dot_product_attention``
  (``set_attention_impl("sdpa")`` where the model has it); clips/s from the median of timed batches with
  ``torch.cuda.synchronize`` around each; peak memory (``max_memory_allocated``);
- training: one ``training_losses`` + backward + AdamW step on the synthetic batch of
  ``reports/cost.py: training_batch`` (every loss term's inputs), float32 weights under bf16 autocast, at
  each ``--train-batch`` (default 64 and 128); median step time, clips/s, peak memory; "OOM" when it does not fit;
- each of these eager and through ``torch.compile`` (``--compile both|on|off``);
- the fraction of the GPU's dense bf16 peak achieved: FLOPs per clip from the project's cost counting
  (``reports/cost.py: meta_costs``, ``FlopCounterMode`` on the meta device, multiply-add = 2) × clips/s /
  peak. Training uses 3 × (video + text forward FLOPs) per clip, an upper estimate (a frozen backbone
  needs no weight gradients), so its percentage is marked approximate.

Peaks (dense, no sparsity) come from ``PEAK_BF16_TFLOPS`` by device name; ``--peak-tflops`` overrides.
``--dry-run`` (= ``--device cpu --tiny --dtype float32``, 1 timed step, batches of 2) checks the script without a GPU; the
tests run it. Prints a markdown table; ``--json`` prints the rows as JSON; ``--out FILE`` writes them.

    python scripts/bench_gpu.py --out gpu.json                       all three paper presets, both modes
    python scripts/bench_gpu.py --models henasy --compile on --json
    python scripts/bench_gpu.py --dry-run --compile-backend eager     CPU smoke check (seconds)
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from henasy.core.atomic import atomic_write_json  # noqa: E402
from reports.cost import NOUNS, meta_costs, time_runs, training_batch  # noqa: E402

PAPER_MODELS = ["lavila", "helpinghands", "henasy"]

# Dense bf16 tensor-core peak in TFLOPS (the datasheets print twice these values "with sparsity").
# H100 SXM 989.4, H100 PCIe 756: https://www.nvidia.com/en-us/data-center/h100/
# H200 (SXM and NVL) 989: https://www.nvidia.com/en-us/data-center/h200/
# A100 (SXM and PCIe) 312: https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf
# RTX A6000 154.8: https://www.nvidia.com/content/dam/en-zz/Solutions/design-visualization/quadro-product-literature/proviz-print-nvidia-rtx-a6000-datasheet-us-nvidia-1454980-r9-web%20(1).pdf
PEAK_BF16_TFLOPS: list[tuple[tuple[str, ...], float]] = [  # (substrings of the device name, all required)
    (("H200",), 989.0),
    (("H100", "PCIE"), 756.0),
    (("H100",), 989.4),
    (("A100",), 312.0),
    (("A6000",), 154.8),
]


def peak_tflops(device_name: str) -> float | None:
    """Dense bf16 peak of a GPU from its name (None when it is not in ``PEAK_BF16_TFLOPS``)."""
    upper = device_name.upper()
    for parts, tflops in PEAK_BF16_TFLOPS:
        if all(p in upper for p in parts):
            return tflops
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 1024**3 if device.type == "cuda" else None


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _measure(row: dict[str, Any], step: Any, device: torch.device, batch: int, args: Any) -> dict[str, Any]:
    """``row`` with ``step``'s time per call, clips/s and peak memory; an out-of-memory step is marked "OOM"."""
    _reset_peak(device)
    try:
        seconds = statistics.median(time_runs(step, args.steps, args.warmup, lambda: _sync(device)))
        row.update(step_s=seconds, clips_per_s=batch / seconds, peak_mem_gb=_peak_gb(device))
    except RuntimeError as exc:
        if not _is_oom(exc):
            raise
        row.update(step_s=None, clips_per_s=None, peak_mem_gb=None, error="OOM")
    return row


def _build(name: str, device: torch.device, dtype: torch.dtype, attention: str) -> Any:
    from henasy.core.factory import create_model

    with torch.device(device):
        model = create_model(name)
    model = model.to(device=device, dtype=dtype)
    for module in model.modules():
        if hasattr(module, "set_attention_impl"):
            module.set_attention_impl(attention)
    return model


def bench_inference(
    name: str, device: torch.device, dtype: torch.dtype, batch: int, compiled: bool, args: Any
) -> dict[str, Any]:
    """Inference clips/s and peak memory of ``encode_video`` on ``batch`` clips."""
    row: dict[str, Any] = {"model": name, "phase": "inference", "batch": batch, "compiled": compiled}
    model = _build(name, device, dtype, args.attention).eval()
    t, size = int(model.num_frames), int(model.image_size)
    video = torch.randn(batch, 3, t, size, size, device=device, dtype=dtype)  # (B, C, T, H, W)
    encode = (
        torch.compile(model.encode_video, backend=args.compile_backend) if compiled else model.encode_video
    )

    def step() -> None:
        with torch.inference_mode():
            encode(video)

    return _measure(row, step, device, batch, args)


def bench_training(name: str, device: torch.device, batch: int, compiled: bool, args: Any) -> dict[str, Any]:
    """Training step time (loss + backward + AdamW step) under bf16 autocast, and its peak memory."""
    row: dict[str, Any] = {"model": name, "phase": "training", "batch": batch, "compiled": compiled}
    model = _build(name, device, torch.float32, args.attention).train()
    if hasattr(model, "bind_data"):
        model.bind_data(NOUNS)
    data = training_batch(model, batch, device, torch.float32)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    losses = (
        torch.compile(model.training_losses, backend=args.compile_backend)
        if compiled
        else model.training_losses
    )
    autocast = args.dtype != "float32"  # float32: no autocast (the CPU dry run)

    def step() -> None:
        amp = torch.autocast(device.type, dtype=getattr(torch, args.dtype), enabled=autocast)
        with amp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "loss term is 0 for this batch" notices are not news here
            loss = losses(data)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return _measure(row, step, device, batch, args)


def run(args: Any) -> dict[str, Any]:
    """Every row for ``args.models``; returns ``{"environment": ..., "rows": [...]}``."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "--device cuda: no CUDA device is visible to torch; use --dry-run to check the script"
        )
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dtype = getattr(torch, args.dtype)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = args.peak_tflops if args.peak_tflops is not None else peak_tflops(name)
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    rows = []
    for model_name in args.models:
        cost = meta_costs(model_name)
        fwd = float(cost["flops_video"])
        train_flops = 3.0 * (fwd + float(cost["flops_text"]))
        for compiled in modes:
            found = []
            if "inference" in args.phases:
                found.append(bench_inference(model_name, device, dtype, args.infer_batch, compiled, args))
            if "training" in args.phases:
                found += [bench_training(model_name, device, b, compiled, args) for b in args.train_batch]
            for row in found:
                per_clip = fwd if row["phase"] == "inference" else train_flops
                row["gflops_per_clip"] = per_clip / 1e9
                rate = row.get("clips_per_s")
                row["tflops_achieved"] = None if rate is None else rate * per_clip / 1e12
                row["pct_of_peak"] = (
                    None if rate is None or not peak else 100.0 * rate * per_clip / (peak * 1e12)
                )
                row["pct_approximate"] = row["phase"] == "training"
                rows.append(row)
                print(_line(row), file=sys.stderr, flush=True)
    env = {
        "device": str(device),
        "device_name": name,
        "peak_bf16_tflops": peak,
        "dtype": args.dtype,
        "attention": args.attention,
        "compile_backend": args.compile_backend,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "steps": args.steps,
        "warmup": args.warmup,
    }
    return {"environment": env, "rows": rows}


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['model']} {row['phase']} batch {row['batch']} compiled={row['compiled']}: "
        f"{_fmt(row.get('clips_per_s'), '.1f')} clips/s {row.get('error', '')}"
    )


def markdown(result: dict[str, Any]) -> str:
    """The rows as a markdown table, with the device line above it."""
    env = result["environment"]
    lines = [
        f"device {env['device_name']} ({env['device']}), {env['dtype']}, attention {env['attention']}, "
        f"dense bf16 peak {_fmt(env['peak_bf16_tflops'], 'g')} TFLOPS, torch {env['torch']}",
        "",
        "| model | phase | batch | torch.compile | clips/s | step (ms) | peak mem (GB) | GFLOPs/clip | % of peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        step = None if r.get("step_s") is None else r["step_s"] * 1e3
        pct = _fmt(r.get("pct_of_peak"), ".1f") + (" (approx.)" if r["pct_approximate"] else "")
        lines.append(
            f"| {r['model']} | {r['phase']} | {r['batch']} | {'yes' if r['compiled'] else 'no'} | "
            f"{r.get('error') or _fmt(r.get('clips_per_s'), '.1f')} | {_fmt(step, '.1f')} | "
            f"{_fmt(r.get('peak_mem_gb'), '.2f')} | {r['gflops_per_clip']:.3g} | {pct} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--models", nargs="+", default=None, help="registered model names (default: paper presets)"
    )
    p.add_argument("--tiny", action="store_true", help="the _tiny presets of the paper models")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--attention", default="sdpa", choices=["sdpa", "auto", "reference"])
    p.add_argument("--infer-batch", type=int, default=64)
    p.add_argument("--train-batch", type=int, nargs="+", default=[64, 128])
    p.add_argument("--compile", default="both", choices=["both", "on", "off"])
    p.add_argument(
        "--phases", nargs="+", default=["inference", "training"], choices=["inference", "training"]
    )
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend (default inductor)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per row (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per row, compilation included")
    p.add_argument("--peak-tflops", type=float, default=None, help="override the device's dense bf16 peak")
    p.add_argument(
        "--dry-run", action="store_true", help="--device cpu --tiny, float32, 1 step, batches of 2"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--out", type=Path, help="also write the JSON result here (atomically)")
    args = p.parse_args(argv)
    if args.dry_run:  # float32: bf16 matmuls are emulated (slow) on most CPUs
        args.device, args.tiny, args.steps, args.warmup, args.dtype = "cpu", True, 1, 0, "float32"
        args.infer_batch, args.train_batch = 2, [2]
    if args.models is None:
        args.models = [f"{m}_tiny" for m in PAPER_MODELS] if args.tiny else list(PAPER_MODELS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if args.out:
        atomic_write_json(args.out, result)
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
