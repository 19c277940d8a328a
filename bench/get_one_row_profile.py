"""Request overhead: where one authenticated one-row GET spends its CPU (a profile).

The same two apps as ``get_one_row.py`` (the platform's ``GET /api/inventory/devices/1``
built by ``create_app`` as ``platformctl serve`` builds it, and the bare FastAPI +
SQLAlchemy app of ``_apps.py``), called in-process through a minimal ASGI driver (no HTTP
server, no client library), one request at a time (``CONCURRENCY=N``: N at a time), in
``ROUNDS`` (30) alternating rounds. It prints this process's CPU time per request for each
app and the median of the per-round ratios: a steadier figure than requests/s on a loaded
2-core machine, and one that leaves out the HTTP parsing both apps share. With
``PROFILE=1`` it then runs the platform under pyinstrument and prints its tree (``pip
install pyinstrument``). Runs on SQLite, and on PostgreSQL when reachable.

Run: ``.venv/bin/python bench/get_one_row_profile.py [N]`` (N requests per app, 6000;
``SQLITE_ONLY=1`` skips PostgreSQL).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _apps
from _common import fresh_pg_database, header, make_config, pg_reachable, row
from get_one_row import _prepare

from platform_core.app import boot, create_app


async def _call(app: Any, path: str, token: str) -> int:
    """One GET through the ASGI interface; the response status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status = [0]
    sent = [False]

    async def receive() -> dict[str, Any]:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(scope, receive, send)
    return status[0]


CONCURRENCY = int(os.environ.get("CONCURRENCY", "1"))


ROUNDS = int(os.environ.get("ROUNDS", "30"))


async def _measure(app: Any, path: str, token: str, n: int) -> float:
    """CPU ms per request over ``n`` requests, :data:`CONCURRENCY` at a time."""
    left = list(range(n))

    async def caller() -> None:
        while left:
            left.pop()
            await _call(app, path, token)

    cpu = time.process_time()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    return 1000 * (time.process_time() - cpu) / n


async def run(label: str, database_url: str, directory: Path, n: int) -> None:
    """Prepare, warm both apps up, then measure them in :data:`ROUNDS` rounds of ``n //
    ROUNDS`` requests each, in random order within a round; print the median CPU per
    request of each and the median of the per-round ratios (the two apps of one round ran
    within a second of each other, so a machine that slows down for a while slows both)."""
    token = await _prepare(database_url, directory)
    ctx = boot(make_config(directory, database_url, enabled=["inventory"]))
    platform = create_app(ctx)
    bare = _apps.bare_app(database_url)
    apps = {"platform": (platform, "/api/inventory/devices/1"), "bare": (bare, "/devices/1")}
    figures: dict[str, list[float]] = {"platform": [], "bare": []}
    async with platform.router.lifespan_context(platform), bare.router.lifespan_context(bare):
        for app, path in apps.values():
            for _ in range(100):
                status = await _call(app, path, token)
                if status != 200:
                    raise SystemExit(f"{path} answered {status}")
        for _ in range(ROUNDS):
            for name in random.sample(list(apps), len(apps)):
                app, path = apps[name]
                figures[name].append(await _measure(app, path, token, max(1, n // ROUNDS)))
        header(f"{label}: CPU per request, in-process, {CONCURRENCY} at a time ({n} per app)")
        for name, values in figures.items():
            row(f"{name} (median of {ROUNDS} rounds)", f"{statistics.median(values):.3f} ms", 48)
        ratios = [b / p for b, p in zip(figures["bare"], figures["platform"], strict=True)]
        quartiles = statistics.quantiles(ratios, n=4)
        row(
            "bare / platform, median of per-round ratios",
            f"{quartiles[1]:.2f}x (quartiles {quartiles[0]:.2f}x to {quartiles[2]:.2f}x)",
            48,
        )
        if os.environ.get("PROFILE") == "1":
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled", interval=0.0002)
            with profiler:
                for _ in range(n):
                    await _call(platform, "/api/inventory/devices/1", token)
            print(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> None:
    """SQLite, then PostgreSQL when reachable."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        asyncio.run(run("SQLite", f"sqlite+aiosqlite:///{directory / 'p.db'}", directory, n))
    if pg_reachable() and os.environ.get("SQLITE_ONLY") != "1":
        with tempfile.TemporaryDirectory() as tmp, fresh_pg_database() as url:
            asyncio.run(run("PostgreSQL", url, Path(tmp), n))


if __name__ == "__main__":
    main()
