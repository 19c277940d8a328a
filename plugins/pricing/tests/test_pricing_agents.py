"""Agents: registration and token rotation, tenancy, heartbeats, liveness, replica settings,
instances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from platform_pricing.models import Agent, Placement
from platform_pricing.service.agents import mark_offline
from sqlalchemy import select, update

from platform_core.testing import EventRecord

A = "/api/pricing/agents"


def _fields(r) -> set[str]:
    return {e["field"] for e in r.json().get("errors", [])}


def _body(name="web-1", cloud_id="i-001", **instance):
    spec = {
        "cloud_id": cloud_id,
        "region": "us-east-1",
        "zone": "us-east-1a",
        "instance_type": "m5.large",
        "lifecycle": "spot",
    } | instance
    return {"name": name, "version": "1.2.3", "instance": spec}


async def _events(platform, name: str) -> list[dict]:
    async with platform.ctx.db.session() as s:
        rows = await s.scalars(select(EventRecord).where(EventRecord.name == name))
        return [r.payload for r in rows]


async def _placements(platform, instance_id: int) -> list[Placement]:
    async with platform.ctx.db.session() as s:
        rows = await s.scalars(
            select(Placement).where(Placement.instance_id == instance_id).order_by(Placement.id)
        )
        return list(rows)


async def test_register_creates_agent_instance_and_first_placement(platform, tenants):
    c = await tenants.client()
    before = datetime.now(UTC)
    r = await c.http.post(f"{A}/register", json=_body())
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["agent"]["name"] == "web-1" and out["agent"]["status"] == "online"
    assert out["agent"]["client_id"] == c.id
    assert out["agent"]["instance_id"] == out["instance"]["id"]
    inst = out["instance"]
    assert (inst["cloud_id"], inst["zone"], inst["instance_type"], inst["lifecycle"]) == (
        "i-001",
        "us-east-1a",
        "m5.large",
        "spot",
    )
    assert len(out["token"]) > 20
    (placement,) = await _placements(platform, inst["id"])
    assert placement.ended_at is None and placement.pool_id == inst["pool_id"]
    assert placement.started_at >= before - timedelta(seconds=1)
    (event,) = await _events(platform, "pricing.agent.registered")
    assert event == {
        "client_id": c.id,
        "agent_id": out["agent"]["id"],
        "agent": "web-1",
        "instance_id": inst["id"],
    }


async def test_agent_token_is_bound_to_its_agent(platform, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    r = await a.http.post(f"{A}/{a.id}/heartbeat")
    assert r.status_code == 200 and r.json()["id"] == a.id


async def test_reregister_rotates_token_and_keeps_ids(platform, tenants):
    c = await tenants.client()
    first = await c.http.post(f"{A}/register", json=_body())
    old = platform.client(first.json()["token"])
    agent_id = first.json()["agent"]["id"]
    assert (await old.post(f"{A}/{agent_id}/heartbeat")).status_code == 200
    again = await c.http.post(f"{A}/register", json=_body(cloud_id="i-002"))
    assert again.status_code == 200, again.text
    assert again.json()["agent"]["id"] == agent_id
    assert again.json()["instance"]["id"] == first.json()["instance"]["id"]
    assert again.json()["instance"]["cloud_id"] == "i-002"
    assert (await old.post(f"{A}/{agent_id}/heartbeat")).status_code == 401
    new = platform.client(again.json()["token"])
    assert (await new.post(f"{A}/{agent_id}/heartbeat")).status_code == 200


async def test_reregister_in_another_pool_closes_and_opens_placements(platform, tenants):
    c = await tenants.client()
    first = (await c.http.post(f"{A}/register", json=_body())).json()
    again = await c.http.post(f"{A}/register", json=_body(zone="us-east-1b", lifecycle="on-demand"))
    assert again.json()["instance"]["zone"] == "us-east-1b"
    assert again.json()["instance"]["lifecycle"] == "on-demand"
    old, new = await _placements(platform, first["instance"]["id"])
    assert old.ended_at == new.started_at
    assert new.ended_at is None and new.lifecycle == "on-demand"
    assert new.pool_id != old.pool_id


async def test_register_same_name_in_two_clients_makes_two_agents(tenants):
    a, b = await tenants.client(), await tenants.client()
    ra = await a.http.post(f"{A}/register", json=_body())
    rb = await b.http.post(f"{A}/register", json=_body())
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["agent"]["id"] != rb.json()["agent"]["id"]


async def test_register_cloud_id_of_another_agent_conflicts(tenants):
    c = await tenants.client()
    await c.http.post(f"{A}/register", json=_body(name="one", cloud_id="i-same"))
    r = await c.http.post(f"{A}/register", json=_body(name="two", cloud_id="i-same"))
    assert r.status_code == 409
    assert "i-same" in r.json()["detail"]


async def test_register_bad_input_names_fields(tenants):
    c = await tenants.client()
    r = await c.http.post(f"{A}/register", json=_body(lifecycle="reserved"))
    assert r.status_code == 422 and "instance.lifecycle" in _fields(r)
    body = _body()
    del body["instance"]["cloud_id"]
    r = await c.http.post(f"{A}/register", json=body)
    assert r.status_code == 422 and "instance.cloud_id" in _fields(r)
    r = await c.http.post(f"{A}/register", json=_body(name="bad name!"))
    assert r.status_code == 422 and "name" in _fields(r)
    r = await c.http.post(f"{A}/register", json=_body(region="us east"))
    assert r.status_code == 422 and "instance.region" in _fields(r)


async def test_register_needs_a_client_token(admin_client, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    assert (await a.http.post(f"{A}/register", json=_body())).status_code == 403
    assert (await admin_client.post(f"{A}/register", json=_body())).status_code == 403


async def test_list_agents_is_per_client_with_status_filter(platform, admin_client, tenants):
    a, b = await tenants.client(), await tenants.client()
    a1, a2 = await tenants.agent(a), await tenants.agent(a)
    b1 = await tenants.agent(b)
    assert [x["id"] for x in (await a.http.get(A)).json()["items"]] == [a1.id, a2.id]
    assert [x["id"] for x in (await a1.http.get(A)).json()["items"]] == [a1.id]
    every = {x["id"] for x in (await admin_client.get(A, params={"limit": 500})).json()["items"]}
    assert {a1.id, a2.id, b1.id} <= every
    async with platform.ctx.db.session() as s:
        await s.execute(update(Agent).where(Agent.id == a2.id).values(status="offline"))
    r = await a.http.get(A, params={"status": "offline"})
    assert [x["id"] for x in r.json()["items"]] == [a2.id]
    assert (await a.http.get(A, params={"status": "sleeping"})).status_code == 422


async def _pages(http: Any, url: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a cursor-paged list, following ``next_cursor`` to the end."""
    out: list[dict[str, Any]] = []
    cursor = None
    while len(out) < 100:
        query = params | ({"cursor": cursor} if cursor is not None else {})
        r = await http.get(url, params=query)
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"items", "next_cursor"}
        out.append(r.json())
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    return out


