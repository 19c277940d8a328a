"""The per-user MongoDB viewer (mongo-express by default): Secret, Deployment, Service, route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from platform_deployments.manifests.app import RESTRICTED_CONTAINER, Placement
from platform_deployments.manifests.labels import (
    INSTANCE_LABEL,
    common_labels,
    digest,
    metadata,
    stamp,
)

COMPONENT_LABEL = "deployments.platform.io/component"
VIEWER_PORT = 8081


@dataclass(frozen=True)
class ViewerSpec:
    """One user's viewer: image, the database URI, basic-auth credentials, host."""

    user_id: int
    image: str
    mongo_uri: str
    username: str
    password: str
    host: str | None


def build_viewer_objects(spec: ViewerSpec, place: Placement) -> list[dict[str, Any]]:
    """The viewer's objects, in apply order; basic auth is on, the admin database off."""
    labels = common_labels(user_id=spec.user_id, instance=place.base_name, name="mongo-viewer")
    labels[COMPONENT_LABEL] = "viewer"
    selector = {INSTANCE_LABEL: place.base_name, COMPONENT_LABEL: "viewer"}
    env = {
        "ME_CONFIG_MONGODB_URL": spec.mongo_uri,
        "ME_CONFIG_BASICAUTH": "true",
        "ME_CONFIG_BASICAUTH_USERNAME": spec.username,
        "ME_CONFIG_BASICAUTH_PASSWORD": spec.password,
        "ME_CONFIG_MONGODB_ENABLE_ADMIN": "false",
    }
    secret = stamp(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": metadata(place.base_name, place.namespace, labels),
            "stringData": env,
        }
    )
    container = {
        "name": "viewer",
        "image": spec.image,
        "ports": [{"name": "http", "containerPort": VIEWER_PORT, "protocol": "TCP"}],
        "envFrom": [{"secretRef": {"name": place.base_name}}],
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "200m", "memory": "256Mi"},
        },
        "securityContext": dict(RESTRICTED_CONTAINER) | {"runAsUser": 1000},
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 10},
    }
    deployment = stamp(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(place.base_name, place.namespace, labels),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {
                            "deployments.platform.io/config-checksum": digest(env)[:32]
                        },
                    },
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                    },
                },
            },
        }
    )
    service = stamp(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(place.base_name, place.namespace, labels),
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        }
    )
    objects = [secret, deployment, service]
    if spec.host:
        from platform_deployments.manifests.app import AppSpec, ingress, ingress_route

        owner = AppSpec(
            app_id=0, user_id=spec.user_id, name="mongo-viewer", image=spec.image, port=VIEWER_PORT
        )
        route = (ingress_route if place.ingress == "traefik" else ingress)(owner, place, spec.host)
        route["metadata"]["labels"] = labels
        route["metadata"]["annotations"].pop("deployments.platform.io/spec-hash", None)
        objects.append(stamp(route))
    return objects
