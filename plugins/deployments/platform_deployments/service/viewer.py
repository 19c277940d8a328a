"""The per-user MongoDB viewer: started on demand in the user's namespace with the user's
database credentials, protected by generated basic-auth credentials, stopped when idle.

The viewer's cluster work happens in the request (it is small and the owner waits for the
URL); "idle" means no start or status read by the owner for ``viewer_idle_seconds``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    invalid,
    lock_row,
    serialize,
    utcnow,
)
from platform_deployments.manifests.app import Placement
from platform_deployments.manifests.viewer import ViewerSpec, build_viewer_objects
from platform_deployments.models import MongoDatabase, Viewer
from platform_deployments.service import quotas
from platform_deployments.service.apps import Env, user_namespace
from platform_deployments.service.desired import mongo_uri, namespace_objects
from platform_deployments.service.gateway import ClusterError, ClusterUnreachable, connect
from platform_deployments.service.sync import LiveCache, drifted
from platform_deployments.settings import CLUSTER_SETTING

KINDS = ("Secret", "Deployment", "Service", "Ingress", "IngressRoute")


def _placement(env: Env, viewer: Viewer) -> Placement:
    s = env.settings
    return Placement(
        namespace=viewer.namespace,
        base_name=viewer.base_name,
        ingress=s.ingress_kind,
        ingress_class=s.ingress_class,
        tls=s.tls,
        cert_issuer=s.cert_issuer,
        traefik_cert_resolver=s.traefik_cert_resolver,
    )


async def get_viewer(session: AsyncSession, user_id: int) -> Viewer:
    """The user's viewer row, or 404."""
    row = await session.get(Viewer, user_id)
    if row is None:
        raise NotFound("no MongoDB viewer was started for this user")
    return row


async def start(session: AsyncSession, env: Env, user_id: int) -> Viewer:
    """Deploy (or refresh) the viewer; 409 without a database, 422 without a cluster."""
    settings = env.settings
    cluster = settings.cluster_name(None)
    if cluster is None or cluster not in settings.clusters:
        raise invalid(
            "cluster", f"no cluster is configured: add a {CLUSTER_SETTING} table to plugins.toml"
        )
    await serialize(session, "deployments.viewer", [user_id])
    db = await session.get(MongoDatabase, user_id)
    if db is None:
        raise Conflict("mongo: provision your MongoDB database first (POST /api/deployments/mongo)")
    row = await session.get(Viewer, user_id)
    namespace = user_namespace(settings, user_id)
    base = "mongo-viewer" if settings.namespace_mode == "per_user" else f"u{user_id}-mongo-viewer"
    if row is None:
        row = Viewer(
            user_id=user_id,
            state="stopped",
            cluster=cluster,
            namespace=namespace,
            base_name=base,
            username=f"viewer{user_id}",
            password_enc=env.box.seal(secrets.token_urlsafe(18)),
        )
        session.add(row)
    row.host = f"db-u{user_id}.{settings.base_domain}" if settings.base_domain else None
    spec = ViewerSpec(
        user_id=user_id,
        image=settings.mongo.viewer_image,
        mongo_uri=mongo_uri(settings, db, env.box.open(db.password_enc), external=False),
        username=row.username,
        password=env.box.open(row.password_enc),
        host=row.host,
    )
    objects = build_viewer_objects(spec, _placement(env, row))
    limits = await quotas.limits_for(session, settings, user_id)
    ns_objects = namespace_objects(settings, user_id, namespace, limits)
    try:
        async with connect(
            settings.clusters[cluster], timeout=settings.request_timeout_seconds
        ) as gw:
            cache = LiveCache(gw)
            for obj in await drifted(cache, ns_objects) + await drifted(cache, objects):
                await (gw.apply(obj) if await cache.exists(obj) else gw.create(obj))
                cache.forget(obj)
    except (ClusterUnreachable, ClusterError) as exc:
        raise ServiceUnavailable(f"cluster {cluster!r}: {exc}") from None
    now = utcnow()
    if row.state != "running":
        row.started_at = now
    row.state, row.last_used_at, row.stopped_at = "running", now, None
    await session.flush()
    return row


async def _remove(env: Env, row: Viewer) -> None:
    settings = env.settings
    cluster = settings.clusters.get(row.cluster)
    if cluster is None:
        return
    async with connect(cluster, timeout=settings.request_timeout_seconds) as gw:
        for kind in KINDS:
            await gw.delete(kind, row.namespace, row.base_name)


async def stop(session: AsyncSession, env: Env, user_id: int) -> Viewer:
    """Remove the viewer's objects; the row stays (``stopped``) with its login."""
    await serialize(session, "deployments.viewer", [user_id])
    row = await get_viewer(session, user_id)
    try:
        await _remove(env, row)
    except (ClusterUnreachable, ClusterError) as exc:
        raise ServiceUnavailable(f"cluster {row.cluster!r}: {exc}") from None
    row.state, row.stopped_at = "stopped", utcnow()
    await session.flush()
    return row


async def touch(session: AsyncSession, user_id: int) -> Viewer:
    """The viewer, its last use set to now (an owner looking at it keeps it alive)."""
    row = await get_viewer(session, user_id)
    if row.state == "running":
        row.last_used_at = utcnow()
        await session.flush()
    return row


async def stop_idle(db: Any, env: Env) -> dict[str, int]:
    """The idle-stop job: viewers unused for ``viewer_idle_seconds`` are stopped."""
    cutoff = utcnow() - timedelta(seconds=env.settings.mongo.viewer_idle_seconds)
    async with db.session() as session:
        ids = list(
            (
                await session.scalars(
                    select(Viewer.user_id).where(
                        Viewer.state == "running", Viewer.last_used_at < cutoff
                    )
                )
            ).all()
        )
    stopped = failed = 0
    for user_id in ids:
        async with db.session() as session:
            row = await lock_row(session, Viewer, user_id)
            if (
                row is None
                or row.state != "running"
                or row.last_used_at is None
                or row.last_used_at >= cutoff
            ):
                continue
            try:
                await _remove(env, row)
            except (ClusterUnreachable, ClusterError):
                failed += 1
                continue
            row.state, row.stopped_at = "stopped", utcnow()
            stopped += 1
    return {"stopped": stopped, "failed": failed}
