"""Import and export: all or nothing, full reports, bad files, round trip, CLI, migrations."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from platform_inventory.models import InventoryBase

API = "/api/inventory"
CSV = {"content-type": "text/csv"}
JSON = {"content-type": "application/json"}
HEADER = (
    "name,manufacturer,device_type,rack,location,position,tags,ports,connections,"
    "cf_owner,cf_cores\n"
)


async def _import(client, text, *, dry_run=False, headers=CSV):
    body = text.encode() if isinstance(text, str) else text
    params = {"dry_run": "true"} if dry_run else {}
    return await client.post(f"{API}/import", content=body, headers=headers, params=params)


async def _count(client):
    return len((await client.get(f"{API}/devices", params={"limit": 500})).json()["items"])


async def test_import_creates_devices_connections_and_custom_fields(admin_client, catalogue):
    text = HEADER + (
        "a,Acme,S1,R1,Room,1,prod;web,,eth0->b:eth1,alice,8\nb,Acme,S1,,,,,eth0;eth1;mgmt,,bob,\n"
    )
    r = await _import(admin_client, text)
    assert r.status_code == 200, r.text
    assert r.json() | {"request_id": None} == {
        "dry_run": False,
        "created": 2,
        "updated": 0,
        "connections": 1,
        "request_id": None,
    }
    a = (await admin_client.get(f"{API}/devices", params={"q": "a"})).json()["items"][0]
    assert a["custom_fields"] == {"owner": "alice", "cores": 8} and a["tags"] == ["prod", "web"]
    assert a["position"] == 1
    path = await admin_client.get(f"{API}/connections", params={"device": a["id"]})
    assert len(path.json()["items"]) == 1


async def test_import_with_bad_rows_reports_every_one_and_writes_nothing(admin_client, catalogue):
    text = HEADER + (
        "ok,Acme,S1,,,,,,,alice,\n"
        "bad-type,Acme,Nope,,,,,,,alice,\n"
        "ok,Acme,S1,,,,,,,alice,\n"
        "no-owner,Acme,S1,,,,,,,,\n"
        "bad-cores,Acme,S1,,,,,,,x,many\n"
    )
    r = await _import(admin_client, text)
    assert r.status_code == 422
    issues = {(e["line"], e["field"]) for e in r.json()["errors"]}
    assert issues == {
        (3, "device_type"),
        (4, "name"),
        (5, "cf_owner"),
        (6, "cf_cores"),
    }
    assert "line 2" in next(e["message"] for e in r.json()["errors"] if e["line"] == 4)
    assert await _count(admin_client) == 0


async def test_import_reports_rack_conflict_inside_the_file(admin_client, catalogue):
    text = HEADER + "a,Acme,S1,R1,Room,1,,,,x,\nb,Acme,S1,R1,Room,2,,,,x,\n"
    r = await _import(admin_client, text)
    assert r.status_code == 422
    [err] = r.json()["errors"]
    assert (err["line"], err["field"]) == (3, "position") and "line 2" in err["message"]


async def test_import_dry_run_writes_nothing(admin_client, catalogue):
    r = await _import(admin_client, HEADER + "a,Acme,S1,,,,,,,x,\n", dry_run=True)
    assert r.status_code == 200 and r.json()["dry_run"] is True and r.json()["created"] == 1
    assert await _count(admin_client) == 0


async def test_import_row_with_id_updates_that_device(admin_client, catalogue):
    await _import(admin_client, HEADER + "a,Acme,S1,,,,,,,x,\n")
    dev = (await admin_client.get(f"{API}/devices")).json()["items"][0]
    text = f"id,name,manufacturer,device_type,status,cf_owner\n{dev['id']},a2,Acme,S1,offline,y\n"
    r = await _import(admin_client, text)
    assert r.json()["updated"] == 1 and r.json()["created"] == 0
    after = (await admin_client.get(f"{API}/devices/{dev['id']}")).json()
    assert (after["name"], after["status"], after["custom_fields"]["owner"]) == (
        "a2",
        "offline",
        "y",
    )


async def test_import_changes_share_one_request_id(admin_client, catalogue):
    text = HEADER + "a,Acme,S1,,,,,,,x,\nb,Acme,S1,,,,,,,x,\n"
    r = await _import(admin_client, text, headers=CSV | {"X-Request-ID": "bulk-42"})
    assert r.json()["request_id"] == "bulk-42"
    changes = (await admin_client.get(f"{API}/changes", params={"request_id": "bulk-42"})).json()
    assert [(c["object_type"], c["action"]) for c in changes["items"]] == [("device", "create")] * 2


async def test_import_of_non_utf8_file_is_a_clear_422(admin_client, catalogue):
    body = (HEADER + "caf\u00e9,Acme,S1,,,,,,,x,\n").encode("latin-1")
    r = await _import(admin_client, body)
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"]
    assert r.json()["errors"][0]["line"] == 2
    assert await _count(admin_client) == 0


async def test_import_without_required_columns_is_422_naming_them(admin_client, catalogue):
    r = await _import(admin_client, "name,colour\na,red\n")
    assert r.status_code == 422
    fields = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert fields == {
        "manufacturer": "missing column",
        "device_type": "missing column",
        "colour": "unknown column",
    }


async def test_import_short_row_is_blamed_on_its_missing_cells(admin_client, catalogue):
    """A row with fewer cells than the header names the absent columns, not device_type."""
    text = "name,manufacturer,device_type,cf_owner\nok,Acme,S1,x\nshort,Acme\n"
    r = await _import(admin_client, text)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(3, "device_type"), (3, "cf_owner")]
    assert errors[0]["message"] == "missing cell: the row has 2 of the header's 4 cells"
    assert "fewer cells than the header" in r.json()["detail"]
    assert "unknown device type" not in r.text
    assert await _count(admin_client) == 0


async def test_import_refuses_control_characters_naming_line_and_column(admin_client, catalogue):
    text = HEADER + "a\x00b,Acme,S1,,,,ok;t\x01,,,x,\nc,Acme,S1,,,,,,,\x85,\n"
    r = await _import(admin_client, text)
    assert r.status_code == 422, r.text
    assert {(e["line"], e["field"]) for e in r.json()["errors"]} == {
        (2, "name"),
        (2, "tags"),
        (3, "cf_owner"),
    }
    device = {"manufacturer": "Acme", "device_type": "S1", "custom_fields": {"owner": "x"}}
    rows = [device | {"name": "j1", "tags": ["\ud800"]}, device | {"name": "j2"}]
    doc = {"manufacturers": [{"name": "New\x00Co"}], "devices": rows}
    r = await _import(admin_client, json.dumps(doc).encode(), headers=JSON)
    assert r.status_code == 422, r.text
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(1, "manufacturers.1")]
    del doc["manufacturers"]
    r = await _import(admin_client, json.dumps(doc).encode(), headers=JSON)
    assert r.status_code == 422, r.text
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(1, "tags")]
    assert await _count(admin_client) == 0


async def test_import_over_the_plugin_limit_is_413(platform_factory):
    platform = await platform_factory(
        enabled=["inventory"], settings={"inventory": {"max_import_bytes": 100}}
    )
    client = await platform.client_for("admin")
    r = await _import(client, HEADER + "x" * 200)
    assert r.status_code == 413 and "max_import_bytes" in r.json()["detail"]


async def test_import_over_the_core_body_limit_is_413(admin_client, catalogue):
    r = await _import(admin_client, b"x" * (2 * 1024 * 1024))
    assert r.status_code == 413


async def test_import_of_another_content_type_is_415(admin_client, catalogue):
    r = await _import(admin_client, "a", headers={"content-type": "text/plain"})
    assert r.status_code == 415


async def test_import_json_list_of_rows(admin_client, catalogue):
    rows = [
        {"name": "j", "manufacturer": "Acme", "device_type": "S1", "custom_fields": {"owner": "z"}}
    ]
    r = await _import(admin_client, json.dumps(rows), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert await _count(admin_client) == 1


async def _populate(client, catalogue):
    text = HEADER + (
        "a,Acme,S1,R1,Room,1,prod,eth0;eth1,eth0->b:eth1;eth1->c:eth0,alice,8\n"
        "b,Acme,S1,R1,Room,5,,eth0;eth1,,bob,\n"
        'c,Acme,S1,,Site,,"x;y",eth0;eth1;extra,,"carol, jr",\n'
    )
    assert (await _import(client, text)).status_code == 200


async def _state(client):
    devices = (await client.get(f"{API}/devices", params={"limit": 500})).json()["items"]
    by_id = {d["id"]: d["name"] for d in devices}
    out = {}
    for d in devices:
        ports = (await client.get(f"{API}/devices/{d['id']}/ports")).json()
        out[d["name"]] = (
            d["status"],
            d["position"],
            d["tags"],
            d["custom_fields"],
            [p["name"] for p in ports],
        )
    links = set()
    for c in (await client.get(f"{API}/connections")).json()["items"]:
        path = (await client.get(f"{API}/ports/{c['a_port_id']}/path")).json()
        links.add(tuple((h["device"], h["port"]) for h in path["hops"]))
    return out, links, by_id


async def test_json_export_then_import_into_an_empty_database_round_trips(
    platform_factory, admin_client, catalogue
):
    await _populate(admin_client, catalogue)
    exported = (await admin_client.get(f"{API}/export", params={"format": "json"})).text
    fresh = await platform_factory(enabled=["inventory"])
    client = await fresh.client_for("admin")
    r = await _import(client, exported, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    before, after = await _state(admin_client), await _state(client)
    assert before[0] == after[0] and before[1] == after[1] and len(after[1]) == 2


async def test_csv_export_then_import_round_trips_into_a_catalogue_only_database(
    platform_factory, admin_client, catalogue
):
    await _populate(admin_client, catalogue)
    exported = (await admin_client.get(f"{API}/export", params={"format": "csv"})).text
    assert exported.splitlines()[0].endswith("cf_bought,cf_cores,cf_owner,cf_pci,cf_tier")
    fresh = await platform_factory(enabled=["inventory"])
    client = await fresh.client_for("admin")
    json_doc = (await admin_client.get(f"{API}/export", params={"format": "json"})).json()
    catalogue_only = {k: v for k, v in json_doc.items() if k != "devices"}
    r = await _import(
        client, json.dumps(catalogue_only), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200, r.text
    assert (await _import(client, exported)).status_code == 200
    before, after = await _state(admin_client), await _state(client)
    assert before[0] == after[0] and before[1] == after[1]


async def test_reimporting_an_export_with_ids_changes_nothing(admin_client, catalogue):
    await _populate(admin_client, catalogue)
    before = await _state(admin_client)
    exported = (await admin_client.get(f"{API}/export", params={"format": "csv", "ids": True})).text
    r = await _import(admin_client, exported)
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == 3 and r.json()["created"] == 0
    assert await _state(admin_client) == before


async def test_migration_matches_the_models(platform):
    def compare(conn):
        ctx = MigrationContext.configure(conn)
        diff = compare_metadata(ctx, InventoryBase.metadata)
        return [d for d in diff if "inventory_" in repr(d)]

    async with platform.ctx.db.engine.connect() as conn:
        diff = await conn.run_sync(compare)
    assert diff == []


def _config(tmp_path, url):
    path = tmp_path / "plugins.toml"
    path.write_text(
        f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\n\n'
        '[plugins]\nenabled = ["inventory"]\n'
    )
    return path


def _platformctl(config, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
    env["PLATFORM_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "platformctl", "inventory", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


async def test_cli_import_and_export_go_through_the_service(platform_factory, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    platform = await platform_factory(enabled=["inventory"], database_url=url)
    client = await platform.client_for("admin")
    m = (await client.post(f"{API}/manufacturers", json={"name": "Acme"})).json()
    await client.post(f"{API}/device-types", json={"manufacturer_id": m["id"], "model": "S1"})
    config = _config(tmp_path, url)
    source = tmp_path / "in.csv"
    source.write_text("name,manufacturer,device_type\ncli-1,Acme,S1\ncli-2,Acme,S1\n")
    dry = await asyncio.to_thread(_platformctl, config, "import", str(source), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would create 2" in dry.stdout
    done = await asyncio.to_thread(_platformctl, config, "import", str(source))
    assert done.returncode == 0 and "created 2" in done.stdout
    out = tmp_path / "out.json"
    exp = await asyncio.to_thread(
        _platformctl, config, "export", "-o", str(out), "--format", "json"
    )
    assert exp.returncode == 0, exp.stderr
    assert [d["name"] for d in json.loads(out.read_text())["devices"]] == ["cli-1", "cli-2"]


async def test_cli_import_of_a_bad_file_exits_1_with_the_report(platform_factory, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    await platform_factory(enabled=["inventory"], database_url=url)
    source = tmp_path / "in.csv"
    source.write_text("name,manufacturer,device_type\nx,Nobody,Nothing\n")
    r = await asyncio.to_thread(_platformctl, _config(tmp_path, url), "import", str(source))
    assert r.returncode == 1 and "line 2: device_type" in r.stderr
