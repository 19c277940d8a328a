"""The inventory API: rack space, ports and connections, custom fields, lists, history, veto."""

from __future__ import annotations

import pytest
from platform_inventory.models import CableEnd, Connection, RackUnit
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from platform_core import hookimpl

API = "/api/inventory"
PROBLEM = "application/problem+json"


async def _device(client, catalogue, name, **extra):
    body = {"name": name, "device_type_id": catalogue["type"]["id"]}
    body["custom_fields"] = extra.pop("custom_fields", {"owner": "alice"})
    body.update(extra)
    return await client.post(f"{API}/devices", json=body)


async def _ports(client, device_id):
    return {p["name"]: p for p in (await client.get(f"{API}/devices/{device_id}/ports")).json()}


async def test_device_crud_round_trip_for_admin(admin_client, catalogue):
    r = await _device(admin_client, catalogue, "web1", serial="SN1", tags=["prod", "web"])
    assert r.status_code == 201, r.text
    dev = r.json()
    assert dev["custom_fields"] == {"owner": "alice", "cores": 4}
    assert dev["manufacturer_id"] == catalogue["manufacturer"]["id"]
    r = await admin_client.patch(f"{API}/devices/{dev['id']}", json={"status": "offline"})
    assert r.json()["status"] == "offline"
    assert (await admin_client.delete(f"{API}/devices/{dev['id']}")).status_code == 204
    assert (await admin_client.get(f"{API}/devices/{dev['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("path", "key", "label"),
    [
        ("manufacturers", "manufacturer", "manufacturer"),
        ("device-types", "type", "device type"),
        ("locations", "room", "location"),
        ("racks", "rack", "rack"),
        ("devices", None, "device"),
    ],
)
async def test_get_one_answers_what_create_answered_and_404_names_it(
    admin_client, member_client, catalogue, path, key, label
):
    # A GET of one object reads a plain row, not the ORM instance the create returned.
    if key is None:
        created = (await _device(admin_client, catalogue, "one", tags=["a"])).json()
    else:
        created = catalogue[key]
    r = await member_client.get(f"{API}/{path}/{created['id']}")
    assert r.status_code == 200, r.text
    assert r.json() == created
    r = await member_client.get(f"{API}/{path}/999999")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["detail"] == f"{label} 999999 not found"


async def test_device_creation_is_forbidden_to_member(member_client, catalogue):
    r = await _device(member_client, catalogue, "x")
    assert r.status_code == 403
    assert (await member_client.get(f"{API}/devices")).status_code == 200


async def test_rack_conflict_names_units_and_occupant(admin_client, catalogue):
    rack = catalogue["rack"]["id"]
    first = (await _device(admin_client, catalogue, "a", rack_id=rack, position=3)).json()
    r = await _device(admin_client, catalogue, "b", rack_id=rack, position=4)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "4 (front)" in r.json()["detail"] and "'a'" in r.json()["detail"]
    assert {"face": "front", "unit": 4, "device_id": first["id"]} in r.json()["occupied"]


async def test_rack_position_beyond_the_rack_is_422_naming_position(admin_client, catalogue):
    r = await _device(admin_client, catalogue, "a", rack_id=catalogue["rack"]["id"], position=10)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "position"
    assert "10-11" in r.json()["detail"]


async def test_half_depth_devices_share_a_unit_on_opposite_faces(admin_client, catalogue):
    t = await admin_client.post(
        f"{API}/device-types",
        json={
            "manufacturer_id": catalogue["manufacturer"]["id"],
            "model": "half",
            "full_depth": False,
        },
    )
    rack = catalogue["rack"]["id"]
    body = {"device_type_id": t.json()["id"], "rack_id": rack, "position": 1}
    front = await admin_client.post(f"{API}/devices", json=body | {"name": "f", "face": "front"})
    rear = await admin_client.post(f"{API}/devices", json=body | {"name": "r", "face": "rear"})
    assert (front.status_code, rear.status_code) == (201, 201)
    r = await _device(admin_client, catalogue, "full", rack_id=rack, position=1)
    assert r.status_code == 409 and "'f'" in r.json()["detail"] and "'r'" in r.json()["detail"]


async def test_moving_a_device_frees_its_old_units(admin_client, catalogue):
    rack = catalogue["rack"]["id"]
    a = (await _device(admin_client, catalogue, "a", rack_id=rack, position=1)).json()
    r = await admin_client.patch(f"{API}/devices/{a['id']}", json={"position": 5})
    assert r.status_code == 200, r.text
    assert (
        await _device(admin_client, catalogue, "b", rack_id=rack, position=1)
    ).status_code == 201


async def test_rack_units_are_unique_in_the_database(platform, admin_client, catalogue):
    rack = catalogue["rack"]["id"]
    a = (await _device(admin_client, catalogue, "a", rack_id=rack, position=1)).json()
    b = (await _device(admin_client, catalogue, "b")).json()
    with pytest.raises(IntegrityError):
        async with platform.ctx.db.session() as session:
            await session.execute(
                insert(RackUnit).values(rack_id=rack, face="front", unit=1, device_id=b["id"])
            )
    assert a["position"] == 1


async def test_connection_joins_two_ports_and_refuses_a_busy_port(admin_client, catalogue):
    a = (await _device(admin_client, catalogue, "a")).json()
    b = (await _device(admin_client, catalogue, "b")).json()
    pa, pb = await _ports(admin_client, a["id"]), await _ports(admin_client, b["id"])
    body = {"a_port_id": pa["eth0"]["id"], "b_port_id": pb["eth0"]["id"]}
    r = await admin_client.post(f"{API}/connections", json=body)
    assert r.status_code == 201, r.text
    again = {"a_port_id": pa["eth1"]["id"], "b_port_id": pb["eth0"]["id"]}
    r = await admin_client.post(f"{API}/connections", json=again)
    assert r.status_code == 409
    assert r.json()["errors"][0]["field"] == "b_port_id"


async def test_connection_of_a_port_to_itself_is_422(admin_client, catalogue):
    a = (await _device(admin_client, catalogue, "a")).json()
    port = (await _ports(admin_client, a["id"]))["eth0"]["id"]
    r = await admin_client.post(f"{API}/connections", json={"a_port_id": port, "b_port_id": port})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "b_port_id"


async def test_database_refuses_a_second_connection_on_a_port(platform, admin_client, catalogue):
    a = (await _device(admin_client, catalogue, "a")).json()
    b = (await _device(admin_client, catalogue, "b")).json()
    pa, pb = await _ports(admin_client, a["id"]), await _ports(admin_client, b["id"])
    body = {"a_port_id": pa["eth0"]["id"], "b_port_id": pb["eth0"]["id"]}
    assert (await admin_client.post(f"{API}/connections", json=body)).status_code == 201
    with pytest.raises(IntegrityError):  # the port is already an "a" end: now as a "b" end
        async with platform.ctx.db.session() as session:
            conn = (
                await session.execute(insert(Connection).values(label="x"))
            ).inserted_primary_key
            await session.execute(
                insert(CableEnd).values(connection_id=conn[0], side="b", port_id=pa["eth0"]["id"])
            )


async def test_database_refuses_a_third_end_on_a_connection(platform, admin_client, catalogue):
    a = (await _device(admin_client, catalogue, "a")).json()
    b = (await _device(admin_client, catalogue, "b")).json()
    pa, pb = await _ports(admin_client, a["id"]), await _ports(admin_client, b["id"])
    body = {"a_port_id": pa["eth0"]["id"], "b_port_id": pb["eth0"]["id"]}
    conn = (await admin_client.post(f"{API}/connections", json=body)).json()
    with pytest.raises(IntegrityError):
        async with platform.ctx.db.session() as session:
            await session.execute(
                insert(CableEnd).values(
                    connection_id=conn["id"], side="a", port_id=pa["eth1"]["id"]
                )
            )


@pytest.mark.parametrize(
    ("fields", "field", "needle"),
    [
        ({}, "custom_fields.owner", "required"),
        ({"owner": "a", "cores": "four"}, "custom_fields.cores", "integer"),
        ({"owner": "a", "pci": "yes"}, "custom_fields.pci", "true or false"),
        ({"owner": "a", "bought": "31/12/2020"}, "custom_fields.bought", "date"),
        ({"owner": "a", "tier": "bronze"}, "custom_fields.tier", "one of"),
        ({"owner": "a", "colour": "red"}, "custom_fields.colour", "unknown"),
    ],
)
async def test_custom_field_value_is_validated_against_the_type(
    admin_client, catalogue, fields, field, needle
):
    r = await _device(admin_client, catalogue, "x", custom_fields=fields)
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] == field and needle in error["message"]


