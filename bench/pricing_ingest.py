"""Price report ingestion: points/s through ``POST /api/pricing/agents/{id}/reports/pricing``.

A platform with the pricing plugin is booted in-process (its lifespan running: event
dispatcher and all); a client and an agent are created through the API, then the agent posts
``--batches`` reports of ``--size`` points each (40 pools, one point per pool per minute),
one request and one transaction each, sequentially, through httpx's ASGI transport. Bodies
are serialised before the clock starts. Printed: points/s end to end (HTTP, validation,
digest, pool mapping, bulk insert, commit) and the p50/p99 of one request; then the service
call alone (``service.reports.ingest_prices`` with validated models) to tell the HTTP and
validation share from the database's.

Targets: >= 5,000 points/s on SQLite and >= 20,000 points/s on PostgreSQL through the
endpoint. PostgreSQL: ``--database-url`` or ``PLATFORM_BENCH_DATABASE_URL`` (used as is),
else a throw-away database on ``BENCH_PG_URL``'s server when reachable.
Run: ``.venv/bin/python bench/pricing_ingest.py [--batches 100] [--size 2000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import fresh_pg_database, header, make_config, pg_reachable, row

from platform_core.app import boot, create_app
from platform_core.auth import service as auth
from platform_core.migrate import upgrade

DATABASE_ENV = "PLATFORM_BENCH_DATABASE_URL"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d")
TYPES = tuple(f"{family}.{size}" for family in ("m5", "c5") for size in ("large", "xlarge"))
TYPES += ("r5.large", "r5.xlarge", "t3.medium", "t3.large", "m6i.large", "c6i.large")
POOLS = [(z, t) for z in ZONES for t in TYPES]  # 40 pools
BASE = datetime(2025, 1, 1, tzinfo=UTC)


def batch(index: int, size: int) -> dict[str, Any]:
    """Report ``index``: ``size`` points, one per pool per minute, after the previous ones."""
    first = index * size
    points = []
    for n in range(first, first + size):
        minute, pool = divmod(n, len(POOLS))
        zone, itype = POOLS[pool]
        points.append(
            {
                "region": "us-east-1",
                "zone": zone,
                "instance_type": itype,
                "spot_price": round(0.02 + (n % 97) / 1000, 5),
                "on_demand_price": 0.096,
                "observed_at": (BASE + timedelta(minutes=minute)).isoformat(),
            }
        )
    return {"report_id": f"bench-{index}", "points": points}


async def measure(url: str, label: str, batches: int, size: int) -> None:
    """Post the batches through the app, then time the service call alone."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = boot(
            make_config(
                Path(tmp),
                url,
                enabled=["pricing"],
                max_body_bytes=max(1_048_576, size * 400),
            )
        )
        await upgrade(ctx.db, ctx.state["migration_targets"])
        app = create_app(ctx)
        async with app.router.lifespan_context(app):
            async with ctx.db.session() as s:
                admin = await auth.create_user(s, "bench-admin", "admin", None)
                _, admin_token = await auth.create_token(
                    s,
                    admin,
                    scopes=None,
                    known_scopes=frozenset(ctx.permissions),
                    role_scopes=ctx.state["role_scopes"]["admin"],
                    expires_in=None,
                )
            transport = httpx.ASGITransport(app=app)

            def client(token: str) -> httpx.AsyncClient:
                return httpx.AsyncClient(
                    transport=transport,
                    base_url="http://bench",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=120,
                )

            async with client(admin_token) as http:
                cid = (await http.post("/api/pricing/clients", json={"name": "bench"})).json()["id"]
                r = await http.post(f"/api/pricing/clients/{cid}/tokens", json={"name": "b"})
                client_token = r.json()["token"]
            async with client(client_token) as http:
                reg = await http.post(
                    "/api/pricing/agents/register",
                    json={
                        "name": "bench-agent",
                        "version": "1",
                        "instance": {
                            "cloud_id": "i-bench",
                            "region": "us-east-1",
                            "zone": ZONES[0],
                            "instance_type": TYPES[0],
                            "lifecycle": "spot",
                        },
                    },
                )
                assert reg.status_code == 201, reg.text
            agent_id = reg.json()["agent"]["id"]
            bodies = [json.dumps(batch(i, size)).encode() for i in range(batches)]
            path = f"/api/pricing/agents/{agent_id}/reports/pricing"
            header(f"price ingestion, {label}: {batches} reports x {size:,} points, HTTP")
            timings = []
            async with client(reg.json()["token"]) as http:
                # one warm-up request (pools created, caches filled), not counted
                warm = json.dumps(batch(batches, size) | {"report_id": "warm-up"}).encode()
                await http.post(path, content=warm, headers={"content-type": "application/json"})
                start = time.perf_counter()
                for body in bodies:
                    t0 = time.perf_counter()
                    r = await http.post(
                        path, content=body, headers={"content-type": "application/json"}
                    )
                    timings.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 201, r.text
                elapsed = time.perf_counter() - start
            timings.sort()
            total = batches * size
            row("points/s (end to end)", f"{total / elapsed:,.0f}")
            row("total", f"{total:,} points in {elapsed:.2f} s")
            row(
                "request p50 / p99",
                f"{statistics.median(timings):.1f} / "
                f"{timings[max(0, int(len(timings) * 0.99) - 1)]:.1f} ms",
            )
            await service_only(ctx, agent_id, batches, size)
        await ctx.db.dispose()


async def service_only(ctx: Any, agent_id: int, batches: int, size: int) -> None:
    """``ingest_prices`` on validated reports: the database's share of the request."""
    from platform_pricing import tenancy
    from platform_pricing.schemas.reports import PricingReport
    from platform_pricing.service.reports import ingest_prices

    settings = ctx.plugin_settings("pricing")
    async with ctx.db.session() as s:
        from platform_pricing.models import Agent

        agent = await s.get(Agent, agent_id)
        tenant = tenancy.Tenant("agent", "bench", agent.client_id, agent.id)
    count = max(1, batches // 4)
    reports = [
        PricingReport.model_validate(batch(batches + 1 + i, size) | {"report_id": f"svc-{i}"})
        for i in range(count)
    ]
    start = time.perf_counter()
    for report in reports:
        async with ctx.db.session() as s:
            await ingest_prices(s, tenant, agent_id, report, settings=settings)
    elapsed = time.perf_counter() - start
    row(f"service call only ({count} reports), points/s", f"{count * size / elapsed:,.0f}")


def main() -> None:
    """SQLite, then PostgreSQL (given, or a throw-away database when reachable)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--database-url", default=os.environ.get(DATABASE_ENV))
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            asyncio.run(measure(url, "SQLite", args.batches, args.size))
    if args.no_postgres:
        return
    if args.database_url:
        asyncio.run(measure(args.database_url, "PostgreSQL", args.batches, args.size))
    elif pg_reachable():
        with fresh_pg_database("pricing_ingest") as url:
            asyncio.run(measure(url, "PostgreSQL", args.batches, args.size))
    else:
        row("PostgreSQL", "not reachable, skipped")


if __name__ == "__main__":
    main()
