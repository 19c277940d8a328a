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


# -- a lean HTTP/1.1 load client ---------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """One HTTP/1.1 response from ``reader``: its status, its head (status line and
    headers) and its body (``Content-Length`` or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return int(head[9:12]), head, await reader.readexactly(length)
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readuntil(b"\r\n")
    return int(head[9:12]), head, body


def http_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request, built ahead so sending costs nothing."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def send_all(
    base_url: str | Sequence[str], requests: Sequence[bytes], concurrency: int
) -> list[tuple[int, bytes]]:
    """Send prebuilt ``requests`` (see :func:`http_request`) over ``concurrency`` keep-alive
    connections, each taking the next unsent one; returns (status, body) in request order.
    With several base URLs, connection ``i`` goes to the ``i mod n``-th (round robin, as a
    load balancer spreads connections over processes).

    A raw asyncio client: an HTTP client library such as httpx spends about a millisecond
    of CPU per request, which on a 2-core machine caps the load below what a server serves.
    """
    bases = [base_url] if isinstance(base_url, str) else list(base_url)
    results: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    cursor = iter(range(len(requests)))

    async def connection(number: int) -> None:
        host, port = bases[number % len(bases)].removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in cursor:
                writer.write(requests[i])
                status, _head, body = await read_response(reader)
                results[i] = (status, body)
        finally:
            writer.close()

    await asyncio.gather(*(connection(i) for i in range(concurrency)))
    return results


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds process ``pid`` has used so far (Linux ``/proc``; 0
    elsewhere or once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU seconds (:func:`process_cpu_seconds`) this process's live child processes (such
    as the ``platformctl serve`` of :func:`platform_core.testing.served`) have used so far."""
    return sum(
        process_cpu_seconds(int(pid))
        for children in Path("/proc/self/task").glob("*/children")
        for pid in children.read_text().split()
    )


def named_cpu_seconds(name: str) -> float:
    """CPU seconds (:func:`process_cpu_seconds`) every live process called ``name`` (its
    ``/proc/<pid>/comm``, such as ``postgres`` for a local PostgreSQL's server processes)
    has used so far."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name:
                total += process_cpu_seconds(int(comm.parent.name))
        except OSError:  # gone meanwhile
            continue
    return total


async def timed_one_by_one(
    base_url: str, request: bytes, count: int
) -> list[tuple[float, int, bytes]]:
    """Send one prebuilt request ``count`` times in a row on one keep-alive connection;
    each answer's latency in milliseconds (write to last byte read), status and head."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    out = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            writer.write(request)
            status, head, _body = await read_response(reader)
            out.append(((time.perf_counter() - start) * 1000, status, head))
    finally:
        writer.close()
    return out
