"""Comments and docs cite only what a reader can open: no documents outside the repository.

Allowed: the paper (§, Eq.), an upstream repository @ commit : file, or a file of this repository. Refused:
the project's private notes and reference folders, which are not part of the repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = (".py", ".md", ".yaml", ".toml", ".sh")
# Built from parts so that this file does not match itself.
UNOPENABLE = re.compile("|".join(["anchors" + "-", r"\banchors §", "notes" + "/", "shared" + "/"]))


def tracked_text_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in out if name.endswith(SUFFIXES) and (ROOT / name).is_file()]


def test_no_file_cites_a_document_outside_the_repository() -> None:
    files = tracked_text_files()
    assert len(files) > 50  # the walk found the repository
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if UNOPENABLE.search(line)
    ]
    assert not hits, (
        "cite the paper, an upstream repository @ commit : file, or a repository file:\n" + "\n".join(hits)
    )


MD_MENTION = re.compile(r"(?<![\w/.-])([\w./-]+\.md)\b")


def unknown_documents(text: str, known: set[str]) -> list[str]:
    """``*.md`` names in ``text`` that are no file of the repository (``README.md`` names any README)."""
    return [
        m
        for m in MD_MENTION.findall(text)
        if Path(m).name != "README.md" and not any(k == m or k.endswith("/" + m.lstrip("./")) for k in known)
    ]


def test_every_markdown_document_named_outside_the_tests_is_in_the_repository() -> None:
    files = tracked_text_files() + [ROOT / "scripts" / "slurm_local.sh", ROOT / ".ci" / "run"]
    known = {str(p.relative_to(ROOT)) for p in files}
    hits = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        if path.parts[len(ROOT.parts)] != "tests"
        for name in unknown_documents(path.read_text(encoding="utf-8"), known)
    ]
    assert not hits, "these documents are not in the repository:\n" + "\n".join(hits)


def test_the_markdown_check_catches_an_unknown_document() -> None:
    known = {"README.md", "tests/fixtures/epic100/README.md"}
    assert unknown_documents("see slurm" + "-local.md trap 4 and README.md", known) == ["slurm" + "-local.md"]
    assert unknown_documents("(fixtures/epic100/README.md)", known) == []


def test_the_pattern_catches_each_kind_of_reference() -> None:
    for text in (
        "anchors" + "-models §2.1",
        "(anchors " + "§2.4)",
        "see notes" + "/layout.md",
        "../shared" + "/x",
    ):
        assert UNOPENABLE.search(text), text
    assert not UNOPENABLE.search("YAML anchors and aliases; LaViLa @ 8002b5a : lavila/models/models.py")
