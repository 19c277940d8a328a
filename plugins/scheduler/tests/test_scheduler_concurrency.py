"""Races at the running server (SQLite and PostgreSQL).

- No double booking: 100 concurrent overlapping requests, exactly one wins.
- The per-user ``max_concurrent`` limit: concurrent creates by one user on free windows,
  exactly the limit succeed (PostgreSQL: the owner's advisory lock; SQLite: the write lock).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from platform_core.testing import fresh_database, prepared, served


async def _prepare(config_path: Path) -> tuple[str, int]:
    """Migrate, create an admin with a token and one device; return (token, device id)."""
    from platform_inventory import service as inventory
    from platform_inventory.service import Audit

    async with prepared(config_path) as platform:
        secret = await platform.token(user=await platform.user("admin", "racer"))
        async with platform.ctx.db.session() as session:
            m = await inventory.create_manufacturer(session, "Acme", Audit("t"))
            t = await inventory.create_device_type(
                session, {"manufacturer_id": m.id, "model": "S1"}, Audit("t")
            )
            d = await inventory.create_device(
                session, {"name": "d1", "device_type_id": t.id}, Audit("t")
            )
    return secret, d.id


@pytest.fixture(params=["sqlite", "postgresql"])
async def server(request, tmp_path):
    """A ``platformctl serve`` subprocess with inventory and scheduler on a fresh database."""
    async with fresh_database(request.param, tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "WARNING"\n'
            '[plugins]\nenabled = ["inventory", "scheduler"]\n'
        )
        token, device_id = await _prepare(config)
        async with served(config) as base:
            yield base, token, device_id


async def test_concurrent_overlapping_bookings_exactly_one_succeeds(server):
    base, token, device_id = server
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

    async def attempt(i: int, client: httpx.AsyncClient) -> httpx.Response:
        s = start + timedelta(minutes=i % 30)
        body = {
            "device_ids": [device_id],
            "start": s.isoformat(),
            "end": (s + timedelta(hours=1)).isoformat(),
        }
        return await client.post("/api/scheduler/bookings", json=body)

    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60, limits=limits
    ) as client:
        responses = await asyncio.gather(*(attempt(i, client) for i in range(100)))
        codes = sorted(r.status_code for r in responses)
        assert codes.count(201) == 1, codes
        assert codes.count(409) == 99, codes
        winner = next(r for r in responses if r.status_code == 201).json()["id"]
        for r in responses:
            if r.status_code == 409:
                assert r.json()["conflicting_booking_id"] == winner
        listed = await client.get("/api/scheduler/bookings", params={"device_id": device_id})
        assert [b["id"] for b in listed.json()["items"]] == [winner]


async def test_concurrent_creates_by_one_user_respect_max_concurrent(server):
    base, token, device_id = server
    limit, attempts = 3, 30
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    async with httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        limits=httpx.Limits(max_connections=attempts),
    ) as client:
        device = (await client.get(f"/api/inventory/devices/{device_id}")).json()
        r = await client.post(
            "/api/scheduler/policies",
            json={
                "name": "limit",
                "device_type_id": device["device_type_id"],
                "max_concurrent": limit,
            },
        )
        assert r.status_code == 201, r.text

        async def attempt(i: int) -> httpx.Response:
            s = start + timedelta(hours=2 * i)  # disjoint windows: no double-booking conflict
            body = {
                "device_ids": [device_id],
                "start": s.isoformat(),
                "end": (s + timedelta(hours=1)).isoformat(),
            }
            return await client.post("/api/scheduler/bookings", json=body)

        responses = await asyncio.gather(*(attempt(i) for i in range(attempts)))
        codes = sorted(r.status_code for r in responses)
        assert codes.count(201) == limit, codes
        assert codes.count(409) == attempts - limit, codes
        for r in responses:
            if r.status_code == 409:
                assert f"allows {limit} at a time" in r.json()["detail"], r.text
        listed = await client.get("/api/scheduler/bookings", params={"device_id": device_id})
        assert len(listed.json()["items"]) == limit


@pytest.fixture
async def racing(platform):
    """A device and two principals for service-level races on the test database."""
    from platform_inventory import service as inventory

    from platform_core import Principal

    audit = inventory.Audit("t")
    async with platform.ctx.db.session() as session:
        m = await inventory.create_manufacturer(session, "Acme", audit)
        t = await inventory.create_device_type(
            session, {"manufacturer_id": m.id, "model": "S1"}, audit
        )
        d = await inventory.create_device(session, {"name": "d1", "device_type_id": t.id}, audit)
    users = [
        Principal(user_id=i, username=f"u{i}", role="member", scopes=frozenset()) for i in (1, 2)
    ]
    return platform.ctx, d.id, users


@pytest.mark.parametrize("first_commits", [True, False])
async def test_create_racing_an_uncommitted_booking(racing, first_commits):
    """B books while A's overlapping booking is inserted but not committed: B waits for A
    (PostgreSQL: the exclusion constraint's arbiter; SQLite: the write lock), then gets a
    409 naming A's booking if A commits, or its booking if A rolls back."""
    from platform_scheduler import service

    from platform_core import Conflict

    ctx, device_id, (a, b) = racing
    settings = ctx.plugin_settings("scheduler")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    window = {"device_ids": [device_id], "start": start, "end": start + timedelta(hours=1)}
    later = {**window, "start": start + timedelta(minutes=30), "end": start + timedelta(hours=2)}

    async def create_b() -> Any:
        async with ctx.db.session() as session:
            return (await service.create_booking(session, later, b, settings))[0].id

    session_a = ctx.db.sessionmaker()
    await session_a.begin()
    [booking_a] = await service.create_booking(session_a, window, a, settings)
    await session_a.flush()
    task = asyncio.create_task(create_b())
    await asyncio.sleep(0.5)
    assert not task.done()  # B waits for A's transaction
    if first_commits:
        await session_a.commit()
    else:
        await session_a.rollback()
    await session_a.close()
    if first_commits:
        with pytest.raises(Conflict) as caught:
            await task
        assert caught.value.extra["conflicting_booking_id"] == booking_a.id
    else:
        assert await task > 0
