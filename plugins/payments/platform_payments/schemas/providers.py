"""Response models of payment providers (never their credentials)."""

from __future__ import annotations

from pydantic import BaseModel


class ProviderOut(BaseModel):
    """A provider: whether it can take payments now, and why not."""

    name: str
    description: str
    manual: bool
    configured: bool
    problem: str | None
