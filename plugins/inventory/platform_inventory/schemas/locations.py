"""Request and response models of locations."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from platform_core import Line, Page
from platform_inventory.schemas.common import Name, _In, _Out


class LocationIn(_In):
    """A new location; ``parent_id`` places it in the tree."""

    name: Line = Name
    kind: Line = Field("site", min_length=1, max_length=40)
    parent_id: int | None = Field(None, ge=1, le=2**31 - 1)


class LocationPatch(_In):
    """Changes to a location."""

    name: Line | None = Field(None, min_length=1, max_length=100)
    kind: Line | None = Field(None, min_length=1, max_length=40)
    parent_id: int | None = Field(None, ge=1, le=2**31 - 1)


class LocationOut(_Out):
    """A location."""

    id: int
    name: str
    kind: str
    parent_id: int | None
    created_at: datetime
    updated_at: datetime


class LocationPage(Page[LocationOut]):
    """A page of locations."""
