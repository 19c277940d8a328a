"""Apps: creation from a template, changes as revisions, rollback, stop/start/restart, delete.

Every change is stored first (a revision, or a switch on the app) and the app goes
``pending``; the apply job (:mod:`platform_deployments.service.sync`) brings the cluster to
it. Changes lock the app's row, so two concurrent changes get consecutive revisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    Forbidden,
    NotFound,
    Principal,
    invalid,
    lock_row,
    page_by_id,
    publish,
    serialize,
    utcnow,
)
from platform_deployments.events import AppCreated, AppDeleted, AppRolledBack
from platform_deployments.models import App, MongoDatabase, Revision, Template
from platform_deployments.schemas.apps import AppCreate, AppOut, AppUpdate, RevisionOut
from platform_deployments.schemas.templates import Resources, TemplateSpec
from platform_deployments.service import quotas, variables
from platform_deployments.service.crypto import SecretBox
from platform_deployments.service.templates import get_template
from platform_deployments.settings import CLUSTER_SETTING, DeploymentsSettings

MUTABLE = ("pending", "synced", "out_of_sync", "error")


@dataclass(frozen=True)
class Env:
    """What app services need from the running platform."""

    settings: DeploymentsSettings
    box: SecretBox


def placement(settings: DeploymentsSettings, user_id: int, name: str) -> tuple[str, str]:
    """The namespace and object base name of a user's app."""
    if settings.namespace_mode == "shared":
        return settings.shared_namespace, f"u{user_id}-{name}"
    return f"{settings.namespace_prefix}{user_id}", name


def user_namespace(settings: DeploymentsSettings, user_id: int) -> str:
    """The namespace a user's apps live in."""
    return placement(settings, user_id, "x")[0]


def _repo(image: str) -> str:
    image = image.split("@", 1)[0]
    head, _, tail = image.rpartition(":")
    return head if head and "/" not in tail else image


def _with_tag(image: str, tag: str) -> str:
    return f"{_repo(image)}:{tag}"


