"""Refunds, full or partial, never more than was captured, under any concurrency.

A refund locks the order's row first, so concurrent refunds of one order run one after
the other and each sees what the previous ones refunded or reserved: the refunded total
(completed refunds and reversals) plus the reserved one (pending refunds) never exceeds the
captured amount.

A refund the provider answers ``pending`` is recorded as a pending transaction and reserves
its amount (``Order.refund_pending_minor``); the order becomes ``partially_refunded`` or
``refunded`` only when the refund completes (the reconcile job polls it; the provider's
refund webhook completes it too). A pending refund that fails or is cancelled releases its
reservation, keeps its transaction (``failed``/``cancelled``) and publishes
``payments.order.refund_failed``. :func:`settle` is the one place a pending refund ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, PlatformContext, Principal, utcnow
from platform_payments import events, states
from platform_payments.models import Order, Transaction
from platform_payments.providers.base import ProviderError, redact
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


def refundable(order: Order) -> int:
    """What may still be refunded: captured minus refunded minus reserved by pending refunds."""
    return order.captured_minor - order.refunded_minor - order.refund_pending_minor


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
    actor: str | None = None,
) -> tuple[Order, Transaction]:
    """Refund ``amount_text`` (default: all that is left) of a paid order.

    ``actor`` names who refunds in the transaction and events (default: the caller's
    username, or ``system``). A ``pending`` answer reserves the amount; the order moves when
    the refund completes (:func:`settle`).

    422 naming ``amount`` for a bad amount; 409 naming the state when the order is not paid
    or the amount exceeds what is left to refund; 503 after a transient provider failure.
    """
    order = await locked_order(session, order_id, caller)
    states.check(order, states.REFUNDED)
    left = refundable(order)
    if left <= 0:
        raise Conflict(
            f"nothing is left to refund on order {order.id} "
            f"({amount(order, order.refund_pending_minor)} {order.currency} pending)",
            current_state=order.status,
        )
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
    actor = actor or actor_of(caller)
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
    if result.outcome == "completed":
        apply_refund(session, order, minor, reason, actor)
    elif result.outcome == "pending":
        order.refund_pending_minor += minor  # reserved until the provider completes it
        order.updated_at = utcnow()
    await session.flush()
    if result.outcome not in ("completed", "pending"):
        await session.commit()
        raise Conflict(
            f"{provider.name} refused the refund ({result.outcome})", current_state=order.status
        )
    return order, row


FINAL_REFUND = ("completed", "failed", "cancelled")


async def settle(
    session: AsyncSession,
    order: Order,
    tx: Transaction,
    outcome: str,
    actor: str,
    *,
    answer: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> str:
    """End the pending refund ``tx`` of the locked ``order`` with the provider's ``outcome``.

    ``completed`` counts it as refunded and moves the order; ``failed``/``cancelled``
    release its reservation and publish ``payments.order.refund_failed``; ``pending``
    changes nothing. Idempotent: a refund no longer pending answers ``no_change``.
    Returns ``completed``, ``failed``, ``cancelled``, ``pending`` or ``no_change``.
    """
    if tx.kind != "refund" or tx.status != "pending":
        return "no_change"
    if outcome not in FINAL_REFUND:
        return "pending"
    order.refund_pending_minor = max(order.refund_pending_minor - tx.amount_minor, 0)
    tx.status = outcome
    tx.updated_at = utcnow()
    if answer:
        tx.response = redact(dict(answer))
    if outcome == "completed":
        apply_refund(session, order, tx.amount_minor, tx.reason or "", actor)
    else:
        order.updated_at = utcnow()
        why = reason or f"the provider reported the refund {outcome}"
        emit(
            session,
            events.OrderRefundFailed,
            order,
            actor,
            amount=amount(order, tx.amount_minor),
            status=outcome,
            refund_ref=tx.provider_ref,
            reason=why,
        )
    return outcome


async def pending_refund(session: AsyncSession, order_id: int, ref: str) -> Transaction | None:
    """The pending refund of the order with provider reference ``ref``, if any."""
    row: Transaction | None = await session.scalar(
        select(Transaction).where(
            Transaction.order_id == order_id,
            Transaction.kind == "refund",
            Transaction.provider_ref == ref,
            Transaction.status == "pending",
        )
    )
    return row
