"""Refunds, full or partial, never more than was captured, under any concurrency.

A refund locks the order's row first, so concurrent refunds of one order run one after
the other and each sees what the previous ones refunded: the refunded total (completed and
pending refunds, and reversals) never exceeds the captured amount.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, PlatformContext, Principal
from platform_payments import events, states
from platform_payments.models import Order, Transaction
from platform_payments.providers.base import ProviderError
from platform_payments.service.common import (
    actor_of,
    amount,
    emit,
    locked_order,
    provider_failed,
    record,
    snapshot,
)
from platform_payments.service.orders import check_amount_text
from platform_payments.service.providers import get_provider


async def capture_ref(session: AsyncSession, order: Order) -> str:
    """The reference of the order's completed capture; 409 when it has none."""
    ref = await session.scalar(
        select(Transaction.provider_ref)
        .where(
            Transaction.order_id == order.id,
            Transaction.kind == "capture",
            Transaction.status == "completed",
        )
        .order_by(Transaction.id.desc())
        .limit(1)
    )
    if not ref:
        raise Conflict(f"order {order.id} has no completed capture", current_state=order.status)
    return str(ref)


def apply_refund(
    session: AsyncSession, order: Order, refunded_now: int, reason: str, actor: str
) -> None:
    """Count ``refunded_now`` on a locked order, move it and publish the refund."""
    total = order.refunded_minor + refunded_now
    full = total >= order.captured_minor
    states.move(order, states.REFUNDED if full else states.PARTIALLY_REFUNDED, refunded_minor=total)
    emit(
        session,
        events.OrderRefunded,
        order,
        actor,
        amount=amount(order, refunded_now),
        refunded=amount(order, total),
        full=full,
        reason=reason,
    )


async def refund(
    ctx: PlatformContext,
    session: AsyncSession,
    order_id: int,
    *,
    amount_text: str | None,
    reason: str,
    reference: str | None,
    caller: Principal | None,
    request_id: str | None,
) -> tuple[Order, Transaction]:
    """Refund ``amount_text`` (default: all that is left) of a paid order.

    422 naming ``amount`` for a bad amount; 409 naming the state when the order is not paid
    or the amount exceeds what is left to refund; 503 after a transient provider failure.
    """
    order = await locked_order(session, order_id, caller)
    states.check(order, states.REFUNDED)
    left = order.captured_minor - order.refunded_minor
    minor = (
        left if amount_text is None else check_amount_text(amount_text, order.currency, "amount")
    )
    if minor > left:
        raise Conflict(
            f"a refund of {amount(order, minor)} {order.currency} exceeds the "
            f"{amount(order, left)} {order.currency} left to refund on order {order.id}",
            current_state=order.status,
        )
    assert order.provider is not None
    provider = get_provider(ctx, order.provider)
    ref = await capture_ref(session, order)
    actor = actor_of(caller)
    try:
        result = await provider.refund(
            await snapshot(session, order), ref, minor, reason, request_id=request_id
        )
    except ProviderError as exc:
        await provider_failed(
            session, order, provider.name, "refund", exc, request_id, actor, amount_minor=minor
        )
    row = record(
        session,
        order,
        kind="refund",
        status=result.outcome,
        amount_minor=minor,
        provider=provider.name,
        provider_ref=result.provider_ref or reference,
        request_id=request_id,
        answer=result.answer,
        reason=reason,
        actor=actor,
    )
    if result.outcome in ("completed", "pending"):
        apply_refund(session, order, minor, reason, actor)
    await session.flush()
    if result.outcome not in ("completed", "pending"):
        await session.commit()
        raise Conflict(
            f"{provider.name} refused the refund ({result.outcome})", current_state=order.status
        )
    return order, row
