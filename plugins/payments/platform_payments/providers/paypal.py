"""The built-in ``paypal`` provider: Orders v2 with intent CAPTURE, refunds, verified webhooks.

The payer approves at the order's ``payer-action`` link; the capture may come back
``PENDING`` (the order is paid only when a capture is ``COMPLETED``). Webhooks are verified
either locally (RSA-SHA256 over ``transmission_id|transmission_time|webhook_id|crc32(body)``
with the certificate at ``PAYPAL-CERT-URL``, fetched only from PayPal's hosts and cached) or
by PayPal's verify-webhook-signature API, as ``webhook_verification`` says.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from platform_payments.money import format_amount, to_minor
from platform_payments.providers.base import (
    NotConfigured,
    ProviderError,
    ProviderOrder,
    ProviderResult,
    StartResult,
    StatusResult,
    WebhookEvent,
    WebhookRejected,
)
from platform_payments.providers.paypal_client import PayPalClient, PayPalError
from platform_payments.settings import PayPalSettings

CAPTURE_OUTCOMES = {
    "COMPLETED": "completed",
    "PENDING": "pending",
    "DECLINED": "declined",
    "FAILED": "failed",
    "PARTIALLY_REFUNDED": "completed",
    "REFUNDED": "completed",
}
REFUND_OUTCOMES = {
    "COMPLETED": "completed",
    "PENDING": "pending",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
DECLINES = {"INSTRUMENT_DECLINED", "TRANSACTION_REFUSED", "PAYER_CANNOT_PAY", "CARD_DECLINED"}
WEBHOOK_ACTIONS = {
    "PAYMENT.CAPTURE.COMPLETED": "captured",
    "PAYMENT.CAPTURE.PENDING": "capture_pending",
    "PAYMENT.CAPTURE.DENIED": "capture_denied",
    "PAYMENT.CAPTURE.DECLINED": "capture_denied",
    "PAYMENT.CAPTURE.REVERSED": "capture_reversed",
    "PAYMENT.CAPTURE.REFUNDED": "refunded",
    "CHECKOUT.ORDER.APPROVED": "approved",
    "CHECKOUT.PAYMENT-APPROVAL.REVERSED": "approval_reversed",
}
HEADERS = ("transmission-id", "transmission-time", "transmission-sig", "cert-url", "auth-algo")


class PayPalProvider:
    """PayPal Checkout through :class:`PayPalClient`; see the module docstring."""

    name = "paypal"
    description = "PayPal Checkout (Orders v2, intent CAPTURE)"
    manual = False

    def __init__(self, settings: PayPalSettings) -> None:
        self.settings = settings
        self._client: PayPalClient | None = None
        self._certs: dict[str, _SigningKey] = {}

    def problem(self) -> str | None:
        """Not configured until both client id and secret are set (settings or environment)."""
        missing = [n for n in ("client_id", "client_secret") if not self.settings.credential(n)]
        if missing:
            return (
                "PayPal is not configured: set [plugins.payments.paypal] "
                + " and ".join(missing)
                + " (or PLATFORM_PAYMENTS_PAYPAL_"
                + "/".join(m.upper() for m in missing)
                + ")"
            )
        return None

    async def aclose(self) -> None:
        """Close the API client's connections (at platform shutdown)."""
        if self._client is not None:
            await self._client.aclose()

    @property
    def client(self) -> PayPalClient:
        """The API client (created on first use, keeping its token cache)."""
        problem = self.problem()
        if problem:
            raise NotConfigured(problem)
        if self._client is None:
            self._client = PayPalClient(
                self.settings.api_base,
                self.settings.credential("client_id") or "",
                self.settings.credential("client_secret") or "",
                timeout=self.settings.timeout_seconds,
            )
        return self._client

    async def start(self, order: ProviderOrder, *, request_id: str | None) -> StartResult:
        """Create a PayPal order for the whole amount; the payer approves at its link."""
        try:
            answer = await self.client.create_order(
                currency=order.currency,
                value=format_amount(order.total_minor, order.currency),
                reference_id=f"order-{order.id}",
                description=order.description,
                return_url=self.settings.return_url,
                cancel_url=self.settings.cancel_url,
                request_id=request_id,
            )
        except PayPalError as exc:
            raise _provider_error(exc) from None
        links = {link.get("rel"): link.get("href") for link in answer.get("links", [])}
        return StartResult(
            provider_order_id=str(answer["id"]),
            approval_url=links.get("payer-action") or links.get("approve"),
            answer=answer,
        )

    async def capture(self, order: ProviderOrder, *, request_id: str | None) -> ProviderResult:
        """Capture the approved PayPal order: completed, pending or declined."""
        if not order.provider_order_id:
            raise ProviderError("the order has no PayPal order to capture")
        try:
            answer = await self.client.capture_order(order.provider_order_id, request_id=request_id)
        except PayPalError as exc:
            if exc.name in DECLINES:
                return ProviderResult("declined", None, order.total_minor, _body(exc), exc.name)
            if exc.name == "ORDER_ALREADY_CAPTURED":
                # a retry whose first attempt went through: report what PayPal holds
                current = await self._get(order.provider_order_id)
                capture = _first_capture(current)
                if capture is not None:
                    return _capture_result(capture, current, order.currency)
            raise _provider_error(exc) from None
        capture = _first_capture(answer)
        if capture is None:
            return ProviderResult("failed", None, order.total_minor, answer, "no capture returned")
        return _capture_result(capture, answer, order.currency)

    async def void(self, order: ProviderOrder, *, request_id: str | None) -> ProviderResult:
        """Orders with intent CAPTURE hold no authorization: nothing to void at PayPal."""
        return ProviderResult("completed", order.provider_order_id, 0, {"note": "nothing held"})

    async def refund(
        self,
        order: ProviderOrder,
        capture_ref: str,
        amount_minor: int,
        reason: str,
        *,
        request_id: str | None,
    ) -> ProviderResult:
        """Refund part or all of a capture."""
        try:
            answer = await self.client.refund_capture(
                capture_ref,
                currency=order.currency,
                value=format_amount(amount_minor, order.currency),
                note=reason,
                request_id=request_id,
            )
        except PayPalError as exc:
            raise _provider_error(exc) from None
        outcome = REFUND_OUTCOMES.get(str(answer.get("status")), "failed")
        return ProviderResult(outcome, str(answer.get("id")), amount_minor, answer)  # type: ignore[arg-type]

    async def fetch_refund(self, order: ProviderOrder, refund_ref: str) -> ProviderResult:
        """``GET /v2/payments/refunds/{id}``: the refund's status now (polled while pending)."""
        try:
            answer = await self.client.get_refund(refund_ref)
        except PayPalError as exc:
            raise _provider_error(exc) from None
        status = str(answer.get("status"))
        outcome = REFUND_OUTCOMES.get(status, "pending")
        amount = _amount_minor(answer.get("amount"), order.currency) or 0
        details = answer.get("status_details")
        reason = None
        if isinstance(details, Mapping):
            reason = str(details.get("reason") or "") or None
        return ProviderResult(outcome, refund_ref, amount, answer, reason)  # type: ignore[arg-type]

    async def fetch_status(self, order: ProviderOrder) -> StatusResult:
        """The PayPal order's state: awaiting approval, approved, captured (or pending)."""
        if not order.provider_order_id:
            return StatusResult("unknown")
        answer = await self._get(order.provider_order_id)
        capture = _first_capture(answer)
        if capture is not None:
            state = {
                "COMPLETED": "captured",
                "PARTIALLY_REFUNDED": "captured",
                "REFUNDED": "captured",
                "PENDING": "capture_pending",
                "DECLINED": "declined",
                "FAILED": "declined",
            }.get(str(capture.get("status")), "unknown")
            amount = _amount_minor(capture.get("amount"), order.currency)
            return StatusResult(state, str(capture.get("id")), amount, answer)  # type: ignore[arg-type]
        state = {
            "CREATED": "awaiting",
            "SAVED": "awaiting",
            "PAYER_ACTION_REQUIRED": "awaiting",
            "APPROVED": "approved",
            "VOIDED": "voided",
        }.get(str(answer.get("status")), "unknown")
        return StatusResult(state, answer=answer)  # type: ignore[arg-type]

    async def _get(self, provider_order_id: str) -> dict[str, Any]:
        try:
            return await self.client.get_order(provider_order_id)
        except PayPalError as exc:
            raise _provider_error(exc) from None

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify the delivery (locally or by PayPal, per settings) and parse its event."""
        values = {h: headers.get(f"paypal-{h}", "") for h in HEADERS}
        if not all(values[h] for h in ("transmission-id", "transmission-time", "transmission-sig")):
            raise WebhookRejected("missing PayPal transmission headers")
        webhook_id = self.settings.credential("webhook_id")
        if not webhook_id:
            raise WebhookRejected("no webhook_id is configured: deliveries cannot be verified")
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookRejected("the body is not JSON") from None
        if not isinstance(event, dict):
            raise WebhookRejected("the body is not a JSON object")
        if self.settings.webhook_verification == "api":
            await self._verify_by_api(values, webhook_id, event)
        else:
            await self._verify_locally(values, webhook_id, body)
        return _parse_event(values["transmission-id"], event)

    async def _verify_by_api(
        self, values: dict[str, str], webhook_id: str, event: dict[str, Any]
    ) -> None:
        payload = {
            "auth_algo": values["auth-algo"],
            "cert_url": values["cert-url"],
            "transmission_id": values["transmission-id"],
            "transmission_sig": values["transmission-sig"],
            "transmission_time": values["transmission-time"],
            "webhook_id": webhook_id,
            "webhook_event": event,
        }
        try:
            ok = await self.client.verify_webhook_signature(payload)
        except PayPalError as exc:
            raise _provider_error(exc) from None
        if not ok:
            raise WebhookRejected("PayPal did not verify the signature")

    async def _verify_locally(self, values: dict[str, str], webhook_id: str, body: bytes) -> None:
        if values["auth-algo"] and values["auth-algo"].upper() != "SHA256WITHRSA":
            raise WebhookRejected("unsupported PAYPAL-AUTH-ALGO")
        signer = await self._signing_key(values["cert-url"])
        message = "|".join(
            [
                values["transmission-id"],
                values["transmission-time"],
                webhook_id,
                str(zlib.crc32(body) & 0xFFFFFFFF),
            ]
        ).encode()
        try:
            signature = base64.b64decode(values["transmission-sig"], validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRejected("PAYPAL-TRANSMISSION-SIG is not base64") from None
        signer.verify(signature, message)

    async def _signing_key(self, url: str) -> _SigningKey:
        """The certificate at ``url`` as a ready public key: fetched once per URL (only from
        ``cert_url_prefixes``), parsed once; its validity dates are checked on every use."""
        if not url or not any(url.startswith(p) for p in self.settings.cert_url_prefixes):
            raise WebhookRejected("PAYPAL-CERT-URL is not a PayPal certificate URL")
        if ".." in url or "@" in url:
            raise WebhookRejected("PAYPAL-CERT-URL is not a PayPal certificate URL")
        cached = self._certs.get(url)
        if cached is None:
            try:
                async with httpx.AsyncClient(timeout=self.settings.timeout_seconds) as http:
                    r = await http.get(url)
                r.raise_for_status()
                cached = _SigningKey.load(r.content)
            except (httpx.HTTPError, ValueError):
                raise ProviderError(
                    "could not fetch PayPal's signing certificate", transient=True
                ) from None
            self._certs[url] = cached
        if not (cached.not_before <= datetime.now(UTC) <= cached.not_after):
            raise WebhookRejected("the signing certificate is not valid now")
        return cached


class _SigningKey:
    """A webhook signing certificate parsed once: its RSA public key and validity dates
    (parsing the certificate and extracting the key on every delivery cost more than the
    signature check itself)."""

    def __init__(self, key: Any, not_before: datetime, not_after: datetime) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        self.key = key
        self.not_before = not_before
        self.not_after = not_after
        self._invalid = InvalidSignature
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()

    @classmethod
    def load(cls, pem: bytes) -> _SigningKey:
        """Parse a PEM certificate; ``WebhookRejected`` unless it holds an RSA key."""
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import rsa

        cert = x509.load_pem_x509_certificate(pem)
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookRejected("the certificate does not hold an RSA key")
        return cls(key, cert.not_valid_before_utc, cert.not_valid_after_utc)

    def verify(self, signature: bytes, message: bytes) -> None:
        """RSA-SHA256 (PKCS#1 v1.5) check; ``WebhookRejected`` when it does not match."""
        try:
            self.key.verify(signature, message, self._padding, self._hash)
        except self._invalid:
            raise WebhookRejected("the signature does not match") from None


def _body(exc: PayPalError) -> dict[str, Any]:
    return exc.body if isinstance(exc.body, dict) else {"error": exc.name}


def _provider_error(exc: PayPalError) -> ProviderError:
    return ProviderError(str(exc), transient=exc.transient, answer=_body(exc))


def _first_capture(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    for unit in answer.get("purchase_units") or []:
        captures = ((unit or {}).get("payments") or {}).get("captures") or []
        if captures:
            return dict(captures[0])
    return None


def _amount_minor(amount: Any, currency: str) -> int | None:
    if not isinstance(amount, Mapping) or amount.get("currency_code") != currency:
        return None
    try:
        return to_minor(str(amount.get("value")), currency)
    except ValueError:
        return None


def _capture_result(
    capture: dict[str, Any], answer: Mapping[str, Any], currency: str
) -> ProviderResult:
    outcome = CAPTURE_OUTCOMES.get(str(capture.get("status")), "failed")
    amount = _amount_minor(capture.get("amount"), currency) or 0
    reason = None
    details = capture.get("status_details")
    if isinstance(details, Mapping):
        reason = str(details.get("reason") or "") or None
    return ProviderResult(outcome, str(capture.get("id")), amount, answer, reason)  # type: ignore[arg-type]


def _up_capture(resource: Mapping[str, Any]) -> str | None:
    for link in resource.get("links") or []:
        href = str((link or {}).get("href") or "")
        if (link or {}).get("rel") == "up" and "/captures/" in href:
            return href.rstrip("/").rsplit("/", 1)[-1]
    return None


def _parse_event(delivery_id: str, event: dict[str, Any]) -> WebhookEvent:
    event_type = str(event.get("event_type") or "")
    resource = event.get("resource") if isinstance(event.get("resource"), dict) else {}
    assert isinstance(resource, dict)
    action = WEBHOOK_ACTIONS.get(event_type, "ignored")
    related = ((resource.get("supplementary_data") or {}).get("related_ids")) or {}
    amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
    assert isinstance(amount, dict)
    currency = amount.get("currency_code")
    minor = None
    if currency and amount.get("value") is not None:
        try:
            minor = to_minor(str(amount["value"]), str(currency))
        except ValueError:
            minor = None
    provider_order_id = related.get("order_id")
    capture_ref = None
    refund_ref = None
    refund_status = None
    if event_type.startswith("PAYMENT.CAPTURE.") and action != "refunded":
        capture_ref = resource.get("id")
    elif action == "refunded":
        refund_ref = resource.get("id")
        capture_ref = _up_capture(resource)
        refund_status = REFUND_OUTCOMES.get(str(resource.get("status") or "COMPLETED"))
    elif event_type.startswith("CHECKOUT."):
        provider_order_id = resource.get("order_id") or resource.get("id")
    return WebhookEvent(
        delivery_id=delivery_id,
        event_type=event_type or "unknown",
        action=action,
        provider_order_id=str(provider_order_id) if provider_order_id else None,
        capture_ref=str(capture_ref) if capture_ref else None,
        refund_ref=str(refund_ref) if refund_ref else None,
        amount_minor=minor,
        currency=str(currency) if currency else None,
        payload=event,
        refund_status=refund_status,
    )
