"""``spm simulate``: run a synthetic MFI into ingest, the bus, or files."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from spm.simulator.config import DEFAULT_START, Scenario, SimConfig
from spm.simulator.engine import SimDay
from spm.simulator.runner import RunStats, run
from spm.simulator.sinks import BusSink, CsvSink, HttpSink, NdjsonSink, Sink, SinkError


class Output(StrEnum):
    http = "http"
    kafka = "kafka"
    ndjson = "ndjson"
    csv = "csv"


def _day(value: str) -> date:
    return datetime.strptime(value, "%Y-%m-%d").date()  # noqa: DTZ007 - a calendar date


def simulate_command(
    to: Annotated[Output, typer.Option(help="Where the events go.")] = Output.ndjson,
    out: Annotated[
        Path, typer.Option(help="NDJSON file, or CSV directory (for --to ndjson/csv).")
    ] = Path("var/simulated.ndjson"),
    url: Annotated[str, typer.Option(help="Ingest base URL (for --to http).")] = (
        "http://127.0.0.1:8001"
    ),
    api_key: Annotated[
        str | None,
        typer.Option(envvar="SPM_API_KEY", help="Bearer key with ingest:write (--to http)."),
    ] = None,
    scenario: Annotated[Scenario, typer.Option(help="baseline or drift.")] = Scenario.baseline,
    seed: Annotated[int, typer.Option(help="Same seed, same events.")] = 42,
    start: Annotated[
        str, typer.Option(help="First simulated day (YYYY-MM-DD).")
    ] = DEFAULT_START.isoformat(),
    days: Annotated[int, typer.Option(min=1, help="Simulated days.")] = 365,
    branches: Annotated[int, typer.Option(min=1)] = 4,
    products: Annotated[int, typer.Option(min=1, max=5)] = 3,
    clients: Annotated[int, typer.Option(min=0, help="Clients of the opening book.")] = 1200,
    officers: Annotated[int, typer.Option(min=1)] = 12,
    drift_branch: Annotated[str | None, typer.Option(help="Default: BR-MSA.")] = None,
    control_branch: Annotated[str | None, typer.Option(help="Default: BR-NAI.")] = None,
    drift_start_day: Annotated[int | None, typer.Option(min=0)] = None,
    drift_ramp_days: Annotated[int | None, typer.Option(min=0)] = None,
    source: Annotated[str, typer.Option(help="CloudEvents source.")] = "sim:mfi",
    currency: Annotated[str, typer.Option(help="The institution's currency.")] = "KES",
    days_per_second: Annotated[
        float | None, typer.Option(help="Pace (default: as fast as possible).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No per-day progress.")] = False,
) -> None:
    """Simulate an MFI's event history (deterministic for a seed) and send it somewhere.

    --to kafka publishes canonical events straight onto KAFKA_BOOTSTRAP_SERVERS, pseudonymised
    with PSEUDONYM_PEPPER as ingest would (no dedup store): for load tests.
    """
    try:
        config = SimConfig(
            seed=seed, start=_day(start), days=days, branches=branches, products=products,
            clients=clients, officers=officers, scenario=scenario, drift_branch=drift_branch,
            control_branch=control_branch, drift_start_day=drift_start_day,
            drift_ramp_days=drift_ramp_days, source=source, currency=currency,
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    def progress(sim_day: SimDay) -> None:
        if not quiet:
            typer.echo(f"{sim_day.day.isoformat()}  {len(sim_day.events):6d} events")

    try:
        stats = asyncio.run(_run(config, to, out, url, api_key, days_per_second, progress))
    except SinkError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    rate = stats.days / stats.seconds if stats.seconds else float("inf")
    typer.echo(
        f"{stats.days} days, {stats.events} events in {stats.seconds:.1f} s ({rate:.1f} days/s)"
    )


async def _run(
    config: SimConfig,
    to: Output,
    out: Path,
    url: str,
    api_key: str | None,
    days_per_second: float | None,
    progress: Callable[[SimDay], None],
) -> RunStats:
    sink = _sink(config, to, out, url, api_key)
    return await run(config, sink, days_per_second=days_per_second, on_day=progress)


def _sink(config: SimConfig, to: Output, out: Path, url: str, api_key: str | None) -> Sink:
    if to is Output.ndjson:
        return NdjsonSink(out)
    if to is Output.csv:
        return CsvSink(out if out.suffix == "" else out.with_suffix(""), config.source)
    if to is Output.http:
        if not api_key:
            raise typer.BadParameter("--to http needs --api-key or SPM_API_KEY")
        return HttpSink(url, api_key)
    from services.common.bus import create_bus
    from services.common.settings import get_settings

    settings = get_settings()
    pepper = settings.pseudonym_pepper
    if not settings.kafka_bootstrap_servers or pepper is None:
        raise typer.BadParameter("--to kafka needs KAFKA_BOOTSTRAP_SERVERS and PSEUDONYM_PEPPER")
    bus = create_bus(settings)
    return BusSink(bus, pepper.get_secret_value(), config.currency, close_bus=True)
