"""``platformctl webhooks``: outbound webhooks (the secret is printed once, on stdout)."""

from __future__ import annotations

from typing import Annotated

import typer

from platformctl.output import note, print_json, print_rows, say

app = typer.Typer(
    help="Add, list, remove and test outbound webhooks; inspect and redeliver deliveries.",
    no_args_is_help=True,
)

WebhookId = Annotated[
    int, typer.Argument(help="Webhook id (see `webhooks list`).", min=1, max=2**31 - 1)
]


@app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="http(s) URL the events are POSTed to.")],
    events: Annotated[
        list[str],
        typer.Option("--event", "-e", help="Event name or pattern such as 'inventory.*' (repeat)."),
    ],
    description: Annotated[str, typer.Option("--description", "-d", help="Free text.")] = "",
    inactive: Annotated[bool, typer.Option("--inactive", help="Register it switched off.")] = False,
) -> None:
    """Register a webhook and print ONLY its signing secret on stdout (shown this once)."""
    from platform_core.webhooks import service
    from platform_core.webhooks.delivery import target_policy
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()

    async def create() -> tuple[str, str]:
        async with ctx.db.session() as session:
            hook, secret = await service.create_webhook(
                session,
                url,
                events,
                description=description,
                is_active=not inactive,
                policy=target_policy(ctx),
            )
            state = "active" if hook.is_active else "inactive"
            return secret, (
                f"added webhook {hook.id} ({state}) for {', '.join(hook.patterns)} -> {hook.url}; "
                "store the secret now: it is not shown again"
            )

    secret, details = run(ctx, create())
    note(details)
    say(secret)


@app.command("list")
def list_webhooks(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List webhooks (never their secrets)."""
    from platform_core.webhooks import service
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()

    async def rows() -> list[tuple[object, ...]]:
        async with ctx.db.session() as session:
            return [
                (h.id, h.url, h.patterns, h.is_active, h.description, h.created_at)
                for h in await service.list_webhooks(session)
            ]

    print_rows(
        ["id", "url", "events", "active", "description", "created"],
        run(ctx, rows()),
        as_json=as_json,
    )


@app.command("remove")
def remove(webhook_id: WebhookId) -> None:
    """Delete a webhook and its delivery log."""
    from platform_core.webhooks import service
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()

    async def delete() -> None:
        async with ctx.db.session() as session:
            await service.delete_webhook(session, webhook_id)

    run(ctx, delete())
    say(f"removed webhook {webhook_id}")


def _set_active(webhook_id: int, active: bool) -> None:
    from platform_core.webhooks import service
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()

    async def change() -> None:
        async with ctx.db.session() as session:
            await service.update_webhook(session, webhook_id, is_active=active)

    run(ctx, change())
    say(f"{'enabled' if active else 'disabled'} webhook {webhook_id}")


@app.command("enable")
def enable(webhook_id: WebhookId) -> None:
    """Switch a webhook on: events published from now on are sent to it."""
    _set_active(webhook_id, True)


@app.command("disable")
def disable(webhook_id: WebhookId) -> None:
    """Switch a webhook off: nothing is sent to it; its pending deliveries are given up."""
    _set_active(webhook_id, False)


@app.command("rotate-secret")
def rotate_secret(webhook_id: WebhookId) -> None:
    """Replace the signing secret and print ONLY the new one on stdout (shown this once)."""
    from platform_core.webhooks import service
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()
    overlap = ctx.config.core.webhooks.rotation_overlap_hours

    async def rotate() -> str:
        async with ctx.db.session() as session:
            _, secret = await service.rotate_secret(session, webhook_id, overlap_hours=overlap)
            return secret

    secret = run(ctx, rotate())
    if overlap:
        note(
            f"rotated the secret of webhook {webhook_id}; the old one also signs deliveries "
            f"for {overlap:g} more hours"
        )
    else:
        note(f"rotated the secret of webhook {webhook_id}; the old one no longer signs deliveries")
    say(secret)


@app.command("test")
def test(webhook_id: WebhookId) -> None:
    """Send a core.webhook.test event now and print the receiver's answer (exit 1 if failed)."""
    from platform_core.webhooks import service
    from platformctl.errors import CliError
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()
    result = run(ctx, service.send_test(ctx, webhook_id, actor="platformctl"))
    if not result.succeeded:
        raise CliError(
            f"test event not delivered: {result.detail or result.error} ({result.duration_ms} ms; "
            f"delivery {result.delivery_id})"
        )
    say(f"delivered: HTTP {result.status_code} in {result.duration_ms} ms")


@app.command("deliveries")
def deliveries(
    webhook_id: WebhookId,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100)] = 20,
    state: Annotated[
        str | None, typer.Option("--state", help="Only pending, succeeded or failed ones.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON with every attempt.")] = False,
) -> None:
    """Show the webhook's delivery log, newest first."""
    from platform_core.webhooks import service
    from platformctl.errors import CliError
    from platformctl.runtime import boot_platform, run

    if state is not None and state not in ("pending", "succeeded", "failed"):
        raise CliError(f"invalid --state {state!r}: use pending, succeeded or failed")
    ctx = boot_platform()

    async def page() -> list[service.DeliveryView]:
        async with ctx.db.session() as session:
            views, _ = await service.list_deliveries(session, webhook_id, limit=limit, state=state)
            return views

    views = run(ctx, page())
    if as_json:
        print_json(
            [
                {
                    "id": v.delivery.id,
                    "event_id": v.event_id,
                    "event": v.event_name,
                    "state": v.delivery.state,
                    "created_at": v.delivery.created_at,
                    "next_attempt_at": service.next_attempt(v.delivery),
                    "attempts": [
                        {
                            "attempted_at": a.attempted_at,
                            "status_code": a.status_code,
                            "error": a.error,
                            "duration_ms": a.duration_ms,
                        }
                        for a in v.attempts
                    ],
                }
                for v in views
            ]
        )
        return
    print_rows(
        ["id", "event", "state", "attempts", "statuses", "last error", "next attempt", "created"],
        [
            (
                v.delivery.id,
                v.event_name,
                v.delivery.state,
                v.delivery.attempts,
                [a.status_code if a.status_code is not None else "-" for a in v.attempts],
                v.delivery.last_error,
                service.next_attempt(v.delivery),
                v.delivery.created_at,
            )
            for v in views
        ],
        as_json=False,
    )


@app.command("redeliver")
def redeliver(
    webhook_id: WebhookId,
    delivery_id: Annotated[
        int, typer.Argument(help="Delivery id (see `deliveries`).", min=1, max=2**31 - 1)
    ],
) -> None:
    """Queue a delivery to be sent again now (the running server sends it)."""
    from platform_core.webhooks import service
    from platformctl.runtime import boot_platform, run

    ctx = boot_platform()

    async def queue() -> None:
        async with ctx.db.session() as session:
            await service.redeliver(session, webhook_id, delivery_id)

    run(ctx, queue())
    say(f"queued delivery {delivery_id} of webhook {webhook_id} for redelivery")
