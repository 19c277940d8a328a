"""Request overhead: an authenticated GET of one row through the platform vs a bare app.

The platform serves ``GET /api/bench/items/{id}`` from an in-process ``bench`` plugin (table
``bench_items``, a session from ``Depends(get_session, scope="function")``), authenticated
with a personal API token of a member (created through ``platform_core.auth.service``), so
each request also runs the request middleware (request id, metrics), the plugin guard and
the credential check (the resolved token is cached per process for ``[core.auth]
cache_seconds``, 5 s by default, so most requests skip its queries). The same route declared
public is measured too, for information: the platform's cost without authentication. The
bare app is FastAPI + SQLAlchemy async with default engine settings
running the same query through the same kind of session dependency, without auth.

Both are served the same way (``bench/_apps.py``): uvicorn in its own process, one worker,
uvloop, httptools, access log off, logging at WARNING (the platform logs every request at
INFO through ``platform_core.observability.RequestMiddleware``, so ``[core] log_level =
"WARNING"`` turns that off to compare like with like). Load comes from a separate process on
loopback: ``wrk`` (one thread) when installed, else the asyncio generator in ``_apps.py``;
keep-alive connections, concurrency 16, random ids among the rows. Both servers run side by
side; after a warm-up of each, fixed-duration rounds alternate between them (3 x 4 s each by
default) and each app's figure is the median of its rounds. Run on SQLite (a file in a
temporary directory) and on PostgreSQL when reachable (a fresh database, dropped
afterwards; server from ``BENCH_PG_URL``, default
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``).

Target: platform requests/s at least 0.8x the bare app's. Figures only: nothing is asserted.

Run: ``.venv/bin/python bench/get_one_row.py [--seconds N] [--rounds N] [--concurrency N]
[--no-wrk] [--no-postgres]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from _apps import BenchPlugin, items
from _common import fresh_pg_database, header, make_config, median, pg_reachable, row

from platform_core.app import boot
from platform_core.auth import service
from platform_core.migrate import upgrade

TARGET_RATIO = 0.8
ROWS = 1000
APPS = Path(__file__).resolve().parent / "_apps.py"
WRK_SCRIPT = """
local prefix = "{prefix}"
local max_id = {max_id}
{auth}
math.randomseed(os.time())
request = function()
  return wrk.format("GET", prefix .. math.random(1, max_id))
