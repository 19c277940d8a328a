"""``pricing.*`` events reach signed webhooks and the inboxes of the client and the admins."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from platform_pricing.service import agents as agents_service

from platform_core.webhooks import signing
from platform_core.webhooks.delivery import deliver_due

NOW = datetime.now(UTC).replace(microsecond=0)


class Receiver:
    """A webhook receiver on loopback recording (headers, body) of every POST."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
async def platform(platform_factory):
    """Pricing with the background loops off: the test drives fan-out and delivery."""
    return await platform_factory(enabled=["pricing"], core={"background": False})


async def deliver(platform) -> None:
    await platform.deliver_events()
    await deliver_due(platform.ctx)


async def test_termination_and_offline_events_reach_webhooks_and_inboxes(
    platform, tenants, admin_client, receiver
):
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
    await deliver(platform)

    names = [h["Platform-Event"] for h, _ in receiver.requests]
    assert sorted(set(names)) == [
        "pricing.agent.offline",
        "pricing.agent.registered",
        "pricing.replica.promoted",
        "pricing.termination.notice",
    ]
    assert names.count("pricing.termination.notice") == 1
    for headers, body in receiver.requests:
        assert signing.verify_signature(secret, headers["Platform-Signature"], body)
        payload = json.loads(body)["payload"]
        assert payload["client_id"] == c.id
    notice = next(
        json.loads(b)["payload"]
        for h, b in receiver.requests
        if h["Platform-Event"] == "pricing.termination.notice"
    )
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
