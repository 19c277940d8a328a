"""Incoming PayPal webhooks: verified locally with a key and certificate made here (or by
the verify API of the fake), stored once per transmission id, applied in any order."""

from __future__ import annotations

import json
import uuid

import pytest
from platform_payments.models import WebhookDelivery
from sqlalchemy import select

URL = "/api/payments/webhooks/paypal"


def body(event_type: str, resource: dict) -> bytes:
    return json.dumps(
        {"id": f"WH-{uuid.uuid4().hex[:12]}", "event_type": event_type, "resource": resource}
    ).encode()


def capture_resource(capture_id: str, order_id: str, value: str = "15.00") -> dict:
    return {
        "id": capture_id,
        "status": "COMPLETED",
        "amount": {"currency_code": "USD", "value": value},
        "supplementary_data": {"related_ids": {"order_id": order_id}},
    }


async def _order(shop, paypal):
    order = await shop.order()
    r = await shop.pay(order["id"], "paypal")
    assert r.status_code == 200, r.text
    return r.json()


async def _deliveries(platform) -> list[tuple[str, str]]:
    async with platform.ctx.db.session() as s:
        rows = await s.execute(
            select(WebhookDelivery.event_type, WebhookDelivery.outcome).order_by(WebhookDelivery.id)
        )
        return [tuple(r) for r in rows]


async def _status(shop, order_id) -> dict:
    return (await shop.admin.get(f"/api/payments/orders/{order_id}")).json()


async def test_a_verified_capture_completed_pays_the_order(
    shop, paypal, anon_client, signer, platform
):
    started = await _order(shop, paypal)
    raw = body("PAYMENT.CAPTURE.COMPLETED", capture_resource("CAP1", started["provider_order_id"]))
    r = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert r.status_code == 200 and r.json()["outcome"] == "applied", r.text
    got = await _status(shop, started["id"])
    assert got["status"] == "paid" and got["captured"] == "15.00"
    assert await _deliveries(platform) == [("PAYMENT.CAPTURE.COMPLETED", "applied")]


@pytest.mark.parametrize(
    "tamper",
    ["body", "signature", "webhook_id", "cert_host", "missing"],
)
async def test_a_bad_signature_is_400_and_changes_nothing(
    shop, paypal, anon_client, signer, platform, tamper
):
    started = await _order(shop, paypal)
    raw = body("PAYMENT.CAPTURE.COMPLETED", capture_resource("CAP1", started["provider_order_id"]))
    headers = signer.headers(
        raw, webhook_id="WH-OTHER" if tamper == "webhook_id" else "WH-FAKE-0001"
    )
    sent = raw
    if tamper == "body":
        sent = raw.replace(b"15.00", b"15.01")
    elif tamper == "signature":
        headers["PAYPAL-TRANSMISSION-SIG"] = signer.headers(b"other")["PAYPAL-TRANSMISSION-SIG"]
    elif tamper == "cert_host":
        headers["PAYPAL-CERT-URL"] = "https://evil.example.com/certs/cert.pem"
    elif tamper == "missing":
        del headers["PAYPAL-TRANSMISSION-SIG"]
    r = await anon_client.post(URL, content=sent, headers=headers)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await _status(shop, started["id"]))["status"] == "pending"
    assert await _deliveries(platform) == []


async def test_the_certificate_is_fetched_once(shop, paypal, anon_client, signer):
    calls = []
    original = paypal._route

    async def counting(method, path, headers, b):
        if path.startswith("/certs/"):
            calls.append(path)
        return await original(method, path, headers, b)

    paypal._route = counting
    for _ in range(3):
        raw = body("SOMETHING.ELSE", {"id": "x"})
        assert (
            await anon_client.post(URL, content=raw, headers=signer.headers(raw))
        ).status_code == 200
    assert len(calls) == 1


