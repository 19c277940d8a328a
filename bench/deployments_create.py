"""Creating an app through the API, the apply done by the job: request p50 and time to synced.

A platform with the deployments plugin is booted in-process on SQLite (or PostgreSQL with
``--database-url``), its lifespan running, its one cluster being kmock's Kubernetes emulator
on loopback; background jobs are off so that the bench runs the apply job itself. A member
creates ``--apps`` apps (static-site) through ``POST /api/deployments/apps`` (httpx's ASGI
transport): printed are the p50 and p99 of that request (stored state only, answered 202).
For each app the apply job then runs at once and the app is read back until ``synced``:
printed is the p50 of the time from the request to ``synced``. With the embedded runner the
job runs every ``apply_interval_seconds`` (default 5 s): add up to that interval.

Targets: request p50 under 30 ms.
Run: ``.venv/bin/python bench/deployments_create.py [--apps 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _common import header, make_config, row
from platform_deployments.emulator import emulator
from platform_deployments.runtime import env_of
from platform_deployments.service import sync

from platform_core import create_token
from platform_core.app import boot, create_app
from platform_core.auth import service as auth
from platform_core.migrate import upgrade


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    async with emulator() as kube:
        with tempfile.TemporaryDirectory() as tmp:
            config = make_config(
                Path(tmp), args.database_url, enabled=["deployments"], background=False
            )
            config.plugin_tables["deployments"] = {
                "clusters": {"bench": {"host": kube.url}},
                "base_domain": "apps.bench",
                "quota": {
                    "max_apps": args.apps + 1,
                    "max_replicas": args.apps + 1,
                    "cpu_millis": 1_000_000,
                    "memory_mib": 1_000_000,
                },
            }
            ctx = boot(config)
            await upgrade(ctx.db, ctx.state["migration_targets"])
            app = create_app(ctx)
            env = env_of(ctx)
            async with app.router.lifespan_context(app):
                async with ctx.db.session() as s:
                    member = await auth.create_user(s, "bench-member", "member", None)
                    _, token = await create_token(
                        s,
                        member,
                        scopes=None,
                        known_scopes=frozenset(ctx.permissions),
                        role_scopes=ctx.state["role_scopes"]["member"],
                        expires_in=None,
                    )
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://bench",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=120,
                ) as http:
                    warm = await http.post(
                        "/api/deployments/apps", json={"name": "warm", "template": "static-site"}
                    )
                    assert warm.status_code == 202, warm.text
                    requests: list[float] = []
                    to_synced: list[float] = []
                    for n in range(args.apps):
                        body = {"name": f"app{n}", "template": "static-site"}
                        start = time.perf_counter()
                        r = await http.post("/api/deployments/apps", json=body)
                        requests.append((time.perf_counter() - start) * 1000)
                        assert r.status_code == 202, r.text
                        app_id = r.json()["app"]["id"]
                        await sync.apply_pending(ctx.db, env, app_ids=[app_id])
                        state = (await http.get(f"/api/deployments/apps/{app_id}")).json()["state"]
                        to_synced.append((time.perf_counter() - start) * 1000)
                        assert state == "synced", state
                        kube.forget_requests()
            await ctx.db.dispose()

    header(f"deployments: create {args.apps} apps through the API (apply by the job)")
    row("POST /apps: p50", f"{statistics.median(requests):.1f} ms (target < 30 ms)")
    row("POST /apps: p99", f"{pct(requests, 0.99):.1f} ms")
    row(
        "request to synced (one apply job run, emulator): p50",
        f"{statistics.median(to_synced):.1f} ms",
    )
    row("request to synced: p99", f"{pct(to_synced, 0.99):.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
