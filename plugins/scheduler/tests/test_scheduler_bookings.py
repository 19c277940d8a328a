"""Bookings: windows, conflicts, approvals, policies, visibility, changes, recurrence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

B = "/api/scheduler/bookings"


async def book(client, device_ids, window, **extra):
    return await client.post(B, json={"device_ids": device_ids, **window, **extra})


async def test_booking_created_approved_when_no_policy(member_client, lab, at):
    r = await book(member_client, [lab["ids"][0]], at(1), purpose="tests")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "approved"
    assert body["device_ids"] == [lab["ids"][0]]
    assert body["purpose"] == "tests"


async def test_booking_back_to_back_allowed(member_client, lab, at):
    assert (await book(member_client, [lab["ids"][0]], at(1))).status_code == 201
    assert (await book(member_client, [lab["ids"][0]], at(2))).status_code == 201


async def test_booking_overlap_refused_naming_conflict(member_client, operator_client, lab, at):
    first = (await book(member_client, [lab["ids"][0]], at(1, 2))).json()
    r = await book(operator_client, [lab["ids"][1], lab["ids"][0]], at(2, 1))
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert f"booking {first['id']}" in r.json()["detail"]
    assert r.json()["conflicting_booking_id"] == first["id"]


async def test_booking_naive_datetime_rejected(member_client, lab):
    r = await member_client.post(
        B,
        json={
            "device_ids": [lab["ids"][0]],
            "start": "2031-01-01T10:00:00",
            "end": "2031-01-01T11:00:00",
        },
    )
    assert r.status_code == 422
    assert any("start" in str(e) for e in r.json()["errors"])


async def test_booking_end_before_start_rejected(member_client, lab, at):
    w = at(3)
    r = await book(member_client, [lab["ids"][0]], {"start": w["end"], "end": w["start"]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "end"


async def test_booking_unknown_device_rejected(member_client, lab, at):
    r = await book(member_client, [999_999], at(1))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "device_ids"


async def test_booking_in_past_rejected(member_client, lab, at):
    r = await book(member_client, [lab["ids"][0]], at(-5))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "start"


async def test_booking_of_other_member_is_404(platform, member_client, lab, at):
    mine = (await book(member_client, [lab["ids"][0]], at(1))).json()
    other = await platform.client_for("member")
    assert (await other.get(f"{B}/{mine['id']}")).status_code == 404
    assert (await other.delete(f"{B}/{mine['id']}")).status_code == 404
    assert (await other.patch(f"{B}/{mine['id']}", json={"purpose": "x"})).status_code == 404
    listed = (await other.get(B)).json()["items"]
    assert listed == []


async def test_booking_list_filters_by_device_and_status(operator_client, lab, at):
    await book(operator_client, [lab["ids"][0]], at(1))
    b2 = (await book(operator_client, [lab["ids"][1]], at(1))).json()
    r = await operator_client.get(B, params={"device_id": lab["ids"][1], "status": "approved"})
    assert [b["id"] for b in r.json()["items"]] == [b2["id"]]


async def test_policy_requires_approval_then_operator_approves(
    admin_client, member_client, operator_client, lab, at
):
    r = await admin_client.post(
        "/api/scheduler/policies",
        json={"name": "s1", "device_type_id": lab["type"]["id"], "auto_approve": False},
    )
    assert r.status_code == 201, r.text
    b = (await book(member_client, [lab["ids"][0]], at(1))).json()
    assert b["status"] == "pending"
    assert (await member_client.post(f"{B}/{b['id']}/approve")).status_code == 403
    r = await operator_client.post(f"{B}/{b['id']}/approve", json={"note": "ok"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    assert r.json()["decided_by"]


async def test_pending_booking_blocks_overlap_and_reject_frees(
    admin_client, member_client, operator_client, lab, at
):
    await admin_client.post(
        "/api/scheduler/policies",
        json={"name": "s1", "device_type_id": lab["type"]["id"], "auto_approve": False},
    )
    b = (await book(member_client, [lab["ids"][0]], at(1))).json()
    assert (await book(member_client, [lab["ids"][0]], at(1))).status_code == 409
    r = await operator_client.post(f"{B}/{b['id']}/reject")
    assert r.json()["status"] == "rejected"
    assert (await book(member_client, [lab["ids"][0]], at(1))).status_code == 201


async def test_policy_max_length_enforced(admin_client, member_client, lab, at):
    await admin_client.post(
        "/api/scheduler/policies", json={"name": "gpu", "tag": "gpu", "max_minutes": 60}
    )
    r = await book(member_client, [lab["ids"][3]], at(1, 2))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "end"
    assert (await book(member_client, [lab["ids"][3]], at(1, 1))).status_code == 201


async def test_policies_combine_by_type_and_matching_tags_only(
    admin_client, member_client, lab, at
):
    for body in (
        {"name": "s1", "device_type_id": lab["type"]["id"], "max_minutes": 120},
        {"name": "gpu", "tag": "gpu", "max_minutes": 60},
        {"name": "fpga", "tag": "fpga", "max_minutes": 30},
    ):
        r = await admin_client.post("/api/scheduler/policies", json=body)
        assert r.status_code == 201, r.text
    assert (await book(member_client, [lab["ids"][0]], at(1, 1.5))).status_code == 201
    r = await book(member_client, [lab["ids"][1]], at(1, 2.5))
    assert r.status_code == 422
    assert "120 minutes (policy s1)" in r.json()["detail"]
    r = await book(member_client, [lab["ids"][3]], at(1, 1.5))  # d4 carries "gpu"
    assert r.status_code == 422
    assert "60 minutes (policy gpu, s1)" in r.json()["detail"]
    r = await book(member_client, [lab["ids"][2], lab["ids"][3]], at(3, 1))
    assert r.status_code == 201, r.text


async def test_policy_max_days_ahead_enforced(admin_client, member_client, lab, at):
    await admin_client.post(
        "/api/scheduler/policies",
        json={"name": "s1", "device_type_id": lab["type"]["id"], "max_days_ahead": 1},
    )
    r = await book(member_client, [lab["ids"][0]], at(72))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "start"


async def test_policy_concurrent_limit_enforced(admin_client, member_client, lab, at):
    await admin_client.post(
        "/api/scheduler/policies",
        json={"name": "s1", "device_type_id": lab["type"]["id"], "max_concurrent": 1},
    )
    assert (await book(member_client, [lab["ids"][0]], at(1))).status_code == 201
    r = await book(member_client, [lab["ids"][1]], at(5))
    assert r.status_code == 409
    assert "allows 1" in r.json()["detail"]


async def test_policy_needs_exactly_one_target(admin_client):
    r = await admin_client.post("/api/scheduler/policies", json={"name": "x"})
    assert r.status_code == 422


async def test_policy_create_forbidden_for_members(member_client):
    r = await member_client.post("/api/scheduler/policies", json={"name": "x", "tag": "a"})
    assert r.status_code == 403


async def test_extend_refused_on_conflict_and_shorten_allowed(member_client, lab, at):
    a = (await book(member_client, [lab["ids"][0]], at(1))).json()
    b = (await book(member_client, [lab["ids"][0]], at(3))).json()
    r = await member_client.patch(f"{B}/{a['id']}", json={"end": at(3)["end"]})
    assert r.status_code == 409
    assert f"booking {b['id']}" in r.json()["detail"]
    r = await member_client.patch(f"{B}/{a['id']}", json={"end": at(1, 0.5)["end"]})
    assert r.status_code == 200
    assert r.json()["end"].startswith(at(1, 0.5)["end"][:16])


async def test_cancel_frees_device(member_client, lab, at):
    a = (await book(member_client, [lab["ids"][0]], at(1))).json()
    assert (await member_client.delete(f"{B}/{a['id']}")).status_code == 204
    assert (await member_client.get(f"{B}/{a['id']}")).json()["status"] == "cancelled"
    assert (await book(member_client, [lab["ids"][0]], at(1))).status_code == 201


async def test_include_connected_books_peer_devices(member_client, lab, at):
    r = await book(member_client, [lab["ids"][0]], at(1), include_connected=True)
    assert r.status_code == 201
    assert sorted(r.json()["device_ids"]) == sorted(lab["ids"][:2])


async def test_include_connected_all_or_nothing(member_client, lab, at):
    other = (await book(member_client, [lab["ids"][1]], at(1))).json()
    r = await book(member_client, [lab["ids"][0]], at(1), include_connected=True)
    assert r.status_code == 409
    assert r.json()["conflicting_booking_id"] == other["id"]
    assert (await book(member_client, [lab["ids"][0]], at(1))).status_code == 201


async def test_recurring_daily_books_every_occurrence(member_client, lab, at):
    w = at(1)
    until = (datetime.fromisoformat(w["start"]) + timedelta(days=3)).isoformat()
    r = await book(
        member_client, [lab["ids"][0]], w, recurrence={"frequency": "daily", "until": until}
    )
    assert r.status_code == 201, r.text
    assert len(r.json()["occurrence_ids"]) == 3
    listed = await member_client.get(B, params={"series_id": r.json()["series_id"]})
    assert len(listed.json()["items"]) == 3


async def test_recurring_all_or_nothing_lists_conflicts(member_client, lab, at):
    w = at(1)
    start = datetime.fromisoformat(w["start"])
    blocker = await book(
        member_client,
        [lab["ids"][0]],
        {
            "start": (start + timedelta(days=14)).isoformat(),
            "end": (start + timedelta(days=14, hours=1)).isoformat(),
        },
    )
    until = (start + timedelta(weeks=4)).isoformat()
    r = await book(
        member_client, [lab["ids"][0]], w, recurrence={"frequency": "weekly", "until": until}
    )
    assert r.status_code == 409
    assert [c["occurrence"] for c in r.json()["conflicts"]] == [2]
    assert r.json()["conflicts"][0]["booking_id"] == blocker.json()["id"]
    listed = await member_client.get(B, params={"device_id": lab["ids"][0]})
    assert len(listed.json()["items"]) == 1


async def test_booking_events_notify_owner_and_approvers(
    platform, admin_client, member_client, operator_client, lab, at
):
    await admin_client.post(
        "/api/scheduler/policies",
        json={"name": "s1", "device_type_id": lab["type"]["id"], "auto_approve": False},
    )
    b = (await book(member_client, [lab["ids"][0]], at(1))).json()
    await platform.deliver_events()
    inbox = (await operator_client.get("/api/core/notifications")).json()
    assert any(f"Booking {b['id']} awaits approval" in n["title"] for n in inbox["items"])
    await operator_client.post(f"{B}/{b['id']}/approve")
    await platform.deliver_events()
    inbox = (await member_client.get("/api/core/notifications")).json()
    assert any(n["title"] == f"Booking {b['id']} approved" for n in inbox["items"])


async def test_delete_device_with_future_booking_vetoed(admin_client, member_client, lab, at):
    await book(member_client, [lab["ids"][2]], at(1))
    r = await admin_client.delete(f"/api/inventory/devices/{lab['ids'][2]}")
    assert r.status_code == 409
    assert "scheduler" in r.json()["detail"]
    assert "future bookings" in r.json()["detail"]
    r = await admin_client.patch(
        f"/api/inventory/devices/{lab['ids'][2]}", json={"status": "retired"}
    )
    assert r.status_code == 409


async def test_delete_device_without_bookings_allowed(admin_client, lab):
    r = await admin_client.delete(f"/api/inventory/devices/{lab['ids'][2]}")
    assert r.status_code == 204


@pytest.mark.parametrize("path", [f"{B}/0", f"{B}/2147483648"])
async def test_booking_id_out_of_range_is_422(member_client, path):
    assert (await member_client.get(path)).status_code == 422


async def test_jobs_start_end_and_expire(platform, admin_client, member_client, lab, at):
    from platform_scheduler import service

    ctx = platform.ctx
    await admin_client.post(
        "/api/scheduler/policies", json={"name": "gpu", "tag": "gpu", "auto_approve": False}
    )
    a = (await book(member_client, [lab["ids"][0]], at(1))).json()
    p = (await book(member_client, [lab["ids"][3]], at(1))).json()
    now = datetime.fromisoformat(a["start"]) + timedelta(minutes=1)
    async with ctx.db.session() as session:
        started = await service.start_due(session, now)
        expired = await service.expire_pending(session, now)
    assert [b.id for b, _ in started] == [a["id"]]
    assert [b.id for b, _ in expired] == [p["id"]]
    later = datetime.fromisoformat(a["end"]) + timedelta(seconds=1)
    async with ctx.db.session() as session:
        ended = await service.end_due(session, later)
    assert [b.id for b, _ in ended] == [a["id"]]
    assert (await member_client.get(f"{B}/{a['id']}")).json()["status"] == "completed"
    assert (await member_client.get(f"{B}/{p['id']}")).json()["status"] == "expired"


async def test_release_active_booking_frees_rest_of_window(platform, member_client, lab):
    from platform_scheduler import service

    now = datetime.now(UTC) - timedelta(minutes=1)
    async with platform.ctx.db.session() as session:
        from platform_core import Principal

        owner = Principal(user_id=1, username="x", role="admin", scopes=frozenset())
        [b] = await service.create_booking(
            session,
            {"device_ids": [lab["ids"][0]], "start": now, "end": now + timedelta(hours=2)},
            owner,
            platform.ctx.plugin_settings("scheduler"),
        )
        await service.start_due(session, now + timedelta(seconds=1))
        released = await service.release_booking(session, b.id, owner)
    assert released.status == "completed"
    assert released.end_at <= datetime.now(UTC)


async def test_reminder_sent_once(platform, member_client, lab, at):
    from platform_scheduler import service

    a = (await book(member_client, [lab["ids"][0]], at(1))).json()
    now = datetime.fromisoformat(a["start"]) - timedelta(minutes=10)
    async with platform.ctx.db.session() as session:
        assert await service.send_reminders(session, now, timedelta(minutes=15)) == 1
        assert await service.send_reminders(session, now, timedelta(minutes=15)) == 0


async def test_delete_veto_sees_a_booking_of_the_same_transaction(platform, lab):
    """The veto reads through the inventory's session: an uncommitted booking counts."""
    from platform_inventory import service as inventory
    from platform_scheduler.models import Booking, Slot

    from platform_core import Conflict

    ctx, device = platform.ctx, lab["ids"][2]
    start = datetime.now(UTC) + timedelta(hours=2)
    async with ctx.db.session() as session:
        booking = Booking(
            owner_id=1,
            owner_name="m",
            status="approved",
            start_at=start,
            end_at=start + timedelta(hours=1),
        )
        session.add(booking)
        await session.flush()
        session.add(
            Slot(
                booking_id=booking.id,
                device_id=device,
                start_at=booking.start_at,
                end_at=booking.end_at,
                status="approved",
            )
        )
        await session.flush()
        with pytest.raises(Conflict, match="plugin 'scheduler' vetoes delete"):
            await inventory.delete_device(
                session, device, inventory.Audit("t"), veto=inventory.hook_veto(ctx)
            )
        await session.rollback()
