"""Shared helpers of the benchmark scripts (not a benchmark: running it does nothing).

The scripts in ``bench/`` import this module as ``_common``: Python puts a script's own
directory first on the module search path, so no path manipulation is needed.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from platform_core.config import Config, CoreSettings

BENCH_SECRET = "bench-secret-key-" + "x" * 32
PG_SERVER_ENV = "BENCH_PG_URL"
DEFAULT_PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def make_config(
    directory: Path,
    database_url: str | None = None,
    *,
    enabled: Sequence[str] = (),
    **core: object,
) -> Config:
    """A platform config with a SQLite file in ``directory`` (or ``database_url``).

    Built from ``Config``/``CoreSettings`` directly: no ``plugins.toml`` is read; ``enabled``
    lists installed plugins to enable. Note that ``PLATFORM_*`` environment variables still
    override these values (pydantic-settings).
    """
    options: dict[str, object] = {
        "database_url": database_url or f"sqlite+aiosqlite:///{directory / 'platform.db'}",
        "secret_key": BENCH_SECRET,
        "log_format": "text",
        "log_level": "WARNING",
    }
    options.update(core)
    return Config(
        path=directory / "plugins.toml", core=CoreSettings(**options), enabled=list(enabled)
    )


def first_party_plugins() -> list[str]:
    """Installed plugins whose distribution is one of this repository's ``plugins/*/``."""
    import tomllib

    from packaging.utils import canonicalize_name

    from platform_core.manager import discover

    ours = set()
    for project in (Path(__file__).resolve().parent.parent / "plugins").glob("*/pyproject.toml"):
        name = tomllib.loads(project.read_text(encoding="utf-8")).get("project", {}).get("name")
        if name:
            ours.add(canonicalize_name(name))
    found = []
    for name, entry_point in discover().items():
        dist = getattr(entry_point, "dist", None)
        if dist is not None and canonicalize_name(dist.metadata["Name"] or "") in ours:
            found.append(name)
    return sorted(found)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...``; afterwards ``t[0]`` holds the elapsed milliseconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append((time.perf_counter() - start) * 1000)


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (0.0 for none)."""
    return statistics.median(values) if values else 0.0


def header(title: str) -> None:
    """Print a section title."""
    print(f"\n== {title} ==", flush=True)


def row(label: str, value: str, width: int = 52) -> None:
    """Print one ``label .... value`` line."""
    print(f"  {label:<{width}} {value}", flush=True)


def pg_server_url() -> str:
    """The PostgreSQL server used to create throw-away databases (``BENCH_PG_URL``)."""
    return os.environ.get(PG_SERVER_ENV, DEFAULT_PG_SERVER)


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg_execute(sql: str, timeout: float = 5.0) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(pg_server_url()), timeout=timeout)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_reachable() -> bool:
    """True when the PostgreSQL server answers (and we may create databases)."""
    try:
        asyncio.run(_pg_execute("SELECT 1", timeout=3.0))
    except Exception:
        return False
    return True


@contextmanager
def fresh_pg_database(prefix: str = "platform_bench") -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"{prefix}_{int(time.time())}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}"'))
    base = pg_server_url().rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
