"""Racing changes at a running ``platformctl serve`` (SQLite and PostgreSQL).

- Concurrent changes of one app get consecutive revisions, none lost, never a 500.
- A change racing a delete: the delete always wins or follows; a change that loses gets a
  409 naming the ``deleting`` state.
- Concurrent creates by one user never exceed the quota's app count.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from platform_core.testing import fresh_database, prepared, served

API = "/api/deployments"


@pytest.fixture(params=["sqlite", "postgresql"])
async def server(request, tmp_path):
    """``platformctl serve`` with deployments (a cluster nobody calls: no background jobs)."""
    async with fresh_database(request.param, tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "WARNING"\n'
            "background = false\n"
            '[plugins]\nenabled = ["deployments"]\n'
            '[plugins.deployments.clusters.main]\nhost = "http://127.0.0.1:9"\n'
        )
        async with prepared(config) as platform:
            tokens = {}
            for role in ("admin", "member"):
                user = await platform.user(role, f"{role}-racer")
                tokens[role] = (user.id, await platform.token(user=user))
        async with served(config) as base:
            clients = {
                role: httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {tok}"}, timeout=60
                )
                for role, (_, tok) in tokens.items()
            }
            try:
                yield {"clients": clients, "member_id": tokens["member"][0]}
            finally:
                for client in clients.values():
                    await client.aclose()


async def create(member: httpx.AsyncClient, name: str) -> dict[str, Any]:
    r = await member.post(f"{API}/apps", json={"name": name, "template": "static-site"})
    assert r.status_code == 202, r.text
    return r.json()["app"]


async def test_concurrent_changes_get_consecutive_revisions(server) -> None:
    member = server["clients"]["member"]
    app = await create(member, "web")
    calls = [
        member.patch(f"{API}/apps/{app['id']}", json={"variables": {"SITE_TITLE": f"t{i}"}})
        for i in range(8)
    ]
    answers = await asyncio.gather(*calls)
    assert [r.status_code for r in answers] == [202] * 8, [r.text for r in answers]
    assert sorted(r.json()["revision"] for r in answers) == list(range(2, 10))
    revisions = (await member.get(f"{API}/apps/{app['id']}/revisions")).json()["items"]
    assert [r["number"] for r in revisions] == list(range(9, 0, -1))


async def test_change_racing_delete_loses_with_409_naming_the_state(server) -> None:
    member = server["clients"]["member"]
    for i in range(5):  # the default quota: 5 apps (deleting ones still count)
        app = await create(member, f"app{i}")
        url = f"{API}/apps/{app['id']}"
        patch, delete = await asyncio.gather(
            member.patch(url, json={"replicas": 0}), member.delete(url)
        )
        assert delete.status_code == 202, delete.text
        assert patch.status_code in (202, 409), patch.text
        if patch.status_code == 409:
            assert "deleting" in patch.json()["detail"]
        shown = (await member.get(url)).json()
        assert shown["state"] == "deleting"
        assert shown["revision"] == (2 if patch.status_code == 202 else 1)


async def test_concurrent_creates_never_exceed_the_quota(server) -> None:
    admin, member = server["clients"]["admin"], server["clients"]["member"]
    r = await admin.put(
        f"{API}/admin/quotas/{server['member_id']}",
        json={"max_apps": 2, "max_replicas": 10, "cpu_millis": 5000, "memory_mib": 5000},
    )
    assert r.status_code == 200, r.text
    answers = await asyncio.gather(
        *[
            member.post(f"{API}/apps", json={"name": f"a{i}", "template": "static-site"})
            for i in range(6)
        ]
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [202, 202, 422, 422, 422, 422], [r.text for r in answers]
    for r in answers:
        if r.status_code == 422:
            assert r.json()["errors"][0]["field"] == "quota.max_apps"
    assert len((await member.get(f"{API}/apps")).json()["items"]) == 2
