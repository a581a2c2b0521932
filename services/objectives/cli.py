"""``spm objectives import|export``: the strategy file, through the same service as the API."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer

from services.common.db import session_factory
from services.objectives import strategy
from services.objectives.app import build_service
from services.objectives.config import ObjectivesSettings
from services.objectives.store import migrate_schema, open_engine

objectives_app = typer.Typer(
    help="Objectives and targets: import and export the strategy file.", no_args_is_help=True
)


class _DryRun(Exception):
    """Raised inside the transaction to roll a validated import back."""


async def _import(
    settings: ObjectivesSettings, text: str, *, author: str, reason: str, dry_run: bool
) -> strategy.ImportResult:
    strategy.parse(text)  # syntax and fields first, before touching the database
    await migrate_schema(settings)
    engine = open_engine(settings)
    try:
        async with session_factory(engine)() as session:
            try:
                async with session.begin():
                    result = await strategy.apply(
                        session, build_service(settings), text, author=author, reason=reason
                    )
                    if dry_run:
                        raise _DryRun
            except _DryRun:
                pass
        return result
    finally:
        await engine.dispose()


async def _export(settings: ObjectivesSettings) -> str:
    await migrate_schema(settings)
    engine = open_engine(settings)
    try:
        async with session_factory(engine)() as session:
            return await strategy.export(session, build_service(settings))
    finally:
        await engine.dispose()


@objectives_app.command("import")
def import_strategy(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="strategy.yaml")],
    author: Annotated[
        str | None, typer.Option(help="Recorded in the audit trail (default: your user name).")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (default: the file name).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate against the database only.")] = False,
) -> None:
    """Apply a strategy file: all of it or nothing. Events reach Kafka through the outbox
    (published by the running objectives service)."""
    settings = ObjectivesSettings()
    try:
        result = asyncio.run(
            _import(
                settings,
                path.read_text(encoding="utf-8"),
                author=author or getpass.getuser(),
                reason=reason or f"strategy import from {path.name}",
                dry_run=dry_run,
            )
        )
    except strategy.StrategyInvalid as exc:
        for error in exc.errors:
            typer.echo(f"{path}:{error}", err=True)
        typer.echo(f"{path}: nothing imported ({len(exc.errors)} error(s))", err=True)
        raise typer.Exit(1) from None
    verb = "would be" if dry_run else "were"
    for name in ("created", "updated", "unchanged"):
        codes = getattr(result, name)
        if codes:
            typer.echo(f"{len(codes)} objective(s) {verb} {name}: {', '.join(codes)}")


@objectives_app.command("export")
def export_strategy(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write the active objectives and targets as a strategy file."""
    text = asyncio.run(_export(ObjectivesSettings()))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
