"""Outbound webhooks: registration, secrets, the delivery log, redelivery and test pings.

No HTTP framework here: the API routes and ``platformctl webhooks`` both call these.
Functions taking a session work in the caller's transaction; :func:`send_test` opens its
own (it waits on the network and must not hold a transaction meanwhile).

Targets are validated: ``http``/``https`` only, a host is required, no credentials
(``user:pass@``) and no fragment in the URL, at most 2000 characters, and the host must be
an allowed target (:mod:`platform_core.webhooks.targets`: public addresses, plus the
networks and names of ``[core.webhooks] allow``), checked here and again at every
connection.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core.context import PlatformContext
from platform_core.db import utcnow
from platform_core.errors import Conflict, NotFound, invalid
from platform_core.events.models import EventRecord
from platform_core.events.outbox import DeliveredEvent
from platform_core.events.patterns import valid_pattern
from platform_core.types import text_error
from platform_core.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from platform_core.webhooks.targets import TargetPolicy, check_url

SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2000
MAX_PATTERNS = 50
MAX_PATTERN_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 200
SCHEMES = frozenset({"http", "https"})
TEST_EVENT = "core.webhook.test"
DEACTIVATED = "webhook deactivated"
MAX_OVERLAP_HOURS = 24 * 7
TEST_FAILED = "the test event was not delivered (the cause is in the server log)"


def validate_url(url: str) -> str:
    """The target URL, checked; raise ``ValidationFailed`` naming ``url`` otherwise."""
    if not isinstance(url, str) or not url:
        raise invalid("url", "a URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise invalid("url", f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() for c in url) or text_error(url) is not None:
        raise invalid("url", "the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise invalid("url", "not a valid URL") from None
    if parts.scheme.lower() not in SCHEMES:
        raise invalid("url", "only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise invalid("url", "credentials are not allowed in the URL")
    if not parts.hostname:
        raise invalid("url", "the URL must name a host")
    if port == 0:
        raise invalid("url", "not a valid port")
    if parts.fragment or url.endswith("#"):
        raise invalid("url", "the URL must not contain a fragment")
    try:
        import httpx

        httpx.URL(url)
    except Exception:  # httpx refuses it (bad IDNA host, ...): it could never be sent
        raise invalid("url", "not a valid URL") from None
    return url


def validate_patterns(patterns: list[str]) -> list[str]:
    """The event patterns (``*``, ``a.b.c``, ``a.*``), de-duplicated; at least one."""
    if not isinstance(patterns, list) or not patterns:
        raise invalid("patterns", "at least one event pattern is required")
    if len(patterns) > MAX_PATTERNS:
        raise invalid("patterns", f"at most {MAX_PATTERNS} patterns")
    for pattern in patterns:
        if (
            not isinstance(pattern, str)
            or len(pattern) > MAX_PATTERN_LENGTH
            or not valid_pattern(pattern)
        ):
            raise invalid(
                "patterns",
                f"invalid event pattern {str(pattern)[:MAX_PATTERN_LENGTH]!r}: use an event "
                "name (inventory.device.created), a prefix (inventory.*) or *",
            )
    return list(dict.fromkeys(patterns))


def validate_description(description: str) -> str:
    """The description: one line of at most 200 characters."""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
        raise invalid("description", f"at most {MAX_DESCRIPTION_LENGTH} characters")
    bad = text_error(description)
    if bad is not None:
        raise invalid("description", bad[1])
    return description


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def check_target(url: str, policy: TargetPolicy | None) -> str:
    """``url`` validated (:func:`validate_url`) and its host an allowed target right now;
    ``ValidationFailed`` naming ``url`` otherwise. ``policy`` None: public addresses only."""
    url = validate_url(url)
    reason = await check_url(policy or TargetPolicy(), url)
    if reason is not None:
        raise invalid("url", reason)
    return url


async def create_webhook(
    session: AsyncSession,
    url: str,
    patterns: list[str],
    *,
    description: str = "",
    is_active: bool = True,
    created_by: int | None = None,
    policy: TargetPolicy | None = None,
) -> tuple[Webhook, str]:
    """Register a webhook; return it and its secret (shown this once).

    ``policy`` is the allowed targets (``[core.webhooks] allow``); None allows public
    addresses only.
    """
    hook = Webhook(
        url=await check_target(url, policy),
        patterns=validate_patterns(patterns),
        secret=new_secret(),
        description=validate_description(description),
        is_active=bool(is_active),
        created_at=utcnow(),
        created_by=created_by,
    )
    session.add(hook)
    await session.flush()
    return hook, hook.secret


async def list_webhooks(session: AsyncSession) -> list[Webhook]:
    """Every webhook, oldest first."""
    return list((await session.scalars(select(Webhook).order_by(Webhook.id))).all())


async def get_webhook(session: AsyncSession, webhook_id: int) -> Webhook:
    """One webhook, or ``NotFound``."""
    hook = await session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return hook


async def update_webhook(
    session: AsyncSession,
    webhook_id: int,
    *,
    url: str | None = None,
    patterns: list[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
    policy: TargetPolicy | None = None,
) -> Webhook:
    """Change a webhook's URL, patterns, description or state (``None`` keeps a value).

    A new URL is checked against ``policy`` as at registration.

    Deactivating a webhook gives up its pending deliveries (state ``failed``, error
    ``webhook deactivated``); they can be redelivered once it is active again.
    """
    checked = await check_target(url, policy) if url is not None else None  # before any query
    hook = await get_webhook(session, webhook_id)
    if checked is not None:
        hook.url = checked
    if patterns is not None:
        hook.patterns = validate_patterns(patterns)
    if description is not None:
        hook.description = validate_description(description)
    if is_active is not None:
        if hook.is_active and not is_active:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == hook.id, WebhookDelivery.state == "pending")
                .values(state="failed", last_error=DEACTIVATED, locked_until=None)
            )
        hook.is_active = bool(is_active)
    await session.flush()
    return hook


async def delete_webhook(session: AsyncSession, webhook_id: int) -> None:
    """Delete a webhook with its deliveries and their attempts; ``NotFound`` if unknown."""
    hook = await get_webhook(session, webhook_id)
    ids = select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == hook.id)
    await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    await session.delete(hook)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, webhook_id: int, *, overlap_hours: float = 0.0
) -> tuple[Webhook, str]:
    """Replace a webhook's secret; return it and the new secret (shown this once).

    For ``overlap_hours`` deliveries are signed with both the new and the old secret (two
    ``v1=`` signatures), so a receiver can switch secrets without refusing a delivery;
    after that (at once with 0) only the new one signs. Rotating again within the overlap
    keeps only the secret being replaced as the previous one. The row is locked, so two
    rotations at once apply one after the other.
    """
    if not 0 <= overlap_hours <= MAX_OVERLAP_HOURS:
        raise invalid("overlap_hours", f"between 0 and {MAX_OVERLAP_HOURS:g} hours")
    hook = await session.scalar(select(Webhook).where(Webhook.id == webhook_id).with_for_update())
    if hook is None:
        raise NotFound(f"webhook {webhook_id} not found")
    now = utcnow()
    if overlap_hours > 0:
        hook.previous_secret = hook.secret
        hook.previous_secret_expires_at = now + timedelta(hours=overlap_hours)
    else:
        hook.previous_secret = None
        hook.previous_secret_expires_at = None
    hook.secret = new_secret()
    await session.flush()
    return hook, hook.secret


@dataclass(frozen=True)
class DeliveryView:
    """A delivery as the log shows it: the event, its state and every attempt."""

    delivery: WebhookDelivery
    event_id: str
    event_name: str
    attempts: list[WebhookAttempt]


async def list_deliveries(
    session: AsyncSession,
    webhook_id: int,
    *,
    limit: int = 50,
    offset: int = 0,
    state: str | None = None,
) -> tuple[list[DeliveryView], int]:
    """A page of a webhook's deliveries (newest first) with their attempts, and the total."""
    await get_webhook(session, webhook_id)
    where = [WebhookDelivery.webhook_id == webhook_id]
    if state is not None:
        where.append(WebhookDelivery.state == state)
    total = int(
        (await session.scalar(select(func.count()).select_from(WebhookDelivery).where(*where))) or 0
    )
    query = (
        select(WebhookDelivery, EventRecord.uid, EventRecord.name)
        .join(EventRecord, EventRecord.id == WebhookDelivery.event_id)
        .where(*where)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = list((await session.execute(query)).all())
    by_delivery: dict[int, list[WebhookAttempt]] = {d.id: [] for d, _, _ in rows}
    if by_delivery:
        attempts = await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(by_delivery))
            .order_by(WebhookAttempt.id)
        )
        for attempt in attempts:
            by_delivery[attempt.delivery_id].append(attempt)
    views = [DeliveryView(d, uid, name, by_delivery[d.id]) for d, uid, name in rows]
    return views, total


