"""Client and agent tokens expire by default: [plugins.pricing] client_token_days and
agent_token_days (0: never)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from platform_core import ApiToken

C = "/api/pricing/clients"


def _days_left(expires_at: str | datetime | None) -> float:
    assert expires_at is not None
    when = expires_at if isinstance(expires_at, datetime) else datetime.fromisoformat(expires_at)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)) / timedelta(days=1)


async def test_a_client_token_without_expires_in_lasts_the_default_year(admin_client, tenants):
    c = await tenants.client()
    r = await admin_client.post(f"{C}/{c.id}/tokens", json={"name": "ops"})
    assert r.status_code == 201
    assert 364.9 < _days_left(r.json()["expires_at"]) <= 365


async def test_an_explicit_expires_in_wins_over_the_default(admin_client, tenants):
    c = await tenants.client()
    r = await admin_client.post(f"{C}/{c.id}/tokens", json={"name": "ops", "expires_in": "2d"})
    assert 1.9 < _days_left(r.json()["expires_at"]) <= 2


async def test_an_agent_token_lasts_the_default_year(platform, tenants):
    c = await tenants.client()
    agent = await tenants.agent(c)
    assert agent.body["token"]
    async with platform.ctx.db.session() as s:
        token = (await s.scalars(select(ApiToken).order_by(ApiToken.id.desc()))).first()
    assert token.scopes == ["pricing:agent"]
    assert 364.9 < _days_left(token.expires_at) <= 365