async def test_agents_and_instances_are_cursor_paged_by_id(tenants):
    a, b = await tenants.client(), await tenants.client()
    mine = [await tenants.agent(a) for _ in range(5)]
    theirs = await tenants.agent(b)

    for url, key in ((A, "id"), ("/api/pricing/instances", "instance_id")):
        want = sorted(getattr(x, key) for x in mine)
        got = await _pages(a.http, url, limit=2)
        assert [len(page["items"]) for page in got] == [2, 2, 1], url
        assert [x["id"] for page in got for x in page["items"]] == want, url
        assert got[-1]["next_cursor"] is None
        assert [page["next_cursor"] for page in got[:-1]] == [want[1], want[3]]
        assert {x["client_id"] for page in got for x in page["items"]} == {a.id}
        # Exactly one full page: no next page.
        assert (await _pages(a.http, url, limit=5))[0]["next_cursor"] is None
        # Another client's id as a cursor only moves the start: never shows its rows.
        after = await _pages(b.http, url, cursor=want[0], limit=1)
        assert [x["client_id"] for page in after for x in page["items"]] == [b.id]
        assert getattr(theirs, key) in [x["id"] for page in after for x in page["items"]]

    # The status filter pages too.
    online = await _pages(a.http, A, status="online", limit=3)
    assert [x["id"] for page in online for x in page["items"]] == [x.id for x in mine]


