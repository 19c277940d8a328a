"""The change history."""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_inventory.models import Change
from platform_inventory.service.common import _page_by_id

# -- change history ---------------------------------------------------------------------


async def list_changes(
    session: AsyncSession,
    *,
    object_type: str | None,
    object_id: int | None,
    request_id: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Change], str | None]:
    """A page of recorded changes, oldest first, optionally of one object or one request."""
    conditions = []
    if object_type:
        conditions.append(Change.object_type == object_type)
    if object_id is not None:
        conditions.append(Change.object_id == object_id)
    if request_id:
        conditions.append(Change.request_id == request_id)
    stmt = select(Change).where(and_(True, *conditions))
    return await _page_by_id(session, stmt, Change, cursor, limit)
