"""What the inventory's request and response models share."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Field(min_length=1, max_length=100)
Status = Literal["planned", "active", "offline", "maintenance", "retired"]
Face = Literal["front", "rear"]
CustomValue = str | int | bool | date | None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)
