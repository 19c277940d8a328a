"""Keyset pagination: page models, opaque cursors and page queries (no HTTP layer here).

The matching route parameter types (:data:`~platform_core.http.Limit`,
:data:`~platform_core.http.IdCursor`, :data:`~platform_core.http.Cursor`,
:data:`~platform_core.http.OptionalId`) and ``NO_CONTENT`` live in :mod:`platform_core.http`,
so that services can use this module without importing FastAPI.

A paged list answers ``{"items": [...], "next_cursor": ...}``; ``next_cursor`` is null on the
last page, and the client passes it back as ``?cursor=`` for the next one. Two cursor kinds:

- :class:`IdPage` / ``IdCursor``: lists in id order (ascending or newest first); the
  cursor is the id of the page's last row, an integer.
- :class:`Page` / ``Cursor``: lists in another order (a sort key, then the id); the
  cursor is opaque, made by :func:`encode_cursor` from a small JSON payload and read back by
  :func:`decode_cursor`, which refuses a malformed, truncated or edited cursor with a 422
  naming ``cursor``. The check is a checksum, not a secret: a cursor never grants access (the
  list's filters always apply), it only says where the next page starts.

Pages are fetched with one extra row to know whether another follows (no count query); see
:func:`fetch_page` and :func:`page_by_id`. Routes::

    class ThingPage(IdPage[ThingOut]):        # a named subclass keeps the OpenAPI schema name
        \"\"\"A page of things.\"\"\"

    @router.get("/things", response_model=ThingPage)
    async def list_things(session: DbSession, owner_id: OptionalId = None,
                          cursor: IdCursor = None, limit: Limit = DEFAULT_LIMIT) -> ThingPage:
        rows, nxt = await service.list_things(session, owner_id, cursor=cursor, limit=limit)
        return ThingPage(items=[ThingOut.model_validate(r) for r in rows], next_cursor=nxt)

    @router.delete("/things/{thing_id}", **NO_CONTENT)
    async def delete_thing(thing_id: IdPath, session: DbSession) -> None:
        await service.delete_thing(session, thing_id)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core.errors import ValidationFailed

T = TypeVar("T")

AnySelect = Select[*tuple[Any, ...]]
"""A select of any columns (one entity or several)."""

DEFAULT_LIMIT = 50
"""The page size of :data:`Limit` when the client sends none."""
MAX_LIMIT = 500
"""The largest page :data:`Limit` accepts."""
MAX_PAGE_SIZE = 10_000
"""The largest page :data:`OptionalLimit` accepts (the plugin's settings may cap it lower)."""
MAX_CURSOR_CHARS = 512
"""The longest opaque cursor accepted."""


class Page(BaseModel, Generic[T]):
    """A page of a list in a custom order; ``next_cursor`` (opaque) is null on the last page."""

    items: list[T]
    next_cursor: str | None


class IdPage(BaseModel, Generic[T]):
    """A page of a list in id order; ``next_cursor`` (the last row's id) is null on the last."""

    items: list[T]
    next_cursor: int | None


def clamp_limit(limit: int | None, default: int, maximum: int) -> int:
    """The page size to use: ``limit`` (or ``default`` when None), at most ``maximum``."""
    return min(limit or default, maximum)


def invalid_cursor(
    message: str = "not a cursor of this list: pass next_cursor of a page",
) -> ValidationFailed:
    """A 422 naming ``cursor``."""
    return ValidationFailed(f"cursor: {message}", errors=[{"field": "cursor", "message": message}])


_CHECK_BYTES = 6


def _check(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=_CHECK_BYTES, person=b"platform-cursor").digest()


def encode_cursor(payload: dict[str, Any]) -> str:
    """An opaque, URL-safe cursor carrying ``payload`` (JSON values) with a checksum."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw + _check(raw)).decode().rstrip("=")


def decode_cursor(cursor: str, *, required: Iterable[str] = ()) -> dict[str, Any]:
    """The payload of a cursor made by :func:`encode_cursor`.

    A 422 naming ``cursor`` when it is too long, malformed, truncated or edited, or lacks a
    key of ``required``.
    """
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        raw, check = data[:-_CHECK_BYTES], data[-_CHECK_BYTES:]
        if len(data) <= _CHECK_BYTES or _check(raw) != check:
            raise ValueError("checksum")
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError("not an object")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_cursor("invalid cursor: pass next_cursor from a previous page") from exc
    missing = [k for k in required if k not in payload]
    if missing:
        raise invalid_cursor("invalid cursor: pass next_cursor from a previous page")
    return payload


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
    key: Callable[[Any], Any] = _id_of,
) -> tuple[list[Any], Any]:
    """One page of ``stmt`` in ``order_by`` order, from the rows matching ``after``.

    Returns ``(rows, next)``: ``next`` is ``key(last row)`` when another page follows, else
    None. ``scalars``: rows are the first column's objects (else tuples, keyed on their first
    element's id unless ``key`` says otherwise). ``limit=None`` returns every row.
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
    """A page of ``stmt`` ordered by ``id_column`` (ascending, or newest first) after ``cursor``."""
    after = None
    if cursor is not None:
        after = id_column < cursor if descending else id_column > cursor
    rows, nxt = await fetch_page(
        session,
        stmt,
        order_by=[id_column.desc() if descending else id_column],
        limit=limit,
        after=after,
        scalars=scalars,
    )
    return rows, nxt


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_CURSOR_CHARS",
    "MAX_LIMIT",
    "MAX_PAGE_SIZE",
    "IdPage",
    "Page",
    "clamp_limit",
    "decode_cursor",
    "encode_cursor",
    "fetch_page",
    "invalid_cursor",
    "page_by_id",
]
