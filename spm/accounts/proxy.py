"""The dashboard server's reverse proxy: the four services' APIs on the dashboard's origin.

The browser calls ``/v1/...`` on the page's own origin (no CORS); this forwards the method, path,
query and body (streamed both ways, with httpx) to the service that owns the path, with a few
request headers (never the cookie: :class:`spm.accounts.bridge.SessionBridge` has turned the
session into ``Authorization`` before this runs). Bodies larger than ``HTTP_MAX_BODY_BYTES`` are
refused (413) before anything is forwarded when declared, else as soon as they pass it; a service
that does not answer within ``DASHBOARD_PROXY_TIMEOUT_S`` gives 504, one that cannot be reached
502, both in the one error shape.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

import httpx
from starlette.types import Receive, Scope, Send

from services.common.errors import error_body

REQUEST_HEADERS = frozenset(
    {
        "accept", "accept-language", "authorization", "content-type",
        "if-none-match", "if-modified-since", "traceparent", "tracestate", "idempotency-key",
        "x-request-id",
    }
)  # fmt: skip
RESPONSE_HEADERS = frozenset(
    {
        "content-type", "content-disposition", "cache-control", "etag", "last-modified",
        "location", "retry-after", "www-authenticate", "x-next-cursor", "x-request-id",
        "x-total-count", "vary",
    }
)  # fmt: skip


class _TooLarge(Exception):
    pass


class ReverseProxy:
    """An ASGI app forwarding every request to ``upstream`` (a base URL)."""

    def __init__(self, client: httpx.AsyncClient, upstream: str, max_body_bytes: int) -> None:
        self.client = client
        self.upstream = upstream.rstrip("/")
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1") in REQUEST_HEADERS
        ]
        declared = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"content-length"), None
        )
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await send_error(send, 413, "request body too large", "(body)")
            return
        url = self.upstream + scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        has_body = scope["method"] not in ("GET", "HEAD", "OPTIONS") or bool(declared)
        request = self.client.build_request(
            scope["method"],
            url + (f"?{query}" if query else ""),
            headers=headers,
            content=self._body(receive) if has_body else None,
        )
        try:
            response = await self.client.send(request, stream=True)
        except _TooLarge:
            await send_error(send, 413, "request body too large", "(body)")
            return
        except httpx.TimeoutException:
            await send_error(send, 504, "the service did not answer in time", "upstream")
            return
        except httpx.HTTPError:
            await send_error(send, 502, "the service cannot be reached", "upstream")
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in response.headers.multi_items()
                        if k.lower() in RESPONSE_HEADERS
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except httpx.HTTPError:
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def _body(self, receive: Receive) -> AsyncIterator[bytes]:
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_bytes:
                raise _TooLarge
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


def proxies(
    client: httpx.AsyncClient, urls: Mapping[str, str], max_body_bytes: int
) -> dict[str, ReverseProxy]:
    return {name: ReverseProxy(client, url, max_body_bytes) for name, url in urls.items()}


async def send_error(
    send: Send, status: int, detail: str, field: str, *, close: bool = False
) -> None:
    """An answer in the one error shape, straight on ASGI (``close``: the body went unread)."""
    body = json.dumps(error_body([(field, detail)], detail)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