async def get_delivery(session: AsyncSession, webhook_id: int, delivery_id: int) -> DeliveryView:
    """One delivery of a webhook with its attempts, or ``NotFound``."""
    row = (
        await session.execute(
            select(WebhookDelivery, EventRecord.uid, EventRecord.name)
            .join(EventRecord, EventRecord.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"delivery {delivery_id} of webhook {webhook_id} not found")
    delivery, uid, name = row
    attempts = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery.id)
        .order_by(WebhookAttempt.id)
    )
    return DeliveryView(delivery, uid, name, list(attempts))


async def redeliver(session: AsyncSession, webhook_id: int, delivery_id: int) -> DeliveryView:
    """Send a delivery again soon: back to ``pending``, due now, attempt history kept.

    A delivery past its retry window gets this one attempt (it is failed again if that
    attempt fails). ``Conflict`` when the webhook is deactivated.
    """
    hook = await get_webhook(session, webhook_id)
    view = await get_delivery(session, webhook_id, delivery_id)
    if not hook.is_active:
        raise Conflict(f"webhook {webhook_id} is deactivated; activate it to redeliver")
    delivery = view.delivery
    now = utcnow()
    if delivery.state == "pending" and delivery.locked_until and delivery.locked_until > now:
        raise Conflict(f"delivery {delivery_id} is being sent right now; try again shortly")
    delivery.state = "pending"
    delivery.next_attempt_at = now
    delivery.locked_until = None
    delivery.delivered_at = None
    await session.flush()
    from platform_core.webhooks.delivery import wake_after_commit

    wake_after_commit(session)
    return view


