"""Managing users through the API: role, deactivation, deletion, password reset, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from platform_core.auth import service
from platform_core.auth.models import ApiToken, User
from platform_core.events.models import EventRecord

PASSWORD = "correct horse battery"


async def _admin(platform, name="root"):
    user = await platform.user("admin", name)
    return user, platform.client(await platform.token(user=user))


async def _audit(client, **params):
    r = await client.get("/api/core/audit/users", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_role_change_narrows_the_users_tokens_at_once(platform):
    _, admin = await _admin(platform)
    bob = await platform.user("operator", "bob")
    bob_client = platform.client(await platform.token(user=bob))
    assert (await bob_client.get("/api/core/me")).json()["role"] == "operator"
    r = await admin.patch(f"/api/core/users/{bob.id}", json={"role": "member"})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "member"
    assert (await bob_client.get("/api/core/me")).json()["role"] == "member"
    [entry] = await _audit(admin, user_id=bob.id)
    assert entry["action"] == "role_changed"
    assert entry["actor"] == "root"
    assert entry["detail"] == {"from": "operator", "to": "member"}


async def test_deactivation_revokes_tokens_and_refuses_login_and_jwts(platform, anon_client):
    _, admin = await _admin(platform)
    bob = await platform.user("member", "bob", PASSWORD)
    api_token = await platform.token(user=bob)
    login = await anon_client.post(
        "/api/core/auth/token", data={"username": "bob", "password": PASSWORD}
    )
    jwt_client = platform.client(login.json()["access_token"])
    token_client = platform.client(api_token)
    assert (await token_client.get("/api/core/me")).status_code == 200  # now cached
    assert (await jwt_client.get("/api/core/me")).status_code == 200

    r = await admin.patch(f"/api/core/users/{bob.id}", json={"is_active": False})
    assert r.status_code == 200, r.text
    assert r.json()["is_active"] is False
    assert (await token_client.get("/api/core/me")).status_code == 401
    assert (await jwt_client.get("/api/core/me")).status_code == 401
    again = await anon_client.post(
        "/api/core/auth/token", data={"username": "bob", "password": PASSWORD}
    )
    assert again.status_code == 401
    async with platform.ctx.db.session() as s:
        tokens = (await s.scalars(select(ApiToken).where(ApiToken.user_id == bob.id))).all()
    assert tokens and all(t.revoked_at is not None for t in tokens)
    [entry] = await _audit(admin, user_id=bob.id)
    assert (entry["action"], entry["detail"]) == ("deactivated", {"tokens_revoked": 1})


async def test_reactivation_keeps_revoked_tokens_revoked(platform):
    _, admin = await _admin(platform)
    bob = await platform.user("member", "bob")
    token_client = platform.client(await platform.token(user=bob))
    await admin.patch(f"/api/core/users/{bob.id}", json={"is_active": False})
    r = await admin.patch(f"/api/core/users/{bob.id}", json={"is_active": True})
    assert r.json()["is_active"] is True
    assert (await token_client.get("/api/core/me")).status_code == 401
    actions = [e["action"] for e in await _audit(admin, user_id=bob.id)]
    assert actions == ["activated", "deactivated"]


@pytest.mark.parametrize(
    "change", [{"role": "operator"}, {"is_active": False}], ids=["demote", "deactivate"]
)
async def test_last_active_admin_cannot_be_demoted_or_deactivated(platform, change):
    root, admin = await _admin(platform)
    r = await admin.patch(f"/api/core/users/{root.id}", json=change)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "last active admin" in r.json()["detail"]
    async with platform.ctx.db.session() as s:
        user = await service.get_user(s, root.id)
        assert (user.role, user.is_active) == ("admin", True)
    assert await _audit(admin, user_id=root.id) == []


async def test_last_active_admin_cannot_be_deleted(platform):
    root, admin = await _admin(platform)
    r = await admin.delete(f"/api/core/users/{root.id}")
    assert r.status_code == 409
    assert "last active admin" in r.json()["detail"]


async def test_an_inactive_admin_does_not_count_as_another_admin(platform):
    root, admin = await _admin(platform)
    other = await platform.user("admin", "other")
    assert (await admin.patch(f"/api/core/users/{other.id}", json={"is_active": False})).is_success
    r = await admin.patch(f"/api/core/users/{root.id}", json={"role": "member"})
    assert r.status_code == 409


async def test_an_admin_may_step_down_when_another_admin_remains(platform):
    root, admin = await _admin(platform)
    await platform.user("admin", "other")
    r = await admin.patch(f"/api/core/users/{root.id}", json={"role": "operator"})
    assert r.status_code == 200
    # root's token now holds an operator's scopes: no more user management
    assert (await admin.get("/api/core/users")).status_code == 403


async def test_delete_removes_the_user_and_tokens_keeps_the_record_and_publishes(platform):
    _, admin = await _admin(platform)
    bob = await platform.user("member", "bob")
    token_client = platform.client(await platform.token(user=bob))
    assert (await token_client.get("/api/core/me")).status_code == 200
    r = await admin.delete(f"/api/core/users/{bob.id}")
    assert r.status_code == 204
    assert (await admin.get(f"/api/core/users/{bob.id}")).status_code == 404
    assert (await token_client.get("/api/core/me")).status_code == 401
    async with platform.ctx.db.session() as s:
        assert await s.scalar(select(User).where(User.id == bob.id)) is None
        assert (await s.scalars(select(ApiToken).where(ApiToken.user_id == bob.id))).all() == []
        event = await s.scalar(select(EventRecord).where(EventRecord.name == "core.user.deleted"))
    assert event is not None and event.payload["user_id"] == bob.id and event.actor == "root"
    [entry] = await _audit(admin, user_id=bob.id)
    assert (entry["action"], entry["username"]) == ("deleted", "bob")


async def test_password_reset_sets_the_given_password_and_never_returns_one(platform, anon_client):
    _, admin = await _admin(platform)
    bob = await platform.user("member", "bob", PASSWORD)
    r = await admin.post(
        f"/api/core/users/{bob.id}/password", json={"password": "a new passphrase"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": bob.id, "username": "bob", "generated_password": None}
    assert PASSWORD not in r.text
    old = await anon_client.post(
        "/api/core/auth/token", data={"username": "bob", "password": PASSWORD}
    )
    assert old.status_code == 401
    new = await anon_client.post(
        "/api/core/auth/token", data={"username": "bob", "password": "a new passphrase"}
    )
    assert new.status_code == 200
    [entry] = await _audit(admin, user_id=bob.id)
    assert entry["action"] == "password_reset"
    assert "a new passphrase" not in str(entry)


async def test_password_reset_generates_one_when_none_is_given(platform, anon_client):
    _, admin = await _admin(platform)
    bob = await platform.user("member", "bob", PASSWORD)
    token_client = platform.client(await platform.token(user=bob))
    r = await admin.post(f"/api/core/users/{bob.id}/password", json={"revoke_tokens": True})
    generated = r.json()["generated_password"]
    assert len(generated) >= 20
    login = await anon_client.post(
        "/api/core/auth/token", data={"username": "bob", "password": generated}
    )
    assert login.status_code == 200
    assert (await token_client.get("/api/core/me")).status_code == 401
    [entry] = await _audit(admin, user_id=bob.id)
    assert entry["detail"] == {"generated": True, "tokens_revoked": 1}


async def test_user_creation_is_recorded(platform):
    _, admin = await _admin(platform)
    r = await admin.post("/api/core/users", json={"username": "carol", "role": "operator"})
    [entry] = await _audit(admin, user_id=r.json()["id"])
    assert (entry["action"], entry["detail"]) == (
        "created",
        {"role": "operator", "password": False},
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/api/core/users/{id}", {"role": "admin"}),
        ("delete", "/api/core/users/{id}", None),
        ("post", "/api/core/users/{id}/password", {"password": "a new passphrase"}),
        ("get", "/api/core/audit/users", None),
    ],
)
@pytest.mark.parametrize("role", ["operator", "member"])
async def test_user_management_is_for_admins_only(platform, method, path, body, role):
    victim = await platform.user("member", "victim")
    client = await platform.client_for(role)
    kwargs = {"json": body} if body is not None else {}
    r = await client.request(method.upper(), path.format(id=victim.id), **kwargs)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    async with platform.ctx.db.session() as s:
        user = await service.get_user(s, victim.id)
    assert (user.role, user.is_active) == ("member", True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "wizard"}, "role"),
        ({"is_active": "sometimes"}, "is_active"),
        ({"role": "member", "colour": "red"}, "colour"),
        ({}, "body"),
    ],
)
async def test_bad_user_changes_are_422_naming_the_field(platform, body, field):
    _, admin = await _admin(platform)
    bob = await platform.user("member", "bob")
    r = await admin.patch(f"/api/core/users/{bob.id}", json=body)
    assert r.status_code == 422, r.text
    assert field in {e["field"].split(".")[-1] for e in r.json()["errors"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"password": "short"}, "password"), ({"password": "bad\nline  x"}, "password")],
)
async def test_bad_password_reset_is_422_naming_the_field(platform, body, field):
    _, admin = await _admin(platform)
    bob = await platform.user("member", "bob")
    r = await admin.post(f"/api/core/users/{bob.id}/password", json=body)
    assert r.status_code == 422
    assert [e["field"].split(".")[-1] for e in r.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("method", "body"),
    [("patch", {"role": "member"}), ("delete", None), ("post", {})],
)
async def test_changing_an_unknown_user_is_404(platform, method, body):
    _, admin = await _admin(platform)
    path = "/api/core/users/99999" + ("/password" if method == "post" else "")
    kwargs = {"json": body} if body is not None else {}
    r = await admin.request(method.upper(), path, **kwargs)
    assert r.status_code == 404
    assert "user 99999 not found" in r.json()["detail"]


async def test_audit_pages_newest_first(platform):
    _, admin = await _admin(platform)
    bob = await platform.user("member", "bob")
    for role in ("operator", "member", "operator"):
        await admin.patch(f"/api/core/users/{bob.id}", json={"role": role})
    first = (await admin.get("/api/core/audit/users", params={"limit": 2})).json()
    assert [e["detail"]["to"] for e in first["items"]] == ["operator", "member"]
    rest = await admin.get(
        "/api/core/audit/users", params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert [e["detail"]["to"] for e in rest.json()["items"]] == ["operator"]


async def test_a_deleted_users_data_is_cleaned_by_plugins_through_the_event(platform_factory):
    platform = await platform_factory(enabled=["example"])
    admin = platform.client(await platform.token("admin"))
    bob = await platform.user("member", "bob")
    bob_client = platform.client(await platform.token(user=bob))
    created = await bob_client.post("/api/example/notes", json={"title": "t", "body": "b"})
    assert created.status_code == 201, created.text
    assert (await admin.delete(f"/api/core/users/{bob.id}")).status_code == 204
    await platform.deliver_events()
    async with platform.ctx.db.session() as s:
        from platform_example.models import Note

        assert (await s.scalars(select(Note).where(Note.owner_id == bob.id))).all() == []
