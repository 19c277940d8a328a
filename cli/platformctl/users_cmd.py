"""``platformctl users``: create, list, change, deactivate, delete users; reset passwords.

Every change is recorded (``platformctl users audit``) with the actor ``platformctl:<os
user>``. Changes made here reach a running server's credential cache within
``[core.auth] cache_seconds`` (or at once, where the server shares revocations).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from platformctl.errors import CliError
from platformctl.output import note, print_rows, say

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from platform_core.auth.users import Actor

app = typer.Typer(
    help="Create, list, change, deactivate and delete users; reset passwords.",
    no_args_is_help=True,
)

JSON_OPTION = typer.Option("--json", help="Print JSON instead of a table.")
USER_ARGUMENT = typer.Argument(help="The user's name (or id).")
T = TypeVar("T")


def cli_actor() -> Actor:
    """The actor recorded for changes made with platformctl: ``platformctl:<os user>``."""
    from platform_core.auth.users import Actor

    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with a bare uid)
        who = "unknown"
    return Actor(f"platformctl:{who}")


def in_session(work: Callable[[AsyncSession, Actor], Awaitable[T]], *, forget: bool = False) -> T:
    """Boot the platform and run ``work(session, actor)`` in one committed transaction.

    ``forget``: the change revokes or narrows credentials; after the commit, cached
    credentials are forgotten through the core (which tells other processes where it can).
    """
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()
    actor = cli_actor()

    async def go() -> T:
        async with ctx.db.session() as session:
            result = await work(session, actor)
        if forget:
            ctx.forget_credentials()
        return result

    return run(ctx, go())


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
    from platform_core.auth import users

    password = read_password(password_stdin, no_password)

    async def create_user(session: AsyncSession, actor: Actor) -> tuple[int, str]:
        user = await users.create_user_recorded(session, actor, username, role, password)
        return user.id, user.role

    user_id, user_role = in_session(create_user)
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


@app.command("set-role")
def set_role(
    username: Annotated[str, USER_ARGUMENT],
    role: Annotated[str, typer.Argument(help="admin, operator or member.")],
) -> None:
    """Give a user another role; the last active admin cannot be demoted."""
    from platform_core.auth import users

    async def change(session: AsyncSession, actor: Actor) -> tuple[str, str]:
        user = await users.find_user(session, username)
        before = user.role
        user = await users.set_role(session, actor, user.id, role)
        return before, user.role

    before, after = in_session(change, forget=True)
    if before == after:
        say(f"{username} already has role {after}")
    else:
        say(f"{username}: role {before} -> {after}")


@app.command("deactivate")
def deactivate(username: Annotated[str, USER_ARGUMENT]) -> None:
    """Deactivate a user: no login, every API token revoked; the last admin is refused."""
    from platform_core.auth import users

    async def change(session: AsyncSession, actor: Actor) -> tuple[bool, int]:
        user = await users.find_user(session, username)
        if not user.is_active:
            return False, 0
        revoked = await users.active_token_count(session, user.id)
        await users.set_active(session, actor, user.id, False)
        return True, revoked

    changed, revoked = in_session(change, forget=True)
    if not changed:
        say(f"{username} is already inactive")
        return
    say(f"deactivated {username} (revoked {revoked} API token(s))")


@app.command("activate")
def activate(username: Annotated[str, USER_ARGUMENT]) -> None:
    """Reactivate a deactivated user (revoked tokens stay revoked)."""
    from platform_core.auth import users

    async def change(session: AsyncSession, actor: Actor) -> bool:
        user = await users.find_user(session, username)
        if user.is_active:
            return False
        await users.set_active(session, actor, user.id, True)
        return True

    say(f"activated {username}" if in_session(change) else f"{username} is already active")


@app.command("delete")
def delete(
    username: Annotated[str, USER_ARGUMENT],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a user and their tokens (the audit record stays); the last admin is refused.

    Off a terminal ``--yes`` is required. Prefer ``deactivate`` for accounts a plugin
    created (pricing's client and agent users).
    """
    from platform_core.auth import users

    confirm(yes, f"Delete user {username} and every token of theirs?")

    async def work(session: AsyncSession, actor: Actor) -> None:
        user = await users.find_user(session, username)
        await users.delete_user(session, actor, user.id)

    in_session(work, forget=True)
    say(f"deleted user {username}")


def confirm(yes: bool, question: str) -> None:
    """Ask ``question`` on a terminal; off a terminal, refuse unless ``--yes`` was given."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError("refusing without confirmation: stdin is not a terminal; pass --yes")
    typer.confirm(question, abort=True)


@app.command("reset-password")
def reset_password(
    username: Annotated[str, USER_ARGUMENT],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from stdin.")
    ] = False,
    generate: Annotated[
        bool,
        typer.Option("--generate", help="Generate a random password and print it once."),
    ] = False,
    revoke_tokens: Annotated[
        bool, typer.Option("--revoke-tokens", help="Also revoke every API token of the user.")
    ] = False,
) -> None:
    """Set a new password (prompted twice on a terminal); the old one is never shown."""
    from platform_core.auth import users

    if password_stdin and generate:
        raise CliError("--password-stdin and --generate exclude each other")
    password = None
    if not generate:
        if not password_stdin and not sys.stdin.isatty():
            raise CliError(
                "no password given: pass --password-stdin (and pipe the password in), "
                "or --generate for a random one printed once"
            )
        password = read_password(password_stdin, False)

    async def work(session: AsyncSession, actor: Actor) -> str | None:
        user = await users.find_user(session, username)
        return await users.reset_password(
            session, actor, user.id, password, revoke_tokens=revoke_tokens
        )

    generated = in_session(work, forget=revoke_tokens)
    if generated is not None:
        note(f"new password of {username} (shown once):")
        typer.echo(generated)
    else:
        say(f"password of {username} reset" + (" and API tokens revoked" if revoke_tokens else ""))


@app.command("audit")
def audit(
    username: Annotated[
        str | None, typer.Option("--user", "-u", help="Only this user's changes.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="How many.")] = 50,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show the recorded changes to users, newest first."""
    from platform_core.auth import users

    async def rows(session: AsyncSession, actor: Actor) -> list[tuple[Any, ...]]:
        user_id = None
        if username is not None:
            user_id = (await users.find_user(session, username)).id
        entries, _ = await users.list_audit(session, user_id=user_id, limit=limit)
        return [(e.id, e.at, e.actor, e.username, e.action, e.detail) for e in entries]

    print_rows(["id", "at", "actor", "user", "action", "detail"], in_session(rows), as_json=as_json)
