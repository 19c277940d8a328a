"""The scheduler's answer to the inventory's ``inventory_device_delete_veto`` hook.

The hook is synchronous and called inside the inventory's request, on the event loop. The
check therefore runs on a fresh connection in a worker thread with its own loop (a
delete or retire is rare; the short block is acceptable) and sees committed bookings.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from platform_core.db import utcnow
from platform_scheduler import service


async def _future_bookings(ctx: Any, device_id: int) -> list[int]:
    kwargs: dict[str, Any] = {"poolclass": NullPool}
    if ctx.db.schema and not ctx.db.is_sqlite:
        kwargs["connect_args"] = {"server_settings": {"search_path": ctx.db.schema}}
    engine = create_async_engine(ctx.db.url, **kwargs)
    try:
        async with AsyncSession(engine) as session:
            return await service.future_bookings(session, device_id, utcnow())
    finally:
        await engine.dispose()


def reason(ctx: Any, device: dict[str, Any], action: str) -> str | None:
    """A reason to refuse deleting or retiring a device with current or future bookings."""
    if ctx is None or "id" not in device:
        return None
    with ThreadPoolExecutor(max_workers=1) as pool:
        ids = pool.submit(asyncio.run, _future_bookings(ctx, int(device["id"]))).result(60)
    if not ids:
        return None
    listed = ", ".join(str(i) for i in ids)
    return f"device has current or future bookings ({listed}); cancel them before {action}"
