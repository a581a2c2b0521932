"""``spm dev`` and ``spm demo`` commands (the embedded mode)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

DataDir = Annotated[
    Path, typer.Option(help="Where the embedded mode keeps its SQLite files and pepper.")
]
Port = Annotated[int, typer.Option(help="The one port for the APIs and the dashboard.")]
ApiKey = Annotated[
    str | None, typer.Option(help="The admin API key to accept (default: a new one per run).")
]
Smtp = Annotated[
    str | None,
    typer.Option(
        help="host:port of a real SMTP server (default: a local sink the dashboard shows)."
    ),
]


def restore_ctrl_c() -> None:
    """Give Ctrl-C its default meaning again if this process was started with SIGINT ignored.

    A shell starts background jobs (``cmd &`` without job control, ``nohup``, many CI runners)
    with SIGINT ignored, and Python then keeps it ignored. uvicorn still catches the signal for a
    graceful shutdown, but afterwards re-raises it under the inherited disposition: ignored, so
    the command exited 0 as if nobody had interrupted it. An interactive command must end on
    Ctrl-C with the usual status 130 wherever it was started.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class CancelledCheckinFilter(logging.Filter):
    """One line instead of a traceback when shutdown cancels a task returning a connection.

    Ctrl-C cancels the services' tasks wherever they are; one that is handing its connection
    back to SQLAlchemy's pool has its rollback interrupted, and the pool logs "Exception during
    reset" with the CancelledError's traceback, then closes that connection (which releases its
    lock: nothing is held or lost). That is the expected end of a cancelled task, not a fault.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.name.startswith("sqlalchemy.pool") and isinstance(exc, asyncio.CancelledError):
            record.msg = f"{record.msg} (cancelled at shutdown; the connection was closed)"
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _serve(
    data_dir: Path,
    port: int,
    api_key: str | None,
    smtp: str | None,
    demo: bool,
    days: int,
    days_per_second: float,
) -> None:
    import uvicorn

    from services.common.runtime import tune_gc
    from services.common.serving import server_config
    from services.common.settings import CommonSettings
    from spm.devmode import build_dev_stack, demo_config, demo_lifespan, demo_users, users_lifespan

    restore_ctrl_c()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(CancelledCheckinFilter())
    server_smtp = None
    if smtp:
        host, _, smtp_port = smtp.rpartition(":")
        server_smtp = (host, int(smtp_port))
    stack = build_dev_stack(
        data_dir=data_dir,
        port=port,
        api_key=api_key,
        smtp=server_smtp,
        alert_overrides={"alerts_group_wait_s": 2.0} if demo else None,
    )
    config = demo_config(days) if demo else None
    people = demo_users(config)
    stack.lifespans.append(users_lifespan(stack, people))
    if config is not None:
        stack.lifespans.append(demo_lifespan(stack, config, days_per_second))
    typer.echo(f"\n  SPM Monitor dashboard: {stack.base_url}/dashboard/")
    typer.echo("  Sign in as (new passwords every run):")
    for person in people:
        scope = ", ".join(person.branches) if person.branches else "all branches"
        typer.echo(f"    {person.username:<14} {person.password}   {person.role}, {scope}")
    typer.echo(f"  API key (for scripts): {stack.api_key}")
    typer.echo(f"  APIs: {stack.base_url}/v1/…  (Authorization: Bearer <key>)\n")
    server = server_config(stack.app, "127.0.0.1", port, CommonSettings(), log_level="warning")
    tune_gc()
    asyncio.run(uvicorn.Server(server).serve())


def dev(
    data_dir: DataDir = Path("var/dev"),
    port: Port = 8000,
    api_key: ApiKey = None,
    smtp: Smtp = None,
) -> None:
    """All four services in one process (in-process bus, SQLite) with the dashboard."""
    _serve(data_dir, port, api_key, smtp, demo=False, days=0, days_per_second=0)


def demo(
    data_dir: Annotated[Path, typer.Option(help="Data directory (wiped at start).")] = Path(
        "var/demo"
    ),
    port: Port = 8000,
    api_key: ApiKey = None,
    smtp: Smtp = None,
    days: Annotated[int, typer.Option(help="Simulated days.")] = 300,
    days_per_second: Annotated[float, typer.Option(help="Simulation pace.")] = 8.0,
) -> None:
    """``spm dev`` + the sample strategy + a simulated MFI whose branch BR-MSA drifts."""
    from spm.demodir import fresh_demo_dir

    fresh_demo_dir(data_dir)  # wipes only a directory the demo created
    _serve(data_dir, port, api_key, smtp, demo=True, days=days, days_per_second=days_per_second)
