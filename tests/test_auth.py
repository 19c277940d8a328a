"""Users, passwords, API tokens, JWT login and login rate limiting."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from sqlalchemy import select

from platform_core.auth import service
from platform_core.auth.models import ApiToken, User
from platform_core.auth.tokens import encode_jwt, token_digest

PASSWORD = "correct horse battery"


async def _login(client, username, password, scope=None):
    data = {"username": username, "password": password}
    if scope is not None:
        data["scope"] = scope
    return await client.post("/api/core/auth/token", data=data)


async def test_password_is_stored_as_argon2_hash(platform):
    user = await platform.user("member", "alice", PASSWORD)
    async with platform.ctx.db.session() as s:
        stored = (await s.scalars(select(User).where(User.id == user.id))).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


async def test_login_issues_short_lived_jwt_that_authenticates(platform, anon_client):
    await platform.user("operator", "olga", PASSWORD)
    r = await _login(anon_client, "olga", PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == platform.ctx.config.core.auth.jwt_ttl_seconds
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    me = await anon_client.get(
        "/api/core/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["username"] == "olga"


async def test_login_with_narrower_scope_limits_the_jwt(platform, anon_client):
    await platform.user("admin", "ada", PASSWORD)
    r = await _login(anon_client, "ada", PASSWORD, scope="core:read")
    assert r.json()["scope"] == "core:read"
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await anon_client.get("/api/core/me", headers=headers)).status_code == 200
    assert (await anon_client.get("/api/core/users", headers=headers)).status_code == 403


async def test_login_failure_does_not_reveal_whether_user_exists(platform, anon_client):
    await platform.user("member", "bob", PASSWORD)
    wrong_password = await _login(anon_client, "bob", "wrong password!")
    no_such_user = await _login(anon_client, "nobody-here", "wrong password!")
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json()["detail"] == no_such_user.json()["detail"]
    assert wrong_password.headers["content-type"] == "application/problem+json"


async def test_login_rate_limited_per_user(platform_factory):
    platform = await platform_factory(
        core={"auth": {"login_attempts": 3, "login_window_seconds": 60}}
    )
    await platform.user("member", "carol", PASSWORD)
    client = platform.client()
    for _ in range(3):
        assert (await _login(client, "carol", "nope nope")).status_code == 401
    limited = await _login(client, "carol", PASSWORD)  # even the right password waits
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert limited.json()["status"] == 429


async def test_login_rate_limited_per_address_across_user_names(platform_factory):
    platform = await platform_factory(
        core={"auth": {"login_attempts": 3, "login_window_seconds": 60}}
    )
    client = platform.client()
    for i in range(3):
        assert (await _login(client, f"ghost{i}", "nope nope")).status_code == 401
    assert (await _login(client, "someone-else", "nope nope")).status_code == 429


async def test_login_with_missing_form_field_names_it(anon_client):
    r = await anon_client.post("/api/core/auth/token", data={"username": "x"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["password"]


async def test_expired_jwt_is_refused(platform, anon_client):
    user = await platform.user("member")
    token, _ = encode_jwt(platform.ctx.secret_key, user.id, ["core:read"], timedelta(seconds=-5))
    r = await anon_client.get("/api/core/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


async def test_jwt_signed_with_other_key_is_refused(platform, anon_client):
    user = await platform.user("admin")
    token, _ = encode_jwt("another-key-" + "y" * 32, user.id, ["core:read"], timedelta(minutes=5))
    r = await anon_client.get("/api/core/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


async def test_api_token_shown_once_and_stored_as_digest(platform, member_client):
    r = await member_client.post("/api/core/tokens", json={"name": "ci", "scopes": ["core:read"]})
    assert r.status_code == 201, r.text
    secret = r.json()["token"]
    assert secret.startswith("plt_")
    async with platform.ctx.db.session() as s:
        rows = (await s.scalars(select(ApiToken))).all()
    assert token_digest(secret) in {t.digest for t in rows}
    assert all(secret not in (t.digest, t.prefix) for t in rows)
    listing = (await member_client.get("/api/core/tokens")).json()
    assert all("token" not in t for t in listing)
    assert any(t["prefix"] == secret[:10] for t in listing)


async def test_api_token_scopes_are_enforced(platform, anon_client):
    token = await platform.token("admin", scopes=["core:read"])
    headers = {"Authorization": f"Bearer {token}"}
    assert (await anon_client.get("/api/core/me", headers=headers)).status_code == 200
    r = await anon_client.get("/api/core/users", headers=headers)
    assert r.status_code == 403
    assert "core:admin" in r.json()["detail"]


async def test_token_cannot_exceed_its_creators_scopes(member_client):
    r = await member_client.post("/api/core/tokens", json={"scopes": ["core:admin"]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "scopes"


async def test_token_with_unknown_scope_is_refused(member_client):
    r = await member_client.post("/api/core/tokens", json={"scopes": ["nope:read"]})
    assert r.status_code == 422
    assert "unknown scope 'nope:read'" in r.json()["detail"]


async def test_revoked_token_stops_working(platform, anon_client):
    client = await platform.client_for("member")
    created = (await client.post("/api/core/tokens", json={"name": "temp"})).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert (await anon_client.get("/api/core/me", headers=headers)).status_code == 200
    assert (await client.delete(f"/api/core/tokens/{created['id']}")).status_code == 204
    assert (await anon_client.get("/api/core/me", headers=headers)).status_code == 401


async def test_member_cannot_revoke_someone_elses_token(platform):
    alice = await platform.client_for("member")
    bob = await platform.client_for("member")
    created = (await alice.post("/api/core/tokens", json={})).json()
    assert (await bob.delete(f"/api/core/tokens/{created['id']}")).status_code == 404


async def test_expired_api_token_is_refused(platform, anon_client):
    user = await platform.user("member")
    async with platform.ctx.db.session() as s:
        user = await service.get_user(s, user.id)
        token, secret = await service.create_token(
            s,
            user,
            scopes=None,
            known_scopes=frozenset(platform.ctx.permissions),
            role_scopes=platform.ctx.state["role_scopes"]["member"],
            expires_in=timedelta(seconds=1),
        )
        token.expires_at = token.created_at - timedelta(seconds=1)
    r = await anon_client.get("/api/core/me", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 401


async def test_token_expiry_duration_is_validated(member_client):
    r = await member_client.post("/api/core/tokens", json={"expires_in": "soon"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "expires_in"


async def test_demoted_user_tokens_lose_scopes(platform_factory):
    platform = await platform_factory(core={"auth": {"cache_seconds": 0}})
    anon_client = platform.client()
    user = await platform.user("admin")
    token = await platform.token(user=user)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await anon_client.get("/api/core/users", headers=headers)).status_code == 200
    async with platform.ctx.db.session() as s:
        (await service.get_user(s, user.id)).role = "member"
    assert (await anon_client.get("/api/core/users", headers=headers)).status_code == 403


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer plt_nope", "Bearer not.a.jwt"])
async def test_bad_credentials_answer_401_problem(anon_client, header):
    r = await anon_client.get("/api/core/me", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["title"] == "Unauthorized"


async def test_admin_creates_user_and_duplicate_conflicts(admin_client):
    body = {"username": "newbie", "role": "member", "password": PASSWORD}
    r = await admin_client.post("/api/core/users", json=body)
    assert r.status_code == 201
    assert "password" not in r.text and "hash" not in r.text
    dup = await admin_client.post("/api/core/users", json=body)
    assert dup.status_code == 409
    assert "newbie" in dup.json()["detail"]


async def test_user_with_unknown_role_is_refused(admin_client):
    r = await admin_client.post("/api/core/users", json={"username": "x", "role": "root"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "role"


async def test_operator_cannot_manage_users(operator_client):
    r = await operator_client.post("/api/core/users", json={"username": "x", "role": "admin"})
    assert r.status_code == 403


async def test_credential_cache_holds_out_of_process_changes_until_it_expires(platform):
    user = await platform.user("admin")
    token = await platform.token(user=user)
    client = platform.client(token)
    assert (await client.get("/api/core/users")).status_code == 200
    async with platform.ctx.db.session() as s:  # as another process (the CLI) would
        await service.revoke_token(s, (await service.list_tokens(s, user.id))[0].id)
    assert (await client.get("/api/core/users")).status_code == 200  # cached for a few seconds
    platform.ctx.state["credential_cache"].clear()  # what expiry does after cache_seconds
    assert (await client.get("/api/core/users")).status_code == 401
