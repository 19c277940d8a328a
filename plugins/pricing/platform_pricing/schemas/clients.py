"""Pydantic request and response models of clients (tenants) and their API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core import IdPage, Line

CLIENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
ClientName = Annotated[Line, Field(pattern=CLIENT_NAME_PATTERN, description="a lowercase slug")]
EngineName = Annotated[Line, Field(min_length=1, max_length=64)]


class PolicyOverrides(BaseModel):
    """A client's overrides of the platform's anti-flapping policy, key by key.

    The bounds are those of :class:`platform_pricing.settings.PolicySettings`. In a PATCH, a
    key set to ``null`` drops the override (the platform default applies again).
    """

    model_config = ConfigDict(extra="forbid")

    min_saving_percent: float | None = Field(None, ge=0, le=100)
    min_saving_per_hour: float | None = Field(None, ge=0, le=1_000_000, allow_inf_nan=False)
    min_seconds_between_switches: int | None = Field(None, ge=0, le=30 * 86400)
    interruption_cooldown_seconds: int | None = Field(None, ge=0, le=30 * 86400)
    allow_on_demand: bool | None = None
    max_price_ratio: float | None = Field(None, gt=0, le=10)


class ClientIn(BaseModel):
    """A new client."""

    model_config = ConfigDict(extra="forbid")

    name: ClientName
    display_name: Line = Field("", max_length=200)
    policy: PolicyOverrides | None = None


class ClientPatch(BaseModel):
    """Changes to a client: the admin's fields, or the client admin's policy."""

    model_config = ConfigDict(extra="forbid")

    display_name: Line | None = Field(None, max_length=200)
    is_active: bool | None = None
    engine: EngineName | None = Field(None, description="null: the platform's active engine")
    policy: PolicyOverrides | None = Field(
        None, description="merged into the current overrides; a null key drops that override"
    )


class ClientOut(BaseModel):
    """A client as the API shows it."""

    id: int
    name: str
    display_name: str
    policy: dict[str, Any] = Field(description="the client's own overrides")
    effective_policy: dict[str, Any] = Field(description="the overrides over the defaults")
    engine: str | None
    is_active: bool
    created_at: datetime


class ClientPage(IdPage[ClientOut]):
    """A page of clients by id; pass ``next_cursor`` as ``cursor`` for the next (keyset: id)."""


class ClientTokenIn(BaseModel):
    """A new API token of a client: plain (``pricing:client``) or client admin."""

    model_config = ConfigDict(extra="forbid")

    name: Line = Field(min_length=1, max_length=100)
    admin: bool = Field(False, description="also grant pricing:client_admin")
    expires_in: Line | None = Field(
        None,
        pattern=r"^\d{1,6}[smhdw]$",
        description="e.g. 30d; none: [plugins.pricing] client_token_days",
    )


class ClientTokenOut(BaseModel):
    """A client's API token (never its secret)."""

    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    state: Literal["active", "expired", "revoked"]


class ClientTokenList(BaseModel):
    """A client's tokens (a small bounded list: not paged)."""

    items: list[ClientTokenOut]


class ClientTokenCreated(BaseModel):
    """A created token; ``token`` (the secret) is shown in this response only."""

    id: int
    name: str
    token: str
    scopes: list[str]
    expires_at: datetime | None
