"""Request and response models of racks."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from platform_core import Line, Page
from platform_inventory.schemas.common import Name, _In, _Out


class RackIn(_In):
    """A new rack."""

    name: Line = Name
    location_id: int = Field(ge=1, le=2**31 - 1)
    u_height: int = Field(42, ge=1, le=100)


class RackPatch(_In):
    """Changes to a rack."""

    name: Line | None = Field(None, min_length=1, max_length=100)
    u_height: int | None = Field(None, ge=1, le=100)


class RackOut(_Out):
    """A rack."""

    id: int
    name: str
    location_id: int
    u_height: int
    created_at: datetime
    updated_at: datetime


class RackPage(Page[RackOut]):
    """A page of racks."""
