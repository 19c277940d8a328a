"""Orders: create, list, start a payment, capture, mark paid (manual), cancel.

Every move of an order happens on its locked row (``locked_order``) through
:mod:`platform_payments.states`, so concurrent requests serialize on the order: 20
concurrent captures of one order call the provider once, the others get a 409 naming the
state the first left. A provider call that fails for a transient reason is recorded (a
transaction with status ``error``), committed, and answered 503; the reconcile job retries it
with the same request id.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    PlatformContext,
    Principal,
    invalid,
    page_by_id,
    utcnow,
)
from platform_payments import events, states
from platform_payments.models import LineItem, Order, Transaction
from platform_payments.money import MAX_MINOR, MoneyError, exponent, to_minor
from platform_payments.providers.base import ProviderError, ProviderResult, redact
from platform_payments.service.common import (
    actor_of,
    amount,
    emit,
    get_order,
    locked_order,
    provider_failed,
    record,
    sees_all,
    snapshot,
)
from platform_payments.service.providers import get_provider, ready_provider


@dataclass(frozen=True)
class NewItem:
    """A line item as given: description, quantity, unit price (a decimal)."""

    description: str
    quantity: int
    unit_price: Decimal | str


@dataclass(frozen=True)
class NewOrder:
    """An order as given: currency, items and what it pays for."""

    currency: str
    items: list[NewItem]
    subject_plugin: str
    subject_kind: str
    subject_id: str


def validate(data: NewOrder, *, max_items: int) -> tuple[list[int], int]:
    """Unit prices in minor units and the total; 422 naming the field that is wrong."""
    try:
        exponent(data.currency)
    except MoneyError as exc:
        raise invalid("currency", str(exc), location="body") from None
    if not data.items:
        raise invalid("items", "must list at least one item", location="body")
    if len(data.items) > max_items:
        raise invalid("items", f"must list at most {max_items} items", location="body")
    units = []
    total = 0
    for i, item in enumerate(data.items):
        try:
            unit = to_minor(item.unit_price, data.currency)
        except MoneyError as exc:
            raise invalid(f"items.{i}.unit_price", str(exc), location="body") from None
        units.append(unit)
        total += unit * item.quantity
        if total > MAX_MINOR:
            raise invalid("items", "the total is too large", location="body")
    return units, total


async def create_order(
    session: AsyncSession,
    buyer_id: int,
    data: NewOrder,
    *,
    max_items: int,
    actor: str,
) -> Order:
    """A new order in ``created`` for ``buyer_id``; publishes ``payments.order.created``."""
    units, total = validate(data, max_items=max_items)
    now = utcnow()
    order = Order(
        buyer_id=buyer_id,
        subject_plugin=data.subject_plugin,
        subject_kind=data.subject_kind,
        subject_id=data.subject_id,
        currency=data.currency,
        total_minor=total,
        captured_minor=0,
        refunded_minor=0,
        refund_pending_minor=0,
        status=states.CREATED,
        capture_attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    await session.flush()
    session.add_all(
        LineItem(
            order_id=order.id,
            position=i,
            description=item.description,
            quantity=item.quantity,
            unit_minor=unit,
        )
        for i, (item, unit) in enumerate(zip(data.items, units, strict=True))
    )
    emit(session, events.OrderCreated, order, actor)
    await session.flush()
    return order


async def line_items(session: AsyncSession, order_id: int) -> list[LineItem]:
    """The order's line items in their order."""
    return list(
        await session.scalars(
            select(LineItem).where(LineItem.order_id == order_id).order_by(LineItem.position)
        )
    )


async def transactions(session: AsyncSession, order_id: int) -> list[Transaction]:
    """The order's transactions, oldest first."""
    return list(
        await session.scalars(
            select(Transaction).where(Transaction.order_id == order_id).order_by(Transaction.id)
        )
    )


