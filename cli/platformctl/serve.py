"""``platformctl serve``: boot, check the schema, then run the API with uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from platformctl.errors import CliError
from platformctl.output import note

if TYPE_CHECKING:
    from platform_core.context import PlatformContext

app = typer.Typer()

FIRST_ADMIN_HINT = (
    "No users yet. Create the first admin with:\n"
    "  platformctl users create admin --role admin --password-stdin"
)


async def prepare_database(ctx: PlatformContext, *, migrate: bool) -> int:
    """Apply or refuse pending migrations; return the number of users.

    Raises ``CliError`` naming the plugins with pending migrations unless ``migrate``.
    """
    from platform_core import migrate as migrations
    from platform_core.auth.service import count_users

    targets = ctx.state["migration_targets"]
    pending = [s.plugin for s in await migrations.status(ctx.db, targets) if s.pending]
    if pending and not migrate:
        raise CliError(
            f"pending migrations for plugins: {', '.join(pending)}; run "
            "`platformctl db upgrade` or start with `platformctl serve --migrate`"
        )
    if pending:
        upgraded = await migrations.upgrade(ctx.db, targets)
        note(f"migrated: {', '.join(upgraded)}")
    async with ctx.db.session() as session:
        return await count_users(session)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=0, max=65535)] = 8000,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Apply pending migrations before starting.")
    ] = False,
) -> None:
    """Run the API server; refuses to start while migrations are pending (unless --migrate)."""
    import uvicorn

    from platform_core.app import boot, create_app
    from platform_core.observability import configure_logging
    from platformctl.runtime import load_config, run

    cfg = load_config()
    configure_logging(cfg.core.log_format, cfg.core.log_level)
    ctx = boot(cfg)
    if run(ctx, prepare_database(ctx, migrate=migrate)) == 0:
        note(FIRST_ADMIN_HINT)
    # X-Forwarded-For is believed only from [core] trusted_proxies, which the app applies;
    # uvicorn's own default would trust it from any loopback peer.
    uvicorn.run(
        create_app(ctx),
        host=host,
        port=port,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )
