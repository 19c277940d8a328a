"""[plugins.pricing] client_token_days and agent_token_days set the default lifetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from platform_core import ApiToken

C = "/api/pricing/clients"


def _days_left(expires_at: str | datetime | None) -> float:
    assert expires_at is not None
    when = expires_at if isinstance(expires_at, datetime) else datetime.fromisoformat(expires_at)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)) / timedelta(days=1)


@pytest.fixture
def platform_settings():
    return {"pricing": {"client_token_days": 7, "agent_token_days": 0}}


async def test_the_lifetimes_are_configurable_and_zero_means_never(platform, admin_client, tenants):
    c = await tenants.client()
    r = await admin_client.post(f"{C}/{c.id}/tokens", json={"name": "ops"})
    assert 6.9 < _days_left(r.json()["expires_at"]) <= 7
    await tenants.agent(c)
    async with platform.ctx.db.session() as s:
        agent_token = (await s.scalars(select(ApiToken).order_by(ApiToken.id.desc()))).first()
    assert agent_token.scopes == ["pricing:agent"]
    assert agent_token.expires_at is None


async def test_the_cli_uses_the_default_too(platform, tenants, run_cli):
    c = await tenants.client()
    result = await run_cli("pricing", "clients", "token", c.name)
    assert result.exit_code == 0, result.output
    async with platform.ctx.db.session() as s:
        token = (await s.scalars(select(ApiToken).order_by(ApiToken.id.desc()))).first()
    assert 6.9 < _days_left(token.expires_at) <= 7


@pytest.mark.parametrize("key", ["client_token_days", "agent_token_days"])
async def test_a_negative_lifetime_isolates_pricing_naming_the_key(platform_factory, key):
    other = await platform_factory(enabled=["pricing"], settings={"pricing": {key: -1}})
    record = other.ctx.plugins.get("pricing")
    assert record.state.value == "isolated"
    assert f"key '{key}'" in record.reason
