"""Standby replicas: CRUD, lifecycle, sync, promotion, termination notices, exactly-once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from platform_pricing.models import (
    Agent,
    Command,
    Instance,
    Interruption,
    Placement,
    PricePoint,
    Replica,
    Switch,
)
from platform_pricing.service import pools
from platform_pricing.service import replicas as service
from platform_pricing.settings import PricingSettings
from platform_pricing.tenancy import instance_of_agent
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from platform_core.testing import EventRecord, fresh_database, prepared, served

API = "/api/pricing"
REGION, ITYPE = "us-east-1", "m5.large"


# -- helpers ----------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


async def _enable(c: Any, a: Any, standby_count: int = 2, pools_: list | None = None) -> None:
    r = await c.http.put(
        f"{API}/agents/{a.id}/replica-config",
        json={"enabled": True, "standby_count": standby_count, "pools": pools_ or []},
    )
    assert r.status_code == 200, r.text


def _url(a: Any, rid: int | None = None, tail: str = "") -> str:
    base = f"{API}/agents/{a.id}/replicas"
    return base + (f"/{rid}" if rid is not None else "") + tail


async def _replica(c: Any, a: Any, zone: str = "us-east-1b", **extra: Any) -> dict[str, Any]:
    body = {"region": REGION, "zone": zone, "instance_type": ITYPE, **extra}
    r = await c.http.post(_url(a), json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _standby(c: Any, a: Any, zone: str = "us-east-1b") -> dict[str, Any]:
    rep = await _replica(c, a, zone)
    r = await a.http.put(
        _url(a, rep["id"], "/status"), json={"status": "standby", "cloud_id": f"i-{zone}-rep"}
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _terminate(a: Any, cloud_id: str | None = None, **extra: Any) -> Any:
    body = {"report_id": uuid.uuid4().hex, "noticed_at": _now().isoformat(), **extra}
    if cloud_id is not None:
        body["cloud_id"] = cloud_id
    return await a.http.post(f"{API}/agents/{a.id}/reports/termination", json=body)


def _result(r: Any) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    return r.json()["result"]


async def _scalar(platform: Any, stmt: Any) -> Any:
    async with platform.ctx.db.session() as s:
        return await s.scalar(stmt)


async def _all(platform: Any, stmt: Any) -> list[Any]:
    async with platform.ctx.db.session() as s:
        return list(await s.scalars(stmt))


async def _events(platform: Any, name: str) -> list[EventRecord]:
    return await _all(platform, select(EventRecord).where(EventRecord.name == name))


async def _prices(platform: Any, client_id: int, prices: dict[str, tuple[float, float]]) -> None:
    """Recent prices ``{zone: (spot, on_demand)}`` of m5.large pools, seen by the client."""
    async with platform.ctx.db.session() as s:
        for zone, (spot, od) in prices.items():
            pid = await pools.pool_id(s, REGION, zone, ITYPE)
            s.add(
                PricePoint(
                    client_id=client_id,
                    pool_id=pid,
                    observed_at=_now() - timedelta(minutes=1),
                    spot_price=spot,
                    on_demand_price=od,
                )
            )


@pytest.fixture
async def fleet(tenants: Any) -> tuple[Any, Any]:
    """A client and its agent on a spot m5.large in us-east-1a, two standbys allowed."""
    c = await tenants.client()
    a = await tenants.agent(c, region=REGION, zone="us-east-1a", instance_type=ITYPE)
    await _enable(c, a)
    return c, a


# -- create -----------------------------------------------------------------------------


async def test_create_replica_by_pool_key_starts_launching(fleet):
    c, a = fleet
    rep = await _replica(c, a, "us-east-1b")
    assert rep["status"] == "launching"
    assert rep["sync_status"] == "unknown"
    assert (rep["region"], rep["zone"], rep["instance_type"]) == (REGION, "us-east-1b", ITYPE)
    assert rep["agent_id"] == a.id and rep["client_id"] == c.id
    assert rep["lifecycle"] == "spot" and rep["emergency"] is False
    got = await c.http.get(_url(a, rep["id"]))
    assert got.status_code == 200 and got.json() == rep
    listed = await c.http.get(_url(a))
    assert [r["id"] for r in listed.json()["items"]] == [rep["id"]]


async def test_create_replica_by_pool_id_on_demand_in_instance_pool(fleet):
    c, a = fleet
    r = await c.http.post(
        _url(a), json={"pool_id": a.body["instance"]["pool_id"], "lifecycle": "on-demand"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["pool_id"] == a.body["instance"]["pool_id"]
    assert r.json()["lifecycle"] == "on-demand"


async def test_create_spot_replica_in_instance_pool_is_409(fleet):
    c, a = fleet
    r = await c.http.post(_url(a), json={"pool_id": a.body["instance"]["pool_id"]})
    assert r.status_code == 409
    assert "another pool" in r.json()["detail"]


async def test_create_replica_unknown_pool_id_is_422(fleet):
    c, a = fleet
    r = await c.http.post(_url(a), json={"pool_id": 999_999})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "pool_id"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "pool_id"),
        ({"pool_id": 1, "zone": "us-east-1b"}, "zone"),
        ({"region": REGION, "instance_type": ITYPE}, "zone"),
        ({"region": REGION, "zone": "us-east-1b"}, "instance_type"),
        (
            {"region": REGION, "zone": "us-east-1b", "instance_type": ITYPE, "lifecycle": "x"},
            "lifecycle",
        ),
        ({"region": REGION, "zone": "us-east-1b", "instance_type": ITYPE, "color": "red"}, "color"),
        ({"pool_id": 0}, "pool_id"),
        ({"region": "", "zone": "us-east-1b", "instance_type": ITYPE}, "region"),
        (
            {"region": REGION, "zone": "b", "instance_type": ITYPE, "cloud_id": "x" * 101},
            "cloud_id",
        ),
    ],
)
async def test_create_replica_bad_input_is_422_naming_the_field(fleet, body, field):
    c, a = fleet
    r = await c.http.post(_url(a), json=body)
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["errors"]}


async def test_create_beyond_standby_count_is_409(fleet):
    c, a = fleet
    await _enable(c, a, standby_count=1)
    await _replica(c, a, "us-east-1b")
    r = await c.http.post(
        _url(a), json={"region": REGION, "zone": "us-east-1c", "instance_type": ITYPE}
    )
    assert r.status_code == 409
    assert "standby_count=1" in r.json()["detail"]


async def test_create_when_replicas_disabled_is_409(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    r = await c.http.post(
        _url(a), json={"region": REGION, "zone": "us-east-1b", "instance_type": ITYPE}
    )
    assert r.status_code == 409
    assert "disabled" in r.json()["detail"]


async def test_create_outside_configured_pools_is_409(fleet):
    c, a = fleet
    allowed = [{"region": REGION, "zone": "us-east-1c", "instance_type": ITYPE}]
    await _enable(c, a, pools_=allowed)
    r = await c.http.post(
        _url(a), json={"region": REGION, "zone": "us-east-1b", "instance_type": ITYPE}
    )
    assert r.status_code == 409
    assert (await _replica(c, a, "us-east-1c"))["zone"] == "us-east-1c"


async def test_create_second_active_replica_in_same_pool_is_409(fleet):
    c, a = fleet
    first = await _replica(c, a, "us-east-1b")
    r = await c.http.post(
        _url(a), json={"region": REGION, "zone": "us-east-1b", "instance_type": ITYPE}
    )
    assert r.status_code == 409
    assert r.json()["replica_id"] == first["id"]


async def test_deleted_replica_frees_its_standby_slot(fleet):
    c, a = fleet
    await _enable(c, a, standby_count=1)
    rep = await _replica(c, a, "us-east-1b")
    assert (await c.http.delete(_url(a, rep["id"]))).status_code == 204
    assert (await c.http.get(_url(a, rep["id"]))).status_code == 404
    await _replica(c, a, "us-east-1b")
    assert len((await c.http.get(_url(a))).json()["items"]) == 1


async def test_agent_cannot_create_replicas(fleet):
    _c, a = fleet
    r = await a.http.post(
        _url(a), json={"region": REGION, "zone": "us-east-1b", "instance_type": ITYPE}
    )
    assert r.status_code == 403


async def test_agent_lists_its_own_replicas(fleet):
    c, a = fleet
    rep = await _replica(c, a)
    r = await a.http.get(_url(a))
    assert r.status_code == 200
    assert [x["id"] for x in r.json()["items"]] == [rep["id"]]


async def test_list_filters_by_status(fleet):
    c, a = fleet
    launching = await _replica(c, a, "us-east-1b")
    standby = await _standby(c, a, "us-east-1c")
    r = await c.http.get(_url(a), params={"status": "standby"})
    assert [x["id"] for x in r.json()["items"]] == [standby["id"]]
    r = await c.http.get(_url(a), params={"status": "launching"})
    assert [x["id"] for x in r.json()["items"]] == [launching["id"]]
    assert (await c.http.get(_url(a), params={"status": "gone"})).status_code == 422


# -- update and delete ------------------------------------------------------------------


async def test_patch_moves_a_launching_replica(fleet):
    c, a = fleet
    rep = await _replica(c, a, "us-east-1b")
    r = await c.http.patch(
        _url(a, rep["id"]),
        json={"region": REGION, "zone": "us-east-1c", "instance_type": ITYPE, "cloud_id": "i-9"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["zone"] == "us-east-1c" and r.json()["cloud_id"] == "i-9"


async def test_patch_pool_of_standby_replica_is_409_naming_status(fleet):
    c, a = fleet
    rep = await _standby(c, a, "us-east-1b")
    r = await c.http.patch(_url(a, rep["id"]), json={"lifecycle": "on-demand"})
    assert r.status_code == 409
    assert r.json()["current_status"] == "standby" and "standby" in r.json()["detail"]


async def test_patch_into_instance_pool_is_409(fleet):
    c, a = fleet
    rep = await _replica(c, a, "us-east-1b")
    r = await c.http.patch(_url(a, rep["id"]), json={"pool_id": a.body["instance"]["pool_id"]})
    assert r.status_code == 409


async def test_delete_promoted_replica_is_409(fleet):
    c, a = fleet
    rep = await _standby(c, a)
    assert (await c.admin_http.post(_url(a, rep["id"], "/promote"))).status_code == 200
    r = await c.http.delete(_url(a, rep["id"]))
    assert r.status_code == 409 and r.json()["current_status"] == "promoted"


# -- status and sync reports ------------------------------------------------------------


async def test_agent_reports_standby_with_cloud_id(fleet):
    c, a = fleet
    rep = await _replica(c, a)
    r = await a.http.put(
        _url(a, rep["id"], "/status"), json={"status": "standby", "cloud_id": "i-replica"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "standby" and r.json()["cloud_id"] == "i-replica"


async def test_standby_without_cloud_id_is_422(fleet):
    c, a = fleet
    rep = await _replica(c, a)
    r = await a.http.put(_url(a, rep["id"], "/status"), json={"status": "standby"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "cloud_id"


@pytest.mark.parametrize("status", ["promoting", "ready", ""])
async def test_unknown_reported_status_is_422(fleet, status):
    c, a = fleet
    rep = await _replica(c, a)
    r = await a.http.put(_url(a, rep["id"], "/status"), json={"status": status})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "status"


async def test_terminated_replica_cannot_come_back_409_names_status(fleet):
    c, a = fleet
    rep = await _standby(c, a)
    r = await a.http.put(_url(a, rep["id"], "/status"), json={"status": "terminated"})
    assert r.status_code == 200 and r.json()["status"] == "terminated"
    r = await a.http.put(
        _url(a, rep["id"], "/status"), json={"status": "standby", "cloud_id": "i-x"}
    )
    assert r.status_code == 409
    assert r.json()["current_status"] == "terminated" and "terminated" in r.json()["detail"]


async def test_failed_replica_can_only_terminate(fleet):
    c, a = fleet
    rep = await _replica(c, a)
    r = await a.http.put(_url(a, rep["id"], "/status"), json={"status": "failed"})
    assert r.json()["status"] == "failed"
    r = await a.http.put(_url(a, rep["id"], "/status"), json={"status": "launching"})
    assert r.status_code == 409 and r.json()["current_status"] == "failed"
    r = await a.http.put(_url(a, rep["id"], "/status"), json={"status": "terminated"})
    assert r.status_code == 200


async def test_repeated_status_report_is_accepted(fleet):
    c, a = fleet
    rep = await _standby(c, a)
    r = await a.http.put(
        _url(a, rep["id"], "/status"), json={"status": "standby", "cloud_id": "i-b-rep"}
    )
    assert r.status_code == 200 and r.json()["status"] == "standby"


async def test_client_cannot_report_status(fleet):
    c, a = fleet
    rep = await _replica(c, a)
    for http in (c.http, c.admin_http):
        r = await http.put(_url(a, rep["id"], "/status"), json={"status": "failed"})
        assert r.status_code == 403


async def test_other_agent_of_same_client_gets_404(fleet, tenants):
    c, a = fleet
    other = await tenants.agent(c)
    rep = await _replica(c, a)
    r = await other.http.put(_url(a, rep["id"], "/status"), json={"status": "failed"})
    assert r.status_code == 404
    r = await other.http.put(_url(other, rep["id"], "/status"), json={"status": "failed"})
    assert r.status_code == 404


async def test_sync_report_in_sync_defaults_lag_to_zero(fleet):
    c, a = fleet
    rep = await _standby(c, a)
    r = await a.http.put(_url(a, rep["id"], "/sync"), json={"sync_status": "in-sync"})
    assert r.status_code == 200
    assert r.json()["sync_status"] == "in-sync" and r.json()["sync_lag_seconds"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sync_status": "lagging"}, "lag_seconds"),
        ({"sync_status": "lagging", "lag_seconds": -1}, "lag_seconds"),
        ({"sync_status": "behind", "lag_seconds": 3}, "sync_status"),
        ({}, "sync_status"),
    ],
)
async def test_bad_sync_report_is_422(fleet, body, field):
    c, a = fleet
    rep = await _standby(c, a)
    r = await a.http.put(_url(a, rep["id"], "/sync"), json=body)
    assert r.status_code == 422
    assert field in {e["field"] for e in r.json()["errors"]}


async def test_sync_of_terminated_replica_is_409(fleet):
    c, a = fleet
    rep = await _standby(c, a)
    await a.http.put(_url(a, rep["id"], "/status"), json={"status": "terminated"})
    r = await a.http.put(_url(a, rep["id"], "/sync"), json={"sync_status": "in-sync"})
    assert r.status_code == 409 and r.json()["current_status"] == "terminated"


async def test_sync_status_summary(fleet):
    c, a = fleet
    ready = await _standby(c, a, "us-east-1b")
    lagging = await _standby(c, a, "us-east-1c")
    await a.http.put(_url(a, ready["id"], "/sync"), json={"sync_status": "in-sync"})
    await a.http.put(
        _url(a, lagging["id"], "/sync"), json={"sync_status": "lagging", "lag_seconds": 42.5}
    )
    r = await c.http.get(_url(a, tail="/sync-status"))
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["enabled"], s["standby_count"], s["active"], s["ready"]) == (True, 2, 2, 1)
    assert s["by_sync_status"] == {"in-sync": 1, "lagging": 1}
    assert s["max_lag_seconds"] == 42.5
    assert s["healthy"] is False
    await a.http.put(_url(a, lagging["id"], "/sync"), json={"sync_status": "in-sync"})
    assert (await a.http.get(_url(a, tail="/sync-status"))).json()["healthy"] is True


# -- promotion --------------------------------------------------------------------------


async def test_promotion_moves_instance_placement_and_publishes(platform, fleet):
    c, a = fleet
    rep = await _standby(c, a, "us-east-1b")
    r = await c.admin_http.post(_url(a, rep["id"], "/promote"), json={"reason": "drill"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "promoted" and out["promoted_at"]
    inst = (await c.http.get(f"{API}/instances/{a.instance_id}")).json()
    assert inst["cloud_id"] == "i-us-east-1b-rep"
    assert inst["pool_id"] == rep["pool_id"] and inst["zone"] == "us-east-1b"
    placements = await _all(
        platform,
        select(Placement).where(Placement.instance_id == a.instance_id).order_by(Placement.id),
    )
    assert len(placements) == 2
    old, new = placements
    promoted_at = datetime.fromisoformat(out["promoted_at"])
    assert old.pool_id == a.body["instance"]["pool_id"] and old.ended_at == promoted_at
    assert new.pool_id == rep["pool_id"] and new.started_at == promoted_at
    assert new.ended_at is None
    switches = await _all(platform, select(Switch).where(Switch.instance_id == a.instance_id))
    assert [(s.reason, s.to_pool_id, s.new_cloud_id) for s in switches] == [
        ("promotion: drill", rep["pool_id"], "i-us-east-1b-rep")
    ]
    promoted = await _events(platform, "pricing.replica.promoted")
    assert len(promoted) == 1
    assert promoted[0].payload["replica_id"] == rep["id"]
    assert promoted[0].payload["emergency"] is False


async def test_promotion_supersedes_pending_commands(platform, fleet):
    c, a = fleet
    rep = await _standby(c, a)
    async with platform.ctx.db.session() as s:
        s.add(Command(client_id=c.id, agent_id=a.id, instance_id=a.instance_id))
    await c.admin_http.post(_url(a, rep["id"], "/promote"))
    statuses = await _all(platform, select(Command.status).where(Command.agent_id == a.id))
    assert statuses == ["superseded"]


async def test_promotion_needs_client_admin(fleet):
    c, a = fleet
    rep = await _standby(c, a)
    assert (await c.http.post(_url(a, rep["id"], "/promote"))).status_code == 403
    assert (await a.http.post(_url(a, rep["id"], "/promote"))).status_code == 403


async def test_platform_admin_can_promote(fleet, admin_client):
    c, a = fleet
    rep = await _standby(c, a)
    r = await admin_client.post(_url(a, rep["id"], "/promote"))
    assert r.status_code == 200 and r.json()["status"] == "promoted"


async def test_promoting_launching_replica_is_409(fleet):
    c, a = fleet
    rep = await _replica(c, a)
    r = await c.admin_http.post(_url(a, rep["id"], "/promote"))
    assert r.status_code == 409 and r.json()["current_status"] == "launching"


async def test_promoting_terminated_replica_is_409_naming_status(fleet):
    c, a = fleet
    rep = await _standby(c, a)
    await a.http.put(_url(a, rep["id"], "/status"), json={"status": "terminated"})
    r = await c.admin_http.post(_url(a, rep["id"], "/promote"))
    assert r.status_code == 409
    assert "terminated" in r.json()["detail"] and r.json()["current_status"] == "terminated"


async def test_promoting_twice_is_409(platform, fleet):
    c, a = fleet
    rep = await _standby(c, a)
    assert (await c.admin_http.post(_url(a, rep["id"], "/promote"))).status_code == 200
    r = await c.admin_http.post(_url(a, rep["id"], "/promote"))
    assert r.status_code == 409 and r.json()["current_status"] == "promoted"
    assert len(await _events(platform, "pricing.replica.promoted")) == 1


async def test_concurrent_manual_promotions_promote_once(platform, fleet):
    c, a = fleet
    rep = await _standby(c, a)
    rs = await asyncio.gather(
        *(c.admin_http.post(_url(a, rep["id"], "/promote")) for _ in range(10))
    )
    assert sorted(r.status_code for r in rs) == [200] + [409] * 9
    assert len(await _events(platform, "pricing.replica.promoted")) == 1
    n = await _scalar(
        platform, select(func.count(Switch.id)).where(Switch.instance_id == a.instance_id)
    )
    assert n == 1


async def test_promotion_notifies_the_client(platform, fleet):
    from platform_core.testing import Notification

    c, a = fleet
    rep = await _standby(c, a)
    await c.admin_http.post(_url(a, rep["id"], "/promote"))
    await platform.deliver_events()
    titles = await _all(platform, select(Notification.title))
    assert f"Replica {rep['id']} promoted for agent {a.id}" in titles


# -- tenancy ----------------------------------------------------------------------------


ROUTES = [
    ("get", "", None),
    ("post", "", {"region": REGION, "zone": "us-east-1c", "instance_type": ITYPE}),
    ("get", "/sync-status", None),
    ("get", "/{rid}", None),
    ("patch", "/{rid}", {"cloud_id": "i-stolen"}),
    ("delete", "/{rid}", None),
    ("post", "/{rid}/promote", None),
    ("put", "/{rid}/status", {"status": "failed"}),
    ("put", "/{rid}/sync", {"sync_status": "failed"}),
]


@pytest.mark.parametrize(("method", "tail", "body"), ROUTES)
async def test_other_client_gets_404_for_everything(fleet, tenants, method, tail, body):
    c, a = fleet
    rep = await _standby(c, a)
    other = await tenants.client()
    other_agent = await tenants.agent(other)
    url = _url(a) + tail.format(rid=rep["id"])
    for http in (other.http, other.admin_http, other_agent.http):
        kwargs = {"json": body} if body is not None else {}
        r = await http.request(method.upper(), url, **kwargs)
        assert r.status_code == 404, (http, r.text)
    r = await c.http.get(_url(a, rep["id"]))
    assert r.json()["status"] == "standby" and r.json()["cloud_id"] != "i-stolen"


async def test_replica_of_another_agent_is_404(fleet, tenants):
    c, a = fleet
    b = await tenants.agent(c)
    rep = await _replica(c, a)
    assert (await c.http.get(_url(b, rep["id"]))).status_code == 404


async def test_platform_admin_lists_any_clients_replicas(fleet, admin_client):
    c, a = fleet
    rep = await _replica(c, a)
    r = await admin_client.get(_url(a))
    assert r.status_code == 200 and [x["id"] for x in r.json()["items"]] == [rep["id"]]


# -- termination notices ----------------------------------------------------------------


async def test_termination_promotes_existing_standby(platform, fleet):
    c, a = fleet
    lagging = await _standby(c, a, "us-east-1b")
    ready = await _standby(c, a, "us-east-1c")
    await a.http.put(
        _url(a, lagging["id"], "/sync"), json={"sync_status": "lagging", "lag_seconds": 30}
    )
    await a.http.put(_url(a, ready["id"], "/sync"), json={"sync_status": "in-sync"})
    res = _result(await _terminate(a, a.body["instance"]["cloud_id"]))
    assert res["replica_id"] == ready["id"]
    assert res["promoted"] is True and res["duplicate"] is False
    rep = (await c.http.get(_url(a, ready["id"]))).json()
    assert rep["status"] == "promoted" and rep["emergency"] is True
    inst = (await c.http.get(f"{API}/instances/{a.instance_id}")).json()
    assert inst["cloud_id"] == "i-us-east-1c-rep" and inst["zone"] == "us-east-1c"
    replicas = await _all(platform, select(Replica).where(Replica.agent_id == a.id))
    assert len(replicas) == 2  # no new replica launched
    reasons = await _all(platform, select(Switch.reason))
    assert reasons == ["emergency promotion"]
    assert len(await _events(platform, "pricing.termination.notice")) == 1
    assert len(await _events(platform, "pricing.replica.promoted")) == 1


async def test_termination_without_standby_launches_in_cheapest_pool(platform, fleet):
    c, a = fleet
    await _prices(
        platform,
        c.id,
        {"us-east-1a": (0.01, 0.1), "us-east-1b": (0.04, 0.1), "us-east-1c": (0.03, 0.1)},
    )
    res = _result(await _terminate(a))
    assert res["promoted"] is True
    rep = (await c.http.get(_url(a, res["replica_id"]))).json()
    assert (rep["zone"], rep["lifecycle"], rep["emergency"]) == ("us-east-1c", "spot", True)
    assert rep["status"] == "promoted"
    inst = (await c.http.get(f"{API}/instances/{a.instance_id}")).json()
    assert inst["zone"] == "us-east-1c"
    assert inst["cloud_id"] == f"replica-{rep['id']}"
    interruption = await _scalar(platform, select(Interruption))
    assert interruption.replica_id == rep["id"]
    assert interruption.pool_id == a.body["instance"]["pool_id"]
    assert interruption.cloud_id == a.body["instance"]["cloud_id"]


async def test_emergency_pool_skips_recently_interrupted_pools(platform, fleet):
    c, a = fleet
    await _prices(platform, c.id, {"us-east-1b": (0.04, 0.1), "us-east-1c": (0.03, 0.1)})
    async with platform.ctx.db.session() as s:
        pool_c = await pools.pool_id(s, REGION, "us-east-1c", ITYPE)
        s.add(
            Interruption(
                client_id=c.id,
                instance_id=a.instance_id,
                pool_id=pool_c,
                cloud_id="i-earlier",
                kind="termination",
                noticed_at=_now() - timedelta(hours=1),
            )
        )
    res = _result(await _terminate(a))
    rep = (await c.http.get(_url(a, res["replica_id"]))).json()
    assert rep["zone"] == "us-east-1b"


async def test_emergency_without_prices_goes_on_demand_in_same_pool(fleet):
    c, a = fleet
    res = _result(await _terminate(a))
    rep = (await c.http.get(_url(a, res["replica_id"]))).json()
    assert rep["lifecycle"] == "on-demand"
    assert rep["pool_id"] == a.body["instance"]["pool_id"]
    inst = (await c.http.get(f"{API}/instances/{a.instance_id}")).json()
    assert inst["lifecycle"] == "on-demand"


async def test_duplicate_notice_returns_the_first_result(platform, fleet):
    _c, a = fleet
    cloud = a.body["instance"]["cloud_id"]
    first = _result(await _terminate(a, cloud))
    again = _result(await _terminate(a, cloud))
    assert again == {**first, "duplicate": True}
    assert len(await _all(platform, select(Interruption))) == 1
    assert len(await _all(platform, select(Replica))) == 1
    assert len(await _events(platform, "pricing.termination.notice")) == 1


async def test_late_notice_without_cloud_id_is_a_duplicate(platform, fleet):
    _c, a = fleet
    noticed = _now() - timedelta(seconds=5)
    first = _result(await _terminate(a, a.body["instance"]["cloud_id"]))
    async with platform.ctx.db.session() as s:
        agent = await s.get(Agent, a.id)
        again = await service.record_termination(
            s,
            agent=agent,
            instance=await instance_of_agent(s, a.id),
            cloud_id=None,
            noticed_at=noticed,
            action_at=None,
            settings=PricingSettings(),
        )
    assert again == {**first, "duplicate": True}
    assert len(await _events(platform, "pricing.replica.promoted")) == 1


async def test_notice_for_a_replica_terminates_only_the_replica(platform, fleet):
    c, a = fleet
    rep = await _standby(c, a, "us-east-1b")
    res = _result(await _terminate(a, "i-us-east-1b-rep"))
    assert res["promoted"] is False and res["replica_id"] is None
    assert (await c.http.get(_url(a, rep["id"]))).json()["status"] == "terminated"
    inst = (await c.http.get(f"{API}/instances/{a.instance_id}")).json()
    assert inst["cloud_id"] == a.body["instance"]["cloud_id"]
    interruption = await _scalar(platform, select(Interruption))
    assert interruption.pool_id == rep["pool_id"]
    assert await _events(platform, "pricing.replica.promoted") == []


async def test_agent_confirms_real_cloud_id_of_emergency_replica(fleet):
    c, a = fleet
    res = _result(await _terminate(a))
    rid = res["replica_id"]
    r = await a.http.put(_url(a, rid, "/status"), json={"status": "promoted", "cloud_id": "i-new"})
    assert r.status_code == 200, r.text
    assert r.json()["cloud_id"] == "i-new"
    inst = (await c.http.get(f"{API}/instances/{a.instance_id}")).json()
    assert inst["cloud_id"] == "i-new"


@pytest.mark.parametrize("platform_settings", [{"pricing": {"emergency_promote": False}}])
async def test_emergency_promote_off_launches_without_promoting(platform, fleet):
    c, a = fleet
    res = _result(await _terminate(a))
    assert res["promoted"] is False and res["replica_id"] is not None
    rep = (await c.http.get(_url(a, res["replica_id"]))).json()
    assert rep["status"] == "launching" and rep["emergency"] is True
    inst = (await c.http.get(f"{API}/instances/{a.instance_id}")).json()
    assert inst["cloud_id"] == a.body["instance"]["cloud_id"]
    assert len(await _events(platform, "pricing.termination.notice")) == 1
    assert await _events(platform, "pricing.replica.promoted") == []


# -- exactly once under concurrency -----------------------------------------------------


async def _assert_exactly_once(platform: Any, a: Any, results: list[dict[str, Any]]) -> None:
    assert len({r["interruption_id"] for r in results}) == 1
    assert len({r["replica_id"] for r in results}) == 1
    assert all(r["promoted"] for r in results)
    assert sorted(r["duplicate"] for r in results) == [False] + [True] * (len(results) - 1)
    assert len(await _all(platform, select(Interruption))) == 1
    emergency = await _all(platform, select(Replica).where(Replica.emergency))
    assert [r.status for r in emergency] == ["promoted"]
    reasons = await _all(platform, select(Switch.reason).where(Switch.instance_id == a.instance_id))
    assert reasons == ["emergency promotion"]
    placements = await _all(
        platform, select(Placement).where(Placement.instance_id == a.instance_id)
    )
    assert len(placements) == 2 and sum(p.ended_at is None for p in placements) == 1
    assert len(await _events(platform, "pricing.replica.promoted")) == 1
    assert len(await _events(platform, "pricing.termination.notice")) == 1


async def test_concurrent_notices_through_the_api_act_once(platform, fleet):
    c, a = fleet
    await _prices(platform, c.id, {"us-east-1b": (0.03, 0.1)})
    cloud = a.body["instance"]["cloud_id"]
    responses = await asyncio.gather(*(_terminate(a, cloud) for _ in range(20)))
    await _assert_exactly_once(platform, a, [_result(r) for r in responses])
    inst = await _scalar(platform, select(Instance).where(Instance.id == a.instance_id))
    assert inst.cloud_id.startswith("replica-")


@pytest.mark.parametrize("named", [True, False], ids=["cloud_id", "no_cloud_id"])
async def test_concurrent_notices_in_concurrent_sessions_act_once(platform, fleet, named):
    _c, a = fleet
    cloud = a.body["instance"]["cloud_id"] if named else None
    noticed = _now()

    async def notice() -> dict[str, Any]:
        async with platform.ctx.db.session() as s:
            agent = await s.get(Agent, a.id)
            return await service.record_termination(
                s,
                agent=agent,
                instance=await instance_of_agent(s, a.id),
                cloud_id=cloud,
                noticed_at=noticed,
                action_at=noticed + timedelta(minutes=2),
                settings=PricingSettings(),
            )

    results = await asyncio.gather(*(notice() for _ in range(20)))
    await _assert_exactly_once(platform, a, list(results))


async def test_manual_promotion_racing_notices_promotes_once(platform, fleet):
    c, a = fleet
    rep = await _standby(c, a)
    cloud = a.body["instance"]["cloud_id"]
    manual, *notices = await asyncio.gather(
        c.admin_http.post(_url(a, rep["id"], "/promote")),
        *(_terminate(a, cloud) for _ in range(5)),
    )
    assert manual.status_code in (200, 409), manual.text
    results = [_result(r) for r in notices]
    assert len({r["interruption_id"] for r in results}) == 1
    assert len(await _events(platform, "pricing.replica.promoted")) == 1
    assert len(await _all(platform, select(Switch))) == 1
    assert len(await _all(platform, select(Replica))) == 1
    inst = await _scalar(platform, select(Instance).where(Instance.id == a.instance_id))
    assert inst.cloud_id == "i-us-east-1b-rep"


# -- exactly once at a running server (SQLite and PostgreSQL) ---------------------------


async def _admin_token(config_path: Path) -> str:
    """Migrate the database and create an admin with a token."""
    async with prepared(config_path) as platform:
        return await platform.token(user=await platform.user("admin", "racer"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def server(request, tmp_path):
    """A ``platformctl serve`` subprocess with pricing on a fresh database: (base, token, url)."""
    async with fresh_database(request.param, tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "WARNING"\n'
            '[plugins]\nenabled = ["pricing"]\n'
        )
        token = await _admin_token(config)
        async with served(config) as base:
            yield base, token, url


async def test_concurrent_notices_at_a_running_server_act_once(server):
    base, token, url = server
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        admin = {"Authorization": f"Bearer {token}"}
        r = await http.post(f"{API}/clients", json={"name": "racers"}, headers=admin)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        r = await http.post(f"{API}/clients/{cid}/tokens", json={"name": "t"}, headers=admin)
        client = {"Authorization": f"Bearer {r.json()['token']}"}
        body = {
            "name": "racer",
            "version": "1",
            "instance": {
                "cloud_id": "i-doomed",
                "region": REGION,
                "zone": "us-east-1a",
                "instance_type": ITYPE,
                "lifecycle": "spot",
            },
        }
        r = await http.post(f"{API}/agents/register", json=body, headers=client)
        assert r.status_code == 201, r.text
        agent_id = r.json()["agent"]["id"]
        agent = {"Authorization": f"Bearer {r.json()['token']}"}
        noticed = _now().isoformat()

        async def notice(i: int) -> httpx.Response:
            report = {"report_id": f"n-{i}", "cloud_id": "i-doomed", "noticed_at": noticed}
            return await http.post(
                f"{API}/agents/{agent_id}/reports/termination", json=report, headers=agent
            )

        responses = await asyncio.gather(*(notice(i) for i in range(20)))
        results = [_result(r) for r in responses]
    assert len({(r["interruption_id"], r["replica_id"]) for r in results}) == 1
    assert sorted(r["duplicate"] for r in results) == [False] + [True] * 19
    assert all(r["promoted"] for r in results)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            async def count(sql: str) -> int:
                return int((await conn.execute(text(sql))).scalar_one())

            assert await count("SELECT count(*) FROM pricing_interruptions") == 1
            assert await count("SELECT count(*) FROM pricing_replicas WHERE emergency") == 1
            assert (
                await count(
                    "SELECT count(*) FROM pricing_switches WHERE reason = 'emergency promotion'"
                )
                == 1
            )
            assert (
                await count(
                    "SELECT count(*) FROM core_events WHERE name = 'pricing.replica.promoted'"
                )
                == 1
            )
            assert (
                await count(
                    "SELECT count(*) FROM core_events WHERE name = 'pricing.termination.notice'"
                )
                == 1
            )
    finally:
        await engine.dispose()
