"""Savings arithmetic against hand-computed cases (prices per hour, costs in price-hours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from platform_pricing.savings import (
    IntervalSavings,
    Placement,
    PricePoint,
    integrate,
    month_bounds,
    monthly_savings,
    placement_savings,
    price_at,
    rounded,
    split_by_month,
    summarize,
)


def t(hour: int, minute: int = 0, day: int = 1, month: int = 1, year: int = 2024) -> datetime:
    """A UTC time on 2024-01-01 unless told otherwise."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def series(*points: tuple[datetime, float], on_demand: float = 1.0) -> list[PricePoint]:
    """Points with the given spot prices and a constant on-demand price."""
    return [PricePoint(at=at, spot_price=price, on_demand_price=on_demand) for at, price in points]


def spot(start: datetime, end: datetime | None, pool_id: int = 1) -> Placement:
    return Placement(pool_id=pool_id, lifecycle="spot", start=start, end=end)


@pytest.fixture
def pool_a() -> list[PricePoint]:
    """Pool A: 0.30/h spot, 1.00/h on demand, reported every hour from 09:00 to 13:00."""
    return series(*((t(h), 0.30) for h in range(9, 14)))


@pytest.fixture
def pool_b() -> list[PricePoint]:
    """Pool B: 0.20/h spot, 1.00/h on demand, reported every hour from 09:00 to 13:00."""
    return series(*((t(h), 0.20) for h in range(9, 14)))


# --- constant price -------------------------------------------------------------------------


def test_savings_constant_price_for_three_hours(pool_a):
    # 3 h x 1.00 = 3.00 on demand; 3 h x 0.30 = 0.90 paid; 2.10 saved.
    s = placement_savings(spot(t(10), t(13)), pool_a, pool_a, t(0), t(23))
    assert s.hours == pytest.approx(3.0)
    assert s.on_demand_cost == pytest.approx(3.0)
    assert s.actual_cost == pytest.approx(0.90)
    assert s.savings == pytest.approx(2.10)


# --- switch between pools in the middle of an hour ------------------------------------------


def test_savings_switch_between_pools_at_10_20(pool_a, pool_b):
    # 10:00-10:20 in A: 1/3 h; paid 1/3 x 0.30 = 0.10;   on demand 1/3 x 1.00 = 0.3333...
    # 10:20-12:00 in B: 5/3 h; paid 5/3 x 0.20 = 0.3333; on demand 5/3 x 1.00 = 1.6666...
    # Total over 10:00-12:00: paid 0.10 + 0.3333 = 0.4333..., on demand 2.00,
    # saved 2.00 - 0.4333 = 1.5666..., i.e. 78.33 %.
    in_a = placement_savings(spot(t(10), t(10, 20)), pool_a, pool_a, t(0), t(23))
    in_b = placement_savings(spot(t(10, 20), t(12), pool_id=2), pool_b, pool_b, t(0), t(23))
    assert in_a.hours == pytest.approx(1 / 3)
    assert in_a.actual_cost == pytest.approx(0.10)
    assert in_a.savings == pytest.approx(1 / 3 - 0.10)
    assert in_b.hours == pytest.approx(5 / 3)
    assert in_b.actual_cost == pytest.approx(1 / 3)
    assert in_b.savings == pytest.approx(5 / 3 - 1 / 3)
    total = summarize([in_a, in_b])
    assert total.hours == pytest.approx(2.0)
    assert total.on_demand_cost == pytest.approx(2.0)
    assert total.actual_cost == pytest.approx(0.10 + 1 / 3)
    assert total.savings == pytest.approx(2.0 - 0.10 - 1 / 3)
    assert total.savings_percent == pytest.approx(100 * (2.0 - 0.10 - 1 / 3) / 2.0)


