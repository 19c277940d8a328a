"""GET /savings and the savings chart: hand-computed cases through the API.

Placements and prices are written straight to the tables (the intervals must be exact to the
minute); the figures are read back through the API as a client sees them.

Prices are per hour; costs are price x hours. Every expected figure is worked out in the
test's docstring.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from platform_pricing.models import MonthlySavings
from platform_pricing.service import maintenance

S = "/api/pricing/savings"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def figures(body: dict[str, Any]) -> tuple[float, float, float, float]:
    return (body["hours"], body["on_demand_cost"], body["actual_cost"], body["savings"])


async def test_savings_switch_at_10_20_with_price_change_mid_hour(world: Any) -> None:
    """Pool A 10:00-10:20 then pool B 10:20-12:00.

    A: spot 0.10 (since 09:55) until 10:10, then 0.20; on-demand 1.00.
       actual = 10/60*0.10 + 10/60*0.20 = 0.05; on-demand = 20/60*1.00 = 0.333333.
    B: spot 0.30 (since 10:00) until 11:30, then 0.40; on-demand 1.00 then 1.20 at 11:30.
       actual = 70/60*0.30 + 0.5*0.40 = 0.55; on-demand = 70/60*1.00 + 0.5*1.20 = 1.766667.
    Total: 2 h, on-demand 2.1, actual 0.6, savings 1.5 (71.428571 %).
    """
    cid, http = await world.client()
    a, b = await world.pool("us-east-1a"), await world.pool("us-east-1b")
    iid = await world.instance(cid, b)
    await world.place(cid, iid, a, "2024-03-05T10:00:00", "2024-03-05T10:20:00")
    await world.place(cid, iid, b, "2024-03-05T10:20:00", "2024-03-05T12:00:00")
    await world.prices(
        cid, a, [("2024-03-05T09:55:00", 0.10, 1.0), ("2024-03-05T10:10:00", 0.20, 1.0)]
    )
    await world.prices(
        cid, b, [("2024-03-05T10:00:00", 0.30, 1.0), ("2024-03-05T11:30:00", 0.40, 1.2)]
    )

    r = await http.get(S, params={"month": "2024-03"})

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["complete"] is True
    assert [i["instance_id"] for i in body["instances"]] == [iid]
    assert figures(body["instances"][0]) == pytest.approx((2.0, 2.1, 0.6, 1.5))
    assert body["instances"][0]["source"] == "live"
    assert body["totals"]["savings_percent"] == pytest.approx(71.428571)
    assert figures(body["clients"][0]) == pytest.approx((2.0, 2.1, 0.6, 1.5))


async def test_savings_gap_in_reports_carries_the_last_price(world: Any) -> None:
    """Spot 0.10 at 00:00 and 00:30, then nothing for 5 hours, 0.30 at 05:30; on-demand 0.50.

    Placement 00:00-08:00: actual = 5.5*0.10 + 2.5*0.30 = 1.30; on-demand = 8*0.50 = 4.0;
    savings 2.7.
    """
    cid, http = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p)
    await world.place(cid, iid, p, "2024-03-10T00:00:00", "2024-03-10T08:00:00")
    await world.prices(
        cid,
        p,
        [
            ("2024-03-10T00:00:00", 0.10, 0.5),
            ("2024-03-10T00:30:00", 0.10, 0.5),
            ("2024-03-10T05:30:00", 0.30, 0.5),
        ],
    )

    r = await http.get(S, params={"month": "2024-03", "instance_id": iid})

    assert r.status_code == 200, r.text
    assert figures(r.json()["totals"]) == pytest.approx((8.0, 4.0, 1.3, 2.7))


async def test_savings_split_at_the_month_boundary(world: Any) -> None:
    """Placement Mar 31 22:00 - Apr 1 03:00; spot 0.20 from Mar 31 21:00, 0.40 from Apr 1
    01:00; on-demand 1.00.

    March: 2 h, on-demand 2.0, actual 0.4, savings 1.6.
    April: 3 h, on-demand 3.0, actual 1*0.20 + 2*0.40 = 1.0, savings 2.0.
    """
    cid, http = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p)
    await world.place(cid, iid, p, "2024-03-31T22:00:00", "2024-04-01T03:00:00")
    await world.prices(
        cid, p, [("2024-03-31T21:00:00", 0.2, 1.0), ("2024-04-01T01:00:00", 0.4, 1.0)]
    )

    march = (await http.get(S, params={"month": "2024-03"})).json()
    april = (await http.get(S, params={"month": "2024-04"})).json()

    assert figures(march["totals"]) == pytest.approx((2.0, 2.0, 0.4, 1.6))
    assert figures(april["totals"]) == pytest.approx((3.0, 3.0, 1.0, 2.0))
    assert march["end"].startswith("2024-04-01T00:00:00")


async def test_savings_on_demand_placement_saves_nothing(world: Any) -> None:
    """An on-demand placement pays the on-demand price: 3 h x 1.0, savings 0."""
    cid, http = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p, "on-demand")
    await world.place(cid, iid, p, "2024-03-01T00:00:00", "2024-03-01T03:00:00", "on-demand")
    await world.prices(cid, p, [("2024-03-01T00:00:00", 0.2, 1.0)])

    body = (await http.get(S, params={"month": "2024-03"})).json()

    assert figures(body["totals"]) == pytest.approx((3.0, 3.0, 3.0, 0.0))


async def test_savings_per_client_totals_sum_instances(world: Any) -> None:
    """Two instances, 1 h each at spot 0.25 vs on-demand 1.0: 0.75 each, 1.5 for the client."""
    cid, http = await world.client()
    p = await world.pool()
    i1, i2 = await world.instance(cid, p), await world.instance(cid, p)
    for iid in (i1, i2):
        await world.place(cid, iid, p, "2024-02-01T00:00:00", "2024-02-01T01:00:00")
    await world.prices(cid, p, [("2024-02-01T00:00:00", 0.25, 1.0)])

    body = (await http.get(S, params={"month": "2024-02"})).json()

    assert [i["savings"] for i in body["instances"]] == pytest.approx([0.75, 0.75])
    assert body["clients"] == [
        {
            "client_id": cid,
            "hours": 2.0,
            "on_demand_cost": 2.0,
            "actual_cost": 0.5,
            "savings": 1.5,
            "savings_percent": 75.0,
        }
    ]


async def test_savings_closed_month_uses_the_stored_rows(world: Any, platform: Any) -> None:
    """The monthly job stores March; re-running it upserts (one row); later price edits
    don't change the stored figures the API returns."""
    cid, http = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p)
    await world.place(cid, iid, p, "2024-03-10T00:00:00", "2024-03-10T04:00:00")
    await world.prices(cid, p, [("2024-03-10T00:00:00", 0.5, 1.0)])
    for _ in range(2):
        async with platform.ctx.db.session() as s:
            out = await maintenance.store_monthly_savings(s, at("2024-04-01T00:30:00"))
        assert out == {"month": "2024-03", "instances": 1}
    async with platform.ctx.db.session() as s:
        rows = (await s.execute(MonthlySavings.__table__.select())).all()
    assert len(rows) == 1
    await world.prices(cid, p, [("2024-03-10T02:00:00", 0.0, 1.0)])

    body = (await http.get(S, params={"month": "2024-03"})).json()

    assert body["instances"][0]["source"] == "stored"
    assert figures(body["totals"]) == pytest.approx((4.0, 4.0, 2.0, 2.0))


