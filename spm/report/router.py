"""``GET /v1/report?month=YYYY-MM&format=pdf|xlsx``: the board report on demand, for the
dashboard's download button. Mounted beside the dashboard, in the embedded mode (``spm dev``/
``spm demo``; the APIs in-process) and by ``spm serve dashboard`` (the APIs through its proxy);
either way it reads them with the caller's own credential, so a caller sees in the report only
what the APIs would show it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp

from services.common.auth import Principal, require
from services.common.errors import error_body
from services.common.http import ERROR_SCHEMA
from spm.report.build import MEDIA, build
from spm.report.data import month_range
from spm.report.fetch import ApiReader, ReportError


def _refuse(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse(error_body([(field, reason)], reason), status_code=status)


def report_router(apis: Callable[[], ASGIApp]) -> APIRouter:
    """``apis()`` returns the ASGI app serving every API (the embedded mode's dispatcher)."""
    router = APIRouter(prefix="/v1", tags=["report"])

    @router.get(
        "/report",
        summary="The board's monthly report as a PDF or an XLSX file",
        response_class=Response,
        responses={
            200: {
                "description": "The report file (an attachment)",
                "content": {
                    media: {"schema": {"type": "string", "format": "binary"}}
                    for media in MEDIA.values()
                },
            },
            422: {
                "description": "A malformed month or format, or a month without figures yet",
                "content": {"application/json": {"schema": ERROR_SCHEMA}},
            },
        },
    )
    async def report(
        request: Request,
        _: Annotated[Principal, Depends(require("indicators:read"))],
        month: str = "",
        format: str = "pdf",  # noqa: A002 - the query parameter's name
    ) -> Response:
        try:
            month_range(month)
        except ValueError:
            return _refuse(422, "query.month", f"{month[:20]!r} is not of the form YYYY-MM")
        if format not in MEDIA:
            return _refuse(422, "query.format", f"{format[:20]!r} is not pdf or xlsx")
        headers = {"Authorization": request.headers.get("authorization", "")}
        transport = httpx.ASGITransport(app=apis())
        async with httpx.AsyncClient(
            transport=transport, base_url="http://spm.internal", headers=headers, timeout=300
        ) as client:
            try:
                built = await build(
                    ApiReader(client), month, ["pdf" if format == "pdf" else "xlsx"]
                )
            except ReportError as exc:
                return _refuse(422, "query.month", str(exc))
        return Response(
            built.files[format],
            media_type=MEDIA[format],
            headers={
                "Content-Disposition": f'attachment; filename="{built.name(format)}"',
                "Cache-Control": "no-store",
            },
        )

    return router
