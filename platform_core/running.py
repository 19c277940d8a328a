"""Running a plugin's async work from its ``platformctl <plugin> ...`` command."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from platform_core.context import PlatformContext

T = TypeVar("T")


def run_command(ctx: PlatformContext, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in a fresh event loop, then close the database engine.

    In a plugin's CLI command, ``ctx`` is the booted platform, ``typer.Context.obj``::

        def count(cli: typer.Context) -> None:
            platform: PlatformContext = cli.obj
            typer.echo(run_command(platform, service.count(platform)))
    """

    async def main() -> T:
        from platform_core.auth.invalidation import flush
        from platform_core.notifications import live
        from platform_core.shared import close_clients

        try:
            return await coro
        finally:
            await flush(ctx)  # credential invalidations published by the command
            await live.flush(ctx)  # and live notifications it created
            await close_clients(ctx)
            await ctx.db.dispose()

    return asyncio.run(main())
