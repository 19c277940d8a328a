"""Events: publish-to-handler throughput and latency through the outbox.

An in-process plugin subscribes one handler that records when each event arrives. A
publisher commits N events, one per transaction (the common case: one change, one event),
while the dispatcher loop of a serving process runs. Figures: events/s from the first
commit to the last delivery, and commit-to-handler latency p50/p99. Then the same with ten
events per transaction. On SQLite and, when reachable, on a fresh PostgreSQL database.

No target is set by the issue; the figures go to the closing note.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import fresh_pg_database, header, make_config, pg_reachable, row

from platform_core import EventHandler, hookimpl
from platform_core.app import boot
from platform_core.events.dispatcher import run_event_dispatcher
from platform_core.events.outbox import publish
from platform_core.migrate import upgrade

EVENTS = 2000


class Sink:
    """The benchmark's plugin: one handler noting each event's arrival time."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expected = 0

    @hookimpl
    def platform_event_handlers(self) -> list[EventHandler]:
        async def arrive(event: Any) -> None:
            self.arrived[event.id] = time.perf_counter()
            if len(self.arrived) >= self.expected:
                self.done.set()

        return [EventHandler("bench.*", arrive, name="arrive")]


async def _run(url: str, per_tx: int) -> dict[str, float]:
    sink = Sink()
    sink.expected = EVENTS
    with tempfile.TemporaryDirectory() as tmp:
        ctx = boot(make_config(Path(tmp), url), extra_plugins={"bench": sink})
        await upgrade(ctx.db, ctx.state["migration_targets"])
        stop = asyncio.Event()
        loop = asyncio.create_task(run_event_dispatcher(ctx, stop))
        committed: dict[str, float] = {}
        start = time.perf_counter()
        for _ in range(EVENTS // per_tx):
            async with ctx.db.session() as session:
                ids = [
                    publish(session, name="bench.thing.made", payload={"n": i})
                    for i in range(per_tx)
                ]
            now = time.perf_counter()
            committed.update(dict.fromkeys(ids, now))
            await asyncio.sleep(0)  # let the dispatcher interleave, as a server would
        published = time.perf_counter() - start
        await asyncio.wait_for(sink.done.wait(), 300)
        elapsed = max(sink.arrived.values()) - start
        stop.set()
        await loop
        await ctx.db.dispose()
    latencies = sorted((sink.arrived[k] - committed[k]) * 1000 for k in committed)
    return {
        "publish_per_s": EVENTS / published,
        "delivered_per_s": EVENTS / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
    }


def report(label: str, url: str) -> None:
    """Run both shapes on one database and print the figures."""
    header(f"events on {label} ({EVENTS} events)")
    for per_tx in (1, 10):
        figures = asyncio.run(_run(url, per_tx))
        row(f"{per_tx} event(s)/transaction: commits", f"{figures['publish_per_s']:,.0f} events/s")
        row(
            f"{per_tx} event(s)/transaction: delivered",
            f"{figures['delivered_per_s']:,.0f} events/s",
        )
        row(
            f"{per_tx} event(s)/transaction: latency p50 / p99",
            f"{figures['p50_ms']:.1f} ms / {figures['p99_ms']:.1f} ms",
        )


def main() -> None:
    """Print the figures for SQLite and, when reachable, PostgreSQL."""
    with tempfile.TemporaryDirectory() as tmp:
        report("SQLite", f"sqlite+aiosqlite:///{Path(tmp) / 'events.db'}")
    if pg_reachable():
        with fresh_pg_database("platform_bench_events") as url:
            report("PostgreSQL", url)
    else:
        print("PostgreSQL not reachable: skipped")


if __name__ == "__main__":
    main()
