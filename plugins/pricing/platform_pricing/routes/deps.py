"""Route dependencies: the calling tenant and the plugin's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from platform_core import Caller, DbSession, get_context
from platform_pricing import tenancy
from platform_pricing.settings import PricingSettings


async def current_tenant(session: DbSession, caller: Caller) -> tenancy.Tenant:
    """The admin, client or agent behind the request's credentials."""
    return await tenancy.resolve(session, caller)


def current_settings(request: Request) -> PricingSettings:
    """``[plugins.pricing]`` of the running platform."""
    return get_context(request).settings_for("pricing", PricingSettings)


TenantDep = Annotated[tenancy.Tenant, Depends(current_tenant)]
"""A route parameter type: the calling tenant (admin, client or agent)."""

Settings = Annotated[PricingSettings, Depends(current_settings)]
"""A route parameter type: the pricing settings."""
