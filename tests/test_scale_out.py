"""Three real ``platformctl serve`` processes on one fresh PostgreSQL database and Redis.

- Login limits are shared: wrong-password attempts for one user sent through all three
  processes (one after the other, and all at once) are answered 401 exactly
  ``login_attempts`` times in total, then 429; the same per client address.
- A token revoked through one process is refused by the other two within one second,
  although their credential caches (5 s) are live: a change that is *not* published (a
  direct database update) is still served from their caches.

The figures (attempts allowed, milliseconds to the first 401) are printed by
``bench/scale_auth.py``; here only the promises are asserted.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select, update

from platform_core import ApiToken
from platform_core.testing import fresh_database, prepared, served

REDIS = "redis://127.0.0.1:6379/0"
LIMIT = 5
PASSWORD = "correct horse battery"
pytestmark = pytest.mark.asyncio(loop_scope="module")


def _config(directory: Path, url: str, prefix: str) -> Path:
    config = directory / "plugins.toml"
    config.write_text(
        f"""
[core]
database_url = "{url}"
secret_key = "scale-test-secret-{"x" * 32}"
log_format = "text"
log_level = "WARNING"
trusted_proxies = ["127.0.0.1"]

[core.auth]
login_attempts = {LIMIT}
login_window_seconds = 60
cache_seconds = 5

[core.redis]
url = "{REDIS}"
prefix = "{prefix}"

[plugins]
enabled = []
"""
    )
    return config


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory):
    """Three servers on one database; users alice and bob (with a password), tokens."""
    directory = tmp_path_factory.mktemp("scale")
    async with fresh_database("postgresql", directory) as url:
        config = _config(directory, url, f"test-{uuid.uuid4().hex[:8]}")
        async with prepared(config) as platform:
            users = {
                name: await platform.user("member", name, PASSWORD)
                for name in ("alice", "bob", "carol")
            }
            admin = await platform.token("admin")
            async with AsyncExitStack() as stack:
                bases = await asyncio.gather(
                    *(stack.enter_async_context(served(config)) for _ in range(3))
                )
                async with httpx.AsyncClient(timeout=10) as client:
                    yield {
                        "bases": list(bases),
                        "client": client,
                        "admin": admin,
                        "users": users,
                        "platform": platform,
                    }


async def _login(client: httpx.AsyncClient, base: str, user: str, address: str) -> int:
    response = await client.post(
        f"{base}/api/core/auth/token",
        data={"username": user, "password": "wrong password"},
        headers={"X-Forwarded-For": address},
    )
    return response.status_code


async def test_wrong_passwords_through_three_processes_allow_the_limit_in_total(cluster):
    bases, client = cluster["bases"], cluster["client"]
    codes = [
        await _login(client, base, "alice", f"10.1.0.{i}")
        for i, base in zip(range(15), itertools.cycle(bases), strict=False)
    ]
    assert codes.count(401) == LIMIT
    assert codes[:LIMIT] == [401] * LIMIT
    assert set(codes[LIMIT:]) == {429}


async def test_concurrent_wrong_passwords_never_exceed_the_limit_together(cluster):
    bases, client = cluster["bases"], cluster["client"]
    codes = await asyncio.gather(
        *(
            _login(client, base, "bob", f"10.2.0.{i}")
            for i, base in zip(range(15), itertools.cycle(bases), strict=False)
        )
    )
    assert codes.count(401) == LIMIT
    assert codes.count(429) == 15 - LIMIT


async def test_one_address_is_limited_across_user_names_and_processes(cluster):
    bases, client = cluster["bases"], cluster["client"]
    codes = [
        await _login(client, base, f"ghost{i}", "10.3.0.1")
        for i, base in zip(range(9), itertools.cycle(bases), strict=False)
    ]
    assert codes.count(401) == LIMIT
    assert set(codes[LIMIT:]) == {429}


async def _token_for(cluster, user: str) -> tuple[int, str]:
    platform = cluster["platform"]
    secret = await platform.token(user=cluster["users"][user])
    async with platform.ctx.db.session() as session:
        newest = await session.scalar(
            select(ApiToken.id)
            .where(ApiToken.user_id == cluster["users"][user].id)
            .order_by(ApiToken.id.desc())
        )
    assert newest is not None
    return newest, secret


async def _status(client: httpx.AsyncClient, base: str, secret: str) -> int:
    headers = {"Authorization": f"Bearer {secret}"}
    return (await client.get(f"{base}/api/core/me", headers=headers)).status_code


async def test_caches_are_live_so_an_unpublished_change_is_still_served(cluster):
    bases, client = cluster["bases"], cluster["client"]
    token_id, secret = await _token_for(cluster, "carol")
    assert [await _status(client, b, secret) for b in bases] == [200, 200, 200]
    async with cluster["platform"].ctx.db.session() as session:  # behind every cache's back
        await session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=datetime.now(UTC))
        )
    assert [await _status(client, b, secret) for b in bases] == [200, 200, 200]


async def test_revocation_through_one_process_is_refused_by_the_others_within_a_second(cluster):
    bases, client = cluster["bases"], cluster["client"]
    token_id, secret = await _token_for(cluster, "alice")
    assert [await _status(client, b, secret) for b in bases] == [200, 200, 200]
    revoked = await client.delete(
        f"{bases[0]}/api/core/tokens/{token_id}",
        headers={"Authorization": f"Bearer {cluster['admin']}"},
    )
    assert revoked.status_code == 204
    start = time.monotonic()

    async def first_401(base: str) -> float:
        while time.monotonic() - start < 3:
            if await _status(client, base, secret) == 401:
                return time.monotonic() - start
            await asyncio.sleep(0.01)
        return float("inf")

    delays = await asyncio.gather(*(first_401(b) for b in bases))
    assert max(delays) < 1.0, delays