end
"""


async def _prepare(database_url: str, directory: Path) -> str:
    """Migrate, create a member with an API token, insert the rows; return the token."""
    ctx = boot(make_config(directory, database_url), extra_plugins={"bench": BenchPlugin()})
    try:
        await upgrade(ctx.db, ctx.state["migration_targets"])
        async with ctx.db.session() as session:
            user = await service.create_user(session, "bench-member", "member", None)
            _, secret = await service.create_token(
                session,
                user,
                scopes=None,
                known_scopes=frozenset(ctx.permissions),
                role_scopes=ctx.state["role_scopes"]["member"],
                expires_in=None,
                name="bench",
            )
            await session.execute(
                items.insert(),
                [{"id": i, "name": f"item {i}", "quantity": i % 97} for i in range(1, ROWS + 1)],
            )
    finally:
        await ctx.db.dispose()
    return secret


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """One app served by uvicorn in a subprocess; a context manager."""

    def __init__(self, kind: str, database_url: str, directory: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.log = directory / f"{kind}-server.log"
        argv = [sys.executable, str(APPS), kind, str(self.port), database_url]
        if kind == "platform":
            argv.append(str(directory))
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if _get(f"http://127.0.0.1:{self.port}/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise SystemExit(f"{self.kind} server did not start:\n{self.log.read_text()[-2000:]}")

    def __exit__(self, *_exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


def _wrk(
    port: int, prefix: str, token: str, seconds: float, concurrency: int, directory: Path
) -> dict[str, Any]:
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    script = directory / "wrk.lua"
    script.write_text(WRK_SCRIPT.format(prefix=prefix, max_id=ROWS, auth=auth))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout

    def find(pattern: str, default: str = "0") -> str:
        m = re.search(pattern, out)
        return m.group(1) if m else default

    def ms(text: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        if not m:
            return 0.0
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = int(find(r"Non-2xx or 3xx responses:\s+(\d+)"))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {
        "requests": int(find(r"(\d+) requests in")),
        "rps": float(find(r"Requests/sec:\s+([\d.]+)")),
        "errors": errors,
        "p50_ms": ms(find(r"(?m)^\s+50%\s+(\S+)", "")),
        "p99_ms": ms(find(r"(?m)^\s+99%\s+(\S+)", "")),
    }


def _python_load(
    port: int, prefix: str, token: str, seconds: float, concurrency: int
) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(APPS),
            "load",
            str(port),
            prefix,
            str(ROWS),
            token,
            str(seconds),
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _load(
    port: int, prefix: str, token: str, seconds: float, directory: Path, args: argparse.Namespace
) -> dict[str, Any]:
    if args.wrk:
        return _wrk(port, prefix, token, seconds, args.concurrency, directory)
    return _python_load(port, prefix, token, seconds, args.concurrency)


TARGETS = {  # label: (server, path prefix)
    "platform": ("platform", "/api/bench/items/"),
    "platform, public route": ("platform", "/api/bench/public/items/"),
    "bare": ("bare", "/items/"),
}


def run_database(label: str, database_url: str, directory: Path, args: argparse.Namespace) -> float:
    """Prepare the database, serve both apps, load them in alternating rounds; return the ratio.

    Both servers run for the whole comparison (an idle server costs nothing); rounds
    alternate so that noise from other processes on the machine hits every target alike,
    and each target's figure is the median of its rounds. Every request carries the token
    (the public route and the bare app ignore it), so requests are the same size.
    """
    header(
        f"{label}: concurrency {args.concurrency}, {args.rounds} alternating rounds of "
        f"{args.seconds:g} s after {args.warmup:g} s warm-up, {ROWS} rows"
    )
    token = asyncio.run(_prepare(database_url, directory))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in TARGETS}
    with (
        Server("platform", database_url, directory) as platform,
        Server("bare", database_url, directory) as bare,
    ):
        ports = {"platform": platform.port, "bare": bare.port}
        for name, (server, prefix) in TARGETS.items():
            status, body = _get(f"http://127.0.0.1:{ports[server]}{prefix}1", token)
            if status != 200:
                raise SystemExit(f"{name}: GET {prefix}1 answered {status}: {body[:300]!r}")
            _load(ports[server], prefix, token, args.warmup, directory, args)
        for _ in range(args.rounds):
            for name, (server, prefix) in TARGETS.items():
                result = _load(ports[server], prefix, token, args.seconds, directory, args)
                results[name].append(result)
    rps = {}
    for name, rounds in results.items():
        rps[name] = median([r["rps"] for r in rounds])
        mid = sorted(rounds, key=lambda r: r["rps"])[len(rounds) // 2]
        each = ", ".join(f"{r['rps']:.0f}" for r in rounds)
        row(
            f"{name} (rounds: {each})",
            f"{rps[name]:6.0f} req/s  p50 {mid['p50_ms']:.1f} ms, p99 {mid['p99_ms']:.1f} ms, "
            f"errors {sum(r['errors'] for r in rounds)}",
            width=48,
        )
    ratio = rps["platform"] / rps["bare"] if rps["bare"] else 0.0
    public = rps["platform, public route"] / rps["bare"] if rps["bare"] else 0.0
    verdict = "within" if ratio >= TARGET_RATIO else "UNDER"
    row("platform / bare", f"{ratio:6.2f}x  ({verdict} target >= {TARGET_RATIO:g}x)", width=48)
    row("(info) platform public route / bare", f"{public:6.2f}x", width=48)
    return ratio


def main() -> None:
    """Run on SQLite, then PostgreSQL when reachable."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4, help="seconds per round (4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per app (3)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per app (2)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (16)")
    parser.add_argument(
        "--no-wrk",
        dest="wrk",
        action="store_false",
        help="use the Python load generator even when wrk is installed",
    )
    parser.add_argument(
        "--no-postgres", dest="postgres", action="store_false", help="skip PostgreSQL"
    )
    args = parser.parse_args()
    args.wrk = args.wrk and shutil.which("wrk") is not None
    generator = "wrk -t1 (separate process)" if args.wrk else "asyncio generator (_apps.py load)"
    print(
        "get-one-row benchmark: uvicorn, 1 worker, uvloop + httptools, access log off, "
        f"log level WARNING in both; load: {generator}"
    )
    ratios = {}
    with tempfile.TemporaryDirectory(prefix="platform-bench-row-") as tmp:
        sqlite_dir = Path(tmp) / "sqlite"
        sqlite_dir.mkdir()
        ratios["SQLite"] = run_database(
            "SQLite", f"sqlite+aiosqlite:///{sqlite_dir / 'bench.db'}", sqlite_dir, args
        )
        if args.postgres and pg_reachable():
            pg_dir = Path(tmp) / "postgres"
            pg_dir.mkdir()
            with fresh_pg_database() as url:
                ratios["PostgreSQL"] = run_database("PostgreSQL", url, pg_dir, args)
        else:
            print("\n(PostgreSQL skipped: not reachable or --no-postgres)")
    header("result")
    for label, ratio in ratios.items():
        row(f"{label}: platform / bare", f"{ratio:9.2f}x  (target >= {TARGET_RATIO:g}x)")


if __name__ == "__main__":
    main()
