"""``platformctl payments orders list|show|refund``, ``providers list``, ``ledger check``.

Commands act as the platform itself, directly on the database (no HTTP): they see every
buyer's orders. A refund passes its ``--idempotency-key`` (default: a new one) to the
provider, so re-running it with the same key never refunds twice at PayPal, and is recorded
with the actor ``platformctl:<os user>`` (as the core's ``platformctl users`` commands do),
or ``--actor``.
"""

from __future__ import annotations

import getpass
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from platform_core import PlatformContext

orders_cli = typer.Typer(help="List, show and refund orders.", no_args_is_help=True)
providers_cli = typer.Typer(help="Payment providers.", no_args_is_help=True)
ledger_cli = typer.Typer(help="The ledger check.", no_args_is_help=True)


def _run(ctx: typer.Context, work: Any) -> Any:
    from rich.console import Console

    from platform_core import PlatformError, run_command

    try:
        return run_command(ctx.obj, work(ctx.obj))
    except PlatformError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(1) from None


def cli_actor() -> str:
    """Who a command acts as: ``platformctl:<os user>``, like the core's ``users`` commands."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with a bare uid)
        who = "unknown"
    return f"platformctl:{who}"


def _amount(minor: int, currency: str) -> str:
    from platform_payments.money import format_amount

    return f"{format_amount(minor, currency)} {currency}"


@orders_cli.command("list")
def list_orders(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only orders in this state.")] = None,
    buyer: Annotated[int | None, typer.Option(help="Only this buyer's orders.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """The newest orders."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from platform_payments.service import orders
    from platform_payments.states import STATES

    if status is not None and status not in STATES:
        Console(stderr=True).print(f"[red]error:[/] --status must be one of {', '.join(STATES)}")
        raise typer.Exit(2)

    async def work(platform: PlatformContext) -> list[Any]:
        async with platform.db.session() as session:
            rows, _ = await orders.list_orders(
                session, None, status=status, buyer_id=buyer, limit=limit
            )
            return rows

    table = Table("id", "buyer", "subject", "total", "refunded", "status", "provider")
    for o in _run(ctx, work):
        table.add_row(
            str(o.id),
            str(o.buyer_id),
            escape(f"{o.subject_plugin}/{o.subject_kind}/{o.subject_id}"),
            _amount(o.total_minor, o.currency),
            _amount(o.refunded_minor, o.currency),
            o.status,
            o.provider or "-",
        )
    Console().print(table)


@orders_cli.command("show")
def show_order(ctx: typer.Context, order_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """One order with its line items and transactions."""
    from rich.console import Console
    from rich.markup import escape

    from platform_payments.service import orders

    async def work(platform: PlatformContext) -> tuple[Any, list[Any], list[Any]]:
        async with platform.db.session() as session:
            order = await orders.get_order(session, order_id, None)
            return (
                order,
                await orders.line_items(session, order_id),
                await orders.transactions(session, order_id),
            )

    order, items, txs = _run(ctx, work)
    out = Console()
    c = order.currency
    out.print(
        f"order {order.id}: {order.status}, buyer {order.buyer_id}, "
        f"provider {order.provider or '-'}"
    )
    out.print(escape(f"subject: {order.subject_plugin}/{order.subject_kind}/{order.subject_id}"))
    out.print(
        f"total {_amount(order.total_minor, c)}, captured {_amount(order.captured_minor, c)}, "
        f"refunded {_amount(order.refunded_minor, c)}, "
        f"refund pending {_amount(order.refund_pending_minor, c)}"
    )
    for item in items:
        out.print(escape(f"  {item.quantity} x {item.description} @ {_amount(item.unit_minor, c)}"))
    for tx in txs:
        parts = [f"#{tx.id}", tx.kind, tx.status, _amount(tx.amount_minor, c), tx.provider]
        parts += [p for p in (tx.provider_ref, tx.reason) if p]
        out.print(escape("  " + " ".join(parts) + f" (by {tx.actor or '-'})"))


@orders_cli.command("refund")
def refund_order(
    ctx: typer.Context,
    order_id: Annotated[int, typer.Argument(min=1)],
    reason: Annotated[str, typer.Option(help="Why (shown to the buyer).")],
    amount: Annotated[
        str | None, typer.Option(help="Decimal amount; default: all that is left.")
    ] = None,
    reference: Annotated[str | None, typer.Option(help="Reference of a manual refund.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Passed on to the provider.")] = None,
    actor: Annotated[
        str | None,
        typer.Option(help="Who refunds, as recorded (default: platformctl:<os user>)."),
    ] = None,
) -> None:
    """Refund all or part of a paid order."""
    from rich.console import Console

    from platform_core import text_error
    from platform_payments.service import refunds

    checks = (("--reason", reason, 255), ("--reference", reference, 255), ("--actor", actor, 128))
    for name, value, longest in checks:
        if value is not None and (not value or text_error(value) or len(value) > longest):
            Console(stderr=True).print(f"[red]error:[/] {name} must be one line of text")
            raise typer.Exit(2)

    async def work(platform: PlatformContext) -> tuple[Any, Any]:
        async with platform.db.session() as session:
            return await refunds.refund(
                platform,
                session,
                order_id,
                amount_text=amount,
                reason=reason,
                reference=reference,
                caller=None,
                request_id=idempotency_key or uuid.uuid4().hex,
                actor=actor or cli_actor(),
            )

    order, tx = _run(ctx, work)
    c = order.currency
    if tx.status == "pending":
        Console().print(
            f"refund of {_amount(tx.amount_minor, c)} of order {order.id} is pending at "
            f"{tx.provider} ({tx.provider_ref}): still {order.status} until it completes"
        )
        return
    Console().print(
        f"refunded {_amount(tx.amount_minor, c)} of order {order.id}: "
        f"now {order.status}, {_amount(order.refunded_minor, c)} refunded in all"
    )


@providers_cli.command("list")
def list_providers(ctx: typer.Context) -> None:
    """Every provider and whether it is configured (never its credentials)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from platform_payments.service.providers import list_providers as providers

    table = Table("name", "configured", "manual", "description")
    for p in providers(ctx.obj):
        table.add_row(
            escape(p.name),
            "yes" if p.configured else escape(f"no: {p.problem}"),
            str(p.manual).lower(),
            escape(p.description),
        )
    Console().print(table)


@ledger_cli.command("check")
def ledger_check(ctx: typer.Context) -> None:
    """Check every order's amounts against its transactions and state; exit 1 on a finding."""
    from rich.console import Console

    from platform_payments.service import ledger

    async def work(platform: PlatformContext) -> list[Any]:
        async with platform.db.session() as session:
            return await ledger.check(session)

    findings = _run(ctx, work)
    out = Console()
    if not findings:
        out.print("ledger ok: every order agrees with its transactions")
        return
    for f in findings:
        out.print(f"order {f.order_id}: " + "; ".join(f.problems))
    raise typer.Exit(1)


def register(cli: typer.Typer) -> None:
    """Mount the command groups on ``platformctl payments``."""
    cli.add_typer(orders_cli, name="orders")
    cli.add_typer(providers_cli, name="providers")
    cli.add_typer(ledger_cli, name="ledger")
