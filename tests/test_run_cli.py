"""The testing kit's ``run_cli``: ``platformctl`` against the ``platform`` fixture's database.

An in-test plugin object adds a command that reads the database; ``run_cli`` must make it
visible to the CLI (as an entry point) and point the CLI at the platform's database (the same
SQLite file, or the same PostgreSQL schema).
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from sqlalchemy import select

from platform_core import PluginMeta, hookimpl
from platform_core.auth.models import User


class UsersPlugin:
    """``platformctl clitest users``: the usernames in the database, one a line."""

    @hookimpl
    def platform_plugin_meta(self) -> PluginMeta:
        return PluginMeta(core=">=0.1,<1", description="run_cli test plugin")

    @hookimpl
    def platform_cli(self, cli: typer.Typer) -> None:
        @cli.command("users")
        def users(ctx: typer.Context, fail: bool = False) -> None:
            from platformctl.runtime import run

            platform = ctx.obj

            async def names() -> list[str]:
                async with platform.db.session() as session:
                    return list(await session.scalars(select(User.username).order_by(User.id)))

            for name in run(platform, names()):
                typer.echo(name)
            if fail:
                typer.echo("failed on purpose", err=True)
                raise typer.Exit(3)


@pytest.fixture
def platform_extra_plugins() -> dict[str, Any]:
    return {"clitest": UsersPlugin()}


async def test_run_cli_sees_the_platform_database_and_in_test_plugins(platform, run_cli):
    await platform.user(username="alice")
    await platform.user(username="bob")
    result = await run_cli("clitest", "users")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["alice", "bob"]
    failed = await run_cli("clitest", "users", "--fail")
    assert failed.exit_code == 3
    assert failed.stderr == "failed on purpose\n"


async def test_run_cli_reports_usage_errors(run_cli):
    result = await run_cli("clitest", "users", "--nope")
    assert result.exit_code == 2
    assert "--nope" in result.stderr