async def test_the_same_delivery_twice_changes_state_once(
    shop, paypal, anon_client, signer, platform
):
    paid = await shop.paid_paypal(paypal)
    [capture_id] = paypal.captures
    refund = {
        "id": "REF1",
        "status": "COMPLETED",
        "amount": {"currency_code": "USD", "value": "5.00"},
        "links": [{"rel": "up", "href": f"{paypal.url}/v2/payments/captures/{capture_id}"}],
    }
    raw = body("PAYMENT.CAPTURE.REFUNDED", refund)
    headers = signer.headers(raw, transmission_id="T-1")
    first = await anon_client.post(URL, content=raw, headers=headers)
    second = await anon_client.post(URL, content=raw, headers=headers)
    assert first.json()["outcome"] == "applied" and second.json()["outcome"] == "duplicate"
    got = await _status(shop, paid["id"])
    assert got["status"] == "partially_refunded" and got["refunded"] == "5.00"
    # the same refund in another delivery (PayPal redelivers) is recognised by its id too
    again = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert again.json()["outcome"] == "no_change"
    assert (await _status(shop, paid["id"]))["refunded"] == "5.00"


async def test_capture_completed_before_our_capture_returns_is_fine(
    shop, paypal, anon_client, signer
):
    started = await _order(shop, paypal)
    paypal.approve(started["provider_order_id"])
    r = await shop.capture(started["id"])
    assert r.status_code == 200 and r.json()["status"] == "paid"
    [capture_id] = paypal.captures
    raw = body(
        "PAYMENT.CAPTURE.COMPLETED", capture_resource(capture_id, started["provider_order_id"])
    )
    late = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert late.json()["outcome"] == "no_change"
    # and the other way round: the webhook first, then our capture call is refused cleanly
    other = await _order(shop, paypal)
    paypal.approve(other["provider_order_id"])
    raw = body("PAYMENT.CAPTURE.COMPLETED", capture_resource("CAPX", other["provider_order_id"]))
    assert (await anon_client.post(URL, content=raw, headers=signer.headers(raw))).json()[
        "outcome"
    ] == "applied"
    r = await shop.capture(other["id"])
    assert r.status_code == 409 and r.json()["current_state"] == "paid"
    txs = (await shop.admin.get(f"/api/payments/orders/{other['id']}/transactions")).json()
    assert [(t["kind"], t["status"]) for t in txs] == [
        ("start", "pending"),
        ("capture", "completed"),
    ]


async def test_capture_denied_fails_a_pending_capture(shop, paypal, anon_client, signer):
    started = await _order(shop, paypal)
    paypal.approve(started["provider_order_id"])
    paypal.fail_next("capture", "pending")
    assert (await shop.capture(started["id"])).json()["status"] == "pending"
    [capture_id] = paypal.captures
    resource = capture_resource(capture_id, started["provider_order_id"]) | {"status": "DECLINED"}
    raw = body("PAYMENT.CAPTURE.DENIED", resource)
    r = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert r.json()["outcome"] == "applied"
    got = await _status(shop, started["id"])
    assert got["status"] == "failed" and "denied" in got["failure_reason"]


async def test_capture_reversed_refunds_the_order(shop, paypal, anon_client, signer):
    paid = await shop.paid_paypal(paypal)
    [capture_id] = paypal.captures
    raw = body(
        "PAYMENT.CAPTURE.REVERSED",
        capture_resource(capture_id, paid["provider_order_id"]) | {"status": "REVERSED"},
    )
    r = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert r.json()["outcome"] == "applied"
    got = await _status(shop, paid["id"])
    assert got["status"] == "refunded" and got["refunded"] == "15.00"


async def test_approval_reversed_fails_the_order(shop, paypal, anon_client, signer):
    started = await _order(shop, paypal)
    raw = body("CHECKOUT.PAYMENT-APPROVAL.REVERSED", {"order_id": started["provider_order_id"]})
    r = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert r.json()["outcome"] == "applied"
    assert (await _status(shop, started["id"]))["status"] == "failed"


async def test_a_refund_before_the_capture_is_known_asks_for_redelivery(
    shop, paypal, anon_client, signer, platform
):
    started = await _order(shop, paypal)
    refund = {
        "id": "REF9",
        "status": "COMPLETED",
        "amount": {"currency_code": "USD", "value": "1.00"},
        "supplementary_data": {"related_ids": {"order_id": started["provider_order_id"]}},
    }
    raw = body("PAYMENT.CAPTURE.REFUNDED", refund)
    headers = signer.headers(raw)
    r = await anon_client.post(URL, content=raw, headers=headers)
    assert r.status_code == 503
    assert await _deliveries(platform) == []  # not stored: the redelivery is handled
    assert (await _status(shop, started["id"]))["status"] == "pending"


