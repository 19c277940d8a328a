"""``/api/core/webhooks``: outbound webhooks, their delivery log and test pings (admins only)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from platform_core import requires_scopes
from platform_core.auth.deps import Caller, DbSession, get_context
from platform_core.http import IdPath
from platform_core.webhooks import service
from platform_core.webhooks.delivery import target_policy
from platform_core.webhooks.models import Webhook
from platform_core.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryPage,
    PingResultOut,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)

router = APIRouter()
ADMIN = requires_scopes("core:admin")


def webhook_out(hook: Webhook) -> WebhookOut:
    """The API view of a webhook (no secret)."""
    return WebhookOut(**service.webhook_fields(hook))


def delivery_out(view: service.DeliveryView) -> DeliveryOut:
    """The API view of a delivery with its attempts."""
    d = view.delivery
    return DeliveryOut(
        id=d.id,
        webhook_id=d.webhook_id,
        event_id=view.event_id,
        event=view.event_name,
        state=d.state,  # type: ignore[arg-type]
        attempt_count=d.attempts,
        next_attempt_at=service.next_attempt(d),
        last_status=d.last_status,
        last_error=d.last_error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        attempts=[AttemptOut.model_validate(a) for a in view.attempts],
    )


@router.post("/webhooks", response_model=WebhookWithSecret, status_code=201, openapi_extra=ADMIN)
async def create_webhook(
    request: Request, body: WebhookCreate, session: DbSession, caller: Caller
) -> WebhookWithSecret:
    """Register a webhook; the signing secret is in this response only.

    422 naming ``url`` when its host is not an allowed target (private, loopback,
    link-local or metadata addresses unless ``[core.webhooks] allow`` lists them).
    """
    hook, secret = await service.create_webhook(
        session,
        body.url,
        body.patterns,
        description=body.description,
        is_active=body.is_active,
        created_by=caller.user_id,
        policy=target_policy(get_context(request)),
    )
    return WebhookWithSecret(**service.webhook_fields(hook), secret=secret)


@router.get("/webhooks", response_model=list[WebhookOut], openapi_extra=ADMIN)
async def list_webhooks(session: DbSession) -> list[WebhookOut]:
    """Every webhook (never their secrets)."""
    return [webhook_out(h) for h in await service.list_webhooks(session)]


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, openapi_extra=ADMIN)
async def get_webhook(webhook_id: IdPath, session: DbSession) -> WebhookOut:
    """One webhook (never its secret)."""
    return webhook_out(await service.get_webhook(session, webhook_id))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut, openapi_extra=ADMIN)
async def update_webhook(
    request: Request, webhook_id: IdPath, body: WebhookUpdate, session: DbSession
) -> WebhookOut:
    """Change the URL, patterns, description or state; deactivating gives up pending sends."""
    hook = await service.update_webhook(
        session,
        webhook_id,
        url=body.url,
        patterns=body.patterns,
        description=body.description,
        is_active=body.is_active,
        policy=target_policy(get_context(request)),
    )
    return webhook_out(hook)


@router.delete(
    "/webhooks/{webhook_id}", status_code=204, response_class=Response, openapi_extra=ADMIN
)
async def delete_webhook(webhook_id: IdPath, session: DbSession) -> None:
    """Delete a webhook with its delivery log; nothing more is sent to it."""
    await service.delete_webhook(session, webhook_id)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret", response_model=WebhookWithSecret, openapi_extra=ADMIN
)
async def rotate_secret(
    request: Request,
    webhook_id: IdPath,
    session: DbSession,
    overlap_hours: Annotated[
        float | None,
        Query(
            ge=0,
            le=service.MAX_OVERLAP_HOURS,
            description="how long the old secret still signs beside the new one "
            "(default: [core.webhooks] rotation_overlap_hours; 0 = stop at once)",
        ),
    ] = None,
) -> WebhookWithSecret:
    """Replace the signing secret; shown this once.

    Deliveries are signed with both the new and the old secret for ``overlap_hours``
    (``rotation_overlap_until`` in the answer), then with the new one only.
    """
    if overlap_hours is None:
        overlap_hours = get_context(request).config.core.webhooks.rotation_overlap_hours
    hook, secret = await service.rotate_secret(session, webhook_id, overlap_hours=overlap_hours)
    return WebhookWithSecret(**service.webhook_fields(hook), secret=secret)


@router.post("/webhooks/{webhook_id}/test", response_model=PingResultOut, openapi_extra=ADMIN)
async def test_webhook(request: Request, webhook_id: IdPath, caller: Caller) -> PingResultOut:
    """Send a ``core.webhook.test`` event now and report whether the receiver took it.

    200 whatever happened (see ``succeeded``); bounded by the delivery timeout. A failure
    is reported in one generic wording whatever its cause (refused address, closed port,
    another service, timeout, HTTP error), so this endpoint cannot probe a network; the
    cause goes to the server log. The ping is logged with the webhook's deliveries and not
    retried.
    """
    result = await service.send_test(get_context(request), webhook_id, actor=caller.username)
    return PingResultOut(
        delivery_id=result.delivery_id,
        event_id=result.event_id,
        succeeded=result.succeeded,
        status_code=result.status_code if result.succeeded else None,
        error=None if result.succeeded else service.TEST_FAILED,
        duration_ms=result.duration_ms,
    )


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage, openapi_extra=ADMIN)
async def list_deliveries(
    webhook_id: IdPath,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    state: Literal["pending", "succeeded", "failed"] | None = None,
) -> DeliveryPage:
    """The webhook's delivery log, newest first, each with its attempts and status codes."""
    views, total = await service.list_deliveries(
        session, webhook_id, limit=limit, offset=offset, state=state
    )
    more = offset + len(views) < total
    return DeliveryPage(
        items=[delivery_out(v) for v in views],
        total=total,
        next_offset=offset + len(views) if more else None,
    )


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=202,
    openapi_extra=ADMIN,
)
async def redeliver(webhook_id: IdPath, delivery_id: IdPath, session: DbSession) -> DeliveryOut:
    """Send a delivery again as soon as possible (its attempt history is kept).

    409 when the webhook is deactivated or the delivery is being sent right now.
    """
    return delivery_out(await service.redeliver(session, webhook_id, delivery_id))
