"""One video's media: render it, then write its mp4s, grounding masks and hand/object box pickles.

A ``MediaJob`` is self-contained and picklable, so jobs can run in worker processes in any order: each one
derives its renderer stream from ``script.render_seed`` only and writes only its own files, which keeps
the output independent of scheduling. The job returns the instance ids visible in each grounding clip.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from henasy.synth.background import make_canvas
from henasy.synth.encode import chunk_path, write_chunks, write_mp4
from henasy.synth.formats import seconds, write_npz, write_pickle
from henasy.synth.handobj import HANDOBJ_CHUNK_SEC, clip_entry, clip_sample_frames
from henasy.synth.motion import compute_tracks
from henasy.synth.render import render_video
from henasy.synth.scene import Geometry, VideoScript
from henasy.synth.world import BACKGROUNDS


@dataclass(frozen=True)
class FrameClip:
    """A frame range ``[start_frame, end_frame)`` of the video written to ``path``."""

    name: str
    path: str
    start_frame: int
    end_frame: int


@dataclass(frozen=True)
class BoxClip:
    """An EgoClip training clip whose 4 sampled frames get 100DOH-style boxes."""

    clip_start: float
    clip_end: float
    active: tuple[int, ...]  # entity ids acted on


@dataclass(frozen=True)
class MediaJob:
    script: VideoScript
    geometry: Geometry
    chunk_dir: str | None = None  # chunked Ego4D video (LaViLa or EgoVLP layout)
    chunk_sec: int = 30
    layout: str = "lavila"
    video_path: str | None = None  # whole video in one file (EPIC)
    clips: tuple[FrameClip, ...] = ()  # trimmed clips (EGTEA cropped_clips)
    masks: tuple[FrameClip, ...] = ()  # grounding label maps
    handobj_dir: str | None = None
    box_clips: tuple[BoxClip, ...] = ()


@dataclass(frozen=True)
class MediaResult:
    uid: str
    num_frames: int
    visible: dict[str, tuple[int, ...]]  # grounding clip name → instance ids present in its masks


def run_media_job(job: MediaJob) -> MediaResult:
    """Render the job's video and write every file it asks for."""
    script, geo = job.script, job.geometry
    rng = np.random.default_rng(list(script.render_seed))
    tracks = compute_tracks(script, geo, rng)
    canvas = make_canvas(BACKGROUNDS[script.background], geo.canvas_shape, rng)
    frames, labels = render_video(script, tracks, geo, canvas)
    fps = script.fps

    if job.chunk_dir is not None:
        write_chunks(
            frames,
            fps,
            job.chunk_sec,
            lambda k: chunk_path(job.chunk_dir, script.uid, k, job.chunk_sec, job.layout),
        )
    if job.video_path is not None:
        write_mp4(job.video_path, frames, fps)
    for clip in job.clips:
        write_mp4(clip.path, frames[clip.start_frame : clip.end_frame], fps)

    visible: dict[str, tuple[int, ...]] = {}
    for clip in job.masks:
        part = labels[clip.start_frame : clip.end_frame]
        times = np.arange(clip.start_frame, clip.end_frame, dtype=np.float64) / fps
        write_npz(clip.path, {"labels": part, "frame_times": times})
        visible[clip.name] = tuple(int(i) for i in np.unique(part) if i != 0)

    if job.handobj_dir is not None and job.box_clips:
        per_chunk: dict[int, dict] = defaultdict(dict)
        for clip in job.box_clips:
            ids = clip_sample_frames(clip.clip_start, clip.clip_end, fps)
            key = seconds(clip.clip_start)
            per_chunk[int(clip.clip_start // HANDOBJ_CHUNK_SEC)][key] = clip_entry(
                labels, tracks.contact, ids, clip.active
            )
        for chunk, entries in sorted(per_chunk.items()):
            path = Path(job.handobj_dir) / script.uid / f"{chunk}.handobj.pkl"
            write_pickle(path, {k: entries[k] for k in sorted(entries)})
    return MediaResult(script.uid, script.num_frames, visible)
