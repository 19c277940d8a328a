"""Price history downsampling: merge hourly aggregates and raw points into N min/avg/max buckets.

Pure Python, no I/O. The database layer fetches hourly aggregate rows for the hours already
aggregated and raw points for the rest (``fetch_plan`` says which ranges); ``downsample``
merges them.

Buckets and edges:

- ``[start, end)`` is cut into ``points`` buckets of equal width (to the microsecond; an edge
  that falls between two microseconds is rounded up). Every bucket is half-open,
  ``[edge_i, edge_i+1)``, the last one included: a point exactly at ``end`` is left out, so
  consecutive windows ``[a, b)`` and ``[b, c)`` never show a point twice.
- A raw point goes to the bucket containing its ``at``. An hourly row goes, whole, to the
  bucket containing its hour start; rows whose hour starts outside ``[start, end)`` are left
  out. This is exact when bucket edges fall on hour boundaries and otherwise misplaces at most
  the hour that straddles an edge. When buckets are narrower than an hour the approximation is
  no longer acceptable: ``needs_raw`` says so, and callers pass raw points only.
- ``avg`` is weighted by samples (a raw point is one sample); ``min`` and ``max`` are the
  extremes of everything in the bucket. Rows with fewer than one sample are ignored.
- Empty buckets are omitted (the client draws a gap), so the result may have fewer than
  ``points`` buckets.

Times may be passed as timezone-aware datetimes or as epoch seconds (``int`` or ``float``,
which is cheaper for long raw series); both are compared as integer microseconds, so no
floating error decides which bucket a point falls in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "MAX_POINTS",
    "Bucket",
    "FetchPlan",
    "Instant",
    "bucket_edges",
    "downsample",
    "fetch_plan",
    "needs_raw",
]

MAX_POINTS = 5000
"""The most buckets a request may ask for."""

Instant = datetime | float
"""A time: a timezone-aware datetime, or seconds since the Unix epoch."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_HOUR_US = 3_600_000_000


@dataclass(frozen=True, slots=True)
class Bucket:
    """Prices in ``[start, end)``: their minimum, sample-weighted average, maximum and count."""

    start: datetime
    end: datetime
    min: float
    avg: float
    max: float
    samples: int

    def to_dict(self, digits: int = 6) -> dict[str, str | float | int]:
        """The bucket with ISO 8601 times and prices rounded to ``digits`` decimals."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "min": round(self.min, digits) + 0.0,
            "avg": round(self.avg, digits) + 0.0,
            "max": round(self.max, digits) + 0.0,
            "samples": self.samples,
        }


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What to fetch for a request: one range of hourly rows (or none) and ranges of raw points.

    All ranges are half-open ``[from, to)``.
    """

    hourly: tuple[datetime, datetime] | None
    raw: tuple[tuple[datetime, datetime], ...]


