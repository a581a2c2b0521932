"""A small stack for browser tests: the real indicator, objectives and alert apps in embedded mode
(in-process bus, SQLite), fed by the simulator, behind one HTTP port that also serves the
dashboard. A thin gateway forwards each ``/v1/…`` path to the service that owns it, in-process;
nothing is faked.

The objectives app makes its own in-process bus, so its target events do not reach the alert
app over the bus here; the alert app seeds its targets from the objectives API instead (through
the gateway, at start-up), as it does in the distributed mode. Its e-mails go to a real local
SMTP server (aiosmtpd).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.common.auth import hash_key
from services.common.bus import MemoryBus
from spm.dashboard import dashboard_router
from spm.simulator import SimConfig
from spm.simulator.runner import run
from spm.simulator.sinks import BusSink

STAFF_KEY = "dashboard-staff-key-0123"
PEPPER = "dashboard-test-pepper-0123456789"
STRATEGY = Path(__file__).parents[2] / "services" / "objectives" / "examples" / "strategy.yaml"
SCOPES = ["indicators:read", "objectives:read", "objectives:write", "alerts:read", "alerts:ack"]
OWNERS = {
    "indicators": ("catalog", "indicators"),
    "objectives": ("objectives", "targets"),
    "alerts": ("alerts", "silences", "notifications"),
}


def api_keys() -> str:
    return json.dumps([{"name": "staff", "sha256": hash_key(STAFF_KEY), "scopes": SCOPES}])


@dataclass
class Stack:
    url: str
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    mail: list[bytes]

    async def get(self, service: str, path: str, **params: Any) -> httpx.Response:
        return await self.clients[service].get(path, params=params)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _gateway(clients: dict[str, httpx.AsyncClient]) -> FastAPI:
    owner = {first: name for name, firsts in OWNERS.items() for first in firsts}
    app = FastAPI()

    @app.api_route("/v1/{path:path}", methods=["GET", "POST", "DELETE", "PATCH", "PUT"])
    async def forward(path: str, request: Request) -> Response:
        service = owner.get(path.split("/", 1)[0])
        if service is None or service not in clients:
            return Response(status_code=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        upstream = await clients[service].request(
            request.method,
            f"/v1/{path}",
            params=request.query_params,
            headers=headers,
            content=await request.body(),
        )
        drop = {"content-length", "content-encoding", "transfer-encoding"}
        kept = {k: v for k, v in upstream.headers.items() if k.lower() not in drop}
        return Response(upstream.content, upstream.status_code, headers=kept)

    app.include_router(dashboard_router(prefix=""))
    return app


def _db(tmp: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{tmp / f'{name}.db'}"


def _core_apps(tmp: Path, bus: MemoryBus) -> dict[str, FastAPI]:
    from services.indicators.app import create_app as indicators_app
    from services.indicators.config import IndicatorSettings
    from services.objectives.app import create_app as objectives_app
    from services.objectives.config import ObjectivesSettings

    return {
        "indicators": indicators_app(
            IndicatorSettings(database_url=_db(tmp, "indicators"), api_keys=api_keys()), bus=bus
        ),
        "objectives": objectives_app(
            ObjectivesSettings(database_url=_db(tmp, "objectives"), api_keys=api_keys())
        ),
    }


def _alerts_app(tmp: Path, bus: MemoryBus, gateway: str, smtp_port: int) -> FastAPI:
    from services.alerts.app import create_app as alerts_app
    from services.alerts.config import AlertSettings

    settings = AlertSettings(
        database_url=_db(tmp, "alerts"),
        api_keys=api_keys(),
        objectives_url=gateway,
        alerts_objectives_api_key=STAFF_KEY,
        alerts_smtp_host="127.0.0.1",
        alerts_smtp_port=smtp_port,
        alerts_group_wait_s=0,
        alerts_dashboard_url=gateway,
    )
    return alerts_app(settings, bus=bus)


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


async def _load_strategy(client: httpx.AsyncClient) -> None:
    for objective in yaml.safe_load(STRATEGY.read_text())["objectives"]:
        body = json.loads(json.dumps(objective, default=str))
        for _ in range(20):  # objectives on SQLite answers 503 "database is locked" at times
            response = await client.post("/v1/objectives", json=body)
            if response.status_code != 503:
                break
            await asyncio.sleep(0.25)
        assert response.status_code == 201, response.text


async def _caught_up(client: httpx.AsyncClient, last_day: str, within_s: float = 240.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        response = await client.get("/v1/indicators", params={"code": "active_clients"})
        if response.status_code == 200 and response.json().get("as_of") == last_day:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"the indicator service did not reach {last_day}")


@asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only this flag
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _client(stack: AsyncExitStack, name: str, app: FastAPI) -> httpx.AsyncClient:
    await stack.enter_async_context(app.router.lifespan_context(app))
    return await stack.enter_async_context(
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=f"http://{name}",
            headers={"Authorization": f"Bearer {STAFF_KEY}"},
            timeout=60.0,
        )
    )


@asynccontextmanager
async def dashboard_stack(tmp: Path, config: SimConfig) -> AsyncIterator[Stack]:
    from aiosmtpd.controller import Controller

    bus = MemoryBus()
    mailbox = _Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    apps = _core_apps(tmp, bus)
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        async with AsyncExitStack() as stack:
            for name, app in apps.items():
                clients[name] = await _client(stack, name, app)
            await _load_strategy(clients["objectives"])
            url = await stack.enter_async_context(_serve(_gateway(clients)))
            apps["alerts"] = _alerts_app(tmp, bus, url, smtp.port)
            clients["alerts"] = await _client(stack, "alerts", apps["alerts"])
            await run(config, BusSink(bus, PEPPER, config.currency))
            await _caught_up(clients["indicators"], config.end.isoformat())
            yield Stack(url, apps, clients, mailbox.messages)
    finally:
        smtp.stop()
        await bus.close()
