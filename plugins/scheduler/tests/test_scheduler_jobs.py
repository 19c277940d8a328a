"""The scheduler's periodic jobs, run the way the job runner runs them, and early release.

Each job is the ``JobSpec.func`` registered as ``scheduler.<name>``, called through
``platform.run_job``. The clock the jobs read (``jobs.utcnow``) is moved to the moment
under test; power goes through an in-test driver registered at ``scheduler_power_drivers``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from platform_core import Principal, hookimpl

B = "/api/scheduler/bookings"
BROKEN = "pdu-broken"


class RecordingDriver:
    """Records every action; fails for the address ``pdu-broken``."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def _do(self, action: str, target) -> None:
        from platform_scheduler.power import PowerError

        if target.address == BROKEN:
            raise PowerError("outlet does not answer")
        self.calls.append((action, target.address))

    async def on(self, target) -> None:
        await self._do("on", target)

    async def off(self, target) -> None:
        await self._do("off", target)

    async def cycle(self, target) -> None:
        await self._do("cycle", target)

    async def state(self, target) -> str:
        return "on"


@pytest.fixture
def driver() -> RecordingDriver:
    return RecordingDriver()


@pytest.fixture
async def platform(platform_factory, driver):
    """Inventory + scheduler + the recording driver; no background runner (no racing jobs)."""

    class FakePower:
        @hookimpl
        def scheduler_power_drivers(self):
            return [driver]

    return await platform_factory(
        enabled=["inventory", "scheduler"],
        extra_plugins={"fakepower": FakePower()},
        core={"background": False},
    )


@pytest.fixture
def clock(monkeypatch):
    """``clock(moment)``: the jobs see ``moment`` as now."""
    from platform_scheduler import jobs

    def set_now(moment: datetime) -> None:
        monkeypatch.setattr(jobs, "utcnow", lambda: moment)

    return set_now


async def run_job(platform, name: str) -> dict[str, int]:
    return await platform.run_job(f"scheduler.{name}")


async def titles(client) -> list[str]:
    r = await client.get("/api/core/notifications")
    assert r.status_code == 200, r.text
    return [n["title"] for n in r.json()["items"]]


async def configure(admin_client, device_id: int, address: str) -> None:
    r = await admin_client.put(
        f"/api/scheduler/devices/{device_id}/power-config",
        json={"driver": "fake", "address": address},
    )
    assert r.status_code == 200, r.text


