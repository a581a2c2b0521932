"""Dependencies shared by the routers: the session factory, the service, the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.auth import CallerDep, Principal, require
from services.common.db import Sessions
from services.common.lifecycle import started
from services.objectives.store import ObjectivesService


class ObjectivesState:
    """What the lifespan sets up and the handlers use (``app.state.objectives``, None when
    stopped): sessions that translate database errors themselves (a committed write wakes the
    outbox relay)."""

    def __init__(self, sessions: Sessions, service: ObjectivesService) -> None:
        self.sessions = sessions
        self.service = service
        self.read = sessions.read
        self.write = sessions.write


def state_of(request: Request, _: CallerDep) -> ObjectivesState:
    return started(request, "objectives", ObjectivesState)


StateDep = Annotated[ObjectivesState, Depends(state_of)]
ReaderDep = Annotated[Principal, Depends(require("objectives:read"))]
WriterDep = Annotated[Principal, Depends(require("objectives:write"))]
