"""Dependencies shared by the routers: the running service, the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.alerts.service import AlertService
from services.common.auth import CallerDep, Principal, require
from services.common.lifecycle import started


def service(request: Request, _: CallerDep) -> AlertService:
    return started(request, "alerts", AlertService)


ServiceDep = Annotated[AlertService, Depends(service)]
ReaderDep = Annotated[Principal, Depends(require("alerts:read"))]
AckerDep = Annotated[Principal, Depends(require("alerts:ack"))]
