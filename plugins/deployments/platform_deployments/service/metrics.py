"""Prometheus gauges of the deployments plugin, computed from the database at scrape time.

Appended to the core's ``/metrics`` through the ``platform_metrics`` hook, in the text
exposition format.
"""

from __future__ import annotations

from collections import defaultdict

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_deployments.models import App, MongoDatabase, Revision
from platform_deployments.service.quotas import requested


async def exposition(session: AsyncSession) -> bytes:
    """Apps by state, per-user replicas and requested CPU/memory, MongoDB storage."""
    registry = CollectorRegistry()
    apps = Gauge("deployments_apps", "Apps by sync state", ["state"], registry=registry)
    replicas = Gauge(
        "deployments_user_replicas", "Replicas requested per user", ["user_id"], registry=registry
    )
    cpu = Gauge(
        "deployments_user_cpu_millis",
        "CPU requested per user (millicores)",
        ["user_id"],
        registry=registry,
    )
    mem = Gauge(
        "deployments_user_memory_mib",
        "Memory requested per user (MiB)",
        ["user_id"],
        registry=registry,
    )
    storage = Gauge(
        "deployments_user_mongo_storage_bytes",
        "MongoDB storage per user",
        ["user_id"],
        registry=registry,
    )
    rows = (
        await session.execute(
            select(App.user_id, App.state, Revision.snapshot).join(
                Revision, (Revision.app_id == App.id) & (Revision.number == App.revision)
            )
        )
    ).all()
    by_state: dict[str, int] = defaultdict(int)
    per_user: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for user_id, state, snapshot in rows:
        by_state[state] += 1
        r, c, m = requested(snapshot)
        totals = per_user[user_id]
        totals[0], totals[1], totals[2] = totals[0] + r, totals[1] + c, totals[2] + m
    for state in ("pending", "synced", "out_of_sync", "error", "deleting"):
        apps.labels(state).set(by_state.get(state, 0))
    for user_id, (r, c, m) in per_user.items():
        replicas.labels(str(user_id)).set(r)
        cpu.labels(str(user_id)).set(c)
        mem.labels(str(user_id)).set(m)
    for db in (await session.scalars(select(MongoDatabase))).all():
        storage.labels(str(db.user_id)).set(db.storage_size)
    return generate_latest(registry)
