"""Fixtures of the scheduler's tests: the ``platform`` fixture enables inventory + scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


@pytest.fixture
def platform_plugins() -> list[str]:
    """The ``platform`` fixture enables the inventory and the scheduler."""
    return ["inventory", "scheduler"]


def _at(hours: float, length: float = 1.0) -> dict[str, str]:
    """A window starting ``hours`` from the next full hour, ``length`` hours long."""
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = base + timedelta(hours=hours)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=length)).isoformat()}


@pytest.fixture
async def lab(admin_client):
    """A device type ``S1`` (ports eth0, eth1) and four devices d1..d4; d1-eth0 <-> d2-eth0."""
    m = (await admin_client.post("/api/inventory/manufacturers", json={"name": "Acme"})).json()
    t = await admin_client.post(
        "/api/inventory/device-types",
        json={"manufacturer_id": m["id"], "model": "S1", "port_names": ["eth0", "eth1"]},
    )
    assert t.status_code == 201, t.text
    devices = []
    for i in range(1, 5):
        r = await admin_client.post(
            "/api/inventory/devices",
            json={
                "name": f"d{i}",
                "device_type_id": t.json()["id"],
                "tags": ["gpu"] if i == 4 else [],
            },
        )
        assert r.status_code == 201, r.text
        devices.append(r.json())
    ports = {}
    for d in devices[:2]:
        r = await admin_client.get(f"/api/inventory/devices/{d['id']}/ports")
        ports[d["id"]] = {p["name"]: p["id"] for p in r.json()}
    r = await admin_client.post(
        "/api/inventory/connections",
        json={
            "a_port_id": ports[devices[0]["id"]]["eth0"],
            "b_port_id": ports[devices[1]["id"]]["eth0"],
        },
    )
    assert r.status_code == 201, r.text
    return {"type": t.json(), "devices": devices, "ids": [d["id"] for d in devices]}


@pytest.fixture
def at():
    """``at(hours, length=1)``: a window ``hours`` after the next full hour (ISO strings)."""
    return _at