async def test_agent_list_bad_cursor_or_limit_is_422_naming_the_field(tenants):
    c = await tenants.client()
    for url in (A, "/api/pricing/instances", "/api/pricing/clients"):
        for params, field in [
            ({"cursor": "x"}, "cursor"),
            ({"cursor": 0}, "cursor"),
            ({"cursor": -3}, "cursor"),
            ({"cursor": 2**31}, "cursor"),
            ({"limit": 0}, "limit"),
            ({"limit": 501}, "limit"),
            ({"limit": "all"}, "limit"),
        ]:
            r = await c.http.get(url, params=params)
            assert r.status_code == 422, (url, params, r.text)
            assert [e["field"] for e in r.json()["errors"]] == [field], (url, params, r.text)


async def test_other_clients_agents_are_not_found(tenants):
    a, b = await tenants.client(), await tenants.client()
    agent = await tenants.agent(a)
    assert (await a.http.get(f"{A}/{agent.id}")).status_code == 200
    assert (await b.http.get(f"{A}/{agent.id}")).status_code == 404
    assert (await b.admin_http.delete(f"{A}/{agent.id}")).status_code == 404
    assert (await b.admin_http.get(f"{A}/{agent.id}/replica-config")).status_code == 404
    r = await b.admin_http.put(f"{A}/{agent.id}/replica-config", json={"enabled": True})
    assert r.status_code == 404
    assert (await a.http.get(f"{A}/{agent.id}")).status_code == 200


async def test_agent_cannot_act_for_another_agent(tenants):
    c = await tenants.client()
    one, two = await tenants.agent(c), await tenants.agent(c)
    assert (await one.http.get(f"{A}/{two.id}")).status_code == 404
    assert (await one.http.post(f"{A}/{two.id}/heartbeat")).status_code == 404
    assert (await one.http.get(f"/api/pricing/instances/{two.instance_id}")).status_code == 404


async def test_delete_agent_needs_client_admin_and_revokes_its_token(tenants):
    c = await tenants.client()
    agent = await tenants.agent(c)
    assert (await c.http.delete(f"{A}/{agent.id}")).status_code == 403
    assert (await agent.http.delete(f"{A}/{agent.id}")).status_code == 403
    assert (await c.admin_http.delete(f"{A}/{agent.id}")).status_code == 204
    assert (await c.http.get(f"{A}/{agent.id}")).status_code == 404
    assert (await c.http.get(f"/api/pricing/instances/{agent.instance_id}")).status_code == 404
    assert (await agent.http.post(f"{A}/{agent.id}/heartbeat")).status_code == 401


async def test_heartbeat_needs_the_agents_own_token(tenants):
    c = await tenants.client()
    agent = await tenants.agent(c)
    assert (await c.http.post(f"{A}/{agent.id}/heartbeat")).status_code == 403
    r = await agent.http.post(f"{A}/{agent.id}/heartbeat", json={"version": "2.0.0"})
    assert r.status_code == 200
    assert r.json()["version"] == "2.0.0" and r.json()["pending_commands"] == 0