async def test_unknown_events_are_stored_and_ignored(shop, anon_client, signer, platform):
    raw = body("BILLING.SUBSCRIPTION.CREATED", {"id": "I-1"})
    r = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert r.status_code == 200 and r.json()["outcome"] == "ignored"
    assert await _deliveries(platform) == [("BILLING.SUBSCRIPTION.CREATED", "ignored")]


async def test_unknown_provider_is_404_and_manual_takes_no_webhooks(anon_client):
    assert (await anon_client.post("/api/payments/webhooks/nope", content=b"{}")).status_code == 404
    assert (
        await anon_client.post("/api/payments/webhooks/manual", content=b"{}")
    ).status_code == 400


async def test_verification_by_the_paypal_api(platform_factory, paypal, signer):
    from platform_payments.fakepaypal import CLIENT_ID, CLIENT_SECRET

    settings = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": paypal.url,
        "webhook_id": "WH-FAKE-0001",
        "webhook_verification": "api",
        "timeout_seconds": 0.5,
    }
    p = await platform_factory(enabled=["payments"], settings={"payments": {"paypal": settings}})
    anon = p.client()
    raw = body("SOMETHING.ELSE", {"id": "x"})
    headers = signer.headers(raw)
    r = await anon.post("/api/payments/webhooks/paypal", content=raw, headers=headers)
    assert r.status_code == 200, r.text
    [sent] = paypal.verify_payloads
    assert sent["transmission_id"] == headers["PAYPAL-TRANSMISSION-ID"]
    assert (
        sent["webhook_id"] == "WH-FAKE-0001"
        and sent["webhook_event"]["event_type"] == "SOMETHING.ELSE"
    )
    paypal.verify_answer = "FAILURE"
    raw = body("SOMETHING.ELSE", {"id": "y"})
    r = await anon.post("/api/payments/webhooks/paypal", content=raw, headers=signer.headers(raw))
    assert r.status_code == 400


async def test_a_webhook_racing_our_capture_call_pays_once(
    shop, paypal, anon_client, signer, platform
):
    import asyncio

    from platform_core.testing import EventRecord

    started = await _order(shop, paypal)
    paypal.approve(started["provider_order_id"])
    paypal.slow_seconds = 0.3  # PayPal captures at once, its answer takes 0.3 s
    paypal.fail_next("capture", "timeout")
    capturing = asyncio.create_task(shop.capture(started["id"]))
    while not paypal.captures:  # the capture exists at PayPal, our call has no answer yet
        await asyncio.sleep(0.01)
    [capture_id] = paypal.captures
    raw = body(
        "PAYMENT.CAPTURE.COMPLETED", capture_resource(capture_id, started["provider_order_id"])
    )
    hook = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    captured = await capturing
    assert hook.status_code == 200 and hook.json()["outcome"] in ("no_change", "applied")
    assert captured.status_code in (200, 409), captured.text
    got = await _status(shop, started["id"])
    assert got["status"] == "paid" and got["captured"] == "15.00"
    txs = (await shop.admin.get(f"/api/payments/orders/{started['id']}/transactions")).json()
    assert [(t["kind"], t["status"]) for t in txs] == [
        ("start", "pending"),
        ("capture", "completed"),
    ]
    await platform.deliver_events()
    async with platform.ctx.db.session() as s:
        names = list(await s.scalars(select(EventRecord.name)))
    assert names.count("payments.order.paid") == 1


async def test_a_capture_in_another_currency_is_stored_and_changes_nothing(
    shop, paypal, anon_client, signer, platform
):
    started = await _order(shop, paypal)
    resource = capture_resource("CAPEUR", started["provider_order_id"])
    resource["amount"]["currency_code"] = "EUR"
    raw = body("PAYMENT.CAPTURE.COMPLETED", resource)
    r = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert r.status_code == 200 and r.json()["outcome"] == "illegal"
    assert (await _status(shop, started["id"]))["status"] == "pending"
