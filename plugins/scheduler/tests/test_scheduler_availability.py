"""Availability (free slots) and recommendations (least fragmentation first)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from platform_inventory import service as inventory
from platform_scheduler import service
from platform_scheduler.models import HOLDING, STATUSES, Booking, Slot
from platform_scheduler.schemas.availability import Availability
from sqlalchemy import insert

B = "/api/scheduler/bookings"


async def test_availability_lists_free_slots_around_bookings(member_client, lab, at):
    r = await member_client.post(B, json={"device_ids": [lab["ids"][0]], **at(2)})
    assert r.status_code == 201, r.text
    w = {"start": at(0)["start"], "end": at(5)["start"]}
    r = await member_client.get(
        "/api/scheduler/availability",
        params={"device_id": lab["ids"][0], "duration_minutes": 60, **w},
    )
    assert r.status_code == 200, r.text
    free = r.json()["devices"][0]["free"]
    assert len(free) == 2
    assert free[0]["end"][:16] == at(2)["start"][:16]
    assert free[1]["start"][:16] == at(2)["end"][:16]


async def test_availability_json_is_the_availability_model(member_client, lab, at):
    """The route serializes the service's dicts directly: the body must be exactly what the
    ``Availability`` response model produces (same fields, same timestamp format)."""
    await member_client.post(B, json={"device_ids": [lab["ids"][1]], **at(1)})
    r = await member_client.get(
        "/api/scheduler/availability",
        params={
            "device_type_id": lab["type"]["id"],
            "start": at(0)["start"],
            "end": at(3)["start"],
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.content == Availability.model_validate_json(r.content).model_dump_json().encode()
    body = r.json()
    assert [len(d["free"]) for d in body["devices"]] == [1, 2, 1, 1]
    assert body["devices"][1]["free"][0]["end"].endswith("Z")
    schema = (await member_client.get("/openapi.json")).json()
    ok = schema["paths"]["/api/scheduler/availability"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/Availability")


async def test_availability_by_type_covers_every_device(member_client, lab, at):
    r = await member_client.get(
        "/api/scheduler/availability",
        params={
            "device_type_id": lab["type"]["id"],
            "start": at(0)["start"],
            "end": at(4)["start"],
        },
    )
    assert len(r.json()["devices"]) == 4


async def test_availability_needs_device_or_type(member_client, at):
    r = await member_client.get(
        "/api/scheduler/availability", params={"start": at(0)["start"], "end": at(1)["start"]}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "device_id"


async def test_availability_naive_window_rejected(member_client, lab):
    r = await member_client.get(
        "/api/scheduler/availability",
        params={
            "device_id": lab["ids"][0],
            "start": "2031-01-01T00:00:00",
            "end": "2031-01-02T00:00:00",
        },
    )
    assert r.status_code == 422


async def test_recommendations_prefer_snug_fit(member_client, lab, at):
    b = "/api/scheduler/bookings"
    # d2 is booked right before and right after the wanted window: a perfect fit.
    await member_client.post(b, json={"device_ids": [lab["ids"][1]], **at(1)})
    await member_client.post(b, json={"device_ids": [lab["ids"][1]], **at(3)})
    await member_client.post(b, json={"device_ids": [lab["ids"][0]], **at(2)})
    r = await member_client.get(
        "/api/scheduler/recommendations",
        params={"device_type_id": lab["type"]["id"], **at(2)},
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert lab["ids"][0] not in [i["device_id"] for i in items]
    assert items[0]["device_id"] == lab["ids"][1]
    assert "right after booking" in items[0]["reason"]


async def test_availability_matches_reference_on_random_calendars(platform):
    """The one-pass availability equals ``free_slots`` (the reference) on random calendars:
    back-to-back and microsecond-offset slots, slots across the window's edges, non-holding
    statuses, a device without slots, a fully booked device and gaps exactly ``duration``."""
    rng = random.Random(5)
    lo = datetime(2031, 3, 1, 8, tzinfo=UTC)
    hi = lo + timedelta(days=2)
    duration = timedelta(hours=1)
    audit = inventory.Audit("t")
    async with platform.ctx.db.session() as session:
        m = await inventory.create_manufacturer(session, "Acme", audit)
        t = await inventory.create_device_type(
            session, {"manufacturer_id": m.id, "model": "R"}, audit
        )
        ids = [
            (
                await inventory.create_device(
                    session, {"name": f"r{i}", "device_type_id": t.id}, audit
                )
            ).id
            for i in range(8)
        ]
    calendars: dict[int, list[tuple[datetime, datetime, int]]] = {i: [] for i in ids}
    bookings, slots = [], []
    for n, device_id in enumerate(ids):
        if n == 0:
            continue  # a device without any slot
        cursor = lo - timedelta(hours=3)
        while cursor < hi + timedelta(hours=3):
            if n == 1:  # fully booked across the whole window
                s, e = lo - timedelta(hours=1), hi + timedelta(hours=1)
            else:
                gap = rng.choice([0, 0, 3600, 1800, rng.randrange(1, 10_000) * 1.000001])
                s = cursor + timedelta(seconds=gap)
                e = s + timedelta(
                    seconds=rng.randrange(600, 20_000), microseconds=rng.randrange(10**6)
                )
            status = rng.choice(STATUSES) if n != 1 else "approved"
            bookings.append(
                {
                    "id": len(bookings) + 1,
                    "owner_id": 1,
                    "owner_name": "t",
                    "purpose": "",
                    "status": status,
                    "start_at": s,
                    "end_at": e,
                    "power_on_start": False,
                    "power_off_end": False,
                    "created_at": lo,
                    "updated_at": lo,
                }
            )
            slots.append(
                {
                    "booking_id": len(bookings),
                    "device_id": device_id,
                    "start_at": s,
                    "end_at": e,
                    "status": status,
                }
            )
            if status in HOLDING:
                calendars[device_id].append((s, e, len(bookings)))
            cursor = e
            if n == 1:
                break
    async with platform.ctx.db.session() as session:
        await session.execute(insert(Booking), bookings)
        await session.execute(insert(Slot), slots)
    assert any(
        e - s == duration
        for c in calendars.values()
        for s, e in zip([x[1] for x in sorted(c)], [x[0] for x in sorted(c)[1:]], strict=False)
    )
    for window_lo, window_hi, length in [
        (lo, hi, duration),
        (lo + timedelta(minutes=7), hi - timedelta(hours=5), timedelta(minutes=1)),
        (lo, hi, timedelta(hours=6)),
    ]:
        async with platform.ctx.db.session() as session:
            got = await service.availability(
                session,
                device_id=None,
                device_type_id=t.id,
                start=window_lo,
                end=window_hi,
                duration=length,
            )
        assert [d["device_id"] for d in got] == ids  # by name: r0..r7
        for d in got:
            expected = service.free_slots(calendars[d["device_id"]], window_lo, window_hi, length)
            assert [(f["start"], f["end"]) for f in d["free"]] == expected, d["name"]
            assert all(f["start"].tzinfo is not None for f in d["free"])
        assert got[0]["free"] == [{"start": window_lo, "end": window_hi}]
        assert got[1]["free"] == []
