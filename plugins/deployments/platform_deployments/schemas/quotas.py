"""Quotas and usage: a user's limits, what their apps request, platform totals."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QuotaIn(BaseModel):
    """An admin's override of a user's quota."""

    model_config = ConfigDict(extra="forbid")

    max_apps: int = Field(ge=0, le=10_000)
    max_replicas: int = Field(ge=0, le=10_000)
    cpu_millis: int = Field(ge=0, le=10_000_000)
    memory_mib: int = Field(ge=0, le=10_000_000)
    allow_image_override: bool = False


class QuotaOut(BaseModel):
    """A user's quota (their override, or the defaults) and what they use of it."""

    user_id: int
    custom: bool
    max_apps: int
    max_replicas: int
    cpu_millis: int
    memory_mib: int
    allow_image_override: bool
    apps: int
    replicas: int
    requested_cpu_millis: int
    requested_memory_mib: int
    mongo_storage_bytes: int


class QuotaList(BaseModel):
    """Every user with apps, a database or an override."""

    items: list[QuotaOut]


class Totals(BaseModel):
    """Platform totals for admins."""

    users: int
    apps: int
    replicas: int
    requested_cpu_millis: int
    requested_memory_mib: int
    apps_by_state: dict[str, int]
    mongo_databases: int
    mongo_storage_bytes: int
