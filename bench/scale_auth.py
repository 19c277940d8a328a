"""Login limits and revocation across three ``platformctl serve`` processes (PostgreSQL).

Not timed as a whole: it counts and measures. For each mode (``redis``: ``[core.redis]``
set, ``none``: no Redis, each process on its own), on a fresh PostgreSQL database:

- wrong-password attempts for one user, 15 in a row through the three processes in turn
  (distinct client addresses, so only the per-user limit applies), then 15 at once: how
  many were answered 401 (the limit is 5) and how many 429;
- a personal token used through all three (warming their 5-second credential caches),
  revoked through the first: milliseconds from the revocation's 204 to the first 401 in
  each process (polled every 10 ms), ``ROUNDS`` times, median and max.

Run: ``.venv/bin/python bench/scale_auth.py`` (``ROUNDS=5`` by default). PostgreSQL at
``BENCH_PG_URL``'s server (the database in the URL is ignored), else the local one; Redis
at ``BENCH_REDIS_URL``, else ``redis://127.0.0.1:6379/0``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
from _common import BENCH_SECRET, DEFAULT_PG_SERVER, PG_SERVER_ENV
from sqlalchemy import select

from platform_core import ApiToken
from platform_core.testing import TEST_DATABASE_ENV, fresh_database, prepared, served

LIMIT = 5
ATTEMPTS = 15
PASSWORD = "correct horse battery"
ROUNDS = int(os.environ.get("ROUNDS", "5"))
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def write_config(directory: Path, url: str, redis: str | None) -> Path:
    """A ``plugins.toml`` for the three servers (no plugins; loopback is a trusted proxy)."""
    shared = f'[core.redis]\nurl = "{redis}"\nprefix = "bench-{uuid.uuid4().hex[:8]}"\n'
    config = directory / "plugins.toml"
    config.write_text(
        f"""
[core]
database_url = "{url}"
secret_key = "{BENCH_SECRET}"
log_format = "text"
log_level = "WARNING"
trusted_proxies = ["127.0.0.1"]

[core.auth]
login_attempts = {LIMIT}
login_window_seconds = 60
cache_seconds = 5

{shared if redis else ""}
[plugins]
enabled = []
"""
    )
    return config


async def login(client: httpx.AsyncClient, base: str, user: str, address: str) -> int:
    """One wrong-password attempt; its status code."""
    response = await client.post(
        f"{base}/api/core/auth/token",
        data={"username": user, "password": "wrong password"},
        headers={"X-Forwarded-For": address},
    )
    return response.status_code


async def me(client: httpx.AsyncClient, base: str, secret: str) -> int:
    """``GET /api/core/me`` with ``secret``; its status code."""
    headers = {"Authorization": f"Bearer {secret}"}
    return (await client.get(f"{base}/api/core/me", headers=headers)).status_code


async def revocation_delays(platform, client, bases, admin, user) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds from a revocation through ``bases[0]`` to the first 401 in each process."""
    secret = await platform.token(user=user)
    async with platform.ctx.db.session() as session:
        token_id = await session.scalar(
            select(ApiToken.id).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        )
    assert [await me(client, b, secret) for b in bases] == [200] * len(bases)
    answer = await client.delete(
        f"{bases[0]}/api/core/tokens/{token_id}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert answer.status_code == 204, answer.text
    start = time.monotonic()

    async def first_401(base: str) -> float:
        while time.monotonic() - start < 10:
            if await me(client, base, secret) == 401:
                return time.monotonic() - start
            await asyncio.sleep(0.01)
        return float("inf")

    return list(await asyncio.gather(*(first_401(b) for b in bases)))


async def measure(mode: str, directory: Path) -> None:
    """Print the figures of one mode."""
    redis = REDIS if mode == "redis" else None
    async with fresh_database("postgresql", directory) as url:
        config = write_config(directory, url, redis)
        async with prepared(config) as platform, AsyncExitStack() as stack:
            users = [await platform.user("member", f"u{i}", PASSWORD) for i in range(ROUNDS)]
            await platform.user("member", "alice", PASSWORD)
            await platform.user("member", "bob", PASSWORD)
            admin = await platform.token("admin")
            bases = await asyncio.gather(
                *(stack.enter_async_context(served(config)) for _ in range(3))
            )
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
            pairs = list(zip(range(ATTEMPTS), itertools.cycle(bases), strict=False))
            serial = [await login(client, b, "alice", f"10.1.0.{i}") for i, b in pairs]
            burst = await asyncio.gather(
                *(login(client, b, "bob", f"10.2.0.{i}") for i, b in pairs)
            )
            delays = []
            for user in users:
                delays.append(await revocation_delays(platform, client, bases, admin, user))
    print(f"\n== {mode}: 3 serve processes, PostgreSQL, login limit {LIMIT}/60 s, cache 5 s")
    for name, codes in (("in a row", serial), ("at once", list(burst))):
        print(
            f"  {ATTEMPTS} wrong passwords {name:9}: {codes.count(401):2} x 401, "
            f"{codes.count(429):2} x 429, {len(codes) - codes.count(401) - codes.count(429)} other"
        )
    for i, label in enumerate(("revoking process", "other process 1", "other process 2")):
        column = [d[i] * 1000 for d in delays]
        print(
            f"  revocation -> first 401, {label}: median {statistics.median(column):7.1f} ms,"
            f" max {max(column):7.1f} ms ({ROUNDS} rounds)"
        )


async def main() -> None:
    """Both modes, one after the other."""
    server = os.environ.get(PG_SERVER_ENV) or DEFAULT_PG_SERVER
    os.environ.setdefault(TEST_DATABASE_ENV, server)
    for mode in ("redis", "none"):
        with tempfile.TemporaryDirectory() as tmp:
            await measure(mode, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
