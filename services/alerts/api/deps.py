"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.alerts.runtime import AlertService
from services.common.auth import Principal, require
from services.common.errors import NotReady


def service(request: Request) -> AlertService:
    value = getattr(request.app.state, "alerts", None)
    if not isinstance(value, AlertService):
        raise NotReady("alerts")
    return value


ServiceDep = Annotated[AlertService, Depends(service)]
ReaderDep = Annotated[Principal, Depends(require("alerts:read"))]
AckerDep = Annotated[Principal, Depends(require("alerts:ack"))]
