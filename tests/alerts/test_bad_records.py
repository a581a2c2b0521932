"""Records on the alert service's input topics that are not valid events go to the dead-letter
topic with the reason; the consumers move on to the records after them."""

from __future__ import annotations

import asyncio

import pytest

from services.common.bus import Message, Record
from tests.alerts.harness import Harness, business_days, target

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CODE = "women_borrower_share"


async def _send_raw(h: Harness, loop: str, topic: str, value: bytes) -> None:
    delivery = await h.producer.send(Message(topic, value, b"k", (("ce_type", b"nonsense"),)))
    key = (f"{h.settings.alerts_group_id}-{loop}", delivery.topic, delivery.partition)
    h.ends[key] = max(h.ends.get(key, 0), delivery.offset + 1)


async def _dead(h: Harness, count: int) -> list[Record]:
    for _ in range(100):
        records = await h.bus.tail(h.settings.alerts_deadletter_topic, 10)
        if len(records) >= count:
            return records
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} dead letters")


async def test_invalid_records_are_dead_lettered_and_the_rest_applied(h: Harness) -> None:
    await _send_raw(h, "targets", h.settings.alerts_objectives_topic, b'{"target_id": 1}')
    await h.targets(target(for_days=0))
    await _send_raw(h, "indicators", h.settings.alerts_indicators_topic, b"\xff{not json")
    await h.values(business_days(1)[0], (CODE, "all", "0.55"))
    [alert] = await h.alerts("breach")
    assert alert["state"] == "firing"  # the target and the value after the bad records count

    dead = await _dead(h, 2)
    assert sorted(r.value or b"" for r in dead) == [b'{"target_id": 1}', b"\xff{not json"]
    for r in dead:
        assert r.header("error.source") == b"alerts"
        assert (r.header("error.reason") or b"").startswith(b"contract violation")
        assert r.header("ce_type") == b"nonsense"  # the original headers are kept
    topics = {r.header("error.topic") for r in dead}
    assert topics == {
        h.settings.alerts_objectives_topic.encode(),
        h.settings.alerts_indicators_topic.encode(),
    }
    assert {r.header("error.offset") for r in dead} == {b"0"}
