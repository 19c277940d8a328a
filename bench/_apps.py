"""The two servers ``get_one_row.py`` compares, and its load generator (not a benchmark).

Launched by ``bench/get_one_row.py`` as separate processes::

    PLATFORM_CONFIG=DIR/plugins.toml platformctl serve --port PORT   # the platform itself
    python bench/_apps.py bare PORT DATABASE_URL                     # FastAPI + SQLAlchemy
    python bench/_apps.py load PORT PATH_PREFIX MAX_ID TOKEN SECONDS CONCURRENCY

The platform answers ``GET /api/inventory/devices/{id}`` (the inventory plugin's route: the
request middleware, idempotency and transaction-retry layers, the plugin guard with the
credential cache, the session dependency and the ``DeviceOut`` response model). The bare
app answers ``GET /devices/{id}`` with the same one-row read of ``inventory_devices``
through an ``AsyncSession`` dependency with ``scope="function"`` (on an engine with the
platform's default pool size), after checking the bearer
token the same way: its SHA-256 digest looked up in ``core_api_tokens`` (joined with its
active user), the result cached for 5 s per process. Both run uvicorn with one worker
(uvloop and httptools, as ``platformctl serve`` picks them when installed), no access log
and logging at WARNING.

Run without arguments, this module prints its usage and exits 0 (``make bench`` runs every
``bench/*.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from _common import read_response
from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from platform_core.db import MAX_OVERFLOW, POOL_SIZE

CACHE_SECONDS = 5.0
"""The bare app's credential cache, as the platform's ``[core.auth] cache_seconds``."""

SERVER_OPTIONS: dict[str, Any] = {
    "host": "127.0.0.1",
    "workers": 1,
    "loop": "uvloop",
    "http": "httptools",
    "access_log": False,
    "log_level": "warning",
    "log_config": None,
    "server_header": False,
    "lifespan": "on",
}

_meta = sa.MetaData()
devices = sa.Table(
    "inventory_devices",
    _meta,
    *(
        sa.Column(name)
        for name in [
            "id",
            "name",
            "device_type_id",
            "manufacturer_id",
            "status",
            "serial",
            "asset_tag",
            "location_id",
            "rack_id",
            "position",
            "face",
            "tags",
            "custom_fields",
            "created_at",
            "updated_at",
        ]
    ),
)
tokens = sa.Table(
    "core_api_tokens",
    _meta,
    sa.Column("user_id"),
    sa.Column("digest"),
    sa.Column("revoked_at"),
    sa.Column("expires_at"),
)
users = sa.Table("core_users", _meta, sa.Column("id"), sa.Column("is_active"))


# -- the bare app --------------------------------------------------------------------------


class BareCredentials:
    """User id by token digest, each entry valid for :data:`CACHE_SECONDS`."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, int]] = {}

    async def user_id(self, request: Request) -> int:
        """The caller's user id, or 401."""
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise HTTPException(401, "authentication required")
        digest = hashlib.sha256(credential.encode()).hexdigest()
        entry = self.entries.get(digest)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        async with request.app.state.sessions() as session:
            found = await session.scalar(
                sa.select(tokens.c.user_id)
                .join(users, users.c.id == tokens.c.user_id)
                .where(tokens.c.digest == digest, tokens.c.revoked_at.is_(None))
                .where(users.c.is_active == sa.true())
            )
        if found is None:
            raise HTTPException(401, "invalid credentials")
        self.entries[digest] = (time.monotonic() + CACHE_SECONDS, int(found))
        return int(found)


credentials = BareCredentials()


async def bare_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session in a transaction, like the platform's ``get_session``."""
    async with request.app.state.sessions() as session, session.begin():
        yield session


async def bare_healthz() -> dict[str, str]:
    """Liveness, for the launcher to wait on."""
    return {"status": "ok"}


async def get_bare_device(
    device_id: int,
    _user: Annotated[int, Depends(credentials.user_id)],
    session: Annotated[AsyncSession, Depends(bare_session, scope="function")],
) -> dict[str, Any]:
    """One device row."""
    found = (await session.execute(sa.select(devices).where(devices.c.id == device_id))).first()
    if found is None:
        raise HTTPException(404, f"device {device_id} not found")
    out = dict(found._mapping)
    for key in ("tags", "custom_fields"):  # JSON columns, read here as untyped text
        if isinstance(out[key], str):
            out[key] = json.loads(out[key])
    return out


def bare_app(database_url: str) -> FastAPI:
    """FastAPI + SQLAlchemy async, a 5 s token cache, and the platform's default pool size
    (SQLAlchemy's own, 5 kept and 10 more opened and closed under load, would have it open
    a connection per request at concurrency 16, and measure that instead of the code)."""
    engine = create_async_engine(database_url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    app.get("/healthz")(bare_healthz)
    app.get("/devices/{device_id}")(get_bare_device)
    return app


# -- the load generator -----------------------------------------------------------


async def _worker(
    port: int,
    prefix: str,
    max_id: int,
    token: str,
    deadline: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rnd = random.Random()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    try:
        while (start := time.perf_counter()) < deadline:
            path = f"{prefix}{rnd.randint(1, max_id)}"
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}\r\n".encode())
            status, _head, _body = await read_response(reader)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def run_load(
    port: int, prefix: str, max_id: int, token: str, seconds: float, concurrency: int
) -> dict[str, Any]:
    """Keep-alive HTTP/1.1 GETs on ``concurrency`` connections for ``seconds``."""
    latencies: list[float] = []
    errors: list[int] = []
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(
            _worker(port, prefix, max_id, token, deadline, latencies, errors)
            for _ in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0
        )

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "errors": len(errors),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def main(argv: list[str]) -> int:
    """Dispatch on the first argument (see the module docstring)."""
    if not argv:
        print(
            "bench/_apps.py: a helper of bench/get_one_row.py, not a benchmark "
            "(usage: see its docstring)",
            file=sys.stderr,
        )
        return 0
    kind = argv[0]
    if kind == "load":
        port, prefix, max_id, token, seconds, concurrency = argv[1:7]
        load = run_load(int(port), prefix, int(max_id), token, float(seconds), int(concurrency))
        try:
            import uvloop
        except ImportError:
            result = asyncio.run(load)
        else:
            result = uvloop.run(load)
        print(json.dumps(result))
        return 0
    import uvicorn

    port, database_url = int(argv[1]), argv[2]
    if kind != "bare":
        print(f"unknown app {kind!r}", file=sys.stderr)
        return 2
    app = bare_app(database_url)
    uvicorn.run(app, port=port, **SERVER_OPTIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
