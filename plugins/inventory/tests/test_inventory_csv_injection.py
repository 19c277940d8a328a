"""CSV export is safe to open in a spreadsheet, and an export re-imports to the same values.

Values are written straight to the tables, exported through the API, checked cell by cell,
then imported again. One-line fields (names, serials) get the values the core's ``Line``
type accepts; values with tabs and line breaks go into a custom field (multi-line text).
A row stored before that validation existed, with a CR in its name, exports escaped and
its re-import is refused naming the field (last test).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from typing import Any

from platform_inventory.models import Device, DeviceType, Location, Manufacturer, Rack
from sqlalchemy import select

from platform_core import CSV_FORMULA_PREFIXES

API = "/api/inventory"
CSV = {"content-type": "text/csv"}
JSON = {"content-type": "application/json"}

DANGEROUS = [p + 'HYPERLINK("http://evil","x")' for p in sorted(CSV_FORMULA_PREFIXES)] + [
    "=cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1)",
]
NASTY = [
    *DANGEROUS,
    "a\rb",  # a bare CR used to end the record on re-import
    "a\nb",
    "a\r\nb",
    "'quoted",
    "''",
    " leading",
    "trailing ",
    'say "hi", then go',
    "-5",  # a negative number stays a number
    "-0.25",
    "caf\u00e9 \U0001f600",
]


def _one_line(value: str) -> bool:
    return not any(c in value for c in "\t\r\n")


async def _set(platform: Any, table: Any, name_from: str, **values: Any) -> None:
    async with platform.ctx.db.session() as s:
        column = table.model if table is DeviceType else table.name
        row = (await s.execute(select(table).where(column == name_from))).scalar_one()
        for key, value in values.items():
            setattr(row, key, value)


async def _nasty_inventory(platform: Any, client: Any, catalogue: dict[str, Any]) -> None:
    """One device per nasty value (name, owner, serial), one in the rack; the catalogue's
    names dangerous too."""
    for i in range(len(NASTY)):
        body = {
            "name": f"d{i}",
            "device_type_id": catalogue["type"]["id"],
            "custom_fields": {"owner": "x", "cores": -i},
        }
        if i == 0:
            body |= {"rack_id": catalogue["rack"]["id"], "position": 3}
        r = await client.post(f"{API}/devices", json=body)
        assert r.status_code == 201, r.text
    async with platform.ctx.db.session() as s:
        devices = list(await s.scalars(select(Device).order_by(Device.id)))
        for i, (device, value) in enumerate(zip(devices, NASTY, strict=True)):
            device.name = value if _one_line(value) else f"multi-line {i}"
            device.serial = value if _one_line(value) else None
            device.asset_tag = f"@tag{i}"
            device.custom_fields = dict(device.custom_fields) | {"owner": value}
    await _set(platform, Manufacturer, "Acme", name='+Acme, "Inc"')
    await _set(platform, DeviceType, "S1", model="-S1")
    await _set(platform, Location, "Room", name="=Room 1")
    await _set(platform, Rack, "R1", name=" @R1 ")


async def _devices(platform: Any) -> list[tuple[Any, ...]]:
    async with platform.ctx.db.session() as s:
        rows = await s.scalars(select(Device).order_by(Device.name))
        return [
            (d.name, d.serial, d.asset_tag, d.position, d.face, d.custom_fields, d.status)
            for d in rows
        ]


def _cells(exported: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(exported, newline="")))


def _is_plain_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return cell[1:].replace(".", "", 1).isdigit()


async def test_csv_export_escapes_every_formula_prefix(platform, admin_client, catalogue):
    await _nasty_inventory(platform, admin_client, catalogue)

    r = await admin_client.get(f"{API}/export", params={"format": "csv"})

    assert r.status_code == 200
    header, *rows = _cells(r.text)
    assert len(rows) == len(NASTY)
    names = [row[header.index("name")] for row in rows]
    owners = [row[header.index("cf_owner")] for row in rows]
    for value in DANGEROUS:
        assert "'" + value in owners, value
        if _one_line(value):
            assert "'" + value in names, value
    for row in rows:
        for cell in row:
            assert not cell or cell[0] not in CSV_FORMULA_PREFIXES or _is_plain_number(cell), row
    assert {row[header.index("manufacturer")] for row in rows} == {'\'+Acme, "Inc"'}
    assert {row[header.index("device_type")] for row in rows} == {"'-S1"}
    assert "'=Room 1" in {row[header.index("location")] for row in rows}
    assert "' @R1 " in {row[header.index("rack")] for row in rows}
    assert "-5" in names and "-0.25" in names  # numbers are left alone


async def test_csv_export_reimports_exactly_into_another_database(
    platform, platform_factory, admin_client, catalogue
):
    await _nasty_inventory(platform, admin_client, catalogue)
    exported = (await admin_client.get(f"{API}/export", params={"format": "csv"})).text
    doc = (await admin_client.get(f"{API}/export", params={"format": "json"})).json()
    fresh = await platform_factory(enabled=["inventory"])
    client = await fresh.client_for("admin")
    catalogue_only = {k: v for k, v in doc.items() if k != "devices"}
    assert (await client.post(f"{API}/import", json=catalogue_only)).status_code == 200

    r = await client.post(f"{API}/import", content=exported.encode(), headers=CSV)

    assert r.status_code == 200, r.text
    assert r.json()["created"] == len(NASTY)
    assert await _devices(fresh) == await _devices(platform)


async def test_reimporting_a_csv_export_with_ids_changes_nothing(platform, admin_client, catalogue):
    await _nasty_inventory(platform, admin_client, catalogue)
    before = await _devices(platform)
    exported = (await admin_client.get(f"{API}/export", params={"format": "csv", "ids": True})).text

    r = await admin_client.post(f"{API}/import", content=exported.encode(), headers=CSV)

    assert r.status_code == 200, r.text
    assert (r.json()["updated"], r.json()["created"]) == (len(NASTY), 0)
    assert await _devices(platform) == before


async def test_json_export_reimports_the_same_values(
    platform, platform_factory, admin_client, catalogue
):
    await _nasty_inventory(platform, admin_client, catalogue)
    exported = (await admin_client.get(f"{API}/export", params={"format": "json"})).text
    fresh = await platform_factory(enabled=["inventory"])
    client = await fresh.client_for("admin")

    r = await client.post(f"{API}/import", content=exported.encode(), headers=JSON)

    assert r.status_code == 200, r.text
    assert await _devices(fresh) == await _devices(platform)


async def test_import_reads_a_spreadsheet_escaped_cell_without_its_quote(
    platform, admin_client, catalogue
):
    text = "name,manufacturer,device_type,cf_owner,cf_cores\n'=x,Acme,S1,''a,'-3\n"

    r = await admin_client.post(f"{API}/import", content=text.encode(), headers=CSV)

    assert r.status_code == 200, r.text
    [(name, *_rest, custom, _status)] = await _devices(platform)
    assert name == "=x" and custom == {"owner": "'a", "cores": -3}


async def test_cli_export_is_escaped_and_reimports(platform_factory, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    platform = await platform_factory(enabled=["inventory"], database_url=url)
    client = await platform.client_for("admin")
    m = (await client.post(f"{API}/manufacturers", json={"name": "Acme"})).json()
    t = await client.post(f"{API}/device-types", json={"manufacturer_id": m["id"], "model": "S1"})
    for name in ("=1+2", "a-b"):
        body = {"name": "tmp", "device_type_id": t.json()["id"]}
        dev = (await client.post(f"{API}/devices", json=body)).json()
        async with platform.ctx.db.session() as s:
            (await s.get(Device, dev["id"])).name = name
    config = tmp_path / "plugins.toml"
    config.write_text(
        f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\n\n'
        '[plugins]\nenabled = ["inventory"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
    env["PLATFORM_CONFIG"] = str(config)
    out = tmp_path / "out.csv"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "platformctl", "inventory", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    exp = await asyncio.to_thread(cli, "export", "-o", str(out), "--ids")
    assert exp.returncode == 0, exp.stderr
    text = out.read_bytes().decode()
    assert [row[1] for row in _cells(text)[1:]] == ["'=1+2", "a-b"]
    imp = await asyncio.to_thread(cli, "import", str(out))
    assert imp.returncode == 0 and "updated 2" in imp.stdout, imp.stderr
    assert sorted(d[0] for d in await _devices(platform)) == ["=1+2", "a-b"]


async def test_a_legacy_name_with_a_cr_exports_escaped_and_its_reimport_names_the_field(
    platform, admin_client, catalogue
):
    body = {"name": "tmp", "device_type_id": catalogue["type"]["id"]}
    r = await admin_client.post(f"{API}/devices", json=body | {"custom_fields": {"owner": "x"}})
    assert r.status_code == 201, r.text
    async with platform.ctx.db.session() as s:
        (await s.get(Device, r.json()["id"])).name = "=a\rb"
    exported = (await admin_client.get(f"{API}/export", params={"format": "csv"})).text
    header, *rows = _cells(exported)
    assert [row[header.index("name")] for row in rows] == ["'=a\rb"]  # one record, escaped

    r = await admin_client.post(f"{API}/import", content=exported.encode(), headers=CSV)

    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "name", r.json()
    assert "control character U+000D" in r.json()["errors"][0]["message"]
