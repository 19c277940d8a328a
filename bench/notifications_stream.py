"""Live notifications over three ``platformctl serve`` processes (PostgreSQL + Redis).

Not timed as a whole: it counts and measures. On a fresh PostgreSQL database, ``CLIENTS``
users (default 1000) each open one ``GET /api/core/notifications/stream``, spread over
three ``serve`` processes in turn. This script then creates ``NOTES`` notifications (default
1000) for random users at ``RATE`` per second, each in its own transaction, from its own
process (as a worker would), and reads every stream until each notification arrived or
``WAIT`` seconds passed; a stream the server ends is reopened with ``Last-Event-ID``, as
browsers do. It reports notifications delivered to the right user exactly once,
to a wrong user, twice, or not at all, and the time from just before the creating
transaction's commit to the event's arrival at the client (p50, p99, max).

Run: ``.venv/bin/python bench/notifications_stream.py`` (``CLIENTS=200 NOTES=300`` for a
smaller run). PostgreSQL at ``BENCH_PG_URL``'s server (the database in the URL is ignored),
else the local one; Redis at ``BENCH_REDIS_URL``, else ``redis://127.0.0.1:6379/0``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from _common import BENCH_SECRET, DEFAULT_PG_SERVER, PG_SERVER_ENV

from platform_core.notifications import live, service
from platform_core.shared import close_clients
from platform_core.testing import TEST_DATABASE_ENV, fresh_database, prepared

CLIENTS = int(os.environ.get("CLIENTS", "1000"))
NOTES = int(os.environ.get("NOTES", "1000"))
RATE = float(os.environ.get("RATE", "100"))
WAIT = float(os.environ.get("WAIT", "30"))
CONNECT_RATE = float(os.environ.get("CONNECT_RATE", "100"))
PROCESSES = 3
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def write_config(directory: Path, url: str) -> Path:
    """A ``plugins.toml`` for the servers: no plugins, the shared Redis, 15 s heartbeats;
    requests wait up to 30 s for a pooled connection (connecting 1000 streams on a busy
    2-core machine queues their credential lookups)."""
    config = directory / "plugins.toml"
    config.write_text(
        f"""
[core]
database_url = "{url}"
secret_key = "{BENCH_SECRET}"
log_format = "text"
log_level = "WARNING"

[core.database]
pool_timeout_seconds = 30

[core.notifications]
heartbeat_seconds = 15

[core.redis]
url = "{REDIS}"
prefix = "bench-{uuid.uuid4().hex[:8]}"

[plugins]
enabled = []
"""
    )
    return config


@asynccontextmanager
async def serving(config: Path, log: Path) -> AsyncIterator[str]:
    """``platformctl serve`` on a free port, its output in ``log`` (a pipe would fill up)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "platformctl"), "serve", "--port", str(port)],
            env={**os.environ, "PLATFORM_CONFIG": str(config)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError(f"serve exited: {log.read_text()[-2000:]}") from None
                    await asyncio.sleep(0.2)
            yield base
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Client:
    """One stream over a raw socket: every notification's title and arrival time."""

    def __init__(self, user_id: int, token: str, base: str) -> None:
        self.user_id = user_id
        self.token = token
        self.base = base
        self.received: list[tuple[str, float]] = []
        self.ready = asyncio.Event()
        self.failed: str | None = None
        self.last_id = ""
        self.reconnects = 0

    async def run(self) -> None:
        """Connect, check the 200, read events; reconnect with ``Last-Event-ID`` (as an
        EventSource does) whenever an opened stream ends, until cancelled."""
        while True:
            await self._once()
            if not self.ready.is_set():
                self.ready.set()  # refused at the first attempt: counted, not retried
                return
            self.reconnects += 1
            await asyncio.sleep(0.5)

    async def _once(self) -> None:
        parts = urlsplit(self.base)
        try:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        except OSError as exc:
            self.failed = self.failed or str(exc)
            return
        resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id else ""
        try:
            writer.write(
                (
                    "GET /api/core/notifications/stream HTTP/1.1\r\n"
                    f"Host: {parts.netloc}\r\nAuthorization: Bearer {self.token}\r\n"
                    f"Accept: text/event-stream\r\n{resume}\r\n"
                ).encode()
            )
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                if not self.ready.is_set():
                    self.failed = status.decode().strip()
                return
            while (await reader.readline()) not in (b"\r\n", b""):
                pass  # headers
            data = b""
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b"retry:"):
                    self.ready.set()
                elif line.startswith(b"id: "):
                    self.last_id = line[4:].strip().decode()
                elif line.startswith(b"data: "):
                    data = line[6:]
                elif line in (b"\n", b"\r\n") and data:
                    # chunked framing lines (sizes) are skipped: only data lines are parsed
                    self.received.append((json.loads(data)["title"], time.monotonic()))
                    data = b""
        except OSError:
            return
        finally:
            writer.close()


