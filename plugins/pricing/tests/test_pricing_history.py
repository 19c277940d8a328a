"""Price history, current prices, options, metrics, switches and the price chart.

Prices, placements, switches and interruptions are written straight to the tables (exact
times); every figure is read back through the API as a client sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from platform_pricing.service import history, maintenance
from platform_pricing.settings import PricingSettings
from platform_pricing.tenancy import Tenant

INST = "/api/pricing/instances"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def setup_one(world: Any) -> tuple[int, Any, int, int]:
    cid, http = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p)
    return cid, http, p, iid


def window(start: str, end: str, points: int, **extra: Any) -> dict[str, Any]:
    return {"start": start + "Z", "end": end + "Z", "points": points, **extra}


# -- price history ------------------------------------------------------------------------


async def test_history_buckets_min_avg_max_from_raw_points(world: Any) -> None:
    """[10:00, 12:00) in 2 buckets: {1, 3} and {2, 6}; the point at 12:00 is outside."""
    cid, http, p, iid = await setup_one(world)
    await world.prices(
        cid,
        p,
        [
            ("2024-03-05T10:00:00", 1.0, 9.0),
            ("2024-03-05T10:30:00", 3.0, 9.0),
            ("2024-03-05T11:15:00", 2.0, 9.0),
            ("2024-03-05T11:59:59.999999", 6.0, 9.0),
            ("2024-03-05T12:00:00", 9.0, 9.0),
        ],
    )

    r = await http.get(
        f"{INST}/{iid}/price-history",
        params=window("2024-03-05T10:00:00", "2024-03-05T12:00:00", 2),
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pool"]["id"] == p
    assert body["sources"] == {
        "hourly": None,
        "raw": [["2024-03-05T10:00:00+00:00", "2024-03-05T12:00:00+00:00"]],
    }
    got = [(b["min"], b["avg"], b["max"], b["samples"]) for b in body["buckets"]]
    assert got == [(1.0, 2.0, 3.0, 2), (2.0, 4.0, 6.0, 2)]
    assert body["buckets"][1]["start"].startswith("2024-03-05T11:00:00")


async def test_history_empty_buckets_are_left_out(world: Any) -> None:
    cid, http, p, iid = await setup_one(world)
    await world.prices(cid, p, [("2024-03-05T10:10:00", 1.0, 9.0)])

    r = await http.get(
        f"{INST}/{iid}/price-history",
        params=window("2024-03-05T10:00:00", "2024-03-05T14:00:00", 4),
    )

    assert [b["start"][:19] for b in r.json()["buckets"]] == ["2024-03-05T10:00:00"]


async def test_history_merges_hourly_aggregates_and_raw_tail(world: Any, platform: Any) -> None:
    """Three days of 10-minute prices; the first two days aggregated. The merged answer
    equals the raw-only one, and the sources say hourly rows were used."""
    cid, http, p, iid = await setup_one(world)
    base = at("2024-03-01T00:00:00")
    await world.prices(
        cid,
        p,
        [(base + timedelta(minutes=10 * k), 0.1 + (k % 17) * 0.01, 1.0) for k in range(3 * 144)],
    )
    async with platform.ctx.db.session() as s:
        await maintenance.aggregate_hours(s, at("2024-03-03T00:00:00"))
    params = window("2024-03-01T00:00:00", "2024-03-04T00:00:00", 12)

    merged = (await http.get(f"{INST}/{iid}/price-history", params=params)).json()
    async with platform.ctx.db.session() as s:
        raw = await history.price_history(
            s,
            Tenant("client", "x", cid),
            iid,
            settings=PricingSettings(),
            now=at("2024-03-05T00:00:00"),
            start=at("2024-03-01T00:00:00"),
            end=at("2024-03-04T00:00:00"),
            points=12,
            use_hourly=False,
        )

    assert merged["sources"]["hourly"] == ["2024-03-01T00:00:00+00:00", "2024-03-03T00:00:00+00:00"]
    assert merged["sources"]["raw"] == [["2024-03-03T00:00:00+00:00", "2024-03-04T00:00:00+00:00"]]
    assert len(merged["buckets"]) == 12
    for m, r in zip(merged["buckets"], raw["buckets"], strict=True):
        assert (m["min"], m["max"], m["samples"]) == (r["min"], r["max"], r["samples"])
        assert m["avg"] == pytest.approx(r["avg"])


async def test_history_narrow_buckets_read_raw_points_only(world: Any, platform: Any) -> None:
    cid, http, p, iid = await setup_one(world)
    await world.prices(
        cid, p, [("2024-03-01T00:30:00", 1.0, 2.0), ("2024-03-01T05:30:00", 2.0, 2.0)]
    )
    async with platform.ctx.db.session() as s:
        await maintenance.aggregate_hours(s, at("2024-03-02T00:00:00"))

    body = (
        await http.get(
            f"{INST}/{iid}/price-history",
            params=window("2024-03-01T00:00:00", "2024-03-01T06:00:00", 12),
        )
    ).json()

    assert body["sources"]["hourly"] is None
    assert [b["avg"] for b in body["buckets"]] == [1.0, 2.0]


async def test_history_defaults_to_the_last_24_hours(world: Any) -> None:
    cid, http, p, iid = await setup_one(world)
    now = datetime.now(UTC)
    await world.prices(
        cid, p, [(now - timedelta(hours=30), 5.0, 9.0), (now - timedelta(hours=2), 1.0, 9.0)]
    )

    body = (await http.get(f"{INST}/{iid}/price-history")).json()

    assert body["points"] == 500
    span = datetime.fromisoformat(body["end"]) - datetime.fromisoformat(body["start"])
    assert span == timedelta(hours=24)
    assert [b["avg"] for b in body["buckets"]] == [1.0]


async def test_history_of_another_pool_by_key_and_by_id(world: Any) -> None:
    cid, http, _, iid = await setup_one(world)
    other = await world.pool("us-east-1b")
    await world.prices(cid, other, [("2024-03-05T10:00:00", 0.7, 1.0)])
    params = window("2024-03-05T00:00:00", "2024-03-06T00:00:00", 1)

    by_key = await http.get(
        f"{INST}/{iid}/price-history",
        params=params | {"region": "us-east-1", "zone": "us-east-1b", "instance_type": "m5.large"},
    )
    by_id = await http.get(f"{INST}/{iid}/price-history", params=params | {"pool_id": other})

    assert by_key.status_code == 200, by_key.text
    assert by_key.json()["pool"]["id"] == other
    assert by_id.json()["buckets"][0]["avg"] == 0.7


async def test_history_pool_the_client_has_no_prices_for_is_404(world: Any) -> None:
    _, http, _, iid = await setup_one(world)
    c2, _ = await world.client()
    secret = await world.pool("us-east-1c")
    await world.prices(c2, secret, [("2024-03-05T10:00:00", 0.7, 1.0)])

    r = await http.get(f"{INST}/{iid}/price-history", params={"pool_id": secret})
    r2 = await http.get(f"{INST}/{iid}/price-history", params={"pool_id": 999_999})

    assert (r.status_code, r2.status_code) == (404, 404)


async def test_history_incomplete_pool_key_is_422(world: Any) -> None:
    _, http, _, iid = await setup_one(world)

    r = await http.get(f"{INST}/{iid}/price-history", params={"region": "us-east-1"})

    assert r.status_code == 422
    assert sorted(e["field"] for e in r.json()["errors"]) == ["instance_type", "zone"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2024-03-05T12:00:00Z", "end": "2024-03-05T10:00:00Z"}, "start"),
        ({"start": "2024-03-05T10:00:00Z", "end": "2024-03-05T10:00:00Z"}, "start"),
        ({"points": 0}, "points"),
        ({"points": 5001}, "points"),
        ({"start": "2024-03-05T10:00:00"}, "start"),
        ({"end": "yesterday"}, "end"),
    ],
)
async def test_history_bad_window_is_422_naming_the_field(
    world: Any, params: dict[str, Any], field: str
) -> None:
    _, http, _, iid = await setup_one(world)

    r = await http.get(f"{INST}/{iid}/price-history", params=params)

    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_history_points_limited_by_settings(platform_factory: Any, world_of: Any) -> None:
    platform = await platform_factory(
        enabled=["pricing"], settings={"pricing": {"history_max_points": 10}}
    )
    world = world_of(platform)
    _, http, _, iid = await setup_one(world)

    ok = await http.get(f"{INST}/{iid}/price-history", params={"points": 10})
    bad = await http.get(f"{INST}/{iid}/price-history", params={"points": 11})

    assert ok.status_code == 200
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "points"


async def test_history_of_another_clients_instance_is_404(world: Any) -> None:
    _, _, _, iid = await setup_one(world)
    _, other = await world.client()

    for path in ("price-history", "pricing", "metrics", "available-options"):
        r = await other.get(f"{INST}/{iid}/{path}")
        assert r.status_code == 404, path


# -- current prices and options -----------------------------------------------------------


async def test_pricing_shows_current_pool_and_others_cheapest_first(world: Any) -> None:
    cid, http, p, iid = await setup_one(world)
    b, c = await world.pool("us-east-1b"), await world.pool("us-east-1c")
    far = await world.pool("us-east-1a", "c5.xlarge")
    await world.prices(
        cid, p, [("2024-03-05T10:00:00", 0.5, 1.0), ("2024-03-05T11:00:00", 0.4, 1.0)]
    )
    await world.prices(cid, b, [("2024-03-05T11:00:00", 0.3, 1.0)])
    await world.prices(cid, c, [("2024-03-05T11:00:00", 0.2, 1.0)])
    await world.prices(cid, far, [("2024-03-05T11:00:00", 0.01, 1.0)])

    body = (await http.get(f"{INST}/{iid}/pricing")).json()

    assert body["current"]["pool"]["id"] == p
    assert body["current"]["spot_price"] == 0.4
    assert [o["pool"]["id"] for o in body["others"]] == [c, b]


async def test_options_rank_by_price_then_interruption_rate(world: Any) -> None:
    cid, http, p, iid = await setup_one(world)
    b, c, stale = [await world.pool(z) for z in ("us-east-1b", "us-east-1c", "us-east-1d")]
    now = datetime.now(UTC)
    recent = now - timedelta(minutes=5)
    await world.prices(cid, p, [(recent, 0.5, 1.0)])
    await world.prices(cid, b, [(recent, 0.2, 1.0)])
    await world.prices(cid, c, [(recent, 0.2, 1.0)])
    await world.prices(cid, stale, [(now - timedelta(days=2), 0.01, 1.0)])
    for _ in range(3):
        await world.interruption(cid, iid, b, now - timedelta(days=1))
    await world.interruption(cid, iid, c, now - timedelta(days=30))  # too old to count

    r = await http.get(f"{INST}/{iid}/available-options")

    assert r.status_code == 200, r.text
    options = r.json()["options"]
    assert [o["pool"]["id"] for o in options] == [c, b, p]
    assert [o["rank"] for o in options] == [1, 2, 3]
    assert options[1]["interruptions"] == 3
    assert options[1]["interruption_rate_per_day"] == pytest.approx(3 / 7)
    assert options[0]["interruptions"] == 0
    assert options[2]["current"] is True
    assert options[0]["saving_percent"] == pytest.approx(80.0)
    assert "3 interruption(s) in 7 day(s)" in options[1]["reason"]


# -- metrics --------------------------------------------------------------------------------


async def test_metrics_time_per_pool_switches_and_savings(world: Any) -> None:
    cid, http, p, iid = await setup_one(world)
    b = await world.pool("us-east-1b")
    await world.place(cid, iid, p, "2024-03-05T10:00:00", "2024-03-05T10:20:00")
    await world.place(cid, iid, b, "2024-03-05T10:20:00", "2024-03-05T12:00:00", "on-demand")
    await world.switch(cid, iid, p, b, "2024-03-05T10:20:00")
    await world.interruption(cid, iid, p, at("2024-03-05T10:18:00"))
    await world.prices(cid, p, [("2024-03-05T10:00:00", 0.25, 1.0)])
    await world.prices(cid, b, [("2024-03-05T10:00:00", 0.25, 1.0)])

    body = (await http.get(f"{INST}/{iid}/metrics")).json()

    assert [(t["pool"]["id"], t["seconds"]) for t in body["time_per_pool"]] == [
        (b, 6000.0),
        (p, 1200.0),
    ]
    assert body["time_per_lifecycle"] == {"spot": 1200.0, "on-demand": 6000.0}
    assert body["switches"] == 1
    assert body["interruptions"] == {"termination": 1, "rebalance": 0}
    # 20 minutes of spot at 0.25 vs 1.0: 1/3 * 0.75 = 0.25; on-demand saves nothing.
    assert body["savings"]["savings"] == pytest.approx(0.25)
    assert body["since"].startswith("2024-03-05T10:00:00")


# -- switches -------------------------------------------------------------------------------


async def pages(http: Any, url: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a cursor-paged list, following ``next_cursor`` to the end."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor is not None else {})
        r = await http.get(url, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        out.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return out
        assert len(out) < 100, "paging does not end"


async def test_switches_filtered_and_paged_newest_first(world: Any) -> None:
    cid, http, p, iid = await setup_one(world)
    iid2 = await world.instance(cid, p)
    b = await world.pool("us-east-1b")
    for h in range(5):
        await world.switch(cid, iid, p, b, f"2024-03-05T1{h}:00:00")
    await world.switch(cid, iid2, p, b, "2024-03-05T12:30:00")

    first = (
        await http.get("/api/pricing/switches", params={"instance_id": iid, "limit": 2})
    ).json()
    ranged = (
        await http.get(
            "/api/pricing/switches",
            params={"start": "2024-03-05T12:00:00Z", "end": "2024-03-05T13:00:00Z"},
        )
    ).json()

    assert [s["switched_at"][:19] for s in first["items"]] == [
        "2024-03-05T14:00:00",
        "2024-03-05T13:00:00",
    ]
    assert first["next_cursor"] == first["items"][-1]["id"]
    assert first["items"][0]["to_pool"]["zone"] == "us-east-1b"
    assert {s["instance_id"] for s in ranged["items"]} == {iid, iid2}
    assert len(ranged["items"]) == 2 and ranged["next_cursor"] is None


async def test_switches_pages_cover_every_switch_once_in_time_order(world: Any) -> None:
    """Keyset on (switched_at, id): switches recorded out of time order, with ties."""
    cid, http, p, iid = await setup_one(world)
    b = await world.pool("us-east-1b")
    times = ["10", "14", "12", "12", "11", "14", "13"]  # insertion (id) order
    for hh in times:
        await world.switch(cid, iid, p, b, f"2024-03-05T{hh}:00:00")
    other_cid, other = await world.client()
    other_iid = await world.instance(other_cid, p)
    await world.switch(other_cid, other_iid, p, b, "2024-03-05T12:00:00")

    every = (await http.get("/api/pricing/switches", params={"limit": 500})).json()
    got = await pages(http, "/api/pricing/switches", limit=2)

    assert every["next_cursor"] is None
    expected = sorted(every["items"], key=lambda s: (s["switched_at"], s["id"]), reverse=True)
    assert every["items"] == expected and len(expected) == len(times)
    assert [len(page["items"]) for page in got] == [2, 2, 2, 1]
    assert [s for page in got for s in page["items"]] == expected
    assert got[-1]["next_cursor"] is None
    assert all(page["next_cursor"] == page["items"][-1]["id"] for page in got[:-1])
    assert {s["client_id"] for page in got for s in page["items"]} == {cid}
    # A page that ends exactly at the end has no next page.
    exact = await pages(http, "/api/pricing/switches", limit=len(times))
    assert len(exact) == 1 and exact[0]["next_cursor"] is None
    # Another client pages only through its own switch.
    theirs = await pages(other, "/api/pricing/switches", limit=1)
    assert [[s["instance_id"] for s in page["items"]] for page in theirs] == [[other_iid]]


async def test_switches_bad_cursor_or_limit_is_422_naming_the_field(world: Any) -> None:
    cid, http, p, iid = await setup_one(world)
    await world.switch(cid, iid, p, p, "2024-03-05T10:00:00")
    mine = (await http.get("/api/pricing/switches")).json()["items"][0]["id"]
    _, other = await world.client()

    for params, field in [
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": 0}, "cursor"),
        ({"cursor": 2**31}, "cursor"),
        ({"cursor": mine}, "cursor"),  # another client's switch: not a cursor of this list
        ({"cursor": 999_999}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
    ]:
        r = await other.get("/api/pricing/switches", params=params)
        assert r.status_code == 422, (params, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field], (params, r.text)
    # Another client's switch and a missing one are refused alike (no existence oracle).
    theirs = await other.get("/api/pricing/switches", params={"cursor": mine})
    missing = await other.get("/api/pricing/switches", params={"cursor": 999_999})
    assert {**theirs.json(), "request_id": None} == {**missing.json(), "request_id": None}
    assert (await http.get("/api/pricing/switches", params={"cursor": mine})).json() == {
        "items": [],
        "next_cursor": None,
    }


async def test_switches_of_another_client_are_invisible(world: Any) -> None:
    cid, _, p, iid = await setup_one(world)
    await world.switch(cid, iid, p, p, "2024-03-05T10:00:00")
    _, other = await world.client()

    listing = (await other.get("/api/pricing/switches")).json()
    filtered = await other.get("/api/pricing/switches", params={"instance_id": iid})

    assert listing == {"items": [], "next_cursor": None}
    assert filtered.status_code == 404


async def test_switches_start_after_end_is_422(world: Any) -> None:
    _, http = await world.client()

    r = await http.get(
        "/api/pricing/switches",
        params={"start": "2024-03-05T12:00:00Z", "end": "2024-03-05T10:00:00Z"},
    )

    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "start"


# -- price chart ------------------------------------------------------------------------------


async def test_price_chart_one_series_per_pool_of_the_type(world: Any) -> None:
    cid, http, p, iid = await setup_one(world)
    b = await world.pool("us-east-1b")
    await world.prices(cid, p, [("2024-03-05T10:00:00", 0.5, 1.0)])
    await world.prices(cid, b, [("2024-03-05T10:00:00", 0.3, 1.1)])

    r = await http.get(
        "/api/pricing/charts/prices",
        params={"instance_id": iid} | window("2024-03-05T00:00:00", "2024-03-06T00:00:00", 24),
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert [(s["pool"]["id"], s["current"]) for s in body["series"]] == [(p, True), (b, False)]
    assert body["series"][1]["points"][0]["avg"] == 0.3
    assert body["on_demand_price"] == 1.0
