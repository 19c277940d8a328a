"""Fixtures of the inventory plugin's tests: the ``platform`` fixture enables inventory."""

from __future__ import annotations

import pytest


@pytest.fixture
def platform_plugins() -> list[str]:
    """The ``platform`` fixture enables the inventory plugin alone."""
    return ["inventory"]


@pytest.fixture
async def catalogue(admin_client):
    """A manufacturer, a device type with ports and custom fields, a site > room, a 10U rack."""
    m = (await admin_client.post("/api/inventory/manufacturers", json={"name": "Acme"})).json()
    t = await admin_client.post(
        "/api/inventory/device-types",
        json={
            "manufacturer_id": m["id"],
            "model": "S1",
            "u_height": 2,
            "port_names": ["eth0", "eth1"],
            "custom_fields": [
                {"name": "owner", "type": "string", "required": True},
                {"name": "cores", "type": "int", "default": 4},
                {"name": "pci", "type": "bool"},
                {"name": "bought", "type": "date"},
                {"name": "tier", "type": "enum", "choices": ["gold", "silver"]},
            ],
        },
    )
    assert t.status_code == 201, t.text
    site = (await admin_client.post("/api/inventory/locations", json={"name": "Site"})).json()
    room = (
        await admin_client.post(
            "/api/inventory/locations",
            json={"name": "Room", "kind": "room", "parent_id": site["id"]},
        )
    ).json()
    rack = (
        await admin_client.post(
            "/api/inventory/racks", json={"name": "R1", "location_id": room["id"], "u_height": 10}
        )
    ).json()
    return {"manufacturer": m, "type": t.json(), "site": site, "room": room, "rack": rack}
