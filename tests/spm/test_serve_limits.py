"""`spm serve` cuts off slow-headers clients (uvicorn alone kept them 90 s and more), refuses
oversized headers, and still serves well-behaved clients meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.alerts.servers import Proc, free_port
from tests.common.http_server import read_answer, until_closed
from tests.spm.test_cli_serve import _env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

HEADER_TIMEOUT_S = 1.5


async def test_slow_headers_are_cut_off_within_the_header_timeout(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    env = _env(kafka_bootstrap, postgres_url, f"ingest_slow_{unique}")
    env["HTTP_HEADER_TIMEOUT_S"] = str(HEADER_TIMEOUT_S)
    port = free_port()
    proc = Proc(env, port, tmp_path / "ingest.log", service="ingest")
    proc.start()
    try:
        await proc.ready()
        loop = asyncio.get_running_loop()
        slow = []
        for partial in (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Le", b"", b"GET /hea"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if partial:
                writer.write(partial)
                await writer.drain()
            slow.append((reader, writer, loop.time()))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200  # others are served
        for (reader, writer, opened), was_partial in zip(slow, (True, False, True), strict=True):
            if was_partial:
                answer = await asyncio.wait_for(read_answer(reader), HEADER_TIMEOUT_S + 5)
                assert answer.status == 408
            assert await asyncio.wait_for(until_closed(reader), HEADER_TIMEOUT_S + 5) == b""
            waited = loop.time() - opened
            assert HEADER_TIMEOUT_S - 0.2 <= waited < HEADER_TIMEOUT_S + 3, waited
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
        answer = await asyncio.wait_for(read_answer(reader), 10)
        assert answer.status == 431
        writer.close()
        assert proc.proc is not None and proc.proc.poll() is None
    finally:
        proc.stop()
