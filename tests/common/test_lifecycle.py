"""The one lifecycle (services.common.lifecycle): the supervisor's stop, the purges' loop, the
bus lease, and the 503 "not started" of every service before its lifespan ran and after it
ended (it was a 500 assert in three of them)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.common.auth import hash_key
from services.common.bus import MemoryBus
from services.common.errors import SpmError
from services.common.lifecycle import BusLease, Supervisor, every
from services.common.settings import CommonSettings
from spm.devmode import build_dev_stack, free_port

ADMIN = "lifecycle-admin-key"
ROUTES = {
    "ingest": ("POST", "/v1/events"),
    "indicators": ("GET", "/v1/catalog"),
    "objectives": ("GET", "/v1/objectives"),
    "alerts": ("GET", "/v1/alerts"),
}


async def test_stop_lets_a_graceful_loop_finish_and_cancels_the_others() -> None:
    loops = Supervisor("test")
    finished = asyncio.Event()
    stop = asyncio.Event()

    async def graceful() -> None:
        await stop.wait()
        finished.set()

    plain = loops.start(asyncio.Event().wait(), "plain")
    loops.start(graceful(), "graceful", stop=stop.set, grace_s=5.0)
    await asyncio.sleep(0)
    assert loops.running()
    await loops.stop()
    assert finished.is_set() and plain.cancelled()
    assert list(loops) == []


async def test_stop_cancels_again_a_loop_that_swallowed_a_cancellation() -> None:
    """Python 3.11's wait_for can lose a cancellation (services.common.aio): stop insists."""
    loops = Supervisor("test")
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()
        await asyncio.Event().wait()

    task = loops.start(stubborn(), "stubborn")
    await asyncio.sleep(0)
    await loops.stop()
    assert swallowed.is_set() and task.cancelled()


async def test_a_failed_loop_is_logged_and_makes_the_instance_not_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loops = Supervisor("test")

    async def broken() -> None:
        raise ValueError("boom")

    task = loops.start(broken(), "broken")
    with caplog.at_level(logging.ERROR, "services.common.lifecycle"):
        await asyncio.wait([task])
        await asyncio.sleep(0)  # the done callback runs on the next turn of the loop
    assert not loops.running()
    assert "test: the broken task stopped" in caplog.text
    await loops.stop()


async def test_every_retries_a_job_that_failed() -> None:
    calls: list[int] = []
    enough = asyncio.Event()

    async def job() -> None:
        calls.append(1)
        if len(calls) == 3:
            enough.set()
        raise SpmError("database down")

    task = asyncio.create_task(every(0.0, job, "job"))
    await asyncio.wait_for(enough.wait(), 5.0)
    task.cancel()
    assert len(calls) >= 3


def test_a_lease_closes_only_the_bus_it_opened() -> None:
    handed = MemoryBus()
    assert BusLease.of(CommonSettings(), handed) == BusLease(handed, opened=False)
    opened = BusLease.of(CommonSettings(kafka_bootstrap_servers=None), None)
    assert opened.opened and opened.bus is not handed


async def _answer(app: FastAPI, name: str) -> httpx.Response:
    method, path = ROUTES[name]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://svc",
        headers={"Authorization": f"Bearer {ADMIN}"},
    ) as client:
        return await client.request(method, path, json={} if method == "POST" else None)


async def test_every_service_answers_503_before_it_started_and_after_it_stopped(
    tmp_path: Path,
) -> None:
    keys = [{"name": "admin", "sha256": hash_key(ADMIN), "scopes": ["admin"]}]
    stack = build_dev_stack(data_dir=tmp_path, port=free_port(), extra_api_keys=keys)
    for name, app in stack.services.items():
        before = await _answer(app, name)
        assert before.status_code == 503, (name, before.text)
        assert before.headers["Retry-After"].isdigit(), name
        assert before.json()["errors"] == [{"field": "service", "reason": "unavailable"}], name
    async with stack.host_app.router.lifespan_context(stack.host_app):
        for name, app in stack.services.items():
            assert (await _answer(app, name)).status_code != 503, name
    for name, app in stack.services.items():
        assert (await _answer(app, name)).status_code == 503, name
