"""Builds contract v1 *input* events (CloudEvents structured JSON, raw ids) as a source sends them.

Ids are UUIDs derived from the seed and a running count, so a run is reproducible event for event
(and a replay of the same run is recognised by ingest as duplicates).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

_NAMESPACE = uuid.UUID("6f1c1a52-3b1e-4f4e-9a57-5b0f3c1d2e77")
CENTS = Decimal("0.01")


def money(value: Decimal) -> str:
    return str(value.quantize(CENTS))


class EventFactory:
    """Stamps envelopes: deterministic ids, source, event time at the institution's offset."""

    def __init__(self, seed: int, source: str, utc_offset_hours: int) -> None:
        self._seed = seed
        self._count = 0
        self.source = source
        self.tz = timezone(timedelta(hours=utc_offset_hours))

    def at(self, day: date, seconds: int) -> datetime:
        """``day`` at 00:00 local time plus ``seconds``."""
        return datetime.combine(day, time(), self.tz) + timedelta(seconds=seconds)

    def event(self, type_: str, when: datetime, data: dict[str, Any]) -> dict[str, Any]:
        self._count += 1
        event_id = uuid.uuid5(_NAMESPACE, f"{self._seed}/{self._count}")
        return {
            "specversion": "1.0",
            "id": str(event_id),
            "source": self.source,
            "type": type_,
            "time": when.isoformat(),
            "datacontenttype": "application/json",
            "data": {k: v for k, v in data.items() if v is not None},
        }


def bucket(days_past_due: int) -> tuple[int | None, int | None]:
    """Fineract-style arrears ranges: 1-30, 31-60, 61-90, 91-180, 181+ (none when current)."""
    for low, high in ((1, 30), (31, 60), (61, 90), (91, 180)):
        if low <= days_past_due <= high:
            return low, high
    return (181, None) if days_past_due > 180 else (None, None)
