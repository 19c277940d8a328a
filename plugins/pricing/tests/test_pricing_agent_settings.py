"""Agents enabled or disabled by their client (toggle-enabled) and the agent's own settings."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from platform_core.testing import fresh_database, prepared, served

A = "/api/pricing/agents"


def _fields(r) -> set[str]:
    return {e["field"] for e in r.json().get("errors", [])}


def _switch_report() -> dict:
    return {
        "report_id": uuid.uuid4().hex,
        "to": {
            "region": "us-east-1",
            "zone": "us-east-1b",
            "instance_type": "m5.large",
            "lifecycle": "spot",
        },
        "new_cloud_id": f"i-{uuid.uuid4().hex[:10]}",
        "switched_at": datetime.now(UTC).isoformat(),
    }


async def test_disable_refuses_reports_heartbeats_polls_and_commands(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.05), ("us-east-1b", 0.03))
    r = await c.admin_http.post(f"{A}/{a.id}/toggle-enabled", json={"enabled": False})
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False and r.json()["agent_id"] == a.id
    assert (await c.http.get(f"{A}/{a.id}")).json()["enabled"] is False

    hb = await a.http.post(f"{A}/{a.id}/heartbeat", json={})
    assert hb.status_code == 409 and hb.json()["current_state"] == "disabled"
    assert "disabled" in hb.json()["detail"]
    rep = await a.http.post(f"{A}/{a.id}/reports/switch", json=_switch_report())
    assert rep.status_code == 409 and rep.json()["current_state"] == "disabled"
    poll = await a.http.get(f"{A}/{a.id}/commands")
    assert poll.status_code == 409 and poll.json()["current_state"] == "disabled"
    forced = await c.admin_http.post(
        f"/api/pricing/instances/{a.instance_id}/force-switch",
        json={"reason": "x", "lifecycle": "on-demand"},
    )
    assert forced.status_code == 409, forced.text
    assert forced.json()["current_state"] == "disabled"
    assert (await c.http.get("/api/pricing/commands")).json()["items"] == []

    # Enabled again: everything works as before.
    r = await c.admin_http.post(f"{A}/{a.id}/toggle-enabled", json={"enabled": True})
    assert r.status_code == 200 and r.json()["enabled"] is True
    assert (await a.http.post(f"{A}/{a.id}/heartbeat", json={})).status_code == 200
    rep = await a.http.post(f"{A}/{a.id}/reports/switch", json=_switch_report())
    assert rep.status_code == 201, rep.text


async def test_toggle_to_the_current_state_is_a_conflict_naming_it(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    r = await c.admin_http.post(f"{A}/{a.id}/toggle-enabled", json={"enabled": True})
    assert r.status_code == 409 and r.json()["current_state"] == "enabled"
    await c.admin_http.post(f"{A}/{a.id}/toggle-enabled", json={"enabled": False})
    r = await c.admin_http.post(f"{A}/{a.id}/toggle-enabled", json={"enabled": False})
    assert r.status_code == 409 and r.json()["current_state"] == "disabled"


async def test_toggle_needs_client_admin_and_a_valid_body(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    assert (
        await c.http.post(f"{A}/{a.id}/toggle-enabled", json={"enabled": False})
    ).status_code == 403
    assert (
        await a.http.post(f"{A}/{a.id}/toggle-enabled", json={"enabled": False})
    ).status_code == 403
    r = await c.admin_http.post(f"{A}/{a.id}/toggle-enabled", json={"enabled": "maybe"})
    assert r.status_code == 422 and "enabled" in _fields(r)
    other = await tenants.client()
    r = await other.admin_http.post(f"{A}/{a.id}/toggle-enabled", json={"enabled": False})
    missing = await other.admin_http.post(f"{A}/999999/toggle-enabled", json={"enabled": False})
    assert r.status_code == missing.status_code == 404
    assert (await a.http.post(f"{A}/{a.id}/heartbeat", json={})).status_code == 200


async def test_config_defaults_update_and_agent_reads_its_own(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    r = await a.http.get(f"{A}/{a.id}/config")
    assert r.status_code == 200
    assert r.json() == {
        "report_interval_seconds": 300,
        "heartbeat_interval_seconds": 60,
        "decide_interval_seconds": 900,
        "decision_engine": None,
    }
    body = {"report_interval_seconds": 30, "decision_engine": "rules"}
    r = await c.admin_http.put(f"{A}/{a.id}/config", json=body)
    assert r.status_code == 200, r.text
    got = (await a.http.get(f"{A}/{a.id}/config")).json()
    assert got["report_interval_seconds"] == 30 and got["decision_engine"] == "rules"
    assert got["heartbeat_interval_seconds"] == 60
    # Only the client admin writes it.
    assert (await c.http.put(f"{A}/{a.id}/config", json=body)).status_code == 403
    assert (await a.http.put(f"{A}/{a.id}/config", json=body)).status_code == 403


async def test_config_validation_names_fields(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    r = await c.admin_http.put(
        f"{A}/{a.id}/config",
        json={"report_interval_seconds": 1, "heartbeat_interval_seconds": "x", "bogus": 1},
    )
    assert r.status_code == 422
    assert {"report_interval_seconds", "heartbeat_interval_seconds", "bogus"} <= _fields(r)
    r = await c.admin_http.put(f"{A}/{a.id}/config", json={"decision_engine": "nope"})
    assert r.status_code == 422 and _fields(r) == {"decision_engine"}
    assert "rules" in r.json()["detail"]
    r = await c.admin_http.put(f"{A}/{a.id}/config", json={"decision_engine": "Bad Name"})
    assert r.status_code == 422 and "decision_engine" in _fields(r)


async def test_agent_engine_override_is_the_requested_engine(platform, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.05), ("us-east-1b", 0.03))
    await platform_engine(platform, c, a)


async def platform_engine(platform, c, a) -> None:
    """With the agent's override naming an engine that was uninstalled since, the decision
    records it as requested and falls back (the override was read)."""
    from platform_pricing.models import Agent

    async with platform.ctx.db.session() as s:
        agent = await s.get(Agent, a.id)
        agent.config = {"decision_engine": "gone"}
    r = await c.http.post(f"{A}/{a.id}/decide")
    assert r.status_code in (200, 201), r.text
    d = r.json()
    assert d["requested_engine"] == "gone" and d["engine"] == "rules"
    assert "not installed" in d["fallback_reason"]
    r = await c.admin_http.put(f"{A}/{a.id}/config", json={"decision_engine": "rules"})
    d = (await c.http.post(f"{A}/{a.id}/decide")).json()
    assert d["requested_engine"] == "rules" and d["fallback_reason"] is None


# -- a race at the running server --------------------------------------------------------------


async def _prepare(config_path: Path) -> str:
    """Migrate and create an admin token."""
    async with prepared(config_path) as platform:
        return await platform.token(user=await platform.user("admin", "racer"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def server(request, tmp_path):
    """A ``platformctl serve`` subprocess with pricing on a fresh database."""
    async with fresh_database(request.param, tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "WARNING"\n'
            '[plugins]\nenabled = ["pricing"]\n'
        )
        token = await _prepare(config)
        async with served(config) as base:
            yield base, token


async def test_concurrent_toggles_exactly_one_wins(server):
    base, token = server
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as admin:
        r = await admin.post("/api/pricing/clients", json={"name": "racers"})
        cid = r.json()["id"]
        r = await admin.post(
            f"/api/pricing/clients/{cid}/tokens", json={"name": "t", "admin": True}
        )
        client_token = r.json()["token"]
    headers = {"Authorization": f"Bearer {client_token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        r = await http.post(
            f"{A}/register",
            json={
                "name": "a1",
                "instance": {
                    "cloud_id": "i-1",
                    "region": "us-east-1",
                    "zone": "us-east-1a",
                    "instance_type": "m5.large",
                    "lifecycle": "spot",
                },
            },
        )
        agent_id = r.json()["agent"]["id"]
        url = f"{A}/{agent_id}/toggle-enabled"
        answers = await asyncio.gather(
            *(http.post(url, json={"enabled": False}) for _ in range(12))
        )
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] + [409] * 11, [r.text for r in answers]
        assert all(r.json()["current_state"] == "disabled" for r in answers if r.status_code == 409)
        assert (await http.get(f"{A}/{agent_id}")).json()["enabled"] is False
        # Flips without a body: each reads a value and changes it only from that value.
        flips = await asyncio.gather(*(http.post(url) for _ in range(12)))
        won = [r for r in flips if r.status_code == 200]
        assert won and all(r.status_code in (200, 409) for r in flips), [r.text for r in flips]
        final = (await http.get(f"{A}/{agent_id}")).json()["enabled"]
        assert final == (len(won) % 2 == 1)


async def test_toggle_without_a_body_flips_the_flag(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    r = await c.admin_http.post(f"{A}/{a.id}/toggle-enabled")
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = await c.admin_http.post(f"{A}/{a.id}/toggle-enabled")
    assert r.status_code == 200 and r.json()["enabled"] is True
    assert (await a.http.post(f"{A}/{a.id}/heartbeat", json={})).status_code == 200


async def test_migration_matches_the_model_and_keeps_agents(platform, tenants):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from platform_pricing.models import Agent, Instance, PricingBase
    from sqlalchemy import func, select

    def compare(conn):
        diff = compare_metadata(MigrationContext.configure(conn), PricingBase.metadata)
        return [d for d in diff if "pricing_agents" in repr(d)]

    async with platform.ctx.db.engine.connect() as conn:
        assert await conn.run_sync(compare) == []
    c = await tenants.client()
    a = await tenants.agent(c)
    await platform.migrate("pricing", "pricing_0002_dirty_hours")
    await platform.migrate("pricing", "heads")
    async with platform.ctx.db.session() as s:
        row = (await s.execute(select(Agent.enabled, Agent.config).where(Agent.id == a.id))).one()
        assert (row.enabled, row.config) == (True, {})
        assert await s.scalar(select(func.count()).select_from(Instance)) == 1
