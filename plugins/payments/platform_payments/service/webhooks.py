"""Incoming provider webhooks: verified, stored once per delivery, applied in any order.

A delivery is verified by its provider (a bad signature is a 400 and changes nothing),
stored under its transmission id (a second delivery with that id changes nothing), then
applied to its order on the order's locked row. An event that cannot apply yet (a refund
of an order not yet paid here) is answered 503 and not stored, so the provider delivers it
again later; unknown events are stored and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    BadRequest,
    PlatformContext,
    ServiceUnavailable,
    dialect_of,
    insert_ignoring,
    lock_row,
    utcnow,
)
from platform_payments import events, states
from platform_payments.models import Order, Transaction, WebhookDelivery
from platform_payments.providers.base import (
    ProviderError,
    ProviderResult,
    WebhookEvent,
    WebhookRejected,
)
from platform_payments.service.common import emit, record
from platform_payments.service.orders import apply_capture
from platform_payments.service.providers import get_provider
from platform_payments.service.refunds import apply_refund, pending_refund, refundable, settle

log = logging.getLogger("platform_payments.webhooks")
ACTOR = "webhook"


async def receive(
    ctx: PlatformContext,
    session: AsyncSession,
    provider_name: str,
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[str, str]:
    """Verify, store and apply one delivery; returns ``(delivery id, outcome)``.

    Outcomes: ``applied``, ``duplicate`` (this delivery was handled before), ``no_change``
    (the order is already there), ``ignored`` (unknown event or order), ``illegal`` (the
    event does not fit the order's state; stored, nothing moves).
    """
    provider = get_provider(ctx, provider_name)
    try:
        event = await provider.parse_webhook(headers, body)
    except WebhookRejected as exc:
        log.warning("rejected a webhook", extra={"provider": provider_name, "why": str(exc)})
        raise BadRequest(f"webhook rejected: {exc}") from None
    except ProviderError as exc:
        raise ServiceUnavailable(f"cannot verify the webhook now: {exc}") from None
    inserted = await session.execute(
        _insert_delivery(session),
        {
            "provider": provider_name,
            "delivery_id": event.delivery_id[:128],
            "event_type": event.event_type[:128],
            "resource_id": (event.capture_ref or event.provider_order_id or None),
            "outcome": "ignored" if event.action == "ignored" else "received",
            "payload": dict(event.payload),
            "received_at": utcnow(),
        },
    )
    delivery_id = inserted.scalar()
    if delivery_id is None:
        return event.delivery_id, "duplicate"
    if event.action == "ignored":
        return event.delivery_id, "ignored"
    order_id, outcome = await _apply(session, provider_name, event)
    await session.execute(
        _SET_OUTCOME, {"row_id": delivery_id, "new_outcome": outcome, "new_order_id": order_id}
    )
    return event.delivery_id, outcome


_DELIVERIES = cast(Table, WebhookDelivery.__table__)
_INSERTS: dict[str, Any] = {}
# Statements a delivery runs, built once: building one per delivery cost about as much as
# sending it. Core statements on the table, not ORM ones: the ORM's bulk insert and update
# paths cost more than the statements themselves. Values are bound at execute.
_SET_OUTCOME = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("row_id"))
    .values(outcome=bindparam("new_outcome"), order_id=bindparam("new_order_id"))
)
_LOCK_ORDER_BY_PROVIDER_ID = (  # PostgreSQL: find and lock in one statement
    select(Order)
    .where(
        Order.provider == bindparam("provider"),
        Order.provider_order_id == bindparam("provider_order_id"),
    )
    .with_for_update()
    .execution_options(populate_existing=True)
)


def _insert_delivery(session: AsyncSession) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` of a delivery, built once per
    dialect; values bound at execute."""
    dialect = dialect_of(session)
    stmt = _INSERTS.get(dialect)
    if stmt is None:
        stmt = insert_ignoring(
            session, _DELIVERIES, index_elements=["provider", "delivery_id"]
        ).returning(_DELIVERIES.c.id)
        _INSERTS[dialect] = stmt
    return stmt


async def _find_order(session: AsyncSession, provider: str, event: WebhookEvent) -> Order | None:
    order_id = None
    if event.provider_order_id and dialect_of(session) == "postgresql":
        # find and lock in one statement (SELECT ... FOR UPDATE, the current row)
        found: Order | None = await session.scalar(
            _LOCK_ORDER_BY_PROVIDER_ID,
            {"provider": provider, "provider_order_id": event.provider_order_id},
        )
        if found is not None:
            return found
    elif event.provider_order_id:
        order_id = await session.scalar(
            select(Order.id).where(
                Order.provider == provider, Order.provider_order_id == event.provider_order_id
            )
        )
    if order_id is None and event.capture_ref:
        order_id = await session.scalar(
            select(Transaction.order_id).where(
                Transaction.provider == provider,
                Transaction.kind == "capture",
                Transaction.provider_ref == event.capture_ref,
            )
        )
    if order_id is None:
        return None
    return await lock_row(session, Order, order_id)


async def _apply(
    session: AsyncSession, provider: str, event: WebhookEvent
) -> tuple[int | None, str]:
    if event.action == "ignored":
        return None, "ignored"
    order = await _find_order(session, provider, event)
    if order is None:
        return None, "ignored"
    handler = _HANDLERS.get(event.action)
    if handler is None:
        return order.id, "ignored"
    if event.currency is not None and event.currency != order.currency:
        return order.id, "illegal"  # not this order's money: stored for a human to look at
    return order.id, await handler(session, order, provider, event)


async def _captured(session: AsyncSession, order: Order, provider: str, e: WebhookEvent) -> str:
    if order.status in states.CAPTURED:
        return "no_change"  # our own capture call got there first
    if states.PAID not in states.TRANSITIONS[order.status]:
        return "illegal"
    result = ProviderResult("completed", e.capture_ref, e.amount_minor or order.total_minor, {})
    await apply_capture(session, order, result, provider, None, ACTOR)
    return "applied"


async def _capture_pending(
    session: AsyncSession, order: Order, provider: str, e: WebhookEvent
) -> str:
    if order.status not in states.OPEN:
        return "no_change"
    result = ProviderResult("pending", e.capture_ref, e.amount_minor or order.total_minor, {})
    await apply_capture(session, order, result, provider, None, ACTOR)
    return "applied"


async def _fail(order: Order, session: AsyncSession, reason: str) -> str:
    if order.status == states.FAILED:
        return "no_change"
    if states.FAILED not in states.TRANSITIONS[order.status]:
        return "illegal"
    states.move(order, states.FAILED, failure_reason=reason)
    emit(session, events.OrderFailed, order, ACTOR, reason=reason)
    return "applied"


async def _denied(session: AsyncSession, order: Order, provider: str, e: WebhookEvent) -> str:
    if e.capture_ref:
        pending = await session.scalar(
            select(Transaction).where(
                Transaction.order_id == order.id,
                Transaction.kind == "capture",
                Transaction.provider_ref == e.capture_ref,
            )
        )
        if pending is not None and pending.status != "declined":
            pending.status = "declined"
            pending.updated_at = utcnow()
    return await _fail(order, session, "the capture was denied")


async def _approval_reversed(
    session: AsyncSession, order: Order, provider: str, e: WebhookEvent
) -> str:
    return await _fail(order, session, "the payer's approval was reversed")


async def _already(session: AsyncSession, order_id: int, provider: str, ref: str | None) -> bool:
    if not ref:
        return False
    found = await session.scalar(
        select(Transaction.id).where(
            Transaction.order_id == order_id,
            Transaction.provider == provider,
            Transaction.provider_ref == ref,
            or_(Transaction.kind == "refund", Transaction.kind == "reversal"),
        )
    )
    return found is not None


async def _refunded(session: AsyncSession, order: Order, provider: str, e: WebhookEvent) -> str:
    status = e.refund_status or "completed"
    if e.refund_ref:
        pending = await pending_refund(session, order.id, e.refund_ref)
        if pending is not None:  # our own refund, accepted as pending: it ends now
            outcome = await settle(session, order, pending, status, ACTOR, answer=_resource(e))
            return "no_change" if outcome == "pending" else "applied"
    if await _already(session, order.id, provider, e.refund_ref):
        return "no_change"  # our own refund call recorded it
    if status != "completed" and status != "pending":
        return "ignored"  # a refund made elsewhere that failed: nothing moved
    return await _money_back(session, order, provider, e, "refund", e.refund_ref, status)


async def _reversed(session: AsyncSession, order: Order, provider: str, e: WebhookEvent) -> str:
    ref = f"reversal:{e.capture_ref}" if e.capture_ref else None
    if await _already(session, order.id, provider, ref):
        return "no_change"
    return await _money_back(session, order, provider, e, "reversal", ref)


async def _money_back(
    session: AsyncSession,
    order: Order,
    provider: str,
    e: WebhookEvent,
    kind: str,
    ref: str | None,
    status: str = "completed",
) -> str:
    if order.status in states.OPEN:
        # the capture has not reached us yet: let the provider deliver this again later
        raise ServiceUnavailable(f"order {order.id} is not paid here yet; deliver again later")
    left = refundable(order)
    minor = left if kind == "reversal" else (e.amount_minor or 0)
    if minor <= 0 or minor > left or order.status == states.REFUNDED:
        return "illegal"
    reason = (
        "payment reversed by the provider" if kind == "reversal" else "refunded at the provider"
    )
    record(
        session,
        order,
        kind=kind,
        status=status,
        amount_minor=minor,
        provider=provider,
        provider_ref=ref,
        answer=_resource(e),
        reason=reason,
        actor=ACTOR,
    )
    if status == "pending":
        order.refund_pending_minor += minor  # reserved until it completes
        order.updated_at = utcnow()
    else:
        apply_refund(session, order, minor, reason, ACTOR)
    return "applied"


def _resource(e: WebhookEvent) -> dict[str, Any]:
    resource = e.payload.get("resource")
    return dict(resource) if isinstance(resource, Mapping) else {}


async def _approved(session: AsyncSession, order: Order, provider: str, e: WebhookEvent) -> str:
    return "noted"  # intent CAPTURE: the buyer (or reconcile) captures next


_HANDLERS = {
    "captured": _captured,
    "capture_pending": _capture_pending,
    "capture_denied": _denied,
    "capture_reversed": _reversed,
    "refunded": _refunded,
    "approval_reversed": _approval_reversed,
    "approved": _approved,
}
