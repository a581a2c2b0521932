"""What the routers need from the running app, set up by the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from services.common.errors import NotReady
from services.ingest.config import IngestSettings
from services.ingest.crm import CrmMapper
from services.ingest.pipeline import IngestPipeline


@dataclass(slots=True)
class IngestState:
    settings: IngestSettings
    pipeline: IngestPipeline
    crm: CrmMapper


def state_of(request: Request) -> IngestState:
    state = getattr(request.app.state, "ingest", None)
    if not isinstance(state, IngestState):
        raise NotReady("ingest")
    return state
