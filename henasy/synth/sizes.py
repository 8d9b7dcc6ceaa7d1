"""Dataset sizes of the synthetic generator: ``tiny`` (tests), ``small`` (default), ``medium``.

``tiny`` is a handful of short videos that generate in a few seconds; ``small`` has 2,200 EgoClip
training clips so a tiny model learns in minutes; ``medium`` is about five times larger. EgoMCQ asks each
evaluation clip at most once, so ``mcq_items`` needs as many evaluation clips: ``small`` has 20 × 45 clips for
800 items (400 inter-, 400 intra-video: a 95 % CI of about ±4.5 points at 30 % accuracy, where 200 gave ±6.5),
``medium`` 50 × 45 for 2,000 (1,000 per type). Frames are
128×96 at 15 fps; Ego4D videos are stored in 30-s chunks so clips cross chunk boundaries. ``video_size="real"``
(``bench data synth --video-size real``, for loader benchmarks, not the default) renders the same dataset at
EPIC-KITCHENS-100 ``video_ht256px`` geometry, 456×256 at 30 fps, with Ego4D chunk lengths: 300-s chunks
in the LaViLa layout, 600-s chunks in the EgoVLP layout (LaViLa stores its chunks at short side 288,
EgoVLP at 256; here every video is 456×256).

EgoClip training clips come from many short videos (200 × 11 in ``small``) rather than few long ones:
a synthetic scene keeps the same objects and background for the whole video, so with few videos a
model can match narrations to videos by memorising each scene instead of learning to recognise the
objects in it, and nothing transfers to unseen scenes. Measured with lavila_tiny (patch 8) after 2,000
steps: 50 × 44 videos left zero-shot EK100-MIR mAP at its random level (13.2 vs 11.7 untrained), 200 × 11
lifted it to 19.7 (untrained 12.2), 400 × 6 to 18.3. (Which of a scene's objects the hand acts on is still
beyond these tiny runs: within-video noun retrieval on training clips stays near chance.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class SizeSpec:
    """Counts as (videos, actions per video); EGTEA counts are sessions."""

    name: str
    ego_train: tuple[int, int]
    ego_eval: tuple[int, int]
    ek_train: tuple[int, int]
    ek_val: tuple[int, int]
    egtea_train: tuple[int, int]
    egtea_eval: tuple[int, int]
    held_out_pairs: int
    mcq_items: int
    grounding_clips: int
    nlq_queries_per_clip: int
    width: int = 128
    height: int = 96
    fps: int = 15
    chunk_sec: int = 30

    @property
    def num_videos(self) -> int:
        return sum(
            n
            for n, _ in (
                self.ego_train,
                self.ego_eval,
                self.ek_train,
                self.ek_val,
                self.egtea_train,
                self.egtea_eval,
            )
        )


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(
        "tiny",
        ego_train=(4, 13),
        ego_eval=(5, 13),
        ek_train=(2, 10),
        ek_val=(1, 12),
        egtea_train=(2, 8),
        egtea_eval=(1, 10),
        held_out_pairs=4,
        mcq_items=20,
        grounding_clips=10,
        nlq_queries_per_clip=4,
    ),
    "small": SizeSpec(
        "small",
        ego_train=(200, 11),
        ego_eval=(20, 45),
        ek_train=(16, 30),
        ek_val=(6, 30),
        egtea_train=(10, 20),
        egtea_eval=(6, 20),
        held_out_pairs=8,
        mcq_items=800,
        grounding_clips=150,
        nlq_queries_per_clip=8,
    ),
    "medium": SizeSpec(
        "medium",
        ego_train=(1000, 11),
        ego_eval=(50, 45),
        ek_train=(40, 40),
        ek_val=(12, 40),
        egtea_train=(24, 25),
        egtea_eval=(12, 25),
        held_out_pairs=10,
        mcq_items=2000,
        grounding_clips=400,
        nlq_queries_per_clip=10,
    ),
}


VIDEO_SIZES = ("synth", "real")
REAL_VIDEO = {"width": 456, "height": 256, "fps": 30}  # EK100 video_ht256px
REAL_CHUNK_SEC = {"lavila": 300, "egovlp": 600}  # LaViLa / EgoVLP Ego4D chunk lengths


def with_video_size(spec: SizeSpec, video_size: str, layout: str = "lavila") -> SizeSpec:
    """``spec`` as is (``"synth"``: 128×96, 15 fps, 30-s chunks) or at real geometry (``"real"``)."""
    if video_size == "synth":
        return spec
    if video_size != "real":
        raise ValueError(f"unknown video size {video_size!r}; choose one of {', '.join(VIDEO_SIZES)}")
    return replace(spec, **REAL_VIDEO, chunk_sec=REAL_CHUNK_SEC.get(layout, 300))
