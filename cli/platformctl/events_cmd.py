"""``platformctl events``: replay events to a handler that missed them."""

from __future__ import annotations

from typing import Annotated

import typer

from platformctl.errors import CliError
from platformctl.output import note, print_json, say

app = typer.Typer(help="Replay events to a handler that missed them.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Events in the outbox and their deliveries to the plugins' handlers."""


@app.command("replay")
def replay(
    handler: Annotated[
        str, typer.Option("--handler", "-H", help="The subscription, <plugin>:<name>.")
    ],
    since: Annotated[
        str,
        typer.Option(
            "--since", "-s", help="ISO 8601 time (UTC without offset) or an age: 12h, 7d."
        ),
    ],
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Also set its failed deliveries back to pending.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Enqueue deliveries to HANDLER of the events since SINCE that it has no delivery for.

    For a plugin that was disabled while events were published: its handlers were not
    subscribed then, so those events were not delivered to them. Idempotent by event id;
    only events still kept in the outbox ([core.events] retention_days) can be replayed. The
    serving processes and workers deliver them.
    """
    from platform_core.errors import ValidationFailed
    from platform_core.events.replay import parse_since
    from platform_core.events.replay import replay as run_replay
    from platformctl.runtime import boot_platform, run

    try:
        when = parse_since(since)
    except ValidationFailed as exc:
        raise CliError(f"--since: {exc.detail.split(': ', 1)[-1]}") from exc
    ctx = boot_platform()
    try:
        result = run(ctx, run_replay(ctx, handler, when, retry_failed=retry_failed))
    except ValidationFailed as exc:
        raise CliError(str(exc.detail)) from exc
    if as_json:
        print_json(
            {
                "handler": result.handler,
                "matched": result.matched,
                "enqueued": result.enqueued,
                "already": result.already,
                "retried": result.retried,
                "since": when.isoformat(),
            }
        )
    else:
        say(
            f"{result.handler}: {result.enqueued} delivery(ies) enqueued, {result.already} "
            f"already delivered or pending, {result.retried} failed one(s) retried, "
            f"of {result.matched} matching event(s) since {when.isoformat()}"
        )
    retention = ctx.config.core.events.retention_days
    if result.oldest_kept is None or result.oldest_kept > when:
        note(
            f"events older than [core.events] retention_days ({retention}) are deleted: "
            "earlier events cannot be replayed"
        )
