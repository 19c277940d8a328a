"""Availability (free slots) and recommendations (least fragmentation first)."""

from __future__ import annotations


async def test_availability_lists_free_slots_around_bookings(member_client, lab, at):
    await member_client.post(
        B := "/api/scheduler/bookings", json={"device_ids": [lab["ids"][0]], **at(2)}
    )
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
    assert B


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
