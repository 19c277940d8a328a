"""``/docs`` and ``/redoc`` load their assets from the platform itself, never another host."""

from __future__ import annotations

import re

import pytest

PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", PAGES)
async def test_docs_page_references_no_external_host(anon_client, page):
    response = await anon_client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "://" not in html.replace("window.location.origin", "")
    assert not re.search(r"""["'(]\s*//""", html)  # no protocol-relative URL either


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_assets_are_served_by_the_platform(anon_client, page):
    html = (await anon_client.get(page)).text
    assets = ASSET.findall(html)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        served = await anon_client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset


async def test_swagger_ui_points_at_the_platforms_own_openapi_document(anon_client):
    html = (await anon_client.get("/docs")).text
    assert "url: '/openapi.json'" in html
    assert '"validatorUrl": null' in html
    assert (await anon_client.get("/openapi.json")).status_code == 200


async def test_missing_docs_asset_is_a_problem_404(anon_client):
    response = await anon_client.get("/docs/assets/nothing-here.js")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
