"""Decide for an agent with a year of one-minute prices: p50/p95/p99 of POST .../decide.

Setup: one client, one agent whose spot instance runs in the first of 4 pools of one
instance type (``m5.large`` in ``us-east-1a..d``), and a year of one-minute price points for
each pool (525,600 per pool, 2,102,400 rows), bulk-inserted in chunks through SQLAlchemy core
(not the API), then ``ANALYZE`` (and ``VACUUM`` of the price table on PostgreSQL, as a year-old
table would have been: otherwise autovacuum of the fresh rows runs during the measurement).
The client, agent and instance rows are inserted directly too (the bench needs nothing but
the decision routes).

Then ``RUNS`` calls of ``POST /api/pricing/agents/{id}/decide`` with the agent's token through
the ASGI app in-process (``httpx.ASGITransport``): authentication, tenant resolution, the
decision inputs (latest price per pool, window statistics, interruptions, notices), the rule
engine, storing the decision and the commit. Target: p99 under 20 ms. For comparison the
median of a trivial authenticated read (``GET /api/pricing/engines``) on the same stack is
printed too: on a busy machine both move together.

Run: ``.venv/bin/python bench/pricing_decide.py [--days N] [--no-postgres]``.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import fresh_pg_database, header, make_config, pg_reachable, row
from platform_pricing.models import Agent, Client, Instance, Placement, Pool, PricePoint
from sqlalchemy import insert, text

from platform_core.app import boot, create_app
from platform_core.auth import service as auth
from platform_core.migrate import upgrade

POOLS = ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d")
BASE_PRICES = (0.040, 0.036, 0.038, 0.045)
ON_DEMAND = 0.096
RUNS = 500
WARMUP = 20
CHUNK = 20_000


def _days() -> int:
    if "--days" in sys.argv:
        return int(sys.argv[sys.argv.index("--days") + 1])
    return 365


async def seed(ctx: Any, minutes: int, now: datetime) -> tuple[int, str]:
    """The client, agent, instance and ``minutes`` prices per pool; (agent id, agent token)."""
    async with ctx.db.session() as s:
        cuser = await auth.create_user(s, "pricing-client-bench", "member", None)
        auser = await auth.create_user(s, "pricing-agent-bench", "member", None)
        client = Client(name="bench", display_name="Bench", user_id=cuser.id, policy={})
        s.add(client)
        pools = [Pool(region="us-east-1", zone=z, instance_type="m5.large") for z in POOLS]
        s.add_all(pools)
        await s.flush()
        agent = Agent(client_id=client.id, user_id=auser.id, name="bench-agent", version="1")
        s.add(agent)
        await s.flush()
        instance = Instance(
            client_id=client.id,
            agent_id=agent.id,
            cloud_id="i-bench",
            pool_id=pools[0].id,
            lifecycle="spot",
            last_switch_at=now - timedelta(days=3),
        )
        s.add(instance)
        await s.flush()
        s.add(
            Placement(
                client_id=client.id,
                instance_id=instance.id,
                pool_id=pools[0].id,
                lifecycle="spot",
                started_at=now - timedelta(days=3),
            )
        )
        _, token = await auth.create_token(
            s,
            auser,
            scopes=["pricing:agent"],
            known_scopes=frozenset(ctx.permissions),
            role_scopes=ctx.state["role_scopes"]["member"],
            expires_in=None,
        )
        cid, pool_ids, agent_id = client.id, [p.id for p in pools], agent.id
    start = now - timedelta(minutes=minutes)
    table = PricePoint
    async with ctx.db.engine.begin() as conn:
        for pid, base in zip(pool_ids, BASE_PRICES, strict=True):
            for first in range(0, minutes, CHUNK):
                rows = [
                    {
                        "client_id": cid,
                        "pool_id": pid,
                        "observed_at": start + timedelta(minutes=m),
                        "spot_price": round(base * (1 + 0.1 * math.sin(m / 720 + pid)), 6),
                        "on_demand_price": ON_DEMAND,
                    }
                    for m in range(first, min(first + CHUNK, minutes))
                ]
                await conn.execute(insert(table), rows)
    # a year-old table has been vacuumed long ago: VACUUM now (PostgreSQL) so that autovacuum
    # of the fresh 2 M rows does not run during the measurement; statistics on both
    if ctx.db.is_sqlite:
        async with ctx.db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    else:
        async with ctx.db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM (ANALYZE) pricing_price_points"))
            await auto.execute(text("ANALYZE"))
    return agent_id, token


async def measure(url: str, label: str, days: int) -> None:
    """Seed a database at ``url`` and print the decide latency percentiles."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = boot(make_config(Path(tmp), url, enabled=["pricing"]))
        await upgrade(ctx.db, ctx.state["migration_targets"])
        now = datetime.now(UTC)
        minutes = days * 24 * 60
        t0 = time.perf_counter()
        agent_id, token = await seed(ctx, minutes, now)
        seeding = time.perf_counter() - t0
        app = create_app(ctx)
        header(
            f"decide, {label}: {len(POOLS)} pools x {minutes:,} one-minute prices "
            f"({len(POOLS) * minutes:,} rows), {RUNS} calls"
        )
        row("seeding (bulk insert + VACUUM/ANALYZE)", f"{seeding:.1f} s")
        path = f"/api/pricing/agents/{agent_id}/decide"
        outcomes: dict[str, int] = {}
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://bench",
                headers={"Authorization": f"Bearer {token}"},
            ) as client,
        ):
            for _ in range(WARMUP):
                r = await client.post(path)
                assert r.status_code == 200, r.text
            timings = []
            engine_ms = []
            for _ in range(RUNS):
                t = time.perf_counter()
                r = await client.post(path)
                timings.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
                body = r.json()
                outcomes[body["outcome"]] = outcomes.get(body["outcome"], 0) + 1
                engine_ms.append(body["elapsed_ms"])
            baseline = []  # the same stack for a trivial authenticated read, for comparison
            for _ in range(RUNS // 5):
                t = time.perf_counter()
                r = await client.get("/api/pricing/engines")
                baseline.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
        timings.sort()
        p50 = statistics.median(timings)
        p95 = timings[int(len(timings) * 0.95) - 1]
        p99 = timings[int(len(timings) * 0.99) - 1]
        row("decide p50 / p95 / p99", f"{p50:.2f} / {p95:.2f} / {p99:.2f} ms")
        row("decide max", f"{timings[-1]:.2f} ms")
        row("engine alone (rules) median", f"{statistics.median(engine_ms):.3f} ms")
        row("baseline GET /engines p50", f"{statistics.median(baseline):.2f} ms")
        row("outcomes", ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
        row("target p99 < 20 ms", "met" if p99 < 20 else "MISSED")
        await ctx.db.dispose()


def main() -> None:
    """Run on SQLite, then on PostgreSQL when reachable."""
    days = _days()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(measure(f"sqlite+aiosqlite:///{tmp}/bench.db", "SQLite", days))
    if "--no-postgres" in sys.argv:
        row("PostgreSQL", "skipped (--no-postgres)")
    elif pg_reachable():
        with fresh_pg_database("pricing_decide_bench") as url:
            asyncio.run(measure(url, "PostgreSQL", days))
    else:
        row("PostgreSQL", "not reachable, skipped")


if __name__ == "__main__":
    main()
