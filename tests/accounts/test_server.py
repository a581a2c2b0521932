"""The dashboard server's own routes, built as ``spm serve dashboard`` builds it (SQLite here,
services that are not running): which routes answer whom, the error shape, the proxy's
answers when a service is down, and that the cookie never reaches a service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from services.common.identity.settings import TrustedIssuer
from spm.accounts.bridge import COOKIE
from spm.accounts.config import DashboardSettings
from spm.accounts.oidc import FLOW_COOKIE
from spm.accounts.routes import PUBLIC_PATHS, SESSION_PATHS
from spm.accounts.server import build_dashboard
from spm.accounts.store import User
from tests.alerts.servers import free_port
from tests.common.route_auth import PUBLIC, keyed_requests

PAGE = frozenset(
    {"/", "/dashboard", "/dashboard/", "/dashboard/config.json", "/dashboard/assets/1"}
)
PASSWORD = "a long enough password"


def _settings(tmp: Path, **urls: str) -> DashboardSettings:
    closed = f"http://127.0.0.1:{free_port()}"
    service_urls: dict[str, Any] = {
        f"dashboard_{n}_url": urls.get(n, closed)
        for n in ("ingest", "indicators", "objectives", "alerts")
    }
    return DashboardSettings(
        database_url=f"sqlite+aiosqlite:///{tmp / 'spm.db'}",
        dashboard_signing_key_file=str(tmp / "key.pem"),
        dashboard_proxy_timeout_s=5,
        **service_urls,
    )


@pytest.fixture
async def echo() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A real HTTP server standing in for the alerts service: it records what reaches it."""
    seen: list[dict[str, str]] = []
    app = FastAPI()

    @app.api_route("/v1/alerts", methods=["GET", "POST"])
    async def alerts(request: Request) -> dict[str, object]:
        seen.append(dict(request.headers))
        return {"body": (await request.body()).decode(), "query": str(request.url.query)}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only this flag
        assert not task.done()
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}", seen
    server.should_exit = True
    await task


