"""``platformctl serve``: boot, check the schema, then run the API with uvicorn."""

from __future__ import annotations

import contextlib
import gc
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

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
        upgraded = await migrations.upgrade(ctx.db, targets)  # waits for another migrator
        note(
            f"migrated: {', '.join(upgraded)}"
            if upgraded
            else "nothing to migrate: another process applied the migrations"
        )
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
    config = uvicorn.Config(
        create_app(ctx),
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # RequestMiddleware logs each request (uvicorn's line costs per request)
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=cfg.core.shutdown.grace_seconds,
    )
    # Everything built so far (modules, the app, its routes and models) lives as long as the
    # process: move it out of the garbage collector's sight, so that its full collections
    # (each one a pause of every request in flight) walk only what requests create.
    gc.collect()
    gc.freeze()
    with stopped_by_signals():
        draining_server(ctx, config).run()
    note("server stopped")


def draining_server(ctx: PlatformContext, config: Any) -> Any:
    """A uvicorn server that drains on SIGTERM (see ``[core.shutdown]``).

    SIGTERM: ``/readyz`` answers 503 at once while requests are still served for
    ``drain_seconds``; then the listener closes and requests in flight get up to
    ``grace_seconds``; then the background loops stop (a job run still going is recorded as
    interrupted and queued again at once). SIGINT (Ctrl-C) skips the drain; a second signal
    ends the drain early.
    """
    import time

    import uvicorn

    drain = ctx.config.core.shutdown.drain_seconds

    class DrainingServer(uvicorn.Server):
        drain_until: float | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            if sig == signal.SIGTERM and self.drain_until is None and drain > 0:
                ctx.state["draining"] = True
                self.drain_until = time.monotonic() + drain
                self._captured_signals.append(sig)
                return
            ctx.state["draining"] = True
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:
            if self.drain_until is not None and time.monotonic() >= self.drain_until:
                self.should_exit = True
            return await super().on_tick(counter)

    return DrainingServer(config)


class _Stop(Exception):
    """SIGINT or SIGTERM after uvicorn's graceful shutdown: a normal end, not an error."""


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Make Ctrl-C and SIGTERM end ``serve`` with status 0 after the graceful shutdown.

    uvicorn shuts down on these signals, then raises the signal again for the previous
    handler: Python's default turns SIGINT into a traceback-free "Aborted!" with status 1
    and SIGTERM into death by signal, which ``make run`` reports as an error.
    """

    def stop(signum: int, frame: Any) -> None:
        raise _Stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _Stop:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
