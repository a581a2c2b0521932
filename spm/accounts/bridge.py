"""From a browser session to a service call: the session cookie becomes a signed bearer token.

An ASGI layer in front of the service APIs (the reverse proxy of ``spm serve dashboard``, or the
services themselves in the embedded mode). A request that carries its own ``Authorization``
(a machine's API key) passes as it is. A request with the session cookie and no
``Authorization`` is the signed-in person's: the layer looks the session up, refuses a
state-changing method (POST, PUT, PATCH, DELETE) whose ``X-CSRF-Token`` header is not the
session's token (a page of another site can make the browser send the cookie, never that header),
and puts ``Authorization: Bearer <JWT>`` in the request's headers: a token of its own for a
local account, the identity provider's access token for a person signed in through it
(refreshed first when it is about to expire; a refused refresh ends the session). The cookie
itself never reaches a service: the layer removes it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from spm.accounts.issuer import TokenIssuer
from spm.accounts.oidc import OidcClient, OidcError, needs_refresh
from spm.accounts.proxy import send_error
from spm.accounts.store import AccountStore, Session

COOKIE = "spm_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cookie_value(headers: list[tuple[bytes, bytes]], name: str = COOKIE) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: S112 - a malformed Cookie header is no session
                continue
            if name in jar:
                return jar[name].value
    return None


def csrf_ok(session: Session, headers: list[tuple[bytes, bytes]]) -> bool:
    presented = next((v for k, v in headers if k == CSRF_HEADER.encode()), b"")
    return hmac.compare_digest(presented, session.csrf.encode())


class SessionBridge:
    """``applies(path)`` says which paths are service APIs (the rest is the host's own)."""

    def __init__(
        self,
        app: ASGIApp,
        store: Callable[[], AccountStore | None],
        issuer: Callable[[], TokenIssuer | None],
        applies: Callable[[str], bool],
        oidc: Callable[[], OidcClient | None] = lambda: None,
    ) -> None:
        self.app = app
        self.oidc = oidc
        self.store = store
        self.issuer = issuer
        self.applies = applies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        without_cookie = [(k, v) for k, v in headers if k != b"cookie"]
        if any(k == b"authorization" for k, _ in headers):
            await self.app({**scope, "headers": without_cookie}, receive, send)
            return
        session_id = cookie_value(headers)
        store, issuer = self.store(), self.issuer()
        if session_id and store is not None and issuer is not None:
            session = await store.session(session_id)
            if session is None:
                await send_error(
                    send, 401, "your session has ended; sign in again", "session", close=True
                )
                return
            if scope["method"] not in SAFE_METHODS and not csrf_ok(session, headers):
                await send_error(send, 403, "missing or wrong CSRF token", CSRF_HEADER, close=True)
                return
            try:
                token = await self._token(store, session, session_id)
            except OidcError as exc:  # the provider is down: the session may live on
                await send_error(send, 502, exc.reason, exc.field, close=True)
                return
            if token is None:
                await send_error(
                    send, 401, "your session has ended; sign in again", "session", close=True
                )
                return
            without_cookie.append((b"authorization", f"Bearer {token}".encode()))
        await self.app({**scope, "headers": without_cookie}, receive, send)

    async def _token(self, store: AccountStore, session: Session, session_id: str) -> str | None:
        issuer = self.issuer()
        if session.tokens is None:
            return issuer.token_for(session.user) if issuer is not None else None
        oidc = self.oidc()
        if not needs_refresh(session.tokens):
            return session.tokens.access_token
        fresh = await oidc.refresh(session.tokens) if oidc is not None else None
        if fresh is None:  # the provider's session is over: so is ours
            await store.close_session(session_id)
            return None
        await store.store_tokens(session, fresh)
        return fresh.access_token
