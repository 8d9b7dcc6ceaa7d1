"""Orchestration of ``bench data synth``: plan every video, render them (optionally in worker processes),
then write every annotation file of the dataset layout (henasy/data/layout.py) and ``synth_manifest.json``.

Determinism: every random choice comes from ``numpy.random.default_rng([seed, *stream keys])`` — one
stream for the world, one per video (script and renderer), one per annotation file that samples — and
never from global state, so the output does not depend on the number of workers or the order in which
videos finish. The manifest (written last) marks a complete dataset; ``.synth_in_progress.json`` (written
first, removed after the manifest) marks an unfinished one.

``--force`` replaces only a root that one of these two files says this generator wrote (``"generator":
"henasy.synth"``): a root without them may hold real data, and is refused rather than overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from henasy.core.errors import BenchError
from henasy.synth import ego4d, egtea, epic, episodic, grounding, rephrase
from henasy.synth.encode import ENCODER_OPTIONS
from henasy.synth.formats import write_json
from henasy.synth.handobj import HANDOBJ_CHUNK_SEC
from henasy.synth.media import BoxClip, FrameClip, MediaJob, MediaResult, run_media_job
from henasy.synth.scene import Geometry, ScriptParams, VideoScript, random_uid, sample_script
from henasy.synth.sizes import SIZES, VIDEO_SIZES, SizeSpec, with_video_size
from henasy.synth.world import HAND_IDS, NOUNS, VERBS, World, build_world

# 2: more evaluation videos, so that every EgoMCQ item is asked (small 20 × 45: 800 items; medium 50 × 45: 2,000)
GENERATOR_VERSION = 2
LAYOUTS = ("lavila", "egovlp")
OUTPUT_PARTS = ("ego4d", "ek100", "egtea", "grounding")
MANIFEST = "synth_manifest.json"
IN_PROGRESS = ".synth_in_progress.json"  # written before anything else, removed once MANIFEST is written
GENERATOR = "henasy.synth"
_STREAMS = {
    "world": 0,
    "ego4d": 1,
    "ek100": 2,
    "egtea": 3,
    "egomcq": 4,
    "nlq": 5,
    "mq": 6,
    "grounding": 7,
    "splits": 8,
}
_SPLITS = {"train": 0, "eval": 1}


def stream(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream for ``keys`` under ``seed``."""
    return np.random.default_rng([int(seed), *keys])


@dataclass
class Plan:
    """Every video's script, before anything is rendered."""

    seed: int
    spec: SizeSpec
    world: World
    geo: Geometry
    ego_train: list[VideoScript] = field(default_factory=list)
    ego_eval: list[VideoScript] = field(default_factory=list)
    ek_train: list[tuple[VideoScript, str]] = field(default_factory=list)  # (script, participant_id)
    ek_val: list[tuple[VideoScript, str]] = field(default_factory=list)
    egtea_train: list[tuple[VideoScript, int]] = field(default_factory=list)  # (script, recording offset s)
    egtea_eval: list[tuple[VideoScript, int]] = field(default_factory=list)


def _forced(world: World, index: int, count: int) -> tuple[tuple[int, int], ...]:
    """Held-out pairs evaluation video ``index`` of ``count`` must contain (pair j → video j mod count)."""
    return tuple(p for j, p in enumerate(world.held_out_pairs) if j % count == index)


