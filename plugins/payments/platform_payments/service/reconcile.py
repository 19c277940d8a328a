"""The reconcile job: orders stuck waiting are brought in line with their provider.

For every open order with a provider: a capture the provider completed (or declined)
moves the order; a capture that failed for a transient reason is retried with the request
id of the failed attempt (so the provider de-duplicates), up to ``capture_retries``
times; an approved order nobody captured within ``capture_approved_after_minutes`` is
captured; an order never approved expires after ``expire_unapproved_after_minutes`` (manual
ones after ``manual_expire_after_days``, ``created`` ones too). Each order is handled in its
own transaction on its locked row; one that moved meanwhile is skipped.

Then every pending refund is polled (providers implementing ``fetch_refund``, PayPal's
``GET /v2/payments/refunds/{id}``): a completed one moves its order to
``partially_refunded``/``refunded``, a failed or cancelled one releases its reservation
(:func:`platform_payments.service.refunds.settle`).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import PlatformContext, lock_row, utcnow
from platform_payments import events, states
from platform_payments.models import Order, Transaction
from platform_payments.providers.base import (
    ProviderError,
    ProviderResult,
    RefundStatusProvider,
)
from platform_payments.service import refunds
from platform_payments.service.common import emit, snapshot
from platform_payments.service.orders import apply_capture, run_capture
from platform_payments.service.providers import registry
from platform_payments.settings import PaymentsSettings

log = logging.getLogger("platform_payments.reconcile")
ACTOR = "reconcile"


async def reconcile(ctx: PlatformContext, settings: PaymentsSettings) -> dict[str, int]:
    """One pass over every open order; returns counts of what happened."""
    async with ctx.db.session() as session:
        ids = list(
            await session.scalars(
                select(Order.id).where(Order.status.in_(states.OPEN)).order_by(Order.id)
            )
        )
    tally: Counter[str] = Counter()
    for order_id in ids:
        try:
            async with ctx.db.session() as session:
                tally[await _one(ctx, session, order_id, settings)] += 1
        except ProviderError as exc:
            tally["provider_error"] += 1
            log.warning("reconcile: provider error", extra={"order_id": order_id, "why": str(exc)})
        except Exception as exc:  # one order never stops the pass; reported in the counts
            tally["error"] += 1
            log.warning("reconcile: failed", extra={"order_id": order_id, "why": repr(exc)})
    await _poll_refunds(ctx, tally)
    return dict(tally)


async def _poll_refunds(ctx: PlatformContext, tally: Counter[str]) -> None:
    async with ctx.db.session() as session:
        pending = list(
            await session.execute(
                select(Transaction.id, Transaction.order_id)
                .where(Transaction.kind == "refund", Transaction.status == "pending")
                .order_by(Transaction.id)
            )
        )
    for tx_id, order_id in pending:
        try:
            async with ctx.db.session() as session:
                tally[await _one_refund(ctx, session, tx_id, order_id)] += 1
        except ProviderError as exc:
            tally["provider_error"] += 1
            log.warning("reconcile: refund poll failed", extra={"tx": tx_id, "why": str(exc)})
        except Exception as exc:  # one refund never stops the pass; reported in the counts
            tally["error"] += 1
            log.warning("reconcile: refund failed", extra={"tx": tx_id, "why": repr(exc)})


async def _one_refund(
    ctx: PlatformContext, session: AsyncSession, tx_id: int, order_id: int
) -> str:
    order = await lock_row(session, Order, order_id)
    tx = await session.get(Transaction, tx_id)
    if order is None or tx is None or tx.status != "pending" or not tx.provider_ref:
        return "skipped"
    provider = registry(ctx).get(tx.provider)
    if not isinstance(provider, RefundStatusProvider):
        return "refund_unpolled"  # left to the provider's webhooks
    result = await provider.fetch_refund(await snapshot(session, order), tx.provider_ref)
    outcome = await refunds.settle(
        session, order, tx, result.outcome, ACTOR, answer=result.answer, reason=result.reason
    )
    return f"refund_{outcome}"


def _expire(session: AsyncSession, order: Order) -> str:
    states.move(order, states.EXPIRED)
    emit(session, events.OrderExpired, order, ACTOR)
    return "expired"


async def _one(
    ctx: PlatformContext, session: AsyncSession, order_id: int, s: PaymentsSettings
) -> str:
    order = await lock_row(session, Order, order_id)
    if order is None or order.status not in states.OPEN:
        return "skipped"
    now = utcnow()
    unapproved_deadline = order.created_at + timedelta(minutes=s.expire_unapproved_after_minutes)
    provider = registry(ctx).get(order.provider or "")
    if provider is None:
        return _expire(session, order) if now >= unapproved_deadline else "waiting"
    if provider.manual:
        deadline = order.created_at + timedelta(days=s.manual_expire_after_days)
        return _expire(session, order) if now >= deadline else "waiting"
    status = await provider.fetch_status(await snapshot(session, order))
    if status.state == "captured":
        result = ProviderResult(
            "completed", status.capture_ref, status.amount_minor or order.total_minor, status.answer
        )
        await apply_capture(session, order, result, provider.name, None, ACTOR)
        return "paid"
    if status.state == "declined":
        result = ProviderResult("declined", status.capture_ref, order.total_minor, status.answer)
        await apply_capture(session, order, result, provider.name, None, ACTOR)
        return "failed"
    if status.state == "voided":
        states.move(order, states.FAILED, failure_reason="voided at the provider")
        emit(session, events.OrderFailed, order, ACTOR, reason="voided at the provider")
        return "failed"
    if status.state == "approved":
        failed = await session.scalar(
            select(Transaction)
            .where(
                Transaction.order_id == order.id,
                Transaction.kind == "capture",
                Transaction.status == "error",
            )
            .order_by(Transaction.id.desc())
            .limit(1)
        )
        if failed is not None and order.capture_attempts <= s.capture_retries:
            failed.status = "retried"
            await run_capture(session, order, provider, failed.request_id, ACTOR)
            return "captured" if order.status == states.PAID else "capture_retried"
        abandoned = order.updated_at + timedelta(minutes=s.capture_approved_after_minutes)
        if failed is None and order.capture_attempts == 0 and now >= abandoned:
            # the payer approved but never came back to capture: take the money they approved
            await run_capture(session, order, provider, f"reconcile-capture-{order.id}", ACTOR)
            return "captured" if order.status == states.PAID else "capture_started"
        return "approved"
    if status.state == "awaiting" and now >= unapproved_deadline:
        return _expire(session, order)
    return "waiting"