async def test_mark_offline_then_heartbeat_brings_agent_online(platform, tenants):
    c = await tenants.client()
    stale, fresh = await tenants.agent(c), await tenants.agent(c)
    now = datetime.now(UTC)
    async with platform.ctx.db.session() as s:
        await s.execute(
            update(Agent)
            .where(Agent.id == stale.id)
            .values(last_heartbeat_at=now - timedelta(seconds=700))
        )
    async with platform.ctx.db.session() as s:
        assert await mark_offline(s, now, 600) == 1
    async with platform.ctx.db.session() as s:
        assert await mark_offline(s, now, 600) == 0
    agents = {x["id"]: x for x in (await c.http.get(A)).json()["items"]}
    assert agents[stale.id]["status"] == "offline" and agents[stale.id]["offline_since"]
    assert agents[fresh.id]["status"] == "online"
    (offline,) = await _events(platform, "pricing.agent.offline")
    assert offline["agent_id"] == stale.id and offline["client_id"] == c.id
    assert datetime.fromisoformat(offline["last_heartbeat_at"]) < now - timedelta(seconds=600)
    r = await stale.http.post(f"{A}/{stale.id}/heartbeat")
    assert r.json()["status"] == "online" and r.json()["offline_since"] is None
    await stale.http.post(f"{A}/{stale.id}/heartbeat")
    online = await _events(platform, "pricing.agent.online")
    assert [e["agent_id"] for e in online] == [stale.id]


async def test_reregistering_an_offline_agent_brings_it_online(platform, tenants):
    c = await tenants.client()
    first = (await c.http.post(f"{A}/register", json=_body())).json()
    async with platform.ctx.db.session() as s:
        await mark_offline(s, datetime.now(UTC) + timedelta(hours=1), 600)
    r = await c.http.post(f"{A}/register", json=_body())
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["status"] == "online"
    (event,) = await _events(platform, "pricing.agent.online")
    assert event["agent_id"] == first["agent"]["id"]


async def test_replica_config_defaults_update_and_agent_read_only(tenants):
    c = await tenants.client()
    agent = await tenants.agent(c)
    r = await agent.http.get(f"{A}/{agent.id}/replica-config")
    assert r.json() == {"enabled": False, "standby_count": 0, "pools": []}
    config = {
        "enabled": True,
        "standby_count": 2,
        "pools": [{"region": "us-east-1", "zone": "us-east-1b", "instance_type": "m5.large"}],
    }
    r = await c.http.put(f"{A}/{agent.id}/replica-config", json=config)
    assert r.status_code == 200 and r.json() == config
    assert (await agent.http.get(f"{A}/{agent.id}/replica-config")).json() == config
    assert (await agent.http.put(f"{A}/{agent.id}/replica-config", json=config)).status_code == 403


async def test_replica_config_bounds(tenants):
    c = await tenants.client()
    agent = await tenants.agent(c)
    r = await c.http.put(f"{A}/{agent.id}/replica-config", json={"standby_count": 6})
    assert r.status_code == 422 and "standby_count" in _fields(r)


async def test_instances_are_listed_per_tenant(admin_client, tenants):
    a, b = await tenants.client(), await tenants.client()
    a1 = await tenants.agent(a, zone="us-east-1c", instance_type="c5.xlarge")
    await tenants.agent(b)
    r = await a.http.get("/api/pricing/instances")
    assert [(i["id"], i["zone"], i["instance_type"]) for i in r.json()["items"]] == [
        (a1.instance_id, "us-east-1c", "c5.xlarge")
    ]
    assert (await a.http.get(f"/api/pricing/instances/{a1.instance_id}")).status_code == 200
    assert (await b.http.get(f"/api/pricing/instances/{a1.instance_id}")).status_code == 404
    assert (await a1.http.get("/api/pricing/instances")).json()["items"][0]["id"] == a1.instance_id
    r = await admin_client.get(f"/api/pricing/instances/{a1.instance_id}")
    assert r.status_code == 200 and r.json()["client_id"] == a.id
