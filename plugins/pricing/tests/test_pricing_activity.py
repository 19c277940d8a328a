"""The admin activity feed across clients and client growth over time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from platform_pricing.models import Agent, Client, Decision, Instance

P = "/api/pricing"


def _fields(r) -> set[str]:
    return {e["field"] for e in r.json().get("errors", [])}


async def _feed_all(admin, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await admin.get(f"{P}/activity", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_feed_lists_every_kind_newest_first_across_pages(platform, tenants, admin_client):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.05), ("us-east-1b", 0.03))
    decided = await c.http.post(f"{P}/agents/{a.id}/decide")
    assert decided.status_code in (200, 201), decided.text
    r = await a.http.post(
        f"{P}/agents/{a.id}/reports/termination",
        json={"report_id": uuid.uuid4().hex, "noticed_at": datetime.now(UTC).isoformat()},
    )
    assert r.status_code == 201, r.text
    other = await tenants.client()
    await tenants.agent(other)

    mine = await _feed_all(admin_client, client_id=c.id)
    kinds = {item["kind"] for item in mine}
    assert {"client", "registration", "decision", "interruption"} <= kinds
    assert all(item["client_id"] == c.id for item in mine)
    keys = [(item["at"], item["kind"], item["id"]) for item in mine]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
    reg = next(i for i in mine if i["kind"] == "registration")
    assert reg["agent_id"] == a.id and reg["summary"] == a.body["agent"]["name"]
    dec = next(i for i in mine if i["kind"] == "decision")
    assert dec["id"] == decided.json()["id"] and dec["instance_id"] == a.instance_id

    everyone = await _feed_all(admin_client)
    assert {c.id, other.id} <= {i["client_id"] for i in everyone}
    only = await _feed_all(admin_client, kind=["registration", "client"])
    assert only and {i["kind"] for i in only} <= {"registration", "client"}


async def test_feed_keyset_pages_are_stable_with_equal_times(platform, admin_client, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    same = datetime(2030, 1, 1, tzinfo=UTC)
    async with platform.ctx.db.session() as s:
        for _ in range(5):
            s.add(
                Decision(
                    client_id=c.id,
                    instance_id=a.instance_id,
                    engine="rules",
                    requested_engine="rules",
                    outcome="stay",
                    inputs={},
                    created_at=same,
                )
            )
    items = await _feed_all(admin_client, client_id=c.id, kind="decision")
    ids = [i["id"] for i in items]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)


async def test_feed_is_admin_only_and_checks_its_inputs(tenants, admin_client):
    c = await tenants.client()
    a = await tenants.agent(c)
    for http in (c.http, c.admin_http, a.http):
        assert (await http.get(f"{P}/activity")).status_code == 403
        assert (await http.get(f"{P}/growth")).status_code == 403
    r = await admin_client.get(f"{P}/activity", params={"cursor": "garbage"})
    assert r.status_code == 422 and _fields(r) == {"cursor"}
    r = await admin_client.get(f"{P}/activity", params={"kind": "lunch"})
    assert r.status_code == 422 and _fields(r) == {"kind.0"}
    r = await admin_client.get(f"{P}/activity", params={"client_id": 999999})
    assert r.status_code == 404


async def test_growth_counts_per_day_and_month_with_totals(platform, admin_client):
    users = [await platform.user("member") for _ in range(8)]
    async with platform.ctx.db.session() as s:
        for n, day in enumerate(["2025-03-01", "2025-03-01", "2025-03-03", "2025-05-20"]):
            when = datetime.fromisoformat(day).replace(hour=23, tzinfo=UTC)
            user = users[n]
            client = Client(name=f"g-{uuid.uuid4().hex[:8]}", user_id=user.id, created_at=when)
            s.add(client)
            await s.flush()
            if n % 2 == 0:
                agent_user = users[4 + n]
                agent = Agent(
                    client_id=client.id, user_id=agent_user.id, name="x", registered_at=when
                )
                s.add(agent)
                await s.flush()
                from platform_pricing.service.pools import pool_id

                pid = await pool_id(s, "us-east-1", "us-east-1a", "m5.large")
                s.add(
                    Instance(
                        client_id=client.id,
                        agent_id=agent.id,
                        cloud_id=f"i-{n}",
                        pool_id=pid,
                        created_at=when,
                    )
                )
    r = await admin_client.get(
        f"{P}/growth", params={"period": "day", "since": "2025-03-01", "until": "2025-03-04"}
    )
    assert r.status_code == 200, r.text
    g = r.json()
    assert [b["start"] for b in g["buckets"]] == [
        "2025-03-01",
        "2025-03-02",
        "2025-03-03",
        "2025-03-04",
    ]
    assert [b["clients"] for b in g["buckets"]] == [2, 0, 1, 0]
    assert [b["agents"] for b in g["buckets"]] == [1, 0, 1, 0]
    assert [b["total_clients"] for b in g["buckets"]] == [2, 2, 3, 3]
    assert g["buckets"][0]["instances"] == 1

    r = await admin_client.get(
        f"{P}/growth", params={"period": "month", "since": "2025-02-10", "until": "2025-05-31"}
    )
    g = r.json()
    assert [b["start"] for b in g["buckets"]] == ["2025-02", "2025-03", "2025-04", "2025-05"]
    assert [b["clients"] for b in g["buckets"]] == [0, 3, 0, 1]
    assert [b["total_agents"] for b in g["buckets"]] == [0, 2, 2, 2]
    assert [b["total_instances"] for b in g["buckets"]] == [0, 2, 2, 2]

    r = await admin_client.get(f"{P}/growth", params={"since": "2025-03-05", "until": "2025-03-01"})
    assert r.status_code == 422 and _fields(r) == {"since"}
    r = await admin_client.get(f"{P}/growth", params={"since": "2020-01-01", "until": "2025-03-01"})
    assert r.status_code == 422 and _fields(r) == {"since"}
    r = await admin_client.get(f"{P}/growth", params={"period": "week"})
    assert r.status_code == 422 and "period" in _fields(r)
    r = await admin_client.get(f"{P}/growth")
    assert r.status_code == 200 and len(r.json()["buckets"]) == 30
    r = await admin_client.get(f"{P}/growth", params={"period": "month"})
    assert len(r.json()["buckets"]) == 12
