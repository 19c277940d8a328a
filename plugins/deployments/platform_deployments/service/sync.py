"""Bringing clusters to the stored desired state: the apply job, deletes, the reconcile.

Cluster I/O happens outside database transactions: the work is read in one session, the
cluster is called, and each app's outcome is written back under its row lock, and only if
the app did not change meanwhile (its revision, switches and state are compared).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import lock_row, publish, utcnow
from platform_deployments.events import AppDeleted, AppDeployed, AppFailed
from platform_deployments.manifests.labels import (
    APP_ID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SPEC_HASH_ANNOTATION,
)
from platform_deployments.models import App, MongoDatabase, Revision
from platform_deployments.service import quotas
from platform_deployments.service.apps import Env
from platform_deployments.service.desired import APP_KINDS, app_objects, namespace_objects
from platform_deployments.service.gateway import ClusterError, ClusterUnreachable, Gateway, connect

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class Work:
    """One app to bring in line: its desired objects and the marker of the state read."""

    app_id: int
    user_id: int
    name: str
    cluster: str
    namespace: str
    revision: int
    marker: tuple[Any, ...]
    deleting: bool
    objects: list[dict[str, Any]] = field(default_factory=list)
    namespace_objects: list[dict[str, Any]] = field(default_factory=list)
    state: str = "pending"
    attempts: int = 0
    message: str = ""


@dataclass
class Outcome:
    """What happened to one app."""

    work: Work
    ok: bool
    writes: int = 0
    error: str | None = None
    unreachable: bool = False
    drifted: list[str] = field(default_factory=list)


def _marker(app: App) -> tuple[Any, ...]:
    return (app.revision, app.stopped, app.restarted_at, app.state)


async def _mongo(
    session: AsyncSession, env: Env, user_ids: set[int]
) -> dict[int, tuple[MongoDatabase, str]]:
    if not user_ids:
        return {}
    rows = (
        await session.scalars(select(MongoDatabase).where(MongoDatabase.user_id.in_(user_ids)))
    ).all()
    return {r.user_id: (r, env.box.open(r.password_enc)) for r in rows}


async def load_work(session: AsyncSession, env: Env, apps: list[App]) -> list[Work]:
    """The desired objects of these apps and of their users' namespaces."""
    if not apps:
        return []
    ids = [a.id for a in apps]
    snaps: dict[int, dict[str, Any]] = dict(
        (
            await session.execute(
                select(Revision.app_id, Revision.snapshot)
                .join(App, (App.id == Revision.app_id) & (App.revision == Revision.number))
                .where(App.id.in_(ids))
            )
        ).all()
    )
    users = {a.user_id for a in apps}
    mongo = await _mongo(
        session, env, {a.user_id for a in apps if (snaps.get(a.id) or {}).get("mongo")}
    )
    ns_objects: dict[tuple[int, str], list[dict[str, Any]]] = {}
    limits = {u: await quotas.limits_for(session, env.settings, u) for u in users}
    work = []
    for app in apps:
        key = (app.user_id, app.namespace)
        if key not in ns_objects:
            ns_objects[key] = namespace_objects(
                env.settings, app.user_id, app.namespace, limits[app.user_id]
            )
        item = Work(
            app.id,
            app.user_id,
            app.name,
            app.cluster,
            app.namespace,
            app.revision,
            _marker(app),
            app.state == "deleting",
            state=app.state,
            attempts=app.attempts,
            message=app.message,
        )
        if not item.deleting:
            snapshot = snaps.get(app.id)
            if snapshot is None:
                continue
            item.objects = app_objects(env.settings, env.box, app, snapshot, mongo.get(app.user_id))
            item.namespace_objects = ns_objects[key]
        work.append(item)
    return work


