"""``platformctl scheduler``: enqueue periodic job runs (the distributed runner).

Two or more schedulers may run (for availability): a periodic slot is enqueued once, the
database's unique ``(job, scheduled_for, attempt)`` dedupes it. The scheduler also
re-enqueues runs whose worker died (expired lease) and re-sends unclaimed ones. It starts
at the next slot: slots that fell while no scheduler ran are not backfilled.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()


@app.command()
def scheduler(
    grace: Annotated[
        float, typer.Option("--grace", min=0, help="Seconds to let a pass finish on stop.")
    ] = 5.0,
) -> None:
    """Enqueue periodic job runs and recover lost ones, until SIGTERM or Ctrl-C."""
    from platformctl.runtime import run
    from platformctl.worker_cmd import boot_role, run_role

    ctx = boot_role()
    run(ctx, run_role(ctx, "scheduler", grace))
