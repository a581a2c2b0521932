"""The cursor codec: round trips, and refuses what it did not issue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.common import paging


def test_round_trip_keeps_instant_and_id() -> None:
    for when in [datetime(2025, 6, 1, 8, 0, 0, 123456, tzinfo=UTC),
                 datetime(2025, 6, 1, 8, tzinfo=timezone(timedelta(hours=3)))]:  # fmt: skip
        cursor = paging.encode((when, "id/with+odd=chars"))
        assert "=" not in cursor and "/" not in cursor and "+" not in cursor
        assert paging.decode(cursor) == (when, "id/with+odd=chars")
    assert paging.decode(paging.encode((7, "o1"))) == (7, "o1")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        "WzEsMl0",
        "WyJ4IiwieSJd",
        "WyIyMDI1LTA2LTAxVDA4OjAwIiwieCJd",
        "WzEuNSwieCJd",
        "W3RydWUsIngiXQ",
    ],
)
def test_refuses_foreign_cursors(cursor: str) -> None:
    with pytest.raises(paging.CursorError):
        paging.decode(cursor)