async def book(client, device_ids, window, **extra) -> dict:
    r = await client.post(B, json={"device_ids": device_ids, **window, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def moment(iso: str, **delta: float) -> datetime:
    return datetime.fromisoformat(iso) + timedelta(**delta)


async def status_of(client, booking_id: int) -> str:
    return (await client.get(f"{B}/{booking_id}")).json()["status"]


async def test_jobs_registered_as_scheduler_jobs(platform):
    names = {n for n in platform.ctx.jobs if n.startswith("scheduler.")}
    assert names == {
        "scheduler.start_bookings",
        "scheduler.end_bookings",
        "scheduler.expire_bookings",
        "scheduler.remind_bookings",
    }


async def test_start_job_activates_due_booking_and_powers_on(
    platform, admin_client, member_client, lab, at, clock, driver
):
    await configure(admin_client, lab["ids"][0], "pdu-1")
    w = at(1)
    b = await book(member_client, [lab["ids"][0]], w, power_on_start=True)
    later = await book(member_client, [lab["ids"][0]], at(3))
    clock(moment(w["start"], minutes=1))
    assert await run_job(platform, "start_bookings") == {"started": 1, "powered_on": 1}
    assert driver.calls == [("on", "pdu-1")]
    assert await status_of(member_client, b["id"]) == "active"
    assert await status_of(member_client, later["id"]) == "approved"
    audit = (await admin_client.get(f"/api/scheduler/devices/{lab['ids'][0]}/power/audit")).json()
    assert (audit[0]["action"], audit[0]["result"], audit[0]["actor"]) == ("on", "ok", "scheduler")
    await platform.deliver_events()
    assert f"Booking {b['id']} started" in await titles(member_client)
    assert f"Booking {later['id']} started" not in await titles(member_client)


async def test_start_job_no_power_without_power_on_start(
    platform, admin_client, member_client, lab, at, clock, driver
):
    await configure(admin_client, lab["ids"][0], "pdu-1")
    w = at(1)
    b = await book(member_client, [lab["ids"][0]], w)
    clock(moment(w["start"], minutes=1))
    assert await run_job(platform, "start_bookings") == {"started": 1, "powered_on": 0}
    assert driver.calls == []
    assert await status_of(member_client, b["id"]) == "active"


async def test_start_job_skips_devices_without_power_config(
    platform, admin_client, member_client, lab, at, clock, driver
):
    await configure(admin_client, lab["ids"][1], "pdu-2")
    w = at(1)
    await book(member_client, lab["ids"][:3], w, power_on_start=True)
    clock(moment(w["start"], minutes=1))
    assert await run_job(platform, "start_bookings") == {"started": 1, "powered_on": 1}
    assert driver.calls == [("on", "pdu-2")]


async def test_end_job_completes_and_powers_off_when_configured(
    platform, admin_client, member_client, lab, at, clock, driver
):
    await configure(admin_client, lab["ids"][0], "pdu-1")
    w = at(1)
    b = await book(member_client, [lab["ids"][0]], w, power_on_start=True, power_off_end=True)
    clock(moment(w["start"], minutes=1))
    await run_job(platform, "start_bookings")
    clock(moment(w["end"], minutes=-1))
    assert await run_job(platform, "end_bookings") == {"ended": 0, "powered_off": 0}
    assert await status_of(member_client, b["id"]) == "active"
    clock(moment(w["end"], minutes=1))
    assert await run_job(platform, "end_bookings") == {"ended": 1, "powered_off": 1}
    assert driver.calls == [("on", "pdu-1"), ("off", "pdu-1")]
    assert await status_of(member_client, b["id"]) == "completed"
    await platform.deliver_events()
    assert f"Booking {b['id']} ended" in await titles(member_client)


async def test_end_job_no_power_off_without_power_off_end(
    platform, admin_client, member_client, lab, at, clock, driver
):
    await configure(admin_client, lab["ids"][0], "pdu-1")
    w = at(1)
    b = await book(member_client, [lab["ids"][0]], w)
    clock(moment(w["end"], minutes=1))
    assert await run_job(platform, "end_bookings") == {"ended": 1, "powered_off": 0}
    assert driver.calls == []
    assert await status_of(member_client, b["id"]) == "completed"


async def test_end_job_completes_even_when_driver_fails(
    platform, admin_client, member_client, lab, at, clock, driver
):
    await configure(admin_client, lab["ids"][0], BROKEN)
    await configure(admin_client, lab["ids"][1], "pdu-2")
    w = at(1)
    b = await book(member_client, lab["ids"][:2], w, power_off_end=True)
    clock(moment(w["end"], minutes=1))
    assert await run_job(platform, "end_bookings") == {"ended": 1, "powered_off": 1}
    assert driver.calls == [("off", "pdu-2")]
    assert await status_of(member_client, b["id"]) == "completed"
    audit = (await admin_client.get(f"/api/scheduler/devices/{lab['ids'][0]}/power/audit")).json()
    assert (audit[0]["action"], audit[0]["result"]) == ("off", "failed")
    assert "does not answer" in audit[0]["detail"]


async def test_expire_job_expires_pending_once_start_passed(
    platform, admin_client, member_client, lab, at, clock
):
    r = await admin_client.post(
        "/api/scheduler/policies",
        json={"name": "s1", "device_type_id": lab["type"]["id"], "auto_approve": False},
    )
    assert r.status_code == 201, r.text
    w = at(1)
    pending = await book(member_client, [lab["ids"][0]], w)
    approved = await book(admin_client, [lab["ids"][1]], w)
    assert (pending["status"], approved["status"]) == ("pending", "approved")
    clock(moment(w["start"], minutes=-1))
    assert await run_job(platform, "expire_bookings") == {"expired": 0}
    assert await status_of(member_client, pending["id"]) == "pending"
    clock(moment(w["start"], minutes=1))
    assert await run_job(platform, "expire_bookings") == {"expired": 1}
    assert await status_of(member_client, pending["id"]) == "expired"
    assert await status_of(admin_client, approved["id"]) == "approved"
    await platform.deliver_events()
    assert f"Booking {pending['id']} expired unapproved" in await titles(member_client)
    # expired bookings no longer hold the device
    assert (
        await member_client.post(B, json={"device_ids": [lab["ids"][0]], **at(1)})
    ).status_code == 201


async def test_remind_job_reminds_once_within_reminder_window(
    platform, member_client, lab, at, clock
):
    w = at(1)
    b = await book(member_client, [lab["ids"][0]], w)
    clock(moment(w["start"], minutes=-30))  # reminder_minutes defaults to 15
    assert await run_job(platform, "remind_bookings") == {"reminded": 0}
    clock(moment(w["start"], minutes=-10))
    assert await run_job(platform, "remind_bookings") == {"reminded": 1}
    assert await run_job(platform, "remind_bookings") == {"reminded": 0}
    await platform.deliver_events()
    reminders = [
        t for t in await titles(member_client) if t.startswith(f"Booking {b['id']} starts")
    ]
    assert len(reminders) == 1


async def _active_booking(platform, device_id: int, **flags) -> tuple[int, object]:
    """An active booking (started a minute ago) of a new member; returns (id, their client)."""
    from platform_scheduler import service

    user = await platform.user("member")
    now = datetime.now(UTC) - timedelta(minutes=1)
    async with platform.ctx.db.session() as session:
        [b] = await service.create_booking(
            session,
            {"device_ids": [device_id], "start": now, "end": now + timedelta(hours=2), **flags},
            Principal(user_id=user.id, username=user.username, role="member", scopes=frozenset()),
            platform.ctx.plugin_settings("scheduler"),
        )
    assert await run_job(platform, "start_bookings") == {"started": 1, "powered_on": 0}
    return b.id, platform.client(await platform.token(user=user))


async def test_release_powers_off_when_power_off_end_configured(
    platform, admin_client, lab, driver
):
    await configure(admin_client, lab["ids"][0], "pdu-1")
    booking_id, owner = await _active_booking(platform, lab["ids"][0], power_off_end=True)
    r = await owner.post(f"{B}/{booking_id}/release")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    assert driver.calls == [("off", "pdu-1")]
    audit = (await admin_client.get(f"/api/scheduler/devices/{lab['ids'][0]}/power/audit")).json()
    assert (audit[0]["action"], audit[0]["result"]) == ("off", "ok")
    assert audit[0]["actor"] == (await owner.get("/api/core/me")).json()["username"]


async def test_release_keeps_power_without_power_off_end(platform, admin_client, lab, driver):
    await configure(admin_client, lab["ids"][0], "pdu-1")
    booking_id, owner = await _active_booking(platform, lab["ids"][0])
    r = await owner.post(f"{B}/{booking_id}/release")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    assert driver.calls == []


async def test_release_succeeds_when_power_off_fails(platform, admin_client, lab, driver):
    await configure(admin_client, lab["ids"][0], BROKEN)
    booking_id, owner = await _active_booking(platform, lab["ids"][0], power_off_end=True)
    r = await owner.post(f"{B}/{booking_id}/release")
    assert r.status_code == 200, r.text
    assert (await owner.get(f"{B}/{booking_id}")).json()["status"] == "completed"
    audit = (await admin_client.get(f"/api/scheduler/devices/{lab['ids'][0]}/power/audit")).json()
    assert (audit[0]["action"], audit[0]["result"]) == ("off", "failed")


async def test_release_never_cuts_power_to_a_device_in_use_on_the_same_outlet(
    platform, admin_client, lab, driver
):
    await configure(admin_client, lab["ids"][0], "pdu-1")
    await configure(admin_client, lab["ids"][1], "pdu-1")  # fed by the same outlet
    mine, owner = await _active_booking(platform, lab["ids"][0], power_off_end=True)
    theirs, _ = await _active_booking(platform, lab["ids"][1])
    r = await owner.post(f"{B}/{mine}/release")
    assert r.status_code == 200, r.text
    assert driver.calls == []  # the other user's device keeps its power
    audit = (await admin_client.get(f"/api/scheduler/devices/{lab['ids'][0]}/power/audit")).json()
    assert (audit[0]["action"], audit[0]["result"]) == ("off", "refused")
    assert f"booking {theirs}" in audit[0]["detail"]
