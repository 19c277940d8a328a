"""Clients: creation (robot user), listing per tenant, updates by role, tokens, deletion."""

from __future__ import annotations

from platform_pricing.models import PricePoint
from sqlalchemy import select

from platform_core import User

C = "/api/pricing/clients"


def _fields(r) -> set[str]:
    return {e["field"] for e in r.json().get("errors", [])}


async def test_create_client_returns_overrides_and_effective_policy(admin_client):
    r = await admin_client.post(
        C, json={"name": "acme", "display_name": "Acme", "policy": {"min_saving_percent": 25}}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "acme" and body["display_name"] == "Acme"
    assert body["policy"] == {"min_saving_percent": 25}
    assert body["effective_policy"]["min_saving_percent"] == 25
    assert body["effective_policy"]["min_seconds_between_switches"] == 3600
    assert body["engine"] is None and body["is_active"] is True


async def test_create_client_makes_a_member_robot_user(platform, admin_client):
    r = await admin_client.post(C, json={"name": "robot-check"})
    assert r.status_code == 201
    async with platform.ctx.db.session() as s:
        user = await s.scalar(select(User).where(User.username == "pricing-client-robot-check"))
    assert user is not None and user.role == "member" and user.password_hash is None


async def test_create_client_duplicate_name_conflict(admin_client):
    assert (await admin_client.post(C, json={"name": "dup"})).status_code == 201
    r = await admin_client.post(C, json={"name": "dup"})
    assert r.status_code == 409
    assert "dup" in r.json()["detail"]


async def test_create_client_bad_name_names_field(admin_client):
    for bad in ("Upper", "-lead", "a" * 41, "sp ace", ""):
        r = await admin_client.post(C, json={"name": bad})
        assert r.status_code == 422, bad
        assert "name" in _fields(r)


async def test_create_client_unknown_or_out_of_range_policy_key(admin_client):
    r = await admin_client.post(C, json={"name": "p1", "policy": {"nope": 1}})
    assert r.status_code == 422 and "policy.nope" in _fields(r)
    r = await admin_client.post(C, json={"name": "p2", "policy": {"min_saving_percent": 101}})
    assert r.status_code == 422 and "policy.min_saving_percent" in _fields(r)


async def test_create_client_needs_pricing_admin(member_client, tenants):
    assert (await member_client.post(C, json={"name": "x1"})).status_code == 403
    c = await tenants.client()
    assert (await c.admin_http.post(C, json={"name": "x2"})).status_code == 403


async def test_list_clients_admin_sees_all_client_sees_itself(admin_client, tenants):
    a, b = await tenants.client(), await tenants.client()
    names = {c["name"] for c in (await admin_client.get(C, params={"limit": 500})).json()["items"]}
    assert {a.name, b.name} <= names
    r = await a.http.get(C)
    assert r.status_code == 200
    assert r.json() == {"items": r.json()["items"], "next_cursor": None}
    assert [c["id"] for c in r.json()["items"]] == [a.id]


async def test_clients_are_cursor_paged_by_id(admin_client, tenants):
    made = sorted([(await tenants.client()).id for _ in range(3)])
    seen: list[int] = []
    cursor = None
    for _ in range(100):
        params = {"limit": 2} | ({"cursor": cursor} if cursor is not None else {})
        body = (await admin_client.get(C, params=params)).json()
        assert len(body["items"]) <= 2
        seen += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(set(seen)) and set(made) <= set(seen)
    mine = await tenants.client()
    r = await mine.http.get(C, params={"cursor": made[0], "limit": 1})
    assert r.json() == {"items": [r.json()["items"][0]], "next_cursor": None}
    assert r.json()["items"][0]["id"] == mine.id


async def test_get_other_clients_record_is_not_found(tenants):
    a, b = await tenants.client(), await tenants.client()
    assert (await a.http.get(f"{C}/{a.id}")).status_code == 200
    r = await b.admin_http.get(f"{C}/{a.id}")
    assert r.status_code == 404
    r = await b.admin_http.patch(f"{C}/{a.id}", json={"policy": {"min_saving_percent": 1}})
    assert r.status_code == 404


async def test_agent_token_cannot_read_client_records(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    assert (await a.http.get(f"{C}/{c.id}")).status_code == 403
    assert (await a.http.get(C)).status_code == 403


async def test_admin_patches_display_name_active_and_engine(admin_client, tenants):
    c = await tenants.client()
    r = await admin_client.patch(
        f"{C}/{c.id}", json={"display_name": "New", "engine": "cheapest", "is_active": True}
    )
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "New" and r.json()["engine"] == "cheapest"
    r = await admin_client.patch(f"{C}/{c.id}", json={"engine": None})
    assert r.json()["engine"] is None


async def test_patch_unknown_engine_names_field(admin_client, tenants):
    c = await tenants.client()
    r = await admin_client.patch(f"{C}/{c.id}", json={"engine": "no-such-engine"})
    assert r.status_code == 422
    assert "engine" in _fields(r)


async def test_client_admin_merges_and_drops_policy_keys(tenants):
    c = await tenants.client(policy={"min_saving_percent": 20, "allow_on_demand": False})
    r = await c.admin_http.patch(
        f"{C}/{c.id}", json={"policy": {"min_saving_percent": None, "max_price_ratio": 0.8}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["policy"] == {"allow_on_demand": False, "max_price_ratio": 0.8}
    assert r.json()["effective_policy"]["min_saving_percent"] == 10.0


async def test_plain_client_token_cannot_change_policy(tenants):
    c = await tenants.client()
    r = await c.http.patch(f"{C}/{c.id}", json={"policy": {"min_saving_percent": 5}})
    assert r.status_code == 403


async def test_client_admin_cannot_change_admin_fields(tenants):
    c = await tenants.client()
    for change in ({"display_name": "x"}, {"engine": "rules"}, {"is_active": False}):
        r = await c.admin_http.patch(f"{C}/{c.id}", json=change)
        assert r.status_code == 403, change


async def test_client_token_scopes_and_listing(admin_client, tenants):
    c = await tenants.client()
    r = await admin_client.post(f"{C}/{c.id}/tokens", json={"name": "ops", "admin": True})
    assert r.status_code == 201
    assert r.json()["scopes"] == ["core:read", "pricing:client", "pricing:client_admin"]
    assert r.json()["token"]
    listed = (await admin_client.get(f"{C}/{c.id}/tokens")).json()["items"]
    assert [t["name"] for t in listed] == ["t", "t", "ops"]
    assert all("token" not in t for t in listed)


async def test_client_reads_its_own_inbox(tenants):
    c = await tenants.client()
    r = await c.http.get("/api/core/notifications")
    assert r.status_code == 200 and r.json()["items"] == []


async def test_client_token_expiry_is_validated(admin_client, tenants):
    c = await tenants.client()
    r = await admin_client.post(f"{C}/{c.id}/tokens", json={"name": "x", "expires_in": "soon"})
    assert r.status_code == 422 and "expires_in" in _fields(r)
    r = await admin_client.post(f"{C}/{c.id}/tokens", json={"name": "x", "expires_in": "30d"})
    assert r.status_code == 201 and r.json()["expires_at"] is not None


async def test_token_endpoints_need_pricing_admin(tenants):
    c = await tenants.client()
    r = await c.admin_http.post(f"{C}/{c.id}/tokens", json={"name": "x", "admin": True})
    assert r.status_code == 403
    assert (await c.admin_http.get(f"{C}/{c.id}/tokens")).status_code == 403


async def test_revoked_client_token_stops_working(admin_client, tenants):
    c = await tenants.client()
    assert (await c.http.get(C)).status_code == 200
    tokens = (await admin_client.get(f"{C}/{c.id}/tokens")).json()["items"]
    r = await admin_client.delete(f"{C}/{c.id}/tokens/{tokens[0]['id']}")
    assert r.status_code == 204
    assert (await c.http.get(C)).status_code == 401
    assert (await c.admin_http.get(C)).status_code == 200


async def test_revoke_token_of_another_client_is_not_found(admin_client, tenants):
    a, b = await tenants.client(), await tenants.client()
    tokens = (await admin_client.get(f"{C}/{a.id}/tokens")).json()["items"]
    r = await admin_client.delete(f"{C}/{b.id}/tokens/{tokens[0]['id']}")
    assert r.status_code == 404
    assert (await a.http.get(C)).status_code == 200


async def test_inactive_client_tokens_are_refused(admin_client, tenants):
    c = await tenants.client()
    await admin_client.patch(f"{C}/{c.id}", json={"is_active": False})
    assert (await c.http.get(C)).status_code == 403
    await admin_client.patch(f"{C}/{c.id}", json={"is_active": True})
    assert (await c.http.get(C)).status_code == 200


async def test_delete_client_revokes_tokens_and_frees_the_name(admin_client, tenants):
    c = await tenants.client()
    agent = await tenants.agent(c)
    r = await admin_client.delete(f"{C}/{c.id}")
    assert r.status_code == 204
    assert (await admin_client.get(f"{C}/{c.id}")).status_code == 404
    assert (await c.http.get(C)).status_code == 401
    assert (await agent.http.post(f"/api/pricing/agents/{agent.id}/heartbeat")).status_code == 401
    assert (await admin_client.post(C, json={"name": c.name})).status_code == 201


async def test_delete_unknown_client_not_found(admin_client):
    assert (await admin_client.delete(f"{C}/999999")).status_code == 404


async def test_delete_client_removes_its_price_points_only(platform, admin_client, tenants):
    a, b = await tenants.client(), await tenants.client()
    points = [
        {
            "region": "us-east-1",
            "zone": "us-east-1a",
            "instance_type": "m5.large",
            "spot_price": 0.03,
            "on_demand_price": 0.096,
            "observed_at": "2025-01-01T00:00:00Z",
        }
    ]
    for c in (a, b):
        agent = await tenants.agent(c)
        r = await agent.http.post(
            f"/api/pricing/agents/{agent.id}/reports/pricing",
            json={"report_id": "r1", "points": points},
        )
        assert r.status_code == 201
    assert (await admin_client.delete(f"{C}/{a.id}")).status_code == 204
    async with platform.ctx.db.session() as s:
        owners = (await s.scalars(select(PricePoint.client_id))).all()
    assert owners == [b.id]
