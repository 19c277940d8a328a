"""Price history of one pool over a year at one-minute resolution, 500 points: SQLite and PG.

Setup: one client, one agent and its instance, and 525,600 one-minute prices of the
instance's pool (bulk executemany inserts). Then ``GET /api/pricing/instances/{id}/
price-history`` for the whole year with ``points=500``, through the ASGI app (token
authentication, tenancy, the route and the service), 50 times:

1. before the hourly aggregates exist (raw points only, grouped into buckets by the
   database),
2. after the ``hourly_aggregates`` job ran (hourly rows for the aggregated hours + raw tail).

Also times the first ``hourly_aggregates`` run (a year of backlog) and ``dedup_prices``
over the year. Target: the year at 500 points under 100 ms.
Run: ``.venv/bin/python bench/pricing_history.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import fresh_pg_database, header, make_config, pg_reachable, row
from platform_pricing.models import Agent, Client, Instance, Placement, PricePoint
from platform_pricing.service import maintenance
from platform_pricing.service.pools import pool_id as get_pool_id
from sqlalchemy import insert

from platform_core.app import boot, create_app
from platform_core.auth import service as auth
from platform_core.migrate import upgrade

RUNS = 50
MINUTES = 365 * 24 * 60
BATCH = 20_000
BASE = datetime(2024, 1, 1, tzinfo=UTC)


async def seed(ctx: Any) -> tuple[int, str]:
    """One client with one instance and a year of minute prices; (instance id, token)."""
    async with ctx.db.session() as s:
        user = await auth.create_user(s, "pricing-client-bench", "member", None)
        agent_user = await auth.create_user(s, "pricing-agent-bench", "member", None)
        client = Client(name="bench", user_id=user.id, policy={})
        s.add(client)
        await s.flush()
        pool = await get_pool_id(s, "us-east-1", "us-east-1a", "m5.large")
        agent = Agent(client_id=client.id, user_id=agent_user.id, name="a")
        s.add(agent)
        await s.flush()
        instance = Instance(
            client_id=client.id, agent_id=agent.id, cloud_id="i-1", pool_id=pool, created_at=BASE
        )
        s.add(instance)
        await s.flush()
        s.add(
            Placement(
                client_id=client.id,
                instance_id=instance.id,
                pool_id=pool,
                lifecycle="spot",
                started_at=BASE,
            )
        )
        _, token = await auth.create_token(
            s,
            user,
            scopes=["pricing:client"],
            known_scopes=frozenset(ctx.permissions),
            role_scopes=ctx.state["role_scopes"]["member"],
            expires_in=None,
        )
        ids = (client.id, pool, instance.id)
    client_id, pool, instance_id = ids
    for first in range(0, MINUTES, BATCH):
        points = [
            {
                "client_id": client_id,
                "pool_id": pool,
                "observed_at": BASE + timedelta(minutes=k),
                "spot_price": 0.05 + (k % 1440) / 1440 * 0.05 + (k % 7) * 0.001,
                "on_demand_price": 0.096,
            }
            for k in range(first, min(first + BATCH, MINUTES))
        ]
        async with ctx.db.session() as s:
            await s.execute(insert(PricePoint), points)
    return instance_id, token


async def timed_calls(http: httpx.AsyncClient, url: str, params: dict[str, Any]) -> list[float]:
    timings = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        r = await http.get(url, params=params)
        timings.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
        assert len(r.json()["buckets"]) == 500
    return sorted(timings)


def p99(t: list[float]) -> float:
    return t[min(len(t) - 1, round(0.99 * (len(t) - 1)))]


async def measure(url: str | None, directory: Path, label: str) -> None:
    ctx = boot(make_config(directory, url, enabled=["pricing"]))
    await upgrade(ctx.db, ctx.state["migration_targets"])
    app = create_app(ctx)
    t0 = time.perf_counter()
    instance_id, token = await seed(ctx)
    row(f"{label}: seed 525,600 points", f"{time.perf_counter() - t0:.1f} s")
    end = BASE + timedelta(days=365)
    params = {"start": BASE.isoformat(), "end": end.isoformat(), "points": 500}
    path = f"/api/pricing/instances/{instance_id}/price-history"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {token}"},
        ) as http,
    ):
        raw = await timed_calls(http, path, params)
        row(f"{label}: year/500 raw only p50", f"{statistics.median(raw):.1f} ms")
        row(f"{label}: year/500 raw only p99", f"{p99(raw):.1f} ms")
        t0 = time.perf_counter()
        async with ctx.db.session() as s:
            out = await maintenance.aggregate_hours(s, end)
        row(f"{label}: hourly_aggregates (a year)", f"{time.perf_counter() - t0:.1f} s {out}")
        t0 = time.perf_counter()
        async with ctx.db.session() as s:
            out = await maintenance.dedup_prices(s, end)
        row(f"{label}: dedup_prices (525,600 rows)", f"{time.perf_counter() - t0:.2f} s {out}")
        merged = await timed_calls(http, path, params)
        row(f"{label}: year/500 with aggregates p50", f"{statistics.median(merged):.1f} ms")
        row(f"{label}: year/500 with aggregates p99", f"{p99(merged):.1f} ms")
        day = await timed_calls(
            http,
            path,
            {
                "start": (end - timedelta(days=1)).isoformat(),
                "end": end.isoformat(),
                "points": 500,
            },
        )
        row(f"{label}: last day/500 (raw) p50", f"{statistics.median(day):.1f} ms")
    await ctx.db.dispose()


def main() -> None:
    header(f"price history: a year of minute prices, 500 points ({RUNS} calls via ASGI)")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(measure(None, Path(tmp), "SQLite"))
    if pg_reachable():
        with fresh_pg_database("pricing_hist_bench") as url, tempfile.TemporaryDirectory() as tmp:
            asyncio.run(measure(url, Path(tmp), "PostgreSQL"))
    else:
        row("PostgreSQL", "not reachable, skipped")


if __name__ == "__main__":
    main()
