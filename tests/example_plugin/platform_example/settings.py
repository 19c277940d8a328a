"""Settings of the example plugin: the ``[plugins.example]`` table of ``plugins.toml``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ExampleSettings(BaseModel):
    """``[plugins.example]``: per-user limits, note retention and the ping greeting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_notes_per_user: int = Field(100, gt=0, le=100_000)
    retention_days: int | None = Field(None, gt=0)
    greeting: str = Field("pong", min_length=1, max_length=100)
