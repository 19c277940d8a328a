"""The inbox: notifications from plugins' rules, unread first, read one or all."""

from __future__ import annotations

from typing import Any

import pytest

from platform_core import NotificationRule, hookimpl
from platform_core.events.outbox import publish
from platform_core.notifications.service import users_with_role


class Teller:
    """Plugin ``shop``: orders notify their owner and the admins; one rule always fails."""

    @hookimpl
    def platform_notification_rules(self) -> list[NotificationRule]:
        async def owner(event: Any) -> list[int]:
            return [event.payload["owner_id"]]

        async def admins(session: Any) -> list[int]:
            return await users_with_role(session, "admin")

        async def broken(event: Any) -> list[int]:
            raise RuntimeError("rule bug")

        return [
            NotificationRule(
                "shop.order.*",
                owner,
                title="Order {order_id} {state}",
                body=lambda e: f"by {e.actor}",
            ),
            NotificationRule("shop.order.placed", admins, title="New order {order_id}"),
            NotificationRule("shop.*", broken, title="never"),
        ]


@pytest.fixture
def platform_extra_plugins():
    return {"shop": Teller()}


async def _order(platform, owner_id: int, order_id: int, state: str = "placed") -> None:
    async with platform.ctx.db.session() as session:
        publish(
            session,
            name=f"shop.order.{state}",
            actor="bob",
            payload={"order_id": order_id, "owner_id": owner_id, "state": state},
        )
    await platform.deliver_events()


async def _me(client) -> int:
    return (await client.get("/api/core/me")).json()["id"]


async def test_rules_fill_the_inboxes_of_the_right_users(platform):
    member = await platform.client_for("member")
    admin = await platform.client_for("admin")
    other = await platform.client_for("member")
    await _order(platform, await _me(member), 1)
    mine = (await member.get("/api/core/notifications")).json()
    assert [(n["title"], n["body"], n["kind"]) for n in mine["items"]] == [
        ("Order 1 placed", "by bob", "shop.order.placed")
    ]
    assert mine["items"][0]["event_id"]
    assert [n["title"] for n in (await admin.get("/api/core/notifications")).json()["items"]] == [
        "New order 1"
    ]
    assert (await other.get("/api/core/notifications")).json()["total"] == 0


async def test_a_user_matching_two_rules_gets_one_notification(platform):
    admin = await platform.client_for("admin")
    await _order(platform, await _me(admin), 2)
    inbox = (await admin.get("/api/core/notifications")).json()
    assert inbox["total"] == 1


async def test_unread_first_then_newest_and_paginated(platform):
    member = await platform.client_for("member")
    me = await _me(member)
    for i in range(1, 6):
        await _order(platform, me, i, "shipped")
    first = (await member.get("/api/core/notifications", params={"limit": 2})).json()
    assert first["total"] == 5 and first["unread"] == 5 and first["next_offset"] == 2
    assert [n["title"] for n in first["items"]] == ["Order 5 shipped", "Order 4 shipped"]
    assert (await member.post(f"/api/core/notifications/{first['items'][0]['id']}/read")).json()[
        "read_at"
    ]
    page = (await member.get("/api/core/notifications", params={"limit": 10})).json()
    assert [n["title"] for n in page["items"]] == [
        "Order 4 shipped",
        "Order 3 shipped",
        "Order 2 shipped",
        "Order 1 shipped",
        "Order 5 shipped",
    ]
    assert page["unread"] == 4 and page["next_offset"] is None
    count = (await member.get("/api/core/notifications/unread-count")).json()
    assert count == {"unread": 4}


async def test_read_all_marks_only_the_callers(platform):
    alice = await platform.client_for("member")
    bob = await platform.client_for("member")
    await _order(platform, await _me(alice), 1)
    await _order(platform, await _me(bob), 2)
    assert (await alice.post("/api/core/notifications/read-all")).json() == {"marked": 1}
    assert (await alice.post("/api/core/notifications/read-all")).json() == {"marked": 0}
    assert (await bob.get("/api/core/notifications/unread-count")).json() == {"unread": 1}
    unread = (await alice.get("/api/core/notifications", params={"unread_only": True})).json()
    assert unread["items"] == []


async def test_reading_someone_elses_notification_is_404(platform):
    alice = await platform.client_for("member")
    bob = await platform.client_for("member")
    await _order(platform, await _me(alice), 1)
    note = (await alice.get("/api/core/notifications")).json()["items"][0]
    r = await bob.post(f"/api/core/notifications/{note['id']}/read")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_bad_paging_is_422_naming_the_field(platform):
    member = await platform.client_for("member")
    r = await member.get("/api/core/notifications", params={"limit": 0})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "limit"


async def test_a_failing_rule_does_not_stop_delivery(platform, caplog):
    member = await platform.client_for("member")
    await _order(platform, await _me(member), 9)
    assert (await member.get("/api/core/notifications/unread-count")).json() == {"unread": 1}
    assert any(r.message == "notification rule failed" for r in caplog.records)
