"""The demo's data directory: wiped at each start, so only ever one the demo made itself.

``spm demo --data-dir .`` used to delete the current directory. Now the demo leaves a marker file
in a directory it creates (or adopts while empty), and wipes only a directory with that marker.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

MARKER = ".spm-demo"
MARKER_TEXT = "Created by `spm demo`, which deletes this directory at its next start.\n"


def fresh_demo_dir(path: Path) -> None:
    """Make ``path`` an empty demo directory (with its marker), or refuse with why."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise typer.BadParameter(
            f"{path} is not a directory `spm demo` created; give it a new directory",
            param_hint="--data-dir",
        )
    if path.exists():
        if (path / MARKER).is_file():
            shutil.rmtree(path)
        elif any(path.iterdir()):
            raise typer.BadParameter(
                f"{path} is not empty and `spm demo` did not create it (no {MARKER} file); "
                "the demo wipes its data directory at each start, so give it a new or empty one",
                param_hint="--data-dir",
            )
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text(MARKER_TEXT)
