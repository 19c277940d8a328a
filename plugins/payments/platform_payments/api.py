"""What other plugins may use: sell a thing through an order, and read an order's state.

A plugin that requires ``payments`` creates an order for one of its things in its own
transaction and subscribes to ``payments.order.paid`` (and ``.refunded``, ``.failed``,
``.expired``) filtering on ``subject_plugin``::

    from platform_payments.api import Item, Subject, create_order

    order = await create_order(
        session, ctx=ctx, buyer_id=user_id, subject=Subject("shop", "cart", "42"),
        currency="EUR", items=[Item("2 mugs", 2, "7.50")],
    )
    # send the buyer to POST /api/payments/orders/{order.id}/pay
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import PlatformContext
from platform_payments.models import Order
from platform_payments.money import from_minor
from platform_payments.service import orders as _orders
from platform_payments.settings import PaymentsSettings

__all__ = ["Item", "OrderState", "Subject", "create_order", "order_state"]


@dataclass(frozen=True)
class Subject:
    """What an order pays for: ``(plugin, kind, id)``."""

    plugin: str
    kind: str
    id: str


@dataclass(frozen=True)
class Item:
    """A line item: description, quantity, unit price (a ``Decimal`` or decimal string)."""

    description: str
    quantity: int
    unit_price: Decimal | str


@dataclass(frozen=True)
class OrderState:
    """An order as other plugins see it; amounts are ``Decimal`` in the currency's units."""

    id: int
    buyer_id: int
    subject: Subject
    status: str
    currency: str
    total: Decimal
    captured: Decimal
    refunded: Decimal
    refund_pending: Decimal
    provider: str | None
    approval_url: str | None


def _state(order: Order) -> OrderState:
    c = order.currency
    return OrderState(
        id=order.id,
        buyer_id=order.buyer_id,
        subject=Subject(order.subject_plugin, order.subject_kind, order.subject_id),
        status=order.status,
        currency=c,
        total=from_minor(order.total_minor, c),
        captured=from_minor(order.captured_minor, c),
        refunded=from_minor(order.refunded_minor, c),
        refund_pending=from_minor(order.refund_pending_minor, c),
        provider=order.provider,
        approval_url=order.approval_url,
    )


async def create_order(
    session: AsyncSession,
    *,
    ctx: PlatformContext,
    buyer_id: int,
    subject: Subject,
    currency: str,
    items: list[Item],
    actor: str | None = None,
) -> OrderState:
    """Create an order (``created``) in the caller's transaction.

    ``ctx`` is the running platform (the hook's or job's ``ctx``, ``get_context(request)``
    in a route): its ``[plugins.payments]`` settings limit the line items (``max_items``).
    Raises ``ValidationFailed`` naming the field for an unknown currency, a bad amount or
    too many items.
    """
    new = _orders.NewOrder(
        currency=currency,
        items=[_orders.NewItem(i.description, i.quantity, i.unit_price) for i in items],
        subject_plugin=subject.plugin,
        subject_kind=subject.kind,
        subject_id=subject.id,
    )
    order = await _orders.create_order(
        session,
        buyer_id,
        new,
        max_items=ctx.settings_for("payments", PaymentsSettings).max_items,
        actor=actor or subject.plugin,
    )
    return _state(order)


async def order_state(session: AsyncSession, order_id: int) -> OrderState:
    """The order's current state; ``NotFound`` when there is none."""
    return _state(await _orders.state_of(session, order_id))
