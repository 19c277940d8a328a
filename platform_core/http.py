"""Helpers for plugins' HTTP layers: shared parameter types (ids, page limits and cursors)
and the 204 route arguments. The keyset queries and page models behind them are in
:mod:`platform_core.pagination`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Response

from platform_core._deprecation import moved_names
from platform_core.pagination import MAX_CURSOR_CHARS, MAX_LIMIT, MAX_PAGE_SIZE
from platform_core.types import Line

MAX_ID = 2**31 - 1  # INTEGER primary keys: 32-bit on PostgreSQL

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="A row id (a positive 32-bit integer)")]
"""A path parameter holding a row id: out-of-range values are a 422, never a database error."""

OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID, description="A row id")]
"""A query parameter filtering by a row id: out-of-range values are a 422 naming it."""

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
"""A query parameter: the page size, 1-500 (give it ``= DEFAULT_LIMIT``)."""

OptionalLimit = Annotated[
    int | None, Query(ge=1, le=MAX_PAGE_SIZE, description="page size (default: settings)")
]
"""A query parameter: the page size when its default and cap come from settings
(resolve with :func:`platform_core.pagination.clamp_limit`)."""

IdCursor = Annotated[
    int | None,
    Query(ge=1, le=MAX_ID, description="next_cursor of the previous page (omit for the first)"),
]
"""A query parameter: the cursor of a list in id order (the previous page's last id)."""

Cursor = Annotated[
    Line | None, Query(max_length=MAX_CURSOR_CHARS, description="next_cursor of a page")
]
"""A query parameter: an opaque cursor made by :func:`platform_core.pagination.encode_cursor`."""

NO_CONTENT: dict[str, Any] = {"status_code": 204, "response_class": Response}
"""Route keyword arguments of a 204 No Content answer: ``@router.delete(path, **NO_CONTENT)``;
the endpoint returns None (or a ``Response(status_code=204)``)."""


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "IdPath": "platform_core.IdPath",
        "MAX_ID": "platform_core.MAX_ID",
    },
)
