"""``platformctl scheduler bookings ...`` and ``platformctl scheduler power ...``.

The CLI runs through the testing kit's ``run_cli`` (the installed ``platformctl``, in-process)
against the ``platform`` fixture's database (a SQLite file, or the test's PostgreSQL schema when
``PLATFORM_TEST_DATABASE_URL`` is set). The platform enables the installed inventory and
scheduler plus ``fakepower``, an in-test plugin whose power driver records what it is asked to
do; ``run_cli`` installs it for the CLI too. The data is made through the API.
"""

from __future__ import annotations

import functools
import json
import os
import types

import pytest
from sqlalchemy.engine import make_url

from platform_core import PluginMeta, hookimpl
from platform_core.testing import TEST_DATABASE_ENV

B = "/api/scheduler/bookings"
FAKE_MODULE = "platform_scheduler_tests_fakepower"
CALLS: list[tuple[str, str]] = []


class RecordingDriver:
    name = "fake"

    async def on(self, target) -> None:
        CALLS.append(("on", target.address))

    async def off(self, target) -> None:
        CALLS.append(("off", target.address))

    async def cycle(self, target) -> None:
        CALLS.append(("cycle", target.address))

    async def state(self, target) -> str:
        return "on"


def _fake_module() -> types.ModuleType:
    module = types.ModuleType(FAKE_MODULE)

    @hookimpl
    def platform_plugin_meta() -> PluginMeta:
        return PluginMeta(description="Power driver of the scheduler CLI tests.")

    @hookimpl
    def scheduler_power_drivers() -> list[RecordingDriver]:
        return [RecordingDriver()]

    module.platform_plugin_meta = platform_plugin_meta  # type: ignore[attr-defined]
    module.scheduler_power_drivers = scheduler_power_drivers  # type: ignore[attr-defined]
    return module


