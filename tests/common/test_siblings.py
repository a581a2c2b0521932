"""Worker processes of one instance start their consumers together (services.common.siblings)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event as EventType

import pytest

from services.common import siblings


@pytest.fixture(autouse=True)
def no_barrier() -> Iterator[None]:
    """Each test shares its own barrier; none is left for the next."""
    yield
    siblings._barrier = None


def _arrive(
    barrier: siblings.Barrier, go: EventType, returned: multiprocessing.Queue[float]
) -> None:
    siblings.share(barrier)
    go.wait(60)
    asyncio.run(siblings.together())
    returned.put(time.time())


def test_workers_return_once_the_last_one_arrives() -> None:
    """Two spawned processes, as `spm serve --workers 2` starts them: the one that arrives first
    waits at the barrier until the other arrives."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    returned: multiprocessing.Queue[float] = context.Queue()
    now, later = context.Event(), context.Event()
    now.set()
    workers = [context.Process(target=_arrive, args=(barrier, go, returned)) for go in (now, later)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 60
        while barrier.n_waiting < 1:  # the first is waiting at the barrier
            assert time.monotonic() < deadline, "the first worker never reached the barrier"
            time.sleep(0.05)
        arrived = time.time()
        later.set()
        times = [returned.get(timeout=60) for _ in workers]
    finally:
        later.set()
        for worker in workers:
            worker.join(timeout=30)
    assert min(times) >= arrived


async def test_a_process_without_siblings_starts_at_once() -> None:
    started = time.monotonic()
    await siblings.together()
    assert time.monotonic() - started < 0.5


async def test_a_worker_whose_sibling_never_comes_starts_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(siblings, "WAIT_S", 0.3)
    barrier = threading.Barrier(2)
    siblings.share(barrier)
    with caplog.at_level(logging.WARNING, logger=siblings.__name__):
        await siblings.together()
    assert barrier.broken
    assert "did not start within" in caplog.text
    started = time.monotonic()
    await siblings.together()  # a restarted consumer does not wait again
    assert time.monotonic() - started < 0.2


async def test_a_worker_stopped_while_waiting_releases_its_siblings() -> None:
    """A worker shut down before its siblings arrived must not leave them waiting WAIT_S."""
    barrier = threading.Barrier(3)
    siblings.share(barrier)
    waiting = asyncio.ensure_future(siblings.together())
    sibling = asyncio.ensure_future(asyncio.to_thread(_wait_broken, barrier))
    while barrier.n_waiting < 2:  # noqa: ASYNC110 - a thread barrier exposes only this count
        await asyncio.sleep(0.01)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await asyncio.wait_for(sibling, 5) is True


def _wait_broken(barrier: threading.Barrier) -> bool:
    try:
        barrier.wait(timeout=30)
    except threading.BrokenBarrierError:
        return True
    return False
