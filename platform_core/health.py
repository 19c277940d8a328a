"""Readiness: the database and every plugin's health checks, each bounded by a timeout."""

from __future__ import annotations

import asyncio
from typing import Any

from platform_core.context import PlatformContext


async def _run(name: str, check: Any, timeout: float) -> dict[str, Any]:
    try:
        await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        return {"name": name, "ok": False, "error": f"timed out after {timeout}s"}
    except Exception as exc:  # a failing check is a result, not a crash
        return {"name": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"name": name, "ok": True}


async def run_checks(ctx: PlatformContext) -> tuple[bool, list[dict[str, Any]]]:
    """Run every check concurrently; ``(all ok, per-check results)``."""
    jobs = [_run(f"{plugin}.{c.name}", c.check, c.timeout) for plugin, c in ctx.health_checks]
    results = list(await asyncio.gather(*jobs))
    return all(r["ok"] for r in results), results