async def test_cli_uses_the_platform_database(run_cli, platform, lab):
    """The CLI runs on the test database's backend, in the platform's own database."""
    server = os.environ.get(TEST_DATABASE_ENV)
    expected = make_url(server).get_backend_name() if server else "sqlite"
    assert platform.ctx.db.dialect == expected
    result = await run_cli("inventory", "export", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [d["name"] for d in json.loads(result.stdout)["devices"]] == ["d1", "d2", "d3", "d4"]


@pytest.fixture
async def platform(platform_factory):
    """The platform the tests make data through (the CLI uses its database)."""
    return await platform_factory(
        enabled=["inventory", "scheduler"],
        extra_plugins={"fakepower": _fake_module()},
        core={"background": False},
    )


@pytest.fixture
def cli(run_cli):
    """``await cli(*args)``: run ``platformctl scheduler ARGS``; returns the Result."""
    CALLS.clear()
    return functools.partial(run_cli, "scheduler")


async def book(client, device_ids, window, **extra) -> dict:
    r = await client.post(B, json={"device_ids": device_ids, **window, **extra})
    assert r.status_code == 201, r.text
    return r.json()


async def pending_policy(admin_client, lab) -> None:
    r = await admin_client.post(
        "/api/scheduler/policies",
        json={"name": "s1", "device_type_id": lab["type"]["id"], "auto_approve": False},
    )
    assert r.status_code == 201, r.text


def listed(result) -> dict[int, list[str]]:
    """The table rows of ``bookings list`` by booking id: {id: [status, owner, devices, ...]}."""
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells[0].isdigit():
            rows[int(cells[0])] = cells[1:]
    return rows


def one_line_error(result, text: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    assert text in result.stderr


async def test_cli_bookings_list_shows_bookings(cli, member_client, lab, at):
    a = await book(member_client, [lab["ids"][0]], at(1), purpose="kernel-ci")
    b = await book(member_client, lab["ids"][2:4], at(2))
    result = await cli("bookings", "list")
    assert result.exit_code == 0, result.output
    rows = listed(result)
    assert set(rows) == {a["id"], b["id"]}
    assert rows[a["id"]][0] == "approved"
    assert rows[a["id"]][-1] == "kernel-ci"
    assert rows[b["id"]][2] == f"{lab['ids'][2]},{lab['ids'][3]}"


async def test_cli_bookings_list_filters_by_status_and_device(
    cli, admin_client, member_client, lab, at
):
    await pending_policy(admin_client, lab)
    pending = await book(member_client, [lab["ids"][0]], at(1))
    approved = await book(admin_client, [lab["ids"][1]], at(1))
    result = await cli("bookings", "list", "--status", "pending")
    assert result.exit_code == 0, result.output
    assert set(listed(result)) == {pending["id"]}
    result = await cli("bookings", "list", "--device", str(lab["ids"][1]))
    assert set(listed(result)) == {approved["id"]}


async def test_cli_bookings_approve_pending_booking(cli, admin_client, member_client, lab, at):
    await pending_policy(admin_client, lab)
    b = await book(member_client, [lab["ids"][0]], at(1))
    result = await cli("bookings", "approve", str(b["id"]), "--note", "ok by cli")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"booking {b['id']}: approved\n"
    got = (await member_client.get(f"{B}/{b['id']}")).json()
    assert (got["status"], got["decided_by"], got["decision_note"]) == (
        "approved",
        "cli",
        "ok by cli",
    )


async def test_cli_bookings_reject_pending_booking(cli, admin_client, member_client, lab, at):
    await pending_policy(admin_client, lab)
    b = await book(member_client, [lab["ids"][0]], at(1))
    result = await cli("bookings", "reject", str(b["id"]))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"booking {b['id']}: rejected\n"
    assert (await member_client.get(f"{B}/{b['id']}")).json()["status"] == "rejected"


async def test_cli_bookings_cancel_frees_device(cli, member_client, lab, at):
    b = await book(member_client, [lab["ids"][0]], at(1))
    result = await cli("bookings", "cancel", str(b["id"]))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"booking {b['id']}: cancelled\n"
    assert (await member_client.get(f"{B}/{b['id']}")).json()["status"] == "cancelled"
    await book(member_client, [lab["ids"][0]], at(1))


async def test_cli_bookings_approve_unknown_id_one_line_error(cli, lab):
    one_line_error(await cli("bookings", "approve", "999999"), "booking 999999 not found")


async def test_cli_bookings_cancel_unknown_id_one_line_error(cli, lab):
    one_line_error(await cli("bookings", "cancel", "999999"), "booking 999999 not found")


async def test_cli_bookings_approve_approved_booking_one_line_error(cli, member_client, lab, at):
    b = await book(member_client, [lab["ids"][0]], at(1))
    one_line_error(await cli("bookings", "approve", str(b["id"])), "not pending")


async def test_cli_power_switches_through_driver_and_audits(cli, admin_client, lab):
    device = lab["ids"][0]
    r = await admin_client.put(
        f"/api/scheduler/devices/{device}/power-config",
        json={"driver": "fake", "address": "pdu-7"},
    )
    assert r.status_code == 200, r.text
    for action in ("on", "off", "cycle"):
        result = await cli("power", str(device), action)
        assert result.exit_code == 0, result.output
        assert result.stdout == f"device {device}: power {action} ok\n"
    assert CALLS == [("on", "pdu-7"), ("off", "pdu-7"), ("cycle", "pdu-7")]
    audit = (await admin_client.get(f"/api/scheduler/devices/{device}/power/audit")).json()
    assert [(a["action"], a["actor"], a["result"]) for a in audit] == [
        ("cycle", "cli", "ok"),
        ("off", "cli", "ok"),
        ("on", "cli", "ok"),
    ]


async def test_cli_power_unconfigured_device_one_line_error(cli, lab):
    one_line_error(await cli("power", "999999", "on"), "999999")
    assert CALLS == []


async def test_cli_power_bad_action_exits_2(cli, lab):
    result = await cli("power", str(lab["ids"][0]), "reboot")
    assert result.exit_code == 2
    assert "on, off or cycle" in result.stderr
    assert CALLS == []
