"""Containment of paths built from annotation fields: no annotation value may lead outside its root.

Annotation files name videos, boxes and masks by ids (``video_uid``, ``clip_uid``, EPIC ``participant_id`` /
``video_id``, EGTEA ``clip_id``, grounding ``mask_file``) that the loaders join onto a folder of the dataset
root. A downloaded annotation file is untrusted input, so two checks apply:

* at parse time (``henasy.data.parsing``), every id that becomes a path must be a *safe file name*
  (``path_component_problem``: no ``/`` or ``\\``, not ``.`` or ``..``, no NUL or control characters), and
  a relative file field such as ``mask_file`` a *safe relative path* (``relative_path_problem``: safe names
  joined by ``/``, not absolute). The error then names the file, line or JSON key path, and the field;
* as defence in depth, where a path is finally built (the video sources of ``henasy.data.video``, the
  hand-object reader, the feature cache), ``inside`` checks that it stays under its root.

The containment check is *lexical* (``os.path.normpath``), not ``Path.resolve()``: datasets on clusters are
routinely symlinked (``video_chunks -> /datasets/ego4d/...``), and a symlink inside a root is the dataset
owner's choice, not something an annotation value can create. What an annotation value cannot do is climb
out with ``..`` or name an absolute path, and that is what these checks refuse.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SAFE_NAME_HELP = "a plain file or folder name: no '/', '\\', '..', NUL or control characters"
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def path_component_problem(value: str) -> str | None:
    """Why ``value`` is not a safe single path component (None when it is one)."""
    if not value:
        return "it is empty"
    if "\x00" in value:
        return "it contains a NUL character"
    if _CONTROL_RE.search(value):
        return "it contains a control character"
    if "/" in value or "\\" in value:
        if value[0] in "/\\":
            return "it is an absolute path, not a name"
        if ".." in re.split(r"[/\\]", value):
            return "it is a path that climbs out of its folder with '..'"
        return "it is a path, not a name (contains '/' or '\\')"
    if value == "..":
        return "'..' climbs to the parent folder"
    if value == ".":
        return "'.' is the folder itself, not a name in it"
    return None


def relative_path_problem(value: str) -> str | None:
    """Why ``value`` is not a safe relative path of safe names joined by ``/`` (None when it is one)."""
    if not value:
        return "it is empty"
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        return "it is an absolute path"
    for part in value.split("/"):
        problem = path_component_problem(part)
        if problem is not None:
            return f"component {part!r}: {problem}"
    return None


def inside(root: str | Path, path: str | Path) -> bool:
    """Whether ``path`` lies strictly inside ``root`` once ``..`` and ``.`` are removed (lexically)."""
    root_s, path_s = os.fspath(root), os.fspath(path)
    if "\x00" in path_s:
        return False
    base = os.path.normpath(os.path.abspath(root_s))
    full = os.path.normpath(os.path.abspath(path_s))
    return full != base and full.startswith(base.rstrip(os.sep) + os.sep)
