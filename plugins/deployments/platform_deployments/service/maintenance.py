"""The health and cleanup jobs: unhealthy apps raise an event; orphaned objects go."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from platform_core import NotFound, get_user, lock_row, publish, utcnow
from platform_deployments.events import AppUnhealthy
from platform_deployments.manifests.labels import (
    APP_ID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    USER_ID_LABEL,
)
from platform_deployments.models import App
from platform_deployments.service.apps import Env
from platform_deployments.service.desired import APP_KINDS
from platform_deployments.service.gateway import ClusterError, ClusterUnreachable, connect
from platform_deployments.service.status import rollout


async def check_health(db: Any, env: Env) -> dict[str, int]:
    """Rollout state of every synced app, one Deployment list per namespace; an app turning
    unhealthy (failed rollout) publishes ``deployments.app.unhealthy`` once."""
    async with db.session() as session:
        apps = list((await session.scalars(select(App).where(App.state == "synced"))).all())
    by_cluster: dict[str, dict[str, list[App]]] = defaultdict(lambda: defaultdict(list))
    for app in apps:
        by_cluster[app.cluster][app.namespace].append(app)
    counts: dict[str, int] = defaultdict(int)
    for cluster, namespaces in by_cluster.items():
        settings = env.settings.clusters.get(cluster)
        if settings is None:
            continue
        try:
            async with connect(settings, timeout=env.settings.request_timeout_seconds) as gw:
                for namespace, members in namespaces.items():
                    live = {
                        d["metadata"]["name"]: d for d in await gw.list("Deployment", namespace)
                    }
                    for app in members:
                        state = rollout(live.get(app.base_name), stopped=app.stopped).state
                        health = {"failed": "unhealthy", "missing": "unhealthy"}.get(
                            state, "healthy"
                        )
                        counts[health] += 1
                        if health != app.health:
                            async with db.session() as session:
                                row = await lock_row(session, App, app.id)
                                if row is None:
                                    continue
                                if health == "unhealthy" and row.health != "unhealthy":
                                    publish(
                                        session,
                                        AppUnhealthy(
                                            app_id=row.id,
                                            user_id=row.user_id,
                                            name=row.name,
                                            reason=state,
                                        ),
                                    )
                                row.health = health
        except (ClusterUnreachable, ClusterError):
            counts["unreachable"] += 1
    return dict(counts)


def _created(obj: dict[str, Any]) -> datetime | None:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


async def cleanup(db: Any, env: Env) -> dict[str, int]:
    """Delete our objects whose app row is gone (after the grace period), and the
    namespaces of deleted users that hold no app. Safe to re-run."""
    async with db.session() as session:
        rows = (
            await session.execute(select(App.id, App.user_id, App.cluster, App.namespace))
        ).all()
    app_ids = {str(r.id) for r in rows}
    users_with_apps = {r.user_id for r in rows}
    grace = timedelta(seconds=env.settings.orphan_grace_seconds)
    now = utcnow()
    counts: dict[str, int] = defaultdict(int)
    for name, cluster in env.settings.clusters.items():
        namespaces = {r.namespace for r in rows if r.cluster == name}
        try:
            async with connect(cluster, timeout=env.settings.request_timeout_seconds) as gw:
                ours = await gw.list("Namespace", None, {MANAGED_BY_LABEL: MANAGED_BY})
                namespaces |= {n["metadata"]["name"] for n in ours}
                if env.settings.namespace_mode == "shared":
                    namespaces.add(env.settings.shared_namespace)
                for namespace in sorted(namespaces):
                    for kind in APP_KINDS:
                        for obj in await gw.list(kind, namespace, {MANAGED_BY_LABEL: MANAGED_BY}):
                            labels = obj["metadata"].get("labels") or {}
                            owner = labels.get(APP_ID_LABEL)
                            created = _created(obj)
                            if (
                                owner
                                and owner not in app_ids
                                and (created is None or now - created >= grace)
                            ):
                                await gw.delete(kind, namespace, obj["metadata"]["name"])
                                counts["orphans_deleted"] += 1
                for ns in ours:
                    user = (ns["metadata"].get("labels") or {}).get(USER_ID_LABEL)
                    if not user or not user.isdigit() or int(user) in users_with_apps:
                        continue
                    async with db.session() as session:
                        try:
                            await get_user(session, int(user))
                            continue
                        except NotFound:
                            pass
                    await gw.delete("Namespace", None, ns["metadata"]["name"])
                    counts["namespaces_deleted"] += 1
        except (ClusterUnreachable, ClusterError):
            counts["unreachable"] += 1
    return dict(counts)
