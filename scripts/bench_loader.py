"""Clip loader against the naive baseline, on the same clips, interleaved in one process (issue #17, item 1).

Baseline: for each clip, decode every frame of the sampled window with decord ``get_batch`` (the frames
from the first to the last sampled frame, per chunk), pick the sampled frames, and apply the project's
``ClipTransform``. Candidate: ``ClipLoader.load`` (default backend). Both use the same frame sampling
(``henasy.data.sampling``), the same chunk clamping rule and an LRU of 4 open readers, and each round starts
with fresh readers, so opening files is timed too. Rounds alternate which of the two goes first; the
printed ratio is the median over rounds of loader clips/s / baseline clips/s. Every clip's two tensors
are compared (max |Δ| must be 0).

With ``--workers`` the loader also runs in a ``make_dataloader`` with 1, 2, … worker processes (steady
state: timed from the first batch to the last) and clips/s per worker is reported. Torch uses one
intra-op thread in this process (as in DataLoader workers). The load average is printed beside the
numbers: on a shared machine they move with it.

    python scripts/bench_loader.py --data data/synth                        default-size set, 200 clips
    python scripts/bench_loader.py --data data/synth --real-data data/real --workers 1,2 --json
    (data/real: bench data synth --out data/real --size tiny --video-size real)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from henasy.data.layout import DatasetLayout  # noqa: E402
from henasy.data.sampling import clip_frame_range, segment_frame_ids  # noqa: E402
from henasy.data.transforms import ClipTransform  # noqa: E402
from henasy.data.video import AutoSource, ClipLoader  # noqa: E402

Clip = tuple[str, float, float]  # (video_uid, clip_start, clip_end)


class NaiveLoader:
    """Decode every frame of the window with decord ``get_batch``, then pick the sampled ones."""

    def __init__(self, num_frames: int, size: int, cache_size: int = 4) -> None:
        self.num_frames = num_frames
        self.transform = ClipTransform(size)
        self.cache_size = cache_size
        self.readers: OrderedDict[str, Any] = OrderedDict()

    def _reader(self, path: Path) -> Any:
        import decord

        key = str(path)
        if key not in self.readers:
            self.readers[key] = decord.VideoReader(key, ctx=decord.cpu(0), num_threads=1)
            while len(self.readers) > self.cache_size:
                self.readers.popitem(last=False)
        self.readers.move_to_end(key)
        return self.readers[key]

    def load(self, source: AutoSource, uid: str, start: float, end: float) -> torch.Tensor:
        chunks = source.chunks(uid)
        fps = self._reader(chunks[0].path).get_avg_fps()
        starts = [int(round(c.start_sec * fps)) for c in chunks]
        first, stop = clip_frame_range(start, end, fps, self.num_frames)
        ids = segment_frame_ids(first, stop, self.num_frames)
        picked: dict[int, np.ndarray] = {}
        for k, chunk in enumerate(chunks):
            lo = starts[k]
            hi = starts[k + 1] if k + 1 < len(chunks) else max(ids) + 1
            mine = [g for g in ids if lo <= g < hi]
            if not mine:
                continue
            vr = self._reader(chunk.path)
            n = len(vr)
            a, b = min(mine) - lo, min(max(mine) - lo, n - 1)  # past the end: the last frame (clamped)
            a = min(a, b)
            window = vr.get_batch(list(range(a, b + 1))).asnumpy()  # every frame of the window
            for g in mine:
                picked[g] = window[min(g - lo, n - 1) - a]
        return self.transform(np.stack([picked[g] for g in ids]))


def read_clips(root: Path, count: int, seed: int) -> list[Clip]:
    """``count`` EgoClip clips of ``root`` in a seeded shuffled order (cycled when the set has fewer)."""
    import pandas as pd

    df = pd.read_csv(DatasetLayout(root).egoclip_csv, sep="\t")
    rows = list(zip(df.video_uid, df.clip_start.astype(float), df.clip_end.astype(float)))
    rng = np.random.default_rng(seed)
    out: list[Clip] = []
    while len(out) < count:
        out.extend(rows[i] for i in rng.permutation(len(rows)))
    return out[:count]


def _run(load: Any, source: AutoSource, clips: list[Clip]) -> tuple[float, list[torch.Tensor]]:
    start = time.perf_counter()
    outs = [load(source, *c) for c in clips]
    return time.perf_counter() - start, outs


def compare(root: Path, clips: list[Clip], rounds: int, frames: int, size: int) -> dict[str, Any]:
    """Interleaved rounds of baseline and loader over ``clips``; clips/s, ratios and max |Δ|."""
    source = AutoSource(DatasetLayout(root).ego4d_videos)
    base_rate, loader_rate, ratios, max_diff = [], [], [], 0.0
    for r in range(rounds):
        naive, loader = NaiveLoader(frames, size), ClipLoader(frames, size)
        order = [("baseline", naive.load), ("loader", loader.load)]
        if r % 2:
            order.reverse()
        timed = {name: _run(fn, source, clips) for name, fn in order}
        if r == 0:
            for a, b in zip(timed["baseline"][1], timed["loader"][1]):
                max_diff = max(max_diff, float((a - b).abs().max()))
        base_rate.append(len(clips) / timed["baseline"][0])
        loader_rate.append(len(clips) / timed["loader"][0])
        ratios.append(loader_rate[-1] / base_rate[-1])
    first = next(iter(source.chunks(clips[0][0])))
    return {
        "data": str(root),
        "frame_size": list(_frame_size(first.path)),
        "clips": len(clips),
        "rounds": rounds,
        "baseline_clips_per_s": statistics.median(base_rate),
        "loader_clips_per_s": statistics.median(loader_rate),
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "max_abs_diff": max_diff,
    }


def _frame_size(path: Path) -> tuple[int, int]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return int(s.width), int(s.height)


def worker_scaling(
    root: Path, clips: list[Clip], workers: list[int], frames: int, size: int
) -> list[dict[str, Any]]:
    """Loader clips/s in a DataLoader with each worker count (steady state: first batch to last)."""
    from henasy.data.batching import ClipDataset, ClipRef, make_dataloader

    source = AutoSource(DatasetLayout(root).ego4d_videos)
    refs = [ClipRef(u, s, e) for u, s, e in clips]
    rows = []
    for w in workers:
        ds = ClipDataset(refs, ClipLoader(frames, size), source)
        batch = 4
        dl = make_dataloader(ds, batch, num_workers=w)
        it = iter(dl)
        next(it)  # workers started and warmed up
        start, n = time.perf_counter(), 0
        for b in it:
            n += len(b["index"])
        wall = time.perf_counter() - start
        rate = n / wall if wall > 0 else float("nan")
        rows.append(
            {"workers": w, "clips": n, "clips_per_s": rate, "clips_per_s_per_worker": rate / max(w, 1)}
        )
    return rows


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="synthetic dataset root (bench data synth)")
    p.add_argument("--real-data", type=Path, help="a second root rendered with --video-size real")
    p.add_argument("--clips", type=int, default=200, help="clips per round (default 200)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--frames", type=int, default=4, help="frames per clip (default 4)")
    p.add_argument("--size", type=int, default=224, help="crop size (default 224)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", default="", help="comma-separated DataLoader worker counts, e.g. 1,2")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    sets = {"synth": args.data} | ({"real": args.real_data} if args.real_data else {})
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    result: dict[str, Any] = {"load_average_before": load_average(), "cpus": os.cpu_count(), "sets": {}}
    for name, root in sets.items():
        clips = read_clips(root, args.clips, args.seed)
        entry = compare(root, clips, args.rounds, args.frames, args.size)
        if workers:
            entry["workers"] = worker_scaling(root, clips, workers, args.frames, args.size)
        result["sets"][name] = entry
    result["load_average_after"] = load_average()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"load average before {result['load_average_before']}, after {result['load_average_after']}")
    print("| set | frame size | clips | baseline clips/s | loader clips/s | ratio (median) | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for name, e in result["sets"].items():
        w, h = e["frame_size"]
        print(
            f"| {name} | {w}x{h} | {e['clips']} x {e['rounds']} | {e['baseline_clips_per_s']:.1f} | "
            f"{e['loader_clips_per_s']:.1f} | {e['ratio_median']:.2f} | {e['max_abs_diff']:g} |"
        )
    for name, e in result["sets"].items():
        for row in e.get("workers", []):
            print(
                f"{name}: {row['workers']} worker(s): {row['clips_per_s']:.1f} clips/s, "
                f"{row['clips_per_s_per_worker']:.1f} per worker"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
