"""The ASGI layer in front of every app: authentication before the body, body limits, rate limits.

An endpoint that parses its body first and checks the key afterwards lets anyone make the server
hold and decode megabytes: 5 MiB without a key once cost 120 MB of memory. So before the app
sees a request that carries a body, this layer

- refuses it with 401 when it has no known API key or valid token from a trusted issuer
  (``Authorization: Bearer``, or ``?api_key=`` on the paths that must accept it), without
  reading a byte of the body (a token's keys are cached; see services.common.identity.jwks);
- refuses it with 413 when its ``Content-Length`` exceeds the route's limit, also unread, and
  counts the bytes of the stream (chunked bodies too), answering 413 as soon as they pass it;
- answers 408 when the client pauses longer than the body timeout between two pieces;
- with a rate limit, answers 429 + ``Retry-After`` to a key over it.

Requests without a body pass on (their routes' dependencies check the key, as before); a key the
layer already verified is left in ``scope["state"]["principal"]`` so the dependency does not
hash it again (and a refused one's reason in ``scope["state"]["auth_refusal"]``). Refusals
close the connection (``Connection: close``) so an unread body is not taken for the next
request. The layer is pure ASGI (no per-request task), so it costs a header scan and one SHA-256
(or one signature check of a token) per request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.auth import (
    MISSING_CREDENTIAL,
    PRINCIPAL_STATE,
    REFUSAL_STATE,
    KeyRing,
    Principal,
    Unauthenticated,
    bearer_token,
)
from services.common.errors import error_body
from services.common.ratelimit import KeyRateLimit
from services.common.settings import CommonSettings

TOO_LARGE = "request body too large"
TOO_SLOW = "the request body came too slowly"


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """What the layer enforces for one app. ``body_limits`` maps exact paths to their own
    largest body (e.g. a batch route); every other path gets ``max_body_bytes``."""

    max_body_bytes: int
    body_timeout_s: float
    body_limits: Mapping[str, int] = field(default_factory=dict)
    query_key_paths: frozenset[str] = frozenset()
    rate_limit: KeyRateLimit | None = None
    open_paths: frozenset[str] = frozenset()
    """Paths whose bodies may come without a key (the dashboard's sign-in form), still
    bounded in size and time."""
    retry_after_s: int = 5
    """``Retry-After`` of every 503 the app answers (HTTP_RETRY_AFTER_S)."""

    @classmethod
    def of(
        cls,
        settings: CommonSettings,
        *,
        body_limits: Mapping[str, int] | None = None,
        query_key_paths: frozenset[str] = frozenset(),
        rate_limit: KeyRateLimit | None = None,
        open_paths: frozenset[str] = frozenset(),
    ) -> RequestLimits:
        return cls(
            settings.http_max_body_bytes,
            settings.http_body_timeout_s,
            dict(body_limits or {}),
            query_key_paths,
            rate_limit,
            open_paths,
            settings.http_retry_after_s,
        )

    def body_limit(self, path: str) -> int:
        return self.body_limits.get(path, self.max_body_bytes)


class _Refused(Exception):
    """Raised into the app from ``receive`` once the layer has answered the request itself."""


class RequestGuard:
    """The middleware; ``keyring`` is the app's (``app.state.keyring``)."""

    def __init__(self, app: ASGIApp, keyring: KeyRing, limits: RequestLimits) -> None:
        self.app = app
        self.keyring = keyring
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        chunked = False
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"authorization":
                authorization = value
        has_body = chunked or bool(declared)
        path: str = scope["path"]
        token = bearer_token(authorization.decode("latin-1")) if authorization else None
        if token is None and path in self.limits.query_key_paths:
            token = _query_value(scope.get("query_string", b""), "api_key")
        principal: Principal | None = None
        refusal = Unauthenticated(MISSING_CREDENTIAL, presented=False)
        if token:
            try:
                principal = await self.keyring.check(token)
            except Unauthenticated as exc:
                refusal = exc
                scope.setdefault("state", {})[REFUSAL_STATE] = exc  # the route need not redo it
        if principal is not None:
            scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        elif has_body and path not in self.limits.open_paths:
            reason = refusal.reason
            await _refuse(send, 401, reason, "Authorization", reason, refusal.headers)
            return
        if principal is not None and self.limits.rate_limit is not None:
            wait = self.limits.rate_limit.hit(principal.name)
            if wait is not None:
                reason = f"over {self.limits.rate_limit.spec} for this key"
                retry = {"Retry-After": str(wait)}
                await _refuse(send, 429, "too many requests", "Authorization", reason, retry)
                return
        if not has_body:
            await self.app(scope, receive, send)
            return
        limit = self.limits.body_limit(path)
        if declared is not None and (declared < 0 or declared > limit):
            if declared < 0:
                await _refuse(send, 400, "bad request", "Content-Length", "not a number")
            else:
                await _refuse(send, 413, TOO_LARGE, "(body)", f"larger than {limit} bytes")
            return
        await self._bounded(scope, receive, send, limit)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app with a ``receive`` that counts and times the body and a ``send`` that
        is silenced once the layer answered in the app's place."""
        received = 0
        answered = False
        started = False
        timeout = self.limits.body_timeout_s

        async def bounded_receive() -> Message:
            nonlocal received, answered
            try:
                async with asyncio.timeout(timeout):
                    message = await receive()
            except TimeoutError:
                reason = f"no data for {timeout:g} s"
                answered = await _refuse_once(started, send, 408, TOO_SLOW, reason)
                raise _Refused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    reason = f"larger than {limit} bytes"
                    answered = await _refuse_once(started, send, 413, TOO_LARGE, reason)
                    raise _Refused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, guarded_send)
        except _Refused:
            pass
        except Exception:
            if not answered:
                raise


async def _refuse_once(started: bool, send: Send, status: int, detail: str, reason: str) -> bool:
    """Answer in the app's place unless it already began its own answer; True if answered."""
    if started:
        return False
    await _refuse(send, status, detail, "(body)", reason)
    return True


async def _refuse(
    send: Send,
    status: int,
    detail: str,
    field_name: str,
    reason: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    body = json.dumps(error_body([(field_name, reason)], detail)).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _query_value(query: bytes, name: str) -> str | None:
    for key, value in parse_qsl(query.decode("latin-1")):
        if key == name:
            return value
    return None
