"""A stateful fake of the PayPal REST API on loopback, for tests and benchmarks.

No PayPal stand-in exists as a package, so this one is shipped with the plugin (a plain
ASGI app under uvicorn in a thread; nothing here runs in production). It keeps orders,
captures and refunds, honours ``PayPal-Request-Id`` (a repeated id answers the first answer
again, and never captures twice), checks OAuth2 client credentials and bearer tokens, and
serves webhook signing certificates. Failures are injected per operation::

    with FakePayPal() as paypal:
        paypal.fail_next("capture", "500")      # or "timeout", "pending", "declined"
        paypal.approve(order_id)                # the payer approves at the payer-action link
        paypal.fail_next("refund", "pending")   # the refund comes back PENDING ...
        paypal.complete_refund(refund_id)       # ... then COMPLETED (or fail_refund: FAILED)

Endpoints: ``POST /v1/oauth2/token``, ``POST /v2/checkout/orders``, ``GET`` it,
``POST /v2/checkout/orders/{id}/capture``, ``POST /v2/payments/captures/{id}/refund``,
``GET /v2/payments/refunds/{id}``, ``POST /v1/notifications/verify-webhook-signature``,
``GET /certs/{name}``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import uvicorn

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
Answer = tuple[int, Any]


class FakePayPal:
    """The fake's state and its ASGI app; :meth:`start` serves it on a free loopback port."""

    def __init__(self, *, token_lifetime: int = 32400, slow_seconds: float = 2.0) -> None:
        self.token_lifetime = token_lifetime
        self.slow_seconds = slow_seconds
        self.tokens: dict[str, float] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.captures: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.seen_request_ids: dict[tuple[str, str], Answer] = {}
        self.failures: dict[str, list[str]] = {}
        self.calls: Counter[str] = Counter()
        self.request_ids: list[tuple[str, str | None]] = []
        self.certs: dict[str, bytes] = {}
        self.verify_answer = "SUCCESS"
        self.verify_payloads: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- test controls ------------------------------------------------------------------

    def fail_next(self, operation: str, kind: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``operation`` (``token``, ``create``, ``capture``,
        ``refund``, ``get``, ``get_refund``, ``verify``) fail: ``500``, ``timeout`` (the work is
        done, the answer comes late), ``pending`` (captures and refunds) or ``declined``
        (captures)."""
        self.failures.setdefault(operation, []).extend([kind] * times)

    def approve(self, order_id: str) -> None:
        """The payer approves the order at its payer-action link."""
        self.orders[order_id]["status"] = "APPROVED"

    def complete_capture(self, capture_id: str) -> None:
        """A pending capture completes (what PayPal then reports by webhook)."""
        self.captures[capture_id]["status"] = "COMPLETED"

    def complete_refund(self, refund_id: str) -> None:
        """A pending refund completes (PENDING -> COMPLETED)."""
        refund = self.refunds[refund_id]
        assert refund["status"] == "PENDING", refund["status"]
        refund["status"] = "COMPLETED"
        refund.pop("status_details", None)

    def fail_refund(self, refund_id: str, status: str = "FAILED") -> None:
        """A pending refund ends ``FAILED`` (or ``CANCELLED``): its amount is refundable again."""
        refund = self.refunds[refund_id]
        assert refund["status"] == "PENDING", refund["status"]
        refund["status"] = status
        refund["status_details"] = {"reason": "ECHECK"} if status == "FAILED" else {}
        capture = self.captures[refund["capture_id"]]
        refunded = Decimal(capture["refunded"]) - Decimal(refund["amount"]["value"])
        capture["refunded"] = str(refunded)
        capture["status"] = "PARTIALLY_REFUNDED" if refunded else "COMPLETED"

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}FAKE"

    # -- serving ------------------------------------------------------------------------

    def start(self) -> FakePayPal:
        """Serve on ``127.0.0.1`` on a free port in a thread; sets :attr:`url`."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the fake PayPal did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakePayPal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The ASGI app."""
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, payload, delay = await self._route(scope["method"], scope["path"], headers, body)
        if delay:
            await asyncio.sleep(delay)
        if isinstance(payload, bytes):
            data, content_type = payload, b"application/x-pem-file"
        else:
            data, content_type = json.dumps(payload).encode(), b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, float]:
        parts = path.strip("/").split("/")
        if method == "GET" and parts[0] == "certs" and len(parts) == 2:
            cert = self.certs.get(parts[1])
            return (200, cert, 0.0) if cert else (404, {"name": "RESOURCE_NOT_FOUND"}, 0.0)
        if method == "POST" and path == "/v1/oauth2/token":
            return (*self._token(headers), 0.0)
        if not self._authorized(headers):
            return 401, {"error": "invalid_token"}, 0.0
        data = json.loads(body) if body else {}
        request_id = headers.get("paypal-request-id")
        if method == "POST" and path == "/v2/checkout/orders":
            return self._once("create", request_id, lambda: self._create(data))
        if method == "GET" and parts[:3] == ["v2", "checkout", "orders"] and len(parts) == 4:
            return self._plain("get", lambda: self._get_order(parts[3]))
        if (
            method == "POST"
            and parts[:3] == ["v2", "checkout", "orders"]
            and parts[-1] == "capture"
        ):
            return self._once("capture", request_id, lambda: self._capture(parts[3]))
        if (
            method == "POST"
            and parts[:3] == ["v2", "payments", "captures"]
            and parts[-1] == "refund"
        ):
            return self._once("refund", request_id, lambda: self._refund(parts[3], data))
        if method == "GET" and parts[:3] == ["v2", "payments", "refunds"] and len(parts) == 4:
            return self._plain("get_refund", lambda: self._get_refund(parts[3]))
        if method == "POST" and path == "/v1/notifications/verify-webhook-signature":
            return self._plain("verify", lambda: self._verify(data))
        return 404, {"name": "NOT_FOUND"}, 0.0

    def _failure(self, operation: str) -> str | None:
        queue = self.failures.get(operation)
        return queue.pop(0) if queue else None

    def _plain(self, operation: str, work: Any) -> tuple[int, Any, float]:
        self.calls[operation] += 1
        failure = self._failure(operation)
        if failure == "500":
            return 500, _error("INTERNAL_SERVER_ERROR"), 0.0
        status, payload = work()
        return status, payload, self.slow_seconds if failure == "timeout" else 0.0

    def _once(self, operation: str, request_id: str | None, work: Any) -> tuple[int, Any, float]:
        """Run ``work`` once per ``PayPal-Request-Id``; a repeat gets the first answer."""
        self.calls[operation] += 1
        self.request_ids.append((operation, request_id))
        key = (operation, request_id or "")
        if request_id and key in self.seen_request_ids:
            return (*self.seen_request_ids[key], 0.0)
        failure = self._failure(operation)
        if failure == "500":
            return 500, _error("INTERNAL_SERVER_ERROR"), 0.0
        self._pending_kind = failure
        status, payload = work()
        self._pending_kind = None
        if request_id and status < 500:
            self.seen_request_ids[key] = (status, payload)
        return status, payload, self.slow_seconds if failure == "timeout" else 0.0

    _pending_kind: str | None = None

    # -- operations ---------------------------------------------------------------------

    def _token(self, headers: dict[str, str]) -> Answer:
        self.calls["token"] += 1
        if self._failure("token") == "500":
            return 500, _error("INTERNAL_SERVER_ERROR")
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            return 401, {
                "error": "invalid_client",
                "error_description": "Client Authentication failed",
            }
        token = self._id("A21AA")
        self.tokens[token] = time.monotonic() + self.token_lifetime
        return 200, {
            "scope": "https://uri.paypal.com/services/payments/payment",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-FAKE",
            "expires_in": self.token_lifetime,
        }

    def _authorized(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        return auth.startswith("Bearer ") and self.tokens.get(token, 0) > time.monotonic()

    def _create(self, data: dict[str, Any]) -> Answer:
        if data.get("intent") != "CAPTURE":
            return 422, _error("UNPROCESSABLE_ENTITY", "INTENT_NOT_SUPPORTED")
        unit = data["purchase_units"][0]
        order_id = self._id("5O")
        order = {
            "id": order_id,
            "intent": "CAPTURE",
            "status": "PAYER_ACTION_REQUIRED",
            "purchase_units": [
                {"reference_id": unit.get("reference_id"), "amount": unit["amount"]}
            ],
            "links": [
                {
                    "href": f"{self.url}/v2/checkout/orders/{order_id}",
                    "rel": "self",
                    "method": "GET",
                },
                {
                    "href": f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}",
                    "rel": "payer-action",
                    "method": "GET",
                },
            ],
        }
        self.orders[order_id] = order
        return 200, _public(order)

    def _get_order(self, order_id: str) -> Answer:
        order = self.orders.get(order_id)
        if order is None:
            return 404, _error("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        return 200, self._with_captures(order)

    def _with_captures(self, order: dict[str, Any]) -> dict[str, Any]:
        out = _public(order)
        captures = [self.captures[c] for c in order.get("capture_ids", [])]
        if captures:
            out["purchase_units"][0]["payments"] = {"captures": [dict(c) for c in captures]}
        return out

    def _capture(self, order_id: str) -> Answer:
        order = self.orders.get(order_id)
        if order is None:
            return 404, _error("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        if order.get("capture_ids"):
            return 422, _error("UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED")
        if order["status"] != "APPROVED":
            return 422, _error("UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")
        kind = self._pending_kind
        if kind == "declined":
            return 422, _error("UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED")
        capture_id = self._id("3C")
        capture: dict[str, Any] = {
            "id": capture_id,
            "status": "PENDING" if kind == "pending" else "COMPLETED",
            "amount": dict(order["purchase_units"][0]["amount"]),
            "supplementary_data": {"related_ids": {"order_id": order_id}},
            "refunded": "0",
        }
        if kind == "pending":
            capture["status_details"] = {"reason": "PENDING_REVIEW"}
        self.captures[capture_id] = capture
        order["capture_ids"] = [capture_id]
        order["status"] = "COMPLETED"
        return 201, self._with_captures(order)

    def _refund(self, capture_id: str, data: dict[str, Any]) -> Answer:
        capture = self.captures.get(capture_id)
        if capture is None:
            return 404, _error("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            return 422, _error("UNPROCESSABLE_ENTITY", "CAPTURE_NOT_REFUNDABLE")
        amount = data.get("amount") or capture["amount"]
        value = Decimal(amount["value"])
        left = Decimal(capture["amount"]["value"]) - Decimal(capture["refunded"])
        if value > left:
            return 422, _error("UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
        capture["refunded"] = str(Decimal(capture["refunded"]) + value)
        capture["status"] = "REFUNDED" if value == left else "PARTIALLY_REFUNDED"
        refund_id = self._id("1R")
        refund: dict[str, Any] = {
            "id": refund_id,
            "status": "PENDING" if self._pending_kind == "pending" else "COMPLETED",
            "amount": amount,
            "note_to_payer": data.get("note_to_payer"),
            "capture_id": capture_id,
            "links": [{"href": f"{self.url}/v2/payments/captures/{capture_id}", "rel": "up"}],
        }
        if refund["status"] == "PENDING":
            refund["status_details"] = {"reason": "ECHECK"}
        self.refunds[refund_id] = refund
        return 201, _refund_view(refund)

    def _get_refund(self, refund_id: str) -> Answer:
        refund = self.refunds.get(refund_id)
        if refund is None:
            return 404, _error("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        return 200, _refund_view(refund)

    def _verify(self, data: dict[str, Any]) -> Answer:
        self.verify_payloads.append(data)
        return 200, {"verification_status": self.verify_answer}


def _error(name: str, issue: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "message": name.replace("_", " ").lower()}
    if issue:
        body["details"] = [{"issue": issue, "description": issue.lower()}]
    return body


def _refund_view(refund: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in refund.items() if k != "capture_id"}))


def _public(order: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps({k: v for k, v in order.items() if k != "capture_ids"}))
    return out
