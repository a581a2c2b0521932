"""A service app on a real uvicorn server in the test's loop, and a raw HTTP/1.1 client.

Raw sockets because what is tested is what a client that does not behave sees: headers sent
without the body they announce, a body trickled out, half a request line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from services.common.serving import server_config
from services.common.settings import CommonSettings
from tests.alerts.servers import free_port, parse_head


@contextlib.asynccontextmanager
async def serving(app: Any, settings: CommonSettings) -> AsyncIterator[int]:
    """``app`` served with the servers' own configuration; yields the port."""
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, settings, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "server did not start"
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await task


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    first, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
    status = int(first.split(" ")[1])
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(status, headers, body)


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server still sends before it closes the connection."""
    rest = b""
    while chunk := await reader.read(65536):
        rest += chunk
    return rest
