"""``spm dev`` and ``spm demo``: the embedded mode, and a simulated MFI drifting in front of you.

``spm dev`` runs the four services in one process (in-process bus journaled to ``bus.db``, one
SQLite file per service under the data directory) with the dashboard, on one port. Unless told
otherwise it creates a pseudonym pepper (kept in the data directory, so pseudonyms survive
restarts), an admin API key for this run, and a local SMTP sink whose messages the dashboard
shows.

``spm demo`` adds the sample strategy, targets for two branches, and the simulator's drift
scenario fed through the ingest API at a watchable pace: one branch drifts (DSTI breaches, then
PAR30, fewer women among new borrowers, a complaint backlog) while a control branch stays
healthy, and the alerts about the drifting branch arrive within a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import yaml
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp

from services.alerts.clock import Clock
from services.alerts.config import AlertSettings
from services.common.auth import Principal, hash_key, require
from services.common.bus import MemoryBus
from services.common.identity.settings import TrustedIssuer
from services.common.scope import OutOfScope
from services.common.settings import CommonSettings
from spm.accounts.config import DashboardSettings, trusted_issuer
from spm.accounts.routes import OPEN_PATHS, accounts_router
from spm.accounts.server import Accounts
from spm.dashboard import dashboard_router
from spm.embedded import PathDispatcher, build_embedded_app
from spm.report.router import report_router
from spm.simulator import SimConfig
from spm.simulator.config import Scenario
from spm.simulator.runner import RunStats, run
from spm.simulator.sinks import HttpSink

log = logging.getLogger("spm.demo")

REPO_EXAMPLES = Path(__file__).resolve().parent.parent / "services" / "objectives" / "examples"
SAMPLE_STRATEGY = REPO_EXAMPLES / "strategy.yaml"
DEMO_TARGETS = Path(__file__).resolve().parent / "demo" / "branch-targets.yaml"


@dataclass
class Mailbox:
    """The demo's SMTP sink: a real SMTP server on loopback that keeps what it receives."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        self.messages.append(
            {
                "message_id": parsed.get("Message-ID"),
                "date": parsed.get("Date"),
                "from": parsed.get("From"),
                "to": list(envelope.rcpt_tos),
                "subject": parsed.get("Subject"),
                "text": body.get_content() if body is not None else "",
            }
        )
        return "250 OK"


def mail_router(mailbox: Mailbox) -> APIRouter:
    router = APIRouter(prefix="/v1/demo", tags=["demo"])

    @router.get("/mail", summary="Messages the local SMTP sink received (newest first)")
    async def mail(
        principal: Annotated[Principal, Depends(require("alerts:read"))],
    ) -> list[dict[str, Any]]:
        """Every message, whatever branch it is about: not for a branch-limited caller."""
        if principal.branches is not None:
            raise OutOfScope("mail", "the demo's mailbox holds every branch's alerts")
        return list(reversed(mailbox.messages))

    return router


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DevStack:
    """What ``spm dev`` composed: the ASGI app to serve and how to reach it."""

    app: ASGIApp
    host_app: FastAPI
    services: dict[str, FastAPI]
    api_key: str
    mailbox: Mailbox | None
    base_url: str
    lifespans: list[Callable[[], contextlib.AbstractAsyncContextManager[Any]]]
    """Entered in order once the services run; add to it before the app starts."""
    accounts: Accounts
    """The dashboard's local accounts and sessions (open once the app started)."""


