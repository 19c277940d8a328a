"""``/api/core/plugins``: what is installed, enabled, active or isolated, and why."""

from __future__ import annotations

from fastapi import APIRouter, Request

from platform_core.auth.deps import get_context
from platform_core.auth.schemas import PluginOut
from platform_core.errors import NotFound
from platform_core.manager import PluginRecord
from platform_core.types import Line

router = APIRouter()


def plugin_out(rec: PluginRecord) -> PluginOut:
    """The API view of a plugin record."""
    return PluginOut(
        name=rec.name,
        version=rec.version,
        distribution=rec.distribution,
        enabled=rec.enabled,
        state=rec.state.value,
        reason=rec.reason,
        requires=[str(r) for r in rec.requires],
        description=rec.meta.description,
    )


@router.get("/plugins", response_model=list[PluginOut])
async def list_plugins(request: Request) -> list[PluginOut]:
    """Every known plugin with its state and, when not active, the reason."""
    ctx = get_context(request)
    return [plugin_out(r) for r in ctx.plugins.records.values() if not r.internal]


@router.get("/plugins/{name}", response_model=PluginOut)
async def get_plugin(name: Line, request: Request) -> PluginOut:
    """One plugin's record."""
    rec = get_context(request).plugins.records.get(name)
    if rec is None or rec.internal:
        raise NotFound(f"plugin {name!r} is not installed")
    return plugin_out(rec)
