"""SIGTERM to a real ``platformctl serve``: drain, finish what is in flight, then exit.

With ``[core.shutdown] drain_seconds = 3``: right after SIGTERM ``/readyz`` answers 503
(``draining``) while ``/healthz`` and other requests are still served; a request whose
body was still arriving when the signal came is answered normally; after the drain the
port refuses connections and the process exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from platform_core.testing import fresh_database, prepared

DRAIN = 3.0


def _start(config: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    platformctl = str(Path(sys.executable).parent / "platformctl")
    proc = subprocess.Popen(
        [platformctl, "serve", "--port", str(port)],
        env={**os.environ, "PLATFORM_CONFIG": str(config)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


async def _until_ready(client: httpx.AsyncClient, base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if (await client.get(base + "/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, "platformctl serve exited"
        assert time.monotonic() < deadline, "platformctl serve never became ready"
        await asyncio.sleep(0.1)


async def _slow_body():
    """A login form sent over about four seconds: still arriving when the drain ends."""
    yield b"username=nobody&"
    for _ in range(20):
        await asyncio.sleep(0.2)
        yield b"x=1&"
    yield b"password=wrong-password"


async def test_sigterm_turns_readiness_false_first_and_finishes_requests_in_flight(tmp_path):
    async with fresh_database("sqlite", tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\n'
            f'log_level = "WARNING"\n[core.shutdown]\ndrain_seconds = {DRAIN}\n'
            "grace_seconds = 10\n[plugins]\nenabled = []\n"
        )
        async with prepared(config):
            pass
        proc, base = _start(config)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                await _until_ready(client, base, proc)
                in_flight = asyncio.create_task(
                    client.post(
                        base + "/api/core/auth/token",
                        content=_slow_body(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                )
                await asyncio.sleep(0.3)
                signalled = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.2)
                ready = await client.get(base + "/readyz")
                alive = await client.get(base + "/healthz")
                answered = await in_flight
                while proc.poll() is None and time.monotonic() - signalled < 15:
                    await asyncio.sleep(0.05)
                exited = time.monotonic() - signalled
                refused = False
                try:
                    await client.get(base + "/healthz")
                except httpx.TransportError:
                    refused = True
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert ready.status_code == 503
    assert ready.json()["status"] == "draining"
    assert alive.status_code == 200  # still serving while draining
    assert answered.status_code == 401  # the request in flight got its real answer
    assert DRAIN <= exited < DRAIN + 10  # 10: grace_seconds
    assert refused
    assert proc.returncode == 0  # a drained stop is a normal end (`make run` reports no error)
