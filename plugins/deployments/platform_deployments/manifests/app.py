"""An app's objects: ConfigMap, Secret, Deployment, Service, and an Ingress or IngressRoute."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from platform_deployments.manifests.labels import (
    CHECKSUM_ANNOTATION,
    INSTANCE_LABEL,
    RESTARTED_AT_ANNOTATION,
    common_labels,
    digest,
    metadata,
    stamp,
)

CONTAINER = "app"


@dataclass(frozen=True)
class Probe:
    """An HTTP readiness or liveness probe of the app's port."""

    path: str = "/"
    initial_delay_seconds: int = 5
    period_seconds: int = 10
    failure_threshold: int = 3


@dataclass(frozen=True)
class AppSpec:
    """What one revision of an app asks the cluster for (secret values in clear)."""

    app_id: int
    user_id: int
    name: str
    image: str
    port: int
    replicas: int = 1
    cpu_request_millis: int = 100
    memory_request_mib: int = 128
    cpu_limit_millis: int = 200
    memory_limit_mib: int = 256
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)
    readiness: Probe | None = None
    liveness: Probe | None = None
    host: str | None = None
    stopped: bool = False
    restarted_at: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where and how an app is exposed: namespace, object names, ingress flavour."""

    namespace: str
    base_name: str
    ingress: Literal["ingress", "traefik"] = "ingress"
    ingress_class: str | None = "nginx"
    tls: bool = True
    cert_issuer: str | None = None
    traefik_entrypoints: tuple[str, ...] = ("websecure",)
    traefik_cert_resolver: str | None = None


def _labels(spec: AppSpec, place: Placement) -> dict[str, str]:
    return common_labels(
        user_id=spec.user_id, app_id=spec.app_id, instance=place.base_name, name=spec.name
    )


def _selector(spec: AppSpec, place: Placement) -> dict[str, str]:
    return {INSTANCE_LABEL: place.base_name, "deployments.platform.io/app-id": str(spec.app_id)}


def config_map(spec: AppSpec, place: Placement) -> dict[str, Any]:
    """The ConfigMap of the app's plain variables."""
    meta = metadata(f"{place.base_name}-env", place.namespace, _labels(spec, place))
    return stamp(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": dict(sorted(spec.env.items())),
        }
    )


def secret(spec: AppSpec, place: Placement) -> dict[str, Any]:
    """The Secret of the app's secret variables (``stringData``: the server encodes)."""
    meta = metadata(f"{place.base_name}-env", place.namespace, _labels(spec, place))
    return stamp(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "type": "Opaque",
            "stringData": dict(sorted(spec.secret_env.items())),
        }
    )


def _probe(probe: Probe) -> dict[str, Any]:
    return {
        "httpGet": {"path": probe.path, "port": "http"},
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "failureThreshold": probe.failure_threshold,
    }


RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def deployment(spec: AppSpec, place: Placement) -> dict[str, Any]:
    """The Deployment: resources, probes, a restricted security context, and a checksum of
    the config and secret on the pod template so pods restart when either changes."""
    checksum = digest({"env": spec.env, "secret": spec.secret_env})[:32]
    pod_annotations = {CHECKSUM_ANNOTATION: checksum}
    if spec.restarted_at:
        pod_annotations[RESTARTED_AT_ANNOTATION] = spec.restarted_at
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "envFrom": [
            {"configMapRef": {"name": f"{place.base_name}-env"}},
            {"secretRef": {"name": f"{place.base_name}-env"}},
        ],
        "resources": {
            "requests": {
                "cpu": f"{spec.cpu_request_millis}m",
                "memory": f"{spec.memory_request_mib}Mi",
            },
            "limits": {"cpu": f"{spec.cpu_limit_millis}m", "memory": f"{spec.memory_limit_mib}Mi"},
        },
        "securityContext": dict(RESTRICTED_CONTAINER),
    }
    if spec.readiness is not None:
        container["readinessProbe"] = _probe(spec.readiness)
    if spec.liveness is not None:
        container["livenessProbe"] = _probe(spec.liveness)
    labels = _labels(spec, place)
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(place.base_name, place.namespace, labels),
        "spec": {
            "replicas": 0 if spec.stopped else spec.replicas,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": _selector(spec, place)},
            "template": {
                "metadata": {"labels": labels, "annotations": pod_annotations},
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
    return stamp(body)


def service(spec: AppSpec, place: Placement) -> dict[str, Any]:
    """The ClusterIP Service in front of the app's pods (port 80 to the app's port)."""
    return stamp(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(place.base_name, place.namespace, _labels(spec, place)),
            "spec": {
                "type": "ClusterIP",
                "selector": _selector(spec, place),
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        }
    )


def ingress(spec: AppSpec, place: Placement, host: str) -> dict[str, Any]:
    """A networking.k8s.io Ingress for the host (class, TLS, cert-manager issuer)."""
    annotations = {}
    if place.cert_issuer:
        annotations["cert-manager.io/cluster-issuer"] = place.cert_issuer
    body: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(place.base_name, place.namespace, _labels(spec, place), annotations),
        "spec": {
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": place.base_name, "port": {"name": "http"}}
                                },
                            }
                        ]
                    },
                }
            ]
        },
    }
    if place.ingress_class:
        body["spec"]["ingressClassName"] = place.ingress_class
    if place.tls:
        body["spec"]["tls"] = [{"hosts": [host], "secretName": f"{place.base_name}-tls"}]
    return stamp(body)


def ingress_route(spec: AppSpec, place: Placement, host: str) -> dict[str, Any]:
    """A Traefik IngressRoute (traefik.io/v1alpha1) for the host."""
    body: dict[str, Any] = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": metadata(place.base_name, place.namespace, _labels(spec, place)),
        "spec": {
            "entryPoints": list(place.traefik_entrypoints),
            "routes": [
                {
                    "match": f"Host(`{host}`)",
                    "kind": "Rule",
                    "services": [{"name": place.base_name, "port": 80}],
                }
            ],
        },
    }
    if place.tls:
        tls: dict[str, Any] = {}
        if place.traefik_cert_resolver:
            tls["certResolver"] = place.traefik_cert_resolver
        else:
            tls["secretName"] = f"{place.base_name}-tls"
        body["spec"]["tls"] = tls
    return stamp(body)


def build_app_objects(spec: AppSpec, place: Placement) -> list[dict[str, Any]]:
    """Every object of one app revision, in apply order (config before the pods use it)."""
    objects = [
        config_map(spec, place),
        secret(spec, place),
        deployment(spec, place),
        service(spec, place),
    ]
    if spec.host:
        build = ingress_route if place.ingress == "traefik" else ingress
        objects.append(build(spec, place, spec.host))
    return objects
