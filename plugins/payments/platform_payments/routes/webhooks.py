"""Incoming provider webhooks: public, verified by the provider's signature."""

from __future__ import annotations

from fastapi import APIRouter, Request

from platform_core import PUBLIC, DbSession, Line, get_context
from platform_payments.schemas.webhooks import WebhookAck
from platform_payments.service import webhooks

router = APIRouter()

WEBHOOK_DOC = {
    **PUBLIC,
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
}


@router.post("/webhooks/{provider}", openapi_extra=WEBHOOK_DOC)
async def receive_webhook(provider: Line, request: Request, session: DbSession) -> WebhookAck:
    """A provider's notification: 400 unless its signature verifies; applied once per
    delivery, in any order; 503 asks the provider to deliver it again later."""
    delivery_id, outcome = await webhooks.receive(
        get_context(request), session, provider, request.headers, await request.body()
    )
    return WebhookAck(delivery_id=delivery_id, outcome=outcome)
