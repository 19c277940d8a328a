"""Power control against real protocol peers: sushy-tools (Redfish) and snmpsim (APC PDU)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from platform_core import Principal

OID = "1.3.6.1.4.1.318.1.1.4.4.2.1.3"
SYSTEM_UUID = "27946b59-9e44-4fa7-8e91-f3527a1ef094"


@pytest.fixture
def platform_settings():
    """Credentials the power configs refer to (never returned by the API).

    Reads get 20 s instead of the default 5: pysnmp's first call loads MIBs, which takes
    seconds on a loaded CI machine (the read timeout has its own test below).
    """
    return {
        "scheduler": {
            "credentials": {
                "bmc": {"username": "admin", "password": "s3cret-bmc"},
                "pdu": {"community": "private"},
            },
            "power_read_timeout": 20,
        }
    }


@pytest.fixture
def redfish(tmp_path, monkeypatch):
    """sushy-tools' emulator (fake driver) served in-process on loopback; yields its URL."""
    from sushy_tools.emulator import main
    from sushy_tools.emulator.resources.systems import fakedriver
    from werkzeug.serving import make_server

    monkeypatch.setattr(fakedriver.random, "randint", lambda a, b: 0)
    app = main.app
    app._cache = {}  # drop drivers cached by an earlier test
    app.configure(
        extra_config={
            "SUSHY_EMULATOR_FAKE_DRIVER": True,
            "SUSHY_EMULATOR_STATE_DIR": str(tmp_path / "sushy"),
            "SUSHY_EMULATOR_FAKE_SYSTEMS": [
                {
                    "uuid": SYSTEM_UUID,
                    "name": "node-1",
                    "power_state": "Off",
                    "external_notifier": False,
                    "nics": [],
                }
            ],
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    app._cache = {}


@pytest.fixture
def pdu(tmp_path):
    """An snmpsim agent emulating an APC PDU with two writable outlets; yields host:port."""
    data = tmp_path / "data"
    data.mkdir()
    rec = "|2:writecache|value={v},vlist=lt:1:wrongvalue:gt:7:wrongvalue"
    (data / "private.snmprec").write_text(f"{OID}.1{rec.format(v=1)}\n{OID}.2{rec.format(v=2)}\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = str(Path(sys.executable).parent / "snmpsim-command-responder")
    proc = subprocess.Popen(
        [
            exe,
            f"--data-dir={data}",
            f"--cache-dir={tmp_path / 'cache'}",
            f"--agent-udpv4-endpoint=127.0.0.1:{port}",
        ],
        env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 15
    seen = ""
    assert proc.stdout is not None
    while "Listening at" not in seen:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, seen
        seen += line
        assert time.monotonic() < deadline, seen
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
async def device_ids(admin_client):
    """Three devices (ids) of one type."""
    m = (await admin_client.post("/api/inventory/manufacturers", json={"name": "Acme"})).json()
    t = (
        await admin_client.post(
            "/api/inventory/device-types", json={"manufacturer_id": m["id"], "model": "S1"}
        )
    ).json()
    ids = []
    for i in range(3):
        r = await admin_client.post(
            "/api/inventory/devices", json={"name": f"p{i}", "device_type_id": t["id"]}
        )
        ids.append(r.json()["id"])
    return ids


def cfg_url(device_id: int) -> str:
    return f"/api/scheduler/devices/{device_id}/power-config"


def power_url(device_id: int) -> str:
    return f"/api/scheduler/devices/{device_id}/power"


async def test_redfish_power_on_off_and_state(admin_client, device_ids, redfish):
    r = await admin_client.put(
        cfg_url(device_ids[0]),
        json={"driver": "redfish", "address": redfish, "outlet": SYSTEM_UUID, "credentials": "bmc"},
    )
    assert r.status_code == 200, r.text
    assert (await admin_client.get(power_url(device_ids[0]))).json()["state"] == "off"
    r = await admin_client.post(power_url(device_ids[0]), json={"action": "on"})
    assert r.status_code == 200, r.text
    assert (await admin_client.get(power_url(device_ids[0]))).json()["state"] == "on"
    await admin_client.post(power_url(device_ids[0]), json={"action": "off"})
    assert (await admin_client.get(power_url(device_ids[0]))).json()["state"] == "off"


async def test_power_config_never_returns_secret(admin_client, device_ids, redfish):
    r = await admin_client.put(
        cfg_url(device_ids[0]), json={"driver": "redfish", "address": redfish, "credentials": "bmc"}
    )
    assert "s3cret-bmc" not in r.text
    got = await admin_client.get(cfg_url(device_ids[0]))
    assert got.json()["credentials"] == "bmc"
    assert "s3cret" not in got.text


async def test_power_config_unknown_driver_rejected(admin_client, device_ids):
    r = await admin_client.put(cfg_url(device_ids[0]), json={"driver": "ipmi", "address": "x"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "driver"


async def test_snmp_outlet_on_off_cycle_and_state(admin_client, device_ids, pdu):
    await admin_client.put(
        cfg_url(device_ids[0]),
        json={"driver": "snmp", "address": pdu, "outlet": "2", "credentials": "pdu"},
    )
    assert (await admin_client.get(power_url(device_ids[0]))).json()["state"] == "off"
    r = await admin_client.post(power_url(device_ids[0]), json={"action": "on"})
    assert r.status_code == 200, r.text
    assert (await admin_client.get(power_url(device_ids[0]))).json()["state"] == "on"
    await admin_client.post(power_url(device_ids[0]), json={"action": "cycle"})
    assert (await admin_client.get(power_url(device_ids[0]))).json()["state"] == "cycling"


async def test_snmp_unknown_outlet_is_502(admin_client, device_ids, pdu):
    await admin_client.put(
        cfg_url(device_ids[0]),
        json={"driver": "snmp", "address": pdu, "outlet": "9", "credentials": "pdu"},
    )
    r = await admin_client.post(power_url(device_ids[0]), json={"action": "on"})
    assert r.status_code == 502
    assert "does not exist" in r.json()["detail"]


async def _hold(platform, device_id: int, owner) -> int:
    from platform_scheduler import service

    now = datetime.now(UTC) - timedelta(minutes=1)
    async with platform.ctx.db.session() as session:
        [b] = await service.create_booking(
            session,
            {"device_ids": [device_id], "start": now, "end": now + timedelta(hours=2)},
            Principal(
                user_id=owner.id, username=owner.username, role=owner.role, scopes=frozenset()
            ),
            platform.ctx.plugin_settings("scheduler"),
        )
        await service.start_due(session, datetime.now(UTC))
    return b.id


async def test_power_refused_while_outlet_shared_device_in_use(
    platform, admin_client, operator_client, device_ids, pdu
):
    for d in device_ids[:2]:  # two devices fed by the same outlet
        await admin_client.put(
            cfg_url(d), json={"driver": "snmp", "address": pdu, "outlet": "1", "credentials": "pdu"}
        )
    someone = await platform.user("member", f"user-{uuid.uuid4().hex[:6]}")
    booking = await _hold(platform, device_ids[1], someone)
    r = await operator_client.post(power_url(device_ids[0]), json={"action": "off"})
    assert r.status_code == 409
    assert f"booking {booking}" in r.json()["detail"]
    assert (
        await operator_client.post(power_url(device_ids[0]), json={"action": "off", "force": True})
    ).status_code == 403
    r = await admin_client.post(power_url(device_ids[0]), json={"action": "off", "force": True})
    assert r.status_code == 200
    assert (await admin_client.get(power_url(device_ids[0]))).json()["state"] == "off"


async def test_power_actions_audited(admin_client, operator_client, device_ids, pdu):
    await admin_client.put(
        cfg_url(device_ids[0]),
        json={"driver": "snmp", "address": pdu, "outlet": "1", "credentials": "pdu"},
    )
    await operator_client.post(power_url(device_ids[0]), json={"action": "off"})
    audit = (await admin_client.get(power_url(device_ids[0]) + "/audit")).json()
    assert audit[0]["action"] == "off"
    assert audit[0]["result"] == "ok"
    assert audit[0]["actor"].startswith("operator-")


async def test_member_cannot_power_device_not_held(member_client, admin_client, device_ids, pdu):
    await admin_client.put(
        cfg_url(device_ids[0]),
        json={"driver": "snmp", "address": pdu, "outlet": "1", "credentials": "pdu"},
    )
    r = await member_client.post(power_url(device_ids[0]), json={"action": "off"})
    assert r.status_code == 403


async def test_power_driver_extension_point_adds_driver(platform_factory, tmp_path):
    from platform_core import hookimpl

    calls = []

    class Fake:
        name = "fake"

        async def on(self, target):
            calls.append(("on", target.address))

        async def off(self, target):
            calls.append(("off", target.address))

        async def cycle(self, target):
            calls.append(("cycle", target.address))

        async def state(self, target):
            return "on"

    class FakePlugin:
        @hookimpl
        def scheduler_power_drivers(self):
            return [Fake()]

    p = await platform_factory(
        enabled=["inventory", "scheduler"], extra_plugins={"fakepower": FakePlugin()}
    )
    admin = await p.client_for("admin")
    m = (await admin.post("/api/inventory/manufacturers", json={"name": "A"})).json()
    t = (
        await admin.post(
            "/api/inventory/device-types", json={"manufacturer_id": m["id"], "model": "X"}
        )
    ).json()
    d = (
        await admin.post("/api/inventory/devices", json={"name": "x", "device_type_id": t["id"]})
    ).json()
    r = await admin.put(cfg_url(d["id"]), json={"driver": "fake", "address": "pdu-9"})
    assert r.status_code == 200, r.text
    assert (await admin.post(power_url(d["id"]), json={"action": "cycle"})).status_code == 200
    assert calls == [("cycle", "pdu-9")]


# -- reading the power state: who may, how often, how long -------------------------------


async def _member(platform):
    """A new member and a client authenticated as them."""
    user = await platform.user("member")
    return user, platform.client(await platform.token(user=user))


async def _redfish_device(admin, device_id: int, address: str) -> None:
    r = await admin.put(
        cfg_url(device_id),
        json={"driver": "redfish", "address": address, "outlet": SYSTEM_UUID, "credentials": "bmc"},
    )
    assert r.status_code == 200, r.text


async def test_power_read_is_for_holders_operators_and_admins(
    platform, admin_client, operator_client, device_ids, redfish
):
    await _redfish_device(admin_client, device_ids[0], redfish)
    holder, holder_client = await _member(platform)
    _, other_client = await _member(platform)
    r = await holder_client.get(power_url(device_ids[0]))
    assert r.status_code == 403  # no booking yet
    assert r.headers["content-type"] == "application/problem+json"
    await _hold(platform, device_ids[0], holder)
    r = await holder_client.get(power_url(device_ids[0]))
    assert r.status_code == 200, r.text
    assert r.json() == {"device_id": device_ids[0], "driver": "redfish", "state": "off"}
    r = await other_client.get(power_url(device_ids[0]))
    assert r.status_code == 403
    assert "hold a current booking" in r.json()["detail"]
    for client in (operator_client, admin_client):
        assert (await client.get(power_url(device_ids[0]))).json()["state"] == "off"
    # Holding one device does not open another one's BMC.
    await _redfish_device(admin_client, device_ids[1], redfish)
    assert (await holder_client.get(power_url(device_ids[1]))).status_code == 403


async def test_power_reads_are_rate_limited_per_user(platform_factory, redfish):
    platform = await platform_factory(
        enabled=["inventory", "scheduler"],
        settings={
            "scheduler": {
                "credentials": {"bmc": {"username": "admin", "password": "s3cret-bmc"}},
                "power_reads_per_user": 2,
                "power_read_window_seconds": 30,
            }
        },
    )
    admin = await platform.client_for("admin")
    operator = await platform.client_for("operator")
    m = (await admin.post("/api/inventory/manufacturers", json={"name": "A"})).json()
    t = (
        await admin.post(
            "/api/inventory/device-types", json={"manufacturer_id": m["id"], "model": "X"}
        )
    ).json()
    d = (
        await admin.post("/api/inventory/devices", json={"name": "x", "device_type_id": t["id"]})
    ).json()
    await _redfish_device(admin, d["id"], redfish)
    for _ in range(2):
        assert (await operator.get(power_url(d["id"]))).status_code == 200
    r = await operator.get(power_url(d["id"]))
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert "at most 2 power reads per 30s" in r.json()["detail"]
    assert (await admin.get(power_url(d["id"]))).status_code == 200  # another user's budget


async def test_power_read_gives_up_after_the_read_timeout(platform_factory):
    # A "BMC" that accepts connections and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        platform = await platform_factory(
            enabled=["inventory", "scheduler"],
            settings={"scheduler": {"power_read_timeout": 0.5}},
        )
        admin = await platform.client_for("admin")
        m = (await admin.post("/api/inventory/manufacturers", json={"name": "A"})).json()
        t = (
            await admin.post(
                "/api/inventory/device-types", json={"manufacturer_id": m["id"], "model": "X"}
            )
        ).json()
        d = (
            await admin.post(
                "/api/inventory/devices", json={"name": "x", "device_type_id": t["id"]}
            )
        ).json()
        address = f"http://127.0.0.1:{silent.getsockname()[1]}"
        r = await admin.put(cfg_url(d["id"]), json={"driver": "redfish", "address": address})
        assert r.status_code == 200, r.text
        started = time.monotonic()
        r = await admin.get(power_url(d["id"]))
        elapsed = time.monotonic() - started
        assert r.status_code == 502, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert elapsed < 5  # not sushy's 10 retries x 3 s, nor the 30 s power_timeout
        # The driver itself gives up too (its thread does not linger for half a minute).
        from platform_scheduler import power

        target = power.PowerTarget(
            device_id=d["id"],
            address=address,
            outlet=None,
            settings=platform.ctx.plugin_settings("scheduler"),
        )
        started = time.monotonic()
        with pytest.raises(power.PowerError, match="timed out"):
            await power.RedfishDriver().state(target)
        assert time.monotonic() - started < 3
    finally:
        silent.close()


async def test_a_raising_driver_is_502_and_logged_with_its_plugin(platform_factory, caplog):
    import logging

    from platform_core import hookimpl

    class Buggy:
        name = "buggy"

        async def on(self, target):
            raise KeyError("firmware table")

        off = cycle = on

        async def state(self, target):
            raise KeyError("firmware table")

    class BuggyPlugin:
        @hookimpl
        def scheduler_power_drivers(self):
            return [Buggy()]

    p = await platform_factory(
        enabled=["inventory", "scheduler"], extra_plugins={"buggypower": BuggyPlugin()}
    )
    admin = await p.client_for("admin")
    m = (await admin.post("/api/inventory/manufacturers", json={"name": "A"})).json()
    t = await admin.post(
        "/api/inventory/device-types", json={"manufacturer_id": m["id"], "model": "X"}
    )
    d = await admin.post(
        "/api/inventory/devices", json={"name": "x", "device_type_id": t.json()["id"]}
    )
    device = d.json()["id"]
    r = await admin.put(cfg_url(device), json={"driver": "buggy", "address": "bmc-1"})
    assert r.status_code == 200, r.text
    with caplog.at_level(logging.WARNING, logger="platform_scheduler.power"):
        r = await admin.post(power_url(device), json={"action": "on"})
    assert r.status_code == 502, r.text
    assert "plugin 'buggypower'" in r.json()["detail"]
    logged = [rec for rec in caplog.records if getattr(rec, "plugin", None) == "buggypower"]
    assert logged and "KeyError" in logged[0].getMessage()