class LiveCache:
    """Objects listed from the cluster during one run: one list per kind and namespace, or
    per kind across all namespaces."""

    def __init__(self, gw: Gateway, *, cluster_wide: bool = False) -> None:
        self.gw = gw
        self.cluster_wide = cluster_wide
        self._lists: dict[tuple[str, str | None], dict[str, dict[str, Any]]] = {}
        self._listed_everywhere: set[str] = set()
        self._forgotten: set[tuple[str, str | None]] = set()

    async def objects(self, kind: str, namespace: str | None) -> dict[str, dict[str, Any]]:
        """Our objects of a kind in a namespace, by name.

        Cluster-wide mode lists each kind once across all namespaces (a namespace written
        to since is listed again on its own).
        """
        key = (kind, namespace)
        if key in self._lists:
            return self._lists[key]
        ours = {MANAGED_BY_LABEL: MANAGED_BY}
        if self.cluster_wide and namespace is not None and key not in self._forgotten:
            if kind not in self._listed_everywhere:
                self._listed_everywhere.add(kind)
                for item in await self.gw.list_all(kind, ours):
                    meta = item["metadata"]
                    self._lists.setdefault((kind, meta.get("namespace")), {})[meta["name"]] = item
            return self._lists.setdefault(key, {})
        items = await self.gw.list(kind, namespace, ours)
        self._lists[key] = {i["metadata"]["name"]: i for i in items}
        return self._lists[key]

    async def live_hash(self, obj: dict[str, Any]) -> str | None:
        """The spec-hash annotation of the live copy of ``obj`` (None when absent)."""
        meta = obj["metadata"]
        live = (await self.objects(obj["kind"], meta.get("namespace"))).get(meta["name"])
        if live is None:
            return None
        annotations: dict[str, str] = (live.get("metadata") or {}).get("annotations") or {}
        return annotations.get(SPEC_HASH_ANNOTATION)

    async def exists(self, obj: dict[str, Any]) -> bool:
        """Whether the live list holds ``obj``."""
        meta = obj["metadata"]
        return meta["name"] in await self.objects(obj["kind"], meta.get("namespace"))

    def forget(self, obj: dict[str, Any]) -> None:
        """Drop the cached list holding ``obj`` (after writing it)."""
        key = (obj["kind"], obj["metadata"].get("namespace"))
        self._lists.pop(key, None)
        self._forgotten.add(key)


async def _kinds_in_use(cache: LiveCache, namespace: str, kinds: tuple[str, ...]) -> list[str]:
    usable = []
    for kind in kinds:
        try:
            await cache.objects(kind, namespace)
        except ClusterError as exc:
            if exc.status in (404, 405):  # a CRD that is not installed
                continue
            raise
        usable.append(kind)
    return usable