async def main() -> None:
    """Set up, connect, publish, count and print."""
    server = os.environ.get(PG_SERVER_ENV) or DEFAULT_PG_SERVER
    os.environ.setdefault(TEST_DATABASE_ENV, server)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        async with fresh_database("postgresql", directory) as url:
            config = write_config(directory, url)
            async with prepared(config) as platform:
                started = time.monotonic()
                users = []
                for _ in range(CLIENTS):
                    user = await platform.user("member")
                    users.append((user.id, await platform.token(user=user)))
                print(f"{CLIENTS} users with tokens in {time.monotonic() - started:.1f} s")
                async with AsyncExitStack() as stack:
                    bases = await asyncio.gather(
                        *(
                            stack.enter_async_context(serving(config, directory / f"serve-{i}.log"))
                            for i in range(PROCESSES)
                        )
                    )
                    await run(platform, users, list(bases))
                kinds: Counter[str] = Counter()
                for i in range(PROCESSES):
                    for line in (directory / f"serve-{i}.log").read_text().splitlines():
                        if " ERROR " in line or " WARNING " in line:
                            kinds[line[9:130]] += 1
                for text, count in kinds.most_common(6):
                    print(f"servers logged {count}x: {text}")
                await live.flush(platform.ctx)
                await close_clients(platform.ctx)


async def run(platform, users: list[tuple[int, str]], bases: list[str]) -> None:
    """Connect every client, publish, wait, report."""
    clients = [Client(uid, token, bases[i % len(bases)]) for i, (uid, token) in enumerate(users)]
    started = time.monotonic()
    tasks = []
    for i, client in enumerate(clients):
        tasks.append(asyncio.create_task(client.run()))
        if i % 10 == 9:
            await asyncio.sleep(10 / CONNECT_RATE)
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 300)
    failed = [c.failed for c in clients if c.failed]
    print(
        f"{len(clients) - len(failed)} of {len(clients)} streams open over {len(bases)} "
        f"processes in {time.monotonic() - started:.1f} s ({CONNECT_RATE:g}/s asked)"
        + (f"; refused: {len(failed)}, e.g. {failed[0]}" if failed else "")
    )
    await asyncio.sleep(1.0)
    sent: dict[str, tuple[int, float]] = {}
    rng = random.Random(15)
    by_user = {c.user_id: c for c in clients if not c.failed}  # notify open streams only
    interval = 1.0 / RATE
    started = time.monotonic()
    for seq in range(NOTES):
        user_id = rng.choice(list(by_user))
        title = f"bench #{seq}"
        async with platform.ctx.db.session() as session:
            await service.notify(
                session, [user_id], kind="bench.ping", title=title, ctx=platform.ctx
            )
            await session.flush()
            sent[title] = (user_id, time.monotonic())
        delay = started + (seq + 1) * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    publish_seconds = time.monotonic() - started
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if sum(len(c.received) for c in clients) >= NOTES:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # late duplicates would show now
    reconnects = sum(c.reconnects for c in clients)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    right, wrong, dupes, latencies = 0, 0, 0, []
    seen: set[str] = set()
    for client in clients:
        for title, at in client.received:
            owner, t0 = sent[title]
            if owner != client.user_id:
                wrong += 1
            elif title in seen:
                dupes += 1
            else:
                seen.add(title)
                right += 1
                latencies.append((at - t0) * 1000)
    missing = NOTES - len(seen)
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("nan")
    print(f"{NOTES} notifications to random users in {publish_seconds:.1f} s ({RATE:g}/s asked)")
    print(f"streams ended by the servers and resumed with Last-Event-ID: {reconnects}")
    print(
        f"delivered to the right user once: {right}; to a wrong user: {wrong}; "
        f"twice: {dupes}; missing after {WAIT:g} s: {missing}"
    )
    if latencies:
        print(
            f"commit -> delivery: p50 {statistics.median(latencies):.1f} ms, "
            f"p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