async def list_orders(
    session: AsyncSession,
    caller: Principal | None,
    *,
    status: str | None = None,
    buyer_id: int | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> tuple[list[Order], int | None]:
    """A page of orders, newest first: the caller's own, or any buyer's for an admin."""
    stmt: Select[Any] = select(Order)
    if not sees_all(caller):
        assert caller is not None
        stmt = stmt.where(Order.buyer_id == caller.user_id)
    elif buyer_id is not None:
        stmt = stmt.where(Order.buyer_id == buyer_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    rows, nxt = await page_by_id(
        session, stmt, Order.id, cursor=cursor, limit=limit, descending=True
    )
    return list(rows), nxt


async def start_payment(
    ctx: PlatformContext,
    session: AsyncSession,
    order_id: int,
    provider_name: str,
    caller: Principal,
    *,
    request_id: str | None,
) -> tuple[Order, str | None]:
    """Start paying a ``created`` order with a provider; returns it and the instructions.

    The provider either needs the payer (``pending``, with an approval URL or instructions)
    or answers at once (``paid``, ``failed``). 409 when the provider is not configured or
    the order is not ``created``.
    """
    provider = ready_provider(ctx, provider_name)
    order = await locked_order(session, order_id, caller)
    states.check(order, states.PENDING)
    view = await snapshot(session, order)
    actor = actor_of(caller)
    try:
        started = await provider.start(view, request_id=request_id)
    except ProviderError as exc:
        await provider_failed(session, order, provider_name, "start", exc, request_id, actor)
    order.provider = provider_name
    order.provider_order_id = started.provider_order_id
    order.approval_url = started.approval_url
    if started.outcome is None:
        record(
            session,
            order,
            kind="start",
            status="pending",
            amount_minor=order.total_minor,
            provider=provider_name,
            provider_ref=started.provider_order_id,
            request_id=request_id,
            answer=started.answer,
            actor=actor,
        )
        states.move(order, states.PENDING)
        return order, started.instructions
    if started.outcome == "authorized":
        record(
            session,
            order,
            kind="authorize",
            status="completed",
            amount_minor=order.total_minor,
            provider=provider_name,
            provider_ref=started.capture_ref,
            request_id=request_id,
            answer=started.answer,
            actor=actor,
        )
        states.move(order, states.AUTHORIZED)
        return order, started.instructions
    result = ProviderResult(started.outcome, started.capture_ref, order.total_minor, started.answer)
    await apply_capture(session, order, result, provider_name, request_id, actor)
    return order, started.instructions


_CAPTURE_BY_REF = select(Transaction).where(  # built once: building it cost as much as running it
    Transaction.order_id == bindparam("order_id"),
    Transaction.kind == "capture",
    Transaction.provider_ref == bindparam("provider_ref"),
)


async def apply_capture(
    session: AsyncSession,
    order: Order,
    result: ProviderResult,
    provider: str,
    request_id: str | None,
    actor: str,
) -> None:
    """Apply a capture's outcome to a locked order: paid, still pending, or failed.

    Idempotent on the capture's reference: a capture already recorded as completed (our
    own call and the provider's webhook both report it) changes nothing the second time.
    """
    existing = None
    if result.provider_ref:
        existing = await session.scalar(
            _CAPTURE_BY_REF, {"order_id": order.id, "provider_ref": result.provider_ref}
        )
    if existing is not None and existing.status == "completed":
        return
    if existing is not None:
        existing.status = result.outcome
        existing.updated_at = utcnow()
        if result.answer:
            existing.response = redact(dict(result.answer))
    else:
        record(
            session,
            order,
            kind="capture",
            status=result.outcome,
            amount_minor=result.amount_minor or order.total_minor,
            provider=provider,
            provider_ref=result.provider_ref,
            request_id=request_id,
            answer=result.answer,
            reason=result.reason,
            actor=actor,
        )
    if result.outcome == "completed":
        captured = result.amount_minor or order.total_minor
        states.move(order, states.PAID, captured_minor=captured, failure_reason=None)
        emit(
            session,
            events.OrderPaid,
            order,
            actor,
            captured=amount(order, captured),
            reference=result.provider_ref,
        )
    elif result.outcome in ("declined", "failed"):
        reason = f"capture {result.outcome}" + (f": {result.reason}" if result.reason else "")
        states.move(order, states.FAILED, failure_reason=reason)
        emit(session, events.OrderFailed, order, actor, reason=reason)
    elif order.status == states.CREATED:
        states.move(order, states.PENDING)
    await session.flush()


async def capture(
    ctx: PlatformContext,
    session: AsyncSession,
    order_id: int,
    caller: Principal | None,
    *,
    request_id: str | None,
) -> Order:
    """Capture the approved payment of a ``pending`` or ``authorized`` order (once).

    409 naming the state when the order is elsewhere, or when a capture is already pending
    at the provider; 503 after a transient provider failure (recorded, retried later).
    """
    order = await locked_order(session, order_id, caller)
    states.check(order, states.PAID)
    if not order.provider:
        raise Conflict(f"order {order.id} has no payment started", current_state=order.status)
    provider = get_provider(ctx, order.provider)
    if provider.manual:
        raise Conflict(
            f"order {order.id} is paid by {order.provider}: an admin marks it paid",
            current_state=order.status,
        )
    pending = await session.scalar(
        select(Transaction.id).where(
            Transaction.order_id == order.id,
            Transaction.kind == "capture",
            Transaction.status == "pending",
        )
    )
    if pending is not None:
        raise Conflict(
            f"order {order.id} has a capture pending at {order.provider}",
            current_state=order.status,
        )
    return await run_capture(session, order, provider, request_id, actor_of(caller))


async def run_capture(
    session: AsyncSession, order: Order, provider: Any, request_id: str | None, actor: str
) -> Order:
    """Call the provider's capture for a locked order and apply the outcome."""
    order.capture_attempts += 1
    view = await snapshot(session, order)
    try:
        result = await provider.capture(view, request_id=request_id)
    except ProviderError as exc:
        await provider_failed(session, order, provider.name, "capture", exc, request_id, actor)
    await apply_capture(session, order, result, provider.name, request_id, actor)
    return order


async def mark_paid(
    ctx: PlatformContext,
    session: AsyncSession,
    order_id: int,
    reference: str,
    caller: Principal,
    *,
    request_id: str | None,
) -> Order:
    """An admin marks an order of a manual provider paid, with the transfer's reference."""
    order = await locked_order(session, order_id, caller)
    states.check(order, states.PAID)
    if order.provider is None:
        raise Conflict(f"order {order.id} has no payment started", current_state=order.status)
    if not get_provider(ctx, order.provider).manual:
        raise Conflict(
            f"order {order.id} is paid through {order.provider}, not marked paid by hand",
            current_state=order.status,
        )
    result = ProviderResult("completed", reference, order.total_minor, {"reference": reference})
    await apply_capture(session, order, result, order.provider, request_id, actor_of(caller))
    return order


async def cancel(
    ctx: PlatformContext,
    session: AsyncSession,
    order_id: int,
    caller: Principal,
    *,
    request_id: str | None = None,
) -> Order:
    """Cancel an unpaid order (its buyer or an admin); 409 naming the state otherwise.

    An ``authorized`` order's hold is voided at its provider first.
    """
    order = await locked_order(session, order_id, caller)
    states.check(order, states.CANCELLED)
    if order.status == states.AUTHORIZED and order.provider:
        provider = get_provider(ctx, order.provider)
        actor = actor_of(caller)
        try:
            result = await provider.void(await snapshot(session, order), request_id=request_id)
        except ProviderError as exc:
            await provider_failed(session, order, provider.name, "void", exc, request_id, actor)
        record(
            session,
            order,
            kind="void",
            status=result.outcome,
            amount_minor=order.total_minor,
            provider=provider.name,
            provider_ref=result.provider_ref,
            request_id=request_id,
            answer=result.answer,
            actor=actor,
        )
    states.move(order, states.CANCELLED)
    emit(session, events.OrderCancelled, order, actor_of(caller))
    await session.flush()
    return order


async def state_of(session: AsyncSession, order_id: int) -> Order:
    """The order by id, for the platform (no caller check); 404 when missing."""
    return await get_order(session, order_id, None)


def check_amount_text(value: Any, currency: str, field: str) -> int:
    """A decimal amount in minor units; 422 naming ``field`` when it is not a valid amount."""
    try:
        return to_minor(value, currency)
    except MoneyError as exc:
        raise invalid(field, str(exc), location="body") from None
