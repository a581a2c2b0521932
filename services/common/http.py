"""FastAPI app factory shared by the services: health, readiness, errors, tracing, auth, limits.

Every service gets the same behaviour at the HTTP boundary: ``/healthz`` (liveness) and
``/readyz`` (its dependencies answer), validation errors as 4xx that name the field and the
reason, a server span per request that continues the caller's ``traceparent``, and the request
guard (services.common.guard) in front of everything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from services.common.auth import KeyRing, Principal, Unauthenticated, authenticate
from services.common.errors import SpmError, error_response
from services.common.errors import error_body as error_body  # re-exported: the routers' import
from services.common.guard import RequestGuard, RequestLimits
from services.common.metrics import HttpMetricsMiddleware, metrics_endpoint
from services.common.scope import ScopePolicy
from services.common.settings import CommonSettings

ReadinessCheck = Callable[[], Awaitable[bool]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_propagator = TraceContextTextMapPropagator()


def _field_path(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "(body)"


async def _validation_error(request: Request, exc: Exception) -> Response:
    details = exc.errors() if isinstance(exc, RequestValidationError) else []
    errors = [(_field_path(e["loc"]), e["msg"]) for e in details]
    return JSONResponse(
        error_body(errors, "request validation failed"),
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _spm_error(request: Request, exc: Exception) -> Response:
    """Every :class:`SpmError` a route lets through: its own status in the one shape; a 503
    with ``Retry-After`` from HTTP_RETRY_AFTER_S."""
    assert isinstance(exc, SpmError)  # noqa: S101 - registered for SpmError only
    return error_response(exc, getattr(request.app.state, "retry_after_s", 5))


# the field an HTTP refusal of the framework (no such route, method, a missing credential)
# is about
_HTTP_FIELDS = {401: "Authorization", 403: "Authorization", 404: "path", 405: "method"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's and FastAPI's own refusals (404 no route, 405, a missing or wrong credential,
    a missing scope) in the one shape instead of their bare ``{"detail"}``."""
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    reason = exc.reason if isinstance(exc, Unauthenticated) else str(exc.detail)
    field = _HTTP_FIELDS.get(exc.status_code, "(request)")
    return JSONResponse(error_body([(field, reason)], reason), exc.status_code, exc.headers)


def use_error_shape(app: FastAPI, retry_after_s: int = 5) -> None:
    """The one handler set: every refusal and outage in the one error shape. Every service
    gets it from :func:`create_service_app`; the hosts that are not services (the embedded
    mode's, the dashboard's) call it themselves."""
    app.state.retry_after_s = retry_after_s
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(SpmError, _spm_error)


class _TracingMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: Any, service: str) -> None:
        super().__init__(app)
        self._tracer = trace.get_tracer(f"spm.{service}.http")

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        context = _propagator.extract(dict(request.headers))
        name = f"{request.method} {request.url.path}"
        with self._tracer.start_as_current_span(
            name, context=context, kind=trace.SpanKind.SERVER
        ) as span:
            response = await call_next(request)
            span.set_attribute("http.response.status_code", response.status_code)
            return response


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    settings: CommonSettings,
    routers: Sequence[APIRouter],
    lifespan: Lifespan | None = None,
    readiness: Sequence[ReadinessCheck] = (),
    keyring: KeyRing | None = None,
    limits: RequestLimits | None = None,
) -> FastAPI:
    """A service's app; ``keyring`` and ``limits`` are those of ``settings`` unless given, the
    scope policy always is."""
    keyring = KeyRing.of(settings) if keyring is None else keyring
    limits = RequestLimits.of(settings) if limits is None else limits
    app = FastAPI(title=title, description=description, version="1.0", lifespan=lifespan)
    app.state.keyring = keyring
    app.state.scope_policy = ScopePolicy.of(settings)
    app.add_middleware(_TracingMiddleware, service=service)
    # added last = outermost: refusals cost no span, no task, no body read
    app.add_middleware(RequestGuard, keyring=keyring, limits=limits)
    # outermost of all: refused requests are counted too
    app.add_middleware(HttpMetricsMiddleware, service=service)
    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)  # Prometheus
    use_error_shape(app, limits.retry_after_s)

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: the dependencies answer")
    async def readyz() -> Response:
        ready = all([await check() for check in readiness])
        return JSONResponse(
            {"status": "ready" if ready else "unavailable"},
            status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    app.include_router(me_router)
    for router in routers:
        app.include_router(router)
    _document_error_shape(app)
    return app


class Me(BaseModel):
    """Who the caller is and what they may do: the dashboard hides what the server would refuse."""

    name: str
    subject: str | None
    roles: list[str]
    scopes: list[str]
    branches: list[str] | None = Field(description="null: no branch limit")
    institution_level_visible: bool


me_router = APIRouter(prefix="/v1", tags=["identity"])


@me_router.get("/me", response_model=Me, summary="The caller: name, roles, branches, scopes")
async def me(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Me:
    """Any authenticated caller may ask (no scope needed): it only tells them about themselves."""
    policy = getattr(request.app.state, "scope_policy", None) or ScopePolicy()
    return Me(
        name=principal.name,
        subject=principal.subject,
        roles=sorted(principal.roles),
        scopes=sorted(principal.scopes),
        branches=None if principal.branches is None else sorted(principal.branches),
        institution_level_visible=policy.institution_level_visible,
    )


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail", "errors"],
    "properties": {
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}
"""The error shape as a JSON schema (also for routes outside the services that document it)."""


def _document_error_shape(app: FastAPI) -> None:
    """FastAPI documents its own 422 body (``HTTPValidationError``); ours is the one error
    shape of :func:`error_body`, so the OpenAPI document says that (schemathesis checks it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ERROR_SCHEMA
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
