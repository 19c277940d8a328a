"""Request and response models of the example plugin's API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from platform_core import Line, Text


class NoteCreate(BaseModel):
    """A new note."""

    model_config = ConfigDict(extra="forbid")

    title: Line = Field(min_length=1, max_length=200)
    body: Text = Field("", max_length=10_000)


class NoteUpdate(BaseModel):
    """Changes to a note; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    title: Line | None = Field(None, min_length=1, max_length=200)
    body: Text | None = Field(None, max_length=10_000)
    pinned: bool | None = None


class NoteOut(BaseModel):
    """A note as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_id: int
    title: str
    body: str
    pinned: bool
    created_at: datetime
    updated_at: datetime


class Ping(BaseModel):
    """The public liveness answer of the plugin."""

    message: str


class NoteStats(BaseModel):
    """Counts across every user (admin only)."""

    notes: int
    owners: int
