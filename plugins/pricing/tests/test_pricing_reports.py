"""Agent reports: price batches, idempotency, validation, tenancy, switches, rebalances,
clean-ups and terminations."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from platform_pricing.models import (
    Command,
    Instance,
    Interruption,
    Placement,
    Pool,
    PricePoint,
    Report,
    Switch,
)
from sqlalchemy import func, select

from platform_core.testing import EventRecord

MAX_POINTS = 50


@pytest.fixture
def platform_settings():
    """A small report limit, to test it."""
    return {"pricing": {"max_points_per_report": MAX_POINTS}}


def _fields(r) -> set[str]:
    return {e["field"] for e in r.json().get("errors", [])}


def _url(agent_id: int, kind: str = "pricing") -> str:
    return f"/api/pricing/agents/{agent_id}/reports/{kind}"


def _points(n: int, *, base: datetime | None = None, zones=("us-east-1a", "us-east-1b")):
    base = base or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return [
        {
            "region": "us-east-1",
            "zone": zones[i % len(zones)],
            "instance_type": "m5.large",
            "spot_price": 0.03 + i / 10000,
            "on_demand_price": 0.096,
            "observed_at": (base + timedelta(seconds=i)).isoformat(),
        }
        for i in range(n)
    ]


async def _count(platform, model, *where) -> int:
    async with platform.ctx.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _events(platform, name: str) -> list[dict]:
    async with platform.ctx.db.session() as s:
        rows = await s.scalars(select(EventRecord).where(EventRecord.name == name))
        return [r.payload for r in rows]


@pytest.fixture
async def agent(tenants):
    c = await tenants.client()
    return await tenants.agent(c)


# -- prices ------------------------------------------------------------------------------------


async def test_price_report_stores_every_point_with_its_pool(platform, agent):
    r = await agent.http.post(_url(agent.id), json={"report_id": "r1", "points": _points(30)})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["duplicate"] is False and body["kind"] == "pricing"
    assert body["result"] == {"accepted": 30, "pools": 2}
    async with platform.ctx.db.session() as s:
        rows = (
            await s.execute(
                select(Pool.zone, PricePoint.spot_price, PricePoint.observed_at)
                .join(Pool, Pool.id == PricePoint.pool_id)
                .order_by(PricePoint.observed_at)
            )
        ).all()
    assert len(rows) == 30
    assert rows[0].zone == "us-east-1a" and rows[1].zone == "us-east-1b"
    assert rows[3].spot_price == pytest.approx(0.0303)
    assert rows[0].observed_at.tzinfo is not None


async def test_price_points_belong_to_the_agents_client(platform, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.http.post(_url(a.id), json={"report_id": "r1", "points": _points(3)})
    assert await _count(platform, PricePoint, PricePoint.client_id == c.id) == 3


async def test_replayed_report_returns_stored_result_without_new_points(platform, agent):
    body = {"report_id": "same", "points": _points(10)}
    first = await agent.http.post(_url(agent.id), json=body)
    again = await agent.http.post(_url(agent.id), json=body)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["result"] == first.json()["result"]
    assert again.json()["received_at"] == first.json()["received_at"]
    assert await _count(platform, PricePoint) == 10


async def test_same_instant_with_another_offset_is_the_same_report(agent):
    points = _points(1)
    await agent.http.post(_url(agent.id), json={"report_id": "tz", "points": points})
    moved = dict(points[0])
    when = datetime.fromisoformat(moved["observed_at"])
    moved["observed_at"] = (
        when.astimezone(UTC)
        .astimezone(__import__("datetime").timezone(timedelta(hours=2)))
        .isoformat()
    )
    r = await agent.http.post(_url(agent.id), json={"report_id": "tz", "points": [moved]})
    assert r.status_code == 200 and r.json()["duplicate"] is True


async def test_report_id_with_another_body_conflicts(platform, agent):
    await agent.http.post(_url(agent.id), json={"report_id": "r9", "points": _points(2)})
    changed = _points(2)
    changed[1]["spot_price"] = 1.5
    r = await agent.http.post(_url(agent.id), json={"report_id": "r9", "points": changed})
    assert r.status_code == 409
    assert r.json()["report_id"] == "r9" and "r9" in r.json()["detail"]
    assert await _count(platform, PricePoint) == 2


async def test_report_id_of_another_kind_conflicts(agent):
    await agent.http.post(_url(agent.id), json={"report_id": "k1", "points": _points(1)})
    r = await agent.http.post(
        _url(agent.id, "cleanup"),
        json={"report_id": "k1", "resources": [], "finished_at": datetime.now(UTC).isoformat()},
    )
    assert r.status_code == 409


async def test_report_ids_are_per_agent(platform, tenants):
    c = await tenants.client()
    one, two = await tenants.agent(c), await tenants.agent(c)
    for a in (one, two):
        r = await a.http.post(_url(a.id), json={"report_id": "shared", "points": _points(2)})
        assert r.status_code == 201
    assert await _count(platform, PricePoint) == 4


async def test_concurrent_replays_store_the_points_once(platform, agent):
    body = {"report_id": "race", "points": _points(20)}
    results = await asyncio.gather(*(agent.http.post(_url(agent.id), json=body) for _ in range(8)))
    assert sorted(r.status_code for r in results) == [200] * 7 + [201]
    assert await _count(platform, PricePoint) == 20
    assert await _count(platform, Report) == 1


async def test_naive_observed_at_names_the_field(agent):
    points = _points(3)
    points[2]["observed_at"] = "2030-01-01T00:00:00"
    r = await agent.http.post(_url(agent.id), json={"report_id": "n", "points": points})
    assert r.status_code == 422
    assert "points.2.observed_at" in _fields(r)


async def test_negative_or_non_finite_prices_are_refused(agent):
    points = _points(2)
    points[1]["spot_price"] = -0.01
    r = await agent.http.post(_url(agent.id), json={"report_id": "neg", "points": points})
    assert r.status_code == 422 and "points.1.spot_price" in _fields(r)
    raw = json.dumps({"report_id": "nan", "points": _points(1)}).replace(
        '"on_demand_price": 0.096', '"on_demand_price": NaN'
    )
    r = await agent.http.post(
        _url(agent.id), content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "points.0.on_demand_price" in _fields(r)


async def test_bad_report_shapes_name_fields(agent):
    r = await agent.http.post(_url(agent.id), json={"report_id": "e", "points": []})
    assert r.status_code == 422 and "points" in _fields(r)
    r = await agent.http.post(_url(agent.id), json={"report_id": "bad id!", "points": _points(1)})
    assert r.status_code == 422 and "report_id" in _fields(r)
    points = _points(1)
    points[0]["zone"] = ""
    r = await agent.http.post(_url(agent.id), json={"report_id": "z", "points": points})
    assert r.status_code == 422 and "points.0.zone" in _fields(r)


async def test_too_many_points_are_refused(platform, agent):
    body = {"report_id": "big", "points": _points(MAX_POINTS + 1)}
    r = await agent.http.post(_url(agent.id), json=body)
    assert r.status_code == 422 and "points" in _fields(r)
    assert str(MAX_POINTS) in r.json()["detail"]
    body = {"report_id": "max", "points": _points(MAX_POINTS)}
    assert (await agent.http.post(_url(agent.id), json=body)).status_code == 201
    assert await _count(platform, PricePoint) == MAX_POINTS


async def test_points_from_the_future_are_refused(agent):
    points = _points(2)
    points[1]["observed_at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await agent.http.post(_url(agent.id), json={"report_id": "f", "points": points})
    assert r.status_code == 422 and "points.1.observed_at" in _fields(r)


async def test_reports_across_clients_are_not_found(platform, tenants):
    a, b = await tenants.client(), await tenants.client()
    a1 = await tenants.agent(a)
    b1 = await tenants.agent(b)
    body = {"report_id": "x", "points": _points(1)}
    assert (await b1.http.post(_url(a1.id), json=body)).status_code == 404
    assert (await b.http.post(_url(a1.id), json=body)).status_code == 404
    assert (await b.admin_http.post(_url(a1.id), json=body)).status_code == 404
    assert await _count(platform, PricePoint) == 0


async def test_only_the_agent_itself_may_report(platform, tenants):
    c = await tenants.client()
    one, two = await tenants.agent(c), await tenants.agent(c)
    body = {"report_id": "x", "points": _points(1)}
    assert (await one.http.post(_url(two.id), json=body)).status_code == 404
    assert (await c.http.post(_url(one.id), json=body)).status_code == 403
    assert await _count(platform, PricePoint) == 0


# -- switches ----------------------------------------------------------------------------------


def _soon() -> datetime:
    """A moment after the agent registered (its first placement's start)."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)


def _switch(report_id="s1", *, at: datetime, **extra):
    return {
        "report_id": report_id,
        "to": {
            "region": "us-east-1",
            "zone": "us-east-1b",
            "instance_type": "m5.xlarge",
            "lifecycle": "spot",
        },
        "new_cloud_id": "i-new",
        "reason": "cheaper",
        "from_price": 0.05,
        "to_price": 0.03,
        "on_demand_price": 0.19,
        "downtime_seconds": 12.5,
        "switched_at": at.isoformat(),
    } | extra


async def test_switch_moves_placements_at_switched_at_exactly(platform, agent):
    at = _soon().replace(microsecond=123456)
    r = await agent.http.post(_url(agent.id, "switch"), json=_switch(at=at))
    assert r.status_code == 201, r.text
    result = r.json()["result"]
    async with platform.ctx.db.session() as s:
        placements = list(
            await s.scalars(
                select(Placement)
                .where(Placement.instance_id == agent.instance_id)
                .order_by(Placement.id)
            )
        )
        instance = await s.get(Instance, agent.instance_id)
        switch = await s.get(Switch, result["switch_id"])
        pool = await s.get(Pool, instance.pool_id)
    old, new = placements
    assert old.ended_at == at and new.started_at == at and new.ended_at is None
    assert new.id == result["placement_id"] and new.pool_id == result["pool_id"]
    assert (pool.zone, pool.instance_type) == ("us-east-1b", "m5.xlarge")
    assert instance.cloud_id == "i-new" and instance.last_switch_at == at
    assert switch.from_pool_id == old.pool_id and switch.to_pool_id == new.pool_id
    assert switch.old_cloud_id == agent.body["instance"]["cloud_id"]
    assert switch.downtime_seconds == 12.5 and switch.to_price == 0.03
    (event,) = await _events(platform, "pricing.switch.completed")
    assert event["switch_id"] == switch.id and event["to_pool_id"] == new.pool_id


async def test_switch_to_on_demand_changes_lifecycle(platform, agent):
    at = _soon()
    body = _switch(at=at)
    body["to"]["lifecycle"] = "on-demand"
    await agent.http.post(_url(agent.id, "switch"), json=body)
    r = await agent.http.get(f"/api/pricing/instances/{agent.instance_id}")
    assert r.json()["lifecycle"] == "on-demand"


async def test_switch_acknowledges_its_command(platform, agent):
    async with platform.ctx.db.session() as s:
        instance = await s.get(Instance, agent.instance_id)
        cmd = Command(
            client_id=instance.client_id,
            agent_id=agent.id,
            instance_id=instance.id,
            target_lifecycle="spot",
            status="pending",
        )
        s.add(cmd)
        await s.flush()
        command_id = cmd.id
    at = _soon()
    r = await agent.http.post(_url(agent.id, "switch"), json=_switch(at=at, command_id=command_id))
    assert r.json()["result"]["command_acknowledged"] is True
    async with platform.ctx.db.session() as s:
        cmd = await s.get(Command, command_id)
    assert cmd.status == "acknowledged" and cmd.acknowledged_at is not None


async def test_switch_with_another_agents_command_is_not_found(platform, tenants):
    c = await tenants.client()
    one, two = await tenants.agent(c), await tenants.agent(c)
    async with platform.ctx.db.session() as s:
        cmd = Command(
            client_id=c.id, agent_id=two.id, instance_id=two.instance_id, status="pending"
        )
        s.add(cmd)
        await s.flush()
        command_id = cmd.id
    at = _soon()
    r = await one.http.post(_url(one.id, "switch"), json=_switch(at=at, command_id=command_id))
    assert r.status_code == 404
    assert await _count(platform, Switch) == 0


async def test_switch_before_the_current_placement_is_refused(platform, agent):
    at = datetime.now(UTC) - timedelta(days=1)
    r = await agent.http.post(_url(agent.id, "switch"), json=_switch(at=at))
    assert r.status_code == 422 and "switched_at" in _fields(r)
    assert await _count(platform, Placement, Placement.ended_at.is_not(None)) == 0


async def test_switch_bad_input_names_fields(agent):
    at = datetime.now(UTC)
    r = await agent.http.post(
        _url(agent.id, "switch"), json=_switch(at=at, switched_at="2030-01-01T00:00:00")
    )
    assert r.status_code == 422 and "switched_at" in _fields(r)
    body = _switch(at=at)
    body["to"]["lifecycle"] = "reserved"
    r = await agent.http.post(_url(agent.id, "switch"), json=body)
    assert r.status_code == 422 and "to.lifecycle" in _fields(r)
    r = await agent.http.post(_url(agent.id, "switch"), json=_switch(at=at, downtime_seconds=-1))
    assert r.status_code == 422 and "downtime_seconds" in _fields(r)


async def test_switch_to_a_cloud_id_of_another_instance_conflicts(tenants):
    c = await tenants.client()
    one = await tenants.agent(c)
    two = await tenants.agent(c, cloud_id="i-taken")
    at = _soon()
    r = await one.http.post(_url(one.id, "switch"), json=_switch(at=at, new_cloud_id="i-taken"))
    assert r.status_code == 409
    assert two.id


async def test_switch_replay_is_a_duplicate_and_moves_nothing(platform, agent):
    at = _soon()
    body = _switch(at=at)
    first = await agent.http.post(_url(agent.id, "switch"), json=body)
    again = await agent.http.post(_url(agent.id, "switch"), json=body)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["result"] == first.json()["result"]
    assert await _count(platform, Placement) == 2
    assert await _count(platform, Switch) == 1


# -- rebalance, clean-up, termination ----------------------------------------------------------


async def test_rebalance_is_recorded_once_per_cloud_instance(platform, agent):
    now = datetime.now(UTC).isoformat()
    first = await agent.http.post(
        _url(agent.id, "rebalance"), json={"report_id": "rb1", "noticed_at": now}
    )
    second = await agent.http.post(
        _url(agent.id, "rebalance"), json={"report_id": "rb2", "noticed_at": now}
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["result"]["created"] is True
    assert second.json()["result"] == {
        "interruption_id": first.json()["result"]["interruption_id"],
        "created": False,
    }
    assert await _count(platform, Interruption, Interruption.kind == "rebalance") == 1
    (event,) = await _events(platform, "pricing.rebalance.recommended")
    assert event["cloud_id"] == agent.body["instance"]["cloud_id"]


async def test_cleanup_report_counts_resources(agent):
    r = await agent.http.post(
        _url(agent.id, "cleanup"),
        json={
            "report_id": "c1",
            "resources": [
                {"kind": "volume", "id": "vol-1", "action": "deleted"},
                {"kind": "eni", "id": "eni-1", "action": "deleted"},
                {"kind": "ip", "id": "eip-1", "action": "released"},
            ],
            "finished_at": datetime.now(UTC).isoformat(),
        },
    )
    assert r.status_code == 201
    assert r.json()["result"]["by_action"] == {"deleted": 2, "released": 1}


async def test_termination_report_is_delegated_and_idempotent(platform, agent):
    pytest.importorskip("platform_pricing.service.replicas").record_termination  # noqa: B018
    body = {"report_id": "t1", "noticed_at": datetime.now(UTC).isoformat()}
    first = await agent.http.post(_url(agent.id, "termination"), json=body)
    assert first.status_code == 201, first.text
    again = await agent.http.post(_url(agent.id, "termination"), json=body)
    assert again.status_code == 200 and again.json()["result"] == first.json()["result"]
    terminations = Interruption.kind == "termination"
    assert await _count(platform, Interruption, terminations) == 1


@pytest.mark.parametrize("kind", ["termination", "rebalance"])
async def test_notice_from_the_future_is_refused(tenants, kind):
    c = await tenants.client()
    a = await tenants.agent(c)
    later = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    r = await a.http.post(
        f"/api/pricing/agents/{a.id}/reports/{kind}",
        json={"report_id": f"r-{kind}", "noticed_at": later},
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["noticed_at"]
