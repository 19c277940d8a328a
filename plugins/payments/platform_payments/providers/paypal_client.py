"""A small typed async client of the PayPal REST API: OAuth2, Orders v2, Payments v2, webhooks.

Only what the payments plugin needs: a client-credentials token (cached until shortly
before it expires), create/get/capture of an order with intent ``CAPTURE``, refund of a
capture, and the verify-webhook-signature call. Every money-moving call carries
``PayPal-Request-Id`` so that PayPal de-duplicates retries. Credentials are never logged and
never part of an error message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("platform_payments.paypal")

TOKEN_MARGIN_SECONDS = 60
"""A cached token is renewed this long before PayPal says it expires."""


class PayPalError(Exception):
    """A failed PayPal call: ``status`` (0 for a network error or timeout), PayPal's ``name``
    (``INSTRUMENT_DECLINED``, ``ORDER_ALREADY_CAPTURED``, ...) and whether it is transient."""

    def __init__(self, message: str, *, status: int = 0, name: str = "", body: Any = None):
        super().__init__(message)
        self.status = status
        self.name = name
        self.body = body

    @property
    def transient(self) -> bool:
        """Network errors, timeouts, 429 and 5xx: worth retrying with the same request id."""
        return self.status == 0 or self.status == 429 or self.status >= 500


@dataclass
class _Token:
    value: str
    expires_at: float


class PayPalClient:
    """PayPal REST calls against ``base_url`` (sandbox, live, or a fake in tests)."""

    def __init__(
        self, base_url: str, client_id: str, client_secret: str, *, timeout: float = 10.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self.timeout = timeout
        self._token: _Token | None = None
        self.token_fetches = 0
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    def _session(self) -> httpx.AsyncClient:
        """One pooled HTTP client per event loop (a CLI command runs its own loop)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop or self._http.is_closed:
            self._http = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
            self._http_loop = loop
        return self._http

    async def aclose(self) -> None:
        """Close the pooled HTTP client (at platform shutdown)."""
        if self._http is not None and self._http_loop is asyncio.get_running_loop():
            await self._http.aclose()
        self._http = None

    def __repr__(self) -> str:
        return f"PayPalClient({self.base_url!r})"  # never the credentials

    async def _fetch_token(self, http: httpx.AsyncClient) -> str:
        now = time.monotonic()
        if self._token is not None and self._token.expires_at > now:
            return self._token.value
        try:
            r = await http.post(
                "/v1/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(self._client_id, self._client_secret),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise PayPalError(f"PayPal token request failed: {type(exc).__name__}") from None
        if r.status_code != 200:
            raise PayPalError(
                f"PayPal refused the credentials (HTTP {r.status_code})",
                status=r.status_code,
                name=_error_name(r),
            )
        body = r.json()
        self.token_fetches += 1
        lifetime = max(int(body.get("expires_in", 0)) - TOKEN_MARGIN_SECONDS, 0)
        self._token = _Token(str(body["access_token"]), now + lifetime)
        return self._token.value

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        request_id: str | None = None,
        retry_auth: bool = True,
    ) -> dict[str, Any]:
        http = self._session()
        token = await self._fetch_token(http)
        headers = {"Authorization": f"Bearer {token}", "Prefer": "return=representation"}
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        try:
            r = await http.request(method, path, json=json, headers=headers)
        except httpx.TimeoutException:
            raise PayPalError(f"PayPal {method} {path} timed out") from None
        except httpx.HTTPError as exc:
            raise PayPalError(f"PayPal {method} {path} failed: {type(exc).__name__}") from None
        if r.status_code == 401 and retry_auth:
            self._token = None  # revoked or expired early: one fresh token, one retry
            return await self._call(
                method, path, json=json, request_id=request_id, retry_auth=False
            )
        if r.status_code >= 400:
            name = _error_name(r)
            log.warning(
                "paypal call failed",
                extra={"method": method, "path": path, "status": r.status_code, "issue": name},
            )
            raise PayPalError(
                f"PayPal {method} {path}: HTTP {r.status_code} {name}".strip(),
                status=r.status_code,
                name=name,
                body=_json(r),
            )
        body = _json(r)
        return body if isinstance(body, dict) else {}

    async def create_order(
        self,
        *,
        currency: str,
        value: str,
        reference_id: str,
        description: str,
        return_url: str,
        cancel_url: str,
        request_id: str | None,
    ) -> dict[str, Any]:
        """``POST /v2/checkout/orders`` with intent ``CAPTURE``; the answer has the
        ``payer-action`` link."""
        body = {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "reference_id": reference_id,
                    "custom_id": reference_id,
                    "description": description[:127],
                    "amount": {"currency_code": currency, "value": value},
                }
            ],
            "payment_source": {
                "paypal": {
                    "experience_context": {
                        "return_url": return_url,
                        "cancel_url": cancel_url,
                        "user_action": "PAY_NOW",
                    }
                }
            },
        }
        return await self._call("POST", "/v2/checkout/orders", json=body, request_id=request_id)

    async def get_order(self, order_id: str) -> dict[str, Any]:
        """``GET /v2/checkout/orders/{id}``."""
        return await self._call("GET", f"/v2/checkout/orders/{order_id}")

    async def capture_order(self, order_id: str, *, request_id: str | None) -> dict[str, Any]:
        """``POST /v2/checkout/orders/{id}/capture``."""
        return await self._call(
            "POST", f"/v2/checkout/orders/{order_id}/capture", json={}, request_id=request_id
        )

    async def refund_capture(
        self, capture_id: str, *, currency: str, value: str, note: str, request_id: str | None
    ) -> dict[str, Any]:
        """``POST /v2/payments/captures/{id}/refund`` of ``value`` ``currency``."""
        body = {"amount": {"currency_code": currency, "value": value}, "note_to_payer": note[:255]}
        return await self._call(
            "POST", f"/v2/payments/captures/{capture_id}/refund", json=body, request_id=request_id
        )

    async def get_refund(self, refund_id: str) -> dict[str, Any]:
        """``GET /v2/payments/refunds/{id}``."""
        return await self._call("GET", f"/v2/payments/refunds/{refund_id}")

    async def verify_webhook_signature(self, payload: dict[str, Any]) -> bool:
        """``POST /v1/notifications/verify-webhook-signature``: True on ``SUCCESS``."""
        answer = await self._call(
            "POST", "/v1/notifications/verify-webhook-signature", json=payload
        )
        return answer.get("verification_status") == "SUCCESS"


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def _error_name(r: httpx.Response) -> str:
    body = _json(r)
    if not isinstance(body, dict):
        return ""
    details = body.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        issue = details[0].get("issue")
        if issue:
            return str(issue)
    return str(body.get("name") or body.get("error") or "")
