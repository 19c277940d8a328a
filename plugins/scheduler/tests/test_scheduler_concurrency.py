"""No double booking at the running server: 100 concurrent overlapping requests, one wins."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from platform_core.testing import TEST_DATABASE_ENV

PG_SERVER = os.environ.get(TEST_DATABASE_ENV) or "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _pg_database() -> str | None:
    name = f"sched_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:  # no PostgreSQL server reachable
        return None
    finally:
        await engine.dispose()
    return name


async def _drop_pg(name: str) -> None:
    engine = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


async def _prepare(config_path: Path) -> tuple[str, int]:
    """Migrate, create an admin with a token and one device; return (token, device id)."""
    from platform_inventory import service as inventory
    from platform_inventory.service import Audit

    from platform_core.app import boot
    from platform_core.auth import service
    from platform_core.config import load_config
    from platform_core.migrate import upgrade

    os.environ["PLATFORM_CONFIG"] = str(config_path)
    try:
        ctx = boot(load_config())
    finally:
        del os.environ["PLATFORM_CONFIG"]
    await upgrade(ctx.db, ctx.state["migration_targets"])
    async with ctx.db.session() as session:
        user = await service.create_user(session, "racer", "admin", None)
        _, secret = await service.create_token(
            session,
            user,
            scopes=None,
            known_scopes=frozenset(ctx.permissions),
            role_scopes=ctx.state["role_scopes"]["admin"],
            expires_in=None,
        )
        m = await inventory.create_manufacturer(session, "Acme", Audit("t"))
        t = await inventory.create_device_type(
            session, {"manufacturer_id": m.id, "model": "S1"}, Audit("t")
        )
        d = await inventory.create_device(
            session, {"name": "d1", "device_type_id": t.id}, Audit("t")
        )
    await ctx.db.dispose()
    return secret, d.id


@pytest.fixture(params=["sqlite", "postgresql"])
async def server(request, tmp_path):
    """A ``platformctl serve`` subprocess with inventory and scheduler on a fresh database."""
    pg_name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    else:
        pg_name = await _pg_database()
        assert pg_name, "PostgreSQL is needed for this test"
        url = PG_SERVER.rsplit("/", 1)[0] + f"/{pg_name}"
    config = tmp_path / "plugins.toml"
    config.write_text(
        f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "WARNING"\n'
        '[plugins]\nenabled = ["inventory", "scheduler"]\n'
    )
    token, device_id = await _prepare(config)
    port = _free_port()
    env = {**os.environ, "PLATFORM_CONFIG": str(config)}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "platformctl"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(base + "/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            await asyncio.sleep(0.2)
    yield base, token, device_id
    proc.terminate()
    proc.wait(10)
    if pg_name:
        await _drop_pg(pg_name)


async def test_concurrent_overlapping_bookings_exactly_one_succeeds(server):
    base, token, device_id = server
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

    async def attempt(i: int, client: httpx.AsyncClient) -> httpx.Response:
        s = start + timedelta(minutes=i % 30)
        body = {
            "device_ids": [device_id],
            "start": s.isoformat(),
            "end": (s + timedelta(hours=1)).isoformat(),
        }
        return await client.post("/api/scheduler/bookings", json=body)

    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60, limits=limits
    ) as client:
        responses = await asyncio.gather(*(attempt(i, client) for i in range(100)))
        codes = sorted(r.status_code for r in responses)
        assert codes.count(201) == 1, codes
        assert codes.count(409) == 99, codes
        winner = next(r for r in responses if r.status_code == 201).json()["id"]
        for r in responses:
            if r.status_code == 409:
                assert r.json()["conflicting_booking_id"] == winner
        listed = await client.get("/api/scheduler/bookings", params={"device_id": device_id})
        assert [b["id"] for b in listed.json()["items"]] == [winner]
