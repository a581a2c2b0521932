"""Dependencies shared by the routers: what the lifespan set up, the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.common.auth import Principal, require
from services.common.lifecycle import started
from services.ingest.config import IngestSettings
from services.ingest.crm import CrmMapper
from services.ingest.pipeline import IngestPipeline


@dataclass(slots=True)
class IngestState:
    """What the lifespan sets up and the handlers use (``app.state.ingest``, None when stopped)."""

    settings: IngestSettings
    pipeline: IngestPipeline
    crm: CrmMapper


def state_of(request: Request) -> IngestState:
    return started(request, "ingest", IngestState)


StateDep = Annotated[IngestState, Depends(state_of)]
WriterDep = Annotated[Principal, Depends(require("ingest:write"))]
