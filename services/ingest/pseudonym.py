"""Keyed pseudonyms for people's identifiers, and source scoping for other identifiers.

A raw client, officer or staff id never leaves ingest: it becomes ``HMAC-SHA256(pepper,
source ␟ kind ␟ raw id)``. The pepper is a secret setting, so nobody without it can recompute a
pseudonym from a guessed id (ids are small numbers or national ids: a plain hash would be
reversed by enumeration). The source is part of the message, so two systems' client ``1042`` are
two people; the kind keeps client ``17`` and officer ``17`` apart.

Loan, transaction and complaint ids are not about a person; they are only scoped by the source
(``fineract:default:2001``), as the contract asks (docs/architecture.md), so they stay
traceable. The contract forbids ``:`` in such an id (``SourceId``), so ``<source>:<id>`` cannot
collide: source ``fineract`` with id ``default:2001`` is refused instead of becoming source
``fineract:default``'s loan ``2001``.
"""

from __future__ import annotations

import hmac

from contracts.events import SCOPE_SEPARATOR, SCOPED_FIELDS
from services.ingest.errors import IngestError

__all__ = ["MAX_SCOPED_LENGTH", "PSEUDONYMISED", "SCOPED_FIELDS", "Pseudonymiser", "scoped"]

_SEP = "\x1f"

# canonical field -> (input field, kind mixed into the HMAC)
PSEUDONYMISED: dict[str, tuple[str, str]] = {
    "client_pid": ("client_id", "client"),
    "officer_pid": ("officer_id", "officer"),
}
MAX_SCOPED_LENGTH = 200
MIN_PEPPER_BYTES = 32  # as long as the HMAC-SHA256 output: no shorter key to guess
# the value of deploy/secrets/pseudonym_pepper.example, which an operator may copy as it is
PLACEHOLDER_PEPPERS = frozenset({"change-me-to-32-random-bytes-in-hex"})


class Pseudonymiser:
    """Turns raw identifiers into pseudonyms; one per process, keyed by the pepper."""

    def __init__(self, pepper: str) -> None:
        problem = pepper_problem(pepper)
        if problem:
            raise IngestError(problem)
        self._key = pepper.encode()

    def pseudonym(self, source: str, kind: str, raw_id: str) -> str:
        message = f"{source}{_SEP}{kind}{_SEP}{raw_id}".encode()
        return hmac.digest(self._key, message, "sha256").hex()  # one-shot: C all the way

    def client_pid(self, source: str, client_id: str) -> str:
        return self.pseudonym(source, "client", client_id)

    def officer_pid(self, source: str, officer_id: str) -> str:
        return self.pseudonym(source, "officer", officer_id)


def pepper_problem(pepper: str | None) -> str | None:
    """Why ``pepper`` cannot key pseudonyms (None when it can)."""
    advice = "make one with `openssl rand -hex 32`"
    if not pepper:
        return f"PSEUDONYM_PEPPER is not set: ingest cannot pseudonymise without it; {advice}"
    if pepper.strip() in PLACEHOLDER_PEPPERS:
        return f"PSEUDONYM_PEPPER is the shipped placeholder, known to everyone; {advice}"
    if len(pepper.encode()) < MIN_PEPPER_BYTES:
        return f"PSEUDONYM_PEPPER is shorter than {MIN_PEPPER_BYTES} bytes; {advice}"
    return None


def scoped(source: str, raw_id: str) -> str:
    """``source:raw``; ``raw`` has no ``:`` (``SourceId``), so the pair can be read back."""
    return f"{source}{SCOPE_SEPARATOR}{raw_id}"
