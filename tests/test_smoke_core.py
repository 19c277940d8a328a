"""Smoke: the bare core boots, migrates and answers authenticated requests."""


async def test_core_me_requires_auth_and_answers_with_token(platform, anon_client):
    r = await anon_client.get("/api/core/me")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    client = await platform.client_for("member")
    r = await client.get("/api/core/me")
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "member"
    assert "core:admin" not in r.json()["scopes"]
