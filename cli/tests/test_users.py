"""``platformctl users``: creating accounts (password from stdin) and listing them."""

from __future__ import annotations

import asyncio
import io
import json
import sys

import typer

from platform_core.auth import service
from platform_core.db import Database
from platformctl import users_cmd

PASSWORD = "correct horse battery"


async def _authenticate(database_url: str, username: str, password: str) -> bool:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return await service.authenticate(session, username, password) is not None
    finally:
        await db.dispose()


def test_users_create_reads_the_password_from_stdin(cli, migrated, database_url):
    result = cli(
        "users", "create", "alice", "--role", "admin", "--password-stdin", input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "created user 'alice'" in result.stdout
    assert asyncio.run(_authenticate(database_url, "alice", PASSWORD))
    assert not asyncio.run(_authenticate(database_url, "alice", PASSWORD + "\n"))


def test_users_create_duplicate_fails_with_one_line(cli, admin):
    result = cli("users", "create", admin, "--role", "member", "--no-password")
    assert result.exit_code == 1
    assert result.stderr == f"error: user {admin!r} already exists\n"


def test_users_create_without_tty_or_password_stdin_fails(cli, migrated):
    result = cli("users", "create", "bob", "--role", "member")
    assert result.exit_code == 1
    assert "--password-stdin" in result.stderr
    assert "bob" not in cli("users", "list").stdout


def test_users_create_with_empty_stdin_fails(cli, migrated):
    result = cli("users", "create", "bob", "--role", "member", "--password-stdin", input="")
    assert result.exit_code == 1
    assert "stdin held no password" in result.stderr


def test_users_create_unknown_role_fails_naming_the_roles(cli, migrated):
    result = cli("users", "create", "bob", "--role", "wizard", "--no-password")
    assert result.exit_code == 1
    assert result.stderr == "error: role: must be one of admin, operator, member\n"


def test_users_create_before_migrations_hints_db_upgrade(cli):
    result = cli("users", "create", "bob", "--role", "member", "--no-password")
    assert result.exit_code == 1
    assert "platformctl db upgrade" in result.stderr
    assert result.stderr.count("\n") == 1


def test_users_list_shows_each_user_with_role(cli, admin):
    cli("users", "create", "mia", "--role", "member", "--no-password")
    result = cli("users", "list", "--json")
    assert result.exit_code == 0
    users = {u["username"]: u for u in json.loads(result.stdout)}
    assert users[admin]["role"] == "admin"
    assert users["mia"]["role"] == "member"
    assert users["mia"]["password"] is False


def test_users_list_table_is_readable_without_a_tty(cli, admin):
    result = cli("users", "list")
    assert result.exit_code == 0
    header, *rows = [line for line in result.stdout.splitlines() if line.strip()]
    assert header.split()[:3] == ["id", "username", "role"]
    assert any(row.split()[1:3] == [admin, "admin"] for row in rows)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_users_create_on_a_terminal_prompts_twice_hiding_input(monkeypatch):
    asked = []
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(typer, "prompt", lambda text, **kw: asked.append(kw) or PASSWORD)
    assert users_cmd.read_password(password_stdin=False, no_password=False) == PASSWORD
    assert asked == [{"hide_input": True, "confirmation_prompt": True}]
