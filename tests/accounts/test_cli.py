"""``spm users`` against a real (SQLite) accounts database: the password comes from standard
input or a hidden prompt, never the command line, and is never echoed."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from spm.cli import app

PASSWORD = "the operator's long password"


def _env(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}"}


def test_add_list_disable_and_reset(tmp_path: Path) -> None:
    runner, env = CliRunner(), _env(tmp_path)
    added = runner.invoke(
        app,
        ["users", "add", "wanjiru", "--role", "branch_manager", "--name", "Wanjiru K",
         "--branch", "BR-MSA", "--branch", "BR-NAI", "--password-stdin"],
        input=PASSWORD + "\n", env=env,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added wanjiru (branch_manager; BR-MSA, BR-NAI)" in added.output
    prompted = runner.invoke(
        app, ["users", "add", "otieno", "--role", "viewer"],
        input=f"{PASSWORD}\n{PASSWORD}\n", env=env,
    )  # fmt: skip
    assert prompted.exit_code == 0, prompted.output
    listed = runner.invoke(app, ["users", "list"], env=env)
    assert listed.output.splitlines() == [
        "otieno\tviewer\t*\tactive\totieno",
        "wanjiru\tbranch_manager\tBR-MSA,BR-NAI\tactive\tWanjiru K",
    ]
    assert runner.invoke(app, ["users", "disable", "wanjiru"], env=env).exit_code == 0
    assert (
        "wanjiru\tbranch_manager\tBR-MSA,BR-NAI\tdisabled"
        in runner.invoke(app, ["users", "list"], env=env).output
    )
    reset = runner.invoke(
        app, ["users", "reset-password", "otieno", "--password-stdin"],
        input="another long password\n", env=env,
    )  # fmt: skip
    assert reset.exit_code == 0 and "sessions are revoked" in reset.output
    for result in (added, prompted, listed, reset):
        assert PASSWORD not in result.output and "another long password" not in result.output


def test_refusals_name_the_field(tmp_path: Path) -> None:
    runner, env = CliRunner(), _env(tmp_path)
    short = runner.invoke(
        app, ["users", "add", "bob", "--role", "viewer", "--password-stdin"],
        input="short\n", env=env,
    )  # fmt: skip
    assert short.exit_code == 2 and "password: shorter than 12 characters" in short.output
    unknown = runner.invoke(app, ["users", "disable", "nobody"], env=env)
    assert unknown.exit_code == 2 and "username: no such account" in unknown.output