async def test_only_the_page_sign_in_and_health_answer_without_a_session(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    server = build_dashboard(settings)
    app, host = server.app, server.host
    walked = {path for _, path in keyed_requests(host, frozenset())}
    assert walked <= PUBLIC | PAGE | PUBLIC_PATHS | SESSION_PATHS | {"/v1/report"}, walked
    async with (
        host.router.lifespan_context(host),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as client,
    ):
        for path in SESSION_PATHS:
            method = "POST" if path.endswith("logout") else "GET"
            assert (await client.request(method, path)).status_code == 401, path
        report = await client.get("/v1/report", params={"month": "2025-06"})
        assert report.status_code == 401 and report.json()["errors"][0]["field"] == "Authorization"
        bad = await client.post("/auth/login", json={"username": ""})
        assert bad.status_code == 422
        assert {e["field"] for e in bad.json()["errors"]} == {"username", "password"}
        assert (await client.get("/auth/config")).json() == {"local": True, "oidc": None}
        assert (await client.get("/.well-known/jwks.json")).json()["keys"][0]["alg"] == "ES256"
        assert (await client.get("/readyz")).status_code == 503  # the services are not running
        # a service that cannot be reached: 502 in the one error shape
        down = await client.get("/v1/catalog")
        assert down.status_code == 502 and down.json()["errors"][0]["field"] == "upstream"
        too_big = await client.post(
            "/v1/events", content=b"x" * (settings.http_max_body_bytes + 1),
            headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
        )  # fmt: skip
        assert too_big.status_code == 413


async def test_the_board_report_is_built_as_the_signed_in_person(tmp_path: Path) -> None:
    """``/v1/report`` accepts the session's token (the server checks its own signature) and
    reads the services through its proxy; here they are down, which the report names."""
    server = build_dashboard(_settings(tmp_path))
    app, host, accounts = server.app, server.host, server.accounts
    async with (
        host.router.lifespan_context(host),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as client,
    ):
        await accounts.opened().add("amina", "Amina", "viewer", PASSWORD)
        login = await client.post("/auth/login", json={"username": "amina", "password": PASSWORD})
        assert login.status_code == 200
        bad = await client.get("/v1/report", params={"month": "June", "format": "xlsx"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.month"
        down = await client.get("/v1/report", params={"month": "2025-06", "format": "xlsx"})
        assert down.status_code == 422, down.text
        assert "indicators /v1/catalog answered 502" in down.json()["detail"]
        client.cookies.clear()
        forged = await client.get(
            "/v1/report", params={"month": "2025-06"}, headers={"Authorization": "Bearer a.b.c"}
        )
        assert forged.status_code == 401


async def test_the_proxy_forwards_the_person_never_the_cookie(
    tmp_path: Path, echo: tuple[str, list[dict[str, str]]]
) -> None:
    url, seen = echo
    server = build_dashboard(_settings(tmp_path, alerts=url))
    app, host, accounts = server.app, server.host, server.accounts
    async with (
        host.router.lifespan_context(host),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as client,
    ):
        await accounts.opened().add("amina", "Amina", "viewer", PASSWORD)
        login = await client.post("/auth/login", json={"username": "amina", "password": PASSWORD})
        csrf = login.json()["csrf_token"]
        got = await client.get("/v1/alerts", params={"state": "firing"})
        assert got.status_code == 200 and got.json()["query"] == "state=firing"
        posted = await client.post(
            "/v1/alerts", json={"a": 1}, headers={"X-CSRF-Token": csrf, "X-Other": "dropped"}
        )
        assert json.loads(posted.json()["body"]) == {"a": 1}
        # a machine's own key passes unchanged, and still without the cookie
        await client.get("/v1/alerts", headers={"Authorization": "Bearer machine-key"})
    assert len(seen) == 3
    for headers in seen:
        assert "cookie" not in headers and COOKIE not in str(headers)
        assert "x-other" not in headers and "x-csrf-token" not in headers
    assert seen[0]["authorization"].startswith("Bearer eyJ")
    assert seen[2]["authorization"] == "Bearer machine-key"


async def test_the_identity_provider_sign_in_refuses_what_it_did_not_start(tmp_path: Path) -> None:
    """The OpenID Connect routes without a provider (404), with one that cannot be reached
    (502), and a callback that is not the end of a flow this browser began (401, ``state``)."""
    without = build_dashboard(_settings(tmp_path / "without"))
    async with (
        without.host.router.lifespan_context(without.host),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=without.app), base_url="http://d") as c,
    ):
        for path in ("/auth/oidc/login", "/auth/oidc/callback"):
            missing = await c.get(path)
            assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "oidc"

    issuer = f"http://127.0.0.1:{free_port()}/realms/mfi"  # nobody listens there
    with pytest.raises(ValueError, match="DASHBOARD_OIDC_ISSUER"):
        DashboardSettings(dashboard_oidc_issuer=issuer)  # not one of OIDC_ISSUERS
    settings = _settings(tmp_path / "with").model_copy(
        update={
            "oidc_issuers": [TrustedIssuer(issuer=issuer, audience="spm-monitor")],
            "dashboard_oidc_issuer": issuer,
            "dashboard_oidc_name": "Test MFI",
        }
    )
    server = build_dashboard(settings)
    async with (
        server.host.router.lifespan_context(server.host),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url="http://d") as c,
    ):
        assert (await c.get("/auth/config")).json() == {"local": True, "oidc": {"name": "Test MFI"}}
        down = await c.get("/auth/oidc/login")
        assert down.status_code == 502 and down.json()["errors"][0]["field"] == "oidc"
        for query, field in (
            ({"code": "c", "state": "s"}, "state"),  # no flow cookie
            ({"error": "access_denied", "state": "s"}, "oidc"),
        ):
            refused = await c.get("/auth/oidc/callback", params=query)
            assert refused.status_code == 401 and refused.json()["errors"][0]["field"] == field
        c.cookies.set(FLOW_COOKIE, server.accounts.issuer.token_for(_someone()))  # not a flow
        forged = await c.get("/auth/oidc/callback", params={"code": "c", "state": "s"})
        assert forged.status_code == 401 and forged.json()["errors"][0]["field"] == "state"
        assert COOKIE not in c.cookies


def _someone() -> User:
    return User("ana", "Ana", "viewer", None, False, None)