def _params(world: World, split: str, index: int, count: int, actions: int, **kw) -> ScriptParams:
    if split == "train":
        return ScriptParams(num_actions=actions, backgrounds=world.train_backgrounds, **kw)
    held = world.held_out_backgrounds
    # even-numbered evaluation videos cycle through the held-out backgrounds, the others use training ones
    backgrounds = (held[(index // 2) % len(held)],) if index % 2 == 0 else world.train_backgrounds
    return ScriptParams(
        num_actions=actions,
        forced=_forced(world, index, count),
        allow_held_out=True,
        backgrounds=backgrounds,
        **kw,
    )


def plan_dataset(seed: int, spec: SizeSpec) -> Plan:
    """Sample the world and every video's script."""
    world = build_world(stream(seed, _STREAMS["world"]), spec.held_out_pairs)
    geo = Geometry(spec.width, spec.height)
    plan = Plan(seed, spec, world, geo)
    for split, (count, actions) in (("train", spec.ego_train), ("eval", spec.ego_eval)):
        for i in range(count):
            rng = stream(seed, _STREAMS["ego4d"], _SPLITS[split], i)
            uid = random_uid(rng)
            params = _params(world, split, i, count, actions, double_prob=0.15)
            script = sample_script(
                world, geo, params, rng, uid=uid, dataset="ego4d", split=split, fps=spec.fps
            )
            (plan.ego_train if split == "train" else plan.ego_eval).append(script)

    participants = max(2, spec.ek_train[0] // 4)
    next_video: dict[int, int] = {}
    for split, (count, actions) in (("train", spec.ek_train), ("eval", spec.ek_val)):
        for i in range(count):
            p = i % participants
            if split == "eval" and count > 1 and i == count - 1:
                p = participants  # an unseen participant, as in EPIC-KITCHENS-100 validation
            next_video[p] = next_video.get(p, 0) + 1
            pid = f"P{p + 1:02d}"
            uid = f"{pid}_{next_video[p]:02d}"
            rng = stream(seed, _STREAMS["ek100"], _SPLITS[split], i)
            params = _params(world, split, i, count, actions, decimals=2)
            script = sample_script(
                world, geo, params, rng, uid=uid, dataset="ek100", split=split, fps=spec.fps
            )
            (plan.ek_train if split == "train" else plan.ek_val).append((script, pid))

    for split, (count, actions) in (("train", spec.egtea_train), ("eval", spec.egtea_eval)):
        for i in range(count):
            rng = stream(seed, _STREAMS["egtea"], _SPLITS[split], i)
            name = egtea.session_name(i if split == "train" else spec.egtea_train[0] + i)
            offset = int(rng.integers(300, 1500))
            params = _params(world, split, i, count, actions)
            script = sample_script(
                world, geo, params, rng, uid=name, dataset="egtea", split=split, fps=spec.fps
            )
            (plan.egtea_train if split == "train" else plan.egtea_eval).append((script, offset))
    return plan


def generator_marker(out: Path) -> Path | None:
    """``out``'s manifest or in-progress marker if this generator wrote it (``"generator": "henasy.synth"``)."""
    for name in (MANIFEST, IN_PROGRESS):
        path = out / name
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, ValueError):  # unreadable or not JSON: not ours
            continue
        if isinstance(data, dict) and data.get("generator") == GENERATOR:
            return path
    return None


def stale_dataset(root: Path, size: str, seed: int) -> str | None:
    """Why the complete synthetic dataset at ``root`` is not the one this generator writes for ``size`` /
    ``seed`` (another generator version, size or seed, or an unreadable manifest); None when it is."""
    path = root / MANIFEST
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"{path} cannot be read ({err})"
    if not isinstance(found, dict):
        return f"{path} is not a JSON object"
    wanted = {"generator_version": GENERATOR_VERSION, "size": size, "seed": seed}
    differ = [
        f"{key} {found.get(key)!r} (wanted {value!r})"
        for key, value in wanted.items()
        if found.get(key) != value
    ]
    return f"{path} records " + ", ".join(differ) if differ else None


def prepare_out(out: Path, force: bool) -> None:
    """Create ``out``, or refuse it when it is not empty; ``force`` replaces only a dataset this generator wrote.

    A non-empty folder without our ``synth_manifest.json`` / in-progress marker is refused even with
    ``force``: it may be a real dataset root, and ``--force`` must never overwrite data we did not write.
    """
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file, not a folder; choose a new or empty folder")
    if out.is_dir() and any(out.iterdir()):
        _clear_previous(out, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BenchError(f"--out {out}: cannot create the folder ({err.strerror or err})") from None


def _clear_previous(out: Path, force: bool) -> None:
    marker = generator_marker(out)
    if not force:
        raise BenchError(
            f"--out {out} is not empty; choose a new or empty folder, or pass --force to replace a synthetic "
            f"dataset written there by `bench data synth` (recognised by its {MANIFEST})"
        )
    if marker is None:
        raise BenchError(
            f"--out {out} is not empty and has no {MANIFEST} written by `bench data synth`, so --force will not "
            "replace it (it may hold real data): choose a new or empty folder, or delete this one yourself "
            "if you are sure it is disposable"
        )
    links = [out / part for part in OUTPUT_PARTS if (out / part).is_symlink()]
    if links:
        raise BenchError(
            f"--out {out}: {links[0]} is a symbolic link; --force does not delete through links: "
            "remove the link yourself or choose another folder"
        )
    for part in OUTPUT_PARTS:
        if (out / part).is_dir():
            shutil.rmtree(out / part)
    for name in (MANIFEST, IN_PROGRESS):
        (out / name).unlink(missing_ok=True)


def _auto_workers(plan_frames: int) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return 1 if plan_frames < 20_000 else max(1, min(cpus, 8))


def _run_jobs(jobs: list[MediaJob], workers: int, progress: bool, desc: str) -> dict[str, MediaResult]:
    from tqdm import tqdm

    results: dict[str, MediaResult] = {}
    jobs = sorted(jobs, key=lambda j: -j.script.num_frames)  # longest first: better load balance
    with tqdm(total=len(jobs), desc=desc, unit="video", disable=not progress) as bar:
        if workers <= 1:
            for job in jobs:
                r = run_media_job(job)
                results[r.uid] = r
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(run_media_job, job) for job in jobs]
                for fut in as_completed(futures):
                    r = fut.result()
                    results[r.uid] = r
                    bar.update(1)
    return results


def generate(
    out: str | Path,
    *,
    seed: int = 0,
    size: str = "small",
    layout: str = "lavila",
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    video_size: str = "synth",
) -> dict:
    """Write the synthetic dataset under ``out``; returns a summary (counts, wall time in seconds).

    ``video_size="real"`` renders at 456×256, 30 fps with Ego4D chunk lengths (``henasy.synth.sizes``)."""
    if video_size not in VIDEO_SIZES:
        raise BenchError(f"unknown --video-size {video_size!r}; choose one of {', '.join(VIDEO_SIZES)}")
    if size not in SIZES:
        raise BenchError(f"unknown --size {size!r}; choose one of {', '.join(SIZES)}")
    if layout not in LAYOUTS:
        raise BenchError(f"unknown --layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    out = Path(out)
    prepare_out(out, force)
    write_json(out / IN_PROGRESS, {"generator": GENERATOR, "seed": seed, "size": size, "layout": layout})
    t0 = time.perf_counter()
    spec = with_video_size(SIZES[size], video_size, layout)
    plan = plan_dataset(seed, spec)
    world, fps = plan.world, spec.fps
    e4d, ek, eg = out / "ego4d", out / "ek100", out / "egtea"

    # Ego4D clips, grounding selection, and the render jobs.
    train_clips = [c for s in plan.ego_train for c in ego4d.narration_clips(s, world)]
    eval_clips = [c for s in plan.ego_eval for c in ego4d.narration_clips(s, world)]
    eval_scripts = {s.uid: s for s in plan.ego_eval}
    selected = grounding.select_clips(
        eval_clips, eval_scripts, spec.grounding_clips, stream(seed, _STREAMS["grounding"])
    )
    jobs: list[MediaJob] = []
    common = {
        "geometry": plan.geo,
        "chunk_dir": str(e4d / "video_chunks"),
        "chunk_sec": spec.chunk_sec,
        "layout": layout,
    }
    for s in plan.ego_train:
        boxes = tuple(
            BoxClip(c.clip_start, c.clip_end, tuple(st.entity for st in c.action.steps))
            for c in train_clips
            if c.video_uid == s.uid
        )
        jobs.append(MediaJob(s, handobj_dir=str(e4d / "hand_object"), box_clips=boxes, **common))
    for s in plan.ego_eval:
        masks = tuple(
            FrameClip(g.clip_id, str(out / "grounding" / g.mask_file), g.start_frame, g.end_frame)
            for g in selected
            if g.script.uid == s.uid
        )
        jobs.append(MediaJob(s, masks=masks, **common))
    for s, pid in plan.ek_train + plan.ek_val:
        jobs.append(MediaJob(s, plan.geo, video_path=str(ek / "video_ht256px" / pid / f"{s.uid}.MP4")))
    egtea_train = [c for s, off in plan.egtea_train for c in egtea.session_clips(s, off, world)]
    egtea_test = [c for s, off in plan.egtea_eval for c in egtea.session_clips(s, off, world)]
    for s, _ in plan.egtea_train + plan.egtea_eval:
        clips = tuple(
            FrameClip(
                c.clip_id,
                str(eg / "cropped_clips" / egtea.clip_relpath(c.clip_id)),
                c.start_frame,
                c.end_frame,
            )
            for c in egtea_train + egtea_test
            if c.session == s.uid
        )
        jobs.append(MediaJob(s, plan.geo, clips=clips))

    total_frames = sum(j.script.num_frames for j in jobs)
    n_workers = workers if workers is not None else _auto_workers(total_frames)
    results = _run_jobs(jobs, n_workers, progress, f"synth {size}")

    # Ego4D annotations.
    ego4d.write_egoclip(e4d / "egoclip.csv", train_clips)
    ego4d.write_taxonomies(e4d)
    ego4d.write_verb_phrases(e4d / "verb_phrases.json", train_clips + eval_clips)
    rephrase.write_rephrased(e4d / "lavila_rephrased.pth", plan.ego_train, world)  # HelpingHands' positives
    mcq = ego4d.build_egomcq(eval_clips, spec.mcq_items, stream(seed, _STREAMS["egomcq"]))
    write_json(e4d / "egomcq.json", mcq, sort_keys=False)
    nlq_rng = stream(seed, _STREAMS["nlq"])
    for split, scripts in (("train", plan.ego_train), ("val", plan.ego_eval)):
        write_json(
            e4d / "nlq" / f"nlq_{split}.json",
            episodic.nlq_json(scripts, split, nlq_rng, spec.nlq_queries_per_clip),
        )
    mq_rng = stream(seed, _STREAMS["mq"])
    moments = {
        split: episodic.moments_json(scripts, split, mq_rng)
        for split, scripts in (("train", plan.ego_train), ("val", plan.ego_eval))
    }
    for split, data in moments.items():
        write_json(e4d / "mq" / f"moments_{split}.json", data)
    durations = {s.uid: float(s.duration) for s in plan.ego_train + plan.ego_eval}
    write_json(
        e4d / "mq" / "clip_annotations.json", episodic.convert_moments(list(moments.values()), durations, fps)
    )

    # EPIC-KITCHENS-100.
    ek_train_rows = [r for s, pid in plan.ek_train for r in epic.epic_rows(s, pid, world)]
    ek_val_rows = [r for s, pid in plan.ek_val for r in epic.epic_rows(s, pid, world)]
    epic.write_action_csv(ek / "EPIC_100_train.csv", ek_train_rows)
    epic.write_action_csv(ek / "EPIC_100_validation.csv", ek_val_rows)
    epic.write_class_csvs(ek)
    epic.write_retrieval(ek / "retrieval_annotations", ek_val_rows)

    # EGTEA Gaze+ and grounding.
    egtea_sizes = egtea.write_egtea(eg, egtea_train, egtea_test, stream(seed, _STREAMS["splits"]))
    visible = {name: ids for r in results.values() for name, ids in r.visible.items()}
    entries = grounding.grounding_entries(selected, visible)
    write_json(out / "grounding" / "grounding_val.json", entries, sort_keys=False)

    counts = {
        "egoclip_train_clips": len(train_clips),
        "ego4d_train_videos": len(plan.ego_train),
        "ego4d_eval_videos": len(plan.ego_eval),
        "egomcq_items": len(mcq),
        "ek100_train_rows": len(ek_train_rows),
        "ek100_validation_rows": len(ek_val_rows),
        "egtea_clips": egtea_sizes,
        "grounding_clips": len(selected),
        "grounding_queries": len(entries),
        "videos": len(jobs),
        "frames": total_frames,
    }
    write_json(out / MANIFEST, _manifest(plan, layout, video_size, counts), indent=2)
    (out / IN_PROGRESS).unlink()
    return {**counts, "wall_s": time.perf_counter() - t0, "workers": n_workers, "out": str(out)}


def _manifest(plan: Plan, layout: str, video_size: str, counts: dict) -> dict:
    import av

    spec = plan.spec
    return {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "seed": plan.seed,
        "size": spec.name,
        "fps": spec.fps,
        "chunk_sec": spec.chunk_sec,
        "video_layout": layout,
        "video_size": video_size,
        "frame_size": {"width": spec.width, "height": spec.height},
        "handobj_chunk_sec": HANDOBJ_CHUNK_SEC,
        "held_out": plan.world.describe_held_out(),
        "taxonomy": {"nouns": [n.name for n in NOUNS], "verbs": [v.name for v in VERBS]},
        "instance_ids": {"entities": "1..E in each video, in entity order", "hands": HAND_IDS},
        "splits": {
            "ego4d_train_videos": [s.uid for s in plan.ego_train],
            "ego4d_eval_videos": [s.uid for s in plan.ego_eval],
            "ek100_train_videos": [s.uid for s, _ in plan.ek_train],
            "ek100_validation_videos": [s.uid for s, _ in plan.ek_val],
            "egtea_train_sessions": [s.uid for s, _ in plan.egtea_train],
            "egtea_eval_sessions": [s.uid for s, _ in plan.egtea_eval],
        },
        "counts": counts,
        "encoder": {
            "codec": "libx264",
            "pix_fmt": "yuv420p",
            **ENCODER_OPTIONS,
            "g": str(spec.fps),
            "pyav": av.__version__,
        },
    }
