"""The ``spm`` command: the composition root, the only code that imports more than one service."""

from __future__ import annotations

import importlib
from enum import StrEnum
from typing import Annotated

import typer

from contracts.cli import contracts_app
from services.ingest.cli import import_app
from services.objectives.cli import objectives_app
from spm.devcli import demo, dev
from spm.simulator.cli import simulate_command

app = typer.Typer(
    help="SPM Monitor: continuous social performance management.", no_args_is_help=True
)
app.add_typer(contracts_app, name="contracts")
app.add_typer(import_app, name="import")
app.add_typer(objectives_app, name="objectives")
app.command("simulate")(simulate_command)
app.command("dev")(dev)
app.command("demo")(demo)


class Service(StrEnum):
    ingest = "ingest"
    indicators = "indicators"
    objectives = "objectives"
    alerts = "alerts"


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
) -> None:
    """Run one service in the distributed mode (Kafka + PostgreSQL from the settings)."""
    import uvicorn

    from services.common.runtime import tune_gc
    from services.common.serving import server_config
    from services.common.settings import get_settings

    settings = get_settings()
    host = host or settings.http_host
    port = port or getattr(settings, f"{service.value}_port")
    if workers > 1:
        if service not in (Service.ingest, Service.indicators):
            raise typer.BadParameter("only the ingest and indicators services run several workers")
        from spm.workers import serve_workers

        # each worker imports the ASGI module, which builds the app and tunes its gc
        raise typer.Exit(serve_workers(f"services.{service.value}.asgi:app", host, port, workers))
    module = importlib.import_module(f"services.{service.value}.app")
    service_app = module.create_app(settings)
    tune_gc()
    uvicorn.Server(server_config(service_app, host, port, settings, log_config=None)).run()


def main() -> None:
    app()
