"""Pydantic models of agent reports: prices, switches, terminations, rebalances, clean-ups.

Every report carries a ``report_id`` chosen by the agent; a replay of the same report (same
id, same body) returns the stored result, the same id with another body is a conflict.
Timestamps must be timezone-aware and are normalised to UTC, so the same instant written
with another offset is the same body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from platform_core import Line, Text
from platform_pricing.schemas.agents import CloudId, InstanceType, Lifecycle, Region, Zone

ReportId = Annotated[Line, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")]
Price = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]


def _utc(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2999:
        raise ValueError("the year must be between 2000 and 2999")
    return value.astimezone(UTC)


Timestamp = Annotated[AwareDatetime, AfterValidator(_utc)]
"""A timezone-aware timestamp, normalised to UTC (naive ones are refused with 422)."""


class PricePointIn(BaseModel):
    """A pool's spot and on-demand price (per hour) at ``observed_at``."""

    model_config = ConfigDict(extra="forbid")

    region: Region
    zone: Zone
    instance_type: InstanceType
    spot_price: Price
    on_demand_price: Price
    observed_at: Timestamp


class PricingReport(BaseModel):
    """A batch of observed prices (at most ``max_points_per_report``)."""

    model_config = ConfigDict(extra="forbid")

    report_id: ReportId
    points: list[PricePointIn] = Field(min_length=1)


class SwitchTarget(BaseModel):
    """The pool and lifecycle an instance moved to."""

    model_config = ConfigDict(extra="forbid")

    region: Region
    zone: Zone
    instance_type: InstanceType
    lifecycle: Lifecycle


class SwitchReport(BaseModel):
    """An instance moved to another pool (or lifecycle) at ``switched_at``."""

    model_config = ConfigDict(extra="forbid")

    report_id: ReportId
    command_id: int | None = Field(None, ge=1, le=2**31 - 1)
    to: SwitchTarget
    new_cloud_id: CloudId
    reason: Text = Field("", max_length=500)
    from_price: Price | None = None
    to_price: Price | None = None
    on_demand_price: Price | None = None
    downtime_seconds: float = Field(0.0, ge=0, le=86400, allow_inf_nan=False)
    switched_at: Timestamp


class TerminationReport(BaseModel):
    """The cloud announced it will reclaim the instance (``cloud_id``: the current one)."""

    model_config = ConfigDict(extra="forbid")

    report_id: ReportId
    cloud_id: CloudId | None = None
    noticed_at: Timestamp
    action_at: Timestamp | None = None


class RebalanceReport(BaseModel):
    """The cloud recommends moving the instance (``cloud_id``: the current one)."""

    model_config = ConfigDict(extra="forbid")

    report_id: ReportId
    cloud_id: CloudId | None = None
    noticed_at: Timestamp


class CleanedResource(BaseModel):
    """A cloud resource the agent cleaned up after a switch."""

    model_config = ConfigDict(extra="forbid")

    kind: Line = Field(min_length=1, max_length=50)
    id: Line = Field(min_length=1, max_length=200)
    action: Line = Field(min_length=1, max_length=50)


class CleanupReport(BaseModel):
    """Resources the agent deleted or released, finished at ``finished_at``."""

    model_config = ConfigDict(extra="forbid")

    report_id: ReportId
    resources: list[CleanedResource] = Field(default_factory=list, max_length=1000)
    finished_at: Timestamp


class ReportOut(BaseModel):
    """The outcome of a report; ``duplicate`` when it replays an already received one."""

    report_id: str
    kind: Literal["pricing", "switch", "termination", "rebalance", "cleanup"]
    duplicate: bool
    received_at: datetime
    result: dict[str, Any]
