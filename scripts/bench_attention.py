"""Forward time of LaViLa's attention through ``F.scaled_dot_product_attention`` vs the explicit softmax path.

Same module, same inputs, same process: each row times the ``"reference"`` path (softmax(QKᵀ/√d)·V written
out, as in the official code), the ``"sdpa"`` path and the default ``"auto"`` path (SDPA except over few
keys) of ``baselines.lavila``, and prints the times, the ratios reference / sdpa and reference / auto
(> 1 means faster than the reference) and the largest output difference of SDPA from the reference. Layers: divided time
and space attention of TSF-B (width 768, 12 heads, 196 patches per frame), the CLIP text attention (width 512,
8 heads, 77 tokens) and, with ``--tower``, the whole TSF-B video tower. Runs on the CPU and, when available,
on CUDA.

    python scripts/bench_attention.py                      # CPU (and CUDA if present), batch 2, 4 frames
    python scripts/bench_attention.py --device cuda --batch 32 --tower --dtype bfloat16
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from baselines.lavila import CausalSelfAttention, DividedAttention, lavila_tsf_base


def timed(
    fn: Callable[[], torch.Tensor], device: torch.device, warmup: int, iters: int
) -> tuple[float, torch.Tensor]:
    """Median milliseconds of ``fn()`` over ``iters`` calls after ``warmup`` calls, and its last output."""
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2], out


def compare(
    name: str, module: torch.nn.Module, fn: Callable[[], torch.Tensor], device: torch.device, args
) -> None:
    """Time ``fn`` with every attention layer of ``module`` on the reference path, then on SDPA."""
    results = {}
    for impl in ("reference", "sdpa", "auto"):
        for layer in module.modules():
            if isinstance(layer, (DividedAttention, CausalSelfAttention)):
                layer.impl = impl
        with torch.inference_mode():
            results[impl] = timed(fn, device, args.warmup, args.iters)
    (ref_ms, ref_out), (sdpa_ms, sdpa_out), (auto_ms, _) = (
        results["reference"],
        results["sdpa"],
        results["auto"],
    )
    diff = (ref_out.float() - sdpa_out.float()).abs().max().item()
    ratios = f"{ref_ms / sdpa_ms:7.2f}x {ref_ms / auto_ms:7.2f}x"
    print(f"{device.type:<5} {name:<34} {ref_ms:10.2f} {sdpa_ms:9.2f} {auto_ms:9.2f} {ratios} {diff:10.2e}")


def run_device(device: torch.device, args) -> None:
    """All rows for one device."""
    dtype = getattr(torch, args.dtype) if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    b, t, n, width, heads = args.batch, args.frames, 196, 768, 12
    attn = DividedAttention(width, heads).to(device, dtype)
    x = torch.randn(b, 1 + t * n, width, device=device, dtype=dtype)  # (B, 1+T·N, D)
    for axis in ("time", "space"):
        label = f"{axis} attn B={b} T={t} N={n} D={width}"
        compare(label, attn, lambda axis=axis: attn(x, axis, t), device, args)
    text = CausalSelfAttention(512, 8).to(device, dtype)
    torch.nn.init.normal_(text.in_proj_weight, std=512**-0.5)
    tokens = torch.randn(b * 8, 77, 512, device=device, dtype=dtype)  # (B·8, L, W): 8 captions per clip
    compare(f"text attn B={b * 8} L=77 W=512", text, lambda: text(tokens), device, args)
    if args.tower:
        model = lavila_tsf_base(num_frames=t).to(device, dtype).eval()
        video = torch.randn(b, 3, t, 224, 224, device=device, dtype=dtype)
        compare(f"TSF-B video tower B={b} T={t}", model, lambda: model.encode_video(video), device, args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], default="float32", help="CUDA only"
    )
    parser.add_argument("--tower", action="store_true", help="also time the whole TSF-B video tower")
    args = parser.parse_args()
    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    elif args.device == "cuda":
        parser.error("CUDA is not available on this machine")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, iters {args.iters} (median ms)")
    if torch.cuda.is_available():
        print(f"cuda: {torch.cuda.get_device_name(0)}, dtype {args.dtype}")
    header = f"{'reference':>10} {'sdpa':>9} {'auto':>9} {'ref/sdpa':>8} {'ref/auto':>8} {'max |Δ|':>10}"
    print(f"{'dev':<5} {'layer':<34} {header}  (ms)")
    for device in devices:
        run_device(device, args)


if __name__ == "__main__":
    main()
