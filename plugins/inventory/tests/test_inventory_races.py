"""Concurrent changes of one device start from its locked, current row (both databases)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from platform_core.testing import EventRecord


async def test_concurrent_retirements_announce_once_and_keep_both_changes(platform):
    """Two updates of one device at once: the second waits for the first's commit, then
    starts from its result (one ``inventory.device.retired``, no change lost)."""
    from platform_inventory import service
    from platform_inventory.service import Audit

    db = platform.ctx.db
    audit = Audit("t")
    async with db.session() as session:
        m = await service.create_manufacturer(session, "Acme", audit)
        t = await service.create_device_type(
            session, {"manufacturer_id": m.id, "model": "S1"}, audit
        )
        device = await service.create_device(session, {"name": "d1", "device_type_id": t.id}, audit)

    first = db.sessionmaker()
    await first.begin()
    await service.update_device(first, device.id, {"status": "retired"}, audit)

    async def second() -> None:
        async with db.session() as session:
            await service.update_device(
                session, device.id, {"status": "retired", "serial": "SN-2"}, audit
            )

    task = asyncio.create_task(second())
    await asyncio.sleep(0.4)
    assert not task.done()  # waits for the first update's row lock (SQLite: the write lock)
    await first.commit()
    await first.close()
    await task
    async with db.session() as session:
        retired = await session.scalar(
            select(func.count())
            .select_from(EventRecord)
            .where(EventRecord.name == "inventory.device.retired")
        )
        current = await service.get_device(session, device.id)
    assert retired == 1
    assert (current.status, current.serial) == ("retired", "SN-2")
