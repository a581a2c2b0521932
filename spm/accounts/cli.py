"""``spm users``: local accounts of the dashboard, in its database (``DATABASE_URL``).

Passwords are read from a hidden prompt, or from standard input with ``--password-stdin`` (one
line, for scripts), never from the command line where ``ps`` and shell histories would keep
them; they are stored as argon2id hashes only.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from spm.accounts.config import DashboardSettings
from spm.accounts.store import ROLES, AccountError, AccountStore

users_app = typer.Typer(help="Local accounts of the dashboard (people without an identity "
                        "provider).", no_args_is_help=True)  # fmt: skip

T = TypeVar("T")
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _run(work: Callable[[AccountStore], Awaitable[T]]) -> T:
    async def main() -> T:
        store = await AccountStore.open(DashboardSettings())
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except AccountError as exc:
        typer.echo(f"{exc.field}: {exc.reason}", err=True)
        raise typer.Exit(2) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Sign-in name (lower case).")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="Display name (audit trails show it).")] = "",
    branch: Annotated[
        list[str] | None,
        typer.Option(help="A branch the person is limited to (repeat); none = all branches."),
    ] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account."""
    password = _password(password_stdin)
    user = _run(lambda s: s.add(username, name or username, role, password, branch or None))
    scope = ", ".join(user.branches) if user.branches else "all branches"
    typer.echo(f"added {user.username} ({user.role}; {scope})")


@users_app.command("disable")
def disable(username: str) -> None:
    """Disable an account; its sessions end at once."""
    _run(lambda s: s.set_disabled(username, True))
    typer.echo(f"disabled {username}; its sessions are revoked")


@users_app.command("enable")
def enable(username: str) -> None:
    """Enable a disabled account again."""
    _run(lambda s: s.set_disabled(username, False))
    typer.echo(f"enabled {username}")


@users_app.command("reset-password")
def reset_password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password; it also unlocks the account and ends its sessions."""
    password = _password(password_stdin)
    _run(lambda s: s.reset_password(username, password))
    typer.echo(f"new password set for {username}; its sessions are revoked")


@users_app.command("list")
def list_users() -> None:
    """The accounts, one a line: username, role, branches, state."""
    for user in _run(lambda s: s.list()):
        scope = ",".join(user.branches) if user.branches else "*"
        state = "disabled" if user.disabled else ("locked" if user.locked_until else "active")
        typer.echo(f"{user.username}\t{user.role}\t{scope}\t{state}\t{user.display_name}")
