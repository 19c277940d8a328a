"""``GET /api/core/notifications/stream``: the caller's notifications live, as server-sent
events: in process on both databases, and across two real ``platformctl serve`` processes
on PostgreSQL and Redis (the last test).

The app is driven through ASGI directly (httpx's ASGI transport buffers whole responses),
so a stream is read event by event while the test creates notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from platform_core import NotificationRule, hookimpl
from platform_core.events.outbox import publish
from platform_core.notifications import service
from platform_core.testing import fresh_database, prepared, served

HEARTBEAT = 0.3
CAP = 2


class Shop:
    """Plugin ``shop``: orders notify their owner; shipping is a live status update."""

    @hookimpl
    def platform_notification_rules(self) -> list[NotificationRule]:
        async def owner(event: Any) -> list[int]:
            return [event.payload["owner_id"]]

        return [
            NotificationRule("shop.order.placed", owner, title="Order {order_id} placed"),
            NotificationRule(
                "shop.order.shipped", owner, title="Order {order_id} shipped", unread=False
            ),
        ]


class SseClient:
    """One request to the app over ASGI, read as server-sent events."""

    def __init__(self, app: Any, path: str, headers: dict[str, str]) -> None:
        self.app = app
        path, _, query = path.partition("?")
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.ended = asyncio.Event()
        self._started = asyncio.Event()
        self._chunk = asyncio.Event()
        self._gone = asyncio.Event()
        self._sent_request = False
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, Any]:
        if not self._sent_request:
            self._sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if self._gone.is_set():
            raise OSError("client disconnected")
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            self._started.set()
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
            self._chunk.set()
            if not message.get("more_body", False):
                self.ended.set()

    async def __aenter__(self) -> SseClient:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._started.wait(), 10)
        return self

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        finally:
            self.ended.set()

    async def __aexit__(self, *exc: object) -> None:
        self._gone.set()
        assert self._task is not None
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._task, 5)

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event: ``{"ping": True}`` for a heartbeat, else id/event/data."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                lines = block.decode().split("\n")
                if lines == [": ping"]:
                    return {"ping": True}
                fields = dict(line.split(": ", 1) for line in lines if not line.startswith(":"))
                if set(fields) == {"retry"}:
                    continue
                fields["data"] = json.loads(fields["data"])
                return fields
            if self.ended.is_set():
                raise EOFError("the stream ended")
            self._chunk.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError("no event")
            ended = asyncio.ensure_future(self.ended.wait())
            chunk = asyncio.ensure_future(self._chunk.wait())
            await asyncio.wait({ended, chunk}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            chunk.cancel()

    async def next_notification(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next notification event (skipping heartbeats)."""
        while True:
            event = await self.next(timeout)
            if not event.get("ping"):
                return event


@pytest.fixture
async def shop(platform_factory):
    return await platform_factory(
        extra_plugins={"shop": Shop()},
        core={
            "notifications": {"heartbeat_seconds": HEARTBEAT, "max_streams_per_user": CAP},
            "auth": {"cache_seconds": 5},
        },
    )


async def _user(platform) -> tuple[int, str]:
    user = await platform.user("member")
    return user.id, await platform.token(user=user)


def _stream(platform, token: str | None, query: str = "", **headers: str) -> SseClient:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    path = "/api/core/notifications/stream" + (f"?{query}" if query else "")
    return SseClient(platform.app, path, headers)


async def _order(platform, owner_id: int, order_id: int, state: str = "placed") -> None:
    async with platform.ctx.db.session() as session:
        publish(
            session,
            name=f"shop.order.{state}",
            actor="test",
            payload={"order_id": order_id, "owner_id": owner_id},
        )
    await platform.deliver_events()


async def _inbox_ids(platform, token: str) -> list[int]:
    client = platform.client(token)
    items = (await client.get("/api/core/notifications", params={"limit": 200})).json()["items"]
    return sorted(n["id"] for n in items)


async def test_a_notification_reaches_its_user_only(shop):
    alice, alice_token = await _user(shop)
    _, bob_token = await _user(shop)
    async with _stream(shop, alice_token) as mine, _stream(shop, bob_token) as theirs:
        assert mine.status == 200
        assert mine.headers["content-type"].startswith("text/event-stream")
        await _order(shop, alice, 7)
        event = await mine.next_notification()
        assert event["event"] == "notification"
        assert event["data"]["title"] == "Order 7 placed"
        assert event["data"]["kind"] == "shop.order.placed"
        assert event["id"] == str(event["data"]["id"])
        assert event["id"] == str((await _inbox_ids(shop, alice_token))[0])
        # bob's stream shows only heartbeats while alice's notification is delivered
        assert await theirs.next(timeout=HEARTBEAT * 4) == {"ping": True}
        assert await theirs.next(timeout=HEARTBEAT * 4) == {"ping": True}


