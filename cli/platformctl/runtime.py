"""Booting the platform for a command and running its async work to completion.

A plugin command gets the booted platform as ``ctx.obj`` and runs its async work with
``platform_core.run_command(ctx.obj, coro)``; ``run`` here is the CLI's own.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from platform_core._deprecation import moved_names

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
    """Run ``coro`` in a fresh event loop, then dispose of the database engine.

    Plugins: use :func:`platform_core.run_command` (this path is deprecated for them).
    """
    from platform_core.running import run_command

    return run_command(ctx, coro)


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "run": "platform_core.run_command",
    },
)
