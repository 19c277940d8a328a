"""``platformctl scheduler bookings list|approve|reject|cancel`` and ``... power DEVICE ACTION``.

Commands act as the admin CLI user ``cli`` directly on the database (no HTTP).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from platform_core import PlatformContext, Principal

CLI_ACTOR = "cli"


def _principal() -> Principal:
    from platform_core import Principal

    return Principal(user_id=0, username=CLI_ACTOR, role="admin", scopes=frozenset())


def _run(ctx: typer.Context, work: Any) -> Any:
    from rich.console import Console

    from platform_core import PlatformError, run_command

    try:
        return run_command(ctx.obj, work(ctx.obj))
    except PlatformError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(1) from None


def list_bookings(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    device: Annotated[int | None, typer.Option("--device", help="Only this device id.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
) -> None:
    """List bookings (newest ids last)."""
    from rich.console import Console
    from rich.table import Table

    from platform_scheduler import service

    async def work(platform: PlatformContext) -> list[tuple[Any, list[int]]]:
        async with platform.db.session() as session:
            rows, _ = await service.list_bookings(
                session, _principal(), status=status, device_id=device, limit=limit
            )
            devices = await service.device_ids_of(session, [b.id for b in rows])
            return [(b, devices[b.id]) for b in rows]

    table = Table("id", "status", "owner", "devices", "start", "end", "purpose")
    for b, ids in _run(ctx, work):
        table.add_row(
            str(b.id),
            b.status,
            b.owner_name,
            ",".join(map(str, ids)),
            b.start_at.isoformat(),
            b.end_at.isoformat(),
            b.purpose,
        )
    Console().print(table)


def _decide(ctx: typer.Context, verb: str, booking_id: int, note: str | None) -> None:
    from rich.console import Console

    from platform_scheduler import service

    async def work(platform: PlatformContext) -> str:
        async with platform.db.session() as session:
            if verb == "approve":
                b = await service.approve_booking(session, booking_id, _principal(), note)
            elif verb == "reject":
                b = await service.reject_booking(session, booking_id, _principal(), note)
            else:
                b = await service.cancel_booking(session, booking_id, _principal())
            return b.status

    status = _run(ctx, work)
    Console().print(f"booking {booking_id}: {status}")


def approve(
    ctx: typer.Context,
    booking_id: int,
    note: Annotated[str | None, typer.Option("--note")] = None,
) -> None:
    """Approve a pending booking."""
    _decide(ctx, "approve", booking_id, note)


def reject(
    ctx: typer.Context,
    booking_id: int,
    note: Annotated[str | None, typer.Option("--note")] = None,
) -> None:
    """Reject a pending booking."""
    _decide(ctx, "reject", booking_id, note)


def cancel(ctx: typer.Context, booking_id: int) -> None:
    """Cancel a pending or approved booking."""
    _decide(ctx, "cancel", booking_id, None)


def power(
    ctx: typer.Context,
    device: Annotated[int, typer.Argument(help="Device id.")],
    action: Annotated[str, typer.Argument(help="on, off or cycle")],
    force: Annotated[
        bool, typer.Option("--force", help="Even while someone else holds the device.")
    ] = False,
) -> None:
    """Switch a device on, off or cycle it (audited; refused while someone else holds it)."""
    from rich.console import Console

    from platform_scheduler import power as power_service

    if action not in power_service.ACTIONS:
        Console(stderr=True).print("[red]error:[/] action must be on, off or cycle")
        raise typer.Exit(2)

    async def work(platform: PlatformContext) -> dict[str, Any]:
        return await power_service.power_action(platform, device, action, _principal(), force=force)

    result = _run(ctx, work)
    Console().print(f"device {device}: power {action} {result['result']}")


def register(cli: typer.Typer) -> None:
    """Add the scheduler's commands to ``platformctl scheduler``."""
    bookings = typer.Typer(help="List, approve, reject and cancel bookings.", no_args_is_help=True)
    bookings.command("list")(list_bookings)
    bookings.command("approve")(approve)
    bookings.command("reject")(reject)
    bookings.command("cancel")(cancel)
    cli.add_typer(bookings, name="bookings")
    cli.command("power")(power)
