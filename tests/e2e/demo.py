"""The demo's embedded stack run in-process for a test, and a poll of its API: shared by the demo
test and the board report's must-show, which both drive the demo's simulated months."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from spm.devmode import DevStack, build_dev_stack


@asynccontextmanager
async def running_demo(
    data_dir: Path, timeout_s: float
) -> AsyncIterator[tuple[DevStack, httpx.AsyncClient]]:
    """The embedded stack (alerts grouped for half a second) with its lifespan run, and a client
    holding its API key."""
    stack = build_dev_stack(
        data_dir=data_dir, port=8000, alert_overrides={"alerts_group_wait_s": 0.5}
    )
    async with stack.host_app.router.lifespan_context(stack.host_app):
        transport = httpx.ASGITransport(app=stack.app)
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url=stack.base_url, headers=headers, timeout=timeout_s
        ) as client:
            yield stack, client


async def wait_for(
    client: httpx.AsyncClient, path: str, ready: Callable[[Any], bool], within_s: float
) -> Any:
    """GET ``path`` every second until ``ready(body)`` or ``within_s`` passed; the last body."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        if ready(body) or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(1)


async def until_caught_up(client: httpx.AsyncClient, last_day: str, within_s: float) -> None:
    """Wait until the indicators are computed up to ``last_day`` (the demo's simulated days
    are ingested faster than they are computed)."""
    caught_up = await wait_for(
        client, "/v1/indicators?code=active_clients", lambda b: b["as_of"] == last_day, within_s
    )
    assert caught_up["as_of"] == last_day


def fires_on(segment: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Whether an alert on ``segment`` is firing among the alerts."""
    return lambda alerts: any(a["segment"] == segment and a["state"] == "firing" for a in alerts)
