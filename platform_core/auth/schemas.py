"""Request and response models of the core's auth endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core.pagination import IdPage
from platform_core.types import Line


class TokenResponse(BaseModel):
    """OAuth2 access token (a short-lived JWT)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    scope: str


class UserCreate(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")

    username: Line = Field(min_length=1, max_length=64)
    role: Literal["admin", "operator", "member"]
    password: Line | None = Field(default=None, min_length=8, max_length=1024)


class UserUpdate(BaseModel):
    """A change to a user (admins only): a new role, or deactivation / reactivation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["admin", "operator", "member"] | None = None
    is_active: bool | None = Field(
        default=None, description="false deactivates the user and revokes their API tokens"
    )


class PasswordReset(BaseModel):
    """A new password for a user; without ``password`` a random one is generated."""

    model_config = ConfigDict(extra="forbid")

    password: Line | None = Field(default=None, min_length=8, max_length=1024)
    revoke_tokens: bool = Field(default=False, description="also revoke every API token")


class PasswordResetOut(BaseModel):
    """The reset's outcome: the generated password (shown this once), or null."""

    user_id: int
    username: str
    generated_password: str | None


class UserAuditOut(BaseModel):
    """One recorded change to a user account."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    actor_id: int | None
    user_id: int
    username: str
    action: str
    detail: dict[str, Any]


class UserAuditPage(IdPage[UserAuditOut]):
    """A page of audit entries, newest first; pass ``next_cursor`` as ``cursor``."""


class UserOut(BaseModel):
    """A user as the API shows it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None = None


class MeOut(UserOut):
    """The caller, with the scopes their credential holds."""

    scopes: list[str]


class ApiTokenCreate(BaseModel):
    """A new personal API token; without ``scopes`` it holds every scope of the role."""

    model_config = ConfigDict(extra="forbid")

    name: Line = Field(default="", max_length=100)
    scopes: list[Line] | None = Field(default=None, max_length=200)
    expires_in: Line | None = Field(default=None, pattern=r"^\d{1,6}[smhdw]$", examples=["30d"])


class ApiTokenOut(BaseModel):
    """A token's record; the secret is never shown again."""

    id: int
    user_id: int
    name: str
    prefix: str
    scopes: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    state: str


class ApiTokenCreated(ApiTokenOut):
    """The created token, with its secret: shown this once."""

    token: str


class PluginOut(BaseModel):
    """A plugin as ``/api/core/plugins`` lists it."""

    name: str
    version: str
    distribution: str
    enabled: bool
    state: str
    reason: str
    requires: list[str]
    description: str
