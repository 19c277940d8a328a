"""Events: the outbox, delivery after commit, retries, wildcards and crash recovery."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import select, update

from platform_core import EventHandler, ValidationFailed, hookimpl
from platform_core.db import utcnow
from platform_core.events.dispatcher import backoff, deliver_due, fan_out
from platform_core.events.models import EventDelivery, EventRecord
from platform_core.events.outbox import Event, publish
from platform_core.events.patterns import matches, valid_name, valid_pattern


class ThingMade(Event):
    """An event of the in-test ``shop`` plugin."""

    event_name: ClassVar[str] = "shop.thing.made"
    thing_id: int


class Recorder:
    """An in-test plugin recording what its handlers receive; ``fail`` makes one raise."""

    def __init__(self, fail: int = 0) -> None:
        self.seen: list[Any] = []
        self.also: list[str] = []
        self.fail = fail

    @hookimpl
    def platform_event_handlers(self) -> list[EventHandler]:
        async def record(event: Any) -> None:
            if self.fail:
                self.fail -= 1
                raise RuntimeError("flaky handler")
            self.seen.append(event)

        async def everything(event: Any, ctx: Any) -> None:
            assert ctx is not None
            self.also.append(event.name)

        return [
            EventHandler("shop.*", record, name="record"),
            EventHandler("*", everything, name="everything"),
        ]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def shop(platform_factory, recorder):
    """A platform with the recorder as plugin ``shop``; background loops off for determinism."""
    return await platform_factory(extra_plugins={"shop": recorder}, core={"background": False})


async def _publish(platform, event: Event | None = None, **kw) -> str:
    async with platform.ctx.db.session() as session:
        return publish(session, event or ThingMade(thing_id=1), actor="alice", **kw)


def test_patterns_match_names_and_prefixes():
    assert matches("shop.thing.made", "shop.thing.made")
    assert matches("shop.*", "shop.thing.made")
    assert matches("shop.thing.*", "shop.thing.made")
    assert not matches("shop.*", "shopping.thing.made")
    assert not matches("shop.thing.made", "shop.thing.made.twice")
    assert matches("*", "anything.at.all")
    assert valid_pattern("shop.*") and valid_pattern("*") and not valid_pattern("shop*")
    assert valid_name("shop.thing.made") and not valid_name("shop") and not valid_name("Shop.x")


async def test_invalid_event_name_is_refused(shop):
    async with shop.ctx.db.session() as session:
        with pytest.raises(ValidationFailed, match="invalid event name"):
            publish(session, name="NotDotted", payload={})


async def test_committed_event_is_delivered_with_id_time_actor_and_plugin(shop, recorder):
    before = utcnow()
    uid = await _publish(shop, ThingMade(thing_id=7))
    await shop.deliver_events()
    [event] = recorder.seen
    assert event.id == uid and uuid.UUID(uid)
    assert (event.name, event.plugin, event.actor) == ("shop.thing.made", "shop", "alice")
    assert event.payload == {"thing_id": 7}
    assert before <= event.occurred_at <= utcnow()
    assert recorder.also == ["shop.thing.made"]


async def test_rolled_back_transaction_publishes_nothing(shop, recorder):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with shop.ctx.db.session() as session:
            publish(session, ThingMade(thing_id=1))
            raise Boom
    assert await shop.deliver_events() == 0
    assert recorder.seen == []
    async with shop.ctx.db.session() as session:
        assert (await session.scalars(select(EventRecord))).all() == []


async def test_events_published_in_one_transaction_are_delivered_in_order(shop, recorder):
    async with shop.ctx.db.session() as session:
        for i in range(5):
            publish(session, ThingMade(thing_id=i))
    await shop.deliver_events()
    assert sorted(e.payload["thing_id"] for e in recorder.seen) == [0, 1, 2, 3, 4]
    assert len({e.id for e in recorder.seen}) == 5


async def test_failing_handler_is_retried_and_does_not_block_others(platform_factory):
    recorder = Recorder(fail=1)
    platform = await platform_factory(extra_plugins={"shop": recorder}, core={"background": False})
    await _publish(platform)
    await platform.deliver_events()
    assert recorder.seen == [] and recorder.also == ["shop.thing.made"]  # the other one ran
    async with platform.ctx.db.session() as session:
        failed = (
            await session.scalars(
                select(EventDelivery).where(EventDelivery.handler == "shop:record")
            )
        ).one()
        assert (failed.state, failed.attempts) == ("pending", 1)
        assert failed.last_error == "RuntimeError: flaky handler"
        assert failed.next_attempt_at > utcnow() + timedelta(seconds=backoff(1) - 1)
        failed.next_attempt_at = utcnow()  # the backoff has passed
    await platform.deliver_events()
    assert [e.payload for e in recorder.seen] == [{"thing_id": 1}]
    assert recorder.also == ["shop.thing.made"]  # delivered once to the handler that succeeded


async def test_handler_gives_up_after_configured_attempts(platform_factory):
    recorder = Recorder(fail=100)
    platform = await platform_factory(
        extra_plugins={"shop": recorder},
        core={"background": False, "events": {"handler_attempts": 2}},
    )
    await _publish(platform)
    for _ in range(3):
        await platform.deliver_events()
        async with platform.ctx.db.session() as session:
            await session.execute(update(EventDelivery).values(next_attempt_at=utcnow()))
    async with platform.ctx.db.session() as session:
        rec = (
            await session.scalars(
                select(EventDelivery).where(EventDelivery.handler == "shop:record")
            )
        ).one()
    assert (rec.state, rec.attempts) == ("failed", 2)


async def test_slow_handler_times_out_and_is_recorded(platform_factory):
    class Slow:
        @hookimpl
        def platform_event_handlers(self):
            async def slow(event):
                await asyncio.sleep(10)

            return [EventHandler("shop.*", slow, name="slow", timeout=0.05)]

    platform = await platform_factory(extra_plugins={"shop": Slow()}, core={"background": False})
    await _publish(platform)
    await platform.deliver_events()
    async with platform.ctx.db.session() as session:
        rec = (await session.scalars(select(EventDelivery))).one()
    assert rec.last_error == "timed out after 0.05s" and rec.state == "pending"


async def test_event_committed_before_a_crash_is_delivered_on_restart(platform_factory, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    first = await platform_factory(
        extra_plugins={"shop": Recorder()}, database_url=url, core={"background": False}
    )
    uid = await _publish(first)
    await first.aclose()  # the process "dies" right after the commit: nothing dispatched
    recorder = Recorder()
    second = await platform_factory(extra_plugins={"shop": recorder}, database_url=url)
    for _ in range(100):  # the restarted server's background loop delivers it
        if recorder.seen:
            break
        await asyncio.sleep(0.05)
    assert [e.id for e in recorder.seen] == [uid]
    await second.aclose()


async def test_delivery_claimed_by_a_dead_process_is_retried_after_its_lease(shop, recorder):
    await _publish(shop)
    await fan_out(shop.ctx)
    async with shop.ctx.db.session() as session:  # as if another process claimed and died
        await session.execute(
            update(EventDelivery).values(locked_until=utcnow() + timedelta(seconds=60))
        )
    assert await deliver_due(shop.ctx) == 0
    async with shop.ctx.db.session() as session:
        await session.execute(
            update(EventDelivery).values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert await deliver_due(shop.ctx) == 2
    assert len(recorder.seen) == 1


async def test_claim_never_takes_a_delivery_finished_since_it_was_read(shop, recorder, monkeypatch):
    """On SQLite the claim's SELECT runs outside its write transaction: another dispatcher
    may claim, run and finish a row in between. The claim must re-check that it is due."""
    from platform_core.events import dispatcher

    await _publish(shop)
    await fan_out(shop.ctx)
    assert await deliver_due(shop.ctx) == 2
    assert len(recorder.seen) == 1
    # As if the SELECT had read the rows while they were still due: it returns them all.
    monkeypatch.setattr(dispatcher, "for_update", lambda query, ctx: select(EventDelivery.id))
    assert await deliver_due(shop.ctx) == 0
    assert len(recorder.seen) == 1
    async with shop.ctx.db.session() as session:
        states = (await session.scalars(select(EventDelivery.state))).all()
    assert states == ["succeeded", "succeeded"]


async def test_background_loop_delivers_right_after_commit(platform_factory):
    recorder = Recorder()
    platform = await platform_factory(
        extra_plugins={"shop": recorder}, core={"events": {"poll_seconds": 30}}
    )
    await _publish(platform)
    for _ in range(100):  # woken by the commit, not by the 30 s poll
        if recorder.seen:
            break
        await asyncio.sleep(0.02)
    assert len(recorder.seen) == 1


async def test_handlers_of_a_disabled_plugin_keep_their_deliveries(platform_factory, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'off.db'}"
    first = await platform_factory(
        extra_plugins={"shop": Recorder()}, database_url=url, core={"background": False}
    )
    await _publish(first)
    await fan_out(first.ctx)
    await first.aclose()
    second = await platform_factory(database_url=url, core={"background": False})
    await second.deliver_events()
    async with second.ctx.db.session() as session:
        states = {d.handler: d.state for d in (await session.scalars(select(EventDelivery)))}
    assert states == {"shop:record": "pending", "shop:everything": "pending"}


async def test_prune_deletes_old_dispatched_events_but_keeps_pending_ones(shop, recorder):
    from platform_core.events.dispatcher import prune_events

    await _publish(shop)
    await shop.deliver_events()
    old = utcnow() - timedelta(days=31)
    await _publish(shop, ThingMade(thing_id=2))
    await fan_out(shop.ctx)  # dispatched, deliveries still pending
    async with shop.ctx.db.session() as session:
        await session.execute(update(EventRecord).values(occurred_at=old))
    assert await prune_events(shop.ctx) == 1
    async with shop.ctx.db.session() as session:
        left = (await session.scalars(select(EventRecord))).all()
    assert [e.payload for e in left] == [{"thing_id": 2}]
    assert "core.prune_events" in shop.ctx.jobs
