"""``platformctl users``: create accounts and list them."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from platformctl.errors import CliError
from platformctl.output import print_rows, say

app = typer.Typer(help="Create and list users.", no_args_is_help=True)

JSON_OPTION = typer.Option("--json", help="Print JSON instead of a table.")


def read_password(password_stdin: bool, no_password: bool) -> str | None:
    """The new account's password: from stdin, a double TTY prompt, or none when asked."""
    if password_stdin and no_password:
        raise CliError("--password-stdin and --no-password exclude each other")
    if no_password:
        return None
    if password_stdin:
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
        if not password:
            raise CliError("--password-stdin: stdin held no password")
        return password
    if not sys.stdin.isatty():
        raise CliError(
            "no password given: pass --password-stdin (and pipe the password in), "
            "or --no-password for a token-only account"
        )
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option("--role", "-r", help="admin, operator or member.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="No password: the account uses API tokens.")
    ] = False,
) -> None:
    """Create a user; prompts twice for the password on a terminal."""
    from platform_core.auth import service
    from platformctl.runtime import boot_platform, run

    password = read_password(password_stdin, no_password)
    ctx = boot_platform()

    async def create_user() -> tuple[int, str]:
        async with ctx.db.session() as session:
            user = await service.create_user(session, username, role, password)
            return user.id, user.role

    user_id, user_role = run(ctx, create_user())
    say(f"created user {username!r} (id {user_id}, role {user_role})")


@app.command("list")
def list_users(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """List every user with role, state and creation time."""
    from platform_core.auth import service
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()

    async def rows() -> list[tuple[object, ...]]:
        async with ctx.db.session() as session:
            users = await service.list_users(session)
            return [
                (u.id, u.username, u.role, u.is_active, u.password_hash is not None, u.created_at)
                for u in users
            ]

    print_rows(
        ["id", "username", "role", "active", "password", "created"],
        run(ctx, rows()),
        as_json=as_json,
    )
