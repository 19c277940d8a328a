"""Hook implementations of the inventory plugin: wiring only, the logic lives elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pluggy
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from platform_core import HealthCheck, Models, Permission, PluginMeta, hookimpl

if TYPE_CHECKING:
    import typer

    from platform_core import PlatformContext


@hookimpl
def platform_plugin_meta() -> PluginMeta:
    """No other plugin needed; core 0.1.x."""
    return PluginMeta(
        core=">=0.1,<0.2",
        description="Inventory: device types, devices, racks, connections, import/export",
    )


@hookimpl
def platform_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Offer ``inventory_device_delete_veto`` to other plugins."""
    from platform_inventory import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def platform_settings() -> type[BaseModel]:
    """``[plugins.inventory]`` settings."""
    from platform_inventory.settings import InventorySettings

    return InventorySettings


@hookimpl
def platform_models() -> Models:
    """The ``inventory_*`` tables and their migrations."""
    from platform_inventory.models import InventoryBase

    return Models(InventoryBase.metadata, Path(__file__).resolve().parent / "migrations")


@hookimpl
def platform_permissions() -> list[Permission]:
    """Every role reads; admins and operators write (members are read-only)."""
    return [
        Permission(
            "inventory:read", "see the inventory and its history", ("admin", "operator", "member")
        ),
        Permission("inventory:write", "change the inventory, import", ("admin", "operator")),
    ]


@hookimpl
def platform_routes() -> list[APIRouter]:
    """CRUD, topology, import/export and history under ``/api/inventory``."""
    from platform_inventory.routes import router

    return [router]


@hookimpl
def platform_cli(cli: typer.Typer) -> None:
    """``platformctl inventory import|export``."""
    from platform_inventory.cli import register

    register(cli)


@hookimpl
def platform_health(ctx: PlatformContext) -> list[HealthCheck]:
    """The devices table is reachable (fails until migrations have run)."""
    from platform_inventory.models import Device

    async def devices_table() -> None:
        async with ctx.db.session() as session:
            await session.execute(select(Device.id).limit(1))

    return [HealthCheck("devices_table", devices_table)]