async def test_a_fresh_stream_starts_with_the_next_notification(shop):
    alice, token = await _user(shop)
    await _order(shop, alice, 1)
    async with _stream(shop, token) as stream:
        await _order(shop, alice, 2)
        assert (await stream.next_notification())["data"]["title"] == "Order 2 placed"


async def test_last_event_id_replays_then_goes_live_without_gap_or_duplicate(shop):
    alice, token = await _user(shop)
    for order in range(1, 4):
        await _order(shop, alice, order)
    first, second, third = await _inbox_ids(shop, token)
    async with _stream(shop, token, **{"Last-Event-ID": str(first)}) as stream:
        assert [int((await stream.next_notification())["id"]) for _ in range(2)] == [
            second,
            third,
        ]
        await _order(shop, alice, 4)
        fourth = int((await stream.next_notification())["id"])
        assert fourth > third
        assert (await stream.next(timeout=HEARTBEAT * 4)) == {"ping": True}
    # the query parameter works the same (for EventSource clients that cannot set headers)
    async with _stream(shop, token, f"last_event_id={second}") as stream:
        assert [int((await stream.next_notification())["id"]) for _ in range(2)] == [
            third,
            fourth,
        ]


async def test_concurrent_notifications_and_a_resume_lose_and_repeat_nothing(shop):
    alice, token = await _user(shop)
    received: list[int] = []

    async def produce(start: int, count: int) -> None:
        for order in range(start, start + count):
            await _order(shop, alice, order)

    async with _stream(shop, token) as stream:
        producer = asyncio.create_task(produce(1, 12))
        while len(received) < 5:
            received.append(int((await stream.next_notification())["id"]))
    # disconnected mid-way; resume from the last id received while more are created
    async with _stream(shop, token, **{"Last-Event-ID": str(received[-1])}) as stream:
        await producer
        await produce(100, 3)
        while len(received) < 15:
            received.append(int((await stream.next_notification())["id"]))
        assert (await stream.next(timeout=HEARTBEAT * 4)) == {"ping": True}
    assert received == await _inbox_ids(shop, token)  # all, in order, each once


async def test_notifications_not_tied_to_an_event_are_live_too(shop):
    alice, token = await _user(shop)
    async with _stream(shop, token) as stream:
        async with shop.ctx.db.session() as session:
            await service.notify(session, [alice], kind="core.notice", title="Hi", ctx=shop.ctx)
        event = await stream.next_notification()
        assert (event["data"]["kind"], event["data"]["title"]) == ("core.notice", "Hi")


async def test_kind_filters_and_status_updates_are_live_but_not_unread(shop):
    alice, token = await _user(shop)
    async with _stream(shop, token, "kind=shop.order.shipped") as stream:
        await _order(shop, alice, 5, "placed")
        await _order(shop, alice, 5, "shipped")
        event = await stream.next_notification()
        assert event["data"]["title"] == "Order 5 shipped"
        assert event["data"]["read_at"] is not None
    client = shop.client(token)
    assert (await client.get("/api/core/notifications/unread-count")).json() == {"unread": 1}


async def test_heartbeats_are_comment_lines(shop):
    _, token = await _user(shop)
    async with _stream(shop, token) as stream:
        started = asyncio.get_running_loop().time()
        assert await stream.next(timeout=HEARTBEAT * 4) == {"ping": True}
        assert await stream.next(timeout=HEARTBEAT * 4) == {"ping": True}
        assert asyncio.get_running_loop().time() - started >= HEARTBEAT


async def test_without_a_token_the_stream_is_refused(shop):
    async with _stream(shop, None) as stream:
        await asyncio.wait_for(stream.ended.wait(), 5)
    assert stream.status == 401
    assert stream.headers["content-type"] == "application/problem+json"
    async with _stream(shop, "plt_not-a-token") as stream:
        await asyncio.wait_for(stream.ended.wait(), 5)
    assert stream.status == 401


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ("", {"Last-Event-ID": "seven"}, "Last-Event-ID"),
        ("last_event_id=-1", {}, "last_event_id"),
        ("kind=Not%20A%20Pattern", {}, "kind"),
    ],
)
async def test_bad_resume_points_and_kinds_are_422_naming_the_field(shop, query, headers, field):
    _, token = await _user(shop)
    async with _stream(shop, token, query, **headers) as stream:
        await asyncio.wait_for(stream.ended.wait(), 5)
    assert stream.status == 422
    problem = json.loads(stream.body)
    assert field in {e.get("field") or e.get("loc", [None])[-1] for e in problem["errors"]}


async def test_a_revoked_token_ends_the_stream_at_the_next_heartbeat(shop):
    _, token = await _user(shop)
    client = shop.client(token)
    async with _stream(shop, token) as stream:
        assert await stream.next(timeout=HEARTBEAT * 4) == {"ping": True}
        (mine,) = (await client.get("/api/core/tokens")).json()
        assert (await client.delete(f"/api/core/tokens/{mine['id']}")).status_code == 204
        with pytest.raises(EOFError):
            while True:
                await stream.next(timeout=HEARTBEAT * 6)


