"""Savings arithmetic: exact integrals of step-function prices over the intervals spent in pools.

Pure Python, no I/O. Prices are per hour (floats); costs are in price-hours (price per hour
times hours). All times are timezone-aware datetimes; months are calendar months in UTC.

How a price series is read (the same rules for the spot and the on-demand price):

- **Step function.** The price at time ``t`` is the one of the last point reported at or
  before ``t``; among points with the same ``at``, the last one in the series wins.
- **Gaps carry forward.** A gap in reports does not interrupt the price: the last known price
  holds until the next point, however long the gap.
- **Before the first point.** The first point's price is assumed to have held since the
  placement began (an agent reports its first price shortly after it starts, and no earlier
  price is known).

A series must be sorted by ``at`` ascending (what ``ORDER BY at`` returns); a backwards step
met while integrating raises ``ValueError``.
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

__all__ = [
    "IntervalSavings",
    "Lifecycle",
    "Placement",
    "PriceField",
    "PricePoint",
    "SavingsTotals",
    "integrate",
    "month_bounds",
    "monthly_savings",
    "placement_savings",
    "price_at",
    "rounded",
    "split_by_month",
    "summarize",
]

Lifecycle = Literal["spot", "on-demand"]
PriceField = Literal["spot_price", "on_demand_price"]

_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A price reported for a pool at ``at``: the spot and the on-demand price, per hour."""

    at: datetime
    spot_price: float
    on_demand_price: float


@dataclass(frozen=True, slots=True)
class Placement:
    """An interval ``[start, end)`` an instance spent in a pool; ``end`` None means still there.

    ``pool_id`` may be None for an on-demand placement (no spot pool involved).
    """

    pool_id: int | None
    lifecycle: Lifecycle
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class IntervalSavings:
    """What one interval cost, what it would have cost on demand, and the difference."""

    hours: float
    on_demand_cost: float
    actual_cost: float
    savings: float

    def to_dict(self, digits: int = 6) -> dict[str, float]:
        """The figures rounded to ``digits`` decimals, for presentation."""
        return {
            "hours": rounded(self.hours, digits),
            "on_demand_cost": rounded(self.on_demand_cost, digits),
            "actual_cost": rounded(self.actual_cost, digits),
            "savings": rounded(self.savings, digits),
        }


@dataclass(frozen=True, slots=True)
class SavingsTotals:
    """Sums over intervals; ``savings_percent`` is savings over on-demand cost (0 without cost)."""

    hours: float
    on_demand_cost: float
    actual_cost: float
    savings: float
    savings_percent: float

    def to_dict(self, digits: int = 6) -> dict[str, float]:
        """The figures rounded to ``digits`` decimals, for presentation."""
        return {
            "hours": rounded(self.hours, digits),
            "on_demand_cost": rounded(self.on_demand_cost, digits),
            "actual_cost": rounded(self.actual_cost, digits),
            "savings": rounded(self.savings, digits),
            "savings_percent": rounded(self.savings_percent, digits),
        }


_ZERO = IntervalSavings(hours=0.0, on_demand_cost=0.0, actual_cost=0.0, savings=0.0)


def rounded(x: float, digits: int = 6) -> float:
    """``x`` rounded to ``digits`` decimals, never ``-0.0``."""
    # Adding 0.0 turns -0.0 (a tiny negative rounding residue) into 0.0.
    return round(x, digits) + 0.0


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


def _hours(start: datetime, end: datetime) -> float:
    return (end - start) / _HOUR


def price_at(series: Sequence[PricePoint], at: datetime, value: PriceField = "spot_price") -> float:
    """The price in force at ``at`` (the rules in the module docstring).

    :raises ValueError: the series is empty.
    """
    if not series:
        raise ValueError(f"no price points: cannot tell the {value} at {at.isoformat()}")
    i = bisect.bisect_right(series, at, key=_at) - 1
    return float(getattr(series[max(i, 0)], value))


def _at(point: PricePoint) -> datetime:
    return point.at


def integrate(
    series: Sequence[PricePoint],
    start: datetime,
    end: datetime,
    value: PriceField = "spot_price",
) -> float:
    """The exact integral of the ``value`` step function over ``[start, end)``, in price-hours.

    Zero when ``end`` is not after ``start``.

    :raises ValueError: the window is not empty and the series is empty, or the series is not
        sorted by ``at`` inside the window.
    """
    if end <= start:
        return 0.0
    if not series:
        raise ValueError(
            f"no price points: cannot price {start.isoformat()} to {end.isoformat()} ({value})"
        )
    # Index of the point in force at ``start``; before the first point, the first one.
    i = max(bisect.bisect_right(series, start, key=_at) - 1, 0)
    price = float(getattr(series[i], value))
    total = 0.0
    t = start
    for j in range(i + 1, len(series)):
        point = series[j]
        if point.at >= end:
            break
        if point.at < t:
            raise ValueError(
                f"price points must be sorted by 'at': {point.at.isoformat()} after {t.isoformat()}"
            )
        total += price * _hours(t, point.at)
        t = point.at
        price = float(getattr(point, value))
    return total + price * _hours(t, end)


