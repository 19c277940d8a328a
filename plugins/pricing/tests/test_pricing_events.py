"""``pricing.*`` events reach signed webhooks and the inboxes of the client and the admins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from platform_pricing.service import agents as agents_service

from platform_core.testing import verify_signature

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def platform(platform_factory):
    """Pricing with the background loops off: the test drives fan-out and delivery."""
    return await platform_factory(enabled=["pricing"], core={"background": False})


async def test_termination_and_offline_events_reach_webhooks_and_inboxes(
    platform, tenants, admin_client, webhook_receiver
):
    receiver = webhook_receiver
    r = await admin_client.post(
        "/api/core/webhooks", json={"url": receiver.url, "patterns": ["pricing.*"]}
    )
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    c = await tenants.client()
    other = await tenants.client()
    a = await tenants.agent(c, zone="us-east-1a")
    r = await a.http.post(
        f"/api/pricing/agents/{a.id}/reports/termination",
        json={"report_id": uuid.uuid4().hex, "noticed_at": NOW.isoformat()},
    )
    assert r.status_code in (200, 201), r.text
    async with platform.ctx.db.session() as session:
        offline = await agents_service.mark_offline(
            session, NOW + timedelta(hours=2), after_seconds=600
        )
    assert offline == 1
    await platform.deliver_events()
    await platform.deliver_webhooks()

    names = receiver.events()
    assert sorted(set(names)) == [
        "pricing.agent.offline",
        "pricing.agent.registered",
        "pricing.replica.promoted",
        "pricing.termination.notice",
    ]
    assert names.count("pricing.termination.notice") == 1
    for got in receiver.requests:
        assert verify_signature(secret, got.headers["Platform-Signature"], got.body)
        assert got.json()["payload"]["client_id"] == c.id
    [notice_delivery] = receiver.named("pricing.termination.notice")
    notice = notice_delivery.json()["payload"]
    assert notice["agent_id"] == a.id
    assert notice["cloud_id"] == a.body["instance"]["cloud_id"]

    # The client's inbox (read with its own token) and the admin's hold the four notices;
    # the other client's inbox holds none of them.
    inbox = (await c.http.get("/api/core/notifications")).json()
    titles = sorted(n["title"] for n in inbox["items"])
    assert len(titles) == 3, titles
    assert any(t.startswith("Termination notice for instance ") for t in titles)
    assert any(t.startswith("Replica ") and "promoted" in t for t in titles)
    assert any(t.endswith(" is offline") for t in titles)
    admin_inbox = (await admin_client.get("/api/core/notifications")).json()
    assert len(admin_inbox["items"]) == 3
    assert (await other.http.get("/api/core/notifications")).json()["items"] == []
