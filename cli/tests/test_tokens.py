"""``platformctl tokens``: the secret alone on stdout, scopes, expiry and revocation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from platform_core.app import boot
from platform_core.auth import service


def _resolve(secret: str) -> Any:
    """The principal behind ``secret`` on a platform booted from the test config."""
    ctx = boot()

    async def resolve() -> Any:
        try:
            async with ctx.db.session() as session:
                return await service.resolve_credential(
                    session, secret, secret_key=ctx.secret_key, role_scopes=ctx.state["role_scopes"]
                )
        finally:
            await ctx.db.dispose()

    return asyncio.run(resolve())


@pytest.fixture
def token(cli, admin) -> str:
    """A token of the admin, printed by ``tokens create``."""
    result = cli("tokens", "create", admin, "--name", "ci")
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_tokens_create_prints_only_the_secret_on_stdout(cli, admin):
    result = cli("tokens", "create", admin, "--expires-in", "30d", "--name", "ci")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("plt_")
    assert "created token" in result.stderr
    assert result.stdout.strip() not in result.stderr


def test_tokens_create_secret_authenticates_as_the_user(cli, token, admin):
    principal = _resolve(token)
    assert principal is not None
    assert principal.username == admin
    assert "core:admin" in principal.scopes


def test_tokens_create_with_scope_limits_the_token(cli, admin):
    secret = cli("tokens", "create", admin, "--scope", "core:read").stdout.strip()
    assert _resolve(secret).scopes == frozenset({"core:read"})


def test_tokens_create_bad_expires_in_fails_with_one_line(cli, admin):
    result = cli("tokens", "create", admin, "--expires-in", "3x")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: expires_in: invalid duration '3x'")
    assert result.stderr.count("\n") == 1


def test_tokens_create_unknown_scope_fails(cli, admin):
    result = cli("tokens", "create", admin, "--scope", "nope:read")
    assert result.exit_code == 1
    assert "unknown scope 'nope:read'" in result.stderr


def test_tokens_create_for_unknown_user_fails(cli, migrated):
    result = cli("tokens", "create", "nobody")
    assert result.exit_code == 1
    assert result.stderr == "error: user 'nobody' not found\n"


def test_tokens_revoke_stops_the_token_authenticating(cli, token):
    token_id = json.loads(cli("tokens", "list", "--json").stdout)[0]["id"]
    result = cli("tokens", "revoke", str(token_id))
    assert result.exit_code == 0
    assert _resolve(token) is None
    listed = json.loads(cli("tokens", "list", "--json").stdout)
    assert [t["state"] for t in listed] == ["revoked"]


def test_tokens_revoke_unknown_id_fails(cli, migrated):
    result = cli("tokens", "revoke", "999")
    assert result.exit_code == 1
    assert result.stderr == "error: token 999 not found\n"


def test_tokens_list_filters_by_user(cli, token, admin):
    cli("users", "create", "mia", "--role", "member", "--no-password")
    cli("tokens", "create", "mia")
    mine = json.loads(cli("tokens", "list", "--user", admin, "--json").stdout)
    everyone = json.loads(cli("tokens", "list", "--json").stdout)
    assert [t["user"] for t in mine] == [admin]
    assert sorted(t["user"] for t in everyone) == sorted([admin, "mia"])