async def drifted(cache: LiveCache, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects whose live spec hash differs from the desired one (or that are missing)."""
    result = []
    for obj in objects:
        want = obj["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        if await cache.live_hash(obj) != want:
            result.append(obj)
    return result


async def _stale(cache: LiveCache, item: Work) -> list[tuple[str, str]]:
    """Objects labelled with the app's id that its revision no longer has (kind, name)."""
    wanted = {(o["kind"], o["metadata"]["name"]) for o in item.objects}
    stale = []
    for kind in APP_KINDS:
        try:
            live = await cache.objects(kind, item.namespace)
        except ClusterError as exc:
            if exc.status in (404, 405):
                continue
            raise
        for name, obj in live.items():
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if labels.get(APP_ID_LABEL) == str(item.app_id) and (kind, name) not in wanted:
                stale.append((kind, name))
    return stale


async def converge(cache: LiveCache, item: Work) -> Outcome:
    """Apply what differs and remove what the revision dropped; writes nothing when in line."""
    gw = cache.gw
    before = gw.writes
    changed = []
    try:
        for obj in await drifted(cache, item.namespace_objects) + await drifted(
            cache, item.objects
        ):
            if await cache.exists(obj):
                await gw.apply(obj)
            else:  # listed as absent: create it (one request instead of a 404 apply first)
                await gw.create(obj)
            cache.forget(obj)
            changed.append(f"{obj['kind']}/{obj['metadata']['name']}")
        for kind, name in await _stale(cache, item):
            await gw.delete(kind, item.namespace, name)
            cache.forget({"kind": kind, "metadata": {"namespace": item.namespace}})
            changed.append(f"-{kind}/{name}")
    except ClusterUnreachable as exc:
        return Outcome(item, False, gw.writes - before, str(exc), unreachable=True)
    except ClusterError as exc:
        return Outcome(item, False, gw.writes - before, str(exc))
    return Outcome(item, True, gw.writes - before, drifted=changed)


async def remove(cache: LiveCache, item: Work) -> Outcome:
    """Delete every object labelled with the app's id; ok once a fresh list finds none."""
    gw = cache.gw
    before = gw.writes
    try:
        for kind in await _kinds_in_use(cache, item.namespace, APP_KINDS):
            for name, obj in list((await cache.objects(kind, item.namespace)).items()):
                labels = (obj.get("metadata") or {}).get("labels") or {}
                if labels.get(APP_ID_LABEL) == str(item.app_id):
                    await gw.delete(kind, item.namespace, name)
            cache.forget({"kind": kind, "metadata": {"namespace": item.namespace}})
        left = []
        for kind in await _kinds_in_use(cache, item.namespace, APP_KINDS):
            for name, obj in (await cache.objects(kind, item.namespace)).items():
                if ((obj.get("metadata") or {}).get("labels") or {}).get(APP_ID_LABEL) == str(
                    item.app_id
                ):
                    left.append(f"{kind}/{name}")
        if left:
            return Outcome(item, False, gw.writes - before, f"still present: {', '.join(left)}")
    except ClusterUnreachable as exc:
        return Outcome(item, False, gw.writes - before, str(exc), unreachable=True)
    except ClusterError as exc:
        return Outcome(item, False, gw.writes - before, str(exc))
    return Outcome(item, True, gw.writes - before)


async def run_cluster(
    env: Env, cluster: str, items: list[Work], *, cluster_wide: bool = False
) -> tuple[list[Outcome], int]:
    """Converge (or remove) every item on one cluster; the outcomes and the writes sent."""
    settings = env.settings
    if cluster not in settings.clusters:
        return [
            Outcome(i, False, error=f"cluster {cluster!r} is not configured", unreachable=True)
            for i in items
        ], 0
    outcomes = []
    try:
        async with connect(
            settings.clusters[cluster], timeout=settings.request_timeout_seconds
        ) as gw:
            cache = LiveCache(gw, cluster_wide=cluster_wide)
            for item in items:
                outcome = await (remove(cache, item) if item.deleting else converge(cache, item))
                outcomes.append(outcome)
                if outcome.unreachable:  # the rest would wait for the same timeout
                    outcomes += [
                        Outcome(i, False, error=outcome.error, unreachable=True)
                        for i in items[len(outcomes) :]
                    ]
                    break
            return outcomes, gw.writes
    except ClusterUnreachable as exc:
        return [Outcome(i, False, error=str(exc), unreachable=True) for i in items], 0


def backoff(env: Env, attempts: int) -> timedelta:
    """The wait before the next attempt after ``attempts`` failures."""
    seconds = min(
        env.settings.retry_base_seconds * 2 ** max(attempts - 1, 0), env.settings.retry_max_seconds
    )
    return timedelta(seconds=seconds)


async def record(
    session: AsyncSession, env: Env, outcome: Outcome, *, reconcile: bool = False
) -> str:
    """Write one outcome if the app is still as read; what became of it."""
    item = outcome.work
    app = await lock_row(session, App, item.app_id)
    if app is None or _marker(app) != item.marker:
        return "changed"
    now = utcnow()
    if outcome.ok and item.deleting:
        publish(
            session, AppDeleted(app_id=app.id, user_id=app.user_id, name=app.name, forced=False)
        )
        await session.execute(delete(Revision).where(Revision.app_id == app.id))
        await session.delete(app)
        return "deleted"
    if outcome.ok:
        first = app.applied_revision != app.revision or app.state != "synced"
        app.state, app.last_error, app.attempts, app.next_attempt_at = "synced", None, 0, None
        app.message = (
            f"re-applied {', '.join(outcome.drifted)}"
            if reconcile and outcome.drifted
            else f"revision {app.revision} applied"
        )
        if app.applied_revision != app.revision:
            publish(
                session,
                AppDeployed(
                    app_id=app.id, user_id=app.user_id, name=app.name, revision=app.revision
                ),
            )
        app.applied_revision = app.revision
        app.synced_at = now
        if first:
            app.updated_at = now
        return "synced"
    app.attempts += 1
    app.last_error = (outcome.error or "unknown error")[:2000]
    app.next_attempt_at = now + backoff(env, app.attempts)
    if not item.deleting:
        if outcome.unreachable:
            app.state = (
                "pending"
                if app.applied_revision != app.revision or app.state == "pending"
                else "out_of_sync"
            )
        else:
            app.state = "error"
        retry = app.next_attempt_at.isoformat(timespec="seconds")
        app.message = f"attempt {app.attempts} failed; next at {retry}"
    if app.attempts == 1 and not item.deleting:
        publish(
            session,
            AppFailed(
                app_id=app.id,
                user_id=app.user_id,
                name=app.name,
                revision=app.revision,
                error=app.last_error,
            ),
        )
    return app.state


async def apply_pending(db: Any, env: Env, *, app_ids: list[int] | None = None) -> dict[str, int]:
    """The apply job: every pending, deleting or failed app whose retry is due."""
    now = utcnow()
    async with db.session() as session:
        stmt = select(App).where(
            App.state.in_(("pending", "deleting", "error")),
            or_(App.next_attempt_at.is_(None), App.next_attempt_at <= now),
        )
        if app_ids is not None:
            stmt = stmt.where(App.id.in_(app_ids))
        apps = list((await session.scalars(stmt.order_by(App.id).limit(BATCH))).all())
        work = await load_work(session, env, apps)
    return await _run(db, env, work, reconcile=False)


async def _run(db: Any, env: Env, work: list[Work], *, reconcile: bool) -> dict[str, int]:
    by_cluster: dict[str, list[Work]] = defaultdict(list)
    for item in work:
        by_cluster[item.cluster].append(item)
    counts: dict[str, int] = defaultdict(int)
    for cluster, items in sorted(by_cluster.items()):
        outcomes, writes = await run_cluster(
            env, cluster, items, cluster_wide=reconcile and env.settings.cluster_wide_lists()
        )
        counts["writes"] += writes
        for outcome in outcomes:
            if reconcile and outcome.ok and not outcome.drifted and outcome.work.state == "synced":
                counts["synced"] += 1  # nothing to write, here or there
                continue
            async with db.session() as session:
                counts[await record(session, env, outcome, reconcile=reconcile)] += 1
    counts["apps"] = len(work)
    return dict(counts)


async def reconcile(db: Any, env: Env, *, app_ids: list[int] | None = None) -> dict[str, int]:
    """The reconcile job: compare every settled app with the cluster, re-apply what drifted.

    Reads in bulk (one list per kind and namespace) and writes nothing, to the cluster or
    the database, when everything matches.
    """
    async with db.session() as session:
        stmt = select(App).where(App.state.in_(("synced", "out_of_sync", "error")))
        if app_ids is not None:
            stmt = stmt.where(App.id.in_(app_ids))
        apps = list((await session.scalars(stmt.order_by(App.id))).all())
        work = await load_work(session, env, apps)
    return await _run(db, env, work, reconcile=True)
