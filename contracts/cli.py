"""``spm contracts …``: regenerate and check the committed contract artefacts.

Mount it in the ``spm`` CLI with ``app.add_typer(contracts_app, name="contracts")``; it also runs
on its own as ``python -m contracts.cli``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from contracts.compat import check_history
from contracts.export import canonical_schemas, check_all, export_all

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HISTORY_DIR = Path("contracts") / "history"

contracts_app = typer.Typer(
    help="Contract v1 artefacts: JSON Schemas, AsyncAPI document, examples.",
    no_args_is_help=True,
)

RootOption = Annotated[
    Path,
    typer.Option(
        "--root",
        help="Project root holding contracts/ (default: this checkout).",
        file_okay=False,
    ),
]


@contracts_app.callback()
def _contracts() -> None:
    """Contract v1 artefacts: JSON Schemas, AsyncAPI document, examples."""


@contracts_app.command("export")
def export_command(
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if a file differs from the code."),
    ] = False,
    root: RootOption = PROJECT_ROOT,
) -> None:
    """Generate contracts/schemas, contracts/asyncapi.yaml and contracts/examples."""
    if check:
        differ = check_all(root)
        if differ:
            typer.echo(f"{len(differ)} contract artefact(s) out of date:", err=True)
            for rel in differ:
                typer.echo(f"  {rel}", err=True)
            typer.echo("Run `spm contracts export` and commit the result.", err=True)
            raise typer.Exit(code=1)
        typer.echo("Contract artefacts are up to date.")
        return
    paths = export_all(root)
    typer.echo(f"Wrote {len(paths)} contract artefacts under {root / 'contracts'}.")


@contracts_app.command("compat")
def compat_command(root: RootOption = PROJECT_ROOT) -> None:
    """Check the current schemas against every released version (FULL compatibility)."""
    violations = check_history(root / HISTORY_DIR, canonical_schemas())
    if violations:
        typer.echo(f"{len(violations)} compatibility violation(s):", err=True)
        for violation in violations:
            typer.echo(f"  {violation}", err=True)
        typer.echo("Keep the change compatible or introduce a new major version.", err=True)
        raise typer.Exit(code=1)
    typer.echo("Current schemas are compatible with every released version.")


if __name__ == "__main__":
    contracts_app()
