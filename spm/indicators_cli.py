"""``spm indicators``: the operator's commands for the indicator engine (status, tick, rebuild,
switch). The work is in services/indicators/operations.py; this module only renders it, with
``rich`` for tables and the progress bar (on stderr, so that ``--json`` on stdout stays clean).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from services.common.errors import SpmError
from services.indicators import operations as ops
from services.indicators.config import IndicatorSettings

indicators_app = typer.Typer(
    help="Operate the indicator engine: status, tick, rebuild, switch.", no_args_is_help=True
)
err = Console(stderr=True)
T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
SchemaOption = Annotated[
    str | None, typer.Option(help="Schema to look at (default: INDICATORS_DB_SCHEMA).")
]
GroupOption = Annotated[
    str | None, typer.Option(help="Consumer group (default: INDICATORS_GROUP_ID).")
]


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine; an operational failure is a message and exit code 1."""
    try:
        return asyncio.run(work)
    except SpmError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _settings(schema: str | None = None, group: str | None = None) -> IndicatorSettings:
    settings = IndicatorSettings()
    if schema is None and group is None:
        return settings
    try:
        return ops.with_target(
            settings, schema or settings.indicators_db_schema, group or settings.indicators_group_id
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2))


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@indicators_app.command()
def status(
    schema: SchemaOption = None, group: GroupOption = None, as_json: JsonOption = False
) -> None:
    """Per-partition lag (the engine's own offsets against the topics' ends), last batch, the
    parameters in force and the business date."""
    state = _run(ops.status(_settings(schema, group)))
    if as_json:
        _print_json(state.as_json())
        return
    out = Console()
    if not state.exists:
        out.print(f"schema {state.schema} holds no indicators yet (the engine never ran on it)")
    table = Table(title=f"indicators: schema {state.schema}, group {state.group}")
    for column in ("topic", "partition", "committed", "end", "lag", "last batch"):
        table.add_column(column, justify="left" if column in ("topic", "last batch") else "right")
    for p in state.partitions:
        committed = "-" if p.committed is None else f"{p.committed:,}"
        table.add_row(
            p.topic, str(p.partition), committed, f"{p.end:,}", f"{p.lag:,}", _when(p.last_batch)
        )
    out.print(table)
    out.print(f"lag {state.lag:,} events; last batch {_when(state.last_batch)}; business date "
              f"{state.business_date or '-'}")  # fmt: skip
    params = Table(title="parameters")
    params.add_column("setting")
    params.add_column("in force (recorded)")
    params.add_column("environment")
    for name, value in state.environment.items():
        recorded = state.recorded.get(name, "-")
        style = "red" if name in state.mismatched else None
        params.add_row(name, recorded, value, style=style)
    out.print(params)
    if state.mismatched:
        out.print(
            "[red]the environment differs from the recorded parameters: the service refuses to "
            "start with it; rebuild (spm indicators rebuild) to apply the new values[/red]"
        )


@indicators_app.command()
def tick(
    schema: SchemaOption = None, group: GroupOption = None, as_json: JsonOption = False
) -> None:
    """Run the engine's daily tick once, now: the business date moves to today (in
    INSTITUTION_TIMEZONE, never backwards), so ageing and inferred exits advance without
    events. The running service's emitter publishes what changed at its next interval."""
    before, after = _run(ops.run_tick(_settings(schema, group)))
    if as_json:
        _print_json(
            {
                "before": None if before is None else before.isoformat(),
                "business_date": None if after is None else after.isoformat(),
            }
        )
        return
    typer.echo(f"business date {before or '-'} -> {after}")


