"""Outbound webhooks over real HTTP: a receiver on 127.0.0.1 records what the platform sends.

Most tests run with the background loops off and call fan-out and one delivery pass
directly (deterministic); backoff waits are skipped by making pending deliveries due.
A few run the real loop to show it delivers on its own, isolates slow receivers and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from platform_core.config import CoreSettings
from platform_core.db import utcnow
from platform_core.events.dispatcher import fan_out
from platform_core.events.outbox import publish
from platform_core.webhooks import delivery, service, signing, targets
from platform_core.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery

DOC = Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class Server(ThreadingHTTPServer):
    """A threading HTTP server with a listen backlog for a burst of concurrent deliveries
    (the default 5 drops connections under load, and they time out)."""

    request_queue_size = 64


@dataclass
class Receiver:
    """A tiny HTTP server in a thread: records requests, can fail, be slow or redirect."""

    requests: list[Received] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 500
    status: int = 200
    delay: float = 0.0
    redirect_to: str | None = None
    server: ThreadingHTTPServer | None = None
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        """Serve on a free port of 127.0.0.1 in a daemon thread."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                with receiver.lock:
                    receiver.active += 1
                    receiver.max_active = max(receiver.max_active, receiver.active)
                try:
                    self.answer()
                finally:
                    with receiver.lock:
                        receiver.active -= 1

            def answer(self) -> None:
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = receiver.status
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    status = receiver.fail_status
                payload = b"nope" if status >= 300 else b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (timeout test)
                    self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def url(self, path: str = "/hook") -> str:
        """The URL of ``path`` on this receiver."""
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def events(self) -> list[str]:
        """The event names received, in order."""
        return [r.headers["Platform-Event"] for r in self.requests]

    def close(self) -> None:
        """Stop serving and free the port."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver():
    """A running receiver, closed after the test."""
    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture
def other_receiver():
    """A second receiver, for tests with two webhooks."""
    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture
async def hooks(platform_factory):
    """A platform with the background loops off: the tests drive fan-out and delivery."""
    return await platform_factory(core={"background": False, "webhooks": {"timeout_seconds": 5}})


@pytest.fixture
async def admin(hooks):
    """A client authenticated as an admin of ``hooks``."""
    return await hooks.client_for("admin")


async def register(admin, url: str, patterns=("*",), **extra: Any) -> dict[str, Any]:
    """Register a webhook through the API; return the created webhook (with its secret)."""
    r = await admin.post(
        "/api/core/webhooks", json={"url": url, "patterns": list(patterns), **extra}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def emit(platform, *names: str, payload: dict[str, Any] | None = None) -> list[str]:
    """Publish events in one committed transaction; return their ids."""
    async with platform.ctx.db.session() as session:
        return [
            publish(session, name=n, payload=payload or {"n": i}, actor="tester")
            for i, n in enumerate(names)
        ]


async def pump(platform) -> int:
    """Fan out published events, then run one delivery pass."""
    await fan_out(platform.ctx)
    return await delivery.deliver_due(platform.ctx)


async def make_due(platform) -> None:
    """Skip the backoff wait of every pending delivery."""
    async with platform.ctx.db.session() as session:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.state == "pending")
            .values(next_attempt_at=utcnow())
        )


async def deliveries(platform) -> list[WebhookDelivery]:
    """Every webhook delivery, oldest first."""
    async with platform.ctx.db.session() as session:
        return list((await session.scalars(select(WebhookDelivery).order_by("id"))).all())


def doc_snippet() -> str:
    """The verification snippet of docs/webhooks.md (the python block after its marker)."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- verify-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/webhooks.md has no <!-- verify-snippet --> python block"
    return match.group(1)


def doc_verify() -> Any:
    """``verify_signature`` as defined by the snippet in docs/webhooks.md."""
    namespace: dict[str, Any] = {}
    exec(compile(doc_snippet(), str(DOC), "exec"), namespace)
    return namespace["verify_signature"]


# --- signing ------------------------------------------------------------------------------


def test_verify_signature_accepts_own_signature_and_refuses_tampering():
    body = b'{"id":"x"}'
    header = signing.sign("whsec_k", body, timestamp=1_700_000_000)
    now = 1_700_000_010
    assert signing.verify_signature("whsec_k", header, body, now=now)
    assert not signing.verify_signature("whsec_other", header, body, now=now)
    assert not signing.verify_signature("whsec_k", header, body + b" ", now=now)
    assert not signing.verify_signature("whsec_k", header, body, now=now + 301)
    assert signing.verify_signature("whsec_k", header, body, tolerance=600, now=now + 301)


@pytest.mark.parametrize(
    "header", ["", "t=1", "v1=abc", "t=x,v1=abc", "t=²,v1=ab", "garbage", "t=1,v1=é"]
)
def test_verify_signature_refuses_malformed_headers(header):
    assert signing.verify_signature("whsec_k", header, b"{}", now=1) is False
    assert doc_verify()("whsec_k", header, b"{}", now=1) is False


def test_doc_snippet_is_the_signing_modules_function():
    source = inspect.getsource(signing.verify_signature)
    assert source in doc_snippet()
    assert not re.search(r"^(from|import) (?!hashlib|hmac|time)", doc_snippet(), re.M)


