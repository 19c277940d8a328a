"""``/readyz`` tells the truth: missing tables, isolated plugins, and 503 for their routes."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from platform_core import hookimpl


class StrictSettings(BaseModel):
    """A settings model the test's table does not satisfy."""

    limit: int


class Broken:
    """A plugin whose settings are invalid: isolated while loading, routes never mounted."""

    @hookimpl
    def platform_settings(self):
        return StrictSettings

    @hookimpl
    def platform_routes(self):
        router = APIRouter()

        @router.get("/things")
        async def things() -> list[str]:
            return []

        return [router]


BROKEN_SETTINGS = {"broken": {"limit": "many"}}


async def test_readyz_lists_isolated_plugins_and_stays_ready_by_default(platform_factory):
    platform = await platform_factory(extra_plugins={"broken": Broken()}, settings=BROKEN_SETTINGS)
    r = await platform.client().get("/readyz")
    assert r.status_code == 200
    [failed] = r.json()["plugins"]
    assert failed["name"] == "broken" and failed["state"] == "isolated"
    assert "key 'limit'" in failed["reason"]


async def test_readyz_is_not_ready_with_isolated_plugins_when_configured(platform_factory):
    platform = await platform_factory(
        extra_plugins={"broken": Broken()},
        settings=BROKEN_SETTINGS,
        core={"ready_with_isolated_plugins": False},
    )
    r = await platform.client().get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
    assert [p["name"] for p in r.json()["plugins"]] == ["broken"]


async def test_readyz_with_the_setting_off_is_ready_when_every_plugin_serves(platform_factory):
    platform = await platform_factory(core={"ready_with_isolated_plugins": False})
    r = await platform.client().get("/readyz")
    assert r.status_code == 200
    assert r.json()["plugins"] == []


async def test_readyz_is_not_ready_when_the_core_tables_are_gone(platform):
    await platform.migrate("core", "base")
    r = await platform.client().get("/readyz")
    assert r.status_code == 503
    [check] = [c for c in r.json()["checks"] if c["name"] == "core.database"]
    assert "missing tables" in check["error"] and "core_api_tokens" in check["error"]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", ["/api/broken/things", "/api/broken", "/api/broken/x/y"])
async def test_routes_of_a_plugin_that_failed_to_load_answer_503_naming_it(
    platform_factory, method, path
):
    platform = await platform_factory(extra_plugins={"broken": Broken()}, settings=BROKEN_SETTINGS)
    r = await platform.client().request(method, path)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "/problems/service-unavailable"
    assert body["plugin"] == "broken"
    assert body["detail"].startswith("plugin 'broken' is isolated: invalid settings")
    assert "/api/broken" not in str(platform.app.openapi()["paths"])


async def test_routes_of_a_missing_plugin_answer_503(platform_factory, tmp_path):
    from platform_core.app import boot, create_app
    from platform_core.config import Config, CoreSettings

    config = Config(
        path=tmp_path / "plugins.toml",
        core=CoreSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db", secret_key="k" * 32),
        enabled=["not_installed_anywhere"],
    )
    ctx = boot(config)
    app = create_app(ctx)
    import httpx

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        r = await client.get("/api/not_installed_anywhere/items")
    await ctx.db.dispose()
    assert r.status_code == 503
    assert "enabled in" in r.json()["detail"] and "not installed" in r.json()["detail"]


async def test_other_unknown_api_paths_stay_404(platform):
    r = await platform.client().get("/api/nothing_here/x")
    assert r.status_code == 404


async def test_docs_requests_are_counted_under_their_route_not_unmatched(platform):
    client = platform.client()
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/no/such/page")).status_code == 404
    metrics = (await client.get("/metrics")).text
    assert 'route="/docs",status="200"' in metrics
    assert 'route="(unmatched)",status="404"' in metrics
    assert 'route="(unmatched)",status="200"' not in metrics


async def test_an_unavailable_plugins_paths_share_one_metric_label(platform_factory):
    platform = await platform_factory(extra_plugins={"broken": Broken()}, settings=BROKEN_SETTINGS)
    client = platform.client()
    for path in ("/api/broken/a/b/c", "/api/broken/d/e"):
        assert (await client.get(path)).status_code == 503
    metrics = (await client.get("/metrics")).text
    assert 'route="/api/broken/{rest}",status="503"} 2.0' in metrics
