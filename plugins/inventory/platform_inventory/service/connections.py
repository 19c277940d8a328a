"""Ports, cable connections and the topology graph built from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, invalid
from platform_inventory.models import CableEnd, Connection, Device, Port
from platform_inventory.service import devices as _devices
from platform_inventory.service.common import (
    Audit,
    _flush,
    _get,
    _jsonable,
    _page_by_id,
    _publish_object,
    _ref,
    record,
    snapshot,
)

# -- ports and connections --------------------------------------------------------------


async def list_ports(session: AsyncSession, device_id: int) -> list[tuple[Port, int | None]]:
    """The device's ports by name, each with its connection id (or None)."""
    await _devices.get_device(session, device_id)
    rows = await session.execute(
        select(Port, CableEnd.connection_id)
        .outerjoin(CableEnd, CableEnd.port_id == Port.id)
        .where(Port.device_id == device_id)
        .order_by(Port.name)
    )
    return [(port, conn) for port, conn in rows.all()]


async def create_port(session: AsyncSession, device_id: int, name: str, audit: Audit) -> Port:
    """Add a port to a device; ``Conflict`` when the device has a port of that name."""
    device = await _devices.get_device(session, device_id)
    port = Port(device_id=device_id, name=name)
    session.add(port)
    await _flush(session, f"device {device.name!r} already has a port {name!r}")
    record(session, audit, "port", port.id, "create", None, snapshot(port))
    _publish_object(session, audit, "port", "created", port.id, name)
    return port


async def delete_port(session: AsyncSession, port_id: int, audit: Audit) -> None:
    """Delete a port and its connection."""
    port = await _get(session, Port, port_id, "port")
    conn = await session.scalar(select(CableEnd.connection_id).where(CableEnd.port_id == port_id))
    if conn is not None:
        await delete_connection(session, conn, audit)
    before = snapshot(port)
    await session.delete(port)
    await session.flush()
    record(session, audit, "port", port_id, "delete", before, None)
    _publish_object(session, audit, "port", "deleted", port_id, before["name"])


@dataclass(frozen=True)
class ConnectionView:
    """A connection with its two port ids."""

    id: int
    a_port_id: int
    b_port_id: int
    label: str
    created_at: datetime
    updated_at: datetime


async def _views(session: AsyncSession, conns: Sequence[Connection]) -> list[ConnectionView]:
    ends: dict[tuple[int, str], int] = {}
    if conns:
        rows = await session.execute(
            select(CableEnd).where(CableEnd.connection_id.in_([c.id for c in conns]))
        )
        ends = {(e.connection_id, e.side): e.port_id for e in rows.scalars()}
    return [
        ConnectionView(
            c.id,
            ends.get((c.id, "a"), 0),
            ends.get((c.id, "b"), 0),
            c.label,
            c.created_at,
            c.updated_at,
        )
        for c in conns
    ]


def _connection_snapshot(view: ConnectionView) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in view.__dict__.items()}


async def list_connections(
    session: AsyncSession, *, device_id: int | None, cursor: str | None, limit: int
) -> tuple[list[ConnectionView], str | None]:
    """A page of connections by id; ``device_id`` keeps those touching one device."""
    stmt = select(Connection)
    if device_id is not None:
        stmt = stmt.where(
            Connection.id.in_(
                select(CableEnd.connection_id)
                .join(Port, Port.id == CableEnd.port_id)
                .where(Port.device_id == device_id)
            )
        )
    rows, nxt = await _page_by_id(session, stmt, Connection, cursor, limit)
    return await _views(session, rows), nxt


async def get_connection(session: AsyncSession, obj_id: int) -> ConnectionView:
    """One connection, or ``NotFound``."""
    conn = await _get(session, Connection, obj_id, "connection")
    return (await _views(session, [conn]))[0]


async def create_connection(
    session: AsyncSession, a_port_id: int, b_port_id: int, label: str, audit: Audit
) -> ConnectionView:
    """Connect two ports; ``Conflict`` naming the port when either is already connected."""
    if a_port_id == b_port_id:
        raise invalid("b_port_id", "a port cannot be connected to itself")
    for field, port_id in (("a_port_id", a_port_id), ("b_port_id", b_port_id)):
        await _ref(session, Port, port_id, field, "port")
        taken = await session.scalar(
            select(CableEnd.connection_id).where(CableEnd.port_id == port_id)
        )
        if taken is not None:
            raise Conflict(
                f"port {port_id} is already connected (connection {taken})",
                errors=[{"field": field, "message": f"already in connection {taken}"}],
            )
    conn = Connection(label=label)
    session.add(conn)
    await session.flush()
    session.add_all(
        [
            CableEnd(connection_id=conn.id, side="a", port_id=a_port_id),
            CableEnd(connection_id=conn.id, side="b", port_id=b_port_id),
        ]
    )
    await _flush(session, "one of the ports was connected meanwhile")
    view = (await _views(session, [conn]))[0]
    record(session, audit, "connection", conn.id, "create", None, _connection_snapshot(view))
    _publish_object(session, audit, "connection", "created", conn.id, label)
    return view


