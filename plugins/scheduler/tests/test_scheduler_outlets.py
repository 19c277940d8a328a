"""One outlet, however its address is spelled: canonical forms, the guard, the data migration."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from platform_scheduler.outlets import canonical_address, canonical_outlet
from sqlalchemy import text

from platform_core import Principal


@pytest.mark.parametrize(
    ("driver", "given", "canonical"),
    [
        ("redfish", "https://bmc.example", "https://bmc.example"),
        ("redfish", "https://bmc.example/", "https://bmc.example"),
        ("redfish", "HTTPS://BMC.Example", "https://bmc.example"),
        ("redfish", "https://bmc.example:443/", "https://bmc.example"),
        ("redfish", "https://bmc.example.", "https://bmc.example"),
        ("redfish", " https://bmc.example// ", "https://bmc.example"),
        ("redfish", "https://bmc.example:8443/a//b/./c/", "https://bmc.example:8443/a/b/c"),
        ("redfish", "http://localhost:8000", "http://127.0.0.1:8000"),
        ("redfish", "http://[::1]:8000/", "http://127.0.0.1:8000"),
        ("redfish", "http://[::ffff:10.0.0.1]", "http://10.0.0.1"),
        ("redfish", "http://[2001:DB8::0001]:80", "http://[2001:db8::1]"),
        ("redfish", "http://b\u00fccher.example", "http://xn--bcher-kva.example"),
        ("snmp", "pdu-3", "pdu-3"),
        ("snmp", "PDU-3.example.:161", "pdu-3.example"),
        ("snmp", "localhost:1161", "127.0.0.1:1161"),
        ("snmp", "127.0.0.1:1161", "127.0.0.1:1161"),
        ("snmp", "[::1]:1161", "127.0.0.1:1161"),
        ("snmp", "::1", "127.0.0.1"),
        ("snmp", "[2001:db8::1]:162", "[2001:db8::1]:162"),
        ("fake", "pdu-9", "pdu-9"),
        ("fake", "Rack 1 / PDU 2", "Rack 1 / PDU 2"),  # another driver's own format: kept
        ("fake", "MQTT://Broker.example/", "mqtt://broker.example"),
    ],
)
def test_canonical_address(driver: str, given: str, canonical: str) -> None:
    assert canonical_address(driver, given) == canonical


@pytest.mark.parametrize(
    ("driver", "given", "message"),
    [
        ("redfish", "bmc.example", "is a URL"),
        ("redfish", "https://admin:pw@bmc.example", "credentials"),
        ("redfish", "https://bmc.example/?x=1", "query"),
        ("redfish", "https://bmc.example:99999", "port"),
        ("redfish", "https:///redfish", "host"),
        ("snmp", "pdu:notaport", "port"),
        ("snmp", "pdu/1", "host or host:port"),
        ("snmp", "bad host!", "not a host name"),
    ],
)
def test_canonical_address_refuses_what_a_driver_cannot_use(
    driver: str, given: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_address(driver, given)


@pytest.mark.parametrize(
    ("driver", "given", "canonical"),
    [
        ("snmp", "01", "1"),
        ("snmp", " 7 ", "7"),
        ("redfish", "1", "/redfish/v1/Systems/1"),
        ("redfish", "/redfish/v1/Systems/1/", "/redfish/v1/Systems/1"),
        ("redfish", "  ", None),
        ("redfish", None, None),
        ("fake", " A1 ", "A1"),
    ],
)
def test_canonical_outlet(driver: str, given: str | None, canonical: str | None) -> None:
    assert canonical_outlet(driver, given) == canonical


def cfg_url(device_id: int) -> str:
    return f"/api/scheduler/devices/{device_id}/power-config"


def power_url(device_id: int) -> str:
    return f"/api/scheduler/devices/{device_id}/power"


@pytest.fixture
async def two_devices(admin_client: Any) -> list[int]:
    m = (await admin_client.post("/api/inventory/manufacturers", json={"name": "Acme"})).json()
    t = (
        await admin_client.post(
            "/api/inventory/device-types", json={"manufacturer_id": m["id"], "model": "S1"}
        )
    ).json()
    ids = []
    for name in ("mine", "theirs"):
        r = await admin_client.post(
            "/api/inventory/devices", json={"name": name, "device_type_id": t["id"]}
        )
        ids.append(r.json()["id"])
    return ids


async def _hold(platform: Any, device_id: int, owner: Any) -> int:
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
    return int(b.id)


async def _member_and_victim(platform: Any, mine: int, theirs: int) -> tuple[Any, int]:
    """A member holding ``mine`` (their client) and someone else's booking of ``theirs``."""
    member = await platform.user("member", f"m-{uuid.uuid4().hex[:6]}")
    victim = await platform.user("member", f"v-{uuid.uuid4().hex[:6]}")
    await _hold(platform, mine, member)
    booking = await _hold(platform, theirs, victim)
    return platform.client(await platform.token(user=member)), booking


