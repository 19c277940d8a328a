"""Sending webhook deliveries: claim due ones with a lease, POST them signed, log each try.

The dispatcher's fan-out writes one ``pending`` delivery per event and matching active
webhook. This loop (``("webhooks", run_webhook_deliveries)`` in the ``serve`` and
``worker`` roles) claims due deliveries with a lease (``locked_until``, taken with a
conditional UPDATE, and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes
share the work without sending a delivery twice at the same time), POSTs each one with
httpx (``[core.webhooks] timeout_seconds`` for the whole request, redirects not
followed) and records a :class:`WebhookAttempt` per try. The client connects only to
allowed addresses (:mod:`platform_core.webhooks.targets`: the host is resolved and every
address checked at each connection), and signs with the current secret and, during a
rotation's overlap, the previous one too.

A 2xx answer is success. Anything else (other status, timeout, connection error) is
retried with exponential backoff (10 s, 20 s, 40 s, ... capped at an hour) until
``[core.webhooks] retry_hours`` after the delivery was created; the last failure after
that marks it ``failed``. Deliveries of a deactivated or deleted webhook are never sent.

At most :data:`CONCURRENCY` requests are in flight, at most :data:`PER_WEBHOOK` of them
to one webhook, each bounded by the timeout: a slow receiver holds a few slots, never the
loop. A process that dies mid-request leaves the lease to expire and the delivery is
sent again: at least once; receivers de-duplicate on ``Platform-Event-Id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event as sa_event
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import __version__
from platform_core.context import PlatformContext
from platform_core.db import utcnow
from platform_core.events.models import EventRecord
from platform_core.events.outbox import DeliveredEvent, register_waiter
from platform_core.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from platform_core.webhooks.signing import SIGNATURE_HEADER, encode_body, sign
from platform_core.webhooks.targets import GuardedTransport, TargetPolicy, refusal

log = logging.getLogger("platform_core.webhooks")

USER_AGENT = f"platform-webhooks/{__version__}"
CONCURRENCY = 16
PER_WEBHOOK = 4
BASE_BACKOFF = 10.0
MAX_BACKOFF = 3600.0
LEASE_MARGIN = 30.0
MAX_ERROR = 1000
RESPONSE_SNIPPET = 300
STOP_GRACE = 2.0
CONNECTION_FAILED = "connection failed"
TARGET_REFUSED = "target address not allowed"


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 10, 20, 40, ... max 1 h."""
    return float(min(MAX_BACKOFF, BASE_BACKOFF * 2.0 ** max(0, attempts - 1)))


def lease(ctx: PlatformContext) -> timedelta:
    """How long a claim holds a delivery: the request timeout plus a safety margin."""
    return timedelta(seconds=ctx.config.core.webhooks.timeout_seconds + LEASE_MARGIN)


# Delivery loops of this process waiting for work, with their event loops.
_waiters: weakref.WeakKeyDictionary[asyncio.Event, asyncio.AbstractEventLoop] = (
    weakref.WeakKeyDictionary()
)


def _register(wake: asyncio.Event) -> None:
    _waiters[wake] = asyncio.get_running_loop()


def wake_deliveries() -> None:
    """Wake this process's delivery loops now (new or rescheduled deliveries are due)."""
    for wake, loop in list(_waiters.items()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)


def _wake_on_commit(_session: Any) -> None:
    wake_deliveries()


def wake_after_commit(session: AsyncSession) -> None:
    """Wake the delivery loops when ``session``'s transaction commits (call after adding
    deliveries: fan-out, redelivery)."""
    sync = session.sync_session
    if not sa_event.contains(sync, "after_commit", _wake_on_commit):
        sa_event.listen(sync, "after_commit", _wake_on_commit)