def test_backoff_doubles_from_ten_seconds_and_caps_at_an_hour():
    assert [delivery.backoff(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert delivery.backoff(9) == 2560
    assert delivery.backoff(10) == delivery.backoff(50) == 3600


# --- delivery -----------------------------------------------------------------------------


async def test_delivery_is_signed_and_verifies_with_documented_snippet(hooks, admin, receiver):
    hook = await register(admin, receiver.url(), ["inventory.*"])
    [uid] = await emit(hooks, "inventory.device.created", payload={"device_id": 7})
    assert await pump(hooks) == 1
    [req] = receiver.requests
    assert req.path == "/hook"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"].startswith("platform-webhooks/")
    assert req.headers["Platform-Event-Id"] == uid
    assert req.headers["Platform-Event"] == "inventory.device.created"
    assert req.headers["Platform-Delivery-Attempt"] == "1"
    envelope = req.json()
    assert envelope["id"] == uid
    assert envelope["name"] == "inventory.device.created"
    assert envelope["plugin"] == "inventory"
    assert envelope["actor"] == "tester"
    assert envelope["payload"] == {"device_id": 7}
    signature = req.headers["Platform-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    assert doc_verify()(hook["secret"], signature, req.body)
    assert signing.verify_signature(hook["secret"], signature, req.body)
    assert not doc_verify()(hook["secret"], signature, req.body.replace(b"7", b"8"))
    [d] = await deliveries(hooks)
    assert (d.state, d.attempts, d.last_status) == ("succeeded", 1, 200)
    assert d.delivered_at is not None


async def test_delivery_retries_with_backoff_then_succeeds_after_server_errors(
    hooks, admin, receiver
):
    hook = await register(admin, receiver.url())
    receiver.fail_next = 2
    [uid] = await emit(hooks, "inventory.device.created")
    expected = [10, 20]
    for wait in expected:
        before = utcnow()
        assert await pump(hooks) == 1
        [d] = await deliveries(hooks)
        assert d.state == "pending"
        delay = (d.next_attempt_at - before).total_seconds()
        assert wait - 1 < delay < wait + 5, (wait, delay)
        assert await delivery.deliver_due(hooks.ctx) == 0  # not due yet
        await make_due(hooks)
    assert await pump(hooks) == 1
    assert len(receiver.requests) == 3
    assert {r.headers["Platform-Event-Id"] for r in receiver.requests} == {uid}
    assert [r.headers["Platform-Delivery-Attempt"] for r in receiver.requests] == ["1", "2", "3"]
    r = await admin.get(f"/api/core/webhooks/{hook['id']}/deliveries")
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["state"] == "succeeded"
    assert item["event_id"] == uid
    assert item["attempt_count"] == 3
    assert item["next_attempt_at"] is None
    assert [a["status_code"] for a in item["attempts"]] == [500, 500, 200]
    assert item["attempts"][0]["error"] == "HTTP 500: nope"
    assert item["attempts"][2]["error"] is None
    assert all(a["duration_ms"] >= 0 for a in item["attempts"])


async def test_delivery_fails_when_retry_window_is_over(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    receiver.status = 503
    await emit(hooks, "inventory.device.created")
    await fan_out(hooks.ctx)
    hours = hooks.ctx.config.core.webhooks.retry_hours
    async with hooks.ctx.db.session() as session:  # created just under a day ago
        await session.execute(
            update(WebhookDelivery).values(
                created_at=utcnow() - timedelta(hours=hours) + timedelta(seconds=5)
            )
        )
    assert await delivery.deliver_due(hooks.ctx) == 1
    [d] = await deliveries(hooks)
    assert d.state == "pending"
    deadline = d.created_at + timedelta(hours=hours)
    assert d.next_attempt_at <= deadline  # the last try is at the end of the window
    async with hooks.ctx.db.session() as session:
        await session.execute(
            update(WebhookDelivery).values(created_at=d.created_at - timedelta(seconds=10))
        )
    await make_due(hooks)
    assert await delivery.deliver_due(hooks.ctx) == 1
    [d] = await deliveries(hooks)
    assert (d.state, d.attempts, d.last_status) == ("failed", 2, 503)
    await make_due(hooks)
    assert await delivery.deliver_due(hooks.ctx) == 0
    assert len(receiver.requests) == 2
    r = await admin.get(f"/api/core/webhooks/{hook['id']}/deliveries", params={"state": "failed"})
    assert r.json()["total"] == 1


async def test_delivery_fails_quickly_with_tiny_retry_window(platform_factory, receiver):
    platform = await platform_factory(
        core={"background": False, "webhooks": {"retry_hours": 0.002}}  # 7.2 s
    )
    admin = await platform.client_for("admin")
    await register(admin, receiver.url())
    receiver.status = 500
    await emit(platform, "inventory.device.created")
    await pump(platform)
    [d] = await deliveries(platform)
    assert d.state == "pending"
    assert (d.next_attempt_at - d.created_at).total_seconds() <= 7.2  # not the 10 s backoff
    async with platform.ctx.db.session() as session:  # the window is over (no sleeping)
        await session.execute(
            update(WebhookDelivery).values(created_at=utcnow() - timedelta(seconds=8))
        )
    await make_due(platform)
    await delivery.deliver_due(platform.ctx)
    [d] = await deliveries(platform)
    assert d.state == "failed"


async def test_redeliver_sends_again_and_keeps_history(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    [uid] = await emit(hooks, "inventory.device.created")
    await pump(hooks)
    [d] = await deliveries(hooks)
    r = await admin.post(f"/api/core/webhooks/{hook['id']}/deliveries/{d.id}/redeliver")
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "pending"
    assert len(r.json()["attempts"]) == 1
    assert await delivery.deliver_due(hooks.ctx) == 1
    assert [q.headers["Platform-Event-Id"] for q in receiver.requests] == [uid, uid]
    r = await admin.get(f"/api/core/webhooks/{hook['id']}/deliveries")
    [item] = r.json()["items"]
    assert item["state"] == "succeeded"
    assert [a["status_code"] for a in item["attempts"]] == [200, 200]


async def test_redeliver_failed_delivery_succeeds_after_receiver_recovers(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    receiver.status = 500
    await emit(hooks, "inventory.device.created")
    await fan_out(hooks.ctx)
    async with hooks.ctx.db.session() as session:
        await session.execute(
            update(WebhookDelivery).values(created_at=utcnow() - timedelta(days=2))
        )
    await delivery.deliver_due(hooks.ctx)
    [d] = await deliveries(hooks)
    assert d.state == "failed"
    receiver.status = 200
    url = f"/api/core/webhooks/{hook['id']}/deliveries/{d.id}/redeliver"
    assert (await admin.post(url)).status_code == 202
    await delivery.deliver_due(hooks.ctx)
    [d] = await deliveries(hooks)
    assert (d.state, d.attempts) == ("succeeded", 2)


async def test_redeliver_unknown_or_foreign_delivery_is_404(hooks, admin, receiver):
    a = await register(admin, receiver.url())
    b = await register(admin, receiver.url("/other"))
    await emit(hooks, "inventory.device.created")
    await fan_out(hooks.ctx)
    mine = next(d for d in await deliveries(hooks) if d.webhook_id == a["id"])
    r = await admin.post(f"/api/core/webhooks/{b['id']}/deliveries/{mine.id}/redeliver")
    assert r.status_code == 404
    r = await admin.post(f"/api/core/webhooks/{a['id']}/deliveries/999999/redeliver")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_patterns_select_matching_events(hooks, admin, receiver, other_receiver):
    await register(admin, receiver.url(), ["inventory.*"])
    await register(admin, other_receiver.url(), ["pricing.price.changed", "scheduler.*"])
    await emit(
        hooks,
        "inventory.device.created",
        "pricing.price.changed",
        "inventory.rack.slot.freed",
        "pricing.price.deleted",
        "scheduler.booking.created",
        "inventoryx.thing.done",
    )
    assert await pump(hooks) == 4
    assert sorted(receiver.events()) == ["inventory.device.created", "inventory.rack.slot.freed"]
    assert sorted(other_receiver.events()) == [
        "pricing.price.changed",
        "scheduler.booking.created",
    ]


async def test_deactivated_webhook_receives_nothing(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    await emit(hooks, "inventory.device.created")
    await fan_out(hooks.ctx)  # one delivery already pending
    r = await admin.patch(f"/api/core/webhooks/{hook['id']}", json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    await emit(hooks, "inventory.device.updated")
    await pump(hooks)
    await make_due(hooks)
    await delivery.deliver_due(hooks.ctx)
    assert receiver.requests == []
    [d] = await deliveries(hooks)
    assert (d.state, d.last_error) == ("failed", "webhook deactivated")
    redeliver = f"/api/core/webhooks/{hook['id']}/deliveries/{d.id}/redeliver"
    assert (await admin.post(redeliver)).status_code == 409
    await admin.patch(f"/api/core/webhooks/{hook['id']}", json={"is_active": True})
    assert (await admin.post(redeliver)).status_code == 202
    await delivery.deliver_due(hooks.ctx)
    assert receiver.events() == ["inventory.device.created"]


async def test_deleted_webhook_receives_nothing_and_loses_its_log(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    await emit(hooks, "inventory.device.created")
    await fan_out(hooks.ctx)
    r = await admin.delete(f"/api/core/webhooks/{hook['id']}")
    assert r.status_code == 204 and r.content == b""
    assert await pump(hooks) == 0
    assert receiver.requests == []
    assert await deliveries(hooks) == []
    assert (await admin.get(f"/api/core/webhooks/{hook['id']}")).status_code == 404
    assert (await admin.delete(f"/api/core/webhooks/{hook['id']}")).status_code == 404


async def test_redirect_is_not_followed_and_counts_as_failure(hooks, admin, receiver):
    receiver.redirect_to = "http://127.0.0.1:1/elsewhere"
    await register(admin, receiver.url())
    await emit(hooks, "inventory.device.created")
    await pump(hooks)
    [d] = await deliveries(hooks)
    assert (d.state, d.last_status) == ("pending", 302)
    assert "redirects are not followed" in (d.last_error or "")
    assert len(receiver.requests) == 1


async def test_unreachable_receiver_is_recorded_as_error(hooks, admin, receiver):
    url = receiver.url()
    receiver.close()  # nothing listens on that port any more
    await register(admin, url)
    await emit(hooks, "inventory.device.created")
    await pump(hooks)
    [d] = await deliveries(hooks)
    assert d.state == "pending" and d.last_status is None
    assert d.last_error == delivery.CONNECTION_FAILED  # the cause is in the server log only


async def test_slow_receiver_times_out_and_is_retried(platform_factory, receiver):
    platform = await platform_factory(
        core={"background": False, "webhooks": {"timeout_seconds": 0.3}}
    )
    admin = await platform.client_for("admin")
    receiver.delay = 6.0
    await register(admin, receiver.url())
    await emit(platform, "inventory.device.created")
    started = time.monotonic()
    await pump(platform)
    # Gave up long before the receiver answers (a margin for a busy CI machine, where this
    # pass once took 2.2 s with a 1 s receiver).
    assert time.monotonic() - started < 4.0
    [d] = await deliveries(platform)
    assert d.state == "pending"
    assert d.last_error == "timed out after 0.3s"


async def test_concurrent_passes_send_each_delivery_once(hooks, admin, receiver):
    await register(admin, receiver.url())
    await emit(hooks, *[f"inventory.device.n{i}" for i in range(12)])
    await fan_out(hooks.ctx)

    async def drain() -> int:
        sent = 0
        while n := await delivery.deliver_due(hooks.ctx):
            sent += n
        return sent

    counts = await asyncio.gather(drain(), drain(), drain())
    assert sum(counts) == 12
    assert sorted(receiver.events()) == sorted(f"inventory.device.n{i}" for i in range(12))
    assert {d.state for d in await deliveries(hooks)} == {"succeeded"}


# --- the background loop -------------------------------------------------------------------


async def wait_for(predicate, timeout: float = 5.0) -> float:
    """Wait until ``predicate()`` is true; return the seconds it took."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "timed out waiting"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_loop_delivers_published_events_in_the_background(platform_factory, receiver):
    platform = await platform_factory()  # background loops on, as in `platformctl serve`
    admin = await platform.client_for("admin")
    await register(admin, receiver.url(), ["inventory.*"])
    await emit(platform, "inventory.device.created")
    waited = await wait_for(lambda: len(receiver.requests) == 1)
    assert waited < 2.0  # woken by the commit, not after several poll intervals
    for _ in range(100):
        [d] = await deliveries(platform)
        if d.state == "succeeded":
            break
        await asyncio.sleep(0.02)
    assert d.state == "succeeded"


async def test_loop_keeps_fast_webhooks_flowing_while_one_is_slow(
    hooks, admin, receiver, other_receiver
):
    receiver.delay = 1.0
    await register(admin, receiver.url(), ["inventory.*"])
    await register(admin, other_receiver.url(), ["inventory.*"])
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run_webhook_deliveries(hooks.ctx, stop))
    try:
        await emit(hooks, "inventory.device.created")
        await fan_out(hooks.ctx)
        delivery.wake_deliveries()
        await wait_for(lambda: len(other_receiver.requests) == 1, timeout=1.0)
        await emit(hooks, "inventory.device.updated")
        await fan_out(hooks.ctx)
        delivery.wake_deliveries()
        await wait_for(lambda: len(other_receiver.requests) == 2, timeout=1.0)
        assert len(receiver.requests) >= 1  # the slow one is still answering its first
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def test_loop_drains_a_backlog_with_bounded_concurrency_per_webhook(hooks, admin, receiver):
    receiver.delay = 0.05
    await register(admin, receiver.url())
    await emit(hooks, *[f"inventory.device.n{i}" for i in range(20)])
    await fan_out(hooks.ctx)
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run_webhook_deliveries(hooks.ctx, stop))
    try:
        await wait_for(lambda: len(receiver.requests) == 20)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert 1 < receiver.max_active <= delivery.PER_WEBHOOK
    assert {d.state for d in await deliveries(hooks)} == {"succeeded"}


async def test_loop_stops_promptly_and_releases_leases_of_cut_attempts(
    hooks, admin, receiver, monkeypatch
):
    monkeypatch.setattr(delivery, "STOP_GRACE", 0.3)
    receiver.delay = 5.0
    await register(admin, receiver.url())
    await emit(hooks, "inventory.device.created")
    await fan_out(hooks.ctx)
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run_webhook_deliveries(hooks.ctx, stop))
    await wait_for(lambda: len(receiver.requests) == 1)
    stop.set()
    started = time.monotonic()
    await asyncio.wait_for(task, timeout=5)
    assert time.monotonic() - started < delivery.STOP_GRACE + 1
    [d] = await deliveries(hooks)
    assert (d.state, d.locked_until) == ("pending", None)


async def test_loop_stops_at_once_when_idle(hooks):
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run_webhook_deliveries(hooks.ctx, stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=0.5)


# --- the API ------------------------------------------------------------------------------


async def test_create_returns_secret_once_and_never_again(hooks, admin, receiver):
    hook = await register(admin, receiver.url(), ["inventory.*"], description="ops")
    secret = hook["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert hook["patterns"] == ["inventory.*"] and hook["is_active"] is True
    for r in (
        await admin.get("/api/core/webhooks"),
        await admin.get(f"/api/core/webhooks/{hook['id']}"),
        await admin.patch(f"/api/core/webhooks/{hook['id']}", json={"description": "x"}),
    ):
        assert r.status_code == 200, r.text
        assert secret not in r.text and "secret" not in r.text
    listed = (await admin.get("/api/core/webhooks")).json()
    assert [h["id"] for h in listed] == [hook["id"]]


async def test_rotate_secret_without_overlap_signs_with_new_secret_only(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    r = await admin.post(
        f"/api/core/webhooks/{hook['id']}/rotate-secret", params={"overlap_hours": 0}
    )
    assert r.status_code == 200, r.text
    assert r.json()["rotation_overlap_until"] is None
    new = r.json()["secret"]
    assert new != hook["secret"] and new.startswith("whsec_")
    await emit(hooks, "inventory.device.created")
    await pump(hooks)
    [req] = receiver.requests
    assert signing.verify_signature(new, req.headers["Platform-Signature"], req.body)
    assert not signing.verify_signature(hook["secret"], req.headers["Platform-Signature"], req.body)


async def test_update_changes_url_and_patterns(hooks, admin, receiver, other_receiver):
    hook = await register(admin, receiver.url(), ["inventory.*"])
    r = await admin.patch(
        f"/api/core/webhooks/{hook['id']}",
        json={"url": other_receiver.url(), "patterns": ["pricing.*", "pricing.*"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["patterns"] == ["pricing.*"]
    await emit(hooks, "inventory.device.created", "pricing.price.changed")
    await pump(hooks)
    assert receiver.requests == []
    assert other_receiver.events() == ["pricing.price.changed"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", "only http and https URLs are allowed"),
        ("http://user:pw@example.com/hook", "credentials are not allowed in the URL"),
        ("https://token@example.com/hook", "credentials are not allowed in the URL"),
        ("http:///hook", "the URL must name a host"),
        ("https://", "the URL must name a host"),
        ("example.com/hook", "only http and https URLs are allowed"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://exa mple.com/", "the URL must not contain spaces or control characters"),
        ("http://example.com/#frag", "the URL must not contain a fragment"),
        ("", "a URL is required"),
        ("https://example.com/" + "a" * 2000, None),
    ],
)
async def test_create_with_invalid_url_is_422_naming_url(hooks, admin, url, message):
    r = await admin.post("/api/core/webhooks", json={"url": url, "patterns": ["*"]})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["url"]
    if message:
        assert errors[0]["message"] == message
        assert r.json()["detail"] == f"url: {message}"


@pytest.mark.parametrize("description", ["x" * 201, "nul\x00byte", "two\nlines"])
async def test_create_with_invalid_description_is_422_naming_description(hooks, admin, description):
    body = {"url": "https://example.com/", "patterns": ["*"], "description": description}
    r = await admin.post("/api/core/webhooks", json=body)
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == {"description"}


async def test_update_with_credentials_in_url_is_422(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    r = await admin.patch(
        f"/api/core/webhooks/{hook['id']}", json={"url": "https://a:b@example.com/"}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "url"
    assert (await admin.get(f"/api/core/webhooks/{hook['id']}")).json()["url"] == receiver.url()


@pytest.mark.parametrize("patterns", [[], ["Inventory.*"], ["inventory.**"], ["a b"], ["*.x"]])
async def test_create_with_invalid_patterns_is_422_naming_patterns(hooks, admin, patterns):
    r = await admin.post(
        "/api/core/webhooks", json={"url": "https://example.com/", "patterns": patterns}
    )
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == {"patterns"}


async def test_webhooks_api_is_for_admins_only(hooks):
    member = await hooks.client_for("member")
    assert (await member.get("/api/core/webhooks")).status_code == 403
    r = await member.post("/api/core/webhooks", json={"url": "https://x.org/", "patterns": ["*"]})
    assert r.status_code == 403
    assert (await hooks.client().get("/api/core/webhooks")).status_code == 401


async def test_test_ping_reports_success_and_is_logged(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    r = await admin.post(f"/api/core/webhooks/{hook['id']}/test")
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["succeeded"] is True and result["status_code"] == 200
    [req] = receiver.requests
    assert req.headers["Platform-Event"] == "core.webhook.test"
    assert req.headers["Platform-Event-Id"] == result["event_id"]
    assert signing.verify_signature(hook["secret"], req.headers["Platform-Signature"], req.body)
    assert req.json()["payload"]["webhook_id"] == hook["id"]
    assert req.json()["actor"].startswith("admin-")
    log = (await admin.get(f"/api/core/webhooks/{hook['id']}/deliveries")).json()
    assert [(i["event"], i["state"]) for i in log["items"]] == [("core.webhook.test", "succeeded")]
    assert await pump(hooks) == 0  # not fanned out, not sent again


async def test_test_ping_reports_failure_without_retrying(hooks, admin, receiver):
    hook = await register(admin, receiver.url(), is_active=False)
    receiver.status = 500
    result = (await admin.post(f"/api/core/webhooks/{hook['id']}/test")).json()
    assert (result["succeeded"], result["status_code"]) == (False, None)
    assert result["error"] == service.TEST_FAILED  # one wording whatever the cause
    [d] = await deliveries(hooks)
    assert d.state == "failed"
    assert (d.last_status, d.last_error) == (500, "HTTP 500: nope")  # the log keeps it


async def test_test_ping_to_slow_receiver_returns_within_timeout(platform_factory, receiver):
    platform = await platform_factory(
        core={"background": False, "webhooks": {"timeout_seconds": 0.3}}
    )
    admin = await platform.client_for("admin")
    receiver.delay = 2.0
    hook = await register(admin, receiver.url())
    started = time.monotonic()
    r = await admin.post(f"/api/core/webhooks/{hook['id']}/test")
    assert time.monotonic() - started < 1.5
    assert r.status_code == 200
    assert r.json()["error"] == service.TEST_FAILED
    [d] = await deliveries(platform)
    assert d.last_error == "timed out after 0.3s"


async def test_test_ping_for_unknown_webhook_is_404(hooks, admin):
    r = await admin.post("/api/core/webhooks/4242/test")
    assert r.status_code == 404
    assert r.json()["detail"] == "webhook 4242 not found"


async def test_deliveries_are_paginated_newest_first(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    await emit(hooks, *[f"inventory.device.n{i}" for i in range(5)])
    await pump(hooks)
    url = f"/api/core/webhooks/{hook['id']}/deliveries"
    first = (await admin.get(url, params={"limit": 2})).json()
    assert first["total"] == 5 and first["next_offset"] == 2
    assert [i["event"] for i in first["items"]] == ["inventory.device.n4", "inventory.device.n3"]
    last = (await admin.get(url, params={"limit": 2, "offset": 4})).json()
    assert [i["event"] for i in last["items"]] == ["inventory.device.n0"]
    assert last["next_offset"] is None
    assert (await admin.get(url, params={"limit": 0})).status_code == 422


async def test_attempts_are_recorded_per_try(hooks, admin, receiver):
    await register(admin, receiver.url())
    receiver.fail_next = 1
    await emit(hooks, "inventory.device.created")
    await pump(hooks)
    await make_due(hooks)
    await delivery.deliver_due(hooks.ctx)
    async with hooks.ctx.db.session() as session:
        attempts = list((await session.scalars(select(WebhookAttempt).order_by("id"))).all())
    assert [a.status_code for a in attempts] == [500, 200]


# --- secret rotation with an overlap window ----------------------------------------------


def v1_signatures(header: str) -> list[str]:
    """The ``v1=`` signatures of a Platform-Signature header, in order."""
    return [p.split("=", 1)[1] for p in header.split(",") if p.startswith("v1=")]


async def test_rotation_signs_with_both_secrets_during_the_overlap(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    old = hook["secret"]
    before = utcnow()
    r = await admin.post(f"/api/core/webhooks/{hook['id']}/rotate-secret")  # default: 24 h
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    until = datetime.fromisoformat(r.json()["rotation_overlap_until"])
    assert timedelta(hours=23.9) < until - before < timedelta(hours=24.1)
    listed = (await admin.get(f"/api/core/webhooks/{hook['id']}")).json()
    assert datetime.fromisoformat(listed["rotation_overlap_until"]) == until
    await emit(hooks, "inventory.device.created")
    await pump(hooks)
    [req] = receiver.requests
    header = req.headers["Platform-Signature"]
    assert len(v1_signatures(header)) == 2
    verify = doc_verify()  # receivers holding either secret accept the delivery
    assert verify(new, header, req.body) and verify(old, header, req.body)
    assert not verify("whsec_someone-else", header, req.body)
    ping = (await admin.post(f"/api/core/webhooks/{hook['id']}/test")).json()
    assert ping["succeeded"] is True
    assert verify(
        old, receiver.requests[-1].headers["Platform-Signature"], receiver.requests[-1].body
    )


async def test_after_the_overlap_only_the_new_secret_signs(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    r = await admin.post(
        f"/api/core/webhooks/{hook['id']}/rotate-secret", params={"overlap_hours": 1}
    )
    new = r.json()["secret"]
    async with hooks.ctx.db.session() as session:  # an hour later
        await session.execute(
            update(Webhook)
            .where(Webhook.id == hook["id"])
            .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (await admin.get(f"/api/core/webhooks/{hook['id']}")).json()[
        "rotation_overlap_until"
    ] is None
    await emit(hooks, "inventory.device.created")
    await pump(hooks)
    [req] = receiver.requests
    header = req.headers["Platform-Signature"]
    assert len(v1_signatures(header)) == 1
    assert signing.verify_signature(new, header, req.body)
    assert not signing.verify_signature(hook["secret"], header, req.body)


async def test_rotating_again_keeps_only_the_replaced_secret(hooks, admin, receiver):
    hook = await register(admin, receiver.url())
    url = f"/api/core/webhooks/{hook['id']}/rotate-secret"
    second = (await admin.post(url)).json()["secret"]
    third = (await admin.post(url)).json()["secret"]
    await emit(hooks, "inventory.device.created")
    await pump(hooks)
    [req] = receiver.requests
    header = req.headers["Platform-Signature"]
    assert signing.verify_signature(third, header, req.body)
    assert signing.verify_signature(second, header, req.body)
    assert not signing.verify_signature(hook["secret"], header, req.body)


async def test_rotation_overlap_setting_and_bounds(platform_factory, receiver):
    platform = await platform_factory(
        core={"background": False, "webhooks": {"rotation_overlap_hours": 0}}
    )
    admin = await platform.client_for("admin")
    hook = await register(admin, receiver.url())
    url = f"/api/core/webhooks/{hook['id']}/rotate-secret"
    assert (await admin.post(url)).json()["rotation_overlap_until"] is None
    r = await admin.post(url, params={"overlap_hours": 169})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert "overlap_hours" in r.text
    assert (await admin.post(url, params={"overlap_hours": 2})).json()["rotation_overlap_until"]


# --- allowed targets ------------------------------------------------------------------------


@pytest.fixture
async def strict(platform_factory):
    """A platform with the default target policy: public addresses only (nothing allowed)."""
    return await platform_factory(
        core={"background": False, "webhooks": {"timeout_seconds": 2, "allow": []}}
    )


@pytest.fixture
def fake_dns(monkeypatch):
    """Replace the resolver: ``fake_dns[name] = [addresses]``; unknown names do not resolve.

    Every lookup is recorded in ``fake_dns.lookups``.
    """

    class FakeDns(dict):
        lookups: list[str]

    table = FakeDns()
    table.lookups = []

    async def resolve(host: str, port: int) -> list[str]:
        table.lookups.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])

    monkeypatch.setattr(targets, "resolve", resolve)
    return table


@pytest.fixture
def no_connect(monkeypatch):
    """Fail (and record) any TCP connection the delivery client would open."""
    attempts: list[tuple[str, int]] = []

    async def refuse(self, host, port, *args, **kwargs):
        attempts.append((host, port))
        raise httpcore.ConnectError("test: no connection may be opened here")

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", refuse)
    return attempts


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://LOCALHOST./hook",
        "http://api.localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://169.254.43518/",
        "http://0177.1/",
        "http://10.0.0.1/hook",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.100.100.200/",
        "http://[fe80::1]/",
        "http://0.0.0.0:9000/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "https://[2002:a9fe:a9fe::1]/",
    ],
)
async def test_registration_refuses_non_public_targets(strict, url, fake_dns):
    admin = await strict.client_for("admin")
    r = await admin.post("/api/core/webhooks", json={"url": url, "patterns": ["*"]})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    [error] = r.json()["errors"]
    assert error["field"] == "url"
    assert "not a public address" in error["message"]
    assert "allow" in error["message"]
    assert fake_dns.lookups == []  # literals and refused names need no lookup


async def test_registration_refuses_a_name_resolving_to_a_private_address(strict, fake_dns):
    admin = await strict.client_for("admin")
    fake_dns["hooks.corp.test"] = ["10.0.0.1"]
    fake_dns["mixed.corp.test"] = ["93.184.215.14", "169.254.169.254"]
    fake_dns["public.corp.test"] = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    for name, ip in (("hooks.corp.test", "10.0.0.1"), ("mixed.corp.test", "169.254.169.254")):
        r = await admin.post(
            "/api/core/webhooks", json={"url": f"https://{name}/h", "patterns": ["*"]}
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "url"
        assert f"{name} ({ip}) is not a public address" in r.json()["detail"]
    r = await admin.post(
        "/api/core/webhooks", json={"url": "https://public.corp.test/h", "patterns": ["*"]}
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    r = await admin.patch(
        f"/api/core/webhooks/{hook['id']}", json={"url": "https://hooks.corp.test/h"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url"
    # A name that does not resolve now is accepted: every connection is checked anyway.
    r = await admin.post(
        "/api/core/webhooks", json={"url": "https://later.corp.test/h", "patterns": ["*"]}
    )
    assert r.status_code == 201, r.text


async def test_connection_is_refused_when_dns_changed_to_a_private_address(
    strict, fake_dns, no_connect
):
    admin = await strict.client_for("admin")
    fake_dns["hooks.corp.test"] = ["93.184.215.14"]  # public at registration
    hook = await register(admin, "https://hooks.corp.test/h")
    fake_dns["hooks.corp.test"] = ["10.0.0.1"]  # then the name points inside
    fake_dns.lookups.clear()
    await emit(strict, "inventory.device.created")
    await pump(strict)
    [d] = await deliveries(strict)
    assert (d.state, d.last_status, d.last_error) == ("pending", None, delivery.TARGET_REFUSED)
    assert fake_dns.lookups == ["hooks.corp.test"]
    assert no_connect == []  # refused before any socket was opened
    fake_dns["hooks.corp.test"] = ["93.184.215.14", "::ffff:10.0.0.1"]  # one bad address
    r = await admin.post(f"/api/core/webhooks/{hook['id']}/test")
    assert r.json() == {**r.json(), "succeeded": False, "error": service.TEST_FAILED}
    assert no_connect == []


async def test_a_webhook_stored_before_the_policy_is_refused_at_connect(strict, receiver):
    async with strict.ctx.db.session() as session:  # registered while loopback was allowed
        session.add(Webhook(url=receiver.url(), patterns=["*"], secret="whsec_x"))
    await emit(strict, "inventory.device.created")
    await pump(strict)
    [d] = await deliveries(strict)
    assert d.last_error == delivery.TARGET_REFUSED
    assert receiver.requests == []


async def test_allowed_host_name_connects_to_the_checked_address(
    platform_factory, receiver, fake_dns
):
    # The name exists only in the fake resolver: the request can only arrive if the
    # client connected to the address the check returned, not by looking the name up again.
    platform = await platform_factory(
        core={"background": False, "webhooks": {"allow": ["Hooks.Corp.Test"]}}
    )
    admin = await platform.client_for("admin")
    port = receiver.url().split(":")[2].split("/")[0]
    fake_dns["hooks.corp.test"] = ["127.0.0.1"]
    hook = await register(admin, f"http://hooks.corp.test:{port}/named")
    await emit(platform, "inventory.device.created")
    await pump(platform)
    [req] = receiver.requests
    assert req.path == "/named"
    assert req.headers["Host"] == f"hooks.corp.test:{port}"
    assert signing.verify_signature(hook["secret"], req.headers["Platform-Signature"], req.body)
    # Another name resolving to loopback is still refused (only the named host is allowed).
    fake_dns["other.corp.test"] = ["127.0.0.1"]
    r = await admin.post(
        "/api/core/webhooks", json={"url": f"http://other.corp.test:{port}/", "patterns": ["*"]}
    )
    assert r.status_code == 422


async def test_allowed_network_admits_names_resolving_into_it(platform_factory, receiver, fake_dns):
    platform = await platform_factory(
        core={"background": False, "webhooks": {"allow": ["127.0.0.0/8"]}}
    )
    admin = await platform.client_for("admin")
    port = receiver.url().split(":")[2].split("/")[0]
    fake_dns["loop.corp.test"] = ["127.0.0.1"]
    await register(admin, f"http://loop.corp.test:{port}/net")
    ping = await admin.post(
        "/api/core/webhooks", json={"url": "http://10.0.0.1/", "patterns": ["*"]}
    )
    assert ping.status_code == 422  # 10/8 is not in the allowed network
    await emit(platform, "inventory.device.created")
    await pump(platform)
    assert [r.path for r in receiver.requests] == ["/net"]


async def test_test_ping_reports_one_failure_for_closed_port_and_other_service(hooks, admin):
    # A TCP service on loopback that is not HTTP, and a port nobody listens on.
    server = await asyncio.start_server(_not_http, "127.0.0.1", 0)
    other_port = server.sockets[0].getsockname()[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    answers = []
    try:
        for port in (closed_port, other_port):
            hook = await register(admin, f"http://127.0.0.1:{port}/")
            r = await admin.post(f"/api/core/webhooks/{hook['id']}/test")
            assert r.status_code == 200, r.text
            body = r.json()
            answers.append((body["succeeded"], body["status_code"], body["error"]))
    finally:
        server.close()
        await server.wait_closed()
    assert answers == [(False, None, service.TEST_FAILED)] * 2
    logged = [d.last_error for d in await deliveries(hooks)]
    assert logged == [delivery.CONNECTION_FAILED] * 2


async def _not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
    await writer.drain()
    writer.close()


def test_allow_entries_are_validated_naming_the_key():
    with pytest.raises(ValidationError) as err:
        CoreSettings(webhooks={"allow": ["127.0.0.0/8", "not a host/"]})
    assert "allow" in str(err.value) and "not a host/" in str(err.value)
    settings = CoreSettings(webhooks={"allow": ["10.0.0.0/8", "[::1]", "hooks.corp.test"]})
    policy = targets.TargetPolicy.from_allow(settings.webhooks.allow)
    assert policy.host_allowed("HOOKS.corp.test.")
    assert policy.address_allowed(ipaddress.ip_address("10.9.8.7"))
    assert policy.address_allowed(ipaddress.ip_address("::1"))
    assert not policy.address_allowed(ipaddress.ip_address("192.168.0.1"))


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2852039166", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("169.254.43518", "169.254.169.254"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::ffff:169.254.169.254]", "::ffff:a9fe:a9fe"),
        ("fe80::1%eth0", "fe80::1"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("0x1g", None),
    ],
)
def test_ip_literals_are_read_as_the_resolver_reads_them(host, address):
    found = targets.ip_literal(host)
    assert (str(found) if found else None) == address


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("::ffff:93.184.215.14", True),
        ("169.254.169.254", False),
        ("fd00:ec2::254", False),
        ("::ffff:169.254.169.254", False),
        ("64:ff9b::a9fe:a9fe", False),
        ("2002:0a00:0001::1", False),
        ("100.64.0.1", False),
        ("192.0.0.192", False),
        ("224.0.0.251", False),
        ("ff02::1", False),
        ("240.0.0.1", False),
        ("::", False),
    ],
)
def test_public_addresses(address, public):
    assert targets.is_public(ipaddress.ip_address(address)) is public


async def test_localhost_counts_as_loopback(platform_factory, receiver, fake_dns):
    platform = await platform_factory(
        core={"background": False, "webhooks": {"allow": ["127.0.0.0/8"]}}
    )
    admin = await platform.client_for("admin")
    port = receiver.url().split(":")[2].split("/")[0]
    fake_dns["localhost"] = ["127.0.0.1"]
    await register(admin, f"http://localhost:{port}/local")
    fake_dns["localhost"] = ["127.0.0.1", "::1"]  # ::1 is not in allow: every address counts
    r = await admin.post("/api/core/webhooks", json={"url": "http://localhost/", "patterns": ["*"]})
    assert r.status_code == 422
    assert "localhost (::1) is not a public address" in r.json()["detail"]