def _us(value: Instant) -> int:
    """``value`` as integer microseconds since the epoch."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"times must be timezone-aware, got naive {value!r}")
        return (value - _EPOCH) // _US
    return round(value * 1_000_000)


def _datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _window(start: Instant, end: Instant, points: int) -> tuple[int, int]:
    """The window as ``(start_us, span_us)``, validated."""
    if isinstance(points, bool) or not isinstance(points, int):
        raise ValueError(f"points must be an integer, got {points!r}")
    if not 1 <= points <= MAX_POINTS:
        raise ValueError(f"points must be between 1 and {MAX_POINTS}, got {points}")
    start_us, end_us = _us(start), _us(end)
    if end_us <= start_us:
        raise ValueError(f"end ({end!r}) must be after start ({start!r})")
    return start_us, end_us - start_us


def _edge(start_us: int, span_us: int, points: int, i: int) -> int:
    # Rounded up so that "t in bucket i" (t - start) * points // span == i holds exactly
    # for edge_i <= t < edge_i+1 with integer t.
    return start_us - (-span_us * i // points)


def bucket_edges(start: Instant, end: Instant, points: int) -> list[datetime]:
    """The ``points + 1`` edges of ``points`` equal-width buckets over ``[start, end)``, in UTC.

    The first edge is ``start``, the last ``end``.

    :raises ValueError: ``points`` is not an integer in 1..``MAX_POINTS``, ``end`` is not after
        ``start``, or a time is naive.
    """
    start_us, span_us = _window(start, end, points)
    return [_datetime(_edge(start_us, span_us, points, i)) for i in range(points + 1)]


def needs_raw(start: Instant, end: Instant, points: int) -> bool:
    """Whether buckets are narrower than an hour, so hourly rows must not be used.

    :raises ValueError: as ``bucket_edges``.
    """
    _, span_us = _window(start, end, points)
    return span_us < points * _HOUR_US


def fetch_plan(
    start: datetime, end: datetime, points: int, aggregated_until: datetime | None
) -> FetchPlan:
    """Which hourly rows and which raw points to fetch for ``[start, end)`` in ``points`` buckets.

    ``aggregated_until`` is the end of the hours the daily job has aggregated (None: nothing
    yet). Hourly rows are used for the whole hours inside the window that are aggregated, raw
    points for the rest; when ``needs_raw`` holds, raw points for everything. The ranges never
    overlap, so no price is counted twice.

    :raises ValueError: as ``bucket_edges``.
    """
    start_us, span_us = _window(start, end, points)
    end_us = start_us + span_us
    if aggregated_until is None or span_us < points * _HOUR_US:
        return FetchPlan(hourly=None, raw=((start, end),))
    first_hour = -(-start_us // _HOUR_US) * _HOUR_US
    last_hour = min(end_us, _us(aggregated_until)) // _HOUR_US * _HOUR_US
    if last_hour <= first_hour:
        return FetchPlan(hourly=None, raw=((start, end),))
    hourly = (_datetime(first_hour), _datetime(last_hour))
    raw: list[tuple[datetime, datetime]] = []
    if start_us < first_hour:
        raw.append((start, hourly[0]))
    if last_hour < end_us:
        raw.append((hourly[1], end))
    return FetchPlan(hourly=hourly, raw=tuple(raw))


def downsample(
    start: Instant,
    end: Instant,
    points: int,
    hourly: Iterable[tuple[Instant, float, float, float, int]],
    raw: Iterable[tuple[Instant, float]],
) -> list[Bucket]:
    """Up to ``points`` non-empty buckets over ``[start, end)``, in time order.

    ``hourly`` rows are ``(hour_start, min, avg, max, samples)``; ``raw`` points are
    ``(at, price)``. Neither needs to be sorted. The rules are in the module docstring.

    :raises ValueError: as ``bucket_edges``.
    :raises TypeError: a datetime in the rows is naive.
    """
    start_us, span_us = _window(start, end, points)
    n = points
    lows = [float("inf")] * n
    highs = [float("-inf")] * n
    sums = [0.0] * n
    counts = [0] * n
    # Inner loops are written out (no helper call per row): this is the hot path.
    for at, lo, avg, hi, samples in hourly:
        if samples < 1:
            continue
        offset = (
            (at - _EPOCH) // _US if isinstance(at, datetime) else round(at * 1_000_000)
        ) - start_us
        if offset < 0 or offset >= span_us:
            continue
        i = offset * n // span_us
        if lo < lows[i]:
            lows[i] = lo
        if hi > highs[i]:
            highs[i] = hi
        sums[i] += avg * samples
        counts[i] += samples
    for at, price in raw:
        offset = (
            (at - _EPOCH) // _US if isinstance(at, datetime) else round(at * 1_000_000)
        ) - start_us
        if offset < 0 or offset >= span_us:
            continue
        i = offset * n // span_us
        if price < lows[i]:
            lows[i] = price
        if price > highs[i]:
            highs[i] = price
        sums[i] += price
        counts[i] += 1
    return [
        Bucket(
            start=_datetime(_edge(start_us, span_us, n, i)),
            end=_datetime(_edge(start_us, span_us, n, i + 1)),
            min=lows[i],
            avg=sums[i] / counts[i],
            max=highs[i],
            samples=counts[i],
        )
        for i in range(n)
        if counts[i]
    ]
