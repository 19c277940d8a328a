"""Price history downsampling: bucket edges, assignment, weighted averages, fetch plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from platform_pricing.downsample import (
    MAX_POINTS,
    Bucket,
    FetchPlan,
    bucket_edges,
    downsample,
    fetch_plan,
    needs_raw,
)


def t(hour: int, minute: int = 0, second: int = 0, day: int = 1) -> datetime:
    """A UTC time in January 2024."""
    return datetime(2024, 1, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def four_hours() -> tuple[datetime, datetime]:
    """The window 00:00-04:00 on 2024-01-01."""
    return t(0), t(4)


# --- bucket edges ---------------------------------------------------------------------------


def test_bucket_edges_equal_width_from_start_to_end(four_hours):
    assert bucket_edges(*four_hours, 4) == [t(0), t(1), t(2), t(3), t(4)]


def test_bucket_edges_single_bucket_is_the_window(four_hours):
    assert bucket_edges(*four_hours, 1) == [t(0), t(4)]


def test_bucket_edges_round_up_to_the_microsecond():
    # 10 s in 3 buckets: 3.3333333 s rounds up to 3.333334 s, 6.6666667 s to 6.666667 s.
    edges = bucket_edges(t(0), t(0, 0, 10), 3)
    assert edges == [
        t(0),
        t(0) + timedelta(seconds=3, microseconds=333334),
        t(0) + timedelta(seconds=6, microseconds=666667),
        t(0, 0, 10),
    ]


def test_downsample_assignment_matches_rounded_edges():
    # Just before the second edge stays in the first bucket; the edge itself opens the second.
    edge = t(0) + timedelta(seconds=3, microseconds=333334)
    buckets = downsample(
        t(0), t(0, 0, 10), 3, [], [(edge - timedelta(microseconds=1), 1.0), (edge, 2.0)]
    )
    assert [(b.start, b.samples, b.avg) for b in buckets] == [(t(0), 1, 1.0), (edge, 1, 2.0)]


def test_bucket_edges_accept_epoch_seconds():
    start = t(0).timestamp()
    assert bucket_edges(start, start + 7200, 2) == [t(0), t(1), t(2)]


@pytest.mark.parametrize("points", [0, -1, MAX_POINTS + 1])
def test_bucket_edges_reject_points_out_of_range(four_hours, points):
    with pytest.raises(ValueError, match=f"points must be between 1 and {MAX_POINTS}"):
        bucket_edges(*four_hours, points)


@pytest.mark.parametrize("points", [2.5, True, "10", None])
def test_bucket_edges_reject_points_not_an_integer(four_hours, points):
    with pytest.raises(ValueError, match="points must be an integer"):
        bucket_edges(*four_hours, points)


def test_bucket_edges_accept_max_points(four_hours):
    assert len(bucket_edges(*four_hours, MAX_POINTS)) == MAX_POINTS + 1


@pytest.mark.parametrize("end", [t(0), t(0) - timedelta(seconds=1)])
def test_bucket_edges_reject_end_not_after_start(end):
    with pytest.raises(ValueError, match="must be after start"):
        bucket_edges(t(0), end, 10)


def test_bucket_edges_reject_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        bucket_edges(datetime(2024, 1, 1), t(4), 4)


def test_downsample_rejects_invalid_points(four_hours):
    with pytest.raises(ValueError, match="points must be between"):
        downsample(*four_hours, 0, [], [])


# --- needs_raw ------------------------------------------------------------------------------


def test_needs_raw_false_when_buckets_are_one_hour():
    assert needs_raw(t(0), t(0, day=2), 24) is False


def test_needs_raw_true_when_buckets_are_narrower_than_an_hour():
    assert needs_raw(t(0), t(0, day=2), 25) is True


def test_needs_raw_false_for_a_year_in_500_points():
    assert needs_raw(t(0), t(0) + timedelta(days=366), 500) is False


# --- raw points -----------------------------------------------------------------------------


def test_downsample_raw_points_go_to_the_bucket_containing_them(four_hours):
    raw = [(t(0), 1.0), (t(0, 59, 59), 3.0), (t(1), 5.0), (t(3, 30), 7.0)]
    assert downsample(*four_hours, 4, [], raw) == [
        Bucket(start=t(0), end=t(1), min=1.0, avg=2.0, max=3.0, samples=2),
        Bucket(start=t(1), end=t(2), min=5.0, avg=5.0, max=5.0, samples=1),
        Bucket(start=t(3), end=t(4), min=7.0, avg=7.0, max=7.0, samples=1),
    ]


def test_downsample_omits_empty_buckets(four_hours):
    buckets = downsample(*four_hours, 4, [], [(t(0, 10), 1.0), (t(3, 10), 2.0)])
    assert [b.start for b in buckets] == [t(0), t(3)]


def test_downsample_nothing_gives_no_buckets(four_hours):
    assert downsample(*four_hours, 4, [], []) == []


def test_downsample_point_at_start_is_included(four_hours):
    [bucket] = downsample(*four_hours, 4, [], [(t(0), 1.0)])
    assert bucket.start == t(0)


def test_downsample_point_at_end_is_excluded(four_hours):
    assert downsample(*four_hours, 4, [], [(t(4), 1.0)]) == []


def test_downsample_point_before_start_is_excluded(four_hours):
    assert downsample(*four_hours, 4, [], [(t(0) - timedelta(microseconds=1), 1.0)]) == []


def test_downsample_last_bucket_ends_at_end(four_hours):
    [bucket] = downsample(*four_hours, 3, [], [(t(3, 59), 1.0)])
    assert bucket.end == t(4)


def test_downsample_accepts_epoch_seconds_like_datetimes(four_hours):
    raw = [(t(0, 30), 1.0), (t(2, 30), 2.0)]
    as_epoch = [(at.timestamp(), price) for at, price in raw]
    start, end = four_hours
    assert downsample(start.timestamp(), end.timestamp(), 4, [], as_epoch) == downsample(
        start, end, 4, [], raw
    )


def test_downsample_unsorted_input_gives_the_same_buckets(four_hours):
    raw = [(t(0, 30), 1.0), (t(2, 30), 2.0), (t(0, 10), 3.0)]
    assert downsample(*four_hours, 4, [], raw) == downsample(*four_hours, 4, [], raw[::-1])


# --- hourly rows ----------------------------------------------------------------------------


def test_downsample_hourly_average_is_weighted_by_samples(four_hours):
    # (0.2 x 60 + 0.5 x 20) / 80 = 22 / 80 = 0.275; min of mins 0.05; max of maxes 0.6.
    hourly = [(t(0), 0.1, 0.2, 0.3, 60), (t(1), 0.05, 0.5, 0.6, 20)]
    [bucket] = downsample(*four_hours, 2, hourly, [])
    assert bucket.avg == pytest.approx(0.275)
    assert (bucket.min, bucket.max, bucket.samples) == (0.05, 0.6, 80)


def test_downsample_merges_hourly_rows_and_raw_points(four_hours):
    # Hourly 00:00 (avg 0.2 x 60) plus raw 0.8 and 1.0 at 01:00, 01:01:
    # (12 + 0.8 + 1.0) / 62 = 13.8 / 62; min 0.1 (hourly), max 1.0 (raw).
    hourly = [(t(0), 0.1, 0.2, 0.3, 60)]
    raw = [(t(1), 0.8), (t(1, 1), 1.0)]
    [bucket] = downsample(*four_hours, 2, hourly, raw)
    assert bucket.avg == pytest.approx(13.8 / 62)
    assert (bucket.min, bucket.max, bucket.samples) == (0.1, 1.0, 62)


def test_downsample_hourly_row_goes_to_bucket_of_its_hour_start():
    # 2 buckets over 00:00-03:00, edge at 01:30: the 01:00-02:00 row straddles the edge and
    # goes whole to the first bucket (the documented approximation).
    [first, second] = downsample(
        t(0), t(3), 2, [(t(1), 0.5, 0.5, 0.5, 60), (t(2), 0.7, 0.7, 0.7, 60)], []
    )
    assert (first.start, first.end, first.avg) == (t(0), t(1, 30), 0.5)
    assert (second.start, second.avg) == (t(1, 30), 0.7)


def test_downsample_hourly_row_outside_window_is_excluded(four_hours):
    hourly = [(t(0) - timedelta(hours=1), 9.0, 9.0, 9.0, 60), (t(4), 8.0, 8.0, 8.0, 60)]
    assert downsample(*four_hours, 4, hourly, []) == []


def test_downsample_hourly_row_without_samples_is_ignored(four_hours):
    hourly = [(t(0), 9.0, 9.0, 9.0, 0), (t(0), 1.0, 1.0, 1.0, 60)]
    [bucket] = downsample(*four_hours, 4, hourly, [])
    assert (bucket.min, bucket.max, bucket.samples) == (1.0, 1.0, 60)


def test_downsample_naive_row_is_an_error(four_hours):
    with pytest.raises(TypeError):
        downsample(*four_hours, 4, [], [(datetime(2024, 1, 1, 1), 1.0)])


def test_bucket_to_dict_rounds_prices_and_formats_times():
    bucket = Bucket(start=t(0), end=t(1), min=1 / 3, avg=0.5, max=2 / 3, samples=3)
    assert bucket.to_dict() == {
        "start": "2024-01-01T00:00:00+00:00",
        "end": "2024-01-01T01:00:00+00:00",
        "min": 0.333333,
        "avg": 0.5,
        "max": 0.666667,
        "samples": 3,
    }


# --- a year at one-minute resolution --------------------------------------------------------

_YEAR_START = datetime(2023, 1, 1, tzinfo=UTC)
_MINUTES = 365 * 24 * 60  # 525,600


def _price(minute: int) -> float:
    """Day index plus the fraction of the day: min day, max day + 1439/1440 within each day."""
    day, of_day = divmod(minute, 1440)
    return day + of_day / 1440


def test_downsample_525600_raw_points_into_days():
    start = _YEAR_START.timestamp()
    raw = [(start + 60 * m, _price(m)) for m in range(_MINUTES)]
    buckets = downsample(_YEAR_START, _YEAR_START + timedelta(days=365), 365, [], raw)
    assert len(buckets) == 365
    assert sum(b.samples for b in buckets) == _MINUTES
    for day, bucket in enumerate(buckets):
        assert bucket.start == _YEAR_START + timedelta(days=day)
        assert bucket.samples == 1440
        assert bucket.min == day
        assert bucket.max == day + 1439 / 1440
        assert bucket.avg == pytest.approx(day + 1439 / 2880)


def test_downsample_hourly_and_raw_agree_when_edges_fall_on_hours():
    # 364 days as hourly rows, the last day raw; the same prices all raw give the same buckets.
    start = _YEAR_START.timestamp()
    raw_from = 364 * 1440
    hourly = []
    for hour in range(raw_from // 60):
        prices = [_price(m) for m in range(hour * 60, hour * 60 + 60)]
        hourly.append((start + 3600 * hour, min(prices), sum(prices) / 60, max(prices), 60))
    tail = [(start + 60 * m, _price(m)) for m in range(raw_from, _MINUTES)]
    end = _YEAR_START + timedelta(days=365)
    merged = downsample(_YEAR_START, end, 365, hourly, tail)
    all_raw = downsample(
        _YEAR_START, end, 365, [], [(start + 60 * m, _price(m)) for m in range(_MINUTES)]
    )
    assert len(hourly) == 8736 and len(tail) == 1440
    assert [(b.start, b.min, b.max, b.samples) for b in merged] == [
        (b.start, b.min, b.max, b.samples) for b in all_raw
    ]
    assert [b.avg for b in merged] == pytest.approx([b.avg for b in all_raw])


# --- fetch plan -----------------------------------------------------------------------------


def test_fetch_plan_hourly_for_aggregated_whole_hours_raw_for_the_rest():
    plan = fetch_plan(t(10, 30), t(12, 15, day=10), 100, aggregated_until=t(0, day=10))
    assert plan == FetchPlan(
        hourly=(t(11), t(0, day=10)),
        raw=((t(10, 30), t(11)), (t(0, day=10), t(12, 15, day=10))),
    )


def test_fetch_plan_hourly_only_when_aligned_and_aggregated():
    plan = fetch_plan(t(0), t(0, day=10), 100, aggregated_until=t(0, day=11))
    assert plan == FetchPlan(hourly=(t(0), t(0, day=10)), raw=())


def test_fetch_plan_end_inside_an_hour_takes_that_hour_raw():
    plan = fetch_plan(t(0), t(5, 30, day=10), 100, aggregated_until=t(0, day=11))
    assert plan.hourly == (t(0), t(5, day=10))
    assert plan.raw == ((t(5, day=10), t(5, 30, day=10)),)


def test_fetch_plan_all_raw_when_nothing_aggregated():
    plan = fetch_plan(t(0), t(0, day=10), 100, aggregated_until=None)
    assert plan == FetchPlan(hourly=None, raw=((t(0), t(0, day=10)),))


def test_fetch_plan_all_raw_when_aggregates_end_before_window():
    plan = fetch_plan(t(0, day=5), t(0, day=10), 100, aggregated_until=t(0, day=3))
    assert plan == FetchPlan(hourly=None, raw=((t(0, day=5), t(0, day=10)),))


def test_fetch_plan_all_raw_when_buckets_narrower_than_an_hour():
    plan = fetch_plan(t(0), t(0, day=2), 48, aggregated_until=t(0, day=3))
    assert plan == FetchPlan(hourly=None, raw=((t(0), t(0, day=2)),))


def test_fetch_plan_rejects_invalid_points():
    with pytest.raises(ValueError, match="points must be between"):
        fetch_plan(t(0), t(0, day=2), MAX_POINTS + 1, aggregated_until=None)
