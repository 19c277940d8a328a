"""The PayPal provider against the stateful fake on loopback: approval, capture, refunds,
token caching, PayPal-Request-Id, and injected failures (5xx, timeout, PENDING, DECLINED)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from platform_core.testing import EventRecord


async def _started(shop, paypal):
    order = await shop.order()
    r = await shop.pay(order["id"], "paypal")
    assert r.status_code == 200, r.text
    return r.json()


async def test_pay_creates_a_paypal_order_with_the_payer_action_link(shop, paypal):
    key = uuid.uuid4().hex
    order = await shop.order()
    r = await shop.pay(order["id"], "paypal", key)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "pending" and out["provider"] == "paypal"
    assert out["approval_url"].startswith("https://www.sandbox.paypal.com/checkoutnow?token=")
    created = paypal.orders[out["provider_order_id"]]
    assert created["purchase_units"][0]["amount"] == {"currency_code": "USD", "value": "15.00"}
    assert ("create", key) in paypal.request_ids


async def test_capture_after_approval_pays_once_and_passes_the_key(shop, paypal, platform):
    started = await _started(shop, paypal)
    early = await shop.capture(started["id"])
    assert early.status_code == 409 and "ORDER_NOT_APPROVED" in early.json()["detail"]
    paypal.approve(started["provider_order_id"])
    key = uuid.uuid4().hex
    r = await shop.capture(started["id"], key)
    assert r.status_code == 200 and r.json()["status"] == "paid", r.text
    assert r.json()["captured"] == "15.00"
    assert ("capture", key) in paypal.request_ids
    replay = await shop.capture(started["id"], key)
    assert replay.json() == r.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert paypal.calls["capture"] == 2  # the early refusal and the one capture
    assert len(paypal.captures) == 1
    again = await shop.capture(started["id"])
    assert again.status_code == 409 and again.json()["current_state"] == "paid"
    await platform.deliver_events()
    async with platform.ctx.db.session() as s:
        names = list(await s.scalars(select(EventRecord.name)))
    assert names.count("payments.order.paid") == 1


async def test_the_token_is_cached_until_it_expires(shop, paypal):
    await shop.paid_paypal(paypal)
    await shop.paid_paypal(paypal)
    assert paypal.calls["token"] == 1


async def test_an_expired_token_is_renewed(shop, paypal):
    paypal.token_lifetime = 60  # within the renewal margin: every call fetches a new one
    await shop.paid_paypal(paypal)
    assert paypal.calls["token"] >= 2


async def test_a_5xx_capture_is_503_recorded_and_a_retry_with_the_key_pays(shop, paypal):
    started = await _started(shop, paypal)
    paypal.approve(started["provider_order_id"])
    paypal.fail_next("capture", "500")
    key = uuid.uuid4().hex
    r = await shop.capture(started["id"], key)
    assert r.status_code == 503, r.text
    txs = (await shop.buyer.get(f"/api/payments/orders/{started['id']}/transactions")).json()
    assert [(t["kind"], t["status"]) for t in txs] == [("start", "pending"), ("capture", "error")]
    retry = await shop.capture(started["id"], key)
    assert retry.status_code == 200 and retry.json()["status"] == "paid", retry.text
    assert len(paypal.captures) == 1


async def test_a_timed_out_capture_retried_with_the_key_never_captures_twice(shop, paypal):
    started = await _started(shop, paypal)
    paypal.approve(started["provider_order_id"])
    paypal.fail_next("capture", "timeout")  # PayPal captures, the answer comes too late
    key = uuid.uuid4().hex
    r = await shop.capture(started["id"], key)
    assert r.status_code == 503, r.text
    retry = await shop.capture(started["id"], key)
    assert retry.status_code == 200 and retry.json()["status"] == "paid", retry.text
    assert len(paypal.captures) == 1
    assert [k for op, k in paypal.request_ids if op == "capture"] == [key, key]


async def test_a_pending_capture_is_not_paid_until_completed(shop, paypal, platform):
    started = await _started(shop, paypal)
    paypal.approve(started["provider_order_id"])
    paypal.fail_next("capture", "pending")
    r = await shop.capture(started["id"])
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    assert r.json()["captured"] == "0.00"
    again = await shop.capture(started["id"])
    assert again.status_code == 409 and "pending" in again.json()["detail"]
    [capture_id] = paypal.captures
    paypal.complete_capture(capture_id)
    counts = await platform.ctx.jobs["payments.reconcile"].func(platform.ctx)
    assert counts.get("paid") == 1, counts
    order = (await shop.buyer.get(f"/api/payments/orders/{started['id']}")).json()
    assert order["status"] == "paid" and order["captured"] == "15.00"


async def test_a_declined_capture_fails_the_order(shop, paypal, platform):
    started = await _started(shop, paypal)
    paypal.approve(started["provider_order_id"])
    paypal.fail_next("capture", "declined")
    r = await shop.capture(started["id"])
    assert r.status_code == 200 and r.json()["status"] == "failed", r.text
    assert "INSTRUMENT_DECLINED" in r.json()["failure_reason"]
    await platform.deliver_events()
    async with platform.ctx.db.session() as s:
        names = list(await s.scalars(select(EventRecord.name)))
    assert "payments.order.failed" in names


async def test_paypal_refunds_partial_then_rest(shop, paypal):
    paid = await shop.paid_paypal(paypal)
    key = uuid.uuid4().hex
    r = await shop.refund(paid["id"], "4.00", key)
    assert r.status_code == 201, r.text
    assert r.json()["order"]["status"] == "partially_refunded"
    assert ("refund", key) in paypal.request_ids
    [capture] = paypal.captures.values()
    assert capture["refunded"] == "4.00"
    r = await shop.refund(paid["id"])
    assert r.status_code == 201 and r.json()["order"]["status"] == "refunded"
    assert capture["status"] == "REFUNDED"


async def test_a_5xx_refund_is_503_and_refunds_nothing(shop, paypal):
    paid = await shop.paid_paypal(paypal)
    paypal.fail_next("refund", "500")
    r = await shop.refund(paid["id"], "1.00")
    assert r.status_code == 503
    order = (await shop.buyer.get(f"/api/payments/orders/{paid['id']}")).json()
    assert order["status"] == "paid" and order["refunded"] == "0.00"
    txs = (await shop.admin.get(f"/api/payments/orders/{paid['id']}/transactions")).json()
    assert [(t["kind"], t["status"], t["amount"]) for t in txs][-1] == ("refund", "error", "1.00")


async def test_a_5xx_on_create_is_503_and_the_order_stays_created(shop, paypal):
    order = await shop.order()
    paypal.fail_next("create", "500")
    r = await shop.pay(order["id"], "paypal")
    assert r.status_code == 503
    got = (await shop.buyer.get(f"/api/payments/orders/{order['id']}")).json()
    assert got["status"] == "created"
    txs = (await shop.buyer.get(f"/api/payments/orders/{order['id']}/transactions")).json()
    assert [(t["kind"], t["status"]) for t in txs] == [("start", "error")]
    assert (await shop.pay(order["id"], "paypal")).status_code == 200


async def test_wrong_credentials_are_refused_without_the_secret(platform_factory, paypal):
    settings = {
        "client_id": "someone",
        "client_secret": "not-the-secret-123",
        "base_url": paypal.url,
        "timeout_seconds": 0.5,
    }
    p = await platform_factory(enabled=["payments"], settings={"payments": {"paypal": settings}})
    client = await p.client_for("member")
    r = await client.post(
        "/api/payments/orders",
        json={
            "currency": "EUR",
            "items": [{"description": "x", "unit_price": "1.00"}],
            "subject": {"plugin": "a", "kind": "b", "id": "c"},
        },
    )
    pay = await client.post(
        f"/api/payments/orders/{r.json()['id']}/pay",
        json={"provider": "paypal"},
        headers={"Idempotency-Key": "k"},
    )
    assert pay.status_code == 409 and "refused the credentials" in pay.json()["detail"]
    assert "not-the-secret-123" not in pay.text