def signing_secrets(hook: Webhook, now: datetime) -> tuple[str, ...]:
    """The secrets a delivery to ``hook`` is signed with now: the current one, and the
    previous one while a rotation's overlap lasts."""
    expires = hook.previous_secret_expires_at
    if hook.previous_secret and expires is not None and expires > now:
        return (hook.secret, hook.previous_secret)
    return (hook.secret,)


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one attempt, with everything needed to send it.

    ``secrets`` are the signing secrets, the current one first (see :func:`signing_secrets`).
    """

    delivery_id: int
    webhook_id: int
    url: str
    secrets: tuple[str, ...]
    attempt: int
    created_at: datetime
    event: DeliveredEvent


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt.

    ``error`` is what the delivery log records (transport failures in one generic wording,
    so the log does not tell a closed port from another service); ``detail`` is the full
    cause, for the server log only.
    """

    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    detail: str | None = None


def _due_filter(now: datetime) -> list[Any]:
    return [
        WebhookDelivery.state == "pending",
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
        Webhook.is_active,
    ]


async def claim(
    ctx: PlatformContext, limit: int, busy: Counter[int] | None = None
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries of active webhooks, oldest due first.

    At most :data:`PER_WEBHOOK` per webhook, counting the ``busy`` ones already in flight.
    """
    if limit <= 0:
        return []
    busy = busy or Counter()
    now = utcnow()
    rank = (
        func.row_number()
        .over(
            partition_by=WebhookDelivery.webhook_id,
            order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id),
        )
        .label("rank")
    )
    ranked = (
        select(WebhookDelivery.id, rank)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(*_due_filter(now))
        .subquery()
    )
    candidates = select(ranked.c.id).where(ranked.c.rank <= PER_WEBHOOK)
    query = (
        select(WebhookDelivery, Webhook, EventRecord)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .join(EventRecord, EventRecord.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id.in_(candidates), *_due_filter(now))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit + PER_WEBHOOK * len(busy))
    )
    if ctx.db.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
    until = now + lease(ctx)
    claimed: list[Claimed] = []
    taken = Counter(busy)
    async with ctx.db.session() as session:
        for delivery, hook, record in (await session.execute(query)).all():
            if len(claimed) >= limit:
                break
            if taken[hook.id] >= PER_WEBHOOK:
                continue
            # Conditional update: on SQLite two processes may read the same row.
            result = await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery.id,
                    WebhookDelivery.state == "pending",
                    or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
                )
                .values(locked_until=until)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                continue
            taken[hook.id] += 1
            claimed.append(
                Claimed(
                    delivery_id=delivery.id,
                    webhook_id=hook.id,
                    url=hook.url,
                    secrets=signing_secrets(hook, now),
                    attempt=delivery.attempts + 1,
                    created_at=delivery.created_at,
                    event=DeliveredEvent.from_record(record),
                )
            )
    return claimed


def target_policy(ctx: PlatformContext) -> TargetPolicy:
    """The allowed webhook targets of this platform (``[core.webhooks] allow``)."""
    return TargetPolicy.from_allow(ctx.config.core.webhooks.allow)


def new_client(ctx: PlatformContext) -> httpx.AsyncClient:
    """The HTTP client deliveries are sent with: no redirects, bounded time and pool, and
    connections only to allowed addresses (checked after resolution, at every connect)."""
    timeout = ctx.config.core.webhooks.timeout_seconds
    limits = httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        limits=limits,
        headers={"User-Agent": USER_AGENT},
        transport=GuardedTransport(target_policy(ctx), limits),
        trust_env=False,
    )


def request_headers(claimed: Claimed, body: bytes) -> dict[str, str]:
    """The headers of a delivery request, signature included."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Platform-Event-Id": claimed.event.id,
        "Platform-Event": claimed.event.name,
        "Platform-Delivery-Id": str(claimed.delivery_id),
        "Platform-Delivery-Attempt": str(claimed.attempt),
        SIGNATURE_HEADER: sign(claimed.secrets, body),
    }


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def _describe(exc: BaseException) -> str:
    return _clip(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


async def post(
    client: httpx.AsyncClient, claimed: Claimed, timeout: float
) -> tuple[int | None, str | None, str | None]:
    """POST one delivery; return (status code, error, detail). Never raises for receiver
    failures.

    ``error`` is recorded in the delivery log: the receiver's status and the start of its
    answer, ``timed out after Ns``, :data:`TARGET_REFUSED`, or :data:`CONNECTION_FAILED`
    for every other transport failure (refused connection, reset, not HTTP, TLS), so the
    log cannot be used to probe ports. ``detail`` is the full cause, for the server log.
    """
    body = encode_body(claimed.event.as_json())
    try:
        async with asyncio.timeout(timeout):
            async with client.stream(
                "POST", claimed.url, content=body, headers=request_headers(claimed, body)
            ) as response:
                status = response.status_code
                if 200 <= status < 300:
                    return status, None, None
                snippet = b""
                async for chunk in response.aiter_bytes():
                    snippet += chunk
                    if len(snippet) >= RESPONSE_SNIPPET:
                        break
                text = snippet[:RESPONSE_SNIPPET].decode("utf-8", "replace").strip()
                if 300 <= status < 400:
                    where = response.headers.get("location", "")
                    error = _clip(f"HTTP {status}: redirects are not followed ({where})")
                else:
                    error = _clip(f"HTTP {status}" + (f": {text}" if text else ""))
                return status, error, error
    except (TimeoutError, httpx.TimeoutException) as exc:
        error = f"timed out after {timeout:g}s"
        return None, error, f"{error} ({_describe(exc)})"
    except Exception as exc:  # refused target, transport error, bad URL: recorded, never raised
        if refusal(exc) is not None:
            return None, TARGET_REFUSED, _describe(refusal(exc) or exc)
        return None, CONNECTION_FAILED, _describe(exc)


async def attempt_delivery(
    ctx: PlatformContext,
    claimed: Claimed,
    *,
    retry: bool = True,
    client: httpx.AsyncClient | None = None,
) -> Outcome:
    """Send one claimed delivery, log the attempt and set its next state.

    On failure the delivery is rescheduled with :func:`backoff` until its retry window
    (``retry_hours`` from creation) is over, then marked ``failed``; with ``retry=False``
    (test pings) it is marked ``failed`` at once.
    """
    settings = ctx.config.core.webhooks
    started = time.perf_counter()
    if client is None:
        async with new_client(ctx) as own:
            status, error, detail = await post(own, claimed, settings.timeout_seconds)
    else:
        status, error, detail = await post(client, claimed, settings.timeout_seconds)
    duration_ms = round((time.perf_counter() - started) * 1000)
    succeeded = error is None
    outcome = Outcome(succeeded, status, error, duration_ms, detail)
    await record(ctx, claimed, outcome, retry=retry)
    if not succeeded:
        log.warning(
            "webhook delivery failed",
            extra={
                "webhook_id": claimed.webhook_id,
                "delivery_id": claimed.delivery_id,
                "event_id": claimed.event.id,
                "event": claimed.event.name,
                "attempt": claimed.attempt,
                "status": status,
                "error": detail,
                "duration_ms": duration_ms,
            },
        )
    return outcome


async def record(ctx: PlatformContext, claimed: Claimed, outcome: Outcome, *, retry: bool) -> None:
    """Log an attempt and move its delivery on: succeeded, rescheduled or failed."""
    now = utcnow()
    deadline = claimed.created_at + timedelta(hours=ctx.config.core.webhooks.retry_hours)
    async with ctx.db.session() as session:
        delivery = await session.get(WebhookDelivery, claimed.delivery_id)
        if delivery is None:  # the webhook was deleted meanwhile
            return
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempted_at=now,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        delivery.attempts += 1
        delivery.locked_until = None
        delivery.last_status = outcome.status_code
        delivery.last_error = outcome.error
        if outcome.succeeded:
            delivery.state, delivery.delivered_at = "succeeded", now
        elif delivery.state != "pending":
            pass  # given up meanwhile (webhook deactivated): keep that state
        elif not retry or now >= deadline:
            delivery.state = "failed"
        else:
            delay = timedelta(seconds=backoff(delivery.attempts))
            delivery.next_attempt_at = min(now + delay, deadline)


async def deliver_due(ctx: PlatformContext, limit: int = 200) -> int:
    """Claim and send due deliveries (up to ``limit``) concurrently; return how many.

    A one-shot pass, for tests and scripts; the background loop keeps a rolling pool.
    """
    claimed = await claim(ctx, limit)
    if not claimed:
        return 0
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(item: Claimed, client: httpx.AsyncClient) -> None:
        async with sem:
            await attempt_delivery(ctx, item, client=client)

    async with new_client(ctx) as client:
        await asyncio.gather(*(one(c, client) for c in claimed))
    return len(claimed)


async def seconds_until_due(
    ctx: PlatformContext, cap: float, exclude: list[int] | None = None
) -> float:
    """Seconds until the next pending delivery is due (0 when one is), at most ``cap``.

    Webhooks in ``exclude`` (those with every slot busy) are not considered.
    """
    now = utcnow()
    async with ctx.db.session() as session:
        first = await session.scalar(
            select(func.min(WebhookDelivery.next_attempt_at))
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(
                WebhookDelivery.state == "pending",
                or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
                Webhook.is_active,
                Webhook.id.not_in(exclude or []),
            )
        )
    if first is None:
        return cap
    if not isinstance(first, datetime):  # a driver returning text: parse it
        first = datetime.fromisoformat(str(first))
    if first.tzinfo is None:
        first = first.replace(tzinfo=now.tzinfo)
    return max(0.0, min(cap, (first - now).total_seconds()))


async def _release(ctx: PlatformContext, delivery_ids: list[int]) -> None:
    """Give up the leases of deliveries whose attempt was cancelled (sent again later)."""
    if not delivery_ids:
        return
    with contextlib.suppress(Exception):
        async with ctx.db.session() as session:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.state == "pending")
                .values(locked_until=None)
            )


