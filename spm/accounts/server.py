"""``spm serve dashboard``: the web app, the session endpoints and the services behind one origin.

::

    browser ──cookie──▶ SessionBridge ──Bearer JWT──▶ ReverseProxy ──▶ ingest/indicators/…
                           │ (other paths)
                           ▼
                        host app: /dashboard/, /auth/*, /.well-known/jwks.json, /healthz, /readyz

A person signs in with a local account or through the institution's identity provider
(:mod:`spm.accounts.oidc`); either way the session lives here and the browser holds its cookie.

The services trust this server's tokens when it is one of their ``OIDC_ISSUERS`` (see
:func:`spm.accounts.config.DashboardSettings.trusted_issuer`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI, status
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.auth import KeyRing, Unauthenticated, unauthenticated
from services.common.guard import RequestGuard, RequestLimits
from services.common.http import use_error_shape
from services.common.identity.jwks import publish_in_process
from services.common.identity.jwt import TokenVerifier
from services.common.identity.settings import TrustedIssuer
from spm.accounts.bridge import SessionBridge
from spm.accounts.config import JWKS_PATH, DashboardSettings
from spm.accounts.issuer import TokenIssuer, load_or_create_key
from spm.accounts.oidc import OidcClient
from spm.accounts.proxy import proxies
from spm.accounts.routes import OPEN_PATHS, accounts_router
from spm.accounts.store import AccountStore
from spm.dashboard import dashboard_router
from spm.embedded import ROUTES, PathDispatcher
from spm.report.router import report_router

API_PREFIXES: tuple[str, ...] = (
    *(p for ps in ROUTES.values() for p in ps),
    "/v1/demo",
    "/v1/report",  # the board report, built here from the services read with the person's token
)


def is_api_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in API_PREFIXES)


@dataclass
class Accounts:
    """The store and the issuer, once the app has started (the store needs the event loop)."""

    settings: DashboardSettings
    issuer: TokenIssuer
    store: AccountStore | None = None
    oidc: OidcClient | None = None
    """The identity provider's sign-in, when ``DASHBOARD_OIDC_ISSUER`` is set."""
    ready_checks: list[Callable[[], Awaitable[bool]]] = field(default_factory=list)

    @classmethod
    def of(cls, settings: DashboardSettings, *, in_process: bool = False) -> Accounts:
        key = load_or_create_key(Path(settings.dashboard_signing_key_file))
        issuer = TokenIssuer(
            key, settings.issuer, settings.dashboard_token_audience, settings.dashboard_token_ttl_s
        )
        if in_process:
            publish_in_process(issuer.issuer + JWKS_PATH, issuer.jwks())
        return cls(settings, issuer)

    def opened(self) -> AccountStore:
        if self.store is None:
            raise RuntimeError("the accounts store is not open yet")
        return self.store

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.store = await AccountStore.open(self.settings)
        try:
            yield
        finally:
            await self.store.close()
            self.store = None

    def bridge(self, app: ASGIApp) -> SessionBridge:
        return SessionBridge(
            app, lambda: self.store, lambda: self.issuer, is_api_path, lambda: self.oidc
        )

    async def ready(self) -> bool:
        store = self.store
        if store is None or not await store.ping():
            return False
        results = await asyncio.gather(*(check() for check in self.ready_checks))
        return all(results)


def readiness_response(ready: bool) -> Response:
    return JSONResponse(
        {"status": "ready" if ready else "unavailable"},
        status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
    )


def _service_ready(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            response = await client.get(url + "/readyz", timeout=5.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    return check


@dataclass
class DashboardServer:
    app: SessionBridge
    """What to serve (its lifespan, the host's, opens the accounts database)."""
    host: FastAPI
    """The routes of its own: page, sign-in, JWKS, health."""
    accounts: Accounts


def create_dashboard_app(settings: DashboardSettings) -> SessionBridge:
    """The dashboard server's ASGI app."""
    return build_dashboard(settings).app


def own_tokens(settings: DashboardSettings) -> KeyRing:
    """The host's key ring for the routes it serves itself (the board report): this server's own
    tokens (a local account's session), checked with its key published in-process, so they
    need no request to its own JWKS endpoint; and the identity provider's access tokens when
    people sign in through it (the session bridge forwards theirs)."""
    issuers = [TrustedIssuer.model_validate(settings.trusted_issuer())]
    algorithms = {"ES256"}
    provider = settings.oidc_provider()
    if provider is not None:
        issuers.append(provider)
        algorithms |= set(settings.oidc_algorithms)
    verifier = TokenVerifier(
        issuers, algorithms=sorted(algorithms), leeway_s=settings.oidc_leeway_s
    )
    return KeyRing([], verifier)


def build_dashboard(settings: DashboardSettings) -> DashboardServer:
    accounts = Accounts.of(settings, in_process=True)
    urls: Mapping[str, str] = settings.service_urls()
    timeout = httpx.Timeout(settings.dashboard_proxy_timeout_s, connect=5.0)
    client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
    accounts.ready_checks.extend(_service_ready(client, url) for url in urls.values())
    provider = settings.oidc_provider()
    if provider is not None:
        accounts.oidc = OidcClient(settings, provider, client, accounts.issuer)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with accounts.running():
            try:
                yield
            finally:
                await client.aclose()

    host = FastAPI(title="SPM Monitor dashboard", lifespan=lifespan, docs_url=None, redoc_url=None)
    host.include_router(dashboard_router(prefix="/dashboard", title=settings.dashboard_title))
    use_error_shape(host)
    host.add_exception_handler(Unauthenticated, unauthenticated)  # the report's 401
    host.include_router(
        accounts_router(
            accounts.opened,
            lambda: accounts.issuer,
            accounts.oidc,
            accounts.settings.dashboard_login_rate_limit,
        )
    )

    @host.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @host.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @host.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        return readiness_response(await accounts.ready())

    upstream = proxies(client, urls, settings.http_max_body_bytes)
    routes = [(prefix, upstream[name]) for name, prefixes in ROUTES.items() for prefix in prefixes]
    # the board report reads the services through the same proxies, with the caller's token
    host.include_router(report_router(lambda: PathDispatcher(routes, _not_found)))
    limits = RequestLimits.of(settings, open_paths=OPEN_PATHS)
    host.state.keyring = own_tokens(settings)
    host.add_middleware(RequestGuard, keyring=host.state.keyring, limits=limits)
    return DashboardServer(accounts.bridge(PathDispatcher(routes, host)), host, accounts)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """What the report's reader gets for a path no service serves (none it asks for)."""
    await JSONResponse({"detail": "not found"}, status_code=404)(scope, receive, send)
