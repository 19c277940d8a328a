"""Manifest builders: pure functions, checked on the objects and by the client's own models."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.aio.client import models
from platform_deployments.manifests import (
    APP_ID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SPEC_HASH_ANNOTATION,
    USER_ID_LABEL,
    AppSpec,
    Placement,
    UserLimits,
    build_app_objects,
    build_namespace_objects,
    spec_hash,
)
from platform_deployments.manifests.app import Probe
from platform_deployments.manifests.labels import (
    CHECKSUM_ANNOTATION,
    INSTANCE_LABEL,
    RESTARTED_AT_ANNOTATION,
)

MODELS = {
    "Namespace": models.V1Namespace,
    "ConfigMap": models.V1ConfigMap,
    "Secret": models.V1Secret,
    "Deployment": models.V1Deployment,
    "Service": models.V1Service,
    "Ingress": models.V1Ingress,
    "ResourceQuota": models.V1ResourceQuota,
    "LimitRange": models.V1LimitRange,
    "NetworkPolicy": models.V1NetworkPolicy,
}


def spec(**changes: Any) -> AppSpec:
    base: dict[str, Any] = {
        "app_id": 7,
        "user_id": 42,
        "name": "web",
        "image": "nginx:1.27",
        "port": 8080,
        "replicas": 2,
        "env": {"A": "1"},
        "secret_env": {"TOKEN": "s3cret"},
        "readiness": Probe(path="/ready"),
        "liveness": Probe(path="/live", initial_delay_seconds=20),
        "host": "web.example.org",
    }
    return AppSpec(**(base | changes))


PLACE = Placement(namespace="u-42", base_name="web", cert_issuer="letsencrypt")


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


def test_every_app_object_is_valid_for_the_client_models() -> None:
    for obj in build_app_objects(spec(), PLACE):
        MODELS[obj["kind"]].model_validate(obj)


def test_every_namespace_object_is_valid_for_the_client_models() -> None:
    objects = build_namespace_objects(
        "u-42", 42, UserLimits(6, 2000, 2048), shared=False, ingress_namespace="ingress-nginx"
    )
    assert [o["kind"] for o in objects] == [
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
    ]
    for obj in objects:
        MODELS[obj["kind"]].model_validate(obj)


def test_client_models_refuse_a_broken_deployment() -> None:
    broken = by_kind(build_app_objects(spec(), PLACE))["Deployment"]
    del broken["spec"]["selector"]
    with pytest.raises(ValueError):
        models.V1Deployment.model_validate(broken)


def test_every_object_carries_the_common_labels_and_a_spec_hash() -> None:
    objects = build_app_objects(spec(), PLACE) + build_namespace_objects(
        "u-42", 42, UserLimits(6, 2000, 2048), shared=False, ingress_namespace="ingress-nginx"
    )
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels[MANAGED_BY_LABEL] == MANAGED_BY
        assert labels[USER_ID_LABEL] == "42"
        assert obj["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == spec_hash(obj)
    for obj in build_app_objects(spec(), PLACE):
        assert obj["metadata"]["labels"][APP_ID_LABEL] == "7"
        assert obj["metadata"]["labels"][INSTANCE_LABEL] == "web"


def test_building_twice_gives_identical_objects() -> None:
    assert build_app_objects(spec(), PLACE) == build_app_objects(spec(), PLACE)


def test_deployment_has_resources_probes_and_a_restricted_security_context() -> None:
    dep = by_kind(build_app_objects(spec(), PLACE))["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert dep["spec"]["replicas"] == 2
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "200m", "memory": "256Mi"},
    }
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["initialDelaySeconds"] == 20
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert (
        dep["spec"]["selector"]["matchLabels"].items()
        <= dep["spec"]["template"]["metadata"]["labels"].items()
    )


def test_config_checksum_changes_with_config_or_secret_only() -> None:
    def checksum(s: AppSpec) -> str:
        dep = by_kind(build_app_objects(s, PLACE))["Deployment"]
        return str(dep["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION])

    base = checksum(spec())
    assert checksum(spec(env={"A": "2"})) != base
    assert checksum(spec(secret_env={"TOKEN": "other"})) != base
    assert checksum(spec(replicas=3)) == base


def test_stop_scales_to_zero_and_restart_annotates_the_pod_template() -> None:
    dep = by_kind(build_app_objects(spec(stopped=True, restarted_at="2026-12-07T00:00:00"), PLACE))[
        "Deployment"
    ]
    assert dep["spec"]["replicas"] == 0
    assert (
        dep["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT_ANNOTATION]
        == "2026-12-07T00:00:00"
    )


def test_spec_hash_changes_when_the_object_changes() -> None:
    a = by_kind(build_app_objects(spec(), PLACE))["Deployment"]
    b = by_kind(build_app_objects(spec(image="nginx:1.28"), PLACE))["Deployment"]
    assert (
        a["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        != b["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    )


def test_config_map_and_secret_split_plain_and_secret_variables() -> None:
    objects = by_kind(build_app_objects(spec(), PLACE))
    assert objects["ConfigMap"]["data"] == {"A": "1"}
    assert objects["Secret"]["stringData"] == {"TOKEN": "s3cret"}
    assert "TOKEN" not in objects["ConfigMap"]["data"]


def test_ingress_has_class_tls_host_and_issuer() -> None:
    ing = by_kind(build_app_objects(spec(), PLACE))["Ingress"]
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["rules"][0]["host"] == "web.example.org"
    assert ing["spec"]["tls"] == [{"hosts": ["web.example.org"], "secretName": "web-tls"}]
    assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"


def test_traefik_setting_builds_an_ingress_route_instead() -> None:
    place = Placement(
        namespace="u-42", base_name="web", ingress="traefik", traefik_cert_resolver="le"
    )
    objects = by_kind(build_app_objects(spec(), place))
    assert "Ingress" not in objects
    route = objects["IngressRoute"]
    assert route["apiVersion"] == "traefik.io/v1alpha1"
    assert route["spec"]["routes"][0]["match"] == "Host(`web.example.org`)"
    assert route["spec"]["routes"][0]["services"] == [{"name": "web", "port": 80}]
    assert route["spec"]["tls"] == {"certResolver": "le"}


def test_no_host_means_no_ingress() -> None:
    kinds = [o["kind"] for o in build_app_objects(spec(host=None), PLACE)]
    assert kinds == ["ConfigMap", "Secret", "Deployment", "Service"]


def test_quota_and_limit_range_follow_the_user_limits() -> None:
    objects = by_kind(
        build_namespace_objects(
            "u-42", 42, UserLimits(4, 1500, 1024), shared=False, ingress_namespace="ingress-nginx"
        )
    )
    assert objects["ResourceQuota"]["spec"]["hard"]["pods"] == "4"
    assert objects["ResourceQuota"]["spec"]["hard"]["requests.cpu"] == "1500m"
    assert objects["ResourceQuota"]["spec"]["hard"]["requests.memory"] == "1024Mi"
    assert objects["LimitRange"]["spec"]["limits"][0]["type"] == "Container"
    assert (
        objects["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "restricted"
    )


def test_network_policy_admits_only_the_ingress_controller_and_own_pods() -> None:
    policy = by_kind(
        build_namespace_objects(
            "u-42", 42, UserLimits(4, 1500, 1024), shared=False, ingress_namespace="ingress-nginx"
        )
    )["NetworkPolicy"]
    sources = policy["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": {USER_ID_LABEL: "42"}}} in sources
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in sources
    assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_shared_namespace_mode_builds_only_a_per_user_network_policy() -> None:
    objects = build_namespace_objects(
        "apps", 42, UserLimits(4, 1500, 1024), shared=True, ingress_namespace="ingress-nginx"
    )
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("NetworkPolicy", "u42-isolation")
    ]


def test_viewer_objects_are_valid_and_protected() -> None:
    from platform_deployments.manifests.viewer import ViewerSpec, build_viewer_objects

    spec = ViewerSpec(
        user_id=42,
        image="mongo-express:1.0.2",
        mongo_uri="mongodb://u:p@h/db",
        username="viewer42",
        password="pw",
        host="db-u42.example.org",
    )
    objects = by_kind(
        build_viewer_objects(spec, Placement(namespace="u-42", base_name="mongo-viewer"))
    )
    for obj in objects.values():
        MODELS[obj["kind"]].model_validate(obj)
        assert obj["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY
    env = objects["Secret"]["stringData"]
    assert env["ME_CONFIG_BASICAUTH"] == "true" and env["ME_CONFIG_BASICAUTH_PASSWORD"] == "pw"
    assert env["ME_CONFIG_MONGODB_ENABLE_ADMIN"] == "false"
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert "pw" not in str(objects["Deployment"])  # credentials only in the Secret
