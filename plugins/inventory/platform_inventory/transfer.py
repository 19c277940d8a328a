"""Import and export of devices (CSV or JSON), all or nothing; no HTTP here.

CSV: one row per device. Columns ``name``, ``manufacturer`` and ``device_type`` are
required; optional ``id``, ``status``, ``serial``, ``asset_tag``, ``location``, ``rack``,
``position``, ``face``, ``tags`` (``;``-separated), ``ports`` (``;``-separated),
``connections`` (``;``-separated ``local_port->peer_device:peer_port``, listed on the row of
the device holding the connection's ``a`` end) and one ``cf_<name>`` column per custom field.
Written and read with :mod:`platform_core.csvio`: a cell a spreadsheet would run as a
formula (``=``, ``+``, ``-``, ``@``, tab, CR first) is exported with a leading ``'``, which
the import removes, so an export re-imports to the same values.

JSON: ``{"devices": [row, ...]}`` (or a bare list of rows) with the same keys (lists
allowed for ``tags``, ``ports``, ``connections``; ``custom_fields`` as an object), plus the
optional catalogue sections ``manufacturers``, ``device_types``, ``locations`` and
``racks`` which the export writes and an import creates when missing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    MAX_JSON_DEPTH,
    CsvFormatError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    csv_row,
    json_text_error,
    json_too_deep,
    publish,
    read_csv,
    text_error,
    utcnow,
)
from platform_inventory import service
from platform_inventory.events import ImportCompleted
from platform_inventory.models import (
    STATUSES,
    CableEnd,
    Change,
    Connection,
    CustomFieldValue,
    Device,
    DeviceTag,
    DeviceType,
    Location,
    Manufacturer,
    Port,
    Rack,
    RackUnit,
)

CONTENT_TYPES = ("text/csv", "application/json")
REQUIRED = ("name", "manufacturer", "device_type")
COLUMNS = (
    "id",
    "name",
    "manufacturer",
    "device_type",
    "status",
    "serial",
    "asset_tag",
    "location",
    "rack",
    "position",
    "face",
    "tags",
    "ports",
    "connections",
)
MAX_ISSUES = 1000
Progress = Callable[[int, int], None]


@dataclass
class ImportResult:
    """What an import did (or would do, for a dry run)."""

    dry_run: bool
    created: int = 0
    updated: int = 0
    connections: int = 0
    request_id: str | None = None


@dataclass
class _Row:
    line: int
    raw: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    ports: list[str] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    units: list[tuple[int, str, int]] = field(default_factory=list)


class _Issues:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, line: int, field_: str, message: str) -> None:
        if len(self.items) < MAX_ISSUES:
            self.items.append({"line": line, "field": field_, "message": message})

    def raise_if_any(self, what: str = "import refused") -> None:
        if self.items:
            lines = len({i["line"] for i in self.items})
            first = self.items[0]
            raise ValidationFailed(
                f"{what}: {lines} bad row(s), nothing was written (first: line "
                f"{first['line']}, {first['field']}: {first['message']})",
                errors=self.items,
            )


def _split(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(";") if v.strip()]


def decode(content: bytes, content_type: str, max_bytes: int) -> list[_Row] | dict[str, Any]:
    """Check size, media type and encoding; the parsed CSV rows or JSON document."""
    if len(content) > max_bytes:
        raise PayloadTooLarge(
            f"the import is {len(content)} bytes; the limit is {max_bytes} "
            "([plugins.inventory] max_import_bytes)"
        )
    media = content_type.split(";")[0].strip().lower()
    if media not in CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"content type {media or '(none)'!r} is not accepted; use {', '.join(CONTENT_TYPES)}"
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ValidationFailed(
            f"the file is not UTF-8 text (invalid byte at line {line}); save it as UTF-8",
            errors=[{"line": line, "field": "file", "message": "not valid UTF-8"}],
        ) from exc
    if media == "application/json":
        if json_too_deep(content):  # json.loads would recurse until a RecursionError
            message = f"nested too deeply: more than {MAX_JSON_DEPTH} levels"
            raise ValidationFailed(
                f"the file is not a usable JSON import: {message}",
                errors=[{"line": 1, "field": "file", "message": message}],
            )
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"the file is not valid JSON: {exc.msg} at line {exc.lineno}",
                errors=[{"line": exc.lineno, "field": "file", "message": exc.msg}],
            ) from exc
        if isinstance(doc, list):
            doc = {"devices": doc}
        if not isinstance(doc, dict) or not isinstance(doc.get("devices", []), list):
            raise ValidationFailed(
                "a JSON import is a list of devices or an object with a 'devices' list",
                errors=[{"line": 1, "field": "devices", "message": "expected a list"}],
            )
        _check_catalogue_text(doc)
        return doc
    return _read_csv(text)


def _check_catalogue_text(doc: dict[str, Any]) -> None:
    """Refuse control characters and unpaired surrogates in the catalogue sections."""
    errors = []
    for section in ("manufacturers", "device_types", "locations", "racks"):
        items = doc.get(section)
        for i, item in enumerate(items if isinstance(items, list) else [], start=1):
            bad = json_text_error(item, multiline=False)
            if bad is not None:
                errors.append({"line": i, "field": f"{section}.{i}", "message": bad[1]})
    if errors:
        first = errors[0]
        raise ValidationFailed(
            f"import refused: {first['field']}: {first['message']}", errors=errors[:MAX_ISSUES]
        )


def _bad_text(key: str, value: Any) -> str | None:
    """Why a row's value is refused as text (None when it is fine).

    Cells are one line; a custom field's text (``cf_...``) may hold line breaks.
    """
    if isinstance(value, str):
        error = text_error(value, multiline=key.startswith("cf_"))
    elif isinstance(value, list):
        error = json_text_error(value, multiline=False)
    else:
        error = json_text_error(value, multiline=True)
    return None if error is None else error[1]


def _read_csv(text: str) -> list[_Row]:
    rows: list[_Row] = []
    short: list[dict[str, Any]] = []
    try:
        reader = read_csv(text)
        header = reader.header
        missing = [c for c in REQUIRED if c not in header]
        unknown = [c for c in header if c not in COLUMNS and not c.startswith("cf_")]
        dupes = sorted({c for c in header if header.count(c) > 1})
        errors = [{"line": 1, "field": c, "message": "missing column"} for c in missing]
        errors += [{"line": 1, "field": c, "message": "unknown column"} for c in unknown]
        errors += [{"line": 1, "field": c, "message": "duplicate column"} for c in dupes]
        if errors:
            raise ValidationFailed(
                "bad CSV header: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                errors=errors,
            )
        for line, raw in reader:
            absent = reader.missing(raw)
            if absent:  # blame the short row, not the first check its empty cells fail
                cells = len(header) - len(absent)
                message = f"missing cell: the row has {cells} of the header's {len(header)} cells"
                short += [{"line": line, "field": k, "message": message} for k in absent]
                continue
            rows.append(_Row(line, dict(raw)))
    except CsvFormatError as exc:
        raise ValidationFailed(
            f"bad CSV: {exc}",
            errors=[{"line": exc.line, "field": "file", "message": exc.message}],
        ) from exc
    if short:
        first = short[0]
        lines = len({e["line"] for e in short})
        raise ValidationFailed(
            f"bad CSV: {lines} row(s) with fewer cells than the header (first: line "
            f"{first['line']}, {first['message']}: {', '.join(_absent(short, first['line']))})",
            errors=short[:MAX_ISSUES],
        )
    return rows


def _absent(errors: list[dict[str, Any]], line: int) -> list[str]:
    return [e["field"] for e in errors if e["line"] == line]


def _json_rows(doc: dict[str, Any], issues: _Issues) -> list[_Row]:
    rows = []
    for i, item in enumerate(doc.get("devices", []), start=1):
        if not isinstance(item, dict):
            issues.add(i, "devices", "each device is an object")
            continue
        raw = {k: v for k, v in item.items() if k != "custom_fields"}
        cfs = item.get("custom_fields") or {}
        if not isinstance(cfs, dict):
            issues.add(i, "custom_fields", "must be an object")
            cfs = {}
        raw.update({f"cf_{k}": v for k, v in cfs.items()})
        for key in raw:
            if key not in COLUMNS and not key.startswith("cf_"):
                issues.add(i, key, "unknown field")
        rows.append(_Row(i, raw))
    return rows


async def _import_catalogue(
    session: AsyncSession, doc: dict[str, Any], audit: service.Audit, issues: _Issues
) -> None:
    """Create the manufacturers, device types, locations and racks a JSON file lists."""
    makers = {m.name: m for m in (await session.execute(select(Manufacturer))).scalars()}
    for i, item in enumerate(doc.get("manufacturers") or [], start=1):
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            issues.add(i, f"manufacturers.{i}", "a name of 1 to 100 characters")
        elif name not in makers:
            makers[name] = await service.create_manufacturer(session, name, audit)
    types = {
        (t.manufacturer_id, t.model) for t in (await session.execute(select(DeviceType))).scalars()
    }
    for i, item in enumerate(doc.get("device_types") or [], start=1):
        maker = makers.get(item.get("manufacturer", "")) if isinstance(item, dict) else None
        if maker is None or not isinstance(item.get("model"), str):
            issues.add(i, f"device_types.{i}", "needs a known manufacturer and a model")
            continue
        if (maker.id, item["model"]) in types:
            continue
        data = {k: item[k] for k in ("u_height", "full_depth", "port_names") if k in item}
        data.update(manufacturer_id=maker.id, model=item["model"])
        data["custom_fields"] = item.get("custom_fields") or []
        try:
            await service.create_device_type(session, data, audit)
        except ValidationFailed as exc:
            issues.add(i, f"device_types.{i}", exc.detail)
        types.add((maker.id, item["model"]))
    locations = {loc.name: loc for loc in (await session.execute(select(Location))).scalars()}
    for i, item in enumerate(doc.get("locations") or [], start=1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            issues.add(i, f"locations.{i}", "needs a name")
            continue
        if item["name"] in locations:
            continue
        parent = locations.get(item["parent"]) if item.get("parent") else None
        if item.get("parent") and parent is None:
            issues.add(i, f"locations.{i}.parent", "unknown (list parents first)")
            continue
        data = {"name": item["name"], "kind": item.get("kind") or "site"}
        data["parent_id"] = parent.id if parent else None
        locations[item["name"]] = await service.create_location(session, data, audit)
    racks = {(r.location_id, r.name) for r in (await session.execute(select(Rack))).scalars()}
    for i, item in enumerate(doc.get("racks") or [], start=1):
        loc = locations.get(item.get("location", "")) if isinstance(item, dict) else None
        if loc is None or not isinstance(item.get("name"), str):
            issues.add(i, f"racks.{i}", "needs a name and a known location")
            continue
        if (loc.id, item["name"]) in racks:
            continue
        data = {"name": item["name"], "location_id": loc.id, "u_height": item.get("u_height", 42)}
        await service.create_rack(session, data, audit)
        racks.add((loc.id, item["name"]))


async def import_devices(
    session: AsyncSession,
    content: bytes,
    content_type: str,
    *,
    audit: service.Audit,
    dry_run: bool = False,
    max_bytes: int,
    progress: Progress | None = None,
) -> ImportResult:
    """Import devices from CSV or JSON: every row valid, or nothing written.

    A row with ``id`` updates that device, one without creates one. ``ValidationFailed``
    lists every bad row (``line``, ``field``, ``message``); with ``dry_run`` everything is
    checked and nothing is written. Every change is recorded under ``audit.request_id``.
    """
    parsed = decode(content, content_type, max_bytes)
    nested = await session.begin_nested() if dry_run else None
    try:
        rows, plan = await _validate(session, parsed, audit)
    finally:
        if nested is not None:
            await nested.rollback()
    result = ImportResult(dry_run=dry_run, request_id=audit.request_id)
    result.created = sum(1 for r in rows if r.values.get("id") is None)
    result.updated = len(rows) - result.created
    result.connections = sum(len(r.links) for r in rows)
    if dry_run:
        return result
    await plan.write(session, rows, audit, progress)
    publish(
        session,
        ImportCompleted(
            created=result.created,
            updated=result.updated,
            connections=result.connections,
            request_id=audit.request_id,
        ),
        actor=audit.actor,
    )
    return result


async def _validate(
    session: AsyncSession, parsed: list[_Row] | dict[str, Any], audit: service.Audit
) -> tuple[list[_Row], _Planner]:
    issues = _Issues()
    if isinstance(parsed, dict):
        await _import_catalogue(session, parsed, audit, issues)
        issues.raise_if_any()
        rows = _json_rows(parsed, issues)
    else:
        rows = parsed
    plan = await _Planner.load(session)
    for row in rows:
        plan.check(row, issues)
    plan.check_links(rows, issues)
    issues.raise_if_any()
    return rows, plan


class _Planner:
    """Lookups of the current inventory, to validate a whole file before writing."""

    def __init__(self) -> None:
        self.types: dict[tuple[str, str], DeviceType] = {}
        self.locations: dict[str, int] = {}
        self.racks: dict[tuple[int, str], Rack] = {}
        self.by_name: dict[str, int] = {}
        self.by_id: dict[int, Device] = {}
        self.serials: dict[tuple[int, str], int] = {}
        self.tags: dict[str, int] = {}
        self.units: dict[tuple[int, str, int], int] = {}
        self.names_in_file: dict[str, int] = {}
        self.ports: dict[int, set[str]] = {}
        self.connected: dict[tuple[int, str], tuple[int, str]] = {}

    @classmethod
    async def load(cls, session: AsyncSession) -> _Planner:
        """Read what validation needs: types, locations, racks, device keys, rack units."""
        plan = cls()
        makers = dict((await session.execute(select(Manufacturer.id, Manufacturer.name))).all())
        for t in (await session.execute(select(DeviceType))).scalars():
            plan.types[(makers[t.manufacturer_id], t.model)] = t
        plan.locations = {
            n: i for i, n in (await session.execute(select(Location.id, Location.name))).all()
        }
        for r in (await session.execute(select(Rack))).scalars():
            plan.racks[(r.location_id, r.name)] = r
        for d in (await session.execute(select(Device))).scalars():
            plan.by_name[d.name] = d.id
            plan.by_id[d.id] = d
            if d.serial:
                plan.serials[(d.manufacturer_id, d.serial)] = d.id
            if d.asset_tag:
                plan.tags[d.asset_tag] = d.id
        for u in (await session.execute(select(RackUnit))).scalars():
            plan.units[(u.rack_id, u.face, u.unit)] = u.device_id
        return plan

    def check(self, row: _Row, issues: _Issues) -> None:
        """Validate one row against the inventory and the rows before it."""
        raw, line, v = row.raw, row.line, row.values
        for column, value in raw.items():
            bad = _bad_text(column, value)
            if bad is not None:
                issues.add(line, column, bad)
                raw[column] = None  # checked no further, never stored (the import is refused)

        def text(key: str, limit: int = 100) -> str | None:
            value = raw.get(key)
            if value is None or value == "":
                return None
            # Kept exactly: the CSV reader already trimmed unescaped cells, and an escaped
            # cell (or a JSON string) is the stored value, surrounding spaces included.
            value = str(value)
            if len(value) > limit:
                issues.add(line, key, f"at most {limit} characters")
            return value

        name = text("name")
        if not name:
            issues.add(line, "name", "required")
        elif name in self.names_in_file:
            issues.add(
                line, "name", f"duplicate name in the file (line {self.names_in_file[name]})"
            )
        else:
            self.names_in_file[name] = line
        v["name"] = name
        device_id = None
        if raw.get("id") not in (None, ""):
            try:
                device_id = int(raw["id"])
            except (TypeError, ValueError):
                issues.add(line, "id", "must be an integer")
            else:
                if device_id not in self.by_id:
                    issues.add(line, "id", f"device {device_id} does not exist")
                    device_id = None
        v["id"] = device_id
        if name and name in self.by_name and self.by_name[name] != device_id:
            issues.add(
                line,
                "name",
                f"device {name!r} already exists (id {self.by_name[name]}); "
                "give its id to update it",
            )
        dtype = self.types.get((text("manufacturer") or "", text("device_type") or ""))
        if dtype is None:
            issues.add(
                line,
                "device_type",
                f"unknown device type {raw.get('manufacturer')!r}/{raw.get('device_type')!r}",
            )
        status = text("status") or "active"
        if status not in STATUSES:
            issues.add(line, "status", f"must be one of {', '.join(STATUSES)}")
        v["status"] = status
        serial, tag = text("serial"), text("asset_tag")
        if serial and dtype is not None:
            key = (dtype.manufacturer_id, serial)
            other = self.serials.get(key)
            if other is not None and other != (device_id or -line):
                issues.add(line, "serial", f"serial {serial!r} already used for this manufacturer")
            self.serials[key] = device_id or -line
        if tag:
            other = self.tags.get(tag)
            if other is not None and other != (device_id or -line):
                issues.add(line, "asset_tag", f"asset tag {tag!r} already used")
            self.tags[tag] = device_id or -line
        v.update(serial=serial, asset_tag=tag)
        location_name, rack_name = text("location"), text("rack")
        location_id = self.locations.get(location_name) if location_name else None
        if location_name and location_id is None:
            issues.add(line, "location", f"unknown location {location_name!r}")
        rack = None
        if rack_name:
            rack = self.racks.get((location_id or 0, rack_name))
            if rack is None:
                issues.add(line, "rack", f"unknown rack {rack_name!r} in {location_name!r}")
        position = None
        if raw.get("position") not in (None, ""):
            try:
                position = int(raw["position"])
                if not 1 <= position <= 100:
                    raise ValueError
            except (TypeError, ValueError):
                issues.add(line, "position", "must be an integer from 1 to 100")
                position = None
            if not rack_name:
                issues.add(line, "position", "a position needs a rack")
        face = text("face")
        if face not in (None, "front", "rear"):
            issues.add(line, "face", "must be front or rear")
            face = None
        v.update(
            location_id=location_id,
            rack_id=rack.id if rack else None,
            position=position,
            face=face or ("front" if position else None),
        )
        tags = _split(raw.get("tags"))
        if any(len(t) > 50 for t in tags):
            issues.add(line, "tags", "a tag has at most 50 characters")
        v["tags"] = sorted(set(tags))
        row.ports = _split(raw.get("ports"))
        if any(len(p) > 64 for p in row.ports):
            issues.add(line, "ports", "a port name has at most 64 characters")
        for spec in _split(raw.get("connections")):
            local, sep, rest = spec.partition("->")
            peer, sep2, peer_port = rest.rpartition(":")
            if not (sep and sep2 and local and peer and peer_port):
                issues.add(line, "connections", f"{spec!r}: use port->device:port")
            else:
                row.links.append((local, peer, peer_port))
        if dtype is None:
            return
        v["device_type_id"], v["manufacturer_id"] = dtype.id, dtype.manufacturer_id
        if device_id is None:
            row.ports = list(dict.fromkeys([*(dtype.port_names or []), *row.ports]))
        cf = {k[3:]: val for k, val in raw.items() if k.startswith("cf_")}
        cf = {k: val for k, val in cf.items() if val not in (None, "")}
        defs = dtype.custom_fields or []
        values, errors = service.validate_custom_fields(defs, cf, from_text=True, prefix="cf_")
        for e in errors:
            issues.add(line, e["field"], e["message"])
        v["custom_fields"] = values
        if rack is not None and position is not None:
            try:
                wanted = service.units_needed(dtype, rack, position, v["face"])
            except ValidationFailed as exc:
                issues.add(line, "position", exc.extra["errors"][0]["message"])
                return
            me = device_id or -line
            taken = [(f, u) for f, u in wanted if self.units.get((rack.id, f, u), me) != me]
            if taken:
                occupants = sorted({self._label(self.units[(rack.id, f, u)]) for f, u in taken})
                issues.add(
                    line,
                    "position",
                    f"units {service.describe_units(taken)} of rack {rack.name!r} are occupied "
                    f"by {', '.join(occupants)}",
                )
            for f, u in wanted:
                self.units[(rack.id, f, u)] = me
            row.units = [(rack.id, f, u) for f, u in wanted]

    def _label(self, device_id: int) -> str:
        if device_id < 0:
            return f"line {-device_id} of the file"
        dev = self.by_id.get(device_id)
        return f"{dev.name!r} (id {device_id})" if dev else f"device {device_id}"

    def check_links(self, rows: list[_Row], issues: _Issues) -> None:
        """Validate the connections: both ports exist and each port is used once."""
        file_ports = {r.values.get("name"): r for r in rows if r.values.get("name")}
        used: dict[tuple[str, str], int] = {}
        for row in rows:
            for local, peer, peer_port in row.links:
                me = row.values.get("name") or ""
                if local not in row.ports:
                    issues.add(
                        row.line, "connections", f"port {local!r} is not in this row's ports"
                    )
                target = file_ports.get(peer)
                if target is None:
                    issues.add(row.line, "connections", f"device {peer!r} is not in the file")
                elif peer_port not in target.ports:
                    issues.add(row.line, "connections", f"{peer}:{peer_port} is not a port of it")
                for end in ((me, local), (peer, peer_port)):
                    if end in used:
                        issues.add(
                            row.line,
                            "connections",
                            f"port {end[0]}:{end[1]} is connected twice (line {used[end]})",
                        )
                    used[end] = row.line

    async def write(
        self,
        session: AsyncSession,
        rows: list[_Row],
        audit: service.Audit,
        progress: Progress | None,
        batch: int = 2000,
    ) -> None:
        """Write the validated rows in batches (one transaction: the caller's)."""
        now = utcnow()
        total = len(rows)
        ids: dict[str, int] = {}
        updates = [r for r in rows if r.values.get("id") is not None]
        creates = [r for r in rows if r.values.get("id") is None]
        changes: list[dict[str, Any]] = []
        fields = (
            "name",
            "device_type_id",
            "manufacturer_id",
            "status",
            "serial",
            "asset_tag",
            "location_id",
            "rack_id",
            "position",
            "face",
            "tags",
            "custom_fields",
        )
        if updates:
            upd_ids = [r.values["id"] for r in updates]
            for chunk in range(0, len(upd_ids), 500):
                part = upd_ids[chunk : chunk + 500]
                for model, column in (
                    (RackUnit, RackUnit.device_id),
                    (DeviceTag, DeviceTag.device_id),
                    (CustomFieldValue, CustomFieldValue.device_id),
                ):
                    await session.execute(delete(model).where(column.in_(part)))
            params = []
            for r in updates:
                before = service.snapshot(self.by_id[r.values["id"]])
                values = {k: r.values[k] for k in fields} | {
                    "id": r.values["id"],
                    "updated_at": now,
                }
                params.append(values)
                after = dict(before) | {k: service.common._jsonable(v) for k, v in values.items()}
                changes.append(self._change("update", r.values["id"], before, after, audit, now))
                ids[r.values["name"]] = r.values["id"]
            await session.execute(update(Device), params)
            if progress:
                progress(len(updates), total)
        for start in range(0, len(creates), batch):
            part = creates[start : start + batch]
            params = [
                {k: r.values[k] for k in fields} | {"created_at": now, "updated_at": now}
                for r in part
            ]
            result = await session.execute(
                insert(Device).returning(Device.id, sort_by_parameter_order=True), params
            )
            for r, new_id, p in zip(part, result.scalars().all(), params, strict=True):
                ids[r.values["name"]] = new_id
                after = {k: service.common._jsonable(v) for k, v in p.items()} | {"id": new_id}
                changes.append(self._change("create", new_id, None, after, audit, now))
            if progress:
                progress(len(updates) + start + len(part), total)
        await self._write_children(session, rows, ids, audit, now, changes)

    @staticmethod
    def _change(
        action: str, obj_id: int, before: Any, after: Any, audit: service.Audit, now: Any
    ) -> dict[str, Any]:
        return {
            "object_type": "device",
            "object_id": obj_id,
            "action": action,
            "before": before,
            "after": after,
            "actor": audit.actor,
            "request_id": audit.request_id,
            "created_at": now,
        }

    async def _write_children(
        self,
        session: AsyncSession,
        rows: list[_Row],
        ids: dict[str, int],
        audit: service.Audit,
        now: Any,
        changes: list[dict[str, Any]],
    ) -> None:
        tags, cfs, units, wanted_ports = [], [], [], {}
        for r in rows:
            dev = ids[r.values["name"]]
            tags += [{"device_id": dev, "tag": t} for t in r.values["tags"]]
            cfs += [
                {"device_id": dev, "name": k, "value": service.text_value(val)[:200]}
                for k, val in r.values["custom_fields"].items()
            ]
            units += [{"rack_id": a, "face": f, "unit": u, "device_id": dev} for a, f, u in r.units]
            dtype_ports = (
                self._type_ports(r.values["device_type_id"]) if r.values["id"] is None else []
            )
            wanted_ports[dev] = list(dict.fromkeys([*dtype_ports, *r.ports]))
        existing: dict[tuple[int, str], int] = {}
        upd = [d for d in ids.values() if d in self.by_id]
        for chunk in range(0, len(upd), 500):
            res = await session.execute(
                select(Port.device_id, Port.name, Port.id).where(
                    Port.device_id.in_(upd[chunk : chunk + 500])
                )
            )
            existing.update({(d, n): i for d, n, i in res.all()})
        new_ports = [
            {"device_id": d, "name": n}
            for d, names in wanted_ports.items()
            for n in names
            if (d, n) not in existing
        ]
        for model, params in ((DeviceTag, tags), (CustomFieldValue, cfs), (RackUnit, units)):
            for start in range(0, len(params), 5000):
                await session.execute(insert(model), params[start : start + 5000])
        for start in range(0, len(new_ports), 5000):
            part = new_ports[start : start + 5000]
            res = await session.execute(
                insert(Port).returning(Port.id, sort_by_parameter_order=True), part
            )
            for p, pid in zip(part, res.scalars().all(), strict=True):
                existing[cast(tuple[int, str], (p["device_id"], p["name"]))] = pid
        await self._write_links(session, rows, ids, existing, audit, now, changes)
        for start in range(0, len(changes), 5000):
            await session.execute(insert(Change), changes[start : start + 5000])

    def _type_ports(self, type_id: int) -> list[str]:
        for t in self.types.values():
            if t.id == type_id:
                return list(t.port_names or [])
        return []

    async def _write_links(
        self,
        session: AsyncSession,
        rows: list[_Row],
        ids: dict[str, int],
        ports: dict[tuple[int, str], int],
        audit: service.Audit,
        now: Any,
        changes: list[dict[str, Any]],
    ) -> None:
        pairs = []
        for r in rows:
            for local, peer, peer_port in r.links:
                a = ports[(ids[r.values["name"]], local)]
                b = ports[(ids[peer], peer_port)]
                pairs.append((a, b))
        if not pairs:
            return
        # A port already in the same connection is kept (re-importing an export is a no-op);
        # a port connected elsewhere is a conflict, reported by the database constraint.
        current: dict[int, int] = {}
        flat = [p for pair in pairs for p in pair]
        for start in range(0, len(flat), 500):
            res = await session.execute(
                select(CableEnd.port_id, CableEnd.connection_id).where(
                    CableEnd.port_id.in_(flat[start : start + 500])
                )
            )
            current.update(dict(res.all()))
        fresh = [(a, b) for a, b in pairs if not (a in current and current.get(b) == current[a])]
        busy = [p for pair in fresh for p in pair if p in current]
        if busy:
            raise ValidationFailed(
                f"import refused: {len(busy)} port(s) are already connected elsewhere",
                errors=[
                    {"line": 0, "field": "connections", "message": f"port id {p} is connected"}
                    for p in busy[:MAX_ISSUES]
                ],
            )
        for start in range(0, len(fresh), 2000):
            part = fresh[start : start + 2000]
            res = await session.execute(
                insert(Connection).returning(Connection.id, sort_by_parameter_order=True),
                [{"label": "", "created_at": now, "updated_at": now} for _ in part],
            )
            conn_ids = res.scalars().all()
            ends = []
            for (a, b), cid in zip(part, conn_ids, strict=True):
                ends += [
                    {"connection_id": cid, "side": "a", "port_id": a},
                    {"connection_id": cid, "side": "b", "port_id": b},
                ]
                snap = {"id": cid, "a_port_id": a, "b_port_id": b, "label": ""}
                change = self._change("create", cid, None, snap, audit, now)
                changes.append(change | {"object_type": "connection"})
            await session.execute(insert(CableEnd), ends)


# -- export -----------------------------------------------------------------------------

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def _catalogue(session: AsyncSession) -> dict[str, Any]:
    makers = dict((await session.execute(select(Manufacturer.id, Manufacturer.name))).all())
    types = list((await session.execute(select(DeviceType).order_by(DeviceType.id))).scalars())
    locs = list((await session.execute(select(Location).order_by(Location.id))).scalars())
    racks = list((await session.execute(select(Rack).order_by(Rack.id))).scalars())
    return {"makers": makers, "types": types, "locations": locs, "racks": racks}


def _ordered_locations(locs: list[Location]) -> list[Location]:
    by_id = {loc.id: loc for loc in locs}
    done: set[int] = set()
    out: list[Location] = []

    def visit(loc: Location) -> None:
        if loc.id in done:
            return
        if loc.parent_id in by_id:
            visit(by_id[loc.parent_id])
        done.add(loc.id)
        out.append(loc)

    for loc in locs:
        visit(loc)
    return out


async def export_devices(
    sessions: SessionFactory, fmt: str, *, include_ids: bool = False, batch: int = 1000
) -> AsyncIterator[str]:
    """Stream every device as CSV or JSON text chunks (one short transaction per batch).

    The output is what ``import_devices`` reads back; without ``include_ids`` the import
    creates every device (a copy into an empty database), with them it updates.
    """
    async with sessions() as session:
        cat = await _catalogue(session)
    makers = cat["makers"]
    types = {t.id: t for t in cat["types"]}
    loc_names = {loc.id: loc.name for loc in cat["locations"]}
    racks = {r.id: r for r in cat["racks"]}
    cf_names = sorted({d["name"] for t in cat["types"] for d in (t.custom_fields or [])})
    columns = [c for c in COLUMNS if include_ids or c != "id"] + [f"cf_{n}" for n in cf_names]
    if fmt == "csv":
        yield csv_row(columns)
    else:
        yield "{" + _json_catalogue(cat) + ',\n"devices": [\n'
    after, first = 0, True
    while True:
        async with sessions() as session:
            devices = list(
                (
                    await session.execute(
                        select(Device).where(Device.id > after).order_by(Device.id).limit(batch)
                    )
                ).scalars()
            )
            if not devices:
                break
            dev_ids = [d.id for d in devices]
            port_rows = (
                await session.execute(
                    select(Port.id, Port.device_id, Port.name)
                    .where(Port.device_id.in_(dev_ids))
                    .order_by(Port.device_id, Port.id)
                )
            ).all()
            links = await _links(session, dev_ids)
        ports: dict[int, list[str]] = {}
        for _pid, dev, name in port_rows:
            ports.setdefault(dev, []).append(name)
        chunk = []
        for d in devices:
            dtype = types[d.device_type_id]
            rack = racks.get(d.rack_id) if d.rack_id else None
            row: dict[str, Any] = {
                "id": d.id,
                "name": d.name,
                "manufacturer": makers[dtype.manufacturer_id],
                "device_type": dtype.model,
                "status": d.status,
                "serial": d.serial,
                "asset_tag": d.asset_tag,
                "location": loc_names.get(d.location_id) if d.location_id else None,
                "rack": rack.name if rack else None,
                "position": d.position,
                "face": d.face,
                "tags": list(d.tags or []),
                "ports": ports.get(d.id, []),
                "connections": links.get(d.id, []),
            }
            if not include_ids:
                del row["id"]
            if fmt == "csv":
                cells = [
                    ";".join(row[c]) if isinstance(row.get(c), list) else row.get(c)
                    for c in columns
                    if not c.startswith("cf_")
                ]
                cells += [service.text_value(d.custom_fields.get(n, "")) for n in cf_names]
                chunk.append(csv_row(cells))
            else:
                row["custom_fields"] = dict(d.custom_fields or {})
                chunk.append(("" if first else ",\n") + json.dumps(row))
                first = False
        after = devices[-1].id
        yield "".join(chunk)
    if fmt != "csv":
        yield "\n]}\n"


async def _links(session: AsyncSession, dev_ids: list[int]) -> dict[int, list[str]]:
    a_end = select(CableEnd.connection_id, Port.device_id, Port.name).join(
        Port, Port.id == CableEnd.port_id
    )
    a_rows = (
        await session.execute(a_end.where(CableEnd.side == "a", Port.device_id.in_(dev_ids)))
    ).all()
    if not a_rows:
        return {}
    conn_ids = [r[0] for r in a_rows]
    b_rows = (
        await session.execute(
            select(CableEnd.connection_id, Device.name, Port.name)
            .join(Port, Port.id == CableEnd.port_id)
            .join(Device, Device.id == Port.device_id)
            .where(CableEnd.side == "b", CableEnd.connection_id.in_(conn_ids))
        )
    ).all()
    far = {cid: (dev, port) for cid, dev, port in b_rows}
    out: dict[int, list[str]] = {}
    for cid, dev, port in sorted(a_rows):
        if cid in far:
            out.setdefault(dev, []).append(f"{port}->{far[cid][0]}:{far[cid][1]}")
    return out


def _json_catalogue(cat: dict[str, Any]) -> str:
    makers = cat["makers"]
    loc_names = {loc.id: loc.name for loc in cat["locations"]}
    doc = {
        "manufacturers": [{"name": n} for n in makers.values()],
        "device_types": [
            {
                "manufacturer": makers[t.manufacturer_id],
                "model": t.model,
                "u_height": t.u_height,
                "full_depth": t.full_depth,
                "port_names": list(t.port_names or []),
                "custom_fields": list(t.custom_fields or []),
            }
            for t in cat["types"]
        ],
        "locations": [
            {"name": loc.name, "kind": loc.kind, "parent": loc_names.get(loc.parent_id)}
            for loc in _ordered_locations(cat["locations"])
        ],
        "racks": [
            {"name": r.name, "location": loc_names[r.location_id], "u_height": r.u_height}
            for r in cat["racks"]
        ],
    }
    return json.dumps(doc)[1:-1]
