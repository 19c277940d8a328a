"""``platformctl tokens``: personal API tokens (the secret is printed once, on stdout)."""

from __future__ import annotations

from typing import Annotated

import typer

from platformctl.output import note, print_rows, say

app = typer.Typer(help="Create, list and revoke personal API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Owner of the token.")],
    scopes: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", help="A scope to grant (repeat); default: the role's."),
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Lifetime such as 30d, 12h, 2w.")
    ] = None,
    name: Annotated[str, typer.Option("--name", "-n", help="A label for the token.")] = "",
) -> None:
    """Create a token and print ONLY its secret on stdout (details go to stderr)."""
    from platform_core.auth import service
    from platformctl.runtime import boot_platform, run

    lifetime = service.parse_duration(expires_in) if expires_in is not None else None
    ctx = boot_platform()

    async def create_token() -> tuple[str, str]:
        async with ctx.db.session() as session:
            user = await service.get_user_by_name(session, username)
            token, secret = await service.create_token(
                session,
                user,
                scopes=scopes or None,
                known_scopes=frozenset(ctx.permissions),
                role_scopes=ctx.state["role_scopes"][user.role],
                expires_in=lifetime,
                name=name,
            )
            granted = ", ".join(token.scopes) if token.scopes is not None else "all of the role's"
            expiry = token.expires_at.isoformat(timespec="seconds") if token.expires_at else "never"
            return secret, (
                f"created token {token.id} ({token.prefix}...) for {username!r}: "
                f"scopes {granted}; expires {expiry}"
            )

    secret, details = run(ctx, create_token())
    note(details)
    say(secret)


@app.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List tokens (never their secrets) with owner, scopes and state."""
    from platform_core.auth import service
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()

    async def rows() -> list[tuple[object, ...]]:
        async with ctx.db.session() as session:
            owner_id = (await service.get_user_by_name(session, user)).id if user else None
            names = {u.id: u.username for u in await service.list_users(session)}
            tokens = await service.list_tokens(session, owner_id)
            return [
                (
                    t.id,
                    names.get(t.user_id, t.user_id),
                    t.name,
                    t.prefix,
                    t.scopes if t.scopes is not None else "(role)",
                    service.token_state(t),
                    t.expires_at,
                    t.last_used_at,
                )
                for t in tokens
            ]

    print_rows(
        ["id", "user", "name", "prefix", "scopes", "state", "expires", "last used"],
        run(ctx, rows()),
        as_json=as_json,
    )


@app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="Token id (see `tokens list`).")]) -> None:
    """Revoke a token; revoking an already revoked token is not an error."""
    from platform_core.auth import service
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()

    async def revoke_token() -> None:
        async with ctx.db.session() as session:
            await service.revoke_token(session, token_id)
        ctx.forget_credentials()  # with Redis, every serve process drops it at once

    run(ctx, revoke_token())
    say(f"revoked token {token_id}")
