"""Tests of the user-facing error types (henasy/core/errors.py)."""

from __future__ import annotations


def test_data_errors_survive_pickling() -> None:
    # DataLoader workers send exceptions to the main process by pickling them.
    import pickle

    from henasy.core.errors import DataFormatError, VideoReadError

    err = DataFormatError("a.csv", "bad cell", line=3, column="tag_verb", expected="a list")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.line == 3 and back.column == "tag_verb"
    video = pickle.loads(pickle.dumps(VideoReadError("v.mp4", "cannot decode")))
    assert str(video) == "v.mp4: cannot decode" and video.path == "v.mp4"
