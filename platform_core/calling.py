"""Calling plugin callables with the arguments they ask for, by parameter name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4096)
def _wanted(func: Callable[..., Any]) -> tuple[tuple[str, ...], bool]:
    params = inspect.signature(func).parameters.values()
    names = tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def call_with_available(func: Callable[..., Any], **available: Any) -> Any:
    """Call ``func`` with those of ``available`` its signature names (all with ``**kw``).

    So a job can be ``async def job()``, ``async def job(ctx)`` or ``async def job(ctx,
    run)``, and an event handler ``async def on_event(event)`` or ``(event, ctx)``.
    """
    names, takes_all = _wanted(func)
    if takes_all:
        return func(**available)
    return func(**{n: available[n] for n in names if n in available})
