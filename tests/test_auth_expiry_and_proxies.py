"""Credentials that expire while cached, and whose ``X-Forwarded-For`` the login limiter believes.

- An API token or JWT that expires is refused at once, even while the credential cache
  (``[core.auth] cache_seconds``) still holds it.
- ``X-Forwarded-For`` is ignored unless the peer is one of ``[core] trusted_proxies`` (empty
  by default): a real ``platformctl serve`` on loopback must not let a local process rotate
  its address past the per-address login limit.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from platform_core.auth import service
from platform_core.auth.tokens import encode_jwt
from platform_core.config import ConfigError, load_config
from platform_core.db import utcnow
from platform_core.testing import fresh_database, served


async def test_expired_credentials_are_refused_while_still_cached(platform_factory):
    platform = await platform_factory(core={"auth": {"cache_seconds": 300}})
    user = await platform.user("member")
    async with platform.ctx.db.session() as s:
        member = await service.get_user(s, user.id)
        token, secret = await service.create_token(
            s,
            member,
            scopes=None,
            known_scopes=frozenset(platform.ctx.permissions),
            role_scopes=platform.ctx.state["role_scopes"]["member"],
            expires_in=timedelta(seconds=3),
        )
    # 3 s: a JWT's exp is whole seconds, so a 1 s lifetime may be over before the first call.
    jwt, _ = encode_jwt(platform.ctx.secret_key, user.id, ["core:read"], timedelta(seconds=3))
    client = platform.client()
    for credential in (secret, jwt):
        r = await client.get("/api/core/me", headers={"Authorization": f"Bearer {credential}"})
        assert r.status_code == 200, r.text  # resolved, and now cached for 300 s
    await asyncio.sleep(max(0.0, (token.expires_at - utcnow()).total_seconds()) + 1.1)
    # Both have expired; both are still in the 300 s credential cache.
    for credential in (secret, jwt):
        r = await client.get("/api/core/me", headers={"Authorization": f"Bearer {credential}"})
        assert r.status_code == 401, r.text
        assert r.json()["detail"] == "invalid, expired or revoked credentials"


async def _fail_logins(client: httpx.AsyncClient, count: int, forwarded: list[str]) -> list[int]:
    """Statuses of ``count`` failed logins, each with a different user name and XFF."""
    statuses = []
    for i in range(count):
        r = await client.post(
            "/api/core/auth/token",
            data={"username": f"ghost{i}", "password": "wrong password"},
            headers={"X-Forwarded-For": forwarded[i % len(forwarded)]},
        )
        statuses.append(r.status_code)
    return statuses


ROTATING = [f"203.0.113.{i}" for i in range(1, 10)]
LIMITS = {"auth": {"login_attempts": 2, "login_window_seconds": 60}}


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(platform_factory):
    for proxies in ([], ["10.0.0.0/8"]):  # the default, and a proxy that is not the peer
        platform = await platform_factory(core=LIMITS | {"trusted_proxies": proxies})
        statuses = await _fail_logins(platform.client(), 3, ROTATING)
        assert statuses == [401, 401, 429], proxies


async def test_forwarded_for_is_honoured_from_a_trusted_proxy(platform_factory):
    # the in-process client's peer address is 127.0.0.1
    platform = await platform_factory(core=LIMITS | {"trusted_proxies": ["127.0.0.1/32"]})
    client = platform.client()
    assert await _fail_logins(client, 3, ROTATING) == [401] * 3  # three different clients
    assert await _fail_logins(client, 3, ["198.51.100.7"]) == [401, 401, 429]


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path):
    config = tmp_path / "plugins.toml"
    config.write_text('[core]\ntrusted_proxies = ["10.0.0.1", "proxy.example.org"]\n')
    with pytest.raises(ConfigError, match=r"key 'trusted_proxies'.*'proxy.example.org'"):
        load_config(config)
    config.write_text('[core]\ntrusted_proxies = ["10.0.0.1", "fd00::/8"]\n')
    assert load_config(config).core.trusted_proxies == ["10.0.0.1", "fd00::/8"]


async def test_served_login_limit_ignores_forwarded_for_from_loopback_by_default(tmp_path):
    async with fresh_database("sqlite", tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "ERROR"\n'
            "[core.auth]\nlogin_attempts = 2\n[plugins]\nenabled = []\n"
        )
        from platform_core.app import boot
        from platform_core.migrate import upgrade

        ctx = boot(load_config(config))
        await upgrade(ctx.db, ctx.state["migration_targets"])
        await ctx.db.dispose()
        async with served(config) as base, httpx.AsyncClient(base_url=base) as client:
            assert await _fail_logins(client, 3, ROTATING) == [401, 401, 429]
