"""``spm report``: the board's monthly social performance report (PDF and XLSX) from the
services' APIs, once (``--month``) or on a schedule (``--schedule``, e-mailed to the board)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console

from services.common.errors import SpmError
from spm.report.build import Built, Format, build
from spm.report.data import month_range
from spm.report.fetch import ApiReader

err = Console(stderr=True)


async def _build(
    month: str, formats: list[Format], url: str, bases: dict[str, str], key: str
) -> Built:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        with err.status(f"building the {month} report from {url}…"):
            return await build(ApiReader(client, bases), month, formats)


def report_command(
    month: Annotated[
        str | None, typer.Option(help="The month, YYYY-MM (e.g. 2026-08); not with --schedule.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory the files are written to.")] = Path("."),
    fmt: Annotated[
        list[str] | None,
        typer.Option("--format", help="pdf and/or xlsx (repeat the option; default: both)."),
    ] = None,
    url: Annotated[
        str,
        typer.Option(
            envvar="REPORT_API_URL",
            help="Base URL of the APIs: `spm dev`/`spm demo`'s port, or a gateway in front of "
            "the services.",
        ),
    ] = "http://127.0.0.1:8000",
    indicators_url: Annotated[
        str | None, typer.Option(envvar="REPORT_INDICATORS_URL", help="Indicators API, if apart.")
    ] = None,
    objectives_url: Annotated[
        str | None, typer.Option(envvar="REPORT_OBJECTIVES_URL", help="Objectives API, if apart.")
    ] = None,
    alerts_url: Annotated[
        str | None, typer.Option(envvar="REPORT_ALERTS_URL", help="Alerts API, if apart.")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar=["REPORT_API_KEY", "SPM_API_KEY"],
            help="Bearer key with indicators:read, objectives:read and alerts:read.",
        ),
    ] = None,
    schedule: Annotated[
        bool,
        typer.Option(
            "--schedule",
            help="Run until stopped: e-mail the previous month's report to REPORT_RECIPIENTS on "
            "REPORT_DAY (settings in docs/operations.md).",
        ),
    ] = False,
) -> None:
    """Build the board's social performance report for one month: PDF and XLSX, every figure
    read from the services' APIs for the month's last day."""
    if schedule:
        _schedule(month)
        return
    if month is None:
        raise typer.BadParameter("give --month YYYY-MM (or --schedule)", param_hint="--month")
    try:
        month_range(month)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--month") from None
    formats: list[Format] = []
    for f in fmt or ["pdf", "xlsx"]:
        if f not in ("pdf", "xlsx"):
            raise typer.BadParameter(f"{f!r} is not pdf or xlsx", param_hint="--format")
        formats.append("pdf" if f == "pdf" else "xlsx")
    if not api_key:
        raise typer.BadParameter("give --api-key or set SPM_API_KEY", param_hint="--api-key")
    bases = {
        k: v
        for k, v in (
            ("indicators", indicators_url),
            ("objectives", objectives_url),
            ("alerts", alerts_url),
        )
        if v
    }
    try:
        built = asyncio.run(_build(month, formats, url, bases, api_key))
    except SpmError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out.mkdir(parents=True, exist_ok=True)
    for name, content in built.files.items():
        path = out / built.name(name)
        path.write_bytes(content)
        typer.echo(f"{path} ({len(content):,} bytes)")
    err.print(f"built in {built.seconds:.1f} s; figures as of {built.data.as_of}", highlight=False)


def _schedule(month: str | None) -> None:
    from services.common.logs import configure_logging
    from spm.report.config import ReportSettings
    from spm.report.schedule import run_schedule

    if month is not None:
        raise typer.BadParameter("--schedule sends the previous month; drop --month")
    try:
        settings = ReportSettings()
    except ValidationError as exc:
        raise typer.BadParameter(str(exc), param_hint="REPORT_*") from None
    configure_logging("text", settings.log_level)
    logging.getLogger("spm.report").info("report schedule started")
    asyncio.run(run_schedule(settings))
