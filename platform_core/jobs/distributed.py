"""The distributed runner: taskiq over a Redis stream, with the database as the authority.

With ``[core.jobs] broker_url = "redis://host:6379/0"``:

- ``platformctl scheduler`` enqueues due periodic slots (the database dedupes a slot
  across schedulers), then sends a taskiq message carrying the run id to the broker. Every
  pass it also declares runs with an expired lease ``lost`` and enqueues their next
  attempt, and re-sends queued runs nobody claimed (a message lost with Redis, a retry
  whose backoff ended, a run that waited behind an overlapping one, a manual run from the
  API).
- ``platformctl worker`` consumes the stream with taskiq's ``Receiver``; each message
  claims its run in the database with a conditional update (a second delivery of the same
  message, or a message for a run already taken, does nothing) and executes it like the
  embedded runner, heartbeating the lease.

The broker is taskiq-redis's ``RedisStreamBroker``: a consumer group with
acknowledgements, a message is acknowledged after its run finished, and messages left
unacknowledged by a dead worker are claimed again by the others. Correctness does not
depend on it: the database leases and the scheduler's re-sends would recover from a lost
message too. Broker errors (Redis down) are logged and retried; they never end the process.

The Redis stream is named by the URL's ``queue`` query parameter (default
``platform:jobs``): ``redis://127.0.0.1:6379/0?queue=staging-jobs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from platform_core.context import PlatformContext
from platform_core.db import utcnow
from platform_core.jobs import service
from platform_core.jobs.embedded import MAX_SLEEP, concurrency, wait_for_any
from platform_core.jobs.execute import execute
from platform_core.jobs.planner import SlotPlanner

log = logging.getLogger("platform_core.jobs")

TASK_NAME = "platform_core.jobs.run"
DEFAULT_QUEUE = "platform:jobs"
CONSUMER_GROUP = "platform-workers"
SCHEDULE_GRACE = 3.0
"""Seconds a scheduled run may stay unclaimed before another scheduler re-sends it."""
RESEND_EVERY = 5.0
"""Seconds between two sends of one still-queued run by one scheduler."""
BROKER_RETRY = 2.0
STREAM_MAXLEN = 100_000


def broker_target(url: str) -> tuple[str, str]:
    """Split ``broker_url`` into the Redis URL and the stream name (``?queue=``)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    queue = next((v for k, v in query if k == "queue" and v), DEFAULT_QUEUE)
    rest = urlencode([(k, v) for k, v in query if k != "queue"])
    return urlunsplit(parts._replace(query=rest)), queue


def make_broker(ctx: PlatformContext, *, consumer: str | None = None) -> Any:
    """A taskiq-redis stream broker for the configured ``broker_url``."""
    from taskiq_redis import RedisStreamBroker

    url, queue = broker_target(ctx.config.core.jobs.broker_url or "")
    lease_ms = ctx.config.core.jobs.lease_seconds * 1000
    return RedisStreamBroker(
        url,
        queue_name=queue,
        consumer_group_name=CONSUMER_GROUP,
        consumer_name=consumer,
        consumer_id="0",  # a new group also gets the messages sent before it existed
        xread_block=1000,
        maxlen=STREAM_MAXLEN,
        idle_timeout=2 * lease_ms,  # reclaim a dead consumer's messages after two leases
        unacknowledged_lock_timeout=5.0,
        socket_connect_timeout=5,
        socket_timeout=10,
    )


class BrokerLink:
    """Sends run ids to the broker; connects lazily and backs off while Redis is down."""

    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx
        self.broker: Any = None
        self.down_until = 0.0

    async def send(self, run_id: int) -> bool:
        """Send one run id; False (logged) when the broker is unavailable."""
        from taskiq.kicker import AsyncKicker

        if time.monotonic() < self.down_until:
            return False
        try:
            if self.broker is None:
                broker = make_broker(self.ctx)
                await broker.startup()
                self.broker = broker
            kicker: AsyncKicker[[int], None] = AsyncKicker(TASK_NAME, self.broker, {})
            await kicker.kiq(run_id)
            return True
        except Exception as exc:
            log.warning(
                "job broker unavailable; retrying in %ss: %s",
                BROKER_RETRY,
                exc,
                extra={"run": run_id},
            )
            self.down_until = time.monotonic() + BROKER_RETRY
            await self.close()
            return False

    async def close(self) -> None:
        """Close the connection pool (reconnects on the next send)."""
        broker, self.broker = self.broker, None
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.shutdown()


async def send_runs(ctx: PlatformContext, run_ids: list[int]) -> int:
    """Send run ids once with a short-lived connection (``platformctl jobs run``)."""
    link = BrokerLink(ctx)
    try:
        sent = 0
        for run_id in run_ids:
            sent += await link.send(run_id)
        return sent
    finally:
        await link.close()


