"""Helpers for plugins' HTTP layers: shared parameter types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ID = 2**31 - 1  # INTEGER primary keys: 32-bit on PostgreSQL

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="A row id (a positive 32-bit integer)")]
"""A path parameter holding a row id: out-of-range values are a 422, never a database error."""
