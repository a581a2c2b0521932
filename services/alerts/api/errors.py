"""Errors at the HTTP boundary, in the one shape of every API."""

from __future__ import annotations

from fastapi import Request, status
from fastapi.responses import JSONResponse, Response

from services.common.http import error_body


class ApiError(Exception):
    def __init__(self, status_code: int, field: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.field = field
        self.reason = reason


def not_found(field: str, what: str) -> ApiError:
    return ApiError(status.HTTP_404_NOT_FOUND, field, "not found", f"{what} not found")


async def api_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ApiError):
        raise exc
    return JSONResponse(error_body([(exc.field, exc.reason)], str(exc)), exc.status_code)
