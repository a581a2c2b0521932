"""A loop that waits for its wake-up event with ``wait_event`` stops when cancelled, even when the
event is set in the same moment (Python 3.11's ``wait_for`` loses that cancellation: a service's
stop then waited forever)."""

from __future__ import annotations

import asyncio

import pytest

from services.common.aio import wait_event


async def _wake_up_loop(event: asyncio.Event) -> None:
    while True:
        await wait_event(event, 10)
        event.clear()


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_wake_up_racing_with_the_cancellation_does_not_keep_the_loop_alive(
    turns: int,
) -> None:
    event = asyncio.Event()
    task = asyncio.create_task(_wake_up_loop(event))
    await asyncio.sleep(0.01)
    event.set()
    for _ in range(turns):  # the wake-up gets this many turns of the loop before the cancel
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert task in done and task.cancelled()


async def test_wait_event_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True
