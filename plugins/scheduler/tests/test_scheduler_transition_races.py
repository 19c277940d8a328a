"""Racing status changes and PATCHes at a running server (SQLite and PostgreSQL).

- Two changes of one pending booking at once (approve and reject, approve and the owner's
  cancel, reject and cancel, two approves): in every round exactly one succeeds, the other
  gets a 409 naming the status the winner left, and the stored status and the outbox's
  events agree with the winner. Approve then cancel is also a serial order (an approved
  booking may be cancelled): then both succeed and the booking ends cancelled, never
  approved after a 204.
- A device retired or deleted while it is being booked: exactly one of the two wins.
- Concurrent PATCHes of bookings sharing devices (listed in different orders): never a
  500 (a deadlock is avoided by the lock order or replayed by the core), and no device is
  ever held twice.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from platform_core import Principal
from platform_core.testing import EventRecord, fresh_database, prepared, served

ROUNDS = 20
PAIRS = {
    "approve+reject": ("approve", "reject"),
    "approve+cancel": ("approve", "cancel"),
    "reject+cancel": ("reject", "cancel"),
    "approve+approve": ("approve", "approve"),
}
OUTCOME = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}
EVENT = {
    "approve": "scheduler.booking.approved",
    "reject": "scheduler.booking.rejected",
    "cancel": "scheduler.booking.cancelled",
}


async def _prepare(config_path: Path) -> dict[str, Any]:
    """Migrate; an admin, an operator and a member with tokens; devices d1..d3 whose type
    needs approval."""
    from platform_inventory import service as inventory
    from platform_inventory.service import Audit
    from platform_scheduler.models import Policy

    async with prepared(config_path) as platform:
        tokens = {}
        for role in ("admin", "operator", "member"):
            user = await platform.user(role, f"{role}-racer")
            tokens[role] = await platform.token(user=user)
        ctx = platform.ctx
        async with ctx.db.session() as session:
            m = await inventory.create_manufacturer(session, "Acme", Audit("t"))
            t = await inventory.create_device_type(
                session, {"manufacturer_id": m.id, "model": "S1"}, Audit("t")
            )
            devices = [
                await inventory.create_device(
                    session, {"name": f"d{i}", "device_type_id": t.id}, Audit("t")
                )
                for i in (1, 2, 3)
            ]
            session.add(Policy(name="approval", device_type_id=t.id, auto_approve=False))
    return {"tokens": tokens, "devices": [d.id for d in devices]}


@pytest.fixture(params=["sqlite", "postgresql"])
async def server(request, tmp_path):
    """``platformctl serve`` with inventory and scheduler on a fresh database."""
    async with fresh_database(request.param, tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "WARNING"\n'
            "background = false\n"
            '[plugins]\nenabled = ["inventory", "scheduler"]\n'
        )
        setup = await _prepare(config)
        async with served(config) as base:
            clients = {
                role: httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
                )
                for role, token in setup["tokens"].items()
            }
            try:
                yield {"url": url, "clients": clients, "devices": setup["devices"]}
            finally:
                for client in clients.values():
                    await client.aclose()


async def _events(url: str) -> dict[int, list[str]]:
    """``{booking id: [status-change event names]}`` from the outbox, in order."""

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(EventRecord.name, EventRecord.payload)
                .where(EventRecord.name.like("scheduler.booking.%"))
                .order_by(EventRecord.id)
            )
            out: dict[int, list[str]] = {}
            for name, payload in rows:
                if name != "scheduler.booking.created":
                    out.setdefault(payload["booking_id"], []).append(name)
            return out
    finally:
        await engine.dispose()


async def test_racing_status_changes_exactly_one_wins(server):
    clients = server["clients"]
    member, device = clients["member"], server["devices"][0]
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

    def call(action: str, booking_id: int, approver: httpx.AsyncClient) -> Any:
        if action == "cancel":
            return member.delete(f"/api/scheduler/bookings/{booking_id}")
        return approver.post(f"/api/scheduler/bookings/{booking_id}/{action}")

    history: dict[int, list[str]] = {}
    tally: dict[str, Counter[int]] = {}
    n = 0
    for pair, (first, second) in PAIRS.items():
        tally[pair] = Counter()
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
            assert r.status_code == 201 and r.json()["status"] == "pending", r.text
            booking = r.json()["id"]
            a, b = await asyncio.gather(
                call(first, booking, clients["admin"]), call(second, booking, clients["operator"])
            )
            tally[pair].update([a.status_code, b.status_code])
            got = (await member.get(f"/api/scheduler/bookings/{booking}")).json()["status"]
            ok = [act for act, r in ((first, a), (second, b)) if r.status_code < 300]
            lost = [r for r in (a, b) if r.status_code == 409]
            if pair == "approve+cancel" and len(ok) == 2:
                # Approved first, then cancelled: a cancel of an approved booking is allowed
                # (the serial order approve -> cancel); the owner's 204 must still hold.
                assert got == "cancelled"
                history[booking] = [EVENT["approve"], EVENT["cancel"]]
                continue
            assert len(ok) == 1 and len(lost) == 1, (pair, a.status_code, a.text, b.text)
            state = OUTCOME[ok[0]]
            assert lost[0].json()["current_state"] == state, lost[0].text
            assert f"is {state}" in lost[0].json()["detail"]
            assert got == state, (pair, got)
            history[booking] = [EVENT[ok[0]]]
    print({pair: dict(codes) for pair, codes in tally.items()})
    events = await _events(server["url"])
    for booking, expected in history.items():
        assert events.get(booking) == expected, (booking, expected, events.get(booking))


async def test_concurrent_patches_never_fail_nor_double_book(server):
    """PATCHes of bookings that share devices (listed in different orders) race to move
    them over each other's windows: 200 or 409 each, never a 5xx, never an overlap."""
    clients = server["clients"]
    admin = clients["admin"]  # approved at once: every booking holds its devices
    d1, d2, d3 = server["devices"]
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    orders = [[d1, d2], [d2, d1], [d2, d3], [d3, d1, d2]]
    bookings = []
    for i, ids in enumerate(orders * 2):
        start = base + timedelta(hours=3 * i)
        r = await admin.post(
            "/api/scheduler/bookings",
            json={
                "device_ids": ids,
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        bookings.append(r.json()["id"])
    rng = random.Random(7)
    codes: Counter[int] = Counter()
    for _ in range(15):
        moves = []
        for booking in bookings:
            start = base + timedelta(minutes=30 * rng.randrange(0, 48))
            body = {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
            moves.append(admin.patch(f"/api/scheduler/bookings/{booking}", json=body))
        for r in await asyncio.gather(*moves):
            codes[r.status_code] += 1
            assert r.status_code in (200, 409), r.text
    print(dict(codes))
    assert codes[200] > 0 and codes[409] > 0
    listed = (await admin.get("/api/scheduler/bookings", params={"limit": 500})).json()["items"]
    held: dict[int, list[tuple[str, str]]] = {}
    for b in listed:
        for d in b["device_ids"]:
            held.setdefault(d, []).append((b["start"], b["end"]))
    for d, windows in held.items():
        spans = sorted((datetime.fromisoformat(s), datetime.fromisoformat(e)) for s, e in windows)
        for (_, e1), (s2, _) in itertools.pairwise(spans):
            assert e1 <= s2, (d, spans)


async def test_start_job_skips_a_booking_cancelled_meanwhile(platform):
    """The start job races an owner's cancel (uncommitted, holding the booking's row): it
    waits, then finds the booking no longer approved and leaves it cancelled."""
    from platform_inventory import service as inventory
    from platform_scheduler import service

    ctx = platform.ctx
    audit = inventory.Audit("t")
    owner = Principal(user_id=1, username="owner", role="admin", scopes=frozenset())
    start = datetime.now(UTC) + timedelta(minutes=2)
    async with ctx.db.session() as session:
        m = await inventory.create_manufacturer(session, "Acme", audit)
        t = await inventory.create_device_type(
            session, {"manufacturer_id": m.id, "model": "S1"}, audit
        )
        d = await inventory.create_device(session, {"name": "d1", "device_type_id": t.id}, audit)
        window = {"device_ids": [d.id], "start": start, "end": start + timedelta(hours=1)}
        settings = ctx.plugin_settings("scheduler")
        [booking] = await service.create_booking(session, window, owner, settings)
    assert booking.status == "approved"

    cancelling = ctx.db.sessionmaker()
    await cancelling.begin()
    await service.cancel_booking(cancelling, booking.id, owner)

    async def start_job() -> list[Any]:
        async with ctx.db.session() as session:
            return await service.start_due(session, start + timedelta(minutes=1))

    job = asyncio.create_task(start_job())
    await asyncio.sleep(0.4)
    assert not job.done()  # waits for the cancel's row lock (SQLite: the write lock)
    await cancelling.commit()
    await cancelling.close()
    assert await job == []
    async with ctx.db.session() as session:
        current = await service.get_booking(session, booking.id, owner)
        names = list(
            (await session.scalars(select(EventRecord.name).order_by(EventRecord.id))).all()
        )
    assert current.status == "cancelled"
    assert "scheduler.booking.cancelled" in names
    assert "scheduler.booking.started" not in names


async def test_retire_or_delete_racing_a_new_booking_never_both_win(server):
    """An admin retires (or deletes) a device while a member books it: exactly one wins.
    Never a booking of a retired or deleted device, never a 5xx; the loser's answer says
    why (the booking that now exists, or the device that is gone or retired)."""
    clients = server["clients"]
    admin, member = clients["admin"], clients["member"]
    type_id = (await admin.get(f"/api/inventory/devices/{server['devices'][0]}")).json()[
        "device_type_id"
    ]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    wins: Counter[str] = Counter()
    for i in range(2 * ROUNDS):
        r = await admin.post(
            "/api/inventory/devices", json={"name": f"racer-{i}", "device_type_id": type_id}
        )
        assert r.status_code == 201, r.text
        device = r.json()["id"]
        book = member.post(
            "/api/scheduler/bookings",
            json={
                "device_ids": [device],
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
            },
        )
        if i % 2:
            change = admin.delete(f"/api/inventory/devices/{device}")
        else:
            change = admin.patch(f"/api/inventory/devices/{device}", json={"status": "retired"})
        booked, changed = await asyncio.gather(book, change)
        assert booked.status_code < 500 and changed.status_code < 500, (booked.text, changed.text)
        ok = [r for r in (booked, changed) if r.status_code < 300]
        assert len(ok) == 1, (booked.status_code, booked.text, changed.status_code, changed.text)
        current = await admin.get(f"/api/inventory/devices/{device}")
        if booked.status_code == 201:
            wins["booking"] += 1
            assert changed.status_code == 409, changed.text
            assert "bookings" in changed.json()["detail"]
            assert current.status_code == 200 and current.json()["status"] != "retired"
        else:
            wins["delete" if i % 2 else "retire"] += 1
            assert booked.status_code in (404, 409, 422), booked.text
            if i % 2:
                assert current.status_code == 404
            else:
                assert current.json()["status"] == "retired"
            held = await admin.get("/api/scheduler/bookings", params={"device_id": device})
            assert held.status_code == 200 and held.json()["items"] == [], held.text
    print(dict(wins))
