"""`spm demo` wipes its data directory at start, but only one it created (a marker file)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import typer

from spm.demodir import MARKER, fresh_demo_dir
from tests.alerts.servers import REPO

SPM = str(REPO / ".venv" / "bin" / "spm")


def test_demo_data_dir_dot_refuses_and_deletes_nothing(tmp_path: Path) -> None:
    """Before: `spm demo --data-dir .` deleted the current directory."""
    (tmp_path / "thesis.tex").write_text("years of work")
    result = subprocess.run(
        [SPM, "demo", "--data-dir", ".", "--port", "1"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "is not empty and `spm demo` did not create it" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


def test_a_new_directory_gets_the_marker_and_is_wiped_next_time(tmp_path: Path) -> None:
    data = tmp_path / "var" / "demo"
    fresh_demo_dir(data)
    assert [p.name for p in data.iterdir()] == [MARKER]
    (data / "spm-ingest.db").write_text("old run")
    (data / "sub").mkdir()
    fresh_demo_dir(data)
    assert [p.name for p in data.iterdir()] == [MARKER]


def test_an_empty_directory_is_adopted(tmp_path: Path) -> None:
    fresh_demo_dir(tmp_path)
    assert (tmp_path / MARKER).is_file()


@pytest.mark.parametrize("kind", ["file", "symlink to a demo directory"])
def test_what_is_not_a_plain_directory_is_refused(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("keep me")
    else:
        real = tmp_path / "real"
        fresh_demo_dir(real)
        (real / "data").write_text("keep me")
        target.symlink_to(real)
    with pytest.raises(typer.BadParameter, match="not a directory `spm demo` created"):
        fresh_demo_dir(target)
    assert (target.read_text() if kind == "file" else (target / "data").read_text()) == "keep me"
