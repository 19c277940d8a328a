"""Helpers for plugins' HTTP layers: shared parameter types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from platform_core._deprecation import moved_names

MAX_ID = 2**31 - 1  # INTEGER primary keys: 32-bit on PostgreSQL

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="A row id (a positive 32-bit integer)")]
"""A path parameter holding a row id: out-of-range values are a 422, never a database error."""


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "IdPath": "platform_core.IdPath",
        "MAX_ID": "platform_core.MAX_ID",
    },
)
