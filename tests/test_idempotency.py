"""Idempotency keys on POST routes (platform_core.idempotency), on SQLite and PostgreSQL.

In-process tests use an in-test plugin whose routes opt in with ``dependencies=[...]``; the
concurrent-duplicate test runs a real ``platformctl serve`` with the same plugin, made
importable through a ``.dist-info`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import asyncio
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from platform_core.idempotency import IdempotencyKey, prune_idempotency_keys
from platform_core.testing import TestPlatform, fresh_database, served

PLUGIN_SOURCE = textwrap.dedent(
    '''
    """Test plugin: charges that count how often they really ran."""

    from __future__ import annotations

    import asyncio
    from pathlib import Path

    from fastapi import APIRouter, Request
    from pydantic import BaseModel, Field

    from platform_core import (
        IDEMPOTENT,
        IDEMPOTENT_REQUIRED,
        Conflict,
        Permission,
        PluginMeta,
        claimed_key,
        get_context,
        hookimpl,
    )

    RUNS: list[dict] = []


    class Settings(BaseModel):
        record_file: str = ""
        delay: float = 0.0


    class ChargeIn(BaseModel):
        amount: int = Field(gt=0)


    router = APIRouter()


    def _record(request: Request, line: str) -> int:
        settings = get_context(request).plugin_settings("idemtest")
        RUNS.append({"line": line})
        if settings.record_file:
            with Path(settings.record_file).open("a") as fh:
                fh.write(line + "\\n")
        return len(RUNS)


    @router.post("/charges", status_code=201, dependencies=[IDEMPOTENT])
    async def charge(data: ChargeIn, request: Request) -> dict:
        settings = get_context(request).plugin_settings("idemtest")
        if settings.delay:
            await asyncio.sleep(settings.delay)
        n = _record(request, f"charge {data.amount}")
        if data.amount == 409:
            raise Conflict("amount 409 conflicts", amount=409)
        if data.amount == 500:
            raise RuntimeError("boom")
        return {"run": n, "amount": data.amount, "key": claimed_key(request)}


    @router.post("/refunds", status_code=201, dependencies=[IDEMPOTENT_REQUIRED])
    async def refund(data: ChargeIn, request: Request) -> dict:
        return {"run": _record(request, f"refund {data.amount}"), "amount": data.amount}


    @router.put("/limits/{n}", dependencies=[IDEMPOTENT])
    async def set_limit(n: int, request: Request) -> dict:
        return {"run": _record(request, f"limit {n}")}


    @router.post("/public", status_code=200, dependencies=[IDEMPOTENT],
                 openapi_extra={"x-public": True})
    async def public(request: Request) -> dict:
        return {"run": _record(request, "public")}


    @hookimpl
    def platform_plugin_meta() -> PluginMeta:
        return PluginMeta(core=">=0.1,<1", description="idempotency test plugin")


    @hookimpl
    def platform_settings() -> type[BaseModel]:
        return Settings


    @hookimpl
    def platform_permissions() -> list[Permission]:
        everyone = ("admin", "operator", "member")
        return [Permission("idemtest:read", "read", everyone),
                Permission("idemtest:write", "write", everyone)]


    @hookimpl
    def platform_routes() -> list[APIRouter]:
        return [router]
    '''
)


def _load_plugin(tmp_path: Path) -> Any:
    """The test plugin as a module object (fresh per test: its own RUNS list)."""
    import importlib.util

    path = tmp_path / "idemtest_plugin.py"
    path.write_text(PLUGIN_SOURCE)
    spec = importlib.util.spec_from_file_location(f"idemtest_{tmp_path.name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def idem(platform_factory, tmp_path) -> tuple[TestPlatform, Any]:
    plugin = _load_plugin(tmp_path)
    platform = await platform_factory(
        extra_plugins={"idemtest": plugin},
        core={"idempotency": {"ttl_hours": 1, "lock_seconds": 30}},
    )
    return platform, plugin


async def _client(platform: TestPlatform, role: str = "member") -> httpx.AsyncClient:
    return await platform.client_for(role)


async def test_same_key_same_body_replays_status_and_body(idem):
    platform, plugin = idem
    client = await _client(platform)
    headers = {"Idempotency-Key": "key-1"}
    first = await client.post("/api/idemtest/charges", json={"amount": 5}, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json() == {"run": 1, "amount": 5, "key": "key-1"}
    assert "idempotent-replayed" not in first.headers
    again = await client.post("/api/idemtest/charges", json={"amount": 5}, headers=headers)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert len(plugin.RUNS) == 1
    # without a key (the header is optional on this route) every request runs
    unkeyed = await client.post("/api/idemtest/charges", json={"amount": 5})
    assert unkeyed.json() == {"run": 2, "amount": 5, "key": None}
    await client.post("/api/idemtest/charges", json={"amount": 5})
    assert len(plugin.RUNS) == 3


async def test_same_key_other_body_or_path_is_refused_naming_the_header(idem):
    platform, plugin = idem
    client = await _client(platform)
    headers = {"Idempotency-Key": "key-2"}
    assert (
        await client.post("/api/idemtest/charges", json={"amount": 5}, headers=headers)
    ).status_code == 201
    other = await client.post("/api/idemtest/charges", json={"amount": 6}, headers=headers)
    assert other.status_code == 422
    problem = other.json()
    assert other.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert problem["errors"][0]["in"] == "header"
    assert "another request" in problem["detail"]
    elsewhere = await client.post("/api/idemtest/refunds", json={"amount": 5}, headers=headers)
    assert elsewhere.status_code == 422
    query = await client.post("/api/idemtest/charges?x=1", json={"amount": 5}, headers=headers)
    assert query.status_code == 422
    assert len(plugin.RUNS) == 1


async def test_keys_are_per_caller(idem):
    platform, _plugin = idem
    alice, bob = await _client(platform), await _client(platform)
    headers = {"Idempotency-Key": "shared"}
    a = await alice.post("/api/idemtest/charges", json={"amount": 5}, headers=headers)
    b = await bob.post("/api/idemtest/charges", json={"amount": 7}, headers=headers)
    assert (a.status_code, b.status_code) == (201, 201)
    assert b.json() == {"run": 2, "amount": 7, "key": "shared"}
    assert "idempotent-replayed" not in b.headers


async def test_required_key_missing_or_malformed_is_422_naming_the_header(idem):
    platform, plugin = idem
    client = await _client(platform)
    missing = await client.post("/api/idemtest/refunds", json={"amount": 5})
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["Idempotency-Key"]
    too_long = await client.post(
        "/api/idemtest/refunds", json={"amount": 5}, headers={"Idempotency-Key": "k" * 256}
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "Idempotency-Key"
    ok = await client.post(
        "/api/idemtest/refunds", json={"amount": 5}, headers={"Idempotency-Key": "r1"}
    )
    assert ok.status_code == 201
    assert len(plugin.RUNS) == 1


async def test_4xx_of_the_route_is_replayed_but_request_validation_is_not_stored(idem):
    platform, plugin = idem
    client = await _client(platform)
    headers = {"Idempotency-Key": "key-409"}
    first = await client.post("/api/idemtest/charges", json={"amount": 409}, headers=headers)
    assert first.status_code == 409
    again = await client.post("/api/idemtest/charges", json={"amount": 409}, headers=headers)
    assert again.status_code == 409
    assert again.json()["amount"] == 409
    assert again.headers["idempotent-replayed"] == "true"
    assert len(plugin.RUNS) == 1
    # a body refused by validation never ran: the key stays free for the corrected request
    headers = {"Idempotency-Key": "key-invalid"}
    bad = await client.post("/api/idemtest/charges", json={"amount": -1}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "amount"
    fixed = await client.post("/api/idemtest/charges", json={"amount": 1}, headers=headers)
    assert fixed.status_code == 201
    assert "idempotent-replayed" not in fixed.headers


async def test_5xx_is_not_stored_so_a_retry_runs_again(idem):
    platform, plugin = idem
    client = await _client(platform)
    headers = {"Idempotency-Key": "key-500"}
    first = await client.post("/api/idemtest/charges", json={"amount": 500}, headers=headers)
    assert first.status_code == 500
    retry = await client.post("/api/idemtest/charges", json={"amount": 500}, headers=headers)
    assert retry.status_code == 500
    assert "idempotent-replayed" not in retry.headers
    assert len(plugin.RUNS) == 2
    async with platform.ctx.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


async def test_public_route_keys_and_running_duplicate_gets_409(idem):
    platform, plugin = idem
    anon = platform.client()
    headers = {"Idempotency-Key": "pub"}
    first = await anon.post("/api/idemtest/public", headers=headers)
    again = await anon.post("/api/idemtest/public", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    # a claim still running (its lock not run out) refuses the duplicate with 409
    async with platform.ctx.db.session() as session:
        await session.execute(update(IdempotencyKey).values(state="running"))
    busy = await anon.post("/api/idemtest/public", headers=headers)
    assert busy.status_code == 409
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["state"] == "running"
    assert busy.json()["errors"][0]["field"] == "Idempotency-Key"
    assert len(plugin.RUNS) == 1


async def test_expired_keys_run_again_and_are_pruned(idem):
    platform, _plugin = idem
    client = await _client(platform)
    headers = {"Idempotency-Key": "old"}
    await client.post("/api/idemtest/charges", json={"amount": 5}, headers=headers)
    async with platform.ctx.db.session() as session:
        row = await session.scalar(select(IdempotencyKey))
        assert row is not None
        assert row.expires_at - row.created_at == timedelta(hours=1)  # [core.idempotency]
        await session.execute(
            update(IdempotencyKey).values(expires_at=row.created_at - timedelta(seconds=1))
        )
    # an expired key is a new key: even with another body
    second = await client.post("/api/idemtest/charges", json={"amount": 6}, headers=headers)
    assert second.status_code == 201
    assert second.json() == {"run": 2, "amount": 6, "key": "old"}
    await client.post("/api/idemtest/charges", json={"amount": 7}, headers={"Idempotency-Key": "n"})
    async with platform.ctx.db.session() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(expires_at=row.created_at - timedelta(seconds=1))
        )
    assert await prune_idempotency_keys(platform.ctx) == 1
    async with platform.ctx.db.session() as session:
        assert list(await session.scalars(select(IdempotencyKey.key))) == ["n"]
    assert "core.prune_idempotency_keys" in platform.ctx.jobs


async def test_stale_running_claim_is_taken_over(idem):
    platform, plugin = idem
    client = await _client(platform)
    headers = {"Idempotency-Key": "stale"}
    await client.post("/api/idemtest/charges", json={"amount": 5}, headers=headers)
    async with platform.ctx.db.session() as session:
        row = await session.scalar(select(IdempotencyKey))
        assert row is not None
        await session.execute(
            update(IdempotencyKey).values(
                state="running", locked_until=row.created_at - timedelta(seconds=1)
            )
        )
    retry = await client.post("/api/idemtest/charges", json={"amount": 5}, headers=headers)
    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers
    assert len(plugin.RUNS) == 2


async def test_other_methods_opt_in_too(idem):
    platform, plugin = idem
    client = await _client(platform)
    headers = {"Idempotency-Key": "put-1"}
    first = await client.put("/api/idemtest/limits/3", headers=headers)
    again = await client.put("/api/idemtest/limits/3", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() == {"run": 1}
    assert (await client.put("/api/idemtest/limits/4", headers=headers)).status_code == 422
    assert len(plugin.RUNS) == 1


async def test_openapi_documents_the_header(idem):
    platform, _ = idem
    doc = (await platform.client().get("/openapi.json")).json()
    params = doc["paths"]["/api/idemtest/refunds"]["post"]["parameters"]
    header = next(p for p in params if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and header["required"] is True
    params = doc["paths"]["/api/idemtest/charges"]["post"]["parameters"]
    header = next(p for p in params if p["name"] == "Idempotency-Key")
    assert header["required"] is False


# -- a concurrent duplicate against a real server ----------------------------------------------


def _site(tmp_path: Path) -> Path:
    """A directory for PYTHONPATH holding the test plugin and its entry point."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "platform_idemtest.py").write_text(PLUGIN_SOURCE)
    info = site / "platform_idemtest-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: platform-idemtest\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[platform_core.plugins]\nidemtest = platform_idemtest\n"
    )
    return site


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_concurrent_duplicates_run_once_on_a_served_server(backend, tmp_path, monkeypatch):
    import os

    from platform_core.auth import service
    from platform_core.config import load_config
    from platform_core.migrate import upgrade

    site = _site(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(site))
    record = tmp_path / "runs.txt"
    async with fresh_database(backend, tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "WARNING"\n'
            '[plugins]\nenabled = ["idemtest"]\n'
            f'[plugins.idemtest]\nrecord_file = "{record}"\ndelay = 0.5\n'
        )
        from platform_core.app import boot

        ctx = boot(load_config(config))
        await upgrade(ctx.db, ctx.state["migration_targets"])
        async with ctx.db.session() as session:
            user = await service.create_user(session, "payer", "member", None)
            _, token = await service.create_token(
                session,
                user,
                scopes=None,
                known_scopes=frozenset(ctx.permissions),
                role_scopes=ctx.state["role_scopes"]["member"],
                expires_in=None,
            )
        await ctx.db.dispose()
        async with (
            served(config) as base,
            httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as client,
        ):
            headers = {"Idempotency-Key": "pay-1"}
            responses = await asyncio.gather(
                *(
                    client.post("/api/idemtest/charges", json={"amount": 42}, headers=headers)
                    for _ in range(10)
                )
            )
            codes = sorted(r.status_code for r in responses)
            assert codes == [201] + [409] * 9, codes
            for r in responses:
                if r.status_code == 409:
                    assert r.json()["state"] == "running"
                    assert r.headers["retry-after"] == "1"
            replay = await client.post(
                "/api/idemtest/charges", json={"amount": 42}, headers=headers
            )
            winner = next(r for r in responses if r.status_code == 201)
            assert replay.status_code == 201
            assert replay.content == winner.content
            assert replay.headers["idempotent-replayed"] == "true"
    assert record.read_text().splitlines() == ["charge 42"]
