"""Create a booking with 100,000 existing bookings: p50/p99 of the service call, SQLite and PG.

Setup: 1,000 devices of one type (inventory service) and 100,000 approved one-hour bookings
(100 per device, bulk-inserted with their slots). Then 300 new one-hour bookings on random
devices in free windows, each in its own transaction (conflict check, policy lookup, insert,
outbox event, commit) through ``platform_scheduler.service.create_booking``. A draw of an
hour already taken is a 409 (counted, still timed); any other error fails the run. (On
PostgreSQL the seed moves the bookings' id sequence past the explicit seeded ids; before
that fix every create there failed on the primary key and the figures timed the failure.)

Target: p50 under 10 ms. Figures only. Run: ``.venv/bin/python bench/scheduler_bookings.py``.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import fresh_pg_database, header, make_config, pg_reachable, row
from platform_inventory import service as inventory
from platform_scheduler import service
from platform_scheduler.models import Booking, Slot
from sqlalchemy import insert, text

from platform_core.app import boot
from platform_core.auth.service import Principal
from platform_core.errors import Conflict
from platform_core.migrate import upgrade

DEVICES = 1_000
PER_DEVICE = 100
RUNS = 300
BASE = datetime(2030, 1, 1, tzinfo=UTC)
OWNER = Principal(user_id=1, username="bench", role="admin", scopes=frozenset())


async def seed(
    ctx: Any, devices: int, per_device: int, spacing: timedelta, stagger: timedelta = timedelta(0)
) -> tuple[int, list[int]]:
    """Devices of one type and ``per_device`` one-hour bookings each; (type id, device ids).

    Device ``i``'s bookings start at ``BASE + k * spacing + i * stagger``.
    """
    audit = inventory.Audit("bench")
    async with ctx.db.session() as session:
        m = await inventory.create_manufacturer(session, "Acme", audit)
        t = await inventory.create_device_type(
            session, {"manufacturer_id": m.id, "model": "S1"}, audit
        )
        ids = []
        for i in range(devices):
            d = await inventory.create_device(
                session, {"name": f"dev-{i:05d}", "device_type_id": t.id}, audit
            )
            ids.append(d.id)
    now = datetime.now(UTC)
    booking_id = 0
    for chunk in range(0, len(ids), 100):
        bookings, slots = [], []
        for n, device_id in enumerate(ids[chunk : chunk + 100], start=chunk):
            for k in range(per_device):
                booking_id += 1
                s = BASE + k * spacing + n * stagger
                e = s + timedelta(hours=1)
                bookings.append(
                    {
                        "id": booking_id,
                        "owner_id": 1,
                        "owner_name": "seed",
                        "purpose": "",
                        "status": "approved",
                        "start_at": s,
                        "end_at": e,
                        "power_on_start": False,
                        "power_off_end": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                slots.append(
                    {
                        "booking_id": booking_id,
                        "device_id": device_id,
                        "start_at": s,
                        "end_at": e,
                        "status": "approved",
                    }
                )
        async with ctx.db.session() as session:
            await session.execute(insert(Booking), bookings)
            await session.execute(insert(Slot), slots)
    if not ctx.db.is_sqlite:
        async with ctx.db.engine.begin() as conn:
            # the ids above were explicit: move the sequence past them, or every later
            # insert fails on the primary key (and the benchmark times a failing path)
            await conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('scheduler_bookings', 'id'), "
                    "(SELECT max(id) FROM scheduler_bookings))"
                )
            )
            await conn.execute(text("ANALYZE"))
    return t.id, ids


async def measure(url: str | None, directory: Path) -> tuple[list[float], int]:
    ctx = boot(make_config(directory, url, enabled=["inventory", "scheduler"]))
    await upgrade(ctx.db, ctx.state["migration_targets"])
    _, ids = await seed(ctx, DEVICES, PER_DEVICE, timedelta(hours=2))
    settings = ctx.plugin_settings("scheduler")
    rng = random.Random(7)
    timings = []
    conflicts = 0
    for _ in range(RUNS):
        # the free hour after a seeded booking: [BASE + 2k h + 1 h, + 1 h)
        start = BASE + timedelta(hours=2 * rng.randrange(PER_DEVICE) + 1)
        data = {"device_ids": [rng.choice(ids)], "start": start, "end": start + timedelta(hours=1)}
        t0 = time.perf_counter()
        try:
            async with ctx.db.session() as session:
                await service.create_booking(session, data, OWNER, settings, now=BASE)
        except Conflict:  # the same free hour drawn twice: a 409, still timed
            conflicts += 1  # any other error fails the benchmark
        timings.append((time.perf_counter() - t0) * 1000)
    await ctx.db.dispose()
    return timings, conflicts


def report(label: str, result: tuple[list[float], int]) -> None:
    timings, conflicts = sorted(result[0]), result[1]
    p50 = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    row(f"{label}: p50", f"{p50:.2f} ms")
    row(f"{label}: p99", f"{p99:.2f} ms")
    row(
        f"{label}: created / 409 (same hour drawn twice)",
        f"{len(timings) - conflicts} / {conflicts}",
    )


def main() -> None:
    header(f"create a booking with {DEVICES * PER_DEVICE:,} existing bookings ({RUNS} runs)")
    with tempfile.TemporaryDirectory() as tmp:
        report("SQLite", asyncio.run(measure(None, Path(tmp))))
    if pg_reachable():
        with fresh_pg_database("sched_bench") as url, tempfile.TemporaryDirectory() as tmp:
            report("PostgreSQL", asyncio.run(measure(url, Path(tmp))))
    else:
        row("PostgreSQL", "not reachable, skipped")


if __name__ == "__main__":
    main()
