"""Delivering committed events: fan-out from the outbox, then handler deliveries.

Fan-out turns each undispatched outbox row into one delivery per subscribed handler and
per matching webhook, plus the notifications the plugins' rules ask for, all in one
transaction. Handler deliveries are claimed with a lease (``locked_until``), run
concurrently, and retried with exponential backoff; a process that dies mid-delivery
leaves the lease to expire and another process (or the restarted one) delivers again:
at least once, with the event id for de-duplication.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from platform_core.calling import call_with_available
from platform_core.context import PlatformContext
from platform_core.db import utcnow
from platform_core.events.models import EventDelivery, EventRecord
from platform_core.events.outbox import DeliveredEvent, register_waiter
from platform_core.events.patterns import matches
from platform_core.specs import EventHandler

log = logging.getLogger("platform_core.events")

BATCH = 200
LEASE = timedelta(seconds=60)
MAX_BACKOFF = 3600.0


def handler_key(plugin: str, handler: EventHandler) -> str:
    """The stable identity of a subscription: ``<plugin>:<name>``."""
    return f"{plugin}:{handler.name or handler.func.__name__}"


def handlers_by_key(ctx: PlatformContext) -> dict[str, EventHandler]:
    """The subscriptions of the active plugins by key."""
    return {handler_key(p, h): h for p, h in ctx.event_handlers}


def backoff(attempts: int) -> float:
    """Seconds to wait before the next attempt: 2, 4, 8, ... capped at an hour."""
    return float(min(MAX_BACKOFF, 2.0**attempts))


def for_update(query: Any, ctx: PlatformContext) -> Any:
    """``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that concurrent processes take different
    rows; SQLite serializes writers and needs no row locks."""
    if ctx.db.dialect == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


async def fan_out(ctx: PlatformContext) -> int:
    """Dispatch up to ``BATCH`` undispatched events; return how many were dispatched."""
    try:
        return await _fan_out(ctx)
    except IntegrityError:  # another dispatcher fanned these out first (SQLite race)
        return 0


async def _fan_out(ctx: PlatformContext) -> int:
    from platform_core.notifications.service import apply_rules
    from platform_core.webhooks.delivery import wake_after_commit
    from platform_core.webhooks.models import Webhook, WebhookDelivery

    handlers = handlers_by_key(ctx)
    now = utcnow()
    # The dispatch time doubles as this batch's token: mark first, then fan out only the
    # rows carrying it, so two dispatchers never fan out the same event (SQLite included).
    token = now + timedelta(microseconds=secrets.randbelow(1000))
    async with ctx.db.session() as session:
        query = (
            select(EventRecord.id)
            .where(EventRecord.dispatched_at.is_(None))
            .order_by(EventRecord.id)
            .limit(BATCH)
        )
        ids = list((await session.scalars(for_update(query, ctx))).all())
        if not ids:
            return 0
        await session.execute(
            update(EventRecord)
            .where(EventRecord.id.in_(ids), EventRecord.dispatched_at.is_(None))
            .values(dispatched_at=token)
        )
        events = list(
            (
                await session.scalars(
                    select(EventRecord)
                    .where(EventRecord.id.in_(ids), EventRecord.dispatched_at == token)
                    .order_by(EventRecord.id)
                )
            ).all()
        )
        if not events:
            return 0
        hooks = list((await session.scalars(select(Webhook).where(Webhook.is_active))).all())
        for rec in events:
            for key, handler in handlers.items():
                if matches(handler.pattern, rec.name):
                    session.add(
                        EventDelivery(
                            event_id=rec.id,
                            handler=key,
                            state="pending",
                            attempts=0,
                            next_attempt_at=now,
                        )
                    )
            for hook in hooks:
                if any(matches(p, rec.name) for p in hook.patterns):
                    session.add(
                        WebhookDelivery(
                            webhook_id=hook.id,
                            event_id=rec.id,
                            state="pending",
                            attempts=0,
                            next_attempt_at=now,
                            created_at=now,
                        )
                    )
        await session.flush()  # our inserts first: the rules below query in this transaction
        for rec in events:
            await apply_rules(ctx, session, DeliveredEvent.from_record(rec))
        if hooks:
            wake_after_commit(session)
    return len(events)


async def _claim(ctx: PlatformContext, keys: list[str]) -> list[tuple[int, str, EventRecord]]:
    now = utcnow()
    # The lease end doubles as this claim's token: rows carrying it afterwards are ours,
    # even when another process raced for the same rows (SQLite has no SKIP LOCKED).
    token = now + LEASE + timedelta(microseconds=secrets.randbelow(1_000_000))
    async with ctx.db.session() as session:
        due = (
            EventDelivery.state == "pending",
            EventDelivery.next_attempt_at <= now,
            or_(EventDelivery.locked_until.is_(None), EventDelivery.locked_until < now),
        )
        query = (
            select(EventDelivery.id)
            .where(*due, EventDelivery.handler.in_(keys))
            .order_by(EventDelivery.next_attempt_at, EventDelivery.id)
            .limit(BATCH)
        )
        ids = list((await session.scalars(for_update(query, ctx))).all())
        if not ids:
            return []
        # The whole due condition again: on SQLite the SELECT above ran outside the write
        # transaction, so another dispatcher may have run and *finished* a row since (its
        # lease cleared again); only rows still due become ours.
        await session.execute(
            update(EventDelivery).where(EventDelivery.id.in_(ids), *due).values(locked_until=token)
        )
        rows = (
            await session.execute(
                select(EventDelivery.id, EventDelivery.handler, EventRecord)
                .join(EventRecord, EventRecord.id == EventDelivery.event_id)
                .where(EventDelivery.id.in_(ids), EventDelivery.locked_until == token)
            )
        ).all()
        return [(did, handler, rec) for did, handler, rec in rows]


async def _run_handler(
    handler: EventHandler, event: DeliveredEvent, ctx: PlatformContext
) -> str | None:
    """None on success, else the error text (a failing handler never raises here)."""
    try:
        await asyncio.wait_for(
            call_with_available(handler.func, event=event, ctx=ctx), handler.timeout
        )
    except TimeoutError:
        return f"timed out after {handler.timeout}s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:2000]
    return None


async def _record(
    ctx: PlatformContext, outcomes: list[tuple[int, DeliveredEvent, str | None]]
) -> None:
    succeeded = [did for did, _, error in outcomes if error is None]
    failed = [(did, event, error) for did, event, error in outcomes if error is not None]
    now = utcnow()
    async with ctx.db.session() as session:
        if succeeded:  # one statement for the common case
            await session.execute(
                update(EventDelivery)
                .where(EventDelivery.id.in_(succeeded))
                .values(
                    state="succeeded",
                    delivered_at=now,
                    last_error=None,
                    locked_until=None,
                    attempts=EventDelivery.attempts + 1,
                )
            )
        for did, event, error in failed:
            delivery = await session.get(EventDelivery, did)
            if delivery is None:
                continue
            delivery.attempts += 1
            delivery.locked_until = None
            delivery.last_error = error
            if delivery.attempts >= ctx.config.core.events.handler_attempts:
                delivery.state = "failed"
            else:
                delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts))
            log.warning(
                "event handler failed",
                extra={
                    "handler": delivery.handler,
                    "event_id": event.id,
                    "event": event.name,
                    "attempt": delivery.attempts,
                    "error": error,
                },
            )


async def deliver_due(ctx: PlatformContext) -> int:
    """Run due handler deliveries concurrently; return how many were attempted."""
    handlers = handlers_by_key(ctx)
    if not handlers:
        return 0
    claimed = await _claim(ctx, sorted(handlers))
    if not claimed:
        return 0
    events = [DeliveredEvent.from_record(rec) for _, _, rec in claimed]
    errors = await asyncio.gather(
        *(
            _run_handler(handlers[key], event, ctx)
            for (_, key, _), event in zip(claimed, events, strict=True)
        )
    )
    await _record(
        ctx,
        [
            (did, event, error)
            for (did, _, _), event, error in zip(claimed, events, errors, strict=True)
        ],
    )
    return len(claimed)


async def pending_work(ctx: PlatformContext) -> int:
    """Undispatched events plus due handler deliveries (in flight included) of this process."""
    from sqlalchemy import func

    now = utcnow()
    async with ctx.db.session() as session:
        events = await session.scalar(
            select(func.count()).where(EventRecord.dispatched_at.is_(None))
        )
        due = await session.scalar(
            select(func.count()).where(
                EventDelivery.state == "pending",
                EventDelivery.next_attempt_at <= now,
                EventDelivery.handler.in_(sorted(handlers_by_key(ctx))),
            )
        )
    return int(events or 0) + int(due or 0)


async def run_event_dispatcher(ctx: PlatformContext, stop: asyncio.Event) -> None:
    """Fan out and deliver until ``stop`` is set; woken at once by committed publishes."""
    wake = asyncio.Event()
    register_waiter(wake)
    poll = ctx.config.core.events.poll_seconds
    while not stop.is_set():
        wake.clear()
        busy = await fan_out(ctx)
        busy += await deliver_due(ctx)
        if busy:
            continue
        waiter = asyncio.ensure_future(wake.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
        for fut in (waiter, stopper):
            fut.cancel()


async def prune_events(ctx: PlatformContext) -> int:
    """Delete dispatched events (and their deliveries) older than the retention period."""
    from sqlalchemy import delete

    cutoff = utcnow() - timedelta(days=ctx.config.core.events.retention_days)
    async with ctx.db.session() as session:
        from platform_core.webhooks.models import WebhookDelivery

        pending = select(EventDelivery.event_id).where(EventDelivery.state == "pending")
        pending_hooks = select(WebhookDelivery.event_id).where(WebhookDelivery.state == "pending")
        result = await session.execute(
            delete(EventRecord).where(
                and_(
                    EventRecord.dispatched_at.is_not(None),
                    EventRecord.occurred_at < cutoff,
                    EventRecord.id.not_in(pending),
                    EventRecord.id.not_in(pending_hooks),
                )
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
