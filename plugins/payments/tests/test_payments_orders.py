"""Orders through the API: validation, access, the state machine, the manual provider,
refunds and idempotency keys."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from platform_core.testing import EventRecord, Notification

BODY = {
    "currency": "USD",
    "items": [{"description": "Mug", "quantity": 2, "unit_price": "7.50"}],
    "subject": {"plugin": "shop", "kind": "cart", "id": "42"},
}


def _errors(r) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


async def test_member_creates_an_order_with_exact_totals(member_client):
    body = BODY | {
        "items": [
            {"description": "Mug", "quantity": 3, "unit_price": "0.10"},
            {"description": "Tea", "quantity": 1, "unit_price": "0.20"},
        ]
    }
    r = await member_client.post("/api/payments/orders", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["total"] == "0.50" and out["status"] == "created"
    assert out["captured"] == "0.00" and out["refundable"] == "0.00"
    assert out["items"][0] == {"description": "Mug", "quantity": 3, "unit_price": "0.10"}
    assert out["subject"] == {"plugin": "shop", "kind": "cart", "id": "42"}


async def test_zero_decimal_currency_totals_in_whole_units(member_client):
    body = BODY | {"currency": "JPY", "items": [{"description": "x", "unit_price": "1500"}]}
    r = await member_client.post("/api/payments/orders", json=body)
    assert r.status_code == 201 and r.json()["total"] == "1500"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"items": [{"description": "x", "unit_price": "1.234"}]}, "items.0.unit_price"),
        (
            {"currency": "JPY", "items": [{"description": "x", "unit_price": "1.5"}]},
            "items.0.unit_price",
        ),
        ({"items": [{"description": "x", "unit_price": "0"}]}, "items.0.unit_price"),
        ({"items": [{"description": "x", "unit_price": "-1"}]}, "items.0.unit_price"),
        ({"items": [{"description": "x", "unit_price": 1.5}]}, "items.0.unit_price"),
        (
            {"items": [{"description": "x", "unit_price": "99999999999999999"}]},
            "items.0.unit_price",
        ),
        ({"items": [{"description": "x", "quantity": 0, "unit_price": "1"}]}, "items.0.quantity"),
        ({"items": []}, "items"),
        ({"subject": {"plugin": "shop", "kind": "cart"}}, "subject.id"),
    ],
)
async def test_bad_orders_are_422_naming_the_field(member_client, change, field):
    r = await member_client.post("/api/payments/orders", json=BODY | change)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in _errors(r), r.text


async def test_a_too_large_total_is_refused(member_client):
    items = [{"description": "x", "quantity": 1_000_000, "unit_price": "9999999999"}] * 2
    r = await member_client.post("/api/payments/orders", json=BODY | {"items": items})
    assert r.status_code == 422 and "items" in _errors(r)


async def test_members_see_only_their_own_orders(platform, shop):
    order = await shop.order()
    other = await platform.client_for("member")
    assert (await other.get(f"/api/payments/orders/{order['id']}")).status_code == 404
    assert (await shop.pay(order["id"], "manual")).status_code == 200
    r = await other.post(
        f"/api/payments/orders/{order['id']}/capture", headers={"Idempotency-Key": "k1"}
    )
    assert r.status_code == 404
    assert (await other.get("/api/payments/orders")).json()["items"] == []
    mine = (await shop.buyer.get("/api/payments/orders")).json()["items"]
    assert [o["id"] for o in mine] == [order["id"]]
    everyone = (await shop.admin.get("/api/payments/orders")).json()["items"]
    assert order["id"] in [o["id"] for o in everyone]


async def test_manual_payment_needs_an_admin_to_mark_it_paid(shop, platform):
    order = await shop.order()
    r = await shop.pay(order["id"], "manual")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and f"ORDER-{order['id']}" in r.json()["instructions"]
    r = await shop.buyer.post(
        f"/api/payments/orders/{order['id']}/mark-paid",
        json={"reference": "BANK-1"},
        headers={"Idempotency-Key": "m1"},
    )
    assert r.status_code == 403
    paid = await shop.admin.post(
        f"/api/payments/orders/{order['id']}/mark-paid",
        json={"reference": "BANK-1"},
        headers={"Idempotency-Key": "m1"},
    )
    assert paid.status_code == 200 and paid.json()["status"] == "paid", paid.text
    assert paid.json()["captured"] == "15.00"
    txs = (await shop.buyer.get(f"/api/payments/orders/{order['id']}/transactions")).json()
    assert [(t["kind"], t["status"], t["amount"], t["provider_ref"]) for t in txs] == [
        ("start", "pending", "15.00", f"ORDER-{order['id']}"),
        ("capture", "completed", "15.00", "BANK-1"),
    ]
    await platform.deliver_events()
    async with platform.ctx.db.session() as s:
        names = list(await s.scalars(select(EventRecord.name).order_by(EventRecord.id)))
        notes = list(await s.scalars(select(Notification.title)))
    assert names == ["payments.order.created", "payments.order.paid"]
    assert f"Order {order['id']} paid" in notes


async def test_an_illegal_transition_is_409_naming_the_current_state(shop):
    paid = await shop.paid_manual()
    r = await shop.buyer.post(f"/api/payments/orders/{paid['id']}/cancel")
    assert r.status_code == 409
    assert r.json()["current_state"] == "paid" and "is paid" in r.json()["detail"]
    r = await shop.pay(paid["id"], "manual")
    assert r.status_code == 409 and r.json()["current_state"] == "paid"


async def test_buyer_cancels_an_unpaid_order(shop):
    order = await shop.order()
    r = await shop.buyer.post(f"/api/payments/orders/{order['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await shop.pay(order["id"], "manual")
    assert r.status_code == 409 and r.json()["current_state"] == "cancelled"


async def test_partial_then_full_refund_and_never_more(shop, platform):
    paid = await shop.paid_manual()
    r = await shop.refund(paid["id"], "5.00", reference="BANK-R1")
    assert r.status_code == 201, r.text
    assert r.json()["order"]["status"] == "partially_refunded"
    assert r.json()["order"]["refundable"] == "10.00"
    assert r.json()["transaction"]["provider_ref"] == "BANK-R1"
    too_much = await shop.refund(paid["id"], "10.01")
    assert too_much.status_code == 409, too_much.text
    assert too_much.json()["current_state"] == "partially_refunded"
    r = await shop.refund(paid["id"])  # the rest
    assert r.status_code == 201 and r.json()["order"]["status"] == "refunded"
    assert r.json()["order"]["refunded"] == "15.00"
    again = await shop.refund(paid["id"], "0.01")
    assert again.status_code == 409 and again.json()["current_state"] == "refunded"
    await platform.deliver_events()
    async with platform.ctx.db.session() as s:
        refunds = list(
            await s.scalars(
                select(EventRecord.payload).where(EventRecord.name == "payments.order.refunded")
            )
        )
    assert [(p["amount"], p["full"]) for p in refunds] == [("5.00", False), ("10.00", True)]


@pytest.mark.parametrize(("amount", "field"), [("1.001", "amount"), ("0", "amount")])
async def test_bad_refund_amount_is_422(shop, amount, field):
    paid = await shop.paid_manual()
    r = await shop.refund(paid["id"], amount)
    assert r.status_code == 422 and field in _errors(r), r.text


async def test_refund_needs_the_refund_scope(shop, platform):
    paid = await shop.paid_manual()
    r = await shop.buyer.post(
        f"/api/payments/orders/{paid['id']}/refunds",
        json={"reason": "x"},
        headers={"Idempotency-Key": "r"},
    )
    assert r.status_code == 403
    refunder = await platform.client_for(
        "admin", scopes=["payments:read", "payments:write", "payments:refund", "payments:admin"]
    )
    r = await refunder.post(
        f"/api/payments/orders/{paid['id']}/refunds",
        json={"reason": "x"},
        headers={"Idempotency-Key": "r"},
    )
    assert r.status_code == 201


async def test_money_posts_require_an_idempotency_key(shop):
    order = await shop.order()
    r = await shop.buyer.post(
        f"/api/payments/orders/{order['id']}/pay", json={"provider": "manual"}
    )
    assert r.status_code == 422 and "Idempotency-Key" in _errors(r)


async def test_same_key_same_body_replays_other_body_is_refused(shop):
    key = uuid.uuid4().hex
    first = await shop.buyer.post(
        "/api/payments/orders", json=BODY, headers={"Idempotency-Key": key}
    )
    again = await shop.buyer.post(
        "/api/payments/orders", json=BODY, headers={"Idempotency-Key": key}
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = await shop.buyer.post(
        "/api/payments/orders", json=BODY | {"currency": "EUR"}, headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422 and "Idempotency-Key" in _errors(other)
    listed = (await shop.buyer.get("/api/payments/orders")).json()["items"]
    assert len(listed) == 1


async def test_paypal_unconfigured_is_listed_and_refuses_payments(platform_factory):
    p = await platform_factory(enabled=["payments"])
    client = await p.client_for("member")
    providers = {x["name"]: x for x in (await client.get("/api/payments/providers")).json()}
    assert providers["manual"]["configured"] is True
    assert providers["paypal"]["configured"] is False
    assert "client_id" in providers["paypal"]["problem"]
    r = await client.post("/api/payments/orders", json=BODY)
    pay = await client.post(
        f"/api/payments/orders/{r.json()['id']}/pay",
        json={"provider": "paypal"},
        headers={"Idempotency-Key": "p"},
    )
    assert pay.status_code == 409 and "PayPal is not configured" in pay.json()["detail"]


async def test_unknown_provider_is_404(shop):
    order = await shop.order()
    assert (await shop.pay(order["id"], "bitcoin")).status_code == 404


async def test_credentials_are_never_returned(shop, paypal):
    from platform_payments.fakepaypal import CLIENT_SECRET

    text = (await shop.admin.get("/api/payments/providers")).text
    assert CLIENT_SECRET not in text
    paid = await shop.paid_paypal(paypal)
    txs = await shop.admin.get(f"/api/payments/orders/{paid['id']}/transactions")
    assert CLIENT_SECRET not in txs.text and "A21AA" not in txs.text


async def test_order_events_go_out_through_the_core_webhooks(shop, platform, webhook_receiver):
    r = await shop.admin.post(
        "/api/core/webhooks", json={"url": webhook_receiver.url, "patterns": ["payments.order.*"]}
    )
    assert r.status_code == 201, r.text
    paid = await shop.paid_manual()
    await platform.deliver_events()
    await platform.deliver_webhooks()
    names = webhook_receiver.events()
    assert "payments.order.paid" in names and "payments.order.created" in names
    [delivery] = webhook_receiver.named("payments.order.paid")
    envelope = delivery.json()
    assert envelope["plugin"] == "payments"
    assert envelope["payload"]["order_id"] == paid["id"]
    assert envelope["payload"]["captured"] == "15.00"