def _pepper(data_dir: Path) -> str:
    path = data_dir / "pseudonym_pepper"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def build_dev_stack(
    *,
    data_dir: Path,
    port: int,
    api_key: str | None = None,
    smtp: tuple[str, int] | None = None,
    alert_overrides: dict[str, Any] | None = None,
    extra_api_keys: list[dict[str, Any]] | None = None,
    alert_clock: Clock | None = None,
) -> DevStack:
    """Compose the embedded mode. ``smtp`` = a real server; None = the local sink.
    ``extra_api_keys`` are added to the admin key (entries as in ``API_KEYS``). ``alert_clock``
    drives the alert service's timers (escalation, overdue actions, review dates) in tests;
    None = the wall clock."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key = api_key or secrets.token_urlsafe(18)
    keys = [{"name": "dev-admin", "sha256": hash_key(key), "scopes": ["admin"]}]
    keys += extra_api_keys or []
    base_url = f"http://127.0.0.1:{port}"
    local: dict[str, Any] = {
        "kafka_bootstrap_servers": None,
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'spm.db'}",
        "pseudonym_pepper": _pepper(data_dir),
        "api_keys": json.dumps(keys),
    }
    # the dashboard's signed-in people, besides any identity provider of OIDC_ISSUERS
    dashboard = TrustedIssuer.model_validate(trusted_issuer(base_url))
    issuers = [*CommonSettings(**local).oidc_issuers, dashboard]
    common = CommonSettings(**local, oidc_issuers=issuers)
    accounts = Accounts.of(
        DashboardSettings(
            **common.model_dump(exclude_unset=True),
            dashboard_public_url=base_url,
            dashboard_signing_key_file=str(data_dir / "dashboard-signing-key.pem"),
        ),
        in_process=True,
    )
    mailbox = Mailbox() if smtp is None else None
    smtp_host, smtp_port = smtp or ("127.0.0.1", free_port())
    alerts = AlertSettings(
        **common.model_dump(exclude_unset=True),
        alerts_smtp_host=smtp_host,
        alerts_smtp_port=smtp_port,
        alerts_dashboard_url=f"{base_url}/dashboard",
        **(alert_overrides or {}),
    )
    lifespans: list[Callable[[], contextlib.AbstractAsyncContextManager[Any]]] = [accounts.running]
    served: list[PathDispatcher] = []  # the report reads the APIs through the composed app
    routers: list[APIRouter] = [
        dashboard_router(prefix="/dashboard"),
        _root_router(),
        report_router(lambda: served[0]),
        accounts_router(
            accounts.opened,
            lambda: accounts.issuer,
            None,
            accounts.settings.dashboard_login_rate_limit,
        ),
    ]
    if mailbox is not None:
        lifespans.append(lambda: _smtp_sink(mailbox, smtp_port))
        routers.append(mail_router(mailbox))
    app, host, services = build_embedded_app(
        common,
        bus=MemoryBus(data_dir / "bus.db"),  # durable: an accepted event survives a crash
        settings_for={"alerts": alerts},
        options_for={"alerts": {"clock": alert_clock}} if alert_clock else None,
        extra_routers=routers,
        extra_lifespans=lifespans,
        open_paths=OPEN_PATHS,
        readiness=[accounts.ready],
    )
    served.append(app)
    bridged = accounts.bridge(app)
    return DevStack(bridged, host, services, key, mailbox, base_url, lifespans, accounts)


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    role: str
    branches: list[str] | None
    password: str


def demo_users(config: SimConfig | None) -> list[DemoUser]:
    """An administrator; with the demo's simulation, the managers of its drifting and its
    control branch too. Passwords are new each run (printed once, with the URL)."""

    def password() -> str:
        return secrets.token_urlsafe(12)

    users = [DemoUser("admin", "Demo Administrator", "administrator", None, password())]
    if config is not None:
        for branch in (config.drift_branch_id, config.control_branch_id):
            town = branch.removeprefix("BR-").lower()
            users.append(
                DemoUser(
                    f"manager-{town}", f"Manager {branch}", "branch_manager", [branch], password()
                )
            )
    return users


def users_lifespan(
    stack: DevStack, users: list[DemoUser]
) -> Callable[[], contextlib.AbstractAsyncContextManager[None]]:
    """Creates the demo's local accounts once the accounts database is open (a fresh data
    directory in the demo; in ``spm dev`` an existing account gets the new password)."""

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        store = stack.accounts.opened()
        for user in users:
            if await store.get(user.username) is None:
                await store.add(user.username, user.name, user.role, user.password, user.branches)
            else:
                await store.reset_password(user.username, user.password)
        yield

    return lifespan


def _root_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    return router


@contextlib.asynccontextmanager
async def _smtp_sink(mailbox: Mailbox, port: int) -> AsyncIterator[None]:
    from aiosmtpd.controller import Controller

    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield
    finally:
        controller.stop()


# --- the demo ------------------------------------------------------------------------------------


def demo_config(days: int = 300, seed: int = 7) -> SimConfig:
    return SimConfig(seed=seed, days=days, scenario=Scenario.drift)


async def load_strategy(client: httpx.AsyncClient, path: Path) -> None:
    """Create each objective of a strategy file through the objectives API."""
    document = yaml.safe_load(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    for objective in document["objectives"]:
        body = json.loads(json.dumps(objective, default=str))
        response = await client.post("/v1/objectives", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"objective {objective.get('code')}: {response.text}")


async def run_demo(
    stack: DevStack, config: SimConfig, *, days_per_second: float | None
) -> RunStats:
    """Load the strategy, then feed the simulated MFI through the ingest API."""
    transport = httpx.ASGITransport(app=stack.app)
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url=stack.base_url, headers=headers, timeout=120.0
    ) as client:
        await load_strategy(client, SAMPLE_STRATEGY)
        await load_strategy(client, DEMO_TARGETS)
        sink = HttpSink(stack.base_url, stack.api_key, client=client)
        stats = await run(config, sink, days_per_second=days_per_second)
    log.info("demo: %d simulated days, %d events sent", stats.days, stats.events)
    return stats


def demo_lifespan(
    stack: DevStack, config: SimConfig, days_per_second: float | None
) -> Callable[[], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        task = asyncio.create_task(run_demo(stack, config, days_per_second=days_per_second))
        task.add_done_callback(_report_failure)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


def _report_failure(task: asyncio.Task[RunStats]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("demo simulation failed: %s", task.exception())
