"""Two admins taking each other's admin rights at once, at a running server (SQLite and
PostgreSQL): exactly one wins, the other gets a 409 (or a 403 once its own demotion is
visible), and an active admin always remains."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from platform_core import User
from platform_core.testing import fresh_database, prepared, served

ROUNDS = 8
# Role changes first; a deactivation revokes the victim's tokens, so it comes last.
CHANGES = [{"role": "member"}] * ROUNDS + [{"is_active": False}]


@pytest.fixture(params=["sqlite", "postgresql"])
async def server(request, tmp_path):
    """``platformctl serve`` (no credential cache) with two admins, a and b, on a fresh DB."""
    async with fresh_database(request.param, tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "WARNING"\n'
            "background = false\n[core.auth]\ncache_seconds = 0\n"
        )
        async with prepared(config) as platform:
            admins = {}
            for name in ("a", "b"):
                user = await platform.user("admin", name)
                admins[name] = (user.id, await platform.token(user=user))
        async with served(config) as base:
            clients = {
                name: httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
                )
                for name, (_, token) in admins.items()
            }
            try:
                yield {
                    "url": url,
                    "clients": clients,
                    "ids": {n: i for n, (i, _) in admins.items()},
                }
            finally:
                for client in clients.values():
                    await client.aclose()


async def test_two_admins_removing_each_other_leave_exactly_one(server):
    engine = create_async_engine(server["url"])
    a, b = server["clients"]["a"], server["clients"]["b"]
    ids = server["ids"]
    try:
        for round_, change in enumerate(CHANGES):
            first, second = await asyncio.gather(
                a.patch(f"/api/core/users/{ids['b']}", json=change),
                b.patch(f"/api/core/users/{ids['a']}", json=change),
            )
            statuses = sorted([first.status_code, second.status_code])
            assert statuses in ([200, 403], [200, 409]), (round_, first.text, second.text)
            loser = second if first.status_code == 200 else first
            assert loser.headers["content-type"] == "application/problem+json"
            if loser.status_code == 409:
                assert "last active admin" in loser.json()["detail"]
            async with engine.begin() as conn:
                admins = await conn.scalar(
                    select(func.count())
                    .select_from(User)
                    .where(User.role == "admin", User.is_active.is_(True))
                )
                assert admins == 1, round_
                await conn.execute(update(User).values(role="admin", is_active=True))
    finally:
        await engine.dispose()
