"""asyncio helpers for the services' long-running loops.

Python 3.11's ``asyncio.wait_for`` loses a cancellation that races with its result (fixed in
3.12): a loop that waits for its wake-up event with it can miss the cancellation meant to stop
it, and the service's stop then waits forever (the alert service's flush loop did). Loops wait
with :func:`wait_event`, which is built on ``asyncio.timeout`` and keeps every cancellation, and
loops around libraries that still use ``wait_for`` (aiokafka) check :func:`raise_if_cancelled`.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set, at most ``timeout_s``; True if it was set."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


def raise_if_cancelled() -> None:
    """Honour a cancellation of the current task that a library's ``wait_for`` swallowed."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
