"""What a payment provider is: the interface behind the ``payments_providers`` extension point.

A provider is an object with a ``name`` and the async methods of :class:`PaymentProvider`.
Every method receives a :class:`ProviderOrder` (a plain snapshot of the order, never a
database row) and the caller's ``request_id`` (the request's ``Idempotency-Key`` when it has
one), which the provider passes on to a service that de-duplicates (PayPal's
``PayPal-Request-Id``). Failures are :class:`ProviderError`: ``transient`` ones (network,
timeout, 5xx) are retried later, the others are final.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Outcome = Literal["completed", "pending", "declined", "failed", "cancelled"]


class ProviderError(Exception):
    """The provider refused or could not be reached; ``transient`` failures may be retried."""

    def __init__(self, message: str, *, transient: bool = False, answer: Any = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.answer = answer


class NotConfigured(ProviderError):
    """The provider lacks its credentials or settings; the message says which."""


class WebhookRejected(Exception):
    """An incoming webhook failed verification (bad or missing signature, foreign cert)."""


@dataclass(frozen=True)
class ProviderOrder:
    """The order as a provider sees it: amounts in minor units, no database row."""

    id: int
    currency: str
    total_minor: int
    captured_minor: int
    refunded_minor: int
    status: str
    provider_order_id: str | None
    description: str
    buyer_id: int


@dataclass(frozen=True)
class StartResult:
    """A started payment: the payer must approve at ``approval_url``, or it is done already.

    ``outcome`` is ``None`` while the payer still has to act (the order becomes
    ``pending``); ``authorized`` means the money is held and waits for a capture (the order
    is ``authorized``); ``completed`` means the money was captured at once (the order is
    ``paid``); ``declined``/``failed`` end the order.
    """

    provider_order_id: str | None
    approval_url: str | None = None
    outcome: Outcome | Literal["authorized"] | None = None
    capture_ref: str | None = None
    instructions: str | None = None
    answer: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderResult:
    """The answer to a capture, void or refund: its outcome and the provider's reference."""

    outcome: Outcome
    provider_ref: str | None
    amount_minor: int
    answer: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None


@dataclass(frozen=True)
class StatusResult:
    """What the provider knows of an order now.

    ``state``: ``awaiting`` (the payer has not approved), ``approved`` (ready to capture),
    ``capture_pending``, ``captured``, ``declined``, ``voided`` or ``unknown``.
    """

    state: Literal[
        "awaiting", "approved", "capture_pending", "captured", "declined", "voided", "unknown"
    ]
    capture_ref: str | None = None
    amount_minor: int | None = None
    answer: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookEvent:
    """A verified incoming notification, reduced to what moves an order.

    ``action``: ``captured``, ``capture_pending``, ``capture_denied``, ``capture_reversed``,
    ``refunded``, ``approval_reversed``, ``approved`` or ``ignored`` (stored, nothing moves).
    ``provider_order_id`` or ``capture_ref`` find the order.
    """

    delivery_id: str
    event_type: str
    action: str
    provider_order_id: str | None = None
    capture_ref: str | None = None
    refund_ref: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    refund_status: str | None = None
    """For ``refunded``: the refund's status (``completed``, ``pending``, ``failed``,
    ``cancelled``); ``None`` means completed."""


@runtime_checkable
class PaymentProvider(Protocol):
    """A payment provider. ``manual`` providers are marked paid by an admin, not captured."""

    name: str
    description: str
    manual: bool

    def problem(self) -> str | None:
        """Why the provider cannot take payments now (``None`` when it can)."""

    async def start(self, order: ProviderOrder, *, request_id: str | None) -> StartResult:
        """Start a payment of the whole order."""

    async def capture(self, order: ProviderOrder, *, request_id: str | None) -> ProviderResult:
        """Capture the approved payment of the order."""

    async def void(self, order: ProviderOrder, *, request_id: str | None) -> ProviderResult:
        """Cancel an approved but uncaptured payment."""

    async def refund(
        self,
        order: ProviderOrder,
        capture_ref: str,
        amount_minor: int,
        reason: str,
        *,
        request_id: str | None,
    ) -> ProviderResult:
        """Refund ``amount_minor`` of the capture ``capture_ref``."""

    async def fetch_status(self, order: ProviderOrder) -> StatusResult:
        """What the provider knows of the order now."""

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify an incoming webhook and parse it; ``WebhookRejected`` when it is not genuine."""


@runtime_checkable
class RefundStatusProvider(Protocol):
    """Optional: a provider whose refunds may come back ``pending`` also tells how they end.

    The reconcile job polls each pending refund through ``fetch_refund`` (a provider
    without it leaves its pending refunds to its webhooks)."""

    async def fetch_refund(self, order: ProviderOrder, refund_ref: str) -> ProviderResult:
        """The refund ``refund_ref`` now: ``pending``, ``completed``, ``failed`` or
        ``cancelled``."""


REDACTED = "[redacted]"
_SENSITIVE = ("token", "secret", "password", "authorization", "card", "cvv", "email", "phone")
_DROP = ("payment_source", "payer", "links")


def redact(answer: Any) -> Any:
    """A copy of a provider's answer safe to store: credentials and payer details removed."""
    if isinstance(answer, Mapping):
        out: dict[str, Any] = {}
        for key, value in answer.items():
            lowered = str(key).lower()
            if lowered in _DROP or any(word in lowered for word in _SENSITIVE):
                out[str(key)] = REDACTED
            else:
                out[str(key)] = redact(value)
        return out
    if isinstance(answer, list):
        return [redact(v) for v in answer]
    return answer
