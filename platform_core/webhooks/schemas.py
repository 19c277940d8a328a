"""Request and response models of ``/api/core/webhooks``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core.types import Line

URL_FIELD = Field(
    max_length=2000,
    description="http or https URL the events are POSTed to; no credentials in it",
    examples=["https://example.com/hooks/platform"],
)
PATTERNS_FIELD = Field(
    min_length=1,
    max_length=50,
    description="event names or patterns: inventory.device.created, inventory.*, *",
    examples=[["inventory.*"]],
)


class WebhookCreate(BaseModel):
    """A new webhook: where to send which events."""

    model_config = ConfigDict(extra="forbid")

    url: Line = URL_FIELD
    patterns: list[Line] = PATTERNS_FIELD
    description: Line = Field(default="", max_length=200)
    is_active: bool = True


class WebhookUpdate(BaseModel):
    """Changes to a webhook; omitted (or null) fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    url: Line | None = Field(default=None, max_length=2000)
    patterns: list[Line] | None = Field(default=None, min_length=1, max_length=50)
    description: Line | None = Field(default=None, max_length=200)
    is_active: bool | None = None


class WebhookOut(BaseModel):
    """A webhook as the API shows it (never its secret)."""

    id: int
    url: str
    patterns: list[str]
    description: str
    is_active: bool
    created_at: datetime
    created_by: int | None
    rotation_overlap_until: datetime | None = Field(
        default=None,
        description="after a rotation: until when deliveries are also signed with the old secret",
    )


class WebhookWithSecret(WebhookOut):
    """A webhook with its signing secret: shown at creation and rotation only."""

    secret: str = Field(description="whsec_...: verify the Platform-Signature header with it")


class AttemptOut(BaseModel):
    """One HTTP attempt of a delivery."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    """One event sent (or to be sent) to a webhook, with every attempt so far."""

    id: int
    webhook_id: int
    event_id: str = Field(description="the event's id (Platform-Event-Id)")
    event: str = Field(description="the event's name")
    state: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None = Field(description="set while pending")
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[AttemptOut]


class DeliveryPage(BaseModel):
    """A page of a webhook's delivery log, newest first."""

    items: list[DeliveryOut]
    total: int
    next_offset: int | None


class PingResultOut(BaseModel):
    """The outcome of a test ping (also in the delivery log)."""

    delivery_id: int
    event_id: str
    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int
