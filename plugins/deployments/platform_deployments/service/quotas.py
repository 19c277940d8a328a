"""Quotas: a user's limits (override or defaults), usage, and the checks before a change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import ValidationFailed, get_user, utcnow
from platform_deployments.models import App, MongoDatabase, Quota, Revision
from platform_deployments.schemas.quotas import QuotaIn, QuotaOut, Totals
from platform_deployments.settings import DeploymentsSettings


@dataclass(frozen=True)
class Limits:
    """A user's effective quota."""

    max_apps: int
    max_replicas: int
    cpu_millis: int
    memory_mib: int
    allow_image_override: bool
    custom: bool


@dataclass
class Usage:
    """What a user's apps request (every app counts, stopped or not)."""

    apps: int = 0
    replicas: int = 0
    cpu_millis: int = 0
    memory_mib: int = 0


async def limits_for(session: AsyncSession, settings: DeploymentsSettings, user_id: int) -> Limits:
    """The user's override, else the settings' defaults."""
    row = await session.get(Quota, user_id)
    if row is not None:
        return Limits(
            row.max_apps,
            row.max_replicas,
            row.cpu_millis,
            row.memory_mib,
            row.allow_image_override or settings.allow_image_override,
            True,
        )
    q = settings.quota
    return Limits(
        q.max_apps, q.max_replicas, q.cpu_millis, q.memory_mib, settings.allow_image_override, False
    )


def requested(snapshot: dict[str, Any]) -> tuple[int, int, int]:
    """Replicas, CPU millicores and MiB one snapshot requests."""
    replicas = int(snapshot["replicas"])
    res = snapshot["resources"]
    return (
        replicas,
        replicas * int(res["cpu_request_millis"]),
        replicas * int(res["memory_request_mib"]),
    )


async def usage(session: AsyncSession, user_id: int, *, except_app: int | None = None) -> Usage:
    """The sum of the current revisions of the user's apps (one app left out if asked)."""
    stmt = (
        select(Revision.snapshot)
        .join(App, (App.id == Revision.app_id) & (App.revision == Revision.number))
        .where(App.user_id == user_id)
    )
    if except_app is not None:
        stmt = stmt.where(App.id != except_app)
    result = Usage()
    for snapshot in (await session.scalars(stmt)).all():
        replicas, cpu, mem = requested(snapshot)
        result.apps += 1
        result.replicas += replicas
        result.cpu_millis += cpu
        result.memory_mib += mem
    return result


def check(limits: Limits, current: Usage, snapshot: dict[str, Any], *, new_app: bool) -> None:
    """A 422 naming every quota the change would exceed (``quota.<name>``)."""
    replicas, cpu, mem = requested(snapshot)
    errors = []
    if new_app and current.apps + 1 > limits.max_apps:
        errors.append(("max_apps", f"{current.apps + 1} apps over the quota of {limits.max_apps}"))
    if current.replicas + replicas > limits.max_replicas:
        errors.append(
            (
                "max_replicas",
                f"{current.replicas + replicas} replicas over the quota of {limits.max_replicas}",
            )
        )
    if current.cpu_millis + cpu > limits.cpu_millis:
        errors.append(
            (
                "cpu_millis",
                f"{current.cpu_millis + cpu}m CPU requested over the quota of {limits.cpu_millis}m",
            )
        )
    if current.memory_mib + mem > limits.memory_mib:
        errors.append(
            (
                "memory_mib",
                f"{current.memory_mib + mem}Mi memory requested over the quota "
                f"of {limits.memory_mib}Mi",
            )
        )
    if errors:
        items = [{"field": f"quota.{name}", "message": message} for name, message in errors]
        raise ValidationFailed(f"quota.{errors[0][0]}: {errors[0][1]}", errors=items)


async def quota_out(session: AsyncSession, settings: DeploymentsSettings, user_id: int) -> QuotaOut:
    """A user's quota and usage."""
    limits = await limits_for(session, settings, user_id)
    used = await usage(session, user_id)
    mongo = await session.get(MongoDatabase, user_id)
    return QuotaOut(
        user_id=user_id,
        custom=limits.custom,
        max_apps=limits.max_apps,
        max_replicas=limits.max_replicas,
        cpu_millis=limits.cpu_millis,
        memory_mib=limits.memory_mib,
        allow_image_override=limits.allow_image_override,
        apps=used.apps,
        replicas=used.replicas,
        requested_cpu_millis=used.cpu_millis,
        requested_memory_mib=used.memory_mib,
        mongo_storage_bytes=mongo.storage_size if mongo is not None else 0,
    )


async def set_quota(session: AsyncSession, user_id: int, body: QuotaIn) -> None:
    """Override a user's quota (404 for an unknown user)."""
    await get_user(session, user_id)
    row = await session.get(Quota, user_id)
    if row is None:
        row = Quota(user_id=user_id)
        session.add(row)
    row.max_apps, row.max_replicas = body.max_apps, body.max_replicas
    row.cpu_millis, row.memory_mib = body.cpu_millis, body.memory_mib
    row.allow_image_override = body.allow_image_override
    row.updated_at = utcnow()
    await session.flush()


async def clear_quota(session: AsyncSession, user_id: int) -> None:
    """Back to the defaults."""
    row = await session.get(Quota, user_id)
    if row is not None:
        await session.delete(row)
        await session.flush()


async def known_users(session: AsyncSession) -> list[int]:
    """Users with apps, a database or a quota override."""
    ids: set[int] = set((await session.scalars(select(App.user_id).distinct())).all())
    ids |= set((await session.scalars(select(Quota.user_id))).all())
    ids |= set((await session.scalars(select(MongoDatabase.user_id))).all())
    return sorted(ids)


async def totals(session: AsyncSession) -> Totals:
    """Platform totals across every user."""
    by_state = dict(
        (await session.execute(select(App.state, func.count()).group_by(App.state))).all()
    )
    stmt = select(Revision.snapshot).join(
        App, (App.id == Revision.app_id) & (App.revision == Revision.number)
    )
    replicas = cpu = mem = 0
    for snapshot in (await session.scalars(stmt)).all():
        r, c, m = requested(snapshot)
        replicas, cpu, mem = replicas + r, cpu + c, mem + m
    users = await session.scalar(select(func.count(func.distinct(App.user_id)))) or 0
    dbs, storage = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(MongoDatabase.storage_size), 0))
        )
    ).one()
    return Totals(
        users=users,
        apps=sum(by_state.values()),
        replicas=replicas,
        requested_cpu_millis=cpu,
        requested_memory_mib=mem,
        apps_by_state={str(k): int(v) for k, v in by_state.items()},
        mongo_databases=int(dbs),
        mongo_storage_bytes=int(storage),
    )
