"""Settings of the inventory plugin: the ``[plugins.inventory]`` table of ``plugins.toml``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class InventorySettings(BaseModel):
    """``[plugins.inventory]``: page sizes, topology bounds and the import size limit.

    ``max_import_bytes`` bounds an import (HTTP and CLI). Over HTTP the core's
    ``[core] max_body_bytes`` (default 1 MiB) applies first: raise both to import big files.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_page_size: int = Field(50, gt=0, le=1000)
    max_page_size: int = Field(500, gt=0, le=10_000)
    max_topology_depth: int = Field(5, gt=0, le=20)
    max_topology_devices: int = Field(1000, gt=0, le=100_000)
    max_import_bytes: int = Field(16 * 1024 * 1024, gt=0)
