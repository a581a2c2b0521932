"""One lifecycle for every service: its background tasks under one supervisor, the bus it may
have opened, the same "not started" answer, the same shutdown order.

Each service's lifespan (``services/*/app.py``) starts its parts, then its loops under a
:class:`Supervisor`, and on the way out goes in this order:

1. routes answer 503 "not ready" (:class:`NotReady`): the service stops taking work;
2. the supervisor asks the loops that can finish their work to stop, waits for them at most
   their grace period, then cancels everything still running and waits until it ended;
3. producers, clients and senders stop; the database engine is disposed;
4. the bus is closed if, and only if, the service opened it (:class:`BusLease`): the embedded
   mode hands one bus to four services, and one of them closing it would stop the others.

The supervisor is not an ``asyncio.TaskGroup``: a task group cancels its owner when a task
fails, which inside a lifespan would take the server down from under in-flight requests. A loop
that fails here is logged and makes ``/readyz`` answer 503 (:meth:`Supervisor.running`), so the
orchestrator restarts the instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TypeVar

from fastapi import FastAPI, Request

from services.common.bus import Bus, create_bus
from services.common.errors import NotReady, SpmError
from services.common.settings import CommonSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
CANCEL_WAIT_S = 10.0
"""How long to wait between two cancellations of a task that has not ended (Python 3.11's
``wait_for`` in libraries can swallow one: services.common.aio). Long enough for a cancelled
loop's own clean-up (a consumer leaving its group, closing its connections): a second
cancellation in the middle of that would leave connections open."""


def started(request: Request, name: str, kind: type[T]) -> T:
    """``app.state.<name>`` once the service runs; :class:`NotReady` (503) before and after.

    The lifespan sets a state object when it started and clears it when it stops (ingest,
    objectives); a service object built with the app says so with its ``started`` attribute
    (indicators, alerts: tests start those without the lifespan)."""
    value = getattr(request.app.state, name, None)
    if not isinstance(value, kind) or not getattr(value, "started", True):
        raise NotReady(name)
    return value


@dataclass(frozen=True, slots=True)
class _Loop:
    task: asyncio.Task[Any]
    stop: Callable[[], None] | None
    grace_s: float


class Supervisor:
    """The background loops of one service instance: started one by one, stopped together."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._loops: list[_Loop] = []

    def start(
        self,
        loop: Coroutine[Any, Any, Any],
        name: str,
        *,
        stop: Callable[[], None] | None = None,
        grace_s: float = 0.0,
    ) -> asyncio.Task[Any]:
        """Run ``loop`` as a task; ``stop`` asks it to finish on its own within ``grace_s``
        (it is cancelled after that, or at once without ``stop``). A grace too short for the
        loop's own clean-up cancels it in the middle of that clean-up."""
        if stop is not None and grace_s <= 0:
            raise ValueError(f"{name}: a loop asked to stop needs a grace period to do so")
        task = asyncio.create_task(loop, name=name)
        task.add_done_callback(self._report)
        self._loops.append(_Loop(task, stop, grace_s))
        return task

    def _report(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            failure = task.exception()
            log.error("%s: the %s task stopped", self.service, task.get_name(), exc_info=failure)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter([loop.task for loop in self._loops])

    def running(self) -> bool:
        """Every loop is still running (readiness: a loop that ended means a broken instance)."""
        return all(not loop.task.done() for loop in self._loops)

    async def ready(self) -> bool:
        """:meth:`running` as a readiness check of the app factory."""
        return self.running()

    async def stop(self) -> None:
        """Ask, wait at most the grace periods, cancel the rest (a failure was logged when it
        happened)."""
        loops, self._loops = self._loops, []
        graceful = [loop for loop in reversed(loops) if loop.stop is not None]
        for loop in graceful:
            assert loop.stop is not None  # noqa: S101 - filtered above
            loop.stop()
        if graceful:
            await asyncio.wait([g.task for g in graceful], timeout=max(g.grace_s for g in graceful))
        pending = {loop.task for loop in loops if not loop.task.done()}
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_WAIT_S)


async def every(interval_s: float, job: Callable[[], Awaitable[object]], what: str) -> NoReturn:
    """Run ``job`` now and then every ``interval_s``, for ever; a failure (an :class:`SpmError`:
    the database down) is logged and the job tried again at the next interval (the purges)."""
    while True:
        try:
            await job()
        except SpmError as exc:
            log.warning("%s failed (retrying later): %s", what, exc)
        await asyncio.sleep(interval_s)


@dataclass(frozen=True, slots=True)
class BusLease:
    """The bus a service uses, and whether it opened it: it closes only a bus it opened."""

    bus: Bus
    opened: bool

    @classmethod
    def of(cls, settings: CommonSettings, bus: Bus | None) -> BusLease:
        """``bus`` as handed in (the embedded mode's, a test's), or one opened from settings."""
        return cls(bus, False) if bus is not None else cls(create_bus(settings), True)

    async def release(self) -> None:
        if self.opened:
            await self.bus.close()


class Startable(Protocol):
    """A service object that starts its parts and loops, and stops them in the order above."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def lifespan_of(
    service: Startable, lease: BusLease
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The lifespan of a service kept in an object (indicators, alerts): start it, stop it, then
    release the bus; a start that fails releases the bus too."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await service.start()
            try:
                yield
            finally:
                await service.stop()
        finally:
            await lease.release()

    return lifespan
