"""The ingest service's exception base."""

from __future__ import annotations

from services.common.errors import SpmError


class IngestError(SpmError):
    """Something ingest cannot do; ``retriable`` says whether a retry may succeed."""


class PublishFailed(IngestError):
    """Kafka (or the dedup store) did not take the events; nothing was reported accepted.
    ``dependency`` says which: ``kafka`` or ``database``."""

    retriable = True
    dependency: str = "kafka"

    def __init__(self, message: str, *, dependency: str = "kafka") -> None:
        super().__init__(message)
        self.dependency = dependency