async def test_enum_type_without_choices_is_422(admin_client, catalogue):
    body = {
        "manufacturer_id": catalogue["manufacturer"]["id"],
        "model": "bad",
        "custom_fields": [{"name": "tier", "type": "enum"}],
    }
    r = await admin_client.post(f"{API}/device-types", json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "custom_fields.0.choices"


async def test_list_filters_by_custom_field(admin_client, catalogue):
    await _device(admin_client, catalogue, "a", custom_fields={"owner": "alice", "pci": True})
    await _device(admin_client, catalogue, "b", custom_fields={"owner": "bob", "pci": False})
    r = await admin_client.get(f"{API}/devices", params={"cf_owner": "bob"})
    assert [d["name"] for d in r.json()["items"]] == ["b"]
    r = await admin_client.get(f"{API}/devices", params={"cf_pci": "true"})
    assert [d["name"] for d in r.json()["items"]] == ["a"]


async def test_list_location_filter_includes_descendants(admin_client, catalogue):
    await _device(admin_client, catalogue, "in-room", location_id=catalogue["room"]["id"])
    await _device(admin_client, catalogue, "nowhere")
    r = await admin_client.get(f"{API}/devices", params={"location": catalogue["site"]["id"]})
    assert [d["name"] for d in r.json()["items"]] == ["in-room"]


async def test_list_filters_by_q_status_tag_and_rack(admin_client, catalogue):
    rack = catalogue["rack"]["id"]
    await _device(admin_client, catalogue, "web1", serial="XYZ-1", tags=["prod"], rack_id=rack)
    await _device(admin_client, catalogue, "db1", status="planned", tags=["dev"])
    names = lambda r: [d["name"] for d in r.json()["items"]]  # noqa: E731
    assert names(await admin_client.get(f"{API}/devices", params={"q": "xyz"})) == ["web1"]
    assert names(await admin_client.get(f"{API}/devices", params={"status": "planned"})) == ["db1"]
    assert names(await admin_client.get(f"{API}/devices", params={"tag": "prod"})) == ["web1"]
    assert names(await admin_client.get(f"{API}/devices", params={"rack": rack})) == ["web1"]


async def test_list_sorts_descending_by_name(admin_client, catalogue):
    for name in ("b", "c", "a"):
        await _device(admin_client, catalogue, name)
    r = await admin_client.get(f"{API}/devices", params={"sort": "-name"})
    assert [d["name"] for d in r.json()["items"]] == ["c", "b", "a"]


async def test_list_unknown_sort_is_422_naming_sort(admin_client, catalogue):
    r = await admin_client.get(f"{API}/devices", params={"sort": "serial; drop"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sort"


async def test_bad_cursor_is_422_naming_cursor(admin_client, catalogue):
    r = await admin_client.get(f"{API}/devices", params={"cursor": "not-a-cursor!"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("sort", ["name", "-created_at"])
async def test_cursor_is_stable_under_concurrent_inserts(admin_client, catalogue, sort):
    for i in range(0, 20, 2):
        await _device(admin_client, catalogue, f"d{i:02}")
    seen: list[str] = []
    cursor, extra = None, 1
    while True:
        params = {"limit": 3, "sort": sort} | ({"cursor": cursor} if cursor else {})
        page = (await admin_client.get(f"{API}/devices", params=params)).json()
        seen += [d["name"] for d in page["items"]]
        # Others insert devices before and after the cursor meanwhile.
        for name in (f"a{extra:02}", f"d{extra:02}", f"z{extra:02}"):
            await _device(admin_client, catalogue, name)
        extra += 2
        cursor = page["next_cursor"]
        if not cursor:
            break
    originals = [f"d{i:02}" for i in range(0, 20, 2)]
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(originals) <= set(seen)  # nothing skipped


async def test_change_history_records_snapshots_actor_and_request_id(admin_client, catalogue):
    dev = (await _device(admin_client, catalogue, "a")).json()
    headers = {"X-Request-ID": "req-update-1"}
    await admin_client.patch(
        f"{API}/devices/{dev['id']}", json={"status": "offline"}, headers=headers
    )
    await admin_client.delete(f"{API}/devices/{dev['id']}")
    r = await admin_client.get(
        f"{API}/changes", params={"object_type": "device", "object_id": dev["id"]}
    )
    changes = r.json()["items"]
    assert [c["action"] for c in changes] == ["create", "update", "delete"]
    assert changes[0]["before"] is None and changes[0]["after"]["name"] == "a"
    assert changes[1]["before"]["status"] == "active" and changes[1]["after"]["status"] == "offline"
    assert changes[1]["request_id"] == "req-update-1"
    assert changes[2]["after"] is None and changes[2]["actor"].startswith("admin-")


async def test_change_history_is_read_only(admin_client):
    r = await admin_client.post(f"{API}/changes", json={})
    assert r.status_code == 405


class Vetoer:
    """An in-test plugin refusing to delete or retire devices named ``booked*``."""

    @hookimpl
    def inventory_device_delete_veto(self, device, action):
        if device["name"].startswith("booked"):
            return f"{device['name']} has future bookings ({action})"
        return None


@pytest.fixture
def platform_extra_plugins():
    """The platform runs with the vetoing plugin ``scheduler_stub``."""
    return {"scheduler_stub": Vetoer()}


async def test_delete_vetoed_by_a_plugin_is_409_naming_it(admin_client, catalogue):
    dev = (await _device(admin_client, catalogue, "booked-1")).json()
    r = await admin_client.delete(f"{API}/devices/{dev['id']}")
    assert r.status_code == 409
    assert "scheduler_stub" in r.json()["detail"] and "future bookings" in r.json()["detail"]
    assert r.json()["vetoes"] == [
        {"plugin": "scheduler_stub", "reason": "booked-1 has future bookings (delete)"}
    ]
    assert (await admin_client.get(f"{API}/devices/{dev['id']}")).status_code == 200


async def test_retire_vetoed_by_a_plugin_is_409_and_keeps_status(admin_client, catalogue):
    dev = (await _device(admin_client, catalogue, "booked-2")).json()
    r = await admin_client.patch(f"{API}/devices/{dev['id']}", json={"status": "retired"})
    assert r.status_code == 409 and "(retire)" in r.json()["detail"]
    assert (await admin_client.get(f"{API}/devices/{dev['id']}")).json()["status"] == "active"


async def test_unvetoed_device_is_deleted(admin_client, catalogue):
    dev = (await _device(admin_client, catalogue, "free")).json()
    assert (await admin_client.delete(f"{API}/devices/{dev['id']}")).status_code == 204


async def test_device_events_are_delivered(platform_factory):
    from platform_core import EventHandler

    seen: list[tuple[str, dict]] = []

    class Listener:
        @hookimpl
        def platform_event_handlers(self):
            async def handle(event) -> None:
                seen.append((event.name, event.payload))

            return [EventHandler("inventory.device.*", handle, name="listen")]

    platform = await platform_factory(enabled=["inventory"], extra_plugins={"listener": Listener()})
    client = await platform.client_for("admin")
    m = (await client.post(f"{API}/manufacturers", json={"name": "M"})).json()
    t = (
        await client.post(f"{API}/device-types", json={"manufacturer_id": m["id"], "model": "T"})
    ).json()
    dev = (
        await client.post(f"{API}/devices", json={"name": "e1", "device_type_id": t["id"]})
    ).json()
    await client.patch(f"{API}/devices/{dev['id']}", json={"status": "retired"})
    await client.delete(f"{API}/devices/{dev['id']}")
    await platform.deliver_events()
    names = sorted(name for name, _ in seen)
    assert names == [
        "inventory.device.created",
        "inventory.device.deleted",
        "inventory.device.retired",
        "inventory.device.updated",
    ]
    assert all(p.get("device_id") == dev["id"] for _, p in seen)


async def test_topology_walks_connections_to_the_chosen_depth(admin_client, catalogue):
    devs = [(await _device(admin_client, catalogue, n)).json() for n in ("a", "b", "c")]
    ports = [await _ports(admin_client, d["id"]) for d in devs]
    for left, right in ((0, 1), (1, 2)):
        body = {"a_port_id": ports[left]["eth1"]["id"], "b_port_id": ports[right]["eth0"]["id"]}
        assert (await admin_client.post(f"{API}/connections", json=body)).status_code == 201
    one = (await admin_client.get(f"{API}/devices/{devs[0]['id']}/topology?depth=1")).json()
    assert [d["name"] for d in one["devices"]] == ["a", "b"]
    two = (await admin_client.get(f"{API}/devices/{devs[0]['id']}/topology?depth=2")).json()
    assert [(d["name"], d["depth"]) for d in two["devices"]] == [("a", 0), ("b", 1), ("c", 2)]
    assert {(lk["a_port"], lk["b_port"]) for lk in two["links"]} == {("eth1", "eth0")}
    assert len(two["links"]) == 2


async def test_port_path_reaches_the_far_end(admin_client, catalogue):
    a = (await _device(admin_client, catalogue, "a")).json()
    b = (await _device(admin_client, catalogue, "b")).json()
    pa, pb = await _ports(admin_client, a["id"]), await _ports(admin_client, b["id"])
    body = {"a_port_id": pa["eth0"]["id"], "b_port_id": pb["eth1"]["id"]}
    await admin_client.post(f"{API}/connections", json=body)
    path = (await admin_client.get(f"{API}/ports/{pa['eth0']['id']}/path")).json()
    assert path["complete"] is True
    assert [(h["device"], h["port"]) for h in path["hops"]] == [("a", "eth0"), ("b", "eth1")]
    lonely = (await admin_client.get(f"{API}/ports/{pa['eth1']['id']}/path")).json()
    assert lonely["complete"] is False and len(lonely["hops"]) == 1


async def test_deleting_a_device_removes_its_connections(admin_client, catalogue):
    a = (await _device(admin_client, catalogue, "a")).json()
    b = (await _device(admin_client, catalogue, "b")).json()
    pa, pb = await _ports(admin_client, a["id"]), await _ports(admin_client, b["id"])
    body = {"a_port_id": pa["eth0"]["id"], "b_port_id": pb["eth0"]["id"]}
    conn = (await admin_client.post(f"{API}/connections", json=body)).json()
    await admin_client.delete(f"{API}/devices/{a['id']}")
    assert (await admin_client.get(f"{API}/connections/{conn['id']}")).status_code == 404
    assert (await _ports(admin_client, b["id"]))["eth0"]["connection_id"] is None


async def test_duplicate_device_name_is_409_naming_name(admin_client, catalogue):
    await _device(admin_client, catalogue, "a")
    r = await _device(admin_client, catalogue, "a")
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"


async def test_location_cannot_move_below_itself(admin_client, catalogue):
    site, room = catalogue["site"]["id"], catalogue["room"]["id"]
    r = await admin_client.patch(f"{API}/locations/{site}", json={"parent_id": room})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parent_id"


class BrokenVetoer:
    """An in-test plugin whose veto check raises (say, its database is unreachable)."""

    @hookimpl
    async def inventory_device_delete_veto(self, device, session):
        raise RuntimeError("bookings table unreachable")


async def test_a_raising_veto_refuses_and_is_logged_with_its_plugin(platform_factory, caplog):
    import logging

    platform = await platform_factory(
        enabled=["inventory"], extra_plugins={"broken": BrokenVetoer()}
    )
    admin = await platform.client_for("admin")
    m = (await admin.post(f"{API}/manufacturers", json={"name": "M"})).json()
    t = await admin.post(f"{API}/device-types", json={"manufacturer_id": m["id"], "model": "T"})
    dev = await admin.post(f"{API}/devices", json={"name": "x", "device_type_id": t.json()["id"]})
    with caplog.at_level(logging.WARNING, logger="platform_core.extension"):
        r = await admin.delete(f"{API}/devices/{dev.json()['id']}")
    assert r.status_code == 409, r.text
    assert r.json()["vetoes"] == [
        {"plugin": "broken", "reason": "its check failed (RuntimeError); refused to be safe"}
    ]
    assert "bookings table unreachable" not in r.text  # the detail stays in the log
    assert "bookings table unreachable" in caplog.text and "'broken'" in caplog.text
    assert (await admin.get(f"{API}/devices/{dev.json()['id']}")).status_code == 200
