"""Fixtures of the reliability tests: a broker and a PostgreSQL of the test's own, to stop."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra import PrivateInfra


@pytest.fixture
def private() -> Iterator[PrivateInfra]:
    run_dir = Path(tempfile.mkdtemp(prefix="tests-infra-"))  # not under pytest's tmp dirs,
    run_dir.chmod(0o755)  # which the unprivileged postgres user cannot traverse
    infra = PrivateInfra(run_dir)
    try:
        yield infra
    finally:
        infra.close()
        shutil.rmtree(run_dir, ignore_errors=True)
