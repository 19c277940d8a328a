"""What the service areas share: access rules, order snapshots, transaction rows, events."""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    NotFound,
    Principal,
    ServiceUnavailable,
    lock_row,
    publish,
    utcnow,
)
from platform_payments import events
from platform_payments.models import LineItem, Order, Transaction
from platform_payments.money import format_amount
from platform_payments.providers.base import ProviderError, ProviderOrder, redact

ADMIN_SCOPE = "payments:admin"
REFUND_SCOPE = "payments:refund"


def sees_all(caller: Principal | None) -> bool:
    """Whether the caller may see and act on every buyer's orders (``None``: the platform)."""
    return caller is None or ADMIN_SCOPE in caller.scopes


def _visible(order: Order | None, caller: Principal | None, order_id: int) -> Order:
    if order is None or not (sees_all(caller) or (caller and order.buyer_id == caller.user_id)):
        raise NotFound(f"order {order_id} not found")
    return order


async def get_order(session: AsyncSession, order_id: int, caller: Principal | None) -> Order:
    """The order, when the caller may see it (its buyer, or an admin); 404 otherwise."""
    return _visible(await session.get(Order, order_id), caller, order_id)


async def locked_order(session: AsyncSession, order_id: int, caller: Principal | None) -> Order:
    """The order, locked until the transaction ends, when the caller may see it."""
    return _visible(await lock_row(session, Order, order_id), caller, order_id)


async def description(session: AsyncSession, order: Order) -> str:
    """A one-line description of the order for providers: its first line item, and more."""
    items = list(
        await session.scalars(
            select(LineItem.description).where(LineItem.order_id == order.id).limit(2)
        )
    )
    text = items[0] if items else f"order {order.id}"
    return text + (" and more" if len(items) > 1 else "")


async def snapshot(session: AsyncSession, order: Order) -> ProviderOrder:
    """The order as providers see it."""
    return ProviderOrder(
        id=order.id,
        currency=order.currency,
        total_minor=order.total_minor,
        captured_minor=order.captured_minor,
        refunded_minor=order.refunded_minor,
        status=order.status,
        provider_order_id=order.provider_order_id,
        description=await description(session, order),
        buyer_id=order.buyer_id,
    )


def record(
    session: AsyncSession,
    order: Order,
    *,
    kind: str,
    status: str,
    amount_minor: int,
    provider: str,
    provider_ref: str | None = None,
    request_id: str | None = None,
    answer: Any = None,
    reason: str | None = None,
    actor: str | None = None,
) -> Transaction:
    """Add a transaction row (the provider's answer redacted) to the session."""
    row = Transaction(
        order_id=order.id,
        kind=kind,
        status=status,
        amount_minor=amount_minor,
        provider=provider,
        provider_ref=provider_ref,
        request_id=request_id,
        reason=reason,
        actor=actor,
        response=redact(dict(answer)) if answer else None,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(row)
    return row


def _base(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "buyer_id": order.buyer_id,
        "subject_plugin": order.subject_plugin,
        "subject_kind": order.subject_kind,
        "subject_id": order.subject_id,
        "currency": order.currency,
        "total": format_amount(order.total_minor, order.currency),
        "provider": order.provider,
    }


def emit(
    session: AsyncSession,
    event: type[events.OrderEvent],
    order: Order,
    actor: str | None,
    **extra: Any,
) -> None:
    """Publish an order event in the session's transaction."""
    publish(session, event(**_base(order), **extra), actor=actor)


def amount(order: Order, minor: int) -> str:
    """``minor`` units of the order's currency as decimal text."""
    return format_amount(minor, order.currency)


def actor_of(caller: Principal | None) -> str:
    """How a caller is named in transactions and events."""
    return caller.username if caller is not None else "system"


async def provider_failed(
    session: AsyncSession,
    order: Order,
    provider: str,
    kind: str,
    exc: ProviderError,
    request_id: str | None,
    actor: str,
    amount_minor: int | None = None,
) -> NoReturn:
    """Record a failed provider call and commit it; raise 503 for a transient failure (the
    reconcile job or the client's retry with the same key runs it again), 409 otherwise."""
    status = "error" if exc.transient else "failed"
    record(
        session,
        order,
        kind=kind,
        status=status,
        amount_minor=order.total_minor if amount_minor is None else amount_minor,
        provider=provider,
        request_id=request_id,
        answer=exc.answer if isinstance(exc.answer, dict) else None,
        reason=str(exc),
        actor=actor,
    )
    if exc.transient:
        await session.commit()  # keep the attempt: the reconcile job retries it
        raise ServiceUnavailable(f"{provider} is unavailable ({exc}); retry later")
    await session.commit()
    raise Conflict(f"{provider} refused: {exc}", current_state=order.status)
