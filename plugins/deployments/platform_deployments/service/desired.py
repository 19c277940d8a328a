"""The desired objects of apps and users' namespaces, from stored state (no I/O)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from platform_deployments.manifests import (
    AppSpec,
    Placement,
    UserLimits,
    build_app_objects,
    build_namespace_objects,
)
from platform_deployments.manifests.app import Probe
from platform_deployments.models import App, MongoDatabase
from platform_deployments.service.crypto import SecretBox
from platform_deployments.service.quotas import Limits
from platform_deployments.settings import DeploymentsSettings

APP_KINDS = ("ConfigMap", "Secret", "Deployment", "Service", "Ingress", "IngressRoute")
"""Every kind an app may own, in apply order."""


def mongo_uri(
    settings: DeploymentsSettings, db: MongoDatabase, password: str, *, external: bool
) -> str:
    """The connection URI of a user's database (internal host for apps, external for tools)."""
    host = settings.mongo.external_host if external else settings.mongo.internal_host
    return (
        f"mongodb://{quote(db.username, safe='')}:{quote(password, safe='')}@{host}/"
        f"{db.database}?authSource={db.database}"
    )


def placement_of(settings: DeploymentsSettings, app: App) -> Placement:
    """Where the app's objects go and how it is exposed."""
    return Placement(
        namespace=app.namespace,
        base_name=app.base_name,
        ingress=settings.ingress_kind,
        ingress_class=settings.ingress_class,
        tls=settings.tls,
        cert_issuer=settings.cert_issuer,
        traefik_cert_resolver=settings.traefik_cert_resolver,
    )


def _probe(value: dict[str, Any] | None) -> Probe | None:
    return Probe(**value) if value else None


def app_objects(
    settings: DeploymentsSettings,
    box: SecretBox,
    app: App,
    snapshot: dict[str, Any],
    mongo: tuple[MongoDatabase, str] | None,
) -> list[dict[str, Any]]:
    """Every object of the app's current revision (secrets decrypted for the Secret)."""
    secret_env = {k: box.open(v) for k, v in (snapshot.get("secret_env") or {}).items()}
    if snapshot.get("mongo") and mongo is not None:
        secret_env["MONGODB_URI"] = mongo_uri(settings, mongo[0], mongo[1], external=False)
    res = snapshot["resources"]
    spec = AppSpec(
        app_id=app.id,
        user_id=app.user_id,
        name=app.name,
        image=snapshot["image"],
        port=snapshot["port"],
        replicas=snapshot["replicas"],
        cpu_request_millis=res["cpu_request_millis"],
        memory_request_mib=res["memory_request_mib"],
        cpu_limit_millis=res["cpu_limit_millis"],
        memory_limit_mib=res["memory_limit_mib"],
        env=dict(snapshot.get("env") or {}),
        secret_env=secret_env,
        readiness=_probe(snapshot.get("readiness")),
        liveness=_probe(snapshot.get("liveness")),
        host=snapshot.get("host"),
        stopped=app.stopped,
        restarted_at=app.restarted_at,
    )
    return build_app_objects(spec, placement_of(settings, app))


def namespace_objects(
    settings: DeploymentsSettings, user_id: int, namespace: str, limits: Limits
) -> list[dict[str, Any]]:
    """The user's namespace and its guard rails, sized by their quota."""
    user_limits = UserLimits(
        max_pods=max(limits.max_replicas, 1),
        cpu_millis=max(limits.cpu_millis, 10),
        memory_mib=max(limits.memory_mib, 16),
    )
    return build_namespace_objects(
        namespace,
        user_id,
        user_limits,
        shared=settings.namespace_mode == "shared",
        ingress_namespace=settings.ingress_namespace,
    )
