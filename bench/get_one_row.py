"""Request overhead: an authenticated GET of one device through the platform vs a bare app.

The platform is ``platformctl serve`` (``PLATFORM_CONFIG`` pointing at a ``plugins.toml``
written here: the inventory plugin enabled, ``[core] log_level = "WARNING"``, everything
else at its default) answering ``GET /api/inventory/devices/{id}`` with a member's personal
API token: its request middleware (request id, metrics, body limit), the idempotency and
transaction-retry layers, the plugin guard with the credential check (the resolved token is
cached for ``[core.auth] cache_seconds``, 5 s by default), the session dependency and the
``DeviceOut`` response model. The bare app (``bench/_apps.py``) is FastAPI + SQLAlchemy
async with default engine settings: it checks the same token with the same 5-second cache
(its digest looked up in ``core_api_tokens``), then reads the same row of
``inventory_devices`` through the same kind of session dependency.

Both run uvicorn in their own process, one worker, uvloop + httptools, access log off,
logging at WARNING (the platform's per-request access log is INFO). Load comes from a
separate process on loopback: ``wrk`` (one thread) when installed, else the asyncio
generator in ``_apps.py``; keep-alive connections, concurrency 16, always device 1 (the
one device). Both servers run side by side; after a warm-up of each, fixed-duration rounds
alternate between them (5 x 4 s each by default) and each app's figure is the median of
its rounds. Run on SQLite (a file in a temporary directory) and on PostgreSQL when
reachable (a fresh database, dropped afterwards; server from ``BENCH_PG_URL``, default
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``).

Target: platform requests/s at least 0.9x the bare app's. Figures only: nothing is asserted.
Each round also reads the server process's CPU time (``/proc/<pid>/stat``): CPU per request
is the cost of one request, and steadier than requests/s on a shared 2-core machine where
the load generator and the database compete for the same cores.

Run: ``.venv/bin/python bench/get_one_row.py [--seconds N] [--rounds N] [--concurrency N]
[--no-wrk] [--database sqlite|postgresql|both]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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

from _common import (
    BENCH_SECRET,
    fresh_pg_database,
    header,
    make_config,
    median,
    pg_reachable,
    process_cpu_seconds,
    row,
)

from platform_core import create_token, create_user
from platform_core.app import boot
from platform_core.migrate import upgrade

TARGET_RATIO = 0.9
ROWS = 1  # one device: every request reads device 1
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


PLUGINS_TOML = """[core]
database_url = "{database_url}"
secret_key = "{secret_key}"
log_format = "text"
log_level = "WARNING"

