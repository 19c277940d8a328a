"""Request and response models of manufacturers."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from platform_core import Line, Page
from platform_inventory.schemas.common import Name, _In, _Out


class ManufacturerIn(_In):
    """A new manufacturer."""

    name: Line = Name


class ManufacturerPatch(_In):
    """Changes to a manufacturer."""

    name: Line | None = Field(None, min_length=1, max_length=100)


class ManufacturerOut(_Out):
    """A manufacturer."""

    id: int
    name: str
    created_at: datetime
    updated_at: datetime


class ManufacturerPage(Page[ManufacturerOut]):
    """A page of manufacturers."""
