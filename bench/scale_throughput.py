"""Requests/s with one and with two ``platformctl serve`` processes on one PostgreSQL database.

One fresh PostgreSQL database (``BENCH_PG_URL``'s server, default the local one), the
inventory plugin with ``DEVICES`` devices, one admin API token. Two ``platformctl serve``
processes run side by side for the whole run (``background = false``: no event dispatch
loops, so only requests use the CPU; log level WARNING). The load comes from a separate
process (this script with ``load``): ``--concurrency`` keep-alive HTTP/1.1 connections
(32), connection ``i`` to process ``i mod N``, so the connections are spread round-robin
over the processes; each connection sends, one after the other, authenticated
``GET /api/inventory/devices/{random id}`` and, every ``--write-every``-th request (10),
a ``POST /api/inventory/devices`` creating a device (a light write mix). Rounds of
``--seconds`` (5) alternate between "1 process" (every connection to the first) and
"2 processes" (``--rounds`` each, 3), after one warm-up round of each; each figure is the
median of its rounds. Any answer but 200/201 is counted as an error and reported.

The machine this was written on has 2 CPU cores shared by the servers, PostgreSQL and the
load process: a second ``serve`` process can use the second core only as far as those
leave it free. The load average at the start and the end is printed with the figures.
Figures only: nothing is asserted.

Run: ``.venv/bin/python bench/scale_throughput.py [--seconds N] [--rounds N]
[--concurrency N] [--write-every N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from _common import (
    BENCH_SECRET,
    fresh_pg_database,
    header,
    median,
    pg_reachable,
    read_response,
    row,
)

DEVICES = 500
HERE = Path(__file__).resolve()


# -- the load process ------------------------------------------------------------------------


async def _connection(
    port: int, token: str, max_id: int, write_every: int, tag: str, deadline: float, out: dict
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rnd = random.Random()
    auth = f"Authorization: Bearer {token}\r\n"
    sent = 0
    try:
        while time.perf_counter() < deadline:
            sent += 1
            if write_every and sent % write_every == 0:
                body = json.dumps(
                    {"name": f"w-{tag}-{port}-{id(writer)}-{sent}", "device_type_id": 1}
                ).encode()
                request = (
                    f"POST /api/inventory/devices HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                kind = "writes"
            else:
                path = f"/api/inventory/devices/{rnd.randint(1, max_id)}"
                request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}\r\n".encode()
                kind = "reads"
            writer.write(request)
            status, _head, _body = await read_response(reader)
            out[kind] += 1
            if status not in (200, 201):
                out["errors"] += 1
    finally:
        writer.close()


async def run_load(
    ports: list[int], token: str, max_id: int, seconds: float, concurrency: int, every: int
) -> dict[str, Any]:
    """``concurrency`` connections spread over ``ports`` for ``seconds``; counts."""
    out = {"reads": 0, "writes": 0, "errors": 0}
    tag = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _connection(ports[i % len(ports)], token, max_id, every, tag, start + seconds, out)
            for i in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - start
    done = out["reads"] + out["writes"]
    return {**out, "seconds": elapsed, "rps": done / elapsed}


def load_main(argv: list[str]) -> int:
    """``load PORTS TOKEN MAX_ID SECONDS CONCURRENCY WRITE_EVERY``: print a JSON result."""
    ports, token, max_id, seconds, concurrency, every = argv
    coro = run_load(
        [int(p) for p in ports.split(",")],
        token,
        int(max_id),
        float(seconds),
        int(concurrency),
        int(every),
    )
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    print(json.dumps(result))
    return 0


# -- the driver ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    platformctl = str(Path(sys.executable).parent / "platformctl")
    with open(log, "wb") as out:
        return subprocess.Popen(
            [platformctl, "serve", "--port", str(port)],
            env={**os.environ, "PLATFORM_CONFIG": str(config)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"platformctl serve on port {port} did not start")
        time.sleep(0.2)


async def _prepare(config: Path) -> tuple[str, int]:
    """Migrate, create ``DEVICES`` devices of type 1 and an admin token."""
    from platform_inventory import service as inventory
    from platform_inventory.service import Audit

    from platform_core.testing import prepared

    async with prepared(config) as platform:
        token = await platform.token("admin")
        async with platform.ctx.db.session() as session:
            maker = await inventory.create_manufacturer(session, "Acme", Audit("bench"))
            kind = await inventory.create_device_type(
                session, {"manufacturer_id": maker.id, "model": "S1"}, Audit("bench")
            )
            assert kind.id == 1
            for i in range(DEVICES):
                await inventory.create_device(
                    session, {"name": f"d{i}", "device_type_id": kind.id}, Audit("bench")
                )
    return token, DEVICES


def _load(ports: list[int], token: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = [
        "load",
        ",".join(map(str, ports)),
        token,
        str(DEVICES),
        str(args.seconds),
        str(args.concurrency),
        str(args.write_every),
    ]
    done = subprocess.run(
        [sys.executable, str(HERE), *argv], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def main(argv: list[str]) -> int:
    """Parse arguments; run the load process or the benchmark."""
    if argv and argv[0] == "load":
        return load_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--write-every", type=int, default=10)
    args = parser.parse_args(argv)
    if not pg_reachable():
        print("PostgreSQL is not reachable (BENCH_PG_URL): nothing measured", file=sys.stderr)
        return 1
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, fresh_pg_database("scale_tp") as url:
        directory = Path(tmp)
        config = directory / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{BENCH_SECRET}"\n'
            'log_format = "text"\nlog_level = "WARNING"\nbackground = false\n'
            '[plugins]\nenabled = ["inventory"]\n',
            encoding="utf-8",
        )
        token, _ = asyncio.run(_prepare(config))
        ports = [_free_port(), _free_port()]
        procs = [_serve(config, p, directory / f"serve{i}.log") for i, p in enumerate(ports)]
        results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        try:
            for port, proc in zip(ports, procs, strict=True):
                _wait_healthy(port, proc)
            for n in (1, 2):  # warm-up
                _load(ports[:n], token, args)
            for _ in range(args.rounds):
                for n in (1, 2):
                    results[n].append(_load(ports[:n], token, args))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
    load_after = os.getloadavg()
    header(
        f"PostgreSQL, inventory device GET + 1 POST in {args.write_every}, "
        f"{args.concurrency} connections from a separate process, {args.rounds} x "
        f"{args.seconds:g} s rounds alternating (2 CPU cores shared)"
    )
    figures = {}
    for n in (1, 2):
        rps = [r["rps"] for r in results[n]]
        figures[n] = median(rps)
        errors = sum(r["errors"] for r in results[n])
        writes = sum(r["writes"] for r in results[n])
        row(
            f"{n} serve process{'es' if n > 1 else ''}: requests/s (median)",
            f"{figures[n]:8.1f}   rounds {', '.join(f'{x:.0f}' for x in rps)}; "
            f"{writes} writes, {errors} errors",
        )
    row("ratio 2 processes / 1 process", f"{figures[2] / figures[1]:8.2f}x")
    row(
        "load average (1 min) before / after",
        f"{load_before[0]:.2f} / {load_after[0]:.2f} (cores: {os.cpu_count()})",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
