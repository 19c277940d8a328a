"""``platform_payments.api`` (for other plugins) and where PayPal's credentials come from."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from platform_payments.api import Item, Subject, create_order, order_state

from platform_core import NotFound, ValidationFailed


async def test_another_plugin_sells_through_an_order(platform, shop):
    buyer = await platform.user("member")
    async with platform.ctx.db.session() as session:
        state = await create_order(
            session,
            ctx=platform.ctx,
            buyer_id=buyer.id,
            subject=Subject("tickets", "seat", "A-12"),
            currency="JPY",
            items=[Item("Seat A-12", 2, "4500")],
        )
    assert state.status == "created" and state.total == Decimal("9000")
    assert state.subject == Subject("tickets", "seat", "A-12")
    async with platform.ctx.db.session() as session:
        again = await order_state(session, state.id)
    assert again == state


async def test_the_api_refuses_bad_money_naming_the_field(platform):
    async with platform.ctx.db.session() as session:
        with pytest.raises(ValidationFailed) as bad:
            await create_order(
                session,
                ctx=platform.ctx,
                buyer_id=1,
                subject=Subject("t", "s", "1"),
                currency="USD",
                items=[Item("x", 1, "0.001")],
            )
    assert bad.value.extra["errors"][0]["field"] == "items.0.unit_price"
    async with platform.ctx.db.session() as session:
        with pytest.raises(NotFound):
            await order_state(session, 999)


@pytest.mark.parametrize("platform_settings", [{"payments": {"max_items": 2}}])
async def test_the_api_limits_line_items_to_the_configured_max_items(platform):
    """``[plugins.payments] max_items`` applies to other plugins' orders too, not the
    default of 100: 3 items are refused naming ``items``, 2 are fine."""
    subject = Subject("tickets", "seat", "B-1")
    async with platform.ctx.db.session() as session:
        with pytest.raises(ValidationFailed) as bad:
            await create_order(
                session,
                ctx=platform.ctx,
                buyer_id=1,
                subject=subject,
                currency="USD",
                items=[Item(f"seat {i}", 1, "1.00") for i in range(3)],
            )
    assert bad.value.extra["errors"][0]["field"] == "items"
    assert "at most 2" in bad.value.extra["errors"][0]["message"]
    async with platform.ctx.db.session() as session:
        ok = await create_order(
            session,
            ctx=platform.ctx,
            buyer_id=1,
            subject=subject,
            currency="USD",
            items=[Item(f"seat {i}", 1, "1.00") for i in range(2)],
        )
    assert ok.total == Decimal("2.00") and ok.refund_pending == Decimal("0.00")


async def test_paypal_credentials_may_come_from_the_environment(platform_factory, monkeypatch):
    monkeypatch.setenv("PLATFORM_PAYMENTS_PAYPAL_CLIENT_ID", "env-id")
    monkeypatch.setenv("PLATFORM_PAYMENTS_PAYPAL_CLIENT_SECRET", "env-secret-456")
    p = await platform_factory(enabled=["payments"])
    client = await p.client_for("member")
    r = await client.get("/api/payments/providers")
    paypal = next(x for x in r.json() if x["name"] == "paypal")
    assert paypal["configured"] is True and "env-secret-456" not in r.text


async def test_credentials_never_reach_the_logs(platform_factory, paypal, caplog):
    settings = {
        "client_id": "someone",
        "client_secret": "never-log-me-789",
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
    with caplog.at_level(logging.DEBUG):
        await client.post(
            f"/api/payments/orders/{r.json()['id']}/pay",
            json={"provider": "paypal"},
            headers={"Idempotency-Key": "k"},
        )
    assert caplog.records  # the refusal was logged...
    assert "never-log-me-789" not in caplog.text  # ...without the secret
    assert "someone" not in caplog.text
