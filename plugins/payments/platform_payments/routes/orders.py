"""Orders: create, list, read, pay, capture, mark paid, cancel, refund, transactions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from platform_core import (
    DEFAULT_LIMIT,
    IDEMPOTENT,
    IDEMPOTENT_REQUIRED,
    Caller,
    DbSession,
    IdCursor,
    IdPath,
    Limit,
    OptionalId,
    claimed_key,
    get_context,
    requires_scopes,
)
from platform_payments.money import format_amount
from platform_payments.routes.deps import Settings
from platform_payments.schemas.orders import (
    ItemOut,
    MarkPaidIn,
    OrderIn,
    OrderOut,
    OrderPage,
    OrderSummary,
    PayIn,
    PaymentStarted,
    RefundIn,
    RefundOut,
    StatusName,
    TransactionOut,
)
from platform_payments.service import orders, refunds

router = APIRouter()


async def _items(session: DbSession, order: Any) -> list[ItemOut]:
    rows = await orders.line_items(session, order.id)
    return [
        ItemOut(
            description=row.description,
            quantity=row.quantity,
            unit_price=format_amount(row.unit_minor, order.currency),
        )
        for row in rows
    ]


@router.post("/orders", status_code=201, dependencies=[IDEMPOTENT])
async def create_order(
    data: OrderIn, session: DbSession, caller: Caller, settings: Settings
) -> OrderOut:
    """Create an order for yourself (``created``): currency, line items and its subject."""
    new = orders.NewOrder(
        currency=data.currency,
        items=[orders.NewItem(i.description, i.quantity, i.unit_price) for i in data.items],
        subject_plugin=data.subject.plugin,
        subject_kind=data.subject.kind,
        subject_id=data.subject.id,
    )
    order = await orders.create_order(
        session, caller.user_id, new, max_items=settings.max_items, actor=caller.username
    )
    return OrderOut.of(order, items=await _items(session, order))


@router.get("/orders")
async def list_orders(
    session: DbSession,
    caller: Caller,
    status: StatusName | None = None,
    buyer_id: OptionalId = None,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> OrderPage:
    """Your orders, newest first (admins: everyone's, optionally one buyer's)."""
    rows, nxt = await orders.list_orders(
        session, caller, status=status, buyer_id=buyer_id, cursor=cursor, limit=limit
    )
    return OrderPage(items=[OrderSummary.of(r) for r in rows], next_cursor=nxt)


@router.get("/orders/{order_id}")
async def get_order(order_id: IdPath, session: DbSession, caller: Caller) -> OrderOut:
    """One of your orders (admins: any) with its line items."""
    order = await orders.get_order(session, order_id, caller)
    return OrderOut.of(order, items=await _items(session, order))


@router.get("/orders/{order_id}/transactions")
async def list_transactions(
    order_id: IdPath, session: DbSession, caller: Caller
) -> list[TransactionOut]:
    """The order's transactions with its provider, oldest first (answers redacted)."""
    order = await orders.get_order(session, order_id, caller)
    rows = await orders.transactions(session, order.id)
    return [TransactionOut.of(r, order.currency) for r in rows]


@router.post("/orders/{order_id}/pay", dependencies=[IDEMPOTENT_REQUIRED])
async def pay_order(
    order_id: IdPath, data: PayIn, request: Request, session: DbSession, caller: Caller
) -> PaymentStarted:
    """Start paying a ``created`` order with a provider: approve at ``approval_url``, or
    follow ``instructions`` (manual). The ``Idempotency-Key`` goes on to the provider."""
    order, instructions = await orders.start_payment(
        get_context(request),
        session,
        order_id,
        data.provider,
        caller,
        request_id=claimed_key(request),
    )
    return PaymentStarted.of(order, items=await _items(session, order), instructions=instructions)


@router.post("/orders/{order_id}/capture", dependencies=[IDEMPOTENT_REQUIRED])
async def capture_order(
    order_id: IdPath, request: Request, session: DbSession, caller: Caller
) -> OrderOut:
    """Capture the approved payment (once): ``paid``, or still ``pending`` when the provider
    holds the capture, or ``failed`` when declined."""
    order = await orders.capture(
        get_context(request), session, order_id, caller, request_id=claimed_key(request)
    )
    return OrderOut.of(order, items=await _items(session, order))


@router.post(
    "/orders/{order_id}/mark-paid",
    dependencies=[IDEMPOTENT_REQUIRED],
    openapi_extra=requires_scopes("payments:admin"),
)
async def mark_order_paid(
    order_id: IdPath, data: MarkPaidIn, request: Request, session: DbSession, caller: Caller
) -> OrderOut:
    """Mark an order of a manual provider paid, with the transfer's reference (admins)."""
    order = await orders.mark_paid(
        get_context(request),
        session,
        order_id,
        data.reference,
        caller,
        request_id=claimed_key(request),
    )
    return OrderOut.of(order, items=await _items(session, order))


@router.post("/orders/{order_id}/cancel", dependencies=[IDEMPOTENT])
async def cancel_order(
    order_id: IdPath, request: Request, session: DbSession, caller: Caller
) -> OrderOut:
    """Cancel an unpaid order (its buyer or an admin); an authorized hold is voided."""
    order = await orders.cancel(
        get_context(request), session, order_id, caller, request_id=claimed_key(request)
    )
    return OrderOut.of(order, items=await _items(session, order))


@router.post(
    "/orders/{order_id}/refunds",
    status_code=201,
    dependencies=[IDEMPOTENT_REQUIRED],
    openapi_extra=requires_scopes("payments:refund"),
)
async def refund_order(
    order_id: IdPath, data: RefundIn, request: Request, session: DbSession, caller: Caller
) -> RefundOut:
    """Refund all or part of a paid order, never more than is left (``payments:refund``)."""
    order, row = await refunds.refund(
        get_context(request),
        session,
        order_id,
        amount_text=data.amount,
        reason=data.reason,
        reference=data.reference,
        caller=caller,
        request_id=claimed_key(request),
    )
    return RefundOut(
        order=OrderSummary.of(order), transaction=TransactionOut.of(row, order.currency)
    )