class Dispatcher:
    """The scheduler's memory of what it sent, to re-send only what stays unclaimed."""

    def __init__(self, ctx: PlatformContext, link: BrokerLink) -> None:
        self.ctx = ctx
        self.link = link
        self.sent: dict[int, float] = {}

    async def send(self, run_id: int) -> None:
        """Send ``run_id`` and remember when."""
        if await self.link.send(run_id):
            self.sent[run_id] = time.monotonic()

    async def resend_unclaimed(self) -> None:
        """Send due queued runs that nobody claimed (see the module docs)."""
        now = utcnow()
        clock = time.monotonic()
        due = await service.due_runs(self.ctx, jobs=sorted(self.ctx.jobs), limit=500)
        for run in due:
            last = self.sent.get(run.id)
            if last is not None and clock - last < RESEND_EVERY:
                continue
            fresh = now - run.enqueued_at < timedelta(seconds=SCHEDULE_GRACE)
            if last is None and run.trigger == "schedule" and fresh:
                continue  # the scheduler that enqueued it sent it
            await self.send(run.id)
        queued = {r.id for r in due}
        self.sent = {
            k: v for k, v in self.sent.items() if k in queued or clock - v < RESEND_EVERY * 4
        }


async def run_scheduler(ctx: PlatformContext, stop: asyncio.Event) -> None:
    """The ``platformctl scheduler`` loop: enqueue, recover, send; until ``stop`` is set."""
    planner = SlotPlanner(ctx)
    link = BrokerLink(ctx)
    dispatcher = Dispatcher(ctx, link)
    poll = ctx.config.core.jobs.poll_seconds
    try:
        while not stop.is_set():
            fresh = await planner.enqueue_due()
            try:
                fresh += await service.recover_lost(ctx)
            except Exception:
                log.exception("lost-run recovery failed; retrying")
            for run in fresh:
                await dispatcher.send(run.id)
            try:
                await dispatcher.resend_unclaimed()
            except Exception:
                log.exception("re-sending queued runs failed; retrying")
            nxt = planner.next_due()
            delay = poll if nxt is None else min(poll, (nxt - utcnow()).total_seconds() + 0.001)
            await wait_for_any([stop], min(MAX_SLEEP, max(0.0, delay)))
    finally:
        await link.close()


async def handle_message(ctx: PlatformContext, run_id: int, worker: str) -> None:
    """One broker message: claim run ``run_id`` and execute it; nothing when not claimable."""
    try:
        run = await service.claim(ctx, run_id, worker)
    except Exception:
        log.exception("could not claim a job run; the scheduler will re-send it")
        return
    if run is None:
        return
    await execute(ctx, run, worker)


async def run_worker(ctx: PlatformContext, stop: asyncio.Event) -> None:
    """The ``platformctl worker`` loop: consume the broker until ``stop`` is set."""
    from taskiq.acks import AcknowledgeType
    from taskiq.receiver import Receiver

    receiver_log = logging.getLogger("taskiq.receiver.receiver")
    if receiver_log.level == logging.NOTSET:
        receiver_log.setLevel(logging.WARNING)  # not one INFO line per message
    worker = service.new_worker_id("worker")
    inflight: dict[asyncio.Task[Any], int] = {}

    async def run_job(run_id: int) -> None:
        task = asyncio.current_task()
        assert task is not None
        inflight[task] = run_id
        try:
            await handle_message(ctx, run_id, worker)
        finally:
            inflight.pop(task, None)

    try:
        while not stop.is_set():
            broker = make_broker(ctx, consumer=worker)
            broker.is_worker_process = True
            broker.register_task(run_job, task_name=TASK_NAME)
            receiver = Receiver(
                broker,
                max_async_tasks=concurrency(ctx),
                propagate_exceptions=False,
                ack_type=AcknowledgeType.WHEN_EXECUTED,
            )
            try:
                await receiver.listen(stop)
            except Exception as exc:
                log.warning("job broker unavailable; retrying in %ss: %s", BROKER_RETRY, exc)
            finally:
                with contextlib.suppress(Exception):
                    await broker.shutdown()
            if not stop.is_set():
                await wait_for_any([stop], BROKER_RETRY)
    finally:
        if inflight:  # cancelled after the grace period: record the interrupted runs
            tasks, run_ids = list(inflight), list(inflight.values())
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
            await send_retries(ctx, run_ids)


async def send_retries(ctx: PlatformContext, run_ids: list[int]) -> int:
    """Send the queued retries of the jobs of ``run_ids`` (interrupted by this worker's stop)
    to the broker, so another worker takes them at once rather than at the scheduler's next
    pass; return how many were sent. A duplicate send is harmless (claims are conditional)."""
    try:
        jobs = sorted({(await service.get_run(ctx, run_id)).job for run_id in run_ids})
        due = await service.due_runs(ctx, jobs=jobs, limit=100)
        return await send_runs(ctx, [r.id for r in due if r.trigger == "retry"])
    except Exception:
        log.exception("could not send interrupted runs' retries; the scheduler will")
        return 0
