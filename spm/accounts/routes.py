"""The session endpoints: sign in with a local account, who am I, sign out; and the JWKS.

``POST /auth/login`` takes JSON only (a cross-site HTML form cannot send it, so nobody can sign
a browser in to an account of theirs); it answers the same 401 for an unknown user and a wrong
password, and 423 while the account is locked. The cookie is HttpOnly, SameSite=Strict, and
Secure when the page is served over https. ``POST /auth/logout`` needs the session's CSRF token
like every other state-changing request, and deletes the session on the server; a session
opened through the identity provider (``/auth/oidc/login`` → ``/auth/oidc/callback``, see
:mod:`spm.accounts.oidc`) ends the provider's session too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from services.common.errors import error_body
from services.common.identity.roles import scopes_for
from services.common.ratelimit import KeyRateLimit
from spm.accounts.bridge import COOKIE, cookie_value, csrf_ok
from spm.accounts.config import JWKS_PATH
from spm.accounts.issuer import TokenIssuer
from spm.accounts.oidc import (
    CALLBACK_PATH,
    FLOW_COOKIE,
    FLOW_PATH,
    FLOW_TTL_S,
    OidcClient,
    OidcError,
)
from spm.accounts.store import AccountStore, Locked, Session

OPEN_PATHS = frozenset({"/auth/login", "/auth/logout"})
"""Paths whose bodies come without an API key (the request guard lets them through)."""
PUBLIC_PATHS = frozenset(
    {"/auth/config", "/auth/login", "/auth/oidc/login", CALLBACK_PATH, JWKS_PATH}
)
"""Answered to anyone: what a sign-in page and the services need before anyone is signed in."""
SESSION_PATHS = frozenset({"/auth/session", "/auth/logout"})
"""Answered 401 without a live session cookie, whatever API key comes with the request."""


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def _error(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse(error_body([(field, reason)], reason), status_code=status)


def _session_body(session: Session) -> dict[str, Any]:
    user = session.user
    return {
        "user": user.public(),
        "subject": user.subject,
        "scopes": sorted(scopes_for((user.role,))),
        "csrf_token": session.csrf,
        "expires_at": session.expires_at.isoformat(),
    }


def accounts_router(
    store: Callable[[], AccountStore],
    issuer: Callable[[], TokenIssuer],
    oidc: OidcClient | None,
    login_rate_limit: str,
) -> APIRouter:
    """``login_rate_limit`` bounds sign-in attempts per client address: each costs an argon2
    hash (tens of milliseconds of CPU), so a flood of them must not take the server down, and
    guessing passwords across many accounts is slowed too (the lock-out counts per account)."""
    router = APIRouter(include_in_schema=False)
    attempts = KeyRateLimit(login_rate_limit)

    @router.get("/auth/config")
    async def config() -> dict[str, Any]:
        """Which ways of signing in the page offers."""
        return {"local": True, "oidc": {"name": oidc.name} if oidc else None}

    @router.post("/auth/login")
    async def login(body: Login, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = attempts.hit(client)
        if wait is not None:
            response = _error(429, "username", "too many sign-in attempts; try again later")
            response.headers["Retry-After"] = str(wait)
            return response
        try:
            user = await store().login(body.username, body.password)
        except Locked:
            return _error(423, "username", "this account is locked; try again later")
        if user is None:
            return _error(401, "password", "wrong username or password")
        session_id, session = await store().open_session(user)
        response = JSONResponse(_session_body(session), headers={"Cache-Control": "no-store"})
        _set_session_cookie(response, request, session_id)
        return response

    @router.get("/auth/oidc/login")
    async def oidc_login(request: Request) -> Response:
        """To the identity provider's sign-in page, with a new flow (state, nonce, PKCE)."""
        if oidc is None:
            return _error(404, "oidc", "no identity provider is configured")
        try:
            url, flow = await oidc.start()
        except OidcError as exc:
            return _error(502, exc.field, exc.reason)
        response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            FLOW_COOKIE,
            flow,
            max_age=FLOW_TTL_S,
            path=FLOW_PATH,
            secure=_secure(request),
            httponly=True,
            samesite="lax",  # the provider's redirect back is a cross-site navigation
        )
        return response

    @router.get(CALLBACK_PATH)
    async def oidc_callback(request: Request) -> Response:
        """Back from the provider: the code becomes a session, the tokens stay here."""
        if oidc is None:
            return _error(404, "oidc", "no identity provider is configured")
        query = request.query_params
        if "error" in query:
            return _error(401, "oidc", f"the identity provider said: {query['error'][:100]}")
        try:
            flow = oidc.flow(request.cookies.get(FLOW_COOKIE), query.get("state"))
            code = query.get("code")
            if not code:
                raise OidcError("code", "missing")
            user, tokens = await oidc.finish(code, flow)
        except OidcError as exc:
            status = 502 if exc.field == "oidc" else 403 if exc.field == "role" else 401
            return _error(status, exc.field, exc.reason)
        session_id, _ = await store().open_provider_session(user, tokens)
        response = RedirectResponse("/dashboard/", status_code=303)
        response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, httponly=True, samesite="lax")
        _set_session_cookie(response, request, session_id)
        return response

    @router.get("/auth/session")
    async def current(request: Request) -> Response:
        session = await _session(request)
        if session is None:
            return _error(401, "session", "not signed in")
        return JSONResponse(_session_body(session), headers={"Cache-Control": "no-store"})

    @router.post("/auth/logout")
    async def logout(request: Request) -> Response:
        session_id = cookie_value(list(request.scope["headers"]))
        session = await _session(request)
        if session_id is None or session is None:
            return _error(401, "session", "not signed in")
        if not csrf_ok(session, list(request.scope["headers"])):
            return _error(403, "x-csrf-token", "missing or wrong CSRF token")
        await store().close_session(session_id)
        if session.tokens is not None and oidc is not None:
            await oidc.end_session(session.tokens)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @router.get(JWKS_PATH)
    async def jwks() -> dict[str, Any]:
        """The public keys the services verify this server's tokens with."""
        return issuer().jwks()

    def _secure(request: Request) -> bool:
        secure = store().settings.dashboard_secure_cookie
        return request.url.scheme == "https" if secure is None else secure

    def _set_session_cookie(response: Response, request: Request, session_id: str) -> None:
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=store().settings.dashboard_session_ttl_s,
            path="/",
            secure=_secure(request),
            httponly=True,
            samesite="strict",
        )

    async def _session(request: Request) -> Session | None:
        session_id = cookie_value(list(request.scope["headers"]))
        return await store().session(session_id) if session_id else None

    return router
