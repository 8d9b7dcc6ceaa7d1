"""HelpingHands' rephrased captions: ``lavila_rephrased.pth`` → up to 5 positive captions per EgoClip clip.

HelpingHands trains its EgoNCE with LaViLa-rephrased narrations as extra positives of each clip
(Chuhanxx/helping_hand_for_egocentric_videos @ 46a3852 : data_loader/EgoClip_EgoMCQ_dataset.py
``_get_rephrased_caption``, run/train.py ``prepare_data``). The file, as HelpingHands ships it, is a
``torch.save``'d dict::

    {video_uid: {str(int(clip_start // 600)): {round(start, 1): [(text, ...), ...]}}}

— 600-s chunk ids as strings, clip starts at 0.1-s resolution as float keys, and a list of captions per
start whose first element (``line[0]``) is the text. For a clip the lookup, as the official one, takes
every start key in ``torch.arange(cs - 0.5, cs + 0.5, 0.1)`` around ``cs = round(clip_start, 1)`` (LaViLa's
and EgoClip's start times differ slightly), each found list overwriting slots ``0..len-1`` of 5 caption
slots, and keeps the result only when slot 0 equals the EgoClip caption; otherwise the clip has its caption
alone. Empty slots are padding (HelpingHands masks them in the loss).

The file is read with ``torch.load(weights_only=True)``: plain dicts, lists, tuples, strings and numbers
load; anything else is refused with a ``DataFormatError``. Structure is checked down to the chunk level when
loading and per clip when a clip's captions are looked up.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from henasy.core.errors import DataFormatError

FILE_NAME = "lavila_rephrased.pth"  # <root>/ego4d/lavila_rephrased.pth (henasy/data/layout.py)
CHUNK_SEC = 600  # HH EgoClip_EgoMCQ: clip_id = str(int(video_sec[0] // 600))
MAX_CAPTIONS = 5  # HH: rephrased_texts = [''] * 5 (the caption and up to 4 paraphrases)
WINDOW_SEC = 0.5  # HH: start keys searched in [cs - 0.5, cs + 0.5) at 0.1-s steps
FORMAT = (
    "a torch.save'd dict video_uid -> {chunk id string -> {clip start (float, 0.1 s) -> list of "
    "(caption, ...) tuples or lists}} holding only plain Python types"
)


class RephrasedCaptions:
    """The loaded ``lavila_rephrased.pth``; ``captions(video_uid, clip_start, caption)`` gives a clip's positives."""

    def __init__(self, table: Mapping[str, Mapping[str, Mapping[float, Any]]], path: str | Path) -> None:
        self.table = table
        self.path = Path(path)

    def __len__(self) -> int:
        return len(self.table)

    def _text(self, line: Any, where: str) -> str:
        if isinstance(line, (list, tuple)) and line and isinstance(line[0], str):
            return line[0]
        raise DataFormatError(
            self.path,
            f"{where}: a caption entry is {type(line).__name__} {str(line)[:60]!r}",
            expected="a tuple or list whose first element is the caption string (HelpingHands' line[0])",
        )

    def slots(self, video_uid: str, clip_start: float) -> list[str]:
        """The 5 caption slots the official lookup fills for a clip ('' = empty), before the caption check."""
        start = max(float(clip_start), 0.0)  # HH _get_video_path: video_sec[0] = max(clip_start, 0)
        out = [""] * MAX_CAPTIONS
        chunk_id = str(int(start // CHUNK_SEC))
        chunk = self.table.get(video_uid, {}).get(chunk_id)
        if chunk is None:
            return out
        centre = round(start, 1)
        # float32 steps and rounding exactly as HH (torch.arange on Python floats), so the same keys are probed
        for probe in torch.arange(centre - WINDOW_SEC, centre + WINDOW_SEC, 0.1).tolist():
            key = round(probe, 1)
            lines = chunk.get(key)
            if lines is None:
                continue
            where = f"[{video_uid!r}][{chunk_id!r}][{key}]"
            if not isinstance(lines, (list, tuple)):
                raise DataFormatError(
                    self.path,
                    f"{where} is {type(lines).__name__}",
                    expected="a list of (caption, ...) entries",
                )
            for j, line in enumerate(lines[:MAX_CAPTIONS]):
                out[j] = self._text(line, where)
        return out

    def captions(self, video_uid: str, clip_start: float, caption: str) -> list[str]:
        """A clip's positive captions: ``caption`` first, then its paraphrases (1 to 5 non-empty strings).

        The paraphrases are kept only when the file's first caption for the clip equals ``caption`` (HH: "if
        the first caption cannot be matched, we choose not use the rephrased captions").
        """
        found = self.slots(video_uid, clip_start)
        if found[0] != caption:
            return [caption]
        return [text for text in found if text]


def _check_mapping(value: Any, path: Path, where: str, keys: tuple[type, ...], key_name: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise DataFormatError(path, f"{where} is {type(value).__name__}, not a dict", expected=FORMAT)
    bad = next((k for k in value if not isinstance(k, keys) or isinstance(k, bool)), None)
    if bad is not None:
        raise DataFormatError(
            path, f"{where} has the key {bad!r} ({type(bad).__name__})", expected=f"{key_name} keys; {FORMAT}"
        )
    return value


def _unsafe_globals(path: Path) -> list[str]:
    """The globals ``weights_only`` refuses in ``path`` (empty when none or when it cannot tell)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # best effort: only words the error message
        return []


def load_rephrased(path: str | Path) -> RephrasedCaptions:
    """Read ``lavila_rephrased.pth`` safely (``torch.load(weights_only=True)``) and check its structure."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(
            path,
            "rephrased-caption file not found",
            expected=f"HelpingHands' {FILE_NAME}, or data.rephrased_captions=null to train without it",
        )
    try:
        table = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _unsafe_globals(path)
        if not refused:  # not a pickle torch can read at all (text, truncated file, ...)
            raise DataFormatError(
                path, f"not a readable torch.save file ({str(err).splitlines()[0][:120]})", expected=FORMAT
            ) from None
        raise DataFormatError(
            path,
            f"refused to unpickle {', '.join(refused)} (weights_only=True; nothing was executed)",
            expected=f"{FORMAT}; if you trust the file, re-save it with only those types",
        ) from None
    except Exception as err:  # truncated / not a torch file: many exception types
        raise DataFormatError(
            path, f"not a readable torch.save file ({type(err).__name__}: {err})", expected=FORMAT
        ) from None
    _check_mapping(table, path, "the file", (str,), "video_uid string")
    for uid, chunks in table.items():
        for chunk_id, starts in _check_mapping(chunks, path, f"[{uid!r}]", (str,), "chunk id string").items():
            _check_mapping(starts, path, f"[{uid!r}][{chunk_id!r}]", (int, float), "clip start number")
    return RephrasedCaptions(table, path)
