"""``platformctl worker``: execute jobs from the broker (the distributed runner).

Run as many workers as you like, on as many hosts; each claims runs in the database, so a
message delivered twice runs once. SIGTERM or SIGINT stops taking new runs and waits up to
``--grace`` seconds for the running ones; runs still going then are recorded as
interrupted and enqueued again. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from platformctl.errors import CliError
from platformctl.output import note

if TYPE_CHECKING:
    from platform_core.background import Role
    from platform_core.context import PlatformContext

app = typer.Typer()

NO_BROKER = (
    'no broker configured: set [core.jobs] broker_url = "redis://..." in plugins.toml '
    "(without a broker, `platformctl serve` runs jobs in-process)"
)


def boot_role() -> PlatformContext:
    """Load the config, set up logging and boot; refuse without a broker."""
    from platform_core.app import boot
    from platform_core.observability import configure_logging
    from platformctl.runtime import load_config

    cfg = load_config()
    if not cfg.core.jobs.broker_url:
        raise CliError(NO_BROKER)
    configure_logging(cfg.core.log_format, cfg.core.log_level)
    return boot(cfg)


async def _check_schema(ctx: PlatformContext) -> None:
    from platform_core import migrate

    pending = [
        s.plugin for s in await migrate.status(ctx.db, ctx.state["migration_targets"]) if s.pending
    ]
    if pending:
        raise CliError(
            f"pending migrations for plugins: {', '.join(pending)}; run `platformctl db upgrade`"
        )


async def run_role(ctx: PlatformContext, role: Role, grace: float) -> None:
    """Run ``role``'s background loops until SIGTERM/SIGINT, with startup/shutdown hooks."""
    from platform_core.background import Background

    await _check_schema(ctx)
    await ctx.plugins.acall("platform_startup", ctx=ctx)
    active = {r.name for r in ctx.plugins.active_records()}
    ctx.jobs = {k: v for k, v in ctx.jobs.items() if k.split(".")[0] in active}
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        stop.set()
        if signals > 1:
            for task in background.tasks:
                task.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    background = Background(ctx, role)
    background.start()
    note(f"{role} started: {len(ctx.jobs)} jobs; stop with Ctrl-C or SIGTERM")
    try:
        await stop.wait()
        note(f"{role} stopping (waiting up to {grace:g}s for running jobs)")
        await background.stop(grace=grace)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await ctx.plugins.acall("platform_shutdown", ctx=ctx, reverse=True, isolate=False)
    note(f"{role} stopped")


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-n", min=1, max=1000, help="Jobs run at once.")
    ] = 4,
    grace: Annotated[
        float, typer.Option("--grace", min=0, help="Seconds to let running jobs finish on stop.")
    ] = 30.0,
) -> None:
    """Consume job runs from the broker and execute them, until SIGTERM or Ctrl-C."""
    from platformctl.runtime import run

    ctx = boot_role()
    ctx.state["jobs_concurrency"] = concurrency
    run(ctx, run_role(ctx, "worker", grace))
