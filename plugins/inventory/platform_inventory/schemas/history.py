"""Request and response models of the change history and the device import."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from platform_core import Page
from platform_inventory.schemas.common import _Out


class ChangeOut(_Out):
    """One recorded change."""

    id: int
    object_type: str
    object_id: int
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    actor: str | None
    request_id: str | None
    created_at: datetime


class ChangePage(Page[ChangeOut]):
    """A page of changes, oldest first."""


class ImportIssue(BaseModel):
    """One problem of an import row."""

    line: int
    field: str
    message: str


class ImportReport(BaseModel):
    """The outcome of an import (or of a dry run: nothing written)."""

    dry_run: bool
    created: int
    updated: int
    connections: int
    request_id: str | None
