"""Thin HTTP layer over the inventory service, mounted under ``/api/inventory``."""

from __future__ import annotations

from fastapi import APIRouter

from platform_inventory.routes import (
    connections,
    device_types,
    devices,
    history,
    locations,
    manufacturers,
    racks,
)

router = APIRouter()
for _module in (manufacturers, device_types, locations, racks, devices, connections, history):
    router.include_router(_module.router)