async def run_webhook_deliveries(ctx: PlatformContext, stop: asyncio.Event) -> None:
    """Send due webhook deliveries until ``stop`` is set.

    Keeps up to :data:`CONCURRENCY` attempts in flight, claiming more as slots free up;
    sleeps until the next delivery is due, a commit publishes events or schedules a
    delivery, or ``[core.events] poll_seconds`` pass. Receiver and database errors are
    logged, never raised. On stop, attempts still running after a short grace are
    cancelled and their leases released.
    """
    wake = asyncio.Event()
    register_waiter(wake)  # events published: fan-out will add deliveries shortly
    _register(wake)  # deliveries added or rescheduled (fan-out, redelivery)
    poll = ctx.config.core.events.poll_seconds
    inflight: dict[asyncio.Task[Outcome], Claimed] = {}
    quick = 0  # after a wake-up, look again a few times soon (fan-out follows publishing)
    async with new_client(ctx) as client:
        try:
            while not stop.is_set():
                woken = wake.is_set()
                wake.clear()
                quick = 3 if woken else max(0, quick - 1)
                try:
                    busy = Counter(c.webhook_id for c in inflight.values())
                    claimed = await claim(ctx, CONCURRENCY - len(inflight), busy)
                    for item in claimed:
                        task = asyncio.create_task(attempt_delivery(ctx, item, client=client))
                        inflight[task] = item
                    busy = Counter(c.webhook_id for c in inflight.values())
                    capped = [h for h, n in busy.items() if n >= PER_WEBHOOK]
                    timeout = await seconds_until_due(ctx, poll, exclude=capped)
                except Exception:
                    log.exception("webhook delivery pass failed")
                    claimed, timeout = [], poll
                if quick:
                    timeout = min(timeout, 0.05 * 2 ** (3 - quick))
                if not claimed:  # never spin on a row another process is claiming
                    timeout = max(timeout, 0.02)
                full = len(inflight) >= CONCURRENCY  # then wait for a slot to free up
                waiter = asyncio.ensure_future(wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper, *inflight},
                    timeout=None if full else timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for fut in (waiter, stopper):
                    fut.cancel()
                for task in [t for t in inflight if t.done()]:
                    inflight.pop(task)
                    if not task.cancelled() and task.exception() is not None:
                        log.error(
                            "webhook attempt could not be recorded",
                            exc_info=task.exception(),
                        )
        finally:
            if inflight:
                _, pending = await asyncio.wait(inflight, timeout=STOP_GRACE)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                await _release(ctx, [inflight[t].delivery_id for t in pending])
