"""Error types that carry enough context for a researcher to fix their input.

Every error raised on bad user input (a data file, a checkpoint, a spec, a command-line value) is a
``BenchError``; the command line prints its message without a traceback and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path


class BenchError(Exception):
    """An error caused by the user's input; the message says what is wrong and how to fix it."""


class DataFormatError(BenchError):
    """A malformed annotation file: names the file, the line (1-based) and column, and what was expected."""

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.expected = expected
        self._message = message
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        text = f"{where}: {message}"
        if expected is not None:
            text += f" (expected {expected})"
        super().__init__(text)

    def __reduce__(self) -> tuple:  # picklable, so DataLoader workers can re-raise it intact
        return (
            _rebuild_data_format_error,
            (self.path, self._message, self.line, self.column, self.expected),
        )


class VideoReadError(BenchError):
    """A video file that is missing, unreadable or shorter than the annotation implies."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = str(path)
        self._message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self) -> tuple:  # picklable, so DataLoader workers can re-raise it intact
        return (VideoReadError, (self.path, self._message))


class CheckpointError(BenchError):
    """A checkpoint that does not match the model it is loaded into."""


def _rebuild_data_format_error(
    path: str, message: str, line: int | None, column: str | None, expected: str | None
) -> DataFormatError:
    return DataFormatError(path, message, line=line, column=column, expected=expected)
