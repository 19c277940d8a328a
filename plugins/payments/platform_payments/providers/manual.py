"""The built-in ``manual`` provider: bank transfer or invoice, settled by an admin.

Starting a payment gives the payer instructions (a reference to quote); an admin marks the
order paid with the transfer's reference, and records refunds the same way. Needs no
configuration and never talks to anyone.
"""

from __future__ import annotations

from collections.abc import Mapping

from platform_payments.providers.base import (
    ProviderError,
    ProviderOrder,
    ProviderResult,
    StartResult,
    StatusResult,
    WebhookEvent,
    WebhookRejected,
)


class ManualProvider:
    """Bank transfer or invoice; see the module docstring."""

    name = "manual"
    description = "Bank transfer or invoice: an admin marks the order paid with a reference"
    manual = True

    def problem(self) -> str | None:
        """Always ready."""
        return None

    async def start(self, order: ProviderOrder, *, request_id: str | None) -> StartResult:
        """Instructions for the payer; the order waits for an admin."""
        reference = f"ORDER-{order.id}"
        return StartResult(
            provider_order_id=reference,
            instructions=f"Transfer the amount quoting the reference {reference}.",
        )

    async def capture(self, order: ProviderOrder, *, request_id: str | None) -> ProviderResult:
        """Manual orders are marked paid by an admin, never captured."""
        raise ProviderError("manual orders are marked paid by an admin with a reference")

    async def void(self, order: ProviderOrder, *, request_id: str | None) -> ProviderResult:
        """Nothing is held: nothing to void."""
        return ProviderResult("completed", None, 0)

    async def refund(
        self,
        order: ProviderOrder,
        capture_ref: str,
        amount_minor: int,
        reason: str,
        *,
        request_id: str | None,
    ) -> ProviderResult:
        """A refund made outside the platform, recorded as completed."""
        return ProviderResult("completed", None, amount_minor, {"recorded": True})

    async def fetch_status(self, order: ProviderOrder) -> StatusResult:
        """Only an admin knows: always awaiting until marked paid."""
        return StatusResult("awaiting")

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """The manual provider receives no webhooks."""
        raise WebhookRejected("the manual provider receives no webhooks")