async def update_connection(
    session: AsyncSession, obj_id: int, label: str, audit: Audit
) -> ConnectionView:
    """Change a connection's label."""
    conn = await _get(session, Connection, obj_id, "connection")
    before = _connection_snapshot((await _views(session, [conn]))[0])
    conn.label = label
    await session.flush()
    view = (await _views(session, [conn]))[0]
    record(session, audit, "connection", obj_id, "update", before, _connection_snapshot(view))
    _publish_object(session, audit, "connection", "updated", obj_id, label)
    return view


async def delete_connection(session: AsyncSession, obj_id: int, audit: Audit) -> None:
    """Remove a connection (both ports become free)."""
    conn = await _get(session, Connection, obj_id, "connection")
    before = _connection_snapshot((await _views(session, [conn]))[0])
    await session.execute(delete(CableEnd).where(CableEnd.connection_id == obj_id))
    await session.delete(conn)
    await session.flush()
    record(session, audit, "connection", obj_id, "delete", before, None)
    _publish_object(session, audit, "connection", "deleted", obj_id, before["label"])


# -- topology ---------------------------------------------------------------------------


async def topology(
    session: AsyncSession, device_id: int, depth: int, max_devices: int
) -> dict[str, Any]:
    """The devices connected to ``device_id`` within ``depth`` hops, breadth first.

    Bounded by ``max_devices`` (``truncated`` says when the bound cut the walk short).
    Each link names the connection and the ports at both ends.
    """
    start = await _devices.get_device(session, device_id)
    seen: dict[int, int] = {start.id: 0}
    links: dict[int, dict[str, Any]] = {}
    frontier = [start.id]
    truncated = False
    for level in range(1, depth + 1):
        if not frontier:
            break
        conn_ids = (
            select(CableEnd.connection_id)
            .join(Port, Port.id == CableEnd.port_id)
            .where(Port.device_id.in_(frontier))
        )
        rows = (
            await session.execute(
                select(CableEnd.connection_id, CableEnd.side, Port.device_id, Port.name)
                .join(Port, Port.id == CableEnd.port_id)
                .where(CableEnd.connection_id.in_(conn_ids))
            )
        ).all()
        ends: dict[int, dict[str, tuple[int, str]]] = {}
        for conn_id, side, dev, port in rows:
            ends.setdefault(conn_id, {})[side] = (dev, port)
        nxt = []
        for conn_id, pair in sorted(ends.items()):
            if len(pair) != 2:
                continue
            (a_dev, a_port), (b_dev, b_port) = pair["a"], pair["b"]
            for dev in (a_dev, b_dev):
                if dev not in seen:
                    if len(seen) >= max_devices:
                        truncated = True
                        continue
                    seen[dev] = level
                    nxt.append(dev)
            if a_dev in seen and b_dev in seen:
                links[conn_id] = {
                    "connection_id": conn_id,
                    "a_device_id": a_dev,
                    "a_port": a_port,
                    "b_device_id": b_dev,
                    "b_port": b_port,
                }
        frontier = nxt
    names = dict(
        (await session.execute(select(Device.id, Device.name).where(Device.id.in_(seen)))).all()
    )
    return {
        "device_id": start.id,
        "depth": depth,
        "truncated": truncated,
        "devices": [
            {"device_id": d, "name": names.get(d, ""), "depth": lvl}
            for d, lvl in sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))
        ],
        "links": list(links.values()),
    }


async def port_path(session: AsyncSession, port_id: int) -> dict[str, Any]:
    """The path from a port to its far end: the port, then the port at the other end.

    Ports are plain (no front/rear pass-through ports), so a path has at most one
    connection; ``complete`` is false for an unconnected port.
    """
    await _get(session, Port, port_id, "port")

    async def hop(pid: int) -> dict[str, Any]:
        row = (
            await session.execute(
                select(Port.id, Port.name, Device.id, Device.name)
                .join(Device, Device.id == Port.device_id)
                .where(Port.id == pid)
            )
        ).one()
        return {"port_id": row[0], "port": row[1], "device_id": row[2], "device": row[3]}

    hops = [await hop(port_id)]
    conn = await session.scalar(select(CableEnd.connection_id).where(CableEnd.port_id == port_id))
    if conn is None:
        return {"complete": False, "hops": hops, "connections": []}
    far = await session.scalar(
        select(CableEnd.port_id).where(CableEnd.connection_id == conn, CableEnd.port_id != port_id)
    )
    if far is None:
        return {"complete": False, "hops": hops, "connections": [conn]}
    hops.append(await hop(far))
    return {"complete": True, "hops": hops, "connections": [conn]}
