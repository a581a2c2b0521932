"""The pepper keys every pseudonym: the shipped placeholder and short values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.ingest.errors import IngestError
from services.ingest.pseudonym import Pseudonymiser

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "secrets" / "pseudonym_pepper.example"


def test_the_shipped_placeholder_is_refused() -> None:
    """Before: the example file's value, copied as it is, keyed every pseudonym."""
    with pytest.raises(IngestError, match="shipped placeholder"):
        Pseudonymiser(EXAMPLE.read_text())  # with its newline, as a secret file has it


@pytest.mark.parametrize("pepper", ["", "a" * 31, "é" * 15])  # é: 2 bytes, so 30 bytes
def test_under_32_bytes_is_refused(pepper: str) -> None:
    with pytest.raises(IngestError, match="PSEUDONYM_PEPPER"):
        Pseudonymiser(pepper)


def test_32_bytes_key_pseudonyms() -> None:
    assert len(Pseudonymiser("é" * 16).client_pid("core", "1")) == 64
