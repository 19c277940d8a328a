"""Replaying events to a handler that missed them (``platformctl events replay``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from platform_core import EventHandler, hookimpl
from platform_core.db import utcnow
from platform_core.errors import ValidationFailed
from platform_core.events.models import EventDelivery
from platform_core.events.outbox import publish
from platform_core.events.replay import parse_since, replay


class Listener:
    """Subscribes to ``listener.*`` and records each event id it is given."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def platform_event_handlers(self):
        async def on_thing(event) -> None:
            self.seen.append(event.id)

        return [EventHandler("listener.*", on_thing, name="things")]


async def _publish(ctx, *names: str) -> None:
    async with ctx.db.session() as session:
        for name in names:
            publish(session, name=name, payload={})


async def test_replay_delivers_events_missed_while_the_handler_was_absent(platform_factory):
    listener = Listener()
    platform = await platform_factory(extra_plugins={"listener": listener}, start=False)
    ctx = platform.ctx
    started = utcnow() - timedelta(seconds=1)
    subscribed, ctx.event_handlers = ctx.event_handlers, []  # fanned out while "disabled"
    await _publish(ctx, "listener.thing.made", "listener.thing.gone", "listener.other")
    await platform.deliver_events()
    ctx.event_handlers = subscribed
    assert listener.seen == []

    result = await replay(ctx, "listener:things", started)
    assert (result.matched, result.enqueued, result.already) == (3, 3, 0)
    await platform.deliver_events()
    assert len(listener.seen) == len(set(listener.seen)) == 3

    again = await replay(ctx, "listener:things", started)  # idempotent by event id
    assert (again.enqueued, again.already) == (0, 3)
    await platform.deliver_events()
    assert len(listener.seen) == 3

    later = await replay(ctx, "listener:things", utcnow())
    assert later.matched == 0


async def test_replay_can_retry_failed_deliveries(platform_factory):
    listener = Listener()
    platform = await platform_factory(extra_plugins={"listener": listener}, start=False)
    ctx = platform.ctx
    started = utcnow() - timedelta(seconds=1)
    await _publish(ctx, "listener.thing.made")
    await platform.deliver_events()
    assert len(listener.seen) == 1
    async with ctx.db.session() as session:
        delivery = await session.scalar(select(EventDelivery))
        delivery.state = "failed"
    result = await replay(ctx, "listener:things", started, retry_failed=True)
    assert (result.enqueued, result.retried) == (0, 1)
    await platform.deliver_events()
    assert len(listener.seen) == 2  # the same event id, delivered again
    assert listener.seen[0] == listener.seen[1]


async def test_replay_refuses_an_unknown_handler_naming_the_active_ones(platform_factory):
    platform = await platform_factory(extra_plugins={"listener": Listener()}, start=False)
    with pytest.raises(ValidationFailed, match=r"no active handler 'ghost:x'.*listener:things"):
        await replay(platform.ctx, "ghost:x", utcnow())


def test_parse_since_accepts_times_and_ages():
    now = utcnow()
    assert parse_since("2d", now) == now - timedelta(days=2)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2026-01-02T03:04:05").isoformat() == "2026-01-02T03:04:05+00:00"
    with pytest.raises(ValidationFailed, match="neither an ISO 8601 time nor an age"):
        parse_since("yesterday")
