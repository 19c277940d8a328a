"""Jobs: overhead per trivial job in the embedded runner and in the Redis (taskiq) runner.

A no-op job (overlap allowed) is run N times. Throughput: N runs enqueued at once, timed
from the first enqueue until every run is recorded ``succeeded``; each run costs an
insert, a claim (conditional update), the call, and the final update, plus for Redis a
stream message (XADD, XREADGROUP, XACK). Latency: one run at a time, from the enqueue to
the succeeded record (p50). Runner concurrency 4 (the embedded default). On SQLite and,
when reachable, a fresh PostgreSQL database; the Redis runner needs 127.0.0.1:6379
(``BENCH_REDIS_URL`` overrides).

No target is set by the issue; the figures go to the closing note.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import fresh_pg_database, header, make_config, pg_reachable, row
from sqlalchemy import func, select

from platform_core import JobSpec, hookimpl
from platform_core.app import boot
from platform_core.jobs import service
from platform_core.jobs.distributed import run_worker, send_runs
from platform_core.jobs.embedded import run_runner
from platform_core.jobs.models import JobRun
from platform_core.migrate import upgrade

RUNS = 1000
LATENCY_RUNS = 50
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


class Noop:
    """The benchmark's plugin: one job doing nothing."""

    @hookimpl
    def platform_jobs(self) -> list[JobSpec]:
        async def noop() -> None:
            return None

        return [JobSpec("noop", noop, overlap=True)]


async def _succeeded(ctx: Any) -> int:
    async with ctx.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(JobRun).where(JobRun.state == "succeeded")
        )
        return int(count or 0)


async def _wait_done(ctx: Any, total: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while await _succeeded(ctx) < total:
        if time.monotonic() > deadline:
            raise TimeoutError("runs did not finish")
        await asyncio.sleep(0.005)


async def _measure(url: str, redis: bool) -> dict[str, float]:
    queue = f"platform-bench-jobs-{uuid.uuid4().hex[:8]}"
    core: dict[str, Any] = {"jobs": {"poll_seconds": 0.05}}
    if redis:
        core["jobs"]["broker_url"] = f"{REDIS_URL}?queue={queue}"
    with tempfile.TemporaryDirectory() as tmp:
        ctx = boot(make_config(Path(tmp), url, **core), extra_plugins={"bench": Noop()})
        await upgrade(ctx.db, ctx.state["migration_targets"])
        stop = asyncio.Event()
        loop = asyncio.create_task((run_worker if redis else run_runner)(ctx, stop))
        await asyncio.sleep(0.5)  # the worker joins its consumer group
        try:
            start = time.perf_counter()
            ids = [(await service.enqueue(ctx, "bench.noop")).id for _ in range(RUNS)]
            if redis:
                await send_runs(ctx, ids)
            await _wait_done(ctx, RUNS)
            elapsed = time.perf_counter() - start
            latencies = []
            for i in range(LATENCY_RUNS):
                began = time.perf_counter()
                run = await service.enqueue(ctx, "bench.noop")
                if redis:
                    await send_runs(ctx, [run.id])
                await _wait_done(ctx, RUNS + i + 1)
                latencies.append((time.perf_counter() - began) * 1000)
        finally:
            stop.set()
            await asyncio.wait_for(loop, 30)
            await ctx.db.dispose()
        if redis:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(REDIS_URL)
            await client.delete(queue)
            await client.aclose()
    return {
        "per_s": RUNS / elapsed,
        "ms_per_run": elapsed * 1000 / RUNS,
        "p50_ms": statistics.median(latencies),
    }


def report(label: str, url: str) -> None:
    """Print the embedded and the Redis runner's figures on one database."""
    for runner, redis in (("embedded", False), ("Redis (taskiq)", True)):
        header(f"jobs: {runner} runner on {label} ({RUNS} trivial runs, concurrency 4)")
        try:
            figures = asyncio.run(_measure(url, redis))
        except OSError as exc:
            print(f"  skipped: {exc}")
            continue
        row("throughput", f"{figures['per_s']:,.0f} runs/s ({figures['ms_per_run']:.2f} ms/run)")
        row("enqueue-to-succeeded latency, one at a time, p50", f"{figures['p50_ms']:.1f} ms")


def main() -> None:
    """Print the figures for SQLite and, when reachable, PostgreSQL."""
    with tempfile.TemporaryDirectory() as tmp:
        report("SQLite", f"sqlite+aiosqlite:///{Path(tmp) / 'jobs.db'}")
    if pg_reachable():
        with fresh_pg_database("platform_bench_jobs") as url:
            report("PostgreSQL", url)
    else:
        print("PostgreSQL not reachable: skipped")


if __name__ == "__main__":
    main()
