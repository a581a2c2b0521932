"""The repository stands on its own: no tracked file reads or links anything outside it.

A clone has no sibling workspace directory beside it and no development machine's home, and the
specification documents the project was built from are not part of it: the project's own
documentation is ``docs/``. Binary files are skipped (they cannot hold a path that is followed).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OUTSIDE = re.compile(
    r"\.\./+shared\b"  # the workspace's sibling directory
    r"|\bshared/(?:design|fixtures)\b"
    r"|(?<![\w.-])/(?:work|home|root|Users)/"  # a development machine's absolute paths
    r"|[A-Za-z]:\\\\Users\\\\"
    r"|\b(?:ARCHITECTURE|INDICATORS|FINERACT|CONVENTIONS)\.md\b"  # the specification's files
)


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def test_no_tracked_file_refers_outside_the_repository() -> None:
    files = tracked_files()
    assert ROOT / "Makefile" in files  # git sees the checkout
    found = []
    for path in files:
        # this file names what it looks for; a file deleted in the work tree has nothing to read
        if path == Path(__file__).resolve() or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        for n, line in enumerate(data.decode(errors="replace").splitlines(), start=1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}")
    assert not found, "references outside the repository:\n" + "\n".join(found)


def test_the_pattern_catches_what_it_is_for() -> None:
    for line in (
        "see ../" + "shared/design/" + "INDICATORS.md",
        'Path("/wor' + 'k/shared/fixtures/fineract")',
        "open('/home/dev/spm/data.csv')",
        "the blueprint (ARCHITECTURE.md)",
    ):
        assert OUTSIDE.search(line), line
    for line in ("docs/indicators.md", "/var/lib/spm", "/usr/lib/postgresql", "a shared bus"):
        assert not OUTSIDE.search(line), line
