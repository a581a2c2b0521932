"""The request guard in front of every app: no body is read before the key is known, no body
over its route's limit is read past the limit, a stalled body is cut, a flooding key waits.

The app is built by the services' own factory (create_service_app) and served by uvicorn with
the servers' configuration; the client is a raw socket that sends the headers first and the body
only if asked to, so "answered without reading" is observable: the answer arrives while the
announced body was never sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, Request

from services.common.auth import KeyRing, Principal, hash_key, require
from services.common.guard import RequestLimits
from services.common.http import create_service_app
from services.common.ratelimit import KeyRateLimit
from services.common.settings import CommonSettings
from tests.common.http_server import head, read_answer, serving, until_closed

KEY = "guard-test-key"
MIB = 1024 * 1024


class Seen:
    """What the route handlers got to read."""

    def __init__(self) -> None:
        self.bytes_read = 0
        self.calls = 0


def build(seen: Seen, settings: CommonSettings, rate: str | None = None) -> object:
    router = APIRouter()

    @router.post("/echo")
    async def echo(
        request: Request, who: Annotated[Principal, Depends(require("admin"))]
    ) -> dict[str, object]:
        seen.calls += 1
        async for chunk in request.stream():
            seen.bytes_read += len(chunk)
        return {"read": seen.bytes_read, "who": who.name}

    @router.post("/big")
    async def big(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    keys = [{"name": "tester", "sha256": hash_key(KEY), "scopes": ["admin"]}]
    keyring = KeyRing.from_json(json.dumps(keys))
    limits = RequestLimits.of(
        settings,
        body_limits={"/big": 4 * MIB},
        rate_limit=KeyRateLimit(rate) if rate else None,
    )
    return create_service_app(
        service="guard-test",
        title="guard test",
        description="",
        settings=settings,
        keyring=keyring,
        routers=[router],
        limits=limits,
    )


SETTINGS = CommonSettings(http_max_body_bytes=MIB, http_body_timeout_s=1.0)


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def port(seen: Seen) -> AsyncIterator[int]:
    async with serving(build(seen, SETTINGS), SETTINGS) as p:
        yield p


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def test_a_body_without_a_key_is_refused_unread(port: int, seen: Seen) -> None:
    invalid = 'Bearer error="invalid_token"'  # RFC 6750: a credential was presented, not valid
    for headers, challenge in (
        ({}, "Bearer"),
        ({"Authorization": "Bearer wrong-key"}, invalid),
        ({"Authorization": "Basic eDp5"}, "Bearer"),
    ):
        reader, writer = await connect(port)
        writer.write(head("POST", "/echo", {"Content-Length": str(40 * MIB), **headers}))
        await writer.drain()
        answer = await asyncio.wait_for(read_answer(reader), 10)  # the 40 MiB are never sent
        assert answer.status == 401, answer
        assert answer.headers["www-authenticate"] == challenge
        assert answer.headers["connection"] == "close"
        assert answer.json()["errors"][0]["field"] == "Authorization"
        assert await until_closed(reader) == b""
        writer.close()
    assert seen.calls == 0


async def test_a_chunked_body_without_a_key_is_refused_unread(port: int, seen: Seen) -> None:
    reader, writer = await connect(port)
    writer.write(head("POST", "/echo", {"Transfer-Encoding": "chunked"}) + b"10\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(read_answer(reader), 10)
    assert answer.status == 401
    writer.close()
    assert seen.calls == 0


async def test_a_declared_length_over_the_limit_is_refused_unread(port: int, seen: Seen) -> None:
    reader, writer = await connect(port)
    writer.write(
        head("POST", "/echo", {"Content-Length": str(MIB + 1), "Authorization": f"Bearer {KEY}"})
    )
    await writer.drain()
    answer = await asyncio.wait_for(read_answer(reader), 10)
    assert answer.status == 413
    assert answer.json()["errors"] == [{"field": "(body)", "reason": f"larger than {MIB} bytes"}]
    writer.close()
    assert seen.calls == 0


async def test_a_chunked_body_is_cut_at_the_limit(port: int, seen: Seen) -> None:
    reader, writer = await connect(port)
    writer.write(
        head("POST", "/echo", {"Transfer-Encoding": "chunked", "Authorization": f"Bearer {KEY}"})
    )
    chunk = b"x" * 65536
    answer = None
    for _ in range(40):  # up to 2.5 MiB offered for a 1 MiB limit
        try:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        except ConnectionError:
            break
        try:
            answer = await asyncio.wait_for(read_answer(reader), 0.05)
            break
        except TimeoutError:
            continue
    if answer is None:
        answer = await asyncio.wait_for(read_answer(reader), 10)
    assert answer.status == 413
    writer.close()
    assert seen.calls == 1
    assert MIB - len(chunk) < seen.bytes_read <= MIB  # the handler never saw past the limit


async def test_a_route_with_its_own_limit(port: int) -> None:
    reader, writer = await connect(port)
    body = b"y" * (3 * MIB)
    writer.write(head("POST", "/big", {"Content-Length": str(len(body))}) + body)
    await writer.drain()
    answer = await asyncio.wait_for(read_answer(reader), 10)
    assert answer.status == 401  # every body needs a key, also on a route that asks for none
    writer.close()
    reader, writer = await connect(port)
    auth = {"Authorization": f"Bearer {KEY}", "Content-Length": str(len(body))}
    writer.write(head("POST", "/big", auth) + body)
    answer = await asyncio.wait_for(read_answer(reader), 10)
    assert answer.status == 200 and answer.json() == {"read": 3 * MIB}
    writer.close()


async def test_a_stalled_body_is_cut_after_the_body_timeout(port: int, seen: Seen) -> None:
    reader, writer = await connect(port)
    auth = {"Authorization": f"Bearer {KEY}", "Content-Length": "1000"}
    writer.write(head("POST", "/echo", auth) + b"z" * 10)
    await writer.drain()
    started = asyncio.get_running_loop().time()
    answer = await asyncio.wait_for(read_answer(reader), 10)
    waited = asyncio.get_running_loop().time() - started
    assert answer.status == 408
    assert 0.9 <= waited < 5, waited
    assert await asyncio.wait_for(until_closed(reader), 5) == b""
    writer.close()


async def test_a_good_request_passes_with_its_principal(port: int, seen: Seen) -> None:
    reader, writer = await connect(port)
    body = b"hello"
    auth = {"Authorization": f"Bearer {KEY}", "Content-Length": str(len(body))}
    for _ in range(2):  # keep-alive: the second request on the same connection
        writer.write(head("POST", "/echo", auth) + body)
        answer = await asyncio.wait_for(read_answer(reader), 10)
        assert answer.status == 200
        assert answer.json()["who"] == "tester"
    writer.close()


async def test_a_key_over_its_rate_is_told_when_to_come_back(seen: Seen) -> None:
    async with serving(build(seen, SETTINGS, rate="3/minute"), SETTINGS) as port:
        reader, writer = await connect(port)
        auth = {"Authorization": f"Bearer {KEY}", "Content-Length": "0"}
        statuses = []
        for _ in range(4):
            writer.write(head("POST", "/echo", auth))
            answer = await asyncio.wait_for(read_answer(reader), 10)
            statuses.append(answer.status)
        writer.close()
    assert statuses == [200, 200, 200, 429]
    assert 1 <= int(answer.headers["retry-after"]) <= 60
    assert answer.json()["errors"][0]["reason"] == "over 3/minute for this key"
