"""The one exception tree of every service and the one error body of every API.

Like httpx's ``_exceptions.py``: the whole tree in one module. Each class carries the HTTP status
it answers and whether trying again may succeed (``retriable``); the shared app factory
(services.common.http) registers one handler that renders any of them in the one error shape,
so a service raises and never builds an error response itself. Infrastructure adapters
(services.common.db, services.common.bus) translate their outages into :class:`Unavailable`
where the infrastructure is reached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from starlette.responses import JSONResponse


class SpmError(Exception):
    """Base of our errors. ``status`` is the HTTP answer when one reaches a route (500 for an
    error no request should see); ``retriable`` says whether trying again later may succeed;
    ``dependency`` names the infrastructure that failed (``database``, ``kafka``), if any."""

    status: int = 500
    retriable: bool = False
    dependency: str | None = None

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable

    def fields(self) -> list[tuple[str, str]]:
        """Each field at fault and why (the ``errors`` of the body)."""
        return []

    def headers(self) -> Mapping[str, str]:
        """Headers the answer carries besides ``Retry-After`` (an ``ETag``, a challenge)."""
        return {}


class _Field(Protocol):
    """A field at fault and why (contracts.envelope.FieldError)."""

    @property
    def field(self) -> str: ...

    @property
    def reason(self) -> str: ...


class Refused(SpmError):
    """A request the API refuses because of one field: ``status`` with the field and why."""

    status = 400

    def __init__(self, field: str, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.field, self.reason = field, reason

    def fields(self) -> list[tuple[str, str]]:
        return [(self.field, self.reason)]


class Invalid(SpmError):
    """422: the request (or one event of it) is not acceptable; ``errors`` are every field at
    fault and why."""

    status = 422

    def __init__(self, errors: Sequence[_Field], message: str = "validation failed") -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors) or message)
        self.errors: Sequence[_Field] = errors
        self.message = message

    def fields(self) -> list[tuple[str, str]]:
        return [(e.field, e.reason) for e in self.errors]


class Unprocessable(Refused):
    """422 for one field."""

    status = 422


class Forbidden(Refused):
    """403: the caller is known but may not do this."""

    status = 403


class NotFound(Refused):
    """404: what the request names does not exist."""

    status = 404


class Conflict(Refused):
    """409: the request contradicts the current state (a stale version)."""

    status = 409

    def __init__(
        self, field: str, reason: str, message: str | None = None, *, etag: str | None = None
    ) -> None:
        super().__init__(field, reason, message)
        self.etag = etag

    def headers(self) -> Mapping[str, str]:
        return {"ETag": f'"{self.etag}"'} if self.etag is not None else {}


class PreconditionRequired(Refused):
    """428: a change must say which version it changes (``If-Match``)."""

    status = 428


class Unavailable(SpmError):
    """503 + ``Retry-After``: ``dependency`` (the database, Kafka, the service itself while it
    starts) cannot serve now; trying again later may succeed."""

    status = 503
    retriable = True

    def __init__(
        self, message: str, *, dependency: str | None = None, retriable: bool | None = None
    ) -> None:
        super().__init__(message, retriable=retriable)
        if dependency is not None:
            self.dependency = dependency

    def fields(self) -> list[tuple[str, str]]:
        return [(self.dependency or "service", "unavailable")]


class NotReady(Unavailable):
    """The service has not started (or is stopping): its state is not there to serve."""

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} is not ready; retry later", dependency="service")


def error_body(errors: Sequence[tuple[str, str]], message: str) -> dict[str, Any]:
    """The one error shape of every API: a message plus each field and why."""
    return {"detail": message, "errors": [{"field": f, "reason": r} for f, r in errors]}


def error_message(exc: SpmError) -> str:
    """The ``detail`` of an error's answer: an outage says what is down and that a retry may
    help (the database's own message may hold statement text, never shown)."""
    if isinstance(exc, Unavailable) and not isinstance(exc, NotReady):
        return f"{exc.dependency} is unavailable; retry later"
    if isinstance(exc, Invalid):
        return exc.message
    return str(exc)


def error_response(exc: SpmError, retry_after_s: int = 5) -> JSONResponse:
    """The answer to ``exc``: its status, the one shape, its headers; every 503 says when to
    try again (``retry_after_s``, HTTP_RETRY_AFTER_S)."""
    headers = dict(exc.headers())
    if exc.status == 503:
        headers["Retry-After"] = str(retry_after_s)
    return JSONResponse(error_body(exc.fields(), error_message(exc)), exc.status, headers)
