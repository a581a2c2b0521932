"""``spm import csv``: backfill events from core-banking CSV exports."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.ingest.app import pipeline_resources, pseudonymiser_of
from services.ingest.config import IngestSettings
from services.ingest.csv_import import ImportReport, import_csv
from services.ingest.errors import IngestError, PublishFailed
from services.ingest.mapping import EventMapping, MappingError, load_mappings

import_app = typer.Typer(help="Import events from files (backfills).", no_args_is_help=True)


@import_app.callback()
def _group() -> None:
    """Import events from files (backfills)."""


@import_app.command("csv")
def csv_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The CSV file.")],
    mapping: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Column mapping (YAML).")
    ],
    type_: Annotated[
        str | None,
        typer.Option("--type", help="Event type; must match the mapping's type if both given."),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="CloudEvents source (default: the mapping's).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Where to write rejected rows (default: FILE.rejected.csv)")
    ] = None,
    delimiter: Annotated[str, typer.Option(help="Field delimiter.")] = ",",
) -> None:
    """Send every row through validation, pseudonymisation, dedup and publishing.

    Runs in-process against KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (and needs
    PSEUDONYM_PEPPER). Re-running on the same file adds nothing.
    """
    try:
        mappings = load_mappings(mapping)
    except MappingError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mapping") from None
    if len(mappings) != 1:
        raise typer.BadParameter("a CSV mapping describes one event type", param_hint="--mapping")
    event_mapping = mappings[0]
    if type_ is not None and type_ != event_mapping.type:
        raise typer.BadParameter(f"the mapping makes {event_mapping.type}", param_hint="--type")
    chosen_source = source or event_mapping.source
    if not chosen_source:
        raise typer.BadParameter("give --source or a source in the mapping", param_hint="--source")
    settings = IngestSettings()
    try:
        result = asyncio.run(_run(file, event_mapping, settings, chosen_source, delimiter))
    except PublishFailed as exc:
        typer.echo(f"Kafka or the database is unavailable ({exc}); re-run later: it is safe.")
        raise typer.Exit(3) from None
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    report_path = report or file.with_name(file.name + ".rejected.csv")
    result.write(report_path)
    typer.echo(
        f"{result.rows} rows: {result.accepted} accepted, {result.duplicates} duplicates, "
        f"{result.rejected_rows} rejected, {result.skipped} skipped; "
        f"rejected rows in {report_path}"
    )
    if result.rejected_rows:
        raise typer.Exit(1)


async def _run(
    file: Path, mapping: EventMapping, settings: IngestSettings, source: str, delimiter: str
) -> ImportReport:
    total = _count_rows(file)
    async with pipeline_resources(settings) as (pipeline, _):
        with Progress(
            TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as bar:
            task = bar.add_task("rows", total=total)
            return await import_csv(
                file,
                mapping,
                pipeline,
                pseudonymiser_of(settings),
                source=source,
                timezone=mapping.timezone or settings.institution_timezone,
                delimiter=delimiter,
                progress=lambda n: bar.advance(task, n),
            )


def _count_rows(file: Path) -> int:
    with file.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)
