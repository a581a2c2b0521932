"""The ``spm`` command: the composition root, the only code that imports more than one service."""

from __future__ import annotations

import importlib
from enum import StrEnum
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from contracts.cli import contracts_app
from services.common.settings import CommonSettings
from services.ingest.cli import import_app
from services.ingest.pseudonym import pepper_problem
from services.objectives.cli import objectives_app
from spm.accounts.cli import users_app
from spm.devcli import demo, dev
from spm.indicators_cli import indicators_app
from spm.migrate_cli import migrate_command
from spm.report.cli import report_command
from spm.simulator.cli import simulate_command

app = typer.Typer(
    help="SPM Monitor: continuous social performance management.", no_args_is_help=True
)
app.add_typer(contracts_app, name="contracts")
app.add_typer(import_app, name="import")
app.add_typer(objectives_app, name="objectives")
app.add_typer(indicators_app, name="indicators")
app.add_typer(users_app, name="users")
app.command("simulate")(simulate_command)
app.command("dev")(dev)
app.command("demo")(demo)
app.command("migrate")(migrate_command)
app.command("report")(report_command)


class LogFormatOption(StrEnum):
    json = "json"
    text = "text"


class Service(StrEnum):
    ingest = "ingest"
    indicators = "indicators"
    objectives = "objectives"
    alerts = "alerts"
    dashboard = "dashboard"


@app.command()
def serve(
    service: Annotated[Service, typer.Argument(help="Which service to run.")],
    host: Annotated[str | None, typer.Option(help="Bind address (default: HTTP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: the <SERVICE>_PORT).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes sharing the port: ingest (the stateless HTTP door) and "
            "indicators (each worker a member of the engine's consumer group, as separate "
            "instances would be).",
        ),
    ] = 1,
    log_format: Annotated[
        LogFormatOption | None,
        typer.Option(help="Logs on stdout: JSON lines or text (default: LOG_FORMAT, json)."),
    ] = None,
    allow_sqlite: Annotated[
        bool,
        typer.Option(
            "--allow-sqlite",
            help="Accept a SQLite DATABASE_URL (one process on one machine; tests and trials).",
        ),
    ] = False,
) -> None:
    """Run one service in the distributed mode (Kafka + PostgreSQL from the settings).

    It refuses to start without KAFKA_BOOTSTRAP_SERVERS and a PostgreSQL DATABASE_URL: without
    Kafka an accepted event would go to an in-process bus that no other service reads.
    ``dashboard`` is the web app with its sign-in and a reverse proxy to the other four; it
    needs PostgreSQL for its accounts, not Kafka.
    """
    import uvicorn

    from services.common.logs import LogFormat, configure_logging
    from services.common.runtime import tune_gc
    from services.common.serving import server_config
    from services.common.settings import get_settings

    settings = get_settings()
    problem = _refusal(service, settings, allow_sqlite)
    if problem:
        typer.echo(f"spm serve {service.value}: {problem}", err=True)
        raise typer.Exit(2)
    chosen = log_format.value if log_format else settings.log_format
    log: tuple[LogFormat, str] = ("text" if chosen == "text" else "json", settings.log_level)
    configure_logging(*log)
    host = host or settings.http_host
    if workers > 1:
        if service not in (Service.ingest, Service.indicators):
            raise typer.BadParameter("only the ingest and indicators services run several workers")
        from spm.workers import serve_workers

        # each worker imports the ASGI module, which builds the app and tunes its gc
        app_path = f"services.{service.value}.asgi:app"
        port = port or getattr(settings, f"{service.value}_port")
        raise typer.Exit(serve_workers(app_path, host, port, workers, log))
    if service is Service.dashboard:
        from spm.accounts.config import DashboardSettings
        from spm.accounts.server import create_dashboard_app

        dashboard = DashboardSettings()
        server = server_config(
            create_dashboard_app(dashboard),
            host,
            port or dashboard.dashboard_port,
            settings,
            log_config=None,
        )
        tune_gc()
        uvicorn.Server(server).run()
        return
    port = port or getattr(settings, f"{service.value}_port")
    module = importlib.import_module(f"services.{service.value}.app")
    service_app = module.create_app(settings)
    tune_gc()
    uvicorn.Server(server_config(service_app, host, port, settings, log_config=None)).run()


def _refusal(service: Service, settings: CommonSettings, allow_sqlite: bool) -> str | None:
    """Why the settings cannot run ``service`` in the distributed mode (None when they can)."""
    if not settings.kafka_bootstrap_servers and service is not Service.dashboard:
        return (
            "KAFKA_BOOTSTRAP_SERVERS is not set; the distributed services need Kafka "
            "(`spm dev` runs everything in one process without it)"
        )
    backend = make_url(settings.database_url).get_backend_name()
    if backend == "sqlite" and not allow_sqlite:
        return (
            "DATABASE_URL is not a PostgreSQL URL (postgresql+asyncpg://…); "
            "SQLite only with --allow-sqlite"
        )
    if backend not in ("postgresql", "sqlite"):
        return f"DATABASE_URL names an unsupported database ({backend}); use PostgreSQL"
    if service is Service.ingest:
        pepper = settings.pseudonym_pepper
        return pepper_problem(pepper.get_secret_value() if pepper else None)
    return None


def main() -> None:
    app()