# Each pair names one outlet twice; the member's device is configured with the first
# spelling, the other member's booked device with the second.
SPELLINGS = [
    ("redfish", ("http://127.0.0.1:9", None), ("http://127.0.0.1:9/", None)),
    ("redfish", ("http://127.0.0.1:9", "1"), ("HTTP://127.0.0.1:9", "1")),
    ("redfish", ("http://127.0.0.1:9", "1"), ("http://localhost:9", "1")),
    ("redfish", ("http://127.0.0.1:9", "1"), ("http://[::1]:9/", "/redfish/v1/Systems/1/")),
    ("redfish", ("https://127.0.0.1", "1"), ("https://LOCALHOST:443/", "1")),
    ("redfish", ("http://127.0.0.1:9", "1"), ("http://127.0.0.1:9", None)),  # default system
    ("snmp", ("127.0.0.1:9", "1"), ("localhost:9", "01")),
    ("snmp", ("pdu-x.invalid", "2"), ("PDU-X.invalid.:161", "2")),
]


@pytest.mark.parametrize(("driver", "mine_cfg", "their_cfg"), SPELLINGS)
async def test_guard_refuses_a_member_switching_a_shared_outlet_however_spelled(
    platform: Any,
    admin_client: Any,
    two_devices: list[int],
    driver: str,
    mine_cfg: tuple[str, str | None],
    their_cfg: tuple[str, str | None],
) -> None:
    mine, theirs = two_devices
    for device, (address, outlet) in ((mine, mine_cfg), (theirs, their_cfg)):
        body = {"driver": driver, "address": address, "outlet": outlet}
        r = await admin_client.put(cfg_url(device), json=body)
        assert r.status_code == 200, r.text
    member, booking = await _member_and_victim(platform, mine, theirs)

    r = await member.post(power_url(mine), json={"action": "off"})

    assert r.status_code == 409, r.text
    assert f"booking {booking}" in r.json()["detail"]
    audit = (await admin_client.get(power_url(mine) + "/audit")).json()
    assert audit[0]["result"] == "refused"


async def test_power_config_is_stored_and_returned_canonical(
    admin_client: Any, two_devices: list[int]
) -> None:
    body = {"driver": "redfish", "address": "HTTPS://BMC.example:443/", "outlet": "7"}

    r = await admin_client.put(cfg_url(two_devices[0]), json=body)

    assert r.status_code == 200, r.text
    got = (await admin_client.get(cfg_url(two_devices[0]))).json()
    assert (got["address"], got["outlet"]) == ("https://bmc.example", "/redfish/v1/Systems/7")


async def test_power_config_with_a_bad_address_is_422_naming_it(
    admin_client: Any, two_devices: list[int]
) -> None:
    body = {"driver": "redfish", "address": "https://root:pw@bmc.example"}

    r = await admin_client.put(cfg_url(two_devices[0]), json=body)

    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "address"
    assert "pw" not in r.text


async def test_different_outlets_and_hosts_are_not_confused(
    platform: Any, admin_client: Any, two_devices: list[int]
) -> None:
    """The guard stays precise: another outlet of the PDU, or another host, is not shared
    (the member's action then reaches the driver, which fails: nothing listens there)."""
    mine, theirs = two_devices
    await admin_client.put(
        cfg_url(mine), json={"driver": "snmp", "address": "127.0.0.1:9", "outlet": "1"}
    )
    await admin_client.put(
        cfg_url(theirs), json={"driver": "snmp", "address": "127.0.0.2:9", "outlet": "1"}
    )
    member, _ = await _member_and_victim(platform, mine, theirs)

    r = await member.post(power_url(mine), json={"action": "off"})

    assert r.status_code == 502, r.text


async def test_migration_rewrites_stored_addresses_and_the_guard_then_refuses(
    platform: Any, admin_client: Any, two_devices: list[int]
) -> None:
    mine, theirs = two_devices
    await platform.migrate("scheduler", "scheduler_0001")
    now = datetime.now(UTC)
    async with platform.ctx.db.engine.begin() as conn:
        for device, address, outlet in (
            (mine, "HTTP://LocalHost:9/", "1"),
            (theirs, "http://127.0.0.1:9", "/redfish/v1/Systems/1/"),
        ):
            await conn.execute(
                text(
                    "INSERT INTO scheduler_power_configs "
                    "(device_id, driver, address, outlet, credentials, updated_at) "
                    "VALUES (:d, 'redfish', :a, :o, NULL, :t)"
                ),
                {"d": device, "a": address, "o": outlet, "t": now},
            )

    await platform.migrate("scheduler", "heads")

    for device in (mine, theirs):
        got = (await admin_client.get(cfg_url(device))).json()
        assert (got["address"], got["outlet"]) == ("http://127.0.0.1:9", "/redfish/v1/Systems/1")
    member, booking = await _member_and_victim(platform, mine, theirs)
    r = await member.post(power_url(mine), json={"action": "off"})
    assert r.status_code == 409 and f"booking {booking}" in r.json()["detail"]
