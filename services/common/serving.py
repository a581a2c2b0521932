"""How every server runs: uvicorn with limits and timeouts (README "Security").

uvicorn limits concurrency (``limit_concurrency``: 503 past it) and idle keep-alive connections
(``timeout_keep_alive``), but it has no timeout for a request's headers: a client that opened a
connection and sent half a request line stayed connected for as long as it liked (90 s in a
test, and a few hundred such clients hold every socket). Its httptools parser also has no limit
on the size of the headers (``h11_max_incomplete_event_size`` only applies to the slower h11
parser). :class:`GuardedHttpToolsProtocol` adds both: from a new connection, or from the first
byte of a request on a kept-alive one, the headers must be complete within
``HTTP_HEADER_TIMEOUT_S`` and ``HTTP_MAX_HEADER_BYTES``; otherwise the client gets 408 / 431
and the connection is closed. Body timeouts and sizes are the request guard's
(services.common.guard).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.common.settings import CommonSettings


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size limit for request headers."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes: int | None = None  # None: not inside a request's headers

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_bytes is None and self._idle():
            self._expect_headers()  # a new request begins on a kept-alive connection
        if self._header_bytes is not None:
            end = data.find(b"\r\n\r\n")  # where this request's headers end, if in this piece
            self._header_bytes += len(data) if end < 0 else end
            if self._header_bytes > self.max_header_bytes:
                self._refuse(431, b"Request Header Fields Too Large")
                return
        super().data_received(data)  # completing the headers resets _header_bytes to None

    def on_headers_complete(self) -> None:
        self._headers_done()
        super().on_headers_complete()

    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _expect_headers(self) -> None:
        self._header_bytes = 0
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _headers_done(self) -> None:
        self._header_bytes = None
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if self._header_bytes:  # something was sent: say why we hang up
            self._refuse(408, b"Request Timeout")
        elif not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, status: int, reason: bytes) -> None:
        self._headers_done()
        if self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % (status, reason)
        )
        self.transport.close()


def protocol_for(settings: CommonSettings) -> type[GuardedHttpToolsProtocol]:
    """The protocol class with this server's limits (uvicorn instantiates it per connection)."""
    return type(
        "ConfiguredHttpProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "header_timeout_s": settings.http_header_timeout_s,
            "max_header_bytes": settings.http_max_header_bytes,
        },
    )


def server_config(
    app: Any, host: str, port: int, settings: CommonSettings, **extra: Any
) -> uvicorn.Config:
    """The uvicorn configuration of every server (``spm serve``, its workers, ``spm dev``)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_for(settings),
        limit_concurrency=settings.http_limit_concurrency,
        timeout_keep_alive=settings.http_keep_alive_s,
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        **extra,
    )
