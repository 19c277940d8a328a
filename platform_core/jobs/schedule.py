"""Schedules: when a periodic job's slots fall, computed the same way in every process.

- ``every`` slots are aligned to the Unix epoch: ``every=timedelta(minutes=5)`` runs at
  :00, :05, :10, ... UTC, whichever process computes them, so two schedulers agree on the
  slot and the database's unique ``(job, scheduled_for, attempt)`` dedupes it.
- ``cron`` expressions are evaluated in the spec's time zone (croniter) and stored in UTC.
  Daylight saving time: a wall-clock time skipped by the spring-forward jump runs at the
  first valid time after it (``30 2 * * *`` in Europe/Berlin runs at 03:00 that day); a
  wall-clock time that occurs twice on the fall-back day runs once (at its first
  occurrence), unless the hour field is ``*``, in which case the repeated hour runs as
  well (an hourly job runs every real hour). This is how Vixie cron behaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from platform_core.specs import JobSpec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CRON_STEPS = 1000


class ScheduleError(ValueError):
    """A job's schedule is invalid (bad cron expression, unknown time zone, bad interval)."""


def is_periodic(spec: JobSpec) -> bool:
    """True when the job has a schedule (``every`` or ``cron``), False for on-demand jobs."""
    return spec.every is not None or spec.cron is not None


def describe(spec: JobSpec) -> str:
    """The schedule for people: ``every 0:05:00``, ``cron 0 3 * * * (UTC)``, ``on demand``."""
    if spec.every is not None:
        return f"every {spec.every}"
    if spec.cron is not None:
        return f"cron {spec.cron} ({spec.timezone})"
    return "on demand"


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}") from exc


def validate(spec: JobSpec) -> None:
    """Raise :class:`ScheduleError` when the spec's schedule cannot be evaluated."""
    if spec.every is not None and spec.every <= timedelta(0):
        raise ScheduleError(f"job {spec.name!r}: every must be positive")
    if spec.cron is not None:
        _zone(spec.timezone)
        if not croniter.is_valid(spec.cron):
            raise ScheduleError(f"job {spec.name!r}: invalid cron expression {spec.cron!r}")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware value")
    return value.astimezone(UTC)


def _next_every(every: timedelta, after: datetime) -> datetime:
    step = every // timedelta(microseconds=1)
    elapsed = (after - EPOCH) // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=(elapsed // step + 1) * step)


def _repeats_every_hour(expr: str) -> bool:
    fields = expr.split()
    return len(fields) >= 2 and fields[1] == "*"


def _next_cron(expr: str, zone_name: str, after: datetime) -> datetime:
    zone = _zone(zone_name)
    it = croniter(expr, after.astimezone(zone))
    hourly = _repeats_every_hour(expr)
    for _ in range(MAX_CRON_STEPS):
        candidate = it.get_next(datetime).astimezone(UTC)
        if candidate <= after:
            continue
        local = candidate.astimezone(zone)
        second_occurrence = local.fold == 1 and (
            local.replace(fold=0).utcoffset() != local.utcoffset()
        )
        if second_occurrence and not hourly:
            continue  # the wall-clock time already ran an hour ago (fall-back)
        return candidate
    raise ScheduleError(f"cron expression {expr!r} yields no time after {after.isoformat()}")


def next_run(spec: JobSpec, after: datetime) -> datetime | None:
    """The first slot of ``spec`` strictly after ``after`` (UTC); None for on-demand jobs."""
    after = _aware(after)
    if spec.every is not None:
        return _next_every(spec.every, after)
    if spec.cron is not None:
        return _next_cron(spec.cron, spec.timezone, after)
    return None


def slots_between(spec: JobSpec, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every slot ``t`` of ``spec`` with ``start < t <= end``, oldest first."""
    current = _aware(start)
    end = _aware(end)
    while True:
        slot = next_run(spec, current)
        if slot is None or slot > end:
            return
        yield slot
        current = slot


def latest_slot(spec: JobSpec, start: datetime, end: datetime) -> datetime | None:
    """The last slot ``t`` with ``start < t <= end`` (None when there is none)."""
    if spec.every is not None:
        step = spec.every // timedelta(microseconds=1)
        elapsed = (_aware(end) - EPOCH) // timedelta(microseconds=1)
        slot = EPOCH + timedelta(microseconds=(elapsed // step) * step)
        return slot if slot > _aware(start) else None
    last = None
    for last in slots_between(spec, start, end):  # noqa: B007  (cron: few slots per tick)
        pass
    return last
