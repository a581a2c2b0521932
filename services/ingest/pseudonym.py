"""Keyed pseudonyms for people's identifiers, and source scoping for other identifiers.

A raw client, officer or staff id never leaves ingest: it becomes ``HMAC-SHA256(pepper,
source ␟ kind ␟ raw id)``. The pepper is a secret setting, so nobody without it can recompute a
pseudonym from a guessed id (ids are small numbers or national ids: a plain hash would be
reversed by enumeration). The source is part of the message, so two systems' client ``1042`` are
two people; the kind keeps client ``17`` and officer ``17`` apart.

Loan, transaction and complaint ids are not about a person; they are only scoped by the source
(``fineract:default:2001``), as the contract asks (docs/architecture.md), so they stay traceable.
"""

from __future__ import annotations

import hmac

from services.ingest.errors import IngestError

_SEP = "\x1f"

# canonical field -> (input field, kind mixed into the HMAC)
PSEUDONYMISED: dict[str, tuple[str, str]] = {
    "client_pid": ("client_id", "client"),
    "officer_pid": ("officer_id", "officer"),
}
SCOPED_FIELDS = ("loan_id", "transaction_id", "complaint_id")
MAX_SCOPED_LENGTH = 200


class Pseudonymiser:
    """Turns raw identifiers into pseudonyms; one per process, keyed by the pepper."""

    def __init__(self, pepper: str) -> None:
        if len(pepper) < 16:
            raise IngestError("PSEUDONYM_PEPPER must be set to a secret of at least 16 characters")
        self._key = pepper.encode()

    def pseudonym(self, source: str, kind: str, raw_id: str) -> str:
        message = f"{source}{_SEP}{kind}{_SEP}{raw_id}".encode()
        return hmac.digest(self._key, message, "sha256").hex()  # one-shot: C all the way

    def client_pid(self, source: str, client_id: str) -> str:
        return self.pseudonym(source, "client", client_id)

    def officer_pid(self, source: str, officer_id: str) -> str:
        return self.pseudonym(source, "officer", officer_id)


def scoped(source: str, raw_id: str) -> str:
    """``source:raw`` unless the id already carries the source's prefix."""
    prefix = f"{source}:"
    return raw_id if raw_id.startswith(prefix) else prefix + raw_id
