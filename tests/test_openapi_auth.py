"""Every non-public operation of every plugin answers 401 anonymously and 403 without its scope."""

from __future__ import annotations

import re

import pytest

from platform_core.manager import discover

METHODS = ("get", "post", "put", "patch", "delete")
# Outside /api: liveness, readiness and metrics are public by design (docs/operations.md).
EXPECTED_PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/api/core/auth/token"),
}


@pytest.fixture
def platform_plugins():
    """Every installed plugin: the check covers all of them, not a chosen few."""
    return sorted(discover())


def operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_installed_plugin_is_active(platform, platform_plugins):
    states = {n: platform.ctx.plugins.get(n).state.value for n in platform_plugins}
    assert set(states.values()) <= {"active"}, states


async def test_every_operation_requires_auth_unless_public(platform, anon_client):
    schema = platform.app.openapi()
    checked = 0
    for method, path, op in operations(schema):
        if op.get("x-public"):
            assert (method, path) in EXPECTED_PUBLIC or path.startswith("/api/"), (method, path)
            continue
        r = await anon_client.request(method, concrete(path))
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        checked += 1
    assert checked >= 8


async def test_every_operation_refuses_a_token_lacking_its_scope(platform):
    schema = platform.app.openapi()
    everything = set(platform.ctx.permissions)
    checked = 0
    for method, path, op in operations(schema):
        if op.get("x-public"):
            continue
        needed = set(op["x-scopes"])
        if not needed:  # authenticated only: the plugin decides who may call (pricing tenants)
            r = await platform.client().request(method, concrete(path))
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            continue
        assert needed <= everything, (path, needed - everything)
        client = await platform.client_for("admin", scopes=sorted(everything - needed))
        r = await client.request(method, concrete(path))
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        checked += 1
    assert checked >= 8


async def test_openapi_documents_security_of_each_operation(platform):
    for method, path, op in operations(platform.app.openapi()):
        if op.get("x-public"):
            assert op.get("security") == [], (method, path)
        else:
            assert {"bearer": []} in op["security"], (method, path)