[plugins]
enabled = ["inventory"]
"""


async def _prepare(database_url: str, directory: Path) -> str:
    """Write ``plugins.toml``, migrate, create a member with an API token and one device;
    return the token."""
    from platform_inventory.models import Device, DeviceType, Manufacturer

    (directory / "plugins.toml").write_text(
        PLUGINS_TOML.format(database_url=database_url, secret_key=BENCH_SECRET)
    )
    ctx = boot(make_config(directory, database_url, enabled=["inventory"]))
    try:
        await upgrade(ctx.db, ctx.state["migration_targets"])
        async with ctx.db.session() as session:
            user = await create_user(session, "bench-member", "member", None)
            _, secret = await create_token(
                session,
                user,
                scopes=None,
                known_scopes=frozenset(ctx.permissions),
                role_scopes=ctx.state["role_scopes"]["member"],
                expires_in=None,
                name="bench",
            )
            session.add(Manufacturer(id=1, name="Acme"))
            await session.flush()
            session.add(DeviceType(id=1, manufacturer_id=1, model="R1"))
            await session.flush()
            session.add(
                Device(
                    id=1,
                    name="sw-1",
                    device_type_id=1,
                    manufacturer_id=1,
                    status="active",
                    serial="SN1",
                    tags=["core", "lab"],
                    custom_fields={"owner": "net"},
                )
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
        env = dict(os.environ)
        if kind == "platform":
            argv = [str(Path(sys.executable).with_name("platformctl")), "serve"]
            argv += ["--port", str(self.port)]
            env["PLATFORM_CONFIG"] = str(directory / "plugins.toml")
        else:
            argv = [sys.executable, str(APPS), kind, str(self.port), database_url]
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
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
    "platform": ("platform", "/api/inventory/devices/"),
    "bare": ("bare", "/devices/"),
}


def run_database(label: str, database_url: str, directory: Path, args: argparse.Namespace) -> float:
    """Prepare the database, serve both apps, load them in alternating rounds; return the ratio.

    Both servers run for the whole comparison (an idle server costs nothing); rounds
    alternate so that noise from other processes on the machine hits every target alike,
    and each target's figure is the median of its rounds. Every request carries the token
    and both check it (the cache answers all but one lookup per 5 s).
    """
    header(
        f"{label}: concurrency {args.concurrency}, {args.rounds} alternating rounds of "
        f"{args.seconds:g} s after {args.warmup:g} s warm-up, one device row"
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
        pids = {"platform": platform.proc.pid, "bare": bare.proc.pid}
        for _ in range(args.rounds):
            for name, (server, prefix) in TARGETS.items():
                before = process_cpu_seconds(pids[server])
                result = _load(ports[server], prefix, token, args.seconds, directory, args)
                used = process_cpu_seconds(pids[server]) - before
                result["cpu_ms"] = 1000 * used / max(1, result["requests"])
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
    cpu = {name: median([r["cpu_ms"] for r in rounds]) for name, rounds in results.items()}
    row(
        "server CPU per request (median)",
        f"platform {cpu['platform']:.2f} ms, bare {cpu['bare']:.2f} ms: "
        f"bare / platform {cpu['bare'] / cpu['platform']:.2f}x",
        width=48,
    )
    ratio = rps["platform"] / rps["bare"] if rps["bare"] else 0.0
    each = [p["rps"] / b["rps"] for p, b in zip(results["platform"], results["bare"], strict=True)]
    row("per-round ratios", ", ".join(f"{r:.2f}" for r in each), width=48)
    verdict = "within" if ratio >= TARGET_RATIO else "UNDER"
    row("platform / bare", f"{ratio:6.2f}x  ({verdict} target >= {TARGET_RATIO:g}x)", width=48)
    return ratio


def main() -> None:
    """Run on SQLite, then PostgreSQL when reachable (or the one ``--database`` names)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4, help="seconds per round (4)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per app (5)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per app (2)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (16)")
    parser.add_argument(
        "--no-wrk",
        dest="wrk",
        action="store_false",
        help="use the Python load generator even when wrk is installed",
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql", "both"],
        default="both",
        help="which database to run on (both: PostgreSQL when reachable)",
    )
    parser.add_argument(
        "--no-postgres",
        dest="database",
        action="store_const",
        const="sqlite",
        help="same as --database sqlite",
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
        if args.database in ("sqlite", "both"):
            sqlite_dir = Path(tmp) / "sqlite"
            sqlite_dir.mkdir()
            ratios["SQLite"] = run_database(
                "SQLite", f"sqlite+aiosqlite:///{sqlite_dir / 'bench.db'}", sqlite_dir, args
            )
        if args.database != "sqlite" and pg_reachable():
            pg_dir = Path(tmp) / "postgres"
            pg_dir.mkdir()
            with fresh_pg_database() as url:
                ratios["PostgreSQL"] = run_database("PostgreSQL", url, pg_dir, args)
        else:
            print("\n(PostgreSQL skipped: not reachable or --database sqlite)")
    header("result")
    for label, ratio in ratios.items():
        row(f"{label}: platform / bare", f"{ratio:9.2f}x  (target >= {TARGET_RATIO:g}x)")


if __name__ == "__main__":
    main()