def placement_savings(
    placement: Placement,
    spot_series: Sequence[PricePoint],
    on_demand_series: Sequence[PricePoint],
    window_start: datetime,
    window_end: datetime,
) -> IntervalSavings:
    """Savings of ``placement`` clipped to ``[window_start, window_end)``.

    The on-demand cost integrates ``on_demand_price`` of ``on_demand_series`` (the series of the
    pool the instance is in, or a dedicated on-demand series for its instance type). The actual
    cost integrates ``spot_price`` of ``spot_series`` for a spot placement, and equals the
    on-demand cost for an on-demand placement (savings 0; ``spot_series`` is not read). An open
    placement (``end`` None) runs to ``window_end``. An empty or reversed overlap gives zeros.

    :raises ValueError: a time is naive, or a series needed for a non-empty overlap is empty.
    """
    _require_aware("window_start", window_start)
    _require_aware("window_end", window_end)
    _require_aware("placement.start", placement.start)
    if placement.end is not None:
        _require_aware("placement.end", placement.end)
    start = max(placement.start, window_start)
    end = window_end if placement.end is None else min(placement.end, window_end)
    if end <= start:
        return _ZERO
    on_demand_cost = integrate(on_demand_series, start, end, "on_demand_price")
    if placement.lifecycle == "on-demand":
        actual_cost = on_demand_cost
    else:
        actual_cost = integrate(spot_series, start, end, "spot_price")
    return IntervalSavings(
        hours=_hours(start, end),
        on_demand_cost=on_demand_cost,
        actual_cost=actual_cost,
        savings=on_demand_cost - actual_cost,
    )


def summarize(items: Iterable[IntervalSavings]) -> SavingsTotals:
    """The totals of ``items``; ``savings_percent`` is 0 when there is no on-demand cost."""
    hours = on_demand_cost = actual_cost = 0.0
    for item in items:
        hours += item.hours
        on_demand_cost += item.on_demand_cost
        actual_cost += item.actual_cost
    savings = on_demand_cost - actual_cost
    percent = 100.0 * savings / on_demand_cost if on_demand_cost > 0 else 0.0
    return SavingsTotals(
        hours=hours,
        on_demand_cost=on_demand_cost,
        actual_cost=actual_cost,
        savings=savings,
        savings_percent=percent,
    )


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """``[start, end)`` of a calendar month in UTC.

    :raises ValueError: ``month`` is not 1..12.
    """
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    start = datetime(year, month, 1, tzinfo=UTC)
    days = calendar.monthrange(year, month)[1]
    return start, start + timedelta(days=days)


def split_by_month(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at UTC month boundaries, in order, as UTC datetimes.

    Empty when ``end`` is not after ``start``.

    :raises ValueError: a time is naive.
    """
    _require_aware("start", start)
    _require_aware("end", end)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    pieces: list[tuple[datetime, datetime]] = []
    t = start
    while t < end:
        month_end = month_bounds(t.year, t.month)[1]
        pieces.append((t, min(month_end, end)))
        t = month_end
    return pieces


def monthly_savings(
    placements: Iterable[Placement],
    series_for: Callable[[Placement], tuple[Sequence[PricePoint], Sequence[PricePoint]]],
    window_start: datetime,
    window_end: datetime,
) -> dict[tuple[int, int], SavingsTotals]:
    """Totals per UTC ``(year, month)`` of ``placements`` within ``[window_start, window_end)``.

    ``series_for(placement)`` returns ``(spot_series, on_demand_series)`` for that placement.
    Pass one instance's placements for per-instance figures, all of a client's for per-client
    figures. Every month the window touches has an entry, zero if nothing ran in it.
    """
    chosen = list(placements)
    series = [series_for(p) for p in chosen]
    result: dict[tuple[int, int], SavingsTotals] = {}
    for month_start, month_end in split_by_month(window_start, window_end):
        result[(month_start.year, month_start.month)] = summarize(
            placement_savings(p, spot, od, month_start, month_end)
            for p, (spot, od) in zip(chosen, series, strict=True)
        )
    return result