def test_savings_price_change_at_10_45_inside_the_hour():
    # 10:00-10:45 at 0.30: 0.75 h x 0.30 = 0.225; 10:45-11:00 at 0.50: 0.25 h x 0.50 = 0.125.
    # Paid 0.35, on demand 1.00, saved 0.65.
    prices = series((t(10), 0.30), (t(10, 45), 0.50), (t(11), 0.10))
    s = placement_savings(spot(t(10), t(11)), prices, prices, t(0), t(23))
    assert s.actual_cost == pytest.approx(0.35)
    assert s.savings == pytest.approx(0.65)


# --- gaps and missing history ---------------------------------------------------------------


def test_savings_gap_in_reports_carries_last_price_forward():
    # Reports at 00:00 (0.30), 01:00 (0.40), then nothing for 5 h until 06:00 (0.10).
    # 00:00-01:00 1 h x 0.30 = 0.30; 01:00-06:00 5 h x 0.40 = 2.00 (carried forward);
    # 06:00-07:00 1 h x 0.10 = 0.10. Paid 2.40, on demand 7.00, saved 4.60.
    prices = series((t(0), 0.30), (t(1), 0.40), (t(6), 0.10))
    s = placement_savings(spot(t(0), t(7)), prices, prices, t(0), t(23))
    assert s.hours == pytest.approx(7.0)
    assert s.actual_cost == pytest.approx(2.40)
    assert s.on_demand_cost == pytest.approx(7.0)
    assert s.savings == pytest.approx(4.60)


def test_savings_placement_before_first_point_uses_first_price():
    # The first report is at 10:30 (0.20); 10:00-10:30 is priced at 0.20 too.
    # Paid 1 h x 0.20 = 0.20, on demand 1.00, saved 0.80.
    prices = series((t(10, 30), 0.20))
    s = placement_savings(spot(t(10), t(11)), prices, prices, t(0), t(23))
    assert s.actual_cost == pytest.approx(0.20)
    assert s.savings == pytest.approx(0.80)


def test_savings_points_after_the_interval_are_ignored():
    # The 0.90 at 12:00 starts after the 10:00-11:00 interval: paid 1 h x 0.30.
    prices = series((t(10), 0.30), (t(12), 0.90))
    assert integrate(prices, t(10), t(11)) == pytest.approx(0.30)


def test_savings_point_at_interval_end_does_not_count():
    # [10:00, 11:00) is half-open: the 0.90 reported at 11:00 applies from 11:00 on.
    prices = series((t(10), 0.30), (t(11), 0.90))
    assert integrate(prices, t(10), t(11)) == pytest.approx(0.30)


def test_savings_same_timestamp_last_point_wins():
    prices = series((t(10), 0.30), (t(10), 0.50))
    assert integrate(prices, t(10), t(11)) == pytest.approx(0.50)
    assert price_at(prices, t(10, 30)) == 0.50


def test_savings_on_demand_price_is_a_step_function_too():
    # On demand 1.00 until 10:30, then 1.20: 0.5 x 1.00 + 0.5 x 1.20 = 1.10.
    prices = [
        PricePoint(at=t(10), spot_price=0.30, on_demand_price=1.00),
        PricePoint(at=t(10, 30), spot_price=0.30, on_demand_price=1.20),
    ]
    s = placement_savings(spot(t(10), t(11)), prices, prices, t(0), t(23))
    assert s.on_demand_cost == pytest.approx(1.10)
    assert s.savings == pytest.approx(1.10 - 0.30)


def test_savings_uses_separate_on_demand_series():
    # Spot from pool A (0.30), on-demand price from a dedicated series (0.80): saved 0.50/h.
    on_demand = [PricePoint(at=t(0), spot_price=0.0, on_demand_price=0.80)]
    prices = series((t(0), 0.30), on_demand=5.0)
    s = placement_savings(spot(t(10), t(12)), prices, on_demand, t(0), t(23))
    assert s.on_demand_cost == pytest.approx(1.60)
    assert s.savings == pytest.approx(1.00)


def test_price_at_reads_the_last_point_at_or_before():
    prices = series((t(10), 0.30), (t(11), 0.40))
    assert price_at(prices, t(9)) == 0.30
    assert price_at(prices, t(11)) == 0.40
    assert price_at(prices, t(15)) == 0.40
    assert price_at(prices, t(10, 59), "on_demand_price") == 1.0