class _Rate(ProgressColumn):
    """Events per second: rich's estimate over the last minute, else the average so far (the
    engine commits a batch every few seconds, so a short window can hold a single sample)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None and task.elapsed:
            speed = (task.completed - task.fields["first"]) / task.elapsed
        return Text("- ev/s" if speed is None else f"{speed:,.0f} ev/s")


def _default_name(base: str, separator: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M")
    return f"{base[: 62 - len(stamp)]}{separator}{stamp}"


async def _rebuild(
    target: IndicatorSettings, in_force: IndicatorSettings, refresh_s: float
) -> dict[str, Any]:
    started = time.monotonic()
    async with ops.Rebuild(target, in_force) as rebuild:
        progress = await rebuild.progress()
        with Progress(
            TextColumn("rebuild"),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TextColumn("lag {task.fields[lag]:,}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=err,
            speed_estimate_period=60,
        ) as bar:
            task = bar.add_task(
                "rebuild",
                total=progress.total,
                completed=progress.done,
                lag=progress.lag,
                first=progress.done,
            )
            first_done = progress.done
            while True:
                progress = await rebuild.progress()
                bar.update(task, completed=progress.done, lag=progress.lag)
                if progress.finished:
                    break
                rebuild.check_running()
                await asyncio.sleep(refresh_s)
        parameters = target.stored_parameters()
    seconds = time.monotonic() - started
    applied = progress.done - first_done
    return {
        "schema": target.indicators_db_schema,
        "group": target.indicators_group_id,
        "events": progress.total,
        "applied": applied,
        "seconds": round(seconds, 1),
        "events_per_second": round(applied / seconds) if seconds > 0 else None,
        "lag": progress.lag,
        "parameters": parameters,
        "switch": (
            f"spm indicators switch --schema {target.indicators_db_schema} "
            f"--group {target.indicators_group_id}"
        ),
    }


@indicators_app.command()
def rebuild(
    schema: Annotated[
        str | None,
        typer.Option(help="Fresh schema to build into (default: the current one + a timestamp)."),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="Fresh consumer group (default: the current one + a timestamp)."),
    ] = None,
    refresh: Annotated[float, typer.Option(min=0.1, help="Seconds between progress reads.")] = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Rebuild every indicator from the topics into a fresh schema and consumer group, with the
    parameters of this environment (set the new value, e.g. INDICATORS_SLA_DAYS=45, before
    running it). Ends once every event the topics held at the start is applied; the running
    service is untouched. Then `spm indicators switch` gives the settings to switch over.
    Interrupted, it resumes from its last batch when run again with the same names."""
    in_force = IndicatorSettings()
    schema = schema or _default_name(in_force.indicators_db_schema, "_")
    group = group or _default_name(in_force.indicators_group_id, "-")
    target = _settings(schema, group)
    if not as_json:
        err.print(f"rebuilding into schema {schema}, group {group}", highlight=False)
    result = _run(_rebuild(target, in_force, refresh))
    if as_json:
        _print_json(result)
        return
    typer.echo(
        f"rebuilt {result['events']:,} events into schema {schema} (group {group}) in "
        f"{result['seconds']} s; {result['lag']:,} newer events are left for the service"
    )
    typer.echo(f"switch over with: {result['switch']}")


@indicators_app.command()
def switch(
    schema: Annotated[str, typer.Option(help="The rebuilt schema.")],
    group: Annotated[str, typer.Option(help="The rebuild's consumer group.")],
    max_lag: Annotated[
        int, typer.Option(min=0, help="Refuse if the rebuild is more events behind than this.")
    ] = 50_000,
    env_file: Annotated[
        Path | None,
        typer.Option(help="Also set them in this KEY=VALUE file (compose env_file, systemd)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the settings that put `spm serve indicators` on a rebuilt schema: the schema, the
    group and the parameters recorded there, as KEY=VALUE lines. Apply them to the service's
    environment and restart it, e.g. `kubectl set env deployment/indicators $(spm indicators
    switch --schema S --group G)`, or with --env-file for a compose/systemd env file."""
    values, state = _run(ops.switch_settings(IndicatorSettings(), schema, group, max_lag))
    if env_file is not None:
        ops.update_env_file(env_file, values)
    if as_json:
        _print_json({"settings": values, "lag": state.lag, "env_file": env_file and str(env_file)})
        return
    for key, value in values.items():
        typer.echo(f"{key}={value}")
    err.print(
        f"schema {schema} is {state.lag:,} events behind; set these in the indicator service's "
        "environment and restart it (it continues from the rebuild's offsets). The old schema "
        "stays until you drop it.",
        highlight=False,
    )
