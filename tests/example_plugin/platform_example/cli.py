"""``platformctl example ...``: admin commands of the example plugin."""

from __future__ import annotations

from typing import Annotated

import typer

from platform_core import PlatformContext, run_command
from platform_example import service


async def _count(platform: PlatformContext, owner_id: int | None) -> int:
    async with platform.db.session() as session:
        return await service.count_notes(session, owner_id)


def count(
    cli: typer.Context,
    owner: Annotated[int | None, typer.Option(help="Only this user id's notes.")] = None,
) -> None:
    """Print how many notes are stored."""
    platform: PlatformContext = cli.obj
    typer.echo(run_command(platform, _count(platform, owner)))


def register(cli: typer.Typer) -> None:
    """Add the plugin's commands to its ``platformctl example`` group."""
    cli.command("count")(count)
