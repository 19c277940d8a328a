"""Filtered, paginated device list with 100,000 devices: p50/p99 through the API in-process.

Setup bulk-inserts the devices with SQL (one manufacturer, one type, a location tree and 50
racks; statuses, tags and a custom field spread over the rows), then requests go through the
whole platform app (middleware, guard, token check, route, service) over
``httpx.ASGITransport``. Queries: first pages and cursor-followed pages, filtered by status,
location (with descendants), tag, custom field, and sorted by name or ``-created_at``.
Run on SQLite and, when reachable, on a fresh PostgreSQL database.

Target: p50 under 20 ms on both. Figures only. Run: ``.venv/bin/python bench/inventory_list.py``.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from _common import fresh_pg_database, header, make_config, pg_reachable, row
from platform_inventory.models import (
    CustomFieldValue,
    Device,
    DeviceTag,
    DeviceType,
    Location,
    Manufacturer,
    Rack,
)
from sqlalchemy import insert

from platform_core.app import boot, create_app
from platform_core.auth import service as auth
from platform_core.db import utcnow
from platform_core.migrate import upgrade

DEVICES = 100_000
REQUESTS = 200
STATUSES = ("planned", "active", "offline", "maintenance", "retired")


async def populate(ctx) -> None:
    """Insert the catalogue and DEVICES devices directly (fast setup, not measured)."""
    now = utcnow()
    async with ctx.db.session() as s:
        await s.execute(
            insert(Manufacturer).values(id=1, name="Acme", created_at=now, updated_at=now)
        )
        await s.execute(
            insert(DeviceType).values(
                id=1,
                manufacturer_id=1,
                model="S1",
                u_height=1,
                full_depth=True,
                port_names=[],
                custom_fields=[{"name": "owner", "type": "string"}],
                created_at=now,
                updated_at=now,
            )
        )
        locs = [{"id": 1, "name": "site", "kind": "site", "parent_id": None}]
        locs += [
            {"id": i, "name": f"room{i}", "kind": "room", "parent_id": 1} for i in range(2, 12)
        ]
        await s.execute(
            insert(Location), [loc | {"created_at": now, "updated_at": now} for loc in locs]
        )
        await s.execute(
            insert(Rack),
            [
                {
                    "id": r,
                    "name": f"rack{r}",
                    "location_id": 2 + r % 10,
                    "u_height": 42,
                    "created_at": now,
                    "updated_at": now,
                }
                for r in range(1, 51)
            ],
        )
    rnd = random.Random(1)
    for start in range(0, DEVICES, 10_000):
        devices, tags, cfs = [], [], []
        for i in range(start + 1, start + 10_001):
            rack = rnd.randint(1, 50)
            devices.append(
                {
                    "id": i,
                    "name": f"dev{i:06}",
                    "device_type_id": 1,
                    "manufacturer_id": 1,
                    "status": STATUSES[i % 5],
                    "serial": f"SN{i}",
                    "asset_tag": None,
                    "location_id": 2 + rack % 10,
                    "rack_id": rack,
                    "position": None,
                    "face": None,
                    "tags": ["prod"] if i % 7 == 0 else [],
                    "custom_fields": {"owner": f"o{i % 100}"},
                    "created_at": now - timedelta(seconds=DEVICES - i),
                    "updated_at": now,
                }
            )
            if i % 7 == 0:
                tags.append({"device_id": i, "tag": "prod"})
            cfs.append({"device_id": i, "name": "owner", "value": f"o{i % 100}"})
        async with ctx.db.session() as s:
            await s.execute(insert(Device), devices)
            await s.execute(insert(DeviceTag), tags)
            await s.execute(insert(CustomFieldValue), cfs)
    if ctx.db.dialect == "postgresql":
        async with ctx.db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
            for table in (
                "inventory_manufacturers",
                "inventory_device_types",
                "inventory_locations",
                "inventory_racks",
                "inventory_devices",
            ):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
    else:
        async with ctx.db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")


QUERIES = {
    "status=active, sort=name": {"status": "active"},
    "location=site (tree), sort=name": {"location": 1},
    "rack=7": {"rack": 7},
    "tag=prod, sort=-created_at": {"tag": "prod", "sort": "-created_at"},
    "cf_owner=o42": {"cf_owner": "o42"},
    "status=offline&location=room3": {"status": "offline", "location": 3},
}


async def measure(url: str, label: str) -> None:
    """Populate a database at ``url`` and print p50/p99 per query shape."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = boot(make_config(Path(tmp), url, enabled=["inventory"]))
        await upgrade(ctx.db, ctx.state["migration_targets"])
        t0 = time.perf_counter()
        await populate(ctx)
        setup = time.perf_counter() - t0
        async with ctx.db.session() as s:
            user = await auth.create_user(s, "bench", "member", None)
            _, token = await auth.create_token(
                s,
                user,
                scopes=None,
                known_scopes=frozenset(ctx.permissions),
                role_scopes=ctx.state["role_scopes"]["member"],
                expires_in=None,
            )
        app = create_app(ctx)
        header(f"inventory list, {DEVICES:,} devices, {label} (setup {setup:.1f} s)")
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://bench",
                headers={"Authorization": f"Bearer {token}"},
            ) as client,
        ):
            for name, params in QUERIES.items():
                timings, cursor = [], None
                for i in range(REQUESTS):
                    p = dict(params, limit=50) | ({"cursor": cursor} if cursor and i % 4 else {})
                    t = time.perf_counter()
                    r = await client.get("/api/inventory/devices", params=p)
                    timings.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text
                    cursor = r.json()["next_cursor"]
                timings.sort()
                p50 = statistics.median(timings)
                p99 = timings[int(len(timings) * 0.99) - 1]
                row(name, f"p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
        await ctx.db.dispose()


def main() -> None:
    """Run on SQLite, then on PostgreSQL when reachable."""
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(measure(f"sqlite+aiosqlite:///{tmp}/bench.db", "SQLite"))
    if "--no-postgres" not in sys.argv and pg_reachable():
        with fresh_pg_database("inventory_bench") as url:
            asyncio.run(measure(url, "PostgreSQL"))


if __name__ == "__main__":
    main()