def snapshot_view(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The parts of a snapshot shown through the API (secret names, never values)."""
    return {
        "template": snapshot["template"],
        "template_version": snapshot["template_version"],
        "image": snapshot["image"],
        "replicas": snapshot["replicas"],
        "resources": Resources.model_validate(snapshot["resources"]),
        "host": snapshot.get("host"),
        "variables": dict(snapshot.get("env") or {}),
        "secret_variables": sorted(snapshot.get("secret_env") or {}),
    }


def app_out(app: App, snapshot: dict[str, Any]) -> AppOut:
    """The API view of an app at its current revision."""
    view = snapshot_view(snapshot)
    return AppOut(
        id=app.id,
        user_id=app.user_id,
        name=app.name,
        template=view["template"],
        template_version=view["template_version"],
        cluster=app.cluster,
        namespace=app.namespace,
        host=app.host,
        image=view["image"],
        replicas=view["replicas"],
        resources=view["resources"],
        variables=view["variables"],
        secret_variables=view["secret_variables"],
        mongo=bool(snapshot.get("mongo")),
        revision=app.revision,
        applied_revision=app.applied_revision,
        state=app.state,  # type: ignore[arg-type]
        message=app.message,
        last_error=app.last_error,
        stopped=app.stopped,
        health=app.health,
        created_at=app.created_at,
        updated_at=app.updated_at,
        synced_at=app.synced_at,
    )


def revision_out(row: Revision, current: int) -> RevisionOut:
    """The API view of a revision."""
    return RevisionOut(
        number=row.number,
        reason=row.reason,
        created_at=row.created_at,
        created_by=row.created_by,
        current=row.number == current,
        **snapshot_view(row.snapshot),
    )


async def snapshot_of(session: AsyncSession, app: App, number: int | None = None) -> dict[str, Any]:
    """The snapshot of an app's revision (its current one by default)."""
    wanted = app.revision if number is None else number
    row = await session.scalar(
        select(Revision).where(Revision.app_id == app.id, Revision.number == wanted)
    )
    if row is None:
        raise NotFound(f"app {app.id} has no revision {wanted} (history keeps the latest ones)")
    return row.snapshot


async def get_app(session: AsyncSession, caller: Principal, app_id: int) -> App:
    """An app the caller may see: their own, or any for admins (404 otherwise)."""
    app = await session.get(App, app_id)
    if app is None or (app.user_id != caller.user_id and not caller.is_admin):
        raise NotFound(f"app {app_id} does not exist")
    return app


async def list_apps(
    session: AsyncSession,
    caller: Principal,
    *,
    user_id: int | None,
    state: str | None,
    cursor: int | None,
    limit: int,
) -> tuple[list[tuple[App, dict[str, Any]]], int | None]:
    """A page of the caller's apps (admins: everyone's, or one user's)."""
    stmt = select(App)
    if not caller.is_admin:
        stmt = stmt.where(App.user_id == caller.user_id)
    elif user_id is not None:
        stmt = stmt.where(App.user_id == user_id)
    if state is not None:
        stmt = stmt.where(App.state == state)
    rows, next_cursor = await page_by_id(session, stmt, App.id, cursor=cursor, limit=limit)
    snaps = await current_snapshots(session, [a.id for a in rows])
    return [(a, snaps[a.id]) for a in rows], next_cursor


async def current_snapshots(session: AsyncSession, app_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The current snapshot of each app, by app id."""
    if not app_ids:
        return {}
    stmt = (
        select(Revision.app_id, Revision.snapshot)
        .join(App, (App.id == Revision.app_id) & (App.revision == Revision.number))
        .where(App.id.in_(app_ids))
    )
    return {app_id: snap for app_id, snap in (await session.execute(stmt)).all()}


def _image(
    spec: TemplateSpec, current: str | None, *, image: str | None, tag: str | None, allowed: bool
) -> str:
    base = current or spec.image
    if image is not None:
        if _repo(image) != _repo(spec.image) and not allowed:
            raise Forbidden(
                f"image: changing the template's image repository ({_repo(spec.image)}) needs "
                "an admin's permission; change image_tag instead"
            )
        base = image
    if tag is not None:
        base = _with_tag(base, tag)
    return base


def _check_host(settings: DeploymentsSettings, host: str | None) -> None:
    if host and settings.base_domain and host.endswith("." + settings.base_domain):
        # generated hosts live there: <name>-u<id>.<domain>; custom ones elsewhere
        label = host[: -len(settings.base_domain) - 1]
        if "." not in label and "-u" in label:
            raise invalid("host", f"hosts like {host} are reserved for generated app hosts")


async def _host_free(session: AsyncSession, host: str | None, app_id: int | None) -> None:
    if host is None:
        return
    other = await session.scalar(select(App).where(App.host == host))
    if other is not None and other.id != app_id:
        raise Conflict(f"host: {host} is already used by another app")


def _default_host(settings: DeploymentsSettings, user_id: int, name: str) -> str | None:
    if settings.base_domain is None:
        return None
    return f"{name}-u{user_id}.{settings.base_domain}"


async def _add_revision(
    session: AsyncSession, env: Env, app: App, snapshot: dict[str, Any], reason: str, actor: int
) -> int:
    number = app.revision + 1
    session.add(
        Revision(
            app_id=app.id, number=number, snapshot=snapshot, reason=reason[:200], created_by=actor
        )
    )
    app.revision = number
    app.state = "pending"
    app.attempts = 0
    app.next_attempt_at = None
    app.last_error = None
    app.message = f"revision {number} waits for the apply job"
    app.updated_at = utcnow()
    keep_from = number - env.settings.history_limit
    if keep_from >= 1:
        await session.execute(
            delete(Revision).where(Revision.app_id == app.id, Revision.number <= keep_from)
        )
    await session.flush()
    return number


async def create_app(
    session: AsyncSession, env: Env, caller: Principal, body: AppCreate
) -> tuple[App, dict[str, Any]]:
    """A new app from a template, at revision 1, ``pending`` until the apply job runs.

    422 naming ``cluster`` when no cluster is configured, ``template``, a variable, or a
    quota; 409 naming ``name`` or ``host`` when taken.
    """
    settings = env.settings
    cluster = settings.cluster_name(body.cluster)
    if cluster is None:
        raise invalid(
            "cluster", f"no cluster is configured: add a {CLUSTER_SETTING} table to plugins.toml"
        )
    if cluster not in settings.clusters:
        raise invalid(
            "cluster",
            f"unknown cluster {cluster!r}: configured are {', '.join(sorted(settings.clusters))}",
        )
    try:
        template = await get_template(session, body.template, body.template_version)
    except NotFound as exc:
        raise invalid("template", str(exc)) from None
    if template.retired_at is not None:
        raise invalid("template", f"template {template.name!r} is retired")
    spec = TemplateSpec.model_validate(template.spec)
    await serialize(session, "deployments.user", [caller.user_id])
    limits = await quotas.limits_for(session, settings, caller.user_id)
    taken = await session.scalar(
        select(App.id).where(App.user_id == caller.user_id, App.name == body.name)
    )
    if taken is not None:
        raise Conflict(f"name: you already have an app named {body.name!r}")
    _check_host(settings, body.host)
    host = body.host or _default_host(settings, caller.user_id, body.name)
    await _host_free(session, host, None)
    if spec.mongo and await session.get(MongoDatabase, caller.user_id) is None:
        raise Conflict(
            "mongo: the template needs your MongoDB database: "
            "provision it first (POST /api/deployments/mongo)"
        )
    plain, secret = variables.resolve(spec, body.variables)
    snapshot = {
        "template_id": template.id,
        "template": template.name,
        "template_version": template.version,
        "image": _image(
            spec, None, image=body.image, tag=body.image_tag, allowed=limits.allow_image_override
        ),
        "port": spec.port,
        "replicas": spec.replicas if body.replicas is None else body.replicas,
        "resources": (body.resources or spec.resources).model_dump(),
        "readiness": spec.readiness.model_dump() if spec.readiness else None,
        "liveness": spec.liveness.model_dump() if spec.liveness else None,
        "env": plain,
        "secret_env": {k: env.box.seal(v) for k, v in secret.items()},
        "host": host,
        "mongo": spec.mongo,
    }
    quotas.check(limits, await quotas.usage(session, caller.user_id), snapshot, new_app=True)
    namespace, base = placement(settings, caller.user_id, body.name)
    now = utcnow()
    app = App(
        user_id=caller.user_id,
        name=body.name,
        cluster=cluster,
        namespace=namespace,
        base_name=base,
        template_id=template.id,
        host=host,
        revision=0,
        state="pending",
        message="",
        attempts=0,
        stopped=False,
        health="unknown",
        created_at=now,
        updated_at=now,
    )
    session.add(app)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"host: {host} is already used by another app") from None
    await _add_revision(session, env, app, snapshot, "created", caller.user_id)
    publish(
        session,
        AppCreated(
            app_id=app.id,
            user_id=app.user_id,
            name=app.name,
            template=template.name,
            revision=app.revision,
        ),
        actor=caller.username,
    )
    return app, snapshot


async def _locked(session: AsyncSession, caller: Principal, app_id: int) -> App:
    await get_app(session, caller, app_id)
    app: App = await lock_row(session, App, app_id)
    if app is None:
        raise NotFound(f"app {app_id} does not exist")
    if app.state == "deleting":
        raise Conflict(f"app {app_id} is being deleted (state: deleting)")
    return app


async def update_app(
    session: AsyncSession, env: Env, caller: Principal, app_id: int, body: AppUpdate
) -> tuple[App, dict[str, Any]]:
    """A new revision with the changed variables, image tag, replicas, resources or host."""
    app = await _locked(session, caller, app_id)
    current = await snapshot_of(session, app)
    given = body.model_fields_set
    if not given:
        raise invalid("body", "names no change")
    if "template_version" in given and body.template_version is not None:
        try:
            template = await get_template(session, current["template"], body.template_version)
        except NotFound as exc:
            raise invalid("template_version", str(exc)) from None
    else:
        template = await session.get(Template, current["template_id"]) or await get_template(
            session, current["template"]
        )
    spec = TemplateSpec.model_validate(template.spec)
    limits = await quotas.limits_for(session, env.settings, app.user_id)
    old_secret = {k: env.box.open(v) for k, v in (current.get("secret_env") or {}).items()}
    plain, secret = variables.resolve(
        spec, body.variables or {}, current.get("env") or {}, old_secret
    )
    snapshot = dict(current)
    if template.id != current["template_id"]:
        snapshot.update(
            template_id=template.id,
            template_version=template.version,
            port=spec.port,
            readiness=spec.readiness.model_dump() if spec.readiness else None,
            liveness=spec.liveness.model_dump() if spec.liveness else None,
            mongo=spec.mongo,
        )
        snapshot["image"] = spec.image
    snapshot["image"] = _image(
        spec,
        snapshot["image"],
        image=body.image,
        tag=body.image_tag,
        allowed=limits.allow_image_override,
    )
    if body.replicas is not None:
        snapshot["replicas"] = body.replicas
    if body.resources is not None:
        snapshot["resources"] = body.resources.model_dump()
    if "host" in given:
        _check_host(env.settings, body.host)
        host = body.host or _default_host(env.settings, app.user_id, app.name)
        await _host_free(session, host, app.id)
        snapshot["host"] = host
        app.host = host
    snapshot["env"] = plain
    snapshot["secret_env"] = {
        k: (current["secret_env"][k] if old_secret.get(k) == v else env.box.seal(v))
        for k, v in secret.items()
    }
    quotas.check(
        limits, await quotas.usage(session, app.user_id, except_app=app.id), snapshot, new_app=False
    )
    if snapshot == current:
        raise invalid("body", "changes nothing: the app already runs this")
    changed = sorted(
        k
        for k in ("image", "replicas", "resources", "host", "env", "secret_env", "template_version")
        if snapshot.get(k) != current.get(k)
    )
    app.template_id = template.id
    try:
        await _add_revision(
            session, env, app, snapshot, "changed " + ", ".join(changed), caller.user_id
        )
    except IntegrityError:
        raise Conflict(f"host: {snapshot['host']} is already used by another app") from None
    return app, snapshot


async def rollback(
    session: AsyncSession, env: Env, caller: Principal, app_id: int, number: int
) -> tuple[App, dict[str, Any]]:
    """Revision ``number``'s snapshot again, as a new revision (quota and host re-checked)."""
    app = await _locked(session, caller, app_id)
    if number == app.revision:
        raise invalid("revision", f"revision {number} is the current one")
    try:
        target = await snapshot_of(session, app, number)
    except NotFound as exc:
        raise invalid("revision", str(exc)) from None
    limits = await quotas.limits_for(session, env.settings, app.user_id)
    quotas.check(
        limits, await quotas.usage(session, app.user_id, except_app=app.id), target, new_app=False
    )
    await _host_free(session, target.get("host"), app.id)
    from_revision = app.revision
    app.host = target.get("host")
    app.template_id = target["template_id"]
    new = await _add_revision(
        session, env, app, dict(target), f"rollback to {number}", caller.user_id
    )
    publish(
        session,
        AppRolledBack(
            app_id=app.id,
            user_id=app.user_id,
            name=app.name,
            from_revision=from_revision,
            to_revision=number,
            revision=new,
        ),
        actor=caller.username,
    )
    return app, target


async def _switch(
    session: AsyncSession, caller: Principal, app_id: int, message: str, **values: Any
) -> tuple[App, dict[str, Any]]:
    app = await _locked(session, caller, app_id)
    for key, value in values.items():
        setattr(app, key, value)
    app.state = values.get("state", "pending")
    app.attempts = 0
    app.next_attempt_at = None
    app.message = message
    app.updated_at = utcnow()
    await session.flush()
    return app, await snapshot_of(session, app)


async def stop(session: AsyncSession, caller: Principal, app_id: int) -> tuple[App, dict[str, Any]]:
    """Scale the app to zero (its revision is kept)."""
    return await _switch(session, caller, app_id, "stop waits for the apply job", stopped=True)


async def start(
    session: AsyncSession, caller: Principal, app_id: int
) -> tuple[App, dict[str, Any]]:
    """Scale the app back to its revision's replicas."""
    return await _switch(session, caller, app_id, "start waits for the apply job", stopped=False)


async def restart(
    session: AsyncSession, caller: Principal, app_id: int
) -> tuple[App, dict[str, Any]]:
    """A rollout restart: a new restartedAt annotation on the pod template."""
    stamp = utcnow().isoformat(timespec="microseconds")
    return await _switch(
        session, caller, app_id, "restart waits for the apply job", restarted_at=stamp
    )


async def request_delete(
    session: AsyncSession, caller: Principal, app_id: int
) -> tuple[App, dict[str, Any]]:
    """Mark the app ``deleting``: the apply job removes its objects, then its row."""
    return await _switch(
        session, caller, app_id, "delete waits for the apply job", state="deleting"
    )


async def force_delete(session: AsyncSession, caller: Principal, app_id: int) -> None:
    """Remove the app's row now (admins); the cleanup job removes its orphaned objects."""
    app = await lock_row(session, App, app_id)
    if app is None:
        raise NotFound(f"app {app_id} does not exist")
    publish(
        session,
        AppDeleted(app_id=app.id, user_id=app.user_id, name=app.name, forced=True),
        actor=caller.username,
    )
    await session.execute(delete(Revision).where(Revision.app_id == app.id))
    await session.delete(app)
    await session.flush()


async def revisions(session: AsyncSession, app: App) -> list[Revision]:
    """The app's kept revisions, newest first."""
    return list(
        (
            await session.scalars(
                select(Revision).where(Revision.app_id == app.id).order_by(Revision.number.desc())
            )
        ).all()
    )