async def test_a_deactivated_user_loses_the_stream(shop):
    alice, token = await _user(shop)
    admin = shop.client(await shop.token("admin"))
    async with _stream(shop, token) as stream:
        assert await stream.next(timeout=HEARTBEAT * 4) == {"ping": True}
        response = await admin.patch(f"/api/core/users/{alice}", json={"is_active": False})
        assert response.status_code == 200
        with pytest.raises(EOFError):
            while True:
                await stream.next(timeout=HEARTBEAT * 6)


async def test_streams_beyond_the_cap_are_429_until_one_closes(shop):
    _, token = await _user(shop)
    _, other = await _user(shop)
    async with _stream(shop, token) as one, _stream(shop, token) as two:
        assert (one.status, two.status) == (200, 200)
        async with _stream(shop, token) as three:
            await asyncio.wait_for(three.ended.wait(), 5)
        assert three.status == 429
        assert three.headers["content-type"] == "application/problem+json"
        assert json.loads(three.body)["status"] == 429
        async with _stream(shop, other) as someone_else:  # the cap is per user
            assert someone_else.status == 200
    async with _stream(shop, token) as again:  # closed streams free their places
        assert again.status == 200


REDIS = "redis://127.0.0.1:6379/0"


def _process_config(directory: Path, url: str, prefix: str, *, background: bool) -> Path:
    config = directory / f"plugins-{'worker' if background else 'api'}.toml"
    config.write_text(
        f"""
[core]
database_url = "{url}"
secret_key = "stream-test-secret-{"x" * 32}"
log_format = "text"
log_level = "WARNING"
background = {"true" if background else "false"}

[core.notifications]
heartbeat_seconds = 1

[core.redis]
url = "{REDIS}"
prefix = "{prefix}"

[plugins]
enabled = ["example"]
"""
    )
    return config


async def _read_events(response: httpx.Response, into: list[dict[str, str]]) -> None:
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in fields:
                into.append(fields)
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            fields[key] = value


async def test_a_stream_on_one_process_receives_a_notification_created_by_another(tmp_path):
    """Two real ``serve`` processes on PostgreSQL and Redis: A serves the streams and
    dispatches nothing (``background = false``), B takes the note and turns its event into
    notifications; A's streams get them over Redis (subscribed, A's streams do not poll the
    database at heartbeats). A token revoked through B then ends its stream on A."""
    async with fresh_database("postgresql", tmp_path) as url:
        prefix = f"test-{uuid.uuid4().hex[:8]}"
        api = _process_config(tmp_path, url, prefix, background=False)
        worker = _process_config(tmp_path, url, prefix, background=True)
        async with prepared(worker) as platform:
            admin = await platform.user("admin")
            admin_token = await platform.token(user=admin)
            member_token = await platform.token("member")
            poster_token = await platform.token("admin")
        async with (
            served(api) as a,
            served(worker) as b,
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as client,
        ):
            path = "/api/core/notifications/stream"
            mine: list[dict[str, str]] = []
            theirs: list[dict[str, str]] = []
            async with (
                client.stream("GET", a + path, headers=_bearer(admin_token)) as admin_stream,
                client.stream("GET", a + path, headers=_bearer(member_token)) as member_stream,
            ):
                assert admin_stream.status_code == member_stream.status_code == 200
                readers = [
                    asyncio.create_task(_read_events(admin_stream, mine)),
                    asyncio.create_task(_read_events(member_stream, theirs)),
                ]
                await asyncio.sleep(0.5)  # A has subscribed to Redis at startup; streams open
                created = await client.post(
                    b + "/api/example/notes",
                    json={"title": "hello from B"},
                    headers=_bearer(poster_token),
                )
                assert created.status_code == 201, created.text
                deadline = time.monotonic() + 10
                while not mine and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                assert [json.loads(e["data"])["title"] for e in mine] == ["New note: hello from B"]
                assert mine[0]["id"] == str(json.loads(mine[0]["data"])["id"])
                assert theirs == []  # a member is no recipient of the note rule

                (token,) = (
                    await client.get(b + "/api/core/tokens", headers=_bearer(admin_token))
                ).json()
                revoked = await client.delete(
                    f"{b}/api/core/tokens/{token['id']}", headers=_bearer(admin_token)
                )
                assert revoked.status_code == 204
                await asyncio.wait_for(readers[0], 5)  # A ends the revoked token's stream
                assert not readers[1].done()  # and only that one
                readers[1].cancel()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_stopping_process_ends_its_streams(shop):
    _, token = await _user(shop)
    async with _stream(shop, token) as stream:
        shop.ctx.state["draining"] = True  # what SIGTERM sets (platformctl serve)
        try:
            await asyncio.wait_for(stream.ended.wait(), 3)
        finally:
            shop.ctx.state["draining"] = False
