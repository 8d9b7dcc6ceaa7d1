"""Ground-truth hand/object boxes in the HelpingHands / 100DOH pickle layout, read off the label maps.

Layout: ``hand_object/<video_uid>/<int(clip_start // 600)>.handobj.pkl``, a dict keyed
by ``round(clip_start, 3)`` → ``{"info": {"height", "width"}, 0..3: {"hand_dets", "obj_dets"}}`` for the 4
segment-midpoint frames of the clip (LaViLa ``get_frame_ids`` without jitter, Ego4D frame rule
``end = start + max(int(duration·fps), 4)``). Rows follow the 100DOH detector
(``ddshan/hand_object_detector`` demo output): ``x1 y1 x2 y2 score contact_state offset_magnitude
offset_dx offset_dy lr`` as float32, in pixels of the stored frame; contact state 3 = portable object,
0 = none; the offset points from the hand to the object it holds (magnitude / 10000 as in 100DOH); lr is
0 for left, 1 for right. Objects carry the same 10 columns with zero extras; an object held in the frame
scores 0.97, one acted on in the clip 0.9, any other visible entity 0.5, hands 0.99.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from henasy.data.sampling import clip_frame_range, segment_frame_ids
from henasy.synth.world import HAND_IDS

HANDOBJ_CHUNK_SEC = 600
NUM_FRAMES = 4
MIN_PIXELS = 4  # smaller visible slivers are not "detected"


def clip_sample_frames(
    clip_start: float, clip_end: float, fps: int, num_frames: int = NUM_FRAMES
) -> list[int]:
    """The frames a LaViLa-style Ego4D loader samples from ``[clip_start, clip_end]`` seconds."""
    start, end = clip_frame_range(clip_start, clip_end, fps, num_frames, rule="duration")
    return segment_frame_ids(start, end, num_frames)


def box_of(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight box (x1, y1, x2, y2) in pixel edges of a boolean (H, W) mask, or None if too small."""
    if int(mask.sum()) < MIN_PIXELS:
        return None
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)


def frame_detections(
    labels: np.ndarray, contact: dict[int, int], active: Sequence[int]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(hand_dets, obj_dets) float32 (N, 10) or None of one (H, W) label map.

    ``contact`` maps a hand id to the entity id it holds in this frame (0 if none); ``active`` lists the
    entity ids acted on in the clip.
    """
    ids = [int(i) for i in np.unique(labels) if i != 0]
    entity_boxes = {i: box_of(labels == i) for i in ids if i not in HAND_IDS.values()}
    hands, objects = [], []
    for lr, name in enumerate(("left", "right")):
        box = box_of(labels == HAND_IDS[name]) if HAND_IDS[name] in ids else None
        if box is None:
            continue
        held = contact.get(HAND_IDS[name], 0)
        state, mag, dx, dy = 0.0, 0.0, 0.0, 0.0
        target = entity_boxes.get(held)
        if held and target is not None:
            hx, hy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
            ox, oy = 0.5 * (target[0] + target[2]), 0.5 * (target[1] + target[3])
            dist = float(np.hypot(ox - hx, oy - hy))
            state, mag = 3.0, dist / 10000.0
            if dist > 0:
                dx, dy = (ox - hx) / dist, (oy - hy) / dist
        hands.append([*box, 0.99, state, mag, dx, dy, float(lr)])
    held_ids = {v for v in contact.values() if v}
    for entity_id, box in sorted(entity_boxes.items()):
        if box is None:
            continue
        score = 0.97 if entity_id in held_ids else 0.9 if entity_id in active else 0.5
        objects.append([*box, score, 0.0, 0.0, 0.0, 0.0, 0.0])
    as_array = lambda rows: np.asarray(rows, dtype=np.float32) if rows else None  # noqa: E731
    return as_array(hands), as_array(objects)


def clip_entry(
    labels: np.ndarray, contact: np.ndarray, frame_ids: Sequence[int], active: Sequence[int]
) -> dict:
    """The pickle value of one clip: ``info`` plus frames 0..3 (``labels`` (T, H, W), ``contact`` (2, T))."""
    T, H, W = labels.shape
    entry: dict = {"info": {"height": int(H), "width": int(W)}}
    for n, f in enumerate(frame_ids):
        f = min(max(int(f), 0), T - 1)
        held = {HAND_IDS["left"]: int(contact[0, f]), HAND_IDS["right"]: int(contact[1, f])}
        hand_dets, obj_dets = frame_detections(labels[f], held, active)
        entry[n] = {"hand_dets": hand_dets, "obj_dets": obj_dets}
    return entry
