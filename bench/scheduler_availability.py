"""Availability of a device type with 1,000 devices over one week: latency, SQLite and PG.

Setup: 1,000 devices of one type, each with 14 one-hour bookings spread over the week (seeded
by ``scheduler_bookings.seed``). Then ``platform_scheduler.service.availability`` for the
whole type, a one-week window and a one-hour minimum, 30 times.

Target: under 50 ms. Figures only. Run: ``.venv/bin/python bench/scheduler_availability.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _common import fresh_pg_database, header, make_config, pg_reachable, row
from platform_scheduler import service
from scheduler_bookings import BASE, seed

from platform_core.app import boot
from platform_core.migrate import upgrade

RUNS = 30


async def measure(url: str | None, directory: Path) -> list[float]:
    ctx = boot(make_config(directory, url, enabled=["inventory", "scheduler"]))
    await upgrade(ctx.db, ctx.state["migration_targets"])
    type_id, _ = await seed(ctx, 1_000, 14, timedelta(hours=12))
    timings = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        async with ctx.db.session() as session:
            result = await service.availability(
                session,
                device_id=None,
                device_type_id=type_id,
                start=BASE,
                end=BASE + timedelta(days=7),
                duration=timedelta(hours=1),
            )
        timings.append((time.perf_counter() - t0) * 1000)
        assert len(result) == 1_000
    await ctx.db.dispose()
    return timings


def main() -> None:
    header(f"availability: device type with 1,000 devices, one week ({RUNS} runs)")
    with tempfile.TemporaryDirectory() as tmp:
        t = sorted(asyncio.run(measure(None, Path(tmp))))
        row("SQLite: p50", f"{statistics.median(t):.2f} ms")
        row("SQLite: max", f"{t[-1]:.2f} ms")
    if pg_reachable():
        with fresh_pg_database("sched_bench") as url, tempfile.TemporaryDirectory() as tmp:
            t = sorted(asyncio.run(measure(url, Path(tmp))))
            row("PostgreSQL: p50", f"{statistics.median(t):.2f} ms")
            row("PostgreSQL: max", f"{t[-1]:.2f} ms")


if __name__ == "__main__":
    main()
