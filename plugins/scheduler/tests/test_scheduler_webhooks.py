"""Scheduler events reach outbound webhooks: signed ``scheduler.booking.*`` deliveries.

A receiver on 127.0.0.1 (a threaded HTTP server) records what the platform POSTs; the
webhook is registered through the core API. The platform runs without its background loops
so that the test drives fan-out and one webhook delivery pass itself (deterministic), and
the signature is recomputed here from the documented scheme (HMAC-SHA256 of
``"<t>." + raw body`` keyed with the webhook's secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

B = "/api/scheduler/bookings"


@pytest.fixture
async def platform(platform_factory):
    """Inventory + scheduler with the background loops off (the tests deliver)."""
    return await platform_factory(enabled=["inventory", "scheduler"], core={"background": False})


async def deliver(platform) -> None:
    """Fan out every published event, then run one webhook delivery pass."""
    await platform.deliver_events()
    await platform.deliver_webhooks()


@pytest.fixture
def receiver(webhook_receiver):
    """The core's loopback webhook receiver (``platform_core.testing``)."""
    return webhook_receiver


def signed_by(secret: str, header: str, body: bytes) -> bool:
    """Recompute ``Platform-Signature`` (``t=<unix>,v1=<hex>``) and check freshness."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    t = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - t) < 300


async def test_booking_created_and_cancelled_reach_webhook_signed(
    platform, admin_client, member_client, lab, at, receiver
):
    r = await admin_client.post(
        "/api/core/webhooks", json={"url": receiver.url, "patterns": ["scheduler.booking.*"]}
    )
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    window = at(3)
    r = await member_client.post(B, json={"device_ids": [lab["ids"][0]], **window})
    assert r.status_code == 201, r.text
    booking = r.json()
    await deliver(platform)

    [got] = receiver.named("scheduler.booking.created")
    headers, body = got.headers, got.body
    assert signed_by(secret, headers["Platform-Signature"], body)
    assert not signed_by(secret, headers["Platform-Signature"], body.replace(b"approved", b"x"))
    assert not signed_by("whsec_other", headers["Platform-Signature"], body)
    envelope = json.loads(body)
    assert envelope["id"] == headers["Platform-Event-Id"]
    assert envelope["name"] == "scheduler.booking.created"
    assert envelope["plugin"] == "scheduler"
    payload = envelope["payload"]
    assert payload["booking_id"] == booking["id"]
    assert payload["owner_id"] == booking["owner_id"]
    assert payload["status"] == "approved"
    assert payload["device_ids"] == [lab["ids"][0]]
    assert payload["start"][:16] == window["start"][:16]
    assert payload["end"][:16] == window["end"][:16]

    r = await member_client.delete(f"{B}/{booking['id']}")
    assert r.status_code in (200, 204), r.text
    await deliver(platform)
    [got] = receiver.named("scheduler.booking.cancelled")
    headers, body = got.headers, got.body
    assert signed_by(secret, headers["Platform-Signature"], body)
    assert json.loads(body)["payload"]["booking_id"] == booking["id"]
    assert len(receiver.named("scheduler.booking.created")) == 1  # not delivered twice


async def test_webhook_patterns_filter_scheduler_events(
    platform, admin_client, member_client, lab, at, receiver
):
    r = await admin_client.post(
        "/api/core/webhooks",
        json={"url": receiver.url, "patterns": ["scheduler.booking.cancelled"]},
    )
    assert r.status_code == 201, r.text
    r = await member_client.post(B, json={"device_ids": [lab["ids"][1]], **at(2)})
    assert r.status_code == 201, r.text
    await deliver(platform)
    assert receiver.requests == []
    await member_client.delete(f"{B}/{r.json()['id']}")
    await deliver(platform)
    assert receiver.events() == ["scheduler.booking.cancelled"]
