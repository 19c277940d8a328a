"""``platformctl users``: set-role, deactivate, activate, delete, reset-password, audit."""

from __future__ import annotations

import json

from sqlalchemy import select

from platform_core.auth import service
from platform_core.auth.models import ApiToken

PASSWORD = "correct horse battery"


async def _state(platform, user_id):
    async with platform.ctx.db.session() as s:
        user = await service.get_user(s, user_id)
        return user.role, user.is_active


async def test_set_role_changes_the_role_and_is_recorded(platform, run_cli):
    await platform.user("admin", "root")
    bob = await platform.user("operator", "bob")
    result = await run_cli("users", "set-role", "bob", "member")
    assert result.exit_code == 0, result.output
    assert "bob: role operator -> member" in result.stdout
    assert await _state(platform, bob.id) == ("member", True)
    audit = json.loads((await run_cli("users", "audit", "--user", "bob", "--json")).stdout)
    assert [(e["action"], e["detail"]) for e in audit] == [
        ("role_changed", {"from": "operator", "to": "member"})
    ]
    assert audit[0]["actor"].startswith("platformctl:")


async def test_set_role_refuses_to_demote_the_last_admin(platform, run_cli):
    root = await platform.user("admin", "root")
    result = await run_cli("users", "set-role", "root", "operator")
    assert result.exit_code == 1
    assert "last active admin" in result.stderr
    assert result.stderr.count("\n") == 1
    assert await _state(platform, root.id) == ("admin", True)


async def test_set_role_unknown_role_names_the_roles(platform, run_cli):
    await platform.user("member", "bob")
    result = await run_cli("users", "set-role", "bob", "wizard")
    assert result.exit_code == 1
    assert result.stderr == "error: role: must be one of admin, operator, member\n"


async def test_deactivate_revokes_tokens_and_the_api_refuses_them(platform, run_cli):
    await platform.user("admin", "root")
    bob = await platform.user("member", "bob")
    client = platform.client(await platform.token(user=bob))
    assert (await client.get("/api/core/me")).status_code == 200
    result = await run_cli("users", "deactivate", "bob")
    assert result.exit_code == 0, result.output
    assert "deactivated bob (revoked 1 API token(s))" in result.stdout
    platform.ctx.forget_credentials()  # what another process's cache does within cache_seconds
    assert (await client.get("/api/core/me")).status_code == 401
    async with platform.ctx.db.session() as s:
        tokens = (await s.scalars(select(ApiToken).where(ApiToken.user_id == bob.id))).all()
    assert all(t.revoked_at is not None for t in tokens)
    assert "already inactive" in (await run_cli("users", "deactivate", "bob")).stdout
    assert (await run_cli("users", "activate", "bob")).exit_code == 0
    assert await _state(platform, bob.id) == ("member", True)


async def test_deactivate_refuses_the_last_admin(platform, run_cli):
    root = await platform.user("admin", "root")
    result = await run_cli("users", "deactivate", "root")
    assert result.exit_code == 1
    assert "last active admin" in result.stderr
    assert await _state(platform, root.id) == ("admin", True)


async def test_delete_off_a_terminal_needs_yes(platform, run_cli):
    await platform.user("admin", "root")
    bob = await platform.user("member", "bob")
    result = await run_cli("users", "delete", "bob")
    assert result.exit_code == 1
    assert "pass --yes" in result.stderr
    assert await _state(platform, bob.id) == ("member", True)
    result = await run_cli("users", "delete", "bob", "--yes")
    assert result.exit_code == 0, result.output
    listed = json.loads((await run_cli("users", "list", "--json")).stdout)
    assert [u["username"] for u in listed] == ["root"]


async def test_delete_refuses_the_last_admin(platform, run_cli):
    await platform.user("admin", "root")
    result = await run_cli("users", "delete", "root", "--yes")
    assert result.exit_code == 1
    assert "last active admin" in result.stderr


async def test_unknown_user_is_one_line_error(platform, run_cli):
    result = await run_cli("users", "set-role", "nobody", "member")
    assert result.exit_code == 1
    assert result.stderr == "error: user 'nobody' not found\n"


async def test_reset_password_from_stdin(platform, run_cli, anon_client):
    bob = await platform.user("member", "bob", PASSWORD)
    result = await run_cli(
        "users", "reset-password", "bob", "--password-stdin", input="a new passphrase\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    async with platform.ctx.db.session() as s:
        assert await service.authenticate(s, "bob", "a new passphrase") is not None
        assert await service.authenticate(s, "bob", PASSWORD) is None
    audit = json.loads((await run_cli("users", "audit", "--json")).stdout)
    assert audit[0]["action"] == "password_reset" and audit[0]["user"] == bob.username


async def test_reset_password_generate_prints_only_the_new_password(platform, run_cli):
    await platform.user("member", "bob", PASSWORD)
    result = await run_cli("users", "reset-password", "bob", "--generate")
    assert result.exit_code == 0, result.output
    generated = result.stdout.strip()
    assert len(generated) >= 20 and "\n" not in generated
    async with platform.ctx.db.session() as s:
        assert await service.authenticate(s, "bob", generated) is not None


async def test_reset_password_too_short_is_refused(platform, run_cli):
    await platform.user("member", "bob", PASSWORD)
    result = await run_cli("users", "reset-password", "bob", "--password-stdin", input="short\n")
    assert result.exit_code == 1
    assert "password: must be at least" in result.stderr


async def test_reset_password_without_tty_or_option_fails(platform, run_cli):
    await platform.user("member", "bob", PASSWORD)
    result = await run_cli("users", "reset-password", "bob")
    assert result.exit_code == 1
    assert "--password-stdin" in result.stderr and "--generate" in result.stderr
    assert "--no-password" not in result.stderr
