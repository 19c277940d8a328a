"""Response models of price history, current prices, options, metrics, switches and price
charts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel

from platform_core import IdPage
from platform_pricing.schemas.savings import SavingsFigures


def _bounded(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2999:
        raise ValueError("the year must be between 2000 and 2999")
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(_bounded)]
"""A timezone-aware timestamp (naive ones are refused with 422)."""


class PoolOut(BaseModel):
    """A spot capacity pool."""

    id: int
    region: str
    zone: str
    instance_type: str


class HistoryBucket(BaseModel):
    """Spot prices in ``[start, end)``: minimum, sample-weighted average, maximum, count."""

    start: datetime
    end: datetime
    min: float
    avg: float
    max: float
    samples: int


class HistorySources(BaseModel):
    """What was read: the hourly aggregates' range (or none) and the raw points' ranges."""

    hourly: list[str] | None
    raw: list[list[str]]


class PriceHistory(BaseModel):
    """A pool's spot price over a window in up to ``points`` buckets (empty ones left out)."""

    instance_id: int
    pool: PoolOut
    start: datetime
    end: datetime
    points: int
    bucket_seconds: float
    sources: HistorySources
    buckets: list[HistoryBucket]


class PoolPrice(BaseModel):
    """The latest price a client reported for a pool (None: never)."""

    pool: PoolOut
    observed_at: datetime | None
    spot_price: float | None
    on_demand_price: float | None


class CurrentPricing(BaseModel):
    """The instance's pool's latest prices and the other pools of its type in its region."""

    instance_id: int
    lifecycle: str
    current: PoolPrice
    others: list[PoolPrice]


class Option(PoolPrice):
    """A pool the instance could run in, with its rank and the figures behind it."""

    current: bool
    saving_percent: float
    interruptions: int
    interruption_rate_per_day: float
    rank: int
    reason: str


class AvailableOptions(BaseModel):
    """Pools with a recent price, cheapest first, then fewest interruptions per day."""

    instance_id: int
    region: str
    instance_type: str
    recent_since: datetime
    interruption_rate_days: int
    options: list[Option]


class PoolTime(BaseModel):
    """Seconds spent in one pool."""

    pool: PoolOut
    seconds: float


class Metrics(BaseModel):
    """An instance's uptime, time per pool and lifecycle, switches, interruptions, savings."""

    instance_id: int
    since: datetime
    uptime_seconds: float
    time_per_pool: list[PoolTime]
    time_per_lifecycle: dict[str, float]
    switches: int
    interruptions: dict[str, int]
    savings: SavingsFigures


class SwitchOut(BaseModel):
    """A switch as the agent reported it."""

    id: int
    client_id: int
    instance_id: int
    command_id: int | None
    from_pool: PoolOut | None
    to_pool: PoolOut | None
    from_lifecycle: str
    to_lifecycle: str
    reason: str
    from_price: float | None
    to_price: float | None
    on_demand_price: float | None
    downtime_seconds: float
    old_cloud_id: str
    new_cloud_id: str
    switched_at: datetime


class SwitchPage(IdPage[SwitchOut]):
    """A page of switches, newest first; pass ``next_cursor`` as ``cursor`` for the next.

    Keyset: ``(switched_at, id)`` descending. ``switched_at`` is the time the agent reported,
    which need not follow the id order, so the id alone is not a correct key for this order;
    ties on ``switched_at`` are broken by id. ``next_cursor`` is the id of the page's last
    switch (null on the last page); a cursor that is not a switch of the list is a 422.
    """


class ChartPoint(BaseModel):
    """One bucket of a price chart series."""

    at: datetime
    avg: float
    min: float
    max: float


class PriceSeries(BaseModel):
    """A pool's average spot price per bucket."""

    pool: PoolOut
    current: bool
    points: list[ChartPoint]


class PriceChart(BaseModel):
    """One series per pool of the instance's type in its region, on the same buckets."""

    instance_id: int
    start: datetime
    end: datetime
    points: int
    on_demand_price: float | None
    series: list[PriceSeries]
