"""Schedule math: epoch-aligned intervals and time-zone-aware cron, across DST changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from platform_core import JobSpec
from platform_core.jobs.schedule import (
    ScheduleError,
    describe,
    latest_slot,
    next_run,
    slots_between,
    validate,
)


async def _noop() -> None:
    return None


def spec(**kwargs: object) -> JobSpec:
    """A job spec with the given schedule fields."""
    return JobSpec("job", _noop, **kwargs)  # type: ignore[arg-type]


def utc(*args: int) -> datetime:
    """A UTC datetime."""
    return datetime(*args, tzinfo=UTC)


def test_every_slots_align_to_the_epoch_whatever_the_start():
    every = spec(every=timedelta(minutes=5))
    assert next_run(every, utc(2026, 5, 1, 10, 2, 17)) == utc(2026, 5, 1, 10, 5)
    assert next_run(every, utc(2026, 5, 1, 10, 4, 59, 999999)) == utc(2026, 5, 1, 10, 5)
    assert next_run(every, utc(2026, 5, 1, 10, 5)) == utc(2026, 5, 1, 10, 10)


def test_every_sub_second_interval_yields_every_slot_between():
    every = spec(every=timedelta(milliseconds=250))
    slots = list(slots_between(every, utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 1, 0, 0, 1)))
    assert [s.microsecond for s in slots] == [250_000, 500_000, 750_000, 0]
    assert latest_slot(every, utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 1, 100)) == slots[-1]


def test_latest_slot_is_none_when_no_slot_fell():
    every = spec(every=timedelta(hours=1))
    assert latest_slot(every, utc(2026, 1, 1, 10, 0, 1), utc(2026, 1, 1, 10, 59)) is None


def test_on_demand_job_has_no_next_run():
    assert next_run(spec(), utc(2026, 1, 1)) is None
    assert describe(spec()) == "on demand"


def test_cron_is_evaluated_in_its_time_zone_and_returned_in_utc():
    daily = spec(cron="0 9 * * *", timezone="America/New_York")
    assert next_run(daily, utc(2026, 7, 1, 12)) == utc(2026, 7, 1, 13)  # EDT, UTC-4
    assert next_run(daily, utc(2026, 12, 1, 12)) == utc(2026, 12, 1, 14)  # EST, UTC-5


def test_cron_hourly_runs_every_real_hour_across_fall_back_in_berlin():
    hourly = spec(cron="0 * * * *", timezone="Europe/Berlin")
    # 2026-10-25: at 03:00 CEST clocks go back to 02:00 CET; 02:00 local happens twice.
    slots = list(slots_between(hourly, utc(2026, 10, 24, 22, 30), utc(2026, 10, 25, 3, 0)))
    assert slots == [utc(2026, 10, 24, 23), *(utc(2026, 10, 25, h) for h in range(4))]
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(slots))


def test_cron_daily_runs_once_on_fall_back_day_in_berlin():
    daily = spec(cron="30 2 * * *", timezone="Europe/Berlin")
    slots = list(slots_between(daily, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)))
    # 02:30 CEST (00:30Z) on the 25th, not again at 02:30 CET (01:30Z); then 02:30 CET.
    assert slots == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_cron_daily_time_skipped_by_spring_forward_runs_once_after_the_jump_in_berlin():
    daily = spec(cron="30 2 * * *", timezone="Europe/Berlin")
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist that day.
    slots = list(slots_between(daily, utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)))
    assert slots == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_cron_next_run_is_strictly_after_the_given_time():
    hourly = spec(cron="0 * * * *", timezone="UTC")
    assert next_run(hourly, utc(2026, 1, 1, 10)) == utc(2026, 1, 1, 11)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression"),
        ({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"every": timedelta(0)}, "must be positive"),
    ],
)
def test_validate_rejects_unusable_schedules(kwargs, message):
    with pytest.raises(ScheduleError, match=message):
        validate(spec(**kwargs))


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="naive"):
        next_run(spec(every=timedelta(seconds=1)), datetime(2026, 1, 1))
