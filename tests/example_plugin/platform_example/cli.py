"""``platformctl example ...``: admin commands of the example plugin."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from platform_core.config import load_config
from platform_core.db import Database
from platform_example import service


async def _count(database_url: str, owner_id: int | None) -> int:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return await service.count_notes(session, owner_id)
    finally:
        await db.dispose()


def count(
    owner: Annotated[int | None, typer.Option(help="Only this user id's notes.")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Database URL; default: [core] database_url.")
    ] = None,
) -> None:
    """Print how many notes are stored."""
    url = database_url or load_config().core.database_url
    typer.echo(asyncio.run(_count(url, owner)))


def register(cli: typer.Typer) -> None:
    """Add the plugin's commands to its ``platformctl example`` group."""
    cli.command("count")(count)
