"""The dead-letter form of a consumed record: the record as it came, on the dead-letter topic,
with why and where from in ``error.*`` headers (a record dead-lettered twice keeps the latest)."""

from __future__ import annotations

from services.common.bus.base import Message, Record

MAX_REASON = 1000


def dead_letter(record: Record, reason: str, *, service: str, topic: str) -> Message:
    """``reason`` must not carry personal data (past ingest, payloads hold none)."""
    headers = tuple(h for h in record.headers if not h[0].startswith("error.")) + (
        ("error.reason", reason[:MAX_REASON].encode()),
        ("error.source", service.encode()),
        ("error.topic", record.topic.encode()),
        ("error.partition", str(record.partition).encode()),
        ("error.offset", str(record.offset).encode()),
    )
    return Message(topic, record.value, record.key, headers)
