"""Row locks for read-modify-write of one row (an instance, an agent, a replica)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession


async def locked(session: AsyncSession, model: Any, row_id: int) -> Any:
    """The current row, locked until the commit.

    PostgreSQL: ``SELECT ... FOR UPDATE``. SQLite: a no-op ``UPDATE`` of the row, which takes
    the database's write lock for the rest of the transaction. Callers lock in one order
    (instance, then replica) so that two transactions never wait on each other.
    """
    stmt = select(model).where(model.id == row_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        return await session.scalar(stmt.with_for_update())
    await session.execute(
        update(model)
        .where(model.id == row_id)
        .values(id=model.id)
        .execution_options(synchronize_session=False)
    )
    return await session.scalar(stmt)
