"""Availability of a device type with 1,000 devices over one week: latency, SQLite and PG.

Setup: 1,000 devices of one type, each with 14 one-hour bookings spread over the week (seeded
by ``scheduler_bookings.seed``). Then ``platform_scheduler.service.availability`` for the
whole type, a one-week window and a one-hour minimum, 30 times (14,000 free slots).

Two calendars: *aligned* (every device booked at the same round hours, the original setup)
and *staggered* (device ``i`` shifted by ``i x 1.000001 s``: every timestamp distinct), since
the service converts each distinct raw timestamp once.

Also timed: the same request through the HTTP API (``GET /api/scheduler/availability``,
in-process ASGI: routing, authentication, JSON of ~900 KB; no network).

Target: under 50 ms. Figures only. Run: ``.venv/bin/python bench/scheduler_availability.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import fresh_pg_database, header, make_config, pg_reachable, row
from platform_scheduler import service
from scheduler_bookings import BASE, seed

from platform_core.app import boot, create_app
from platform_core.auth import service as auth
from platform_core.migrate import upgrade

RUNS = 30


async def measure_http(ctx: Any, type_id: int) -> list[float]:
    """Timings of the same availability request through the API (in-process ASGI)."""
    app = create_app(ctx)
    async with app.router.lifespan_context(app):
        async with ctx.db.session() as session:
            user = await auth.create_user(session, "bench-member", "member", None)
            _, token = await auth.create_token(
                session,
                user,
                scopes=None,
                known_scopes=frozenset(ctx.permissions),
                role_scopes=ctx.state["role_scopes"]["member"],
                expires_in=None,
            )
        params = {
            "device_type_id": type_id,
            "start": BASE.isoformat(),
            "end": (BASE + timedelta(days=7)).isoformat(),
            "duration_minutes": 60,
        }
        timings = []
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            for _ in range(RUNS):
                t0 = time.perf_counter()
                r = await client.get("/api/scheduler/availability", params=params)
                timings.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
    return timings


async def measure(
    url: str | None, directory: Path, stagger: timedelta
) -> tuple[list[float], list[float]]:
    ctx = boot(make_config(directory, url, enabled=["inventory", "scheduler"], background=False))
    await upgrade(ctx.db, ctx.state["migration_targets"])
    type_id, _ = await seed(ctx, 1_000, 14, timedelta(hours=12), stagger)
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
        assert sum(len(d["free"]) for d in result) == 14_000
    http = await measure_http(ctx, type_id)
    await ctx.db.dispose()
    return timings, http


CALENDARS = {"aligned": timedelta(0), "staggered": timedelta(seconds=1, microseconds=1)}


def report(label: str, timings: list[float]) -> None:
    t = sorted(timings)
    row(f"{label}: p50", f"{statistics.median(t):.2f} ms")
    row(f"{label}: p99", f"{t[int(len(t) * 0.99) - 1]:.2f} ms")
    row(f"{label}: max", f"{t[-1]:.2f} ms")


def main() -> None:
    header(f"availability: device type with 1,000 devices, one week ({RUNS} runs)")
    pg = pg_reachable()
    for calendar, stagger in CALENDARS.items():
        with tempfile.TemporaryDirectory() as tmp:
            service_t, http_t = asyncio.run(measure(None, Path(tmp), stagger))
            report(f"SQLite, {calendar}, service", service_t)
            report(f"SQLite, {calendar}, HTTP", http_t)
        if pg:
            with fresh_pg_database("sched_bench") as url, tempfile.TemporaryDirectory() as tmp:
                service_t, http_t = asyncio.run(measure(url, Path(tmp), stagger))
                report(f"PostgreSQL, {calendar}, service", service_t)
                report(f"PostgreSQL, {calendar}, HTTP", http_t)


if __name__ == "__main__":
    main()
