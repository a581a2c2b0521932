"""The ingest service's exception base."""

from __future__ import annotations

from services.common.errors import SpmError, Unavailable


class IngestError(SpmError):
    """Something ingest cannot do (a request it cannot serve: 400); ``retriable`` says whether
    a retry may succeed."""

    status = 400


class PublishFailed(IngestError, Unavailable):
    """Kafka (or the dedup store) did not take the events; nothing was reported accepted:
    503 + Retry-After. ``dependency`` says which: ``kafka`` or ``database``."""

    status = 503
    retriable = True
    dependency = "kafka"
