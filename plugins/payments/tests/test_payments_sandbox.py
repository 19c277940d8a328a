"""Opt-in: the PayPal provider against the real PayPal sandbox.

Runs only when ``PAYPAL_SANDBOX_CLIENT_ID`` and ``PAYPAL_SANDBOX_CLIENT_SECRET`` are set
(sandbox REST app credentials); skipped, and reported as skipped, otherwise. A payer's
approval needs a browser, so the suite covers what a server can do alone: the token, an
order with its payer-action link, reading it back, PayPal-Request-Id de-duplication, and
the refusal to capture an unapproved order.
"""

from __future__ import annotations

import os
import uuid

import pytest
from platform_payments.providers.base import ProviderError, ProviderOrder
from platform_payments.providers.paypal import PayPalProvider
from platform_payments.settings import PayPalSettings

CLIENT_ID = os.environ.get("PAYPAL_SANDBOX_CLIENT_ID")
CLIENT_SECRET = os.environ.get("PAYPAL_SANDBOX_CLIENT_SECRET")

pytestmark = pytest.mark.skipif(
    not (CLIENT_ID and CLIENT_SECRET),
    reason="set PAYPAL_SANDBOX_CLIENT_ID and PAYPAL_SANDBOX_CLIENT_SECRET to run it",
)


@pytest.fixture
def provider() -> PayPalProvider:
    return PayPalProvider(
        PayPalSettings(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, mode="sandbox")
    )


def _order(provider_order_id: str | None = None) -> ProviderOrder:
    return ProviderOrder(
        id=1,
        currency="USD",
        total_minor=1050,
        captured_minor=0,
        refunded_minor=0,
        status="created",
        provider_order_id=provider_order_id,
        description="platform-payments sandbox test",
        buyer_id=1,
    )


async def test_sandbox_order_awaits_the_payer_and_dedupes_by_request_id(provider):
    key = uuid.uuid4().hex
    started = await provider.start(_order(), request_id=key)
    assert started.provider_order_id and started.approval_url
    again = await provider.start(_order(), request_id=key)
    assert again.provider_order_id == started.provider_order_id
    status = await provider.fetch_status(_order(started.provider_order_id))
    assert status.state == "awaiting"


async def test_sandbox_refuses_to_capture_an_unapproved_order(provider):
    started = await provider.start(_order(), request_id=uuid.uuid4().hex)
    with pytest.raises(ProviderError) as refused:
        await provider.capture(_order(started.provider_order_id), request_id=uuid.uuid4().hex)
    assert not refused.value.transient
