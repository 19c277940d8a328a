"""Booting the platform for a command and running its async work to completion.

Plugin commands use these too: ``ctx.obj`` of a ``platformctl <plugin> ...`` command is the
booted platform, and ``run(ctx.obj, coro)`` runs ``coro`` and closes the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from platform_core.config import Config
    from platform_core.context import PlatformContext

T = TypeVar("T")


def quiet_logging() -> None:
    """Show warnings (isolated plugins, ...) on stderr as text, unless logging is set up."""
    root = logging.getLogger()
    if root.handlers:
        return
    from platform_core.observability import TextFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(TextFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def load_config() -> Config:
    """The validated configuration (``PLATFORM_CONFIG``, ``PLATFORM_*`` overrides)."""
    from platform_core.config import load_config as load

    return load()


def boot_platform(config: Config | None = None) -> PlatformContext:
    """The booted platform: plugins loaded, scopes and migration targets collected."""
    from platform_core.app import boot

    quiet_logging()
    return boot(config or load_config())


def run(ctx: PlatformContext, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a fresh event loop, then dispose of the database engine."""

    async def main() -> T:
        try:
            return await coro
        finally:
            await ctx.db.dispose()

    return asyncio.run(main())
