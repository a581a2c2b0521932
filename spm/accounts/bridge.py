"""From a browser session to a service call: the session cookie becomes a signed bearer token.

An ASGI layer in front of the service APIs (the reverse proxy of ``spm serve dashboard``, or the
services themselves in the embedded mode). A request that carries its own ``Authorization``
(a machine's API key) passes as it is. A request with the session cookie and no
``Authorization`` is the signed-in person's: the layer looks the session up, refuses a
state-changing method (POST, PUT, PATCH, DELETE) whose ``X-CSRF-Token`` header is not the
session's token (a page of another site can make the browser send the cookie, never that header),
and puts ``Authorization: Bearer <JWT>`` in the request's headers. The cookie itself never
reaches a service: the layer removes it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from spm.accounts.issuer import TokenIssuer
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
    ) -> None:
        self.app = app
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
            token = issuer.token_for(session.user)
            without_cookie.append((b"authorization", f"Bearer {token}".encode()))
        await self.app({**scope, "headers": without_cookie}, receive, send)
