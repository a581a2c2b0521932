"""Dependencies shared by the routers: the running service, the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.auth import CallerDep, Principal, require
from services.common.lifecycle import started
from services.indicators.service import IndicatorService


def service(request: Request, _: CallerDep) -> IndicatorService:
    return started(request, "indicators", IndicatorService)


ServiceDep = Annotated[IndicatorService, Depends(service)]
ReaderDep = Annotated[Principal, Depends(require("indicators:read"))]