# --- months ---------------------------------------------------------------------------------


def test_savings_placement_across_month_boundary_splits_into_two_months():
    # 31 Jan 22:00 to 1 Feb 03:00 at 0.25 (on demand 1.00):
    # January 2 h: paid 0.50, on demand 2.00, saved 1.50;
    # February 3 h: paid 0.75, on demand 3.00, saved 2.25.
    prices = series((t(0, day=31), 0.25))
    placement = spot(t(22, day=31), t(3, day=1, month=2))
    jan = placement_savings(placement, prices, prices, *month_bounds(2024, 1))
    feb = placement_savings(placement, prices, prices, *month_bounds(2024, 2))
    assert (jan.hours, jan.actual_cost, jan.savings) == pytest.approx((2.0, 0.50, 1.50))
    assert (feb.hours, feb.actual_cost, feb.savings) == pytest.approx((3.0, 0.75, 2.25))


def test_monthly_savings_reports_every_month_of_the_window():
    prices = series((t(0, day=31), 0.25))
    placement = spot(t(22, day=31), t(3, day=1, month=2))
    months = monthly_savings(
        [placement], lambda p: (prices, prices), t(0, day=1), t(0, day=1, month=4)
    )
    assert list(months) == [(2024, 1), (2024, 2), (2024, 3)]
    assert months[(2024, 1)].savings == pytest.approx(1.50)
    assert months[(2024, 2)].savings == pytest.approx(2.25)
    assert months[(2024, 3)].hours == 0.0
    assert months[(2024, 3)].savings_percent == 0.0


def test_monthly_savings_sums_placements_of_a_client(pool_a, pool_b):
    # Same switch as test_savings_switch_between_pools_at_10_20, through the monthly helper.
    placements = [spot(t(10), t(10, 20), pool_id=1), spot(t(10, 20), t(12), pool_id=2)]
    by_pool = {1: pool_a, 2: pool_b}
    months = monthly_savings(
        placements,
        lambda p: (by_pool[p.pool_id or 0], by_pool[p.pool_id or 0]),
        t(0),
        t(0, day=1, month=2),
    )
    assert months[(2024, 1)].actual_cost == pytest.approx(0.10 + 1 / 3)
    assert months[(2024, 1)].savings == pytest.approx(2.0 - 0.10 - 1 / 3)


def test_month_bounds_covers_leap_february():
    start, end = month_bounds(2024, 2)
    assert start == datetime(2024, 2, 1, tzinfo=UTC)
    assert end == datetime(2024, 3, 1, tzinfo=UTC)


def test_month_bounds_december_ends_next_year():
    assert month_bounds(2023, 12)[1] == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("month", [0, 13])
def test_month_bounds_rejects_invalid_month(month):
    with pytest.raises(ValueError, match=r"month must be 1\.\.12"):
        month_bounds(2024, month)


def test_split_by_month_cuts_at_utc_month_starts():
    pieces = split_by_month(t(12, day=15), t(6, day=2, month=3))
    assert pieces == [
        (t(12, day=15), t(0, day=1, month=2)),
        (t(0, day=1, month=2), t(0, day=1, month=3)),
        (t(0, day=1, month=3), t(6, day=2, month=3)),
    ]


def test_split_by_month_converts_other_offsets_to_utc():
    # 1 Feb 01:00 at +02:00 is 31 Jan 23:00 UTC: one hour of January, one of February.
    plus_two = timezone(timedelta(hours=2))
    pieces = split_by_month(
        datetime(2024, 2, 1, 1, tzinfo=plus_two), datetime(2024, 2, 1, 3, tzinfo=plus_two)
    )
    assert pieces == [
        (t(23, day=31), t(0, day=1, month=2)),
        (t(0, day=1, month=2), t(1, day=1, month=2)),
    ]


def test_split_by_month_empty_for_reversed_range():
    assert split_by_month(t(12), t(11)) == []
    assert split_by_month(t(12), t(12)) == []


