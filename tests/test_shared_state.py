"""What processes share through Redis, checked in one process: the invalidation message
``ctx.forget_credentials()`` publishes, the cache's hold after an invalidation, and the
fallbacks when Redis is configured but unreachable. (Three real processes:
tests/test_scale_out.py.)"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import select

from platform_core import ApiToken, Principal
from platform_core.auth.cache import CredentialCache
from platform_core.config import load_config
from platform_core.errors import ConfigError

REDIS = "redis://127.0.0.1:6379/0"
UNREACHABLE = "redis://127.0.0.1:1/0"
PASSWORD = "correct horse battery"


async def _login(client, username, password="wrong password"):
    return await client.post(
        "/api/core/auth/token", data={"username": username, "password": password}
    )


async def _until(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_forget_credentials_publishes_an_invalidation(platform_factory):
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    platform = await platform_factory(core={"redis": {"url": REDIS, "prefix": prefix}})
    listener = aioredis.Redis.from_url(REDIS)
    async with listener.pubsub() as pubsub:
        await pubsub.subscribe(f"{prefix}:credentials")
        assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"
        platform.ctx.forget_credentials()
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    await listener.aclose()
    assert message is not None and message["type"] == "message"


async def test_published_invalidation_empties_this_process_cache(platform_factory):
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    platform = await platform_factory(core={"redis": {"url": REDIS, "prefix": prefix}})
    cache = platform.ctx.credential_cache
    await _until(lambda: cache.enabled)  # subscribed
    client = platform.client(await platform.token("member"))
    assert (await client.get("/api/core/me")).status_code == 200
    await asyncio.sleep(1.1)  # past the hold of the startup invalidation
    assert (await client.get("/api/core/me")).status_code == 200
    assert cache._entries
    publisher = aioredis.Redis.from_url(REDIS)
    await publisher.publish(f"{prefix}:credentials", "{}")  # as another process would
    await publisher.aclose()
    await _until(lambda: not cache._entries)


def test_invalidation_holds_the_cache_off_and_refuses_resolutions_started_before_it():
    cache = CredentialCache(ttl=5)
    principal = Principal(1, "x", "member", frozenset())
    before = cache.generation
    cache.invalidate(hold=0.3)
    cache.put("a", principal)
    assert cache.get("a") is None  # held off
    time.sleep(0.35)
    cache.put("b", principal, before)
    assert cache.get("b") is None  # resolved before the invalidation
    cache.put("c", principal, cache.generation)
    assert cache.get("c") is principal


async def test_unreachable_redis_falls_back_to_limits_in_this_process(platform_factory):
    platform = await platform_factory(
        core={"redis": {"url": UNREACHABLE}, "auth": {"login_attempts": 3}}
    )
    await platform.user("member", "dora", PASSWORD)
    client = platform.client()
    codes = [(await _login(client, "dora")).status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]


async def test_unreachable_redis_keeps_the_cache_off_so_revocation_is_immediate(
    platform_factory,
):
    platform = await platform_factory(core={"redis": {"url": UNREACHABLE}})
    admin = platform.client(await platform.token("admin"))
    member = await platform.user("member", "eve")
    client = platform.client(await platform.token(user=member))
    assert (await client.get("/api/core/me")).status_code == 200
    assert not platform.ctx.credential_cache.enabled
    async with platform.ctx.db.session() as session:
        token_id = await session.scalar(select(ApiToken.id).where(ApiToken.user_id == member.id))
    assert (await admin.delete(f"/api/core/tokens/{token_id}")).status_code == 204
    assert (await client.get("/api/core/me")).status_code == 401


def test_redis_url_with_another_scheme_is_refused_naming_the_key(tmp_path):
    config = tmp_path / "plugins.toml"
    config.write_text('[core.redis]\nurl = "http://127.0.0.1:6379"\n')
    with pytest.raises(ConfigError, match=r"\[core\] key 'redis.url'"):
        load_config(config)


def test_a_command_publishes_its_invalidation_before_its_loop_ends(tmp_path):
    from platform_core import run_command
    from platform_core.app import boot
    from platform_core.config import Config, CoreSettings

    prefix = f"t-{uuid.uuid4().hex[:8]}"
    core = CoreSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
        secret_key="k" * 40,
        redis={"url": REDIS, "prefix": prefix},
    )
    ctx = boot(Config(path=tmp_path / "plugins.toml", core=core))
    listener = redis.Redis.from_url(REDIS)
    pubsub = listener.pubsub()
    pubsub.subscribe(f"{prefix}:credentials")
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"

    async def revoke_something() -> None:
        ctx.forget_credentials()

    run_command(ctx, revoke_something())
    message = pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    pubsub.close()
    listener.close()
    assert message is not None and message["type"] == "message"


async def test_concurrent_wrong_passwords_in_one_process_never_exceed_the_limit(
    platform_factory,
):
    platform = await platform_factory(core={"auth": {"login_attempts": 3}})
    await platform.user("member", "fred", PASSWORD)
    client = platform.client()
    codes = [
        r.status_code for r in await asyncio.gather(*(_login(client, "fred") for _ in range(9)))
    ]
    assert sorted(codes) == [401] * 3 + [429] * 6
