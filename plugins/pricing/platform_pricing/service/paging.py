"""Keyset paging shared by the list endpoints.

A page is ``(rows, next_cursor)``: at most ``limit`` rows and the cursor of the next page, or
None on the last one. The cursor is the id of the page's last row; the next page holds the
rows strictly after it in the list's order (``id > cursor`` ascending, ``id < cursor``
descending, or a custom ``after`` condition for lists ordered by another column first).
One extra row is fetched to know whether another page follows; no count is run. A
``limit`` of None returns every row (for the CLI; the API always bounds it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import ValidationFailed

AnySelect = Select[*tuple[Any, ...]]
"""A select of any columns (one entity or several)."""

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def invalid_cursor(
    message: str = "not a cursor of this list: pass next_cursor of a page",
) -> ValidationFailed:
    """A 422 naming ``cursor``."""
    return ValidationFailed(f"cursor: {message}", errors=[{"field": "cursor", "message": message}])


def _id_of(row: Any) -> int:
    return int(row.id if hasattr(row, "id") else row[0].id)


async def fetch_page(
    session: AsyncSession,
    stmt: AnySelect,
    *,
    order_by: Sequence[Any],
    limit: int | None,
    after: ColumnElement[bool] | None = None,
    scalars: bool = True,
    key: Callable[[Any], int] = _id_of,
) -> tuple[list[Any], int | None]:
    """One page of ``stmt`` in ``order_by`` order, from the rows matching ``after``.

    ``scalars``: rows are the first column's objects (else tuples, keyed on their first
    element's id unless ``key`` says otherwise).
    """
    if after is not None:
        stmt = stmt.where(after)
    stmt = stmt.order_by(*order_by)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    result = await session.execute(stmt)
    rows: list[Any] = list(result.scalars().all() if scalars else result.all())
    if limit is None or len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, key(rows[-1])


async def page_by_id(
    session: AsyncSession,
    stmt: AnySelect,
    id_column: Any,
    *,
    cursor: int | None,
    limit: int | None,
    descending: bool = False,
    scalars: bool = True,
) -> tuple[list[Any], int | None]:
    """A page of ``stmt`` ordered by ``id_column`` (ascending, or newest first)."""
    after = None
    if cursor is not None:
        after = id_column < cursor if descending else id_column > cursor
    return await fetch_page(
        session,
        stmt,
        order_by=[id_column.desc() if descending else id_column],
        limit=limit,
        after=after,
        scalars=scalars,
    )
