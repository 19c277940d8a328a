"""The two apps ``get_one_row.py`` compares, and its fallback load generator (not a benchmark).

Launched by ``bench/get_one_row.py`` as separate processes::

    python bench/_apps.py platform PORT DATABASE_URL DIRECTORY   # the platform + bench plugin
    python bench/_apps.py bare PORT DATABASE_URL                  # FastAPI + SQLAlchemy only
    python bench/_apps.py load PORT PATH_PREFIX MAX_ID TOKEN SECONDS CONCURRENCY

Both servers run uvicorn as ``platformctl serve`` does (``log_config=None``, no ``Server``
header) with one worker, uvloop, httptools, no access log and logging at WARNING. Both read
one row of ``bench_items`` by primary key through an ``AsyncSession`` dependency with
``scope="function"``; the platform's route also goes through its request middleware, the
plugin guard and token authentication (``/api/bench/public/items/{id}`` is the same route
declared public, to tell the cost of authentication from the rest).

Run without arguments, this module prints its usage and exits 0 (``make bench`` runs every
``bench/*.py``).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from platform_core import PUBLIC, Models, NotFound, hookimpl
from platform_core.auth.deps import get_session
from platform_core.db import plugin_metadata

MIGRATIONS = Path(__file__).resolve().parent / "_bench_migrations"
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

metadata = plugin_metadata()
items = sa.Table(
    "bench_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
)


def item_query(item_id: int) -> sa.Select[Any]:
    """The one query both apps run."""
    return sa.select(items.c.id, items.c.name, items.c.quantity).where(items.c.id == item_id)


# -- the platform ----------------------------------------------------------------------------

plugin_router = APIRouter()


@plugin_router.get("/items/{item_id}")
async def get_item(
    item_id: int, session: Annotated[AsyncSession, Depends(get_session, scope="function")]
) -> dict[str, Any]:
    """One item (scope ``bench:read``)."""
    found = (await session.execute(item_query(item_id))).first()
    if found is None:
        raise NotFound(f"item {item_id} not found")
    return dict(found._mapping)


@plugin_router.get("/public/items/{item_id}", openapi_extra=PUBLIC)
async def get_public_item(
    item_id: int, session: Annotated[AsyncSession, Depends(get_session, scope="function")]
) -> dict[str, Any]:
    """The same item on a public route: the platform's cost without authentication."""
    return await get_item(item_id, session)


class BenchPlugin:
    """The in-process ``bench`` plugin: one table and one route."""

    @hookimpl
    def platform_models(self) -> Models:
        """``bench_items`` and its migration."""
        return Models(metadata, MIGRATIONS)

    @hookimpl
    def platform_routes(self) -> list[APIRouter]:
        """``GET /api/bench/items/{item_id}`` and its public twin."""
        return [plugin_router]


def platform_app(database_url: str, directory: Path) -> FastAPI:
    """The platform with the bench plugin (migrations must already be applied)."""
    from _common import make_config

    from platform_core.app import boot, create_app
    from platform_core.observability import configure_logging

    config = make_config(directory, database_url)  # [core] log_level = "WARNING"
    configure_logging(config.core.log_format, config.core.log_level)
    return create_app(boot(config, extra_plugins={"bench": BenchPlugin()}))


# -- the bare app --------------------------------------------------------------------------


async def bare_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session in a transaction, like the platform's ``get_session``."""
    async with request.app.state.sessions() as session, session.begin():
        yield session


async def bare_healthz() -> dict[str, str]:
    """Liveness, for the launcher to wait on."""
    return {"status": "ok"}


async def get_bare_item(
    item_id: int, session: Annotated[AsyncSession, Depends(bare_session, scope="function")]
) -> dict[str, Any]:
    """One item, no authentication."""
    found = (await session.execute(item_query(item_id))).first()
    if found is None:
        raise HTTPException(404, f"item {item_id} not found")
    return dict(found._mapping)


def bare_app(database_url: str) -> FastAPI:
    """FastAPI + SQLAlchemy async, default engine settings, the same query, no auth."""
    engine = create_async_engine(database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    app.get("/healthz")(bare_healthz)
    app.get("/items/{item_id}")(get_bare_item)
    return app


# -- the fallback load generator -----------------------------------------------------------


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
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if head[9:12] != b"200":
                errors.append(int(head[9:12]))
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
    if kind == "platform":
        app = platform_app(database_url, Path(argv[3]))
    elif kind == "bare":
        app = bare_app(database_url)
    else:
        print(f"unknown app {kind!r}", file=sys.stderr)
        return 2
    uvicorn.run(app, port=port, **SERVER_OPTIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