# --- lifecycles and windows -----------------------------------------------------------------


def test_savings_on_demand_placement_saves_nothing(pool_a):
    placement = Placement(pool_id=None, lifecycle="on-demand", start=t(10), end=t(12))
    s = placement_savings(placement, [], pool_a, t(0), t(23))
    assert s.hours == pytest.approx(2.0)
    assert s.on_demand_cost == pytest.approx(2.0)
    assert s.actual_cost == pytest.approx(2.0)
    assert s.savings == 0.0


def test_savings_open_placement_is_clipped_by_window_end(pool_a):
    # Started 10:00, still running; window ends 13:00: 3 h, paid 0.90, saved 2.10.
    s = placement_savings(spot(t(10), None), pool_a, pool_a, t(0), t(13))
    assert s.hours == pytest.approx(3.0)
    assert s.actual_cost == pytest.approx(0.90)
    assert s.savings == pytest.approx(2.10)


def test_savings_placement_is_clipped_by_window_start(pool_a):
    s = placement_savings(spot(t(9), t(12)), pool_a, pool_a, t(11), t(23))
    assert s.hours == pytest.approx(1.0)
    assert s.actual_cost == pytest.approx(0.30)


def test_savings_zero_length_window_is_zero(pool_a):
    s = placement_savings(spot(t(10), t(12)), pool_a, pool_a, t(11), t(11))
    assert s == IntervalSavings(0.0, 0.0, 0.0, 0.0)


def test_savings_reversed_window_is_zero(pool_a):
    s = placement_savings(spot(t(10), t(12)), pool_a, pool_a, t(12), t(10))
    assert s == IntervalSavings(0.0, 0.0, 0.0, 0.0)


def test_savings_placement_outside_window_is_zero():
    # No prices are needed when nothing overlaps.
    s = placement_savings(spot(t(10), t(12)), [], [], t(13), t(14))
    assert s == IntervalSavings(0.0, 0.0, 0.0, 0.0)


def test_integrate_reversed_interval_is_zero(pool_a):
    assert integrate(pool_a, t(12), t(10)) == 0.0


# --- bad input ------------------------------------------------------------------------------


def test_savings_spot_placement_without_prices_is_an_error(pool_a):
    with pytest.raises(ValueError, match="no price points"):
        placement_savings(spot(t(10), t(11)), [], pool_a, t(0), t(23))


def test_integrate_unsorted_series_is_an_error():
    prices = series((t(10), 0.30), (t(10, 30), 0.40), (t(10, 15), 0.50))
    with pytest.raises(ValueError, match="sorted"):
        integrate(prices, t(10), t(11))


def test_savings_naive_window_is_an_error(pool_a):
    with pytest.raises(ValueError, match="timezone-aware"):
        placement_savings(spot(t(10), t(11)), pool_a, pool_a, datetime(2024, 1, 1), t(23))


# --- totals and presentation ----------------------------------------------------------------


def test_summarize_empty_is_zero():
    total = summarize([])
    assert (total.hours, total.savings, total.savings_percent) == (0.0, 0.0, 0.0)


def test_summarize_negative_savings_when_spot_cost_more():
    total = summarize([IntervalSavings(1.0, 1.0, 1.5, -0.5)])
    assert total.savings == pytest.approx(-0.5)
    assert total.savings_percent == pytest.approx(-50.0)


def test_to_dict_rounds_only_for_presentation(pool_a, pool_b):
    in_b = placement_savings(spot(t(10, 20), t(12)), pool_b, pool_b, t(0), t(23))
    assert in_b.actual_cost != round(in_b.actual_cost, 6)
    assert in_b.to_dict() == {
        "hours": 1.666667,
        "on_demand_cost": 1.666667,
        "actual_cost": 0.333333,
        "savings": 1.333333,
    }
    assert summarize([in_b]).to_dict()["savings_percent"] == 80.0


def test_rounded_never_returns_negative_zero():
    assert str(rounded(-1e-12)) == "0.0"
    assert rounded(0.1234567, 3) == 0.123
