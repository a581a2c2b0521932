"""Dependencies shared by the routers: the session factory, the service, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.auth import Principal, require
from services.common.db import database_errors
from services.common.lifecycle import started
from services.common.outbox import OutboxRelay
from services.objectives.service import ObjectivesService


class ObjectivesState:
    """What the lifespan sets up and the handlers use (``app.state.objectives``, None when
    stopped)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        service: ObjectivesService,
        relay: OutboxRelay | None,
    ) -> None:
        self.sessions = sessions
        self.service = service
        self.relay = relay

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        with database_errors():
            async with self.sessions() as session:
                yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction, committed on success; the relay is woken after the commit."""
        with database_errors():
            async with self.sessions() as session, session.begin():
                yield session
        if self.relay is not None:
            self.relay.notify()


def state_of(request: Request) -> ObjectivesState:
    return started(request, "objectives", ObjectivesState)


StateDep = Annotated[ObjectivesState, Depends(state_of)]
ReaderDep = Annotated[Principal, Depends(require("objectives:read"))]
WriterDep = Annotated[Principal, Depends(require("objectives:write"))]
