"""What the scheduler's request and response models share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field

MAX_ID = 2**31 - 1
DeviceId = Annotated[int, Field(ge=1, le=MAX_ID)]
Status = Literal["pending", "approved", "active", "completed", "rejected", "cancelled", "expired"]


def _bounded(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2999:
        raise ValueError("the year must be between 2000 and 2999")
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(_bounded)]
