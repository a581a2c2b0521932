"""Dependencies shared by the routers: the session factory, the service, the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.auth import Principal, require
from services.common.db import Sessions
from services.common.errors import NotReady
from services.objectives.service import ObjectivesService


class Runtime:
    """What the lifespan sets up and the handlers use (``app.state.runtime``): sessions that
    translate database errors themselves (a committed write wakes the outbox relay)."""

    def __init__(self, sessions: Sessions, service: ObjectivesService) -> None:
        self.sessions = sessions
        self.service = service
        self.read = sessions.read
        self.write = sessions.write


def runtime(request: Request) -> Runtime:
    value = getattr(request.app.state, "runtime", None)
    if not isinstance(value, Runtime):
        raise NotReady("objectives")
    return value


RuntimeDep = Annotated[Runtime, Depends(runtime)]
ReaderDep = Annotated[Principal, Depends(require("objectives:read"))]
WriterDep = Annotated[Principal, Depends(require("objectives:write"))]
