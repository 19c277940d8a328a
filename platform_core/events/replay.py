"""Replaying events to one handler: deliveries for events it missed (say, while disabled).

An event is fanned out once, to the handlers subscribed at that moment; a plugin that was
disabled (or isolated, or not yet installed) then gets no delivery for it, and fan-out never
looks back. :func:`replay` enqueues, for one active handler, a delivery of every event still
in the outbox (``[core.events] retention_days``) that occurred since a given time and that
its pattern matches. It is idempotent by event id: an event that already has a delivery for
this handler (pending, succeeded or failed) gets no second one; with ``retry_failed`` a
failed one is set back to pending with its attempts reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from platform_core.context import PlatformContext
from platform_core.db import utcnow
from platform_core.errors import ValidationFailed
from platform_core.events.dispatcher import handlers_by_key
from platform_core.events.models import EventDelivery, EventRecord
from platform_core.events.patterns import matches

BATCH = 1000


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did: events matched, deliveries enqueued, kept, and failed ones retried."""

    handler: str
    matched: int
    enqueued: int
    already: int
    retried: int
    oldest_kept: datetime | None


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


async def replay(
    ctx: PlatformContext, handler: str, since: datetime, *, retry_failed: bool = False
) -> ReplayResult:
    """Enqueue deliveries to ``handler`` (``<plugin>:<name>``) of the events since ``since``.

    Only dispatched events are considered (undispatched ones reach every active handler
    anyway). ``ValidationFailed`` names the field when the handler is not an active
    subscription or ``since`` is in the future.
    """
    handlers = handlers_by_key(ctx)
    if handler not in handlers:
        known = ", ".join(sorted(handlers)) or "none"
        raise _invalid("handler", f"no active handler {handler!r} (active: {known})")
    now = utcnow()
    if since > now:
        raise _invalid("since", "is in the future")
    pattern = handlers[handler].pattern
    matched = enqueued = already = retried = 0
    last_id = 0
    async with ctx.db.session() as session:
        oldest_kept = await session.scalar(select(EventRecord.occurred_at).order_by(EventRecord.id))
    while True:
        async with ctx.db.session() as session:
            rows = (
                await session.execute(
                    select(EventRecord.id, EventRecord.name)
                    .where(
                        EventRecord.id > last_id,
                        EventRecord.occurred_at >= since,
                        EventRecord.dispatched_at.is_not(None),
                    )
                    .order_by(EventRecord.id)
                    .limit(BATCH)
                )
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            ids = [r.id for r in rows if matches(pattern, r.name)]
            if not ids:
                continue
            matched += len(ids)
            existing = {
                r.event_id: r.state
                for r in (
                    await session.execute(
                        select(EventDelivery.event_id, EventDelivery.state).where(
                            EventDelivery.handler == handler, EventDelivery.event_id.in_(ids)
                        )
                    )
                ).all()
            }
            missing = [i for i in ids if i not in existing]
            if missing:
                enqueued += await _insert_missing(ctx, session, handler, missing, now)
            already += len(ids) - len(missing)
            if retry_failed:
                failed = [i for i, state in existing.items() if state == "failed"]
                if failed:
                    result = await session.execute(
                        update(EventDelivery)
                        .where(
                            and_(
                                EventDelivery.handler == handler,
                                EventDelivery.event_id.in_(failed),
                                EventDelivery.state == "failed",
                            )
                        )
                        .values(state="pending", attempts=0, next_attempt_at=now, locked_until=None)
                    )
                    retried += result.rowcount or 0  # type: ignore[attr-defined]
    return ReplayResult(handler, matched, enqueued, already, retried, oldest_kept)


async def _insert_missing(
    ctx: PlatformContext, session: object, handler: str, ids: list[int], now: datetime
) -> int:
    """Insert pending deliveries, ignoring those a concurrent replay or fan-out just made."""
    values = [
        {
            "event_id": i,
            "handler": handler,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
        }
        for i in ids
    ]
    dialect = postgresql if ctx.db.dialect == "postgresql" else sqlite
    stmt = (
        dialect.insert(EventDelivery)
        .values(values)
        .on_conflict_do_nothing(index_elements=["event_id", "handler"])
    )
    result = await session.execute(stmt)  # type: ignore[attr-defined]
    count: int = (
        result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(ids)
    )
    return count


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO 8601 time (UTC without offset) or an age (``90m``, ``12h``, ``7d``)."""
    from datetime import UTC

    now = now or utcnow()
    text = text.strip()
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return now - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(
            "since", f"{text!r} is neither an ISO 8601 time nor an age like 90m, 12h or 7d"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
