"""Switch commands: issued from decisions or forced, delivered until acknowledged, superseded,
acknowledged idempotently, and never visible to another client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from platform_core.testing import EventRecord

API = "/api/pricing"


async def issue(client: Any, agent: Any) -> dict[str, Any]:
    r = await client.http.post(f"{API}/agents/{agent.id}/issue-switch-command")
    assert r.status_code == 200, r.text
    return r.json()


async def poll(agent: Any) -> list[dict[str, Any]]:
    r = await agent.http.get(f"{API}/agents/{agent.id}/commands")
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["items"]
    return r.json()["items"]


async def ack(agent: Any, command_id: int, success: bool = True, message: str = "") -> Any:
    return await agent.http.post(
        f"{API}/agents/{agent.id}/commands/{command_id}/ack",
        json={"success": success, "message": message},
    )


async def switching(tenants: Any) -> tuple[Any, Any]:
    """A client and an agent whose decision is a switch to us-east-1b."""
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030))
    return c, a


async def events(platform: Any, name: str) -> list[dict[str, Any]]:
    async with platform.ctx.db.session() as s:
        rows = await s.scalars(select(EventRecord).where(EventRecord.name == name))
        return [r.payload for r in rows]


# -- issuing --------------------------------------------------------------------------------


async def test_issue_creates_a_command_on_switch_and_publishes_it(platform, tenants):
    c, a = await switching(tenants)
    out = await issue(c, a)
    assert out["decision"]["outcome"] == "switch"
    command = out["command"]
    assert command["status"] == "pending"
    assert command["target_lifecycle"] == "spot"
    assert command["target_pool_id"] == out["decision"]["target_pool_id"]
    assert command["target"]["zone"] == "us-east-1b"
    assert command["decision_id"] == out["decision"]["id"]
    assert command["forced"] is False
    assert out["reason"] is None
    published = await events(platform, "pricing.switch.issued")
    assert len(published) == 1
    assert published[0]["command_id"] == command["id"]
    assert published[0]["client_id"] == c.id
    assert published[0]["forced"] is False


async def test_issue_on_demand_outcome_targets_the_current_pool(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.12))
    out = await issue(c, a)
    assert out["decision"]["outcome"] == "on-demand"
    assert out["command"]["target_lifecycle"] == "on-demand"
    assert out["command"]["target"]["zone"] == "us-east-1a"


async def test_issue_on_stay_creates_no_command(platform, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.030))
    out = await issue(c, a)
    assert out["command"] is None
    assert out["decision"]["outcome"] == "stay"
    assert out["reason"].startswith("the decision is stay")
    assert await poll(a) == []
    assert await events(platform, "pricing.switch.issued") == []


async def test_issue_needs_a_client_and_the_clients_agent(tenants):
    c, a = await switching(tenants)
    other = await tenants.client()
    r = await a.http.post(f"{API}/agents/{a.id}/issue-switch-command")
    assert r.status_code == 403
    for http in (other.http, other.admin_http):
        r = await http.post(f"{API}/agents/{a.id}/issue-switch-command")
        assert r.status_code == 404
    assert (await c.http.post(f"{API}/agents/999999/issue-switch-command")).status_code == 404
    assert await poll(a) == []


# -- delivery and acknowledgement -----------------------------------------------------------


async def test_command_is_delivered_until_acknowledged(tenants):
    c, a = await switching(tenants)
    cid = (await issue(c, a))["command"]["id"]
    first = await poll(a)
    second = await poll(a)
    assert [x["id"] for x in first] == [x["id"] for x in second] == [cid]
    assert first[0]["deliveries"] == 1 and second[0]["deliveries"] == 2
    assert second[0]["last_delivered_at"] is not None
    r = await ack(a, cid, True, "moved")
    assert r.status_code == 200
    assert r.json()["status"] == "acknowledged"
    assert r.json()["result"] == "succeeded: moved"
    assert r.json()["acknowledged_at"] is not None
    assert await poll(a) == []
    listed = (await c.http.get(f"{API}/commands", params={"status": "acknowledged"})).json()
    assert [x["id"] for x in listed["items"]] == [cid]
    assert listed["items"][0]["deliveries"] == 2


async def test_new_command_supersedes_pending_ones(tenants):
    c, a = await switching(tenants)
    old = (await issue(c, a))["command"]["id"]
    new = (await issue(c, a))["command"]["id"]
    assert [x["id"] for x in await poll(a)] == [new]
    superseded = (await c.http.get(f"{API}/commands", params={"status": "superseded"})).json()
    assert [x["id"] for x in superseded["items"]] == [old]
    r = await ack(a, old)
    assert r.status_code == 409
    assert "superseded" in r.json()["detail"]


async def test_ack_twice_is_idempotent_and_the_opposite_outcome_conflicts(tenants):
    c, a = await switching(tenants)
    cid = (await issue(c, a))["command"]["id"]
    first = await ack(a, cid, True, "done")
    again = await ack(a, cid, True, "done again")
    assert again.status_code == 200
    assert again.json() == first.json()  # the first acknowledgement is kept
    r = await ack(a, cid, False, "failed after all")
    assert r.status_code == 409
    assert str(cid) in r.json()["detail"]


async def test_failed_ack_is_recorded(tenants):
    c, a = await switching(tenants)
    cid = (await issue(c, a))["command"]["id"]
    r = await ack(a, cid, False, "no capacity")
    assert r.status_code == 200
    assert r.json()["status"] == "acknowledged"
    assert r.json()["result"] == "failed: no capacity"
    assert (await ack(a, cid, False)).status_code == 200
    assert (await ack(a, cid, True)).status_code == 409


async def test_switch_report_acknowledges_and_a_later_ack_agrees(tenants):
    c, a = await switching(tenants)
    cid = (await issue(c, a))["command"]["id"]
    r = await a.http.post(
        f"{API}/agents/{a.id}/reports/switch",
        json={
            "report_id": "sw-1",
            "command_id": cid,
            "to": {
                "region": "us-east-1",
                "zone": "us-east-1b",
                "instance_type": "m5.large",
                "lifecycle": "spot",
            },
            "new_cloud_id": "i-after-switch",
            "reason": "command",
            "downtime_seconds": 3,
            "switched_at": datetime.now(UTC).isoformat(),
        },
    )
    assert r.status_code in (200, 201), r.text
    assert await poll(a) == []
    assert (await ack(a, cid, True)).status_code == 200
    assert (await ack(a, cid, False)).status_code == 409


async def test_ack_of_unknown_or_other_agents_command_is_not_found(tenants):
    c, a = await switching(tenants)
    b = await tenants.agent(c, zone="us-east-1c")
    cid = (await issue(c, a))["command"]["id"]
    assert (await ack(a, 999999)).status_code == 404
    assert (await ack(b, cid)).status_code == 404  # b's own path, a's command
    r = await b.http.post(
        f"{API}/agents/{a.id}/commands/{cid}/ack", json={"success": True, "message": ""}
    )
    assert r.status_code == 404  # a's path with b's token
    assert [x["id"] for x in await poll(a)] == [cid]


async def test_ack_body_is_validated(tenants):
    c, a = await switching(tenants)
    cid = (await issue(c, a))["command"]["id"]
    r = await a.http.post(f"{API}/agents/{a.id}/commands/{cid}/ack", json={"message": "x"})
    assert r.status_code == 422
    assert "success" in r.text
    r = await a.http.post(
        f"{API}/agents/{a.id}/commands/{cid}/ack", json={"success": True, "message": "x" * 401}
    )
    assert r.status_code == 422


async def test_polling_is_for_the_agent_itself(tenants):
    c, a = await switching(tenants)
    b = await tenants.agent(c, zone="us-east-1c")
    await issue(c, a)
    assert (await b.http.get(f"{API}/agents/{a.id}/commands")).status_code == 404
    assert (await c.http.get(f"{API}/agents/{a.id}/commands")).status_code == 403
    other = await tenants.client()
    stranger = await tenants.agent(other)
    assert (await stranger.http.get(f"{API}/agents/{a.id}/commands")).status_code == 404
    assert (await poll(a))[0]["deliveries"] == 1  # the refused polls delivered nothing


async def test_commands_list_is_per_tenant(admin_client, tenants):
    c1, a1 = await switching(tenants)
    c2, a2 = await switching(tenants)
    id1 = (await issue(c1, a1))["command"]["id"]
    id2 = (await issue(c2, a2))["command"]["id"]
    assert [x["id"] for x in (await c1.http.get(f"{API}/commands")).json()["items"]] == [id1]
    assert [x["id"] for x in (await a2.http.get(f"{API}/commands")).json()["items"]] == [id2]
    everyone = (await admin_client.get(f"{API}/commands")).json()["items"]
    assert {x["id"] for x in everyone} >= {id1, id2}
    by_agent = await c1.http.get(f"{API}/commands", params={"agent_id": a2.id})
    assert by_agent.json()["items"] == []
    assert (await c1.http.get(f"{API}/commands", params={"status": "done"})).status_code == 422


# -- forced switches ------------------------------------------------------------------------


async def force(http: Any, instance_id: int, **body: Any) -> Any:
    return await http.post(
        f"{API}/instances/{instance_id}/force-switch", json={"reason": "maintenance", **body}
    )


async def test_force_switch_needs_a_client_admin(platform, tenants):
    c, a = await switching(tenants)
    target = {"region": "us-east-1", "zone": "us-east-1b", "instance_type": "m5.large"}
    r = await force(c.http, a.instance_id, lifecycle="spot", **target)
    assert r.status_code == 403
    assert (await force(a.http, a.instance_id, lifecycle="spot", **target)).status_code == 403
    r = await force(c.admin_http, a.instance_id, lifecycle="spot", **target)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["forced"] is True
    assert body["decision_id"] is None
    assert body["target"]["zone"] == "us-east-1b"
    assert body["reason"] == "forced: maintenance"
    assert [x["id"] for x in await poll(a)] == [body["id"]]
    published = await events(platform, "pricing.switch.issued")
    assert published[-1]["forced"] is True


async def test_force_switch_of_another_clients_instance_is_not_found(tenants):
    c, a = await switching(tenants)
    other = await tenants.client()
    r = await force(other.admin_http, a.instance_id, lifecycle="on-demand")
    assert r.status_code == 404
    assert (await force(c.admin_http, 999999, lifecycle="on-demand")).status_code == 404
    assert await poll(a) == []


async def test_force_switch_works_across_lifecycles(tenants):
    c, a = await switching(tenants)
    r = await force(c.admin_http, a.instance_id, lifecycle="on-demand")
    assert r.status_code == 201, r.text
    assert r.json()["target_lifecycle"] == "on-demand"
    assert r.json()["target"]["zone"] == "us-east-1a"  # stays in its pool
    r = await force(c.admin_http, a.instance_id, lifecycle="spot")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "pool_id"
    d = await c.http.get(f"{API}/agents/{a.id}/switch-recommendation")
    current = d.json()["inputs"]["current_pool_id"]
    r = await force(c.admin_http, a.instance_id, lifecycle="spot", pool_id=current)
    assert r.status_code == 409  # already there: nothing to do

    od = await tenants.agent(c, zone="us-east-1c", lifecycle="on-demand")
    pools = {p["zone"]: p["pool_id"] for p in d.json()["inputs"]["pools"]}
    r = await force(c.admin_http, od.instance_id, lifecycle="spot", pool_id=pools["us-east-1b"])
    assert r.status_code == 201, r.text
    assert r.json()["target_lifecycle"] == "spot"
    r = await force(c.admin_http, od.instance_id, lifecycle="on-demand")
    assert r.status_code == 409  # already on-demand in its pool


async def test_force_switch_target_must_be_a_known_pool(tenants):
    c, a = await switching(tenants)
    http = c.admin_http
    r = await force(
        http,
        a.instance_id,
        lifecycle="spot",
        region="us-east-1",
        zone="us-east-1z",
        instance_type="m5.large",
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "zone"
    r = await force(http, a.instance_id, lifecycle="spot", pool_id=2**31 - 1)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "pool_id"
    r = await force(http, a.instance_id, lifecycle="spot", region="us-east-1", zone="us-east-1b")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "instance_type"
    r = await force(
        http,
        a.instance_id,
        lifecycle="spot",
        pool_id=1,
        region="us-east-1",
        zone="us-east-1b",
        instance_type="m5.large",
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "pool_id"
    r = await force(http, a.instance_id, lifecycle="sometimes", pool_id=1)
    assert r.status_code == 422
    r = await http.post(
        f"{API}/instances/{a.instance_id}/force-switch", json={"lifecycle": "on-demand"}
    )
    assert r.status_code == 422  # the reason is required
    # a pool only another client knows is unknown to this one
    other = await tenants.client()
    stranger = await tenants.agent(other)
    await stranger.report_prices(("us-east-1f", 0.02))
    r = await force(
        http,
        a.instance_id,
        lifecycle="spot",
        region="us-east-1",
        zone="us-east-1f",
        instance_type="m5.large",
    )
    assert r.status_code == 422
    assert await poll(a) == []
