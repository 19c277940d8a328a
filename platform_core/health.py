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


async def database_ready(ctx: PlatformContext) -> None:
    """Raise unless the database answers and holds every active plugin's tables.

    ``SELECT 1`` alone passes on a database whose tables were dropped (or that was reset
    and never migrated) while every request fails; this also checks that each table of
    the active plugins' models, and each plugin's alembic version table, exists.
    """
    await ctx.db.ping()
    present = await ctx.db.table_names()
    active = {r.name for r in ctx.plugins.active_records()}
    missing = sorted(
        name
        for target in ctx.state.get("migration_targets", [])
        if target.plugin in active
        for name in [target.version_table, *(t.name for t in target.metadata.tables.values())]
        if name not in present
    )
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise RuntimeError(
            f"missing tables: {', '.join(missing[:5])}{more} (run `platformctl db upgrade`)"
        )


async def run_checks(
    ctx: PlatformContext, *, readiness_only: bool = False
) -> tuple[bool, list[dict[str, Any]]]:
    """Run the checks concurrently; ``(all ok, per-check results)``.

    ``readiness_only``: leave out the diagnostics (``HealthCheck(readiness=False)``), as
    ``/readyz`` does; ``doctor`` runs them all.
    """
    jobs = [
        _run(f"{plugin}.{c.name}", c.check, c.timeout)
        for plugin, c in ctx.health_checks
        if c.readiness or not readiness_only
    ]
    results = list(await asyncio.gather(*jobs))
    return all(r["ok"] for r in results), results


def failed_plugins(ctx: PlatformContext) -> list[dict[str, str]]:
    """Enabled plugins that are not serving: ``{"name", "state", "reason"}`` each, by name."""
    return [
        {"name": name, "state": ctx.plugins.records[name].state.value, "reason": reason}
        for name, reason in sorted(ctx.plugins.failures().items())
    ]


async def readiness(ctx: PlatformContext) -> tuple[bool, dict[str, Any]]:
    """``/readyz``: ``(ready, body)``; every check, and the enabled plugins not serving.

    Failed plugins make it not ready only with ``[core] ready_with_isolated_plugins =
    false`` (for orchestrators that should not route traffic to a half-working instance).
    """
    ok, checks = await run_checks(ctx, readiness_only=True)
    failed = failed_plugins(ctx)
    if failed and not ctx.config.core.ready_with_isolated_plugins:
        ok = False
    return ok, {"status": "ok" if ok else "unavailable", "checks": checks, "plugins": failed}
