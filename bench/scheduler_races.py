"""Races at a running ``platformctl serve``: status changes and PATCHes, SQLite and PG.

Not timed: it counts outcomes. For each database:

- ``ROUNDS`` rounds of each pair of concurrent changes of one pending booking (approve and
  reject, approve and cancel, reject and cancel, two approves): status codes, rounds where
  both succeeded (only approve then cancel may), rounds whose stored status or events
  disagree with the answers.
- ``PATCH_ROUNDS`` rounds of concurrent PATCHes of ``PATCH_BOOKINGS`` (6) approved
  bookings, each holding two of
  3 devices (listed in both orders), each moved to a random one-hour window among
  ``SPREAD`` half-hour starts: status codes, 5xx answers and the deadlocks the core
  replayed (``transaction failed`` lines in the server's log).

Run: ``.venv/bin/python bench/scheduler_races.py`` (``ROUNDS=20 PATCH_ROUNDS=300`` by
default; set them in the environment). PostgreSQL at ``BENCH_PG_URL``'s server, else the
local one; skipped when unreachable.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from platform_core.testing import fresh_database

ROUNDS = int(os.environ.get("ROUNDS", "20"))
PATCH_ROUNDS = int(os.environ.get("PATCH_ROUNDS", "300"))
SPREAD = int(os.environ.get("SPREAD", "12"))
"""PATCHes move a booking to one of ``SPREAD`` half-hour starts: fewer, more collisions."""
PATCH_BOOKINGS = int(os.environ.get("PATCH_BOOKINGS", "6"))
"""Bookings moved concurrently in each PATCH round (at most 6)."""
BACKENDS = os.environ.get("BACKENDS", "sqlite,postgresql").split(",")
PAIRS = [("approve", "reject"), ("approve", "cancel"), ("reject", "cancel"), ("approve", "approve")]
OUTCOME = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}


async def prepare(config: Path) -> dict[str, Any]:
    """Migrate; tokens for an admin, an operator and a member; 3 devices needing approval."""
    from platform_inventory import service as inventory
    from platform_inventory.service import Audit
    from platform_scheduler.models import Policy

    from platform_core.app import boot
    from platform_core.auth import service
    from platform_core.config import load_config
    from platform_core.migrate import upgrade

    os.environ["PLATFORM_CONFIG"] = str(config)
    try:
        ctx = boot(load_config())
    finally:
        del os.environ["PLATFORM_CONFIG"]
    await upgrade(ctx.db, ctx.state["migration_targets"])
    tokens = {}
    async with ctx.db.session() as session:
        for role in ("admin", "operator", "member"):
            user = await service.create_user(session, f"{role}-racer", role, None)
            _, tokens[role] = await service.create_token(
                session,
                user,
                scopes=None,
                known_scopes=frozenset(ctx.permissions),
                role_scopes=ctx.state["role_scopes"][role],
                expires_in=None,
            )
        m = await inventory.create_manufacturer(session, "Acme", Audit("b"))
        t = await inventory.create_device_type(
            session, {"manufacturer_id": m.id, "model": "S1"}, Audit("b")
        )
        devices = [
            (
                await inventory.create_device(
                    session, {"name": f"d{i}", "device_type_id": t.id}, Audit("b")
                )
            ).id
            for i in (1, 2, 3)
        ]
        session.add(Policy(name="approval", device_type_id=t.id, auto_approve=False))
    await ctx.db.dispose()
    return {"tokens": tokens, "devices": devices}


async def events_by_booking(url: str) -> dict[int, list[str]]:
    """Status-change event names per booking, from the outbox."""
    from platform_core.events.models import EventRecord

    engine = create_async_engine(url)
    out: dict[int, list[str]] = {}
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(EventRecord.name, EventRecord.payload).order_by(EventRecord.id)
        )
        for name, payload in rows:
            if name.startswith("scheduler.booking.") and name != "scheduler.booking.created":
                out.setdefault(payload["booking_id"], []).append(name.rsplit(".", 1)[1])
    await engine.dispose()
    return out


async def pairs(clients: dict[str, httpx.AsyncClient], device: int, url: str) -> None:
    member = clients["member"]
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    n = 0
    expected: dict[int, list[str]] = {}
    for first, second in PAIRS:
        codes: Counter[int] = Counter()
        both = wrong = 0
        for _ in range(ROUNDS):
            start = base + timedelta(hours=2 * n)
            n += 1
            r = await member.post(
                "/api/scheduler/bookings",
                json={
                    "device_ids": [device],
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=1)).isoformat(),
                },
            )
            booking = r.json()["id"]

            def call(action: str, approver: httpx.AsyncClient, b: int = booking) -> Any:
                if action == "cancel":
                    return member.delete(f"/api/scheduler/bookings/{b}")
                return approver.post(f"/api/scheduler/bookings/{b}/{action}")

            a, b = await asyncio.gather(
                call(first, clients["admin"]), call(second, clients["operator"])
            )
            codes.update([a.status_code, b.status_code])
            won = [act for act, r in ((first, a), (second, b)) if r.status_code < 300]
            state = (await member.get(f"/api/scheduler/bookings/{booking}")).json()["status"]
            if len(won) == 2:
                both += 1
            ok_serial = won == ["approve", "cancel"] and state == "cancelled"
            if (len(won) == 1 and state != OUTCOME[won[0]]) or (len(won) == 2 and not ok_serial):
                wrong += 1
            expected[booking] = [OUTCOME[w] for w in won] if len(won) == 2 else [state]
        print(
            f"  {first}+{second:8} rounds {ROUNDS:3}  codes {dict(sorted(codes.items()))}"
            f"  both succeeded {both}  final state wrong {wrong}"
        )
    events = await events_by_booking(url)
    mismatched = sum(1 for b, names in expected.items() if events.get(b, []) != names)
    print(f"  bookings whose events disagree with the answers: {mismatched} of {len(expected)}")


async def patches(admin: httpx.AsyncClient, devices: list[int]) -> Counter[int]:
    d1, d2, d3 = devices
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=60)
    bookings = []
    layouts = [[d1, d2], [d2, d1], [d1, d3], [d3, d1], [d2, d3], [d3, d2]]
    for i, ids in enumerate(layouts[:PATCH_BOOKINGS]):
        start = base - timedelta(days=30) + timedelta(hours=3 * i)
        r = await admin.post(
            "/api/scheduler/bookings",
            json={
                "device_ids": ids,
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
            },
        )
        bookings.append(r.json()["id"])
    rng = random.Random(11)
    codes: Counter[int] = Counter()
    for _ in range(PATCH_ROUNDS):
        moves = []
        for booking in bookings:
            start = base + timedelta(minutes=30 * rng.randrange(0, SPREAD))
            body = {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
            moves.append(admin.patch(f"/api/scheduler/bookings/{booking}", json=body))
        codes.update(r.status_code for r in await asyncio.gather(*moves))
    return codes


async def run(backend: str, directory: Path) -> None:
    async with fresh_database(backend, directory) as url:
        config = directory / f"{backend}.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\n'
            'log_level = "WARNING"\nbackground = false\n'
            '[plugins]\nenabled = ["inventory", "scheduler"]\n'
        )
        prepared = await prepare(config)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log_path = directory / f"{backend}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "platformctl"), "serve", "--port", str(port)],
                env={**os.environ, "PLATFORM_CONFIG": str(config)},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient() as probe:
                for _ in range(150):
                    try:
                        if (await probe.get(base + "/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)
            clients = {
                role: httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120
                )
                for role, token in prepared["tokens"].items()
            }
            print(f"{backend}:")
            await pairs(clients, prepared["devices"][0], url)
            started = time.perf_counter()
            codes = await patches(clients["admin"], prepared["devices"])
            elapsed = time.perf_counter() - started
            for client in clients.values():
                await client.aclose()
        finally:
            proc.terminate()
            proc.wait(10)
        text = log_path.read_text(errors="replace")
        replays = text.count("transaction failed")
        deadlocks = text.count("deadlock detected") + text.count("40P01")
        fivexx = sum(n for code, n in codes.items() if code >= 500)
        print(
            f"  PATCH rounds {PATCH_ROUNDS} x {PATCH_BOOKINGS} bookings in {elapsed:.0f} s: codes "
            f"{dict(sorted(codes.items()))}  5xx {fivexx}  replayed transactions {replays}"
            f"  deadlock tracebacks in the log {deadlocks}"
        )


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for backend in BACKENDS:
            try:
                await run(backend, Path(tmp))
            except OSError as exc:
                print(f"{backend}: skipped ({exc})")


if __name__ == "__main__":
    asyncio.run(main())