@dataclass(frozen=True)
class PingResult:
    """The outcome of a test ping: recorded in the delivery log like any delivery.

    ``error`` is as the delivery log has it; ``detail`` the full cause (server side only:
    the CLI prints it, the API does not return it).
    """

    delivery_id: int
    event_id: str
    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    detail: str | None = None


async def send_test(
    ctx: PlatformContext, webhook_id: int, *, actor: str | None = None
) -> PingResult:
    """Send a ``core.webhook.test`` event to one webhook now and return the outcome.

    The ping is an event of its own, delivered to this webhook only (no handler, no other
    webhook sees it), signed like any delivery and logged; it is not retried. Inactive
    webhooks can be tested too. The wait is bounded by ``[core.webhooks] timeout_seconds``.
    """
    from platform_core.webhooks.delivery import (
        Claimed,
        attempt_delivery,
        lease,
        signing_secrets,
    )

    now = utcnow()
    async with ctx.db.session() as session:
        hook = await get_webhook(session, webhook_id)
        record = EventRecord(
            uid=str(uuid.uuid4()),
            name=TEST_EVENT,
            plugin="core",
            actor=actor,
            payload={
                "webhook_id": hook.id,
                "message": "a test event sent on request; no action is expected",
            },
            occurred_at=now,
            dispatched_at=now,  # never fanned out: this webhook alone gets it
        )
        session.add(record)
        await session.flush()
        delivery = WebhookDelivery(
            webhook_id=hook.id,
            event_id=record.id,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            locked_until=now + lease(ctx) + timedelta(seconds=5),
            created_at=now,
        )
        session.add(delivery)
        await session.flush()
        claimed = Claimed(
            delivery_id=delivery.id,
            webhook_id=hook.id,
            url=hook.url,
            secrets=signing_secrets(hook, now),
            attempt=1,
            created_at=now,
            event=DeliveredEvent.from_record(record),
        )
    outcome = await attempt_delivery(ctx, claimed, retry=False)
    return PingResult(
        delivery_id=claimed.delivery_id,
        event_id=claimed.event.id,
        succeeded=outcome.succeeded,
        status_code=outcome.status_code,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
        detail=outcome.detail,
    )


def webhook_fields(hook: Webhook) -> dict[str, Any]:
    """A webhook's public fields (everything but the secret)."""
    return {
        "id": hook.id,
        "url": hook.url,
        "patterns": list(hook.patterns),
        "description": hook.description,
        "is_active": hook.is_active,
        "created_at": hook.created_at,
        "created_by": hook.created_by,
        "rotation_overlap_until": previous_secret_expiry(hook),
    }


def previous_secret_expiry(hook: Webhook) -> datetime | None:
    """Until when the secret before the last rotation still signs; None when it no longer does."""
    expires = hook.previous_secret_expires_at
    if hook.previous_secret and expires is not None and expires > utcnow():
        return expires
    return None


def next_attempt(delivery: WebhookDelivery) -> datetime | None:
    """When a pending delivery is next tried; None once it succeeded or failed."""
    return delivery.next_attempt_at if delivery.state == "pending" else None