async def test_savings_current_month_is_live_up_to_now(world: Any) -> None:
    """An open placement of the last 2 hours at spot 0.1 vs on-demand 0.5 saves 0.4/h."""
    cid, http = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p)
    now = datetime.now(UTC)
    start = max(now - timedelta(hours=2), now.replace(day=1, hour=0, minute=0, second=0))
    await world.place(cid, iid, p, start.replace(tzinfo=None).isoformat(), None)
    await world.prices(cid, p, [(start - timedelta(hours=1), 0.1, 0.5)])

    body = (await http.get(S)).json()

    assert body["month"] == f"{now.year:04d}-{now.month:02d}"
    assert body["complete"] is False
    item = body["instances"][0]
    assert item["hours"] > 0
    assert item["savings"] == pytest.approx(item["hours"] * 0.4, abs=1e-5)


async def test_savings_pool_without_prices_is_flagged(world: Any) -> None:
    """Hours in a pool with no reported price count with zero costs, flagged."""
    cid, http = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p)
    await world.place(cid, iid, p, "2024-03-01T00:00:00", "2024-03-01T02:00:00")

    item = (await http.get(S, params={"month": "2024-03"})).json()["instances"][0]

    assert item["missing_prices"] is True
    assert figures(item) == (2.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("month", ["2024-13", "2024-3", "24-03", "abcd-ef", "1999-12"])
async def test_savings_bad_month_is_422_naming_month(world: Any, month: str) -> None:
    _, http = await world.client()

    r = await http.get(S, params={"month": month})

    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["month"]


async def test_savings_of_another_clients_instance_is_404(world: Any) -> None:
    cid, _ = await world.client()
    _, other_http = await world.client()
    iid = await world.instance(cid, await world.pool())

    r = await other_http.get(S, params={"instance_id": iid})

    assert r.status_code == 404


async def test_savings_other_client_id_is_404_for_a_client(world: Any) -> None:
    cid, _ = await world.client()
    _, other_http = await world.client()

    r = await other_http.get(S, params={"client_id": cid})

    assert r.status_code == 404


async def test_savings_client_never_sees_other_clients_figures(world: Any) -> None:
    c1, http1 = await world.client()
    c2, _ = await world.client()
    p = await world.pool()
    for cid in (c1, c2):
        iid = await world.instance(cid, p)
        await world.place(cid, iid, p, "2024-03-01T00:00:00", "2024-03-01T01:00:00")
        await world.prices(cid, p, [("2024-03-01T00:00:00", 0.5, 1.0)])

    body = (await http1.get(S, params={"month": "2024-03"})).json()

    assert {i["client_id"] for i in body["instances"]} == {c1}
    assert body["totals"]["savings"] == pytest.approx(0.5)


async def test_savings_admin_sees_every_client_and_filters_by_client(
    world: Any, admin_client: Any
) -> None:
    c1, _ = await world.client()
    c2, _ = await world.client()
    p = await world.pool()
    for cid in (c1, c2):
        iid = await world.instance(cid, p)
        await world.place(cid, iid, p, "2024-03-01T00:00:00", "2024-03-01T01:00:00")
        await world.prices(cid, p, [("2024-03-01T00:00:00", 0.5, 1.0)])

    everyone = (await admin_client.get(S, params={"month": "2024-03"})).json()
    one = (await admin_client.get(S, params={"month": "2024-03", "client_id": c2})).json()

    assert [c["client_id"] for c in everyone["clients"]] == [c1, c2]
    assert everyone["totals"]["savings"] == pytest.approx(1.0)
    assert [c["client_id"] for c in one["clients"]] == [c2]


async def test_savings_chart_has_one_point_per_month(world: Any) -> None:
    cid, http = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p)
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    await world.place(cid, iid, p, start.replace(tzinfo=None).isoformat(), None)
    await world.prices(cid, p, [(start, 0.1, 0.5)])

    r = await http.get("/api/pricing/charts/savings", params={"months": 3})

    assert r.status_code == 200, r.text
    series = r.json()["series"]
    assert len(series) == 3
    assert series[-1]["month"] == f"{now.year:04d}-{now.month:02d}"
    assert series[-1]["complete"] is False
    assert series[0]["savings"] == 0.0
    assert series[-1]["savings"] > 0


async def test_savings_chart_months_out_of_range_is_422(world: Any) -> None:
    _, http = await world.client()

    r = await http.get("/api/pricing/charts/savings", params={"months": 0})

    assert r.status_code == 422
