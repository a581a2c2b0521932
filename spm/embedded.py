"""The embedded mode: all four services in one process, on the in-process bus and SQLite.

Each service keeps its own app, tables (one SQLite file per service) and consumer groups; they
share one ``MemoryBus`` exactly as they would share a Kafka cluster. One port serves every API
(their paths are disjoint) and the staff dashboard.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
from fastapi import FastAPI, status
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.auth import KeyRing, Unauthenticated, unauthenticated
from services.common.bus import MemoryBus
from services.common.guard import RequestGuard, RequestLimits
from services.common.http import use_error_shape
from services.common.metrics import metrics_endpoint
from services.common.scope import OutOfScope, out_of_scope_handler
from services.common.settings import CommonSettings

# Which service answers which path prefix (all APIs share one origin in the embedded mode).
ROUTES: dict[str, tuple[str, ...]] = {
    "ingest": ("/v1/events", "/v1/sources"),
    "indicators": ("/v1/indicators", "/v1/catalog", "/v1/me"),  # /v1/me: every service has it
    "objectives": ("/v1/objectives", "/v1/targets"),
    "alerts": ("/v1/alerts", "/v1/silences", "/v1/notifications", "/v1/actions"),
}


class PathDispatcher:
    """An ASGI app that hands each request to the service owning its path, unchanged."""

    def __init__(self, routes: Sequence[tuple[str, ASGIApp]], default: ASGIApp) -> None:
        self._routes = sorted(routes, key=lambda r: len(r[0]), reverse=True)
        self._default = default

    def app_for(self, path: str) -> ASGIApp:
        for prefix, app in self._routes:
            if path == prefix or path.startswith(prefix + "/"):
                return app
        return self._default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            await self.app_for(scope["path"])(scope, receive, send)
        else:
            await self._default(scope, receive, send)


AppFactory = Callable[..., FastAPI]


def service_factories() -> dict[str, AppFactory]:
    from services.alerts.app import create_app as alerts_app
    from services.indicators.app import create_app as indicators_app
    from services.ingest.app import create_app as ingest_app
    from services.objectives.app import create_app as objectives_app

    return {
        "ingest": ingest_app,
        "indicators": indicators_app,
        "objectives": objectives_app,
        "alerts": alerts_app,
    }


def build_embedded_app(
    settings: CommonSettings,
    *,
    bus: MemoryBus | None = None,
    settings_for: Mapping[str, CommonSettings] | None = None,
    options_for: Mapping[str, Mapping[str, Any]] | None = None,
    extra_routers: Sequence[Any] = (),
    extra_lifespans: Sequence[Callable[[], contextlib.AbstractAsyncContextManager[Any]]] = (),
    open_paths: frozenset[str] = frozenset(),
    readiness: Sequence[Callable[[], Awaitable[bool]]] = (),
) -> tuple[PathDispatcher, FastAPI, dict[str, FastAPI]]:
    """Compose the four services on one bus; returns (asgi app, host app, service apps).

    ``settings_for`` gives a service its own settings (default: ``settings``); ``options_for``
    more keyword arguments of its factory (tests give the alert service a manual ``clock``).
    ``extra_lifespans`` are entered after the services started, in order, when the app starts
    (the sequence is read then, so callers may still add to a list they passed).
    ``open_paths`` may take a body without a key (the dashboard's sign-in); ``readiness`` are
    checks of ``/readyz`` besides every service's own.
    """
    shared_bus = bus or MemoryBus()
    own = settings_for or {}
    options = options_for or {}
    services = {
        name: factory(own.get(name, settings), bus=shared_bus, **options.get(name, {}))
        for name, factory in service_factories().items()
    }

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for service_app in services.values():
                await stack.enter_async_context(service_app.router.lifespan_context(service_app))
            for extra in extra_lifespans:
                await stack.enter_async_context(extra())
            yield

    host = FastAPI(title="SPM Monitor (embedded)", lifespan=lifespan, docs_url=None)
    host.state.keyring = KeyRing.of(settings)
    host.add_exception_handler(Unauthenticated, unauthenticated)
    use_error_shape(host)
    # the service apps have their own guard; this one covers the dashboard and extra routers
    limits = RequestLimits.of(settings, open_paths=open_paths)
    host.add_middleware(RequestGuard, keyring=host.state.keyring, limits=limits)

    @host.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @host.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        """Ready when every service's own /readyz is and the extra checks pass."""
        ready = all([await _ready(app) for app in services.values()])
        ready = ready and all([await check() for check in readiness])
        return JSONResponse(
            {"status": "ready" if ready else "unavailable"},
            status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    host.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)  # the one registry
    host.add_exception_handler(OutOfScope, out_of_scope_handler)
    for router in extra_routers:
        host.include_router(router)
    routes = [(prefix, services[name]) for name, prefixes in ROUTES.items() for prefix in prefixes]
    return PathDispatcher(routes, host), host, services


async def _ready(app: FastAPI) -> bool:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as client:
        return (await client.get("/readyz")).status_code == 200
