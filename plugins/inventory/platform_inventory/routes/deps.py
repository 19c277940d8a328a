"""What the inventory routes share: settings, page limits, audit and veto of a request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request

from platform_core import Line, clamp_limit, get_context
from platform_inventory import service
from platform_inventory.settings import InventorySettings

Q = Annotated[Line | None, Query(min_length=1, max_length=100, description="substring")]


def _settings(request: Request) -> InventorySettings:
    return get_context(request).settings_for("inventory", InventorySettings)


def _limit(request: Request, limit: int | None) -> int:
    s = _settings(request)
    return clamp_limit(limit, s.default_page_size, s.max_page_size)


def _audit(request: Request, caller: Any) -> service.Audit:
    return service.Audit(caller.username, getattr(request.state, "request_id", None))


def _veto(request: Request) -> service.Veto:
    return service.hook_veto(get_context(request))
