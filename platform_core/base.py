"""The declarative base of the core's own tables (owned by the ``core`` internal plugin)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from platform_core.db import plugin_metadata


class CoreBase(DeclarativeBase):
    """Declarative base of every ``core_*`` table."""

    metadata = plugin_metadata()
